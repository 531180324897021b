/**
 * The front server of `npm start`: what a browser or curl talks to on PORT. It serves public/ and the
 * OpenAPI document, and proxies the API routes to serverless offline — answering at the edge exactly as
 * the deployed HTTP API does, where serverless offline does not (API.md, "Local stack"):
 *
 * - CORS from the same CORS_ALLOWED_ORIGINS and the same rules (deploy/http-api-cors.cjs) that configure the
 *   HTTP API: preflights answered here, an origin not on the list gets no Access-Control-* header, nothing is
 *   reflected, no credentials. serverless offline reflects any Origin (even `null`) with credentials allowed,
 *   so every Access-Control-* header it or the handler writes is dropped.
 * - A POST without Content-Type reaches the handler without one: serverless offline would fill in
 *   `application/json` (LambdaProxyIntegrationEventV2), which API Gateway never does.
 * - The caller's IP (requestContext.http.sourceIp): the TCP peer, or with LOCAL_FORWARDED_FOR=1 the first
 *   X-Forwarded-For entry. serverless offline takes sourceIp from the socket it accepted, which is always
 *   this proxy's; local/source-ip-preload.cjs, loaded into serverless offline, puts the one named here back.
 * - The page is served with `frame-ancestors 'none'`, `X-Frame-Options: DENY` and `nosniff`.
 */
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { extname, join, resolve, sep } from 'node:path';
import { LOCALHOST, REPO_ROOT } from './env';

/** The header that carries the caller's IP from here to source-ip-preload.cjs (any value a client sends is replaced). */
export const SOURCE_IP_HEADER = 'x-otp-local-source-ip';
/** serverless offline replaces a missing Content-Type with application/json; this stands for "none" (see above). */
export const NO_CONTENT_TYPE = 'application/x-no-content-type';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

/** On every file the front server serves: the page may not be framed (clickjacking) nor its types guessed. */
export const PAGE_SECURITY_HEADERS = {
  'content-security-policy': "frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
} as const;

// Per RFC 9110 §7.6.1 these describe one connection, not the message: a proxy does not forward them.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

/** The routes the HTTP API has (serverless.yml); anything else is API Gateway's 404. */
const API_ROUTES = new Set(['POST /auth/send-otp', 'POST /auth/verify-otp', 'GET /.well-known/jwks.json']);

export interface CorsRules {
  allowedOrigins: string[];
  allowedHeaders: string[];
  allowedMethods: string[];
  exposedResponseHeaders: string[];
  maxAge: number;
}

/** The HTTP API's CORS rules for these origins, from the very file serverless.yml uses (false: no CORS at all). */
export const corsRulesFor = async (origins: string | undefined): Promise<CorsRules | false> => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const build = require(join(REPO_ROOT, 'deploy', 'http-api-cors.cjs')) as (ctx: { resolveVariable: (v: string) => Promise<unknown> }) => Promise<CorsRules | false>;
  return build({
    resolveVariable: async (name) => {
      if (name !== 'param:corsAllowedOrigins') throw new Error(`http-api-cors.cjs asked for ${name}`);
      return origins ?? '';
    },
  });
};

const sendJson = (res: ServerResponse, status: number, body: unknown, head = false, headers: Record<string, string> = {}): void => {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(head ? undefined : text);
};

const notFound = (res: ServerResponse, head: boolean) =>
  sendJson(res, 404, { error: 'not_found', message: 'There is nothing at this path.' }, head);

/** The file under `dir` that a GET path names, or undefined (missing, a directory, or outside `dir`). */
const fileUnder = (dir: string, pathname: string): string | undefined => {
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return undefined;
  }
  if (decoded.includes('\0')) return undefined;
  const file = resolve(dir, `.${decoded === '/' ? '/index.html' : decoded}`);
  if (!file.startsWith(dir + sep)) return undefined; // ../ and friends
  try {
    return statSync(file).isFile() ? file : undefined;
  } catch {
    return undefined;
  }
};

/** Raw header pairs without hop-by-hop ones and without those `drop` names. */
const forwardHeaders = (raw: string[], drop: (name: string) => boolean = () => false): string[] => {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (!HOP_BY_HOP.has(name) && !drop(name)) out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
};

/** `::ffff:127.0.0.1` → `127.0.0.1`, as API Gateway and hapi write IPv4 callers. */
const plainIp = (ip: string | undefined): string => {
  const s = ip ?? '';
  return s.startsWith('::ffff:') && s.includes('.') ? s.slice(7) : s;
};

/** The caller's IP as the handler should see it. */
export const callerIp = (req: IncomingMessage, trustForwardedFor: boolean): string => {
  if (trustForwardedFor) {
    const xff = req.headers['x-forwarded-for'];
    const first = (Array.isArray(xff) ? xff[0] : xff)?.split(',')[0]?.trim();
    if (first && isIP(plainIp(first))) return plainIp(first);
  }
  return plainIp(req.socket.remoteAddress);
};

const PUBLIC_DIR = join(REPO_ROOT, 'public');
const OPENAPI_SCRIPT = join(REPO_ROOT, 'scripts', 'build-openapi.ts');
export const CHALLENGE_STAND_IN = join(REPO_ROOT, 'local', 'challenge-stand-in.js');
export const CHALLENGE_STAND_IN_PATH = '/challenge-stand-in.js';

