import httpCors from '@middy/http-cors';
import httpSecurityHeaders from '@middy/http-security-headers';
import type { MiddlewareObj, Request } from '@middy/core';

/**
 * Headers on every response, errors and replays included (so it is the first layer: its `after`
 * and `onError` run last): security headers for a JSON API (@middy/http-security-headers),
 * `Cache-Control: no-store` (codes and tokens must not be cached by anything in between),
 * `Content-Type: application/json`, and CORS for the origins in CORS_ALLOWED_ORIGINS
 * (@middy/http-cors: other origins get no Access-Control-* header at all). API Gateway answers
 * preflights from the same list (serverless.yml), so they never reach the function.
 */
export interface ResponseHeadersOptions {
  corsAllowedOrigins: readonly string[];
  /** Default `no-store`; the JWKS (public keys, the same for everyone) is cacheable. */
  cacheControl?: string;
}

export const CORS_ALLOWED_HEADERS = 'content-type,idempotency-key';
export const CORS_EXPOSED_HEADERS = 'retry-after';

export const responseHeadersMiddleware = (opts: ResponseHeadersOptions): MiddlewareObj => {
  for (const key of Object.keys(opts)) if (key !== 'corsAllowedOrigins' && key !== 'cacheControl') throw new TypeError(`responseHeadersMiddleware: unknown option "${key}"`);
  const cors = httpCors({
    origins: [...opts.corsAllowedOrigins],
    headers: CORS_ALLOWED_HEADERS,
    methods: 'POST,OPTIONS',
    exposeHeaders: CORS_EXPOSED_HEADERS,
    maxAge: 600,
  });
  // Its defaults (nosniff, HSTS, no-referrer, no framing, …); the HTML-only ones stay off for JSON.
  const security = httpSecurityHeaders();
  const cacheControl = opts.cacheControl ?? 'no-store';

  const finish = async (request: Request): Promise<void> => {
    if (request.response === undefined) return;
    // Stryker disable next-line OptionalChaining: equivalent: @middy/http-cors always returns an `after`.
    await cors.after?.(request as never);
    // Stryker disable next-line OptionalChaining: equivalent: @middy/http-security-headers always returns an `after`.
    await security.after?.(request as never);
    const response = request.response as { headers?: Record<string, string> };
    response.headers ??= {};
    // http-cors adds its allow-headers/methods/max-age whatever the origin: an answer that does not
    // grant the caller's origin (or has none) carries no Access-Control-* header at all.
    const names = Object.keys(response.headers);
    if (!names.some((n) => n.toLowerCase() === 'access-control-allow-origin')) {
      for (const n of names) if (n.toLowerCase().startsWith('access-control-')) delete response.headers[n];
    }
    // The library writes some headers with no value (Server, X-Powered-By blanked, an empty Reporting-Endpoints).
    for (const [n, v] of Object.entries(response.headers)) if (v === undefined || v === '') delete response.headers[n];
    response.headers['Content-Type'] = 'application/json';
    // Errors are never cached, whatever the route.
    response.headers['Cache-Control'] = request.error ? 'no-store' : cacheControl;
  };

  return { after: finish, onError: finish };
};
