import secretsManager from '@middy/secrets-manager';
import { clearCache, getCache } from '@middy/util';
import type { MiddlewareObj, Request } from '@middy/core';
import type { Context } from 'aws-lambda';
import { ServiceUnavailable } from '../lib/errors';
import { keysFor } from '../lib/otp/keys';
import { parseTokenKey } from '../lib/otp/token';

/**
 * The secrets of API.md "Keys" through @middy/secrets-manager, each function asking only for those it uses
 * (send: apiKey, hashKey; verify: hashKey, tokenKey; jwks: tokenKey), so its IAM role can name only those.
 * Fetched at init (prefetch), cached for `cacheSeconds` (a rotated secret is picked up once the cache
 * expires), and a failed fetch is not cached (the middleware drops it), so the next invocation tries again.
 * A secret that cannot be fetched or is malformed (a hash key that is not 32+ random bytes in base64, a token
 * key that is not the documented JSON) is 503 service_unavailable, logged with the variable to fix and never
 * the value: without its keys the function can do nothing safely. Neither is cached: the next invocation
 * fetches again.
 */
export interface SecretsContext {
  /** The StartMessaging API key (API_KEY_SECRET_ID). */
  apiKey: string;
  /** The hash key, base64 as stored (HASH_SECRET_ID); lib/otp/keys.ts derives the sub-keys. */
  hashKey: string;
  /** The token key secret, parsed JSON (TOKEN_KEY_SECRET_ID); lib/otp/token.ts reads it. */
  tokenKey: unknown;
  /** The bot challenge provider's secret (CHALLENGE_SECRET_ID). */
  challengeSecret: string;
}
export type SecretName = keyof SecretsContext;
export type WithSecrets<K extends SecretName = SecretName, C = Context> = C & Pick<SecretsContext, K>;

export interface SecretsOptions {
  /** Which secrets this function needs: context name → secret id (from lib/config.ts). */
  secrets: Partial<Record<SecretName, string>>;
  cacheSeconds: number;
}

const plainString = (variable: string) => (value: unknown): void => {
  if (typeof value !== 'string' || value === '') throw new Error(`${variable} names a secret that is empty or not a plain string`);
};

// Each check is cheap on a warm container: keysFor and parseTokenKey cache per secret value.
const CHECKS: Record<SecretName, (value: unknown) => void> = {
  apiKey: plainString('API_KEY_SECRET_ID'),
  challengeSecret: plainString('CHALLENGE_SECRET_ID'),
  hashKey: (value) => void keysFor(value as string),
  tokenKey: (value) => void parseTokenKey(value),
};

const OPTION_KEYS = new Set(['secrets', 'cacheSeconds']);

export const secretsMiddleware = (opts: SecretsOptions): MiddlewareObj => {
  for (const key of Object.keys(opts)) if (!OPTION_KEYS.has(key)) throw new TypeError(`secretsMiddleware: unknown option "${key}"`);
  const wanted = Object.entries(opts.secrets).filter((e): e is [SecretName, string] => typeof e[1] === 'string');
  for (const [name] of wanted) if (!(name in CHECKS)) throw new TypeError(`secretsMiddleware: unknown secret "${name}"`);
  if (wanted.length === 0) throw new TypeError('secretsMiddleware: name at least one secret');
  const maxAgeMs = opts.cacheSeconds * 1000;
  // One cache entry per set of secrets, so two functions loaded in one process never share a fetch list.
  // Stryker disable next-line StringLiteral: equivalent: no secret name is a concatenation of others, so the names joined without a separator are still one key per set
  const names = wanted.map(([name]) => name).sort().join(',');
  const cacheKey = `otp-secrets:${names}`;
  // Cached "forever" as far as Middy knows; this layer expires it. Middy's own expiry refreshes
  // from a timer between invocations, where a failed fetch would be an unhandled rejection.
  const inner = secretsManager({
    fetchData: Object.fromEntries(wanted),
    cacheKey,
    cacheExpiry: -1,
    setToContext: true,
    // Bounded like the DynamoDB client: a Secrets Manager that never answers is a 503, not a hung invocation
    // (the SDK's default has no request timeout, and without throwOnRequestTimeout one only warns).
    awsClientOptions: { maxAttempts: 2, requestHandler: { connectionTimeout: 1000, requestTimeout: 2000, throwOnRequestTimeout: true } },
  });
  let fetchedAt = Date.now();
  // The prefetch runs at init with nobody awaiting it: a failure there must not become an
  // unhandled rejection (which fails the Lambda init); the request that needs it sees it.
  for (const pending of Object.values((getCache(cacheKey).value ?? {}) as Record<string, Promise<unknown> | undefined>)) {
    // Stryker disable next-line OptionalChaining: equivalent: right after the prefetch every cached value is a fetch promise (middy refetches entries a failure cleared), so neither ?. ever short-circuits
    pending?.catch?.(() => undefined);
  }

  const secretsMiddlewareBefore = async (request: Request): Promise<void> => {
    const now = Date.now();
    if (now - fetchedAt > maxAgeMs) {
      clearCache(cacheKey);
      fetchedAt = now;
    }
    try {
      await inner.before!(request as never);
    } catch (error) {
      throw new ServiceUnavailable('secrets', undefined, error);
    }
    const ctx = request.context as unknown as Record<string, unknown>;
    for (const [name] of wanted) {
      try {
        CHECKS[name](ctx[name]);
      } catch (error) {
        // Not cached, like a failed fetch: the next invocation fetches again, so a fixed secret is picked up
        // at once. The cause names the variable (HASH_SECRET_ID, ...) for the log; the client sees a 503.
        clearCache(cacheKey);
        throw new ServiceUnavailable('secrets', undefined, error);
      }
    }
  };
  return { before: secretsMiddlewareBefore };
};
