import secretsManager from '@middy/secrets-manager';
import { clearCache, getCache } from '@middy/util';
import type { MiddlewareObj, Request } from '@middy/core';
import type { Context } from 'aws-lambda';
import { ServiceUnavailable } from '../lib/errors';

/**
 * Both secrets of API.md through @middy/secrets-manager: fetched at init (prefetch), cached for
 * `cacheSeconds` (a rotated secret is picked up once the cache expires), and a failed fetch is not
 * cached (the middleware drops it), so the next invocation tries again. Any failure to get them
 * is 503 service_unavailable: without a key nothing can be hashed, signed or sent.
 */
export interface SecretsContext {
  apiKey: string;
  signingKey: string;
  /** Only for a function given `challengeSecretId`. */
  challengeSecret?: string;
}
export type WithSecrets<C = Context> = C & SecretsContext;

export interface SecretsOptions {
  apiKeySecretId: string;
  signingSecretId: string;
  /** The bot challenge's secret (send, when CHALLENGE_PROVIDER is not none). */
  challengeSecretId?: string | undefined;
  cacheSeconds: number;
}

const CACHE_KEY = 'otp-secrets';

export const secretsMiddleware = (opts: SecretsOptions): MiddlewareObj => {
  const maxAgeMs = opts.cacheSeconds * 1000;
  // Cached "forever" as far as Middy knows; this layer expires it. Middy's own expiry refreshes
  // from a timer between invocations, where a failed fetch would be an unhandled rejection.
  const inner = secretsManager({
    fetchData: {
      apiKey: opts.apiKeySecretId,
      signingKey: opts.signingSecretId,
      ...(opts.challengeSecretId ? { challengeSecret: opts.challengeSecretId } : {}),
    },
    cacheKey: CACHE_KEY,
    cacheExpiry: -1,
    setToContext: true,
    // Bounded like the DynamoDB client: a Secrets Manager that never answers is a 503, not a hung invocation
    // (the SDK's default has no request timeout, and without throwOnRequestTimeout one only warns).
    awsClientOptions: { maxAttempts: 2, requestHandler: { connectionTimeout: 1000, requestTimeout: 2000, throwOnRequestTimeout: true } },
  });
  let fetchedAt = Date.now();
  // The prefetch runs at init with nobody awaiting it: a failure there must not become an
  // unhandled rejection (which fails the Lambda init); the request that needs it sees it.
  for (const pending of Object.values((getCache(CACHE_KEY).value ?? {}) as Record<string, Promise<unknown> | undefined>)) {
    pending?.catch?.(() => undefined);
  }

  const secretsMiddlewareBefore = async (request: Request): Promise<void> => {
    const now = Date.now();
    if (now - fetchedAt > maxAgeMs) {
      clearCache(CACHE_KEY);
      fetchedAt = now;
    }
    try {
      await inner.before!(request as never);
    } catch (error) {
      throw new ServiceUnavailable('secrets', undefined, error);
    }
    const ctx = request.context as unknown as Partial<SecretsContext>;
    if (typeof ctx.apiKey !== 'string' || ctx.apiKey === '' || typeof ctx.signingKey !== 'string' || ctx.signingKey.length < 16) {
      throw new ServiceUnavailable('secrets', undefined, new Error('a secret is empty or not a plain string'));
    }
  };
  return { before: secretsMiddlewareBefore };
};
