import { randomUUID } from 'node:crypto';
import type { MiddlewareObj, Request } from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2 } from 'aws-lambda';
import { IdempotencyConflict, InvalidRequest, providerMayHaveSent } from '../lib/errors';
import { logger } from '../lib/log';
import { openCode, sealCode } from '../lib/otp/codes';
import { keysFor, pseudonym } from '../lib/otp/keys';
import type { Store } from '../lib/store/types';
import type { SecretsContext } from './secrets';

/**
 * API.md's `Idempotency-Key` on send: the same key with the same body within 24 h gets the first
 * 201 again (no SMS, no limit taken: this layer sits before the rate limit); another body is 409.
 * A duplicate that arrives while the first is still running waits for it and gets its answer.
 * Errors are not remembered: the same key can be retried. With `newCode`, the record keeps the
 * request's code sealed (AES-GCM under the service-only `retryCode` key, lib/otp/codes sealCode),
 * so a retry re-delivers the very code the first attempt may have delivered (`idempotentCode`),
 * under the same provider idempotency key; codes are never derived from the key. After a failure
 * where the provider may have sent the SMS (timeout, 5xx), the record stays as "charged": the retry
 * then skips the rate limit (`limitsAlreadyTaken`), since the first attempt took them and the retry
 * cannot cost a second SMS; otherwise the person who got the code could not get an otpRequestId for
 * it for a whole cooldown. After a certain failure the record is dropped and the retry is a new send
 * with a new code; so is any request after the record's 24 hours.
 * Requests without the header cost nothing here: no DynamoDB call.
 *
 * Written here rather than with @aws-lambda-powertools/idempotency: see README, "Idempotency".
 */
export const IDEMPOTENCY_KEY_PATTERN = /^[A-Za-z0-9_\-:.]{8,128}$/;

