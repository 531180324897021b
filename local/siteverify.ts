/**
 * A stand-in for a bot challenge provider's server-side verification endpoint (Turnstile, hCaptcha and
 * reCAPTCHA all answer the same way), on 127.0.0.1 only. `npm start` serves it when CHALLENGE_PROVIDER is
 * set and CHALLENGE_VERIFY_URL is not; tests drive the real challenge layer against it over real HTTP.
 *
 * It answers like the real ones: a form POST of `secret`, `response` and `remoteip` →
 * `{ "success": true|false, "error-codes": [...] }`. The documented test tokens (docs/rate-limits.md):
 *   - `challenge-pass` passes;
 *   - `challenge-fail`, and any other token, fails (`invalid-input-response`);
 *   - a wrong secret fails with `invalid-input-secret`, as the real providers do.
 * Tests can queue faults: a status, a non-JSON body, or no answer at all.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { listenOnLoopback, LOCALHOST } from './env';

export const PASSING_TOKEN = 'challenge-pass';
export const FAILING_TOKEN = 'challenge-fail';
export const DEFAULT_CHALLENGE_SECRET = 'local-challenge-secret';

export type SiteverifyFault = { status: number; body?: string } | { hang: true } | { body: string };

export interface SiteverifyCall {
  /** Whether the secret matched (the secret itself is never recorded). */
  secretOk: boolean;
  response: string | null;
  remoteip: string | null;
  contentType: string | undefined;
}

export interface SiteverifyStandIn {
  url: string;
  calls: SiteverifyCall[];
  failNext(...faults: SiteverifyFault[]): void;
  failAlways(fault: SiteverifyFault | undefined): void;
  close(): Promise<void>;
}

const MAX_BODY = 16 * 1024;

export const startSiteverifyStandIn = async (opts: { secret?: string; port?: number } = {}): Promise<SiteverifyStandIn> => {
  const secret = opts.secret ?? DEFAULT_CHALLENGE_SECRET;
  const calls: SiteverifyCall[] = [];
  const queued: SiteverifyFault[] = [];
  let always: SiteverifyFault | undefined;
  const sockets = new Set<Socket>();

  const answer = (res: ServerResponse, status: number, body: string, type = 'application/json') => {
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'POST' || !/^\/(siteverify)?$/.test(new URL(req.url ?? '/', 'http://x').pathname)) return answer(res, 404, '{"success":false,"error-codes":["not-found"]}');
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.on('end', () => {
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      calls.push({ secretOk: form.get('secret') === secret, response: form.get('response'), remoteip: form.get('remoteip'), contentType: req.headers['content-type'] });
      const fault = queued.shift() ?? always;
      if (fault !== undefined) {
        if ('hang' in fault) return; // never answers; the socket is destroyed on close
        if ('status' in fault) return answer(res, fault.status, fault.body ?? '', 'text/plain');
        return answer(res, 200, fault.body, 'text/html');
      }
      if (form.get('secret') !== secret) return answer(res, 200, JSON.stringify({ success: false, 'error-codes': ['invalid-input-secret'] }));
      const token = form.get('response');
      if (!token) return answer(res, 200, JSON.stringify({ success: false, 'error-codes': ['missing-input-response'] }));
      if (token === PASSING_TOKEN) return answer(res, 200, JSON.stringify({ success: true, challenge_ts: new Date().toISOString(), hostname: LOCALHOST, 'error-codes': [] }));
      return answer(res, 200, JSON.stringify({ success: false, 'error-codes': ['invalid-input-response'] }));
    });
  };

  const server = createServer(handle);
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const port = await listenOnLoopback(server, opts.port ?? 0);
  return {
    url: `http://${LOCALHOST}:${port}/siteverify`,
    calls,
    failNext: (...faults) => void queued.push(...faults),
    failAlways: (fault) => {
      always = fault;
    },
    close: () =>
      new Promise<void>((resolveClose) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolveClose());
      }),
  };
};
