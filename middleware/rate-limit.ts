import type { MiddlewareObj, Request } from '@middy/core';
import { RateLimited, ServiceUnavailable, providerSentNothing } from '../lib/errors';
import { logger } from '../lib/log';
import { countRateLimited } from '../lib/metrics';
import { keysFor, pseudonym } from '../lib/otp/keys';
import { giveBack, takeAll, type Grant, type TakeOutcome } from '../lib/ratelimit/limiter';
import type { RateLimitRule } from '../lib/ratelimit/rules';
import type { Store } from '../lib/store/types';
import type { SecretsContext } from './secrets';

/**
 * The DynamoDB rate limit, as a Middy layer before the provider call.
 *
 * before: takes every rule that applies (lib/ratelimit/limiter: one conditional write per rule,
 * in parallel). A refusal is 429 rate_limited with Retry-After (or 503 for a rule whose refusal
 * is 'unavailable', the shared daily budget); the answer never says which rule refused, the log
 * does (by rule name, never the number).
 * `afterTaken`: a write the route needs once the limits are taken (send: storing the new code),
 * made right after the takes succeed (or at once when `skip` says the request is already charged);
 * the function it resolves to undoes it and runs whenever the takes are given back. A refused send
 * makes no such write, so it leaves no trace. (Not issued in
 * the same round trip as the takes: in a burst, every refused send's write would replace the code
 * of the send that won, and their undos, landing in any order, can leave a refused send's code
 * current, so the code that was delivered no longer verifies.)
 * onError: when the provider certainly sent nothing (lib/errors providerSentNothing), what was
 * taken is given back (and `afterTaken` undone), so a failed send does not cost the person their
 * cooldown, budget or pending code.
 */
export interface RateLimitOptions<I> {
  store: Store;
  rules: readonly RateLimitRule<I>[];
  /** What the rules' `subject` functions read, from the request. */
  input: (request: Request) => I;
  afterTaken?: (request: Request) => Promise<Undo>;
  /** Requests already charged (an idempotent retry of a send whose outcome was uncertain) take nothing. */
  skip?: (request: Request) => boolean;
  now?: () => number;
}
export type Undo = () => Promise<void>;

const OPTION_KEYS = new Set(['store', 'rules', 'input', 'afterTaken', 'skip', 'now']);
const TAKEN = Symbol('rate-limit grants');
type WithGrants = Request & { [TAKEN]?: { grants: Grant[]; undo: Undo | undefined } };
const undoQuietly = async (undo: Undo | undefined): Promise<void> => {
  // Best effort, like a give-back: if it fails the newer code simply stays current.
  await undo?.().catch((error: unknown) => logger.warn('could not undo the write made after the rate limit', { error }));
};

export const rateLimitMiddleware = <I>(opts: RateLimitOptions<I>): MiddlewareObj => {
  for (const key of Object.keys(opts)) if (!OPTION_KEYS.has(key)) throw new TypeError(`rateLimitMiddleware: unknown option "${key}"`);
  const { store, rules, input, afterTaken, skip } = opts;
  const now = opts.now ?? Date.now;
  if (typeof store?.takeWindow !== 'function') throw new TypeError('rateLimitMiddleware: store is required');
  const names = new Set<string>();
  for (const rule of rules) {
    if (!/^[a-z0-9-]{1,40}$/.test(rule.name) || names.has(rule.name)) throw new TypeError(`rateLimitMiddleware: rule name "${rule.name}" must be unique, lower-case letters, digits and dashes`);
    names.add(rule.name);
    const whole = (n: number) => Number.isSafeInteger(n) && n >= 1;
    const size = rule.kind === 'window' ? whole(rule.limit) && whole(rule.windowSeconds) : rule.kind === 'gap' && whole(rule.seconds);
    if (!size) throw new TypeError(`rateLimitMiddleware: rule "${rule.name}" needs a whole-number limit and window (or gap seconds) of at least 1`);
  }

  const rateLimitMiddlewareBefore = async (request: WithGrants): Promise<void> => {
    const keys = keysFor((request.context as unknown as SecretsContext).hashKey);
    const outcome: TakeOutcome = skip?.(request)
      ? { ok: true, grants: [] }
      : await takeAll(store, rules, input(request), (raw) => pseudonym(keys, 'rate-limit', raw), now());
    if (outcome.ok) {
      let undo: Undo | undefined;
      try {
        undo = await afterTaken?.(request);
      } catch (error) {
        await giveBack(store, outcome.grants);
        throw error;
      }
      request[TAKEN] = { grants: outcome.grants, undo };
      return;
    }
    const retryAfter = Math.max(...outcome.refusals.map((r) => r.retryAfterSeconds));
    for (const refusal of outcome.refusals) countRateLimited(refusal.rule);
    logger.info('send refused by rate limit', { rules: outcome.refusals.map((r) => r.rule), retryAfterSeconds: Math.ceil(retryAfter) });
    if (outcome.refusals.some((r) => r.refusal === 'unavailable')) throw new ServiceUnavailable('budget', retryAfter);
    throw new RateLimited(retryAfter);
  };

  const rateLimitMiddlewareOnError = async (request: WithGrants): Promise<void> => {
    const taken = request[TAKEN];
    if (taken === undefined || !providerSentNothing(request.error)) return;
    request[TAKEN] = undefined;
    await Promise.all([giveBack(store, taken.grants), undoQuietly(taken.undo)]);
    logger.info('rate limits given back after a send the provider refused', { rules: taken.grants.map((g) => g.rule) });
  };

  return { before: rateLimitMiddlewareBefore, onError: rateLimitMiddlewareOnError };
};