export interface FrontServerOptions {
  /** undefined until serverless offline answers; API calls get a 503 until then. */
  upstreamPort: () => number | undefined;
  cors: CorsRules | false;
  trustForwardedFor: boolean;
  /** When a bot challenge is configured: the demo page renders the local stand-in widget for it. */
  challenge?: { provider: string; siteKey: string };
}

export const createFrontServer = (opts: FrontServerOptions): Server => {
  const cors = opts.cors;
  const allowed = (origin: string | undefined): origin is string => !!cors && origin !== undefined && cors.allowedOrigins.includes(origin);

  /** API Gateway answers a preflight itself when CORS is configured; without CORS there is no OPTIONS route. */
  const preflight = (req: IncomingMessage, res: ServerResponse) => {
    if (!cors) return sendJson(res, 404, { message: 'Not Found' });
    const origin = req.headers.origin;
    if (!allowed(origin)) return void res.writeHead(204).end();
    res.writeHead(204, {
      'access-control-allow-origin': origin,
      'access-control-allow-methods': cors.allowedMethods.join(','),
      'access-control-allow-headers': cors.allowedHeaders.join(','),
      'access-control-max-age': String(cors.maxAge),
    });
    res.end();
  };

  const proxy = (req: IncomingMessage, res: ServerResponse) => {
    const port = opts.upstreamPort();
    if (port === undefined) {
      return sendJson(res, 503, { error: 'service_unavailable', message: 'The API emulation is still starting.' }, false, { 'retry-after': '2' });
    }
    const headers = forwardHeaders(req.rawHeaders, (n) => n === SOURCE_IP_HEADER);
    headers.push(SOURCE_IP_HEADER, callerIp(req, opts.trustForwardedFor));
    if (req.method === 'POST' && req.headers['content-type'] === undefined) headers.push('content-type', NO_CONTENT_TYPE);
    const origin = req.headers.origin;
    const upstream = request(
      // agent: false, one connection per request: the preload sets the caller's IP on the socket.
      { host: LOCALHOST, port, method: req.method, path: req.url, headers: headers as unknown as IncomingHttpHeaders, agent: false },
      (up) => {
        const out = forwardHeaders(up.rawHeaders, (n) => n.startsWith('access-control-'));
        if (cors && allowed(origin)) {
          out.push('access-control-allow-origin', origin, 'access-control-expose-headers', cors.exposedResponseHeaders.join(','));
        }
        res.writeHead(up.statusCode ?? 502, up.statusMessage, out);
        up.pipe(res);
        up.on('error', () => res.destroy());
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) sendJson(res, 502, { error: 'upstream_error', message: 'The API emulation did not answer.' });
      else res.destroy();
    });
    req.pipe(upstream);
  };

  const serveFile = (res: ServerResponse, file: string, head: boolean, rewrite?: (text: string) => string) => {
    const headers = {
      ...PAGE_SECURITY_HEADERS,
      'content-type': CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
      'cache-control': 'no-store', // a person editing the page sees the edit on reload
    };
    if (rewrite) {
      const body = Buffer.from(rewrite(readFileSync(file, 'utf8')));
      res.writeHead(200, { ...headers, 'content-length': body.length });
      return void res.end(head ? undefined : body);
    }
    res.writeHead(200, { ...headers, 'content-length': statSync(file).size });
    if (head) return void res.end();
    createReadStream(file).on('error', () => res.destroy()).pipe(res);
  };

  /** The demo page with the configured challenge on the widget element (the stand-in script locally). */
  const withChallenge = opts.challenge
    ? (html: string) =>
        html.replace(
          /(<[a-z]+[^>]*\bdata-otp-widget\b)/,
          `$1 data-challenge-provider="${opts.challenge!.provider}" data-challenge-site-key="${opts.challenge!.siteKey}"` +
            ` data-challenge-script="${CHALLENGE_STAND_IN_PATH}"`,
        )
    : undefined;

  return createServer((req, res) => {
    const { pathname } = new URL(req.url ?? '/', 'http://front');
    if (req.method === 'OPTIONS') return preflight(req, res);
    if (API_ROUTES.has(`${req.method} ${pathname}`)) return proxy(req, res);
    const isGet = req.method === 'GET' || req.method === 'HEAD';
    if (!isGet) return sendJson(res, 404, { message: 'Not Found' }); // API Gateway's answer for a route it does not have
    const head = req.method === 'HEAD';
    if (pathname === '/.well-known/jwks.json') return proxy(req, res);

    if (pathname === '/openapi.json' && existsSync(OPENAPI_SCRIPT)) {
      try {
        // Loaded on first use (tsx compiles it), so a start never fails because that script is broken or absent.
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const mod = require(OPENAPI_SCRIPT) as { buildOpenApi?: () => unknown };
        if (typeof mod.buildOpenApi !== 'function') throw new Error('scripts/build-openapi.ts has no buildOpenApi()');
        return sendJson(res, 200, mod.buildOpenApi(), head);
      } catch (err) {
        process.stderr.write(`openapi.json: ${err instanceof Error ? err.message : String(err)}\n`);
        return sendJson(res, 500, { error: 'internal_error', message: 'The OpenAPI document could not be built.' }, head);
      }
    }
    if (pathname === CHALLENGE_STAND_IN_PATH && existsSync(CHALLENGE_STAND_IN)) return serveFile(res, CHALLENGE_STAND_IN, head);
    const file = fileUnder(PUBLIC_DIR, pathname);
    if (!file) return notFound(res, head);
    return serveFile(res, file, head, file.endsWith(`${sep}index.html`) ? withChallenge : undefined);
  });
};
