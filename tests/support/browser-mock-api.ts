/**
 * Serves public/ and a scripted stand-in of the API to a Playwright page, entirely through request
 * interception: no server, no network. For checking the checkout page's behaviour and looks without
 * the real handlers.
 */
import { readFileSync } from 'node:fs';
import { extname, join, normalize } from 'node:path';
import type { Page, Route } from 'playwright-core';
import { REPO_ROOT } from './browser-local-stack';

/** A loopback origin (a secure context, so crypto.randomUUID exists); nothing listens: every request is intercepted. */
export const MOCK_ORIGIN = 'http://127.0.0.1:9';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

export type MockReply = { status: number; body?: unknown; rawBody?: string; headers?: Record<string, string> } | 'network-failure';

export interface ApiCall {
  url: string;
  route: 'send-otp' | 'verify-otp';
  headers: Record<string, string>;
  body: unknown;
}

export interface MockApi {
  calls: ApiCall[];
  /** Replies for the next calls of a route, in order; when none is queued the default success is used. */
  queue(route: ApiCall['route'], ...replies: MockReply[]): void;
  /** Number of calls of a route so far. */
  count(route: ApiCall['route']): number;
}

const future = (seconds: number) => new Date(Date.now() + seconds * 1000).toISOString();

export const defaultReply = (route: ApiCall['route'], n: number): MockReply =>
  route === 'send-otp'
    ? { status: 201, body: { otpRequestId: `req_${n}_abcdef`, expiresAt: future(300), resendAfterSeconds: 60 } }
    : { status: 200, body: { verified: true, token: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIrOTE5ODc2NTQzMjEwIn0.c2ln', tokenExpiresAt: future(600) } };

export interface ServeOptions {
  /** Content-Security-Policy response header for the page (on top of the page's own meta CSP). */
  csp?: string;
  /** Rewrite index.html before serving (e.g. add data-api-base). */
  html?: (html: string) => string;
  /** Where the page is served from (default: MOCK_ORIGIN, a loopback origin). */
  pageOrigin?: string;
  /** Where the API lives (default: the page's origin). */
  apiOrigin?: string;
}

export const mockCheckout = async (page: Page, opts: ServeOptions = {}): Promise<MockApi> => {
  const calls: ApiCall[] = [];
  const queues: Record<ApiCall['route'], MockReply[]> = { 'send-otp': [], 'verify-otp': [] };
  const pageOrigin = opts.pageOrigin ?? MOCK_ORIGIN;
  const apiOrigin = opts.apiOrigin ?? pageOrigin;
  const corsHeaders: Record<string, string> =
    apiOrigin === pageOrigin
      ? {}
      : {
          'Access-Control-Allow-Origin': pageOrigin,
          'Access-Control-Allow-Headers': 'content-type, idempotency-key',
          'Access-Control-Allow-Methods': 'GET, POST, OPTIONS',
          'Access-Control-Expose-Headers': 'Retry-After',
        };

  const serveStatic = async (route: Route, pathname: string) => {
    const rel = pathname === '/' ? 'index.html' : pathname.replace(/^\/+/, '');
    // The bot-challenge stand-in that `npm start` serves (local/front-server.ts) at the same path.
    const file = rel === 'challenge-stand-in.js' ? join(REPO_ROOT, 'local', rel) : normalize(join(REPO_ROOT, 'public', rel));
    if (!file.startsWith(join(REPO_ROOT, 'public')) && rel !== 'challenge-stand-in.js') return route.fulfill({ status: 404, body: 'not found' });
    let body: Buffer;
    try {
      body = readFileSync(file);
    } catch {
      return route.fulfill({ status: 404, contentType: 'text/plain', body: 'not found' });
    }
    const headers: Record<string, string> = { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream', 'Cache-Control': 'no-store' };
    if (rel === 'index.html') {
      if (opts.csp) headers['Content-Security-Policy'] = opts.csp;
      if (opts.html) body = Buffer.from(opts.html(body.toString('utf8')));
    }
    return route.fulfill({ status: 200, headers, body });
  };

  const serveApi = async (route: Route, which: ApiCall['route']) => {
    const request = route.request();
    if (request.method() === 'OPTIONS') return route.fulfill({ status: 204, headers: corsHeaders });
    let body: unknown = null;
    try {
      body = request.postDataJSON();
    } catch {
      body = request.postData();
    }
    calls.push({ url: request.url(), route: which, headers: await request.allHeaders(), body });
    const n = calls.filter((c) => c.route === which).length;
    const reply = queues[which].shift() ?? defaultReply(which, n);
    if (reply === 'network-failure') return route.abort('connectionrefused');
    return route.fulfill({
      status: reply.status,
      headers: { 'Content-Type': 'application/json', ...corsHeaders, ...(reply.headers ?? {}) },
      body: reply.rawBody ?? JSON.stringify(reply.body ?? {}),
    });
  };

  const handler = async (route: Route) => {
    const url = new URL(route.request().url());
    const m = /\/auth\/(send-otp|verify-otp)$/.exec(url.pathname);
    if (m && url.origin === new URL(apiOrigin).origin) return serveApi(route, m[1] as ApiCall['route']);
    if (url.origin === pageOrigin && route.request().method() === 'GET') return serveStatic(route, url.pathname);
    return route.fulfill({ status: 404, contentType: 'text/plain', body: 'not found' });
  };

  await page.route(`${pageOrigin}/**`, handler);
  if (apiOrigin !== pageOrigin) await page.route(`${new URL(apiOrigin).origin}/**`, handler);
  // Anything else would be an external resource: refuse it loudly.
  await page.route(
    (url) => url.origin !== pageOrigin && url.origin !== new URL(apiOrigin).origin && url.protocol.startsWith('http'),
    (route) => route.abort('blockedbyclient'),
  );

  return {
    calls,
    queue: (route, ...replies) => queues[route].push(...replies),
    count: (route) => calls.filter((c) => c.route === route).length,
  };
};

/** Collects what a strict page must never produce: uncaught errors and CSP violations. */
export const watchPageProblems = async (page: Page): Promise<() => string[]> => {
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
  page.on('console', (msg) => {
    const text = msg.text();
    if (/Content[- ]Security[- ]Policy|Refused to (load|execute|apply|connect)/i.test(text)) problems.push(`csp: ${text}`);
  });
  // A string, not a function: the tests are type-checked without the DOM lib.
  await page.addInitScript(
    "document.addEventListener('securitypolicyviolation', function (e) {" +
      " console.error('Content-Security-Policy violation: ' + e.violatedDirective + ' ' + e.blockedURI); });",
  );
  return () => [...problems];
};
