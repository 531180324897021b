'use strict';
/**
 * `provider.httpApi.cors` for serverless.yml, built from the same `corsAllowedOrigins` param that the
 * functions get as CORS_ALLOWED_ORIGINS (a comma-separated string, so that `--param` on the command line
 * can set it). Serverless variables cannot split a string into a list; this file does, once.
 *
 * No origins: `false`, i.e. no CORS configuration at all on the HTTP API (a browser on another origin is
 * refused; same-origin pages and server-to-server callers are unaffected).
 */
module.exports = async ({ resolveVariable }) => {
  const raw = await resolveVariable('param:corsAllowedOrigins');
  const origins = String(raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (origins.length === 0) return false;
  return {
    allowedOrigins: origins,
    allowedHeaders: ['content-type', 'idempotency-key'],
    allowedMethods: ['GET', 'POST', 'OPTIONS'], // GET: /.well-known/jwks.json
    // A browser reads Retry-After (429 and 503 answers) only when it is exposed.
    exposedResponseHeaders: ['retry-after'],
    maxAge: 600,
  };
};