export interface IdempotencyOptions {
  store: Store;
  /** Namespace of the keys (the route), so one key cannot collide across routes. */
  scope: string;
  /** The part of the request that must match for a replay (the validated body). */
  fingerprint: (request: Request<APIGatewayProxyEventV2>) => string;
  /** A fresh code for a new key, kept sealed in the record so that a retry re-delivers it. */
  newCode?: () => string;
  ttlSeconds?: number;
  /** A pending record older than this belongs to a dead invocation and may be taken over. */
  lockMs?: number;
  /** How long a parallel duplicate waits for the first answer. */
  maxWaitMs?: number;
  pollMs?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** Not an error: the way out of the pipeline with a remembered answer (see middleware/errors.ts). */
export class IdempotentReplay extends Error {
  override name = 'IdempotentReplay';
  constructor(readonly response: APIGatewayProxyResultV2) {
    super('idempotent replay');
  }
}

const OWNED = Symbol('idempotency record owned by this request');
type Owned = { key: string; owner: string; charged: boolean; code: string | undefined };

/** For the rate-limit middleware's `skip`: an earlier attempt with this key already took the limits. */
export const limitsAlreadyTaken = (request: Request): boolean => (request as WithOwned)[OWNED]?.charged === true;
type WithOwned = Request<APIGatewayProxyEventV2> & { [OWNED]?: Owned };
const KEPT_CODE = Symbol('code kept by the idempotency record');
/** For the handler (given the invocation's context): the code this Idempotency-Key's record keeps, if any. */
export const idempotentCode = (context: object): string | undefined => (context as { [KEPT_CODE]?: string })[KEPT_CODE];

const defaults = { ttlSeconds: 86400, lockMs: 30_000, maxWaitMs: 20_000, pollMs: 100 };
const OPTION_KEYS = new Set(['store', 'scope', 'fingerprint', 'newCode', 'ttlSeconds', 'lockMs', 'maxWaitMs', 'pollMs', 'now', 'sleep']);

const replay = (stored: string): IdempotentReplay => {
  const { statusCode, body } = JSON.parse(stored) as { statusCode: number; body: string };
  return new IdempotentReplay({ statusCode, headers: { 'Content-Type': 'application/json', 'Idempotent-Replayed': 'true' }, body });
};

export const idempotencyMiddleware = (opts: IdempotencyOptions): MiddlewareObj<APIGatewayProxyEventV2, APIGatewayProxyResultV2> => {
  for (const key of Object.keys(opts)) if (!OPTION_KEYS.has(key)) throw new TypeError(`idempotencyMiddleware: unknown option "${key}"`);
  const o = { ...defaults, ...opts };
  const now = o.now ?? Date.now;
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));

  const idempotencyMiddlewareBefore = async (request: WithOwned): Promise<void> => {
    // Never a code from an earlier invocation, should a runtime ever hand the same context object twice.
    (request.context as { [KEPT_CODE]?: string })[KEPT_CODE] = undefined;
    const header = request.event.headers?.['idempotency-key'];
    if (header === undefined) return;
    if (!IDEMPOTENCY_KEY_PATTERN.test(header)) {
      throw new InvalidRequest('Idempotency-Key must be 8 to 128 characters of A-Z a-z 0-9 _ - : .');
    }
    const keys = keysFor((request.context as unknown as SecretsContext).hashKey);
    const key = pseudonym(keys, `idempotency:${o.scope}`, header);
    // Stryker disable next-line StringLiteral: equivalent: the fingerprint is only ever compared with fingerprints made with the same label; any constant label gives the same comparisons.
    const fingerprint = pseudonym(keys, 'idempotency-body', o.fingerprint(request));
    const owner = randomUUID();
    const sealed = o.newCode === undefined ? undefined : sealCode(keys, o.newCode(), key);

    const begin = () => o.store.beginIdempotent(key, fingerprint, owner, now(), o.lockMs, o.ttlSeconds, sealed);
    const remaining = request.context.getRemainingTimeInMillis?.() ?? o.maxWaitMs + 1000;
    const giveUpAt = now() + Math.min(o.maxWaitMs, remaining - 1000);
    let state = await begin();
    for (;;) {
      if (state.state === 'acquired') {
        // A sealed code that no longer opens (the hash key was rotated) is replaced by a fresh one.
        const code = state.retryCode === undefined ? undefined : openCode(keys, state.retryCode, key);
        request[OWNED] = { key, owner, charged: state.charged, code };
        (request.context as { [KEPT_CODE]?: string })[KEPT_CODE] = code;
        return;
      }
      if (state.fingerprint !== fingerprint) throw new IdempotencyConflict();
      if (state.state === 'done') throw replay(state.response);
      if (state.state === 'charged') {
        // The first attempt ended uncertainly: this request takes over and retries it.
        state = await begin();
        continue;
      }
      if (now() >= giveUpAt) break;
      await sleep(o.pollMs);
      // Gone: the first attempt failed for certain and dropped it; this request starts afresh.
      state = (await o.store.readIdempotent(key)) ?? (await begin());
    }
    throw new IdempotencyConflict('A request with this Idempotency-Key is still being processed. Retry in a moment.');
  };

  const idempotencyMiddlewareAfter = async (request: WithOwned): Promise<void> => {
    const owned = request[OWNED];
    const response = request.response as { statusCode?: number; body?: string } | undefined;
    if (owned === undefined || response?.statusCode !== 201) return;
    // The code is on its way: failing to remember the answer must not turn it into an error. The
    // record then stays pending until lockMs, and a retry with the key re-sends the same (sealed) code
    // under the same provider idempotency key, which the provider deduplicates.
    await o.store
      .completeIdempotent(owned.key, owned.owner, JSON.stringify({ statusCode: response.statusCode, body: response.body }))
      .catch((error: unknown) => logger.warn('could not store the idempotent response', { error }));
  };

  const idempotencyMiddlewareOnError = async (request: WithOwned): Promise<void> => {
    const owned = request[OWNED];
    if (owned === undefined) return;
    request[OWNED] = undefined;
    // Best effort: if this fails, the lock expires after lockMs and the key can be used again.
    const keep = owned.charged || providerMayHaveSent(request.error);
    await (keep ? o.store.chargeIdempotent(owned.key, owned.owner) : o.store.abandonIdempotent(owned.key, owned.owner)).catch(() => undefined);
  };

  return { before: idempotencyMiddlewareBefore, after: idempotencyMiddlewareAfter, onError: idempotencyMiddlewareOnError };
};
