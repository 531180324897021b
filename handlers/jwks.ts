import { loadConfig } from '../lib/config';
import { parseTokenKey } from '../lib/otp/token';
import { httpApi } from '../middleware/http-api';
import { secretsMiddleware, type WithSecrets } from '../middleware/secrets';

/**
 * GET /.well-known/jwks.json: the token key's public halves (current and previous), for checkout backends.
 * It reads only the token key secret, and publishes only the public members parseTokenKey picks out.
 * Five minutes of caching: a backend meeting an unknown kid refetches (docs/keys.md).
 */
const config = loadConfig();

export const handler = httpApi({ corsAllowedOrigins: config.corsAllowedOrigins, originVerify: { secretId: config.originVerifySecretId, cacheSeconds: config.secretsCacheSeconds }, cacheControl: 'public, max-age=300' })
  .use(secretsMiddleware({ secrets: { tokenKey: config.tokenKeySecretId }, cacheSeconds: config.secretsCacheSeconds }))
  .handler(async (_event, context) => ({
    statusCode: 200,
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(parseTokenKey((context as WithSecrets<'tokenKey'>).tokenKey).jwks),
  }));
