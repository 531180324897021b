import type { MiddlewareObj, Request } from '@middy/core';
import { RateLimited, ServiceUnavailable, providerSentNothing } from '../lib/errors';
import { logger } from '../lib/log';
import { countRateLimited } from '../lib/metrics';
import { keysFor, pseudonym } from '../lib/otp/keys';
import { giveBack, takeAll, type Grant } from '../lib/ratelimit/limiter';
import type { RateLimitRule } from '../lib/ratelimit/rules';
import type { Store } from '../lib/store/types';
import type { SecretsContext } from './secrets';

/**
 * The DynamoDB rate limit, as a Middy layer before the use case. It only counts: what the request
 * does once let through is the handler's business.
 *
 * before: takes every rule that applies (lib/ratelimit/limiter: one conditional write per rule,
 * in parallel, with the number's trust looked up in the same round trip). A refusal is 429
 * rate_limited with Retry-After (or 503 for a rule whose refusal is 'unavailable', the shared
 * budgets); the answer never says which rule refused, the log does (by rule name, never the number).
 * after: waits for the pool units a trusted number gave back while the handler ran.
 * onError: when the provider certainly sent nothing (lib/errors providerSentNothing), what was
 * taken is given back, so a failed send does not cost the person their cooldown or budget.
 */
export interface RateLimitOptions<I> {
  store: Store;
  rules: readonly RateLimitRule<I>[];
  /** What the rules' `subject` functions read, from the request. */
  input: (request: Request) => I;
  /** Whether the request's number is trusted (it then draws on no `pool` rule). */
  trusted?: (request: Request) => Promise<boolean>;
  /** Requests already charged (an idempotent retry of a send whose outcome was uncertain) take nothing. */
  skip?: (request: Request) => boolean;
  now?: () => number;
  /** How long a unit another request took may still be given back (unset: lib/ratelimit/limiter.ts holdFor, 200 ms to 3 s). */
  holdMs?: number;
}

const OPTION_KEYS = new Set(['store', 'rules', 'input', 'trusted', 'skip', 'now', 'holdMs']);
const TAKEN = Symbol('rate-limit grants');
type Taken = { grants: Grant[]; settled: Promise<void> };
type WithGrants = Request & { [TAKEN]?: Taken };

const RULES = Symbol('rules taken');
/** For the handler (given the invocation's context): the rules this request drew on (none when it took none). */
export const rulesTaken = (context: object): readonly string[] => (context as { [RULES]?: string[] })[RULES] ?? [];

export const rateLimitMiddleware = <I>(opts: RateLimitOptions<I>): MiddlewareObj => {
  for (const key of Object.keys(opts)) if (!OPTION_KEYS.has(key)) throw new TypeError(`rateLimitMiddleware: unknown option "${key}"`);
  const { store, rules, input, trusted, skip, holdMs } = opts;
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
    (request.context as { [RULES]?: string[] })[RULES] = [];
    if (skip?.(request)) {
      request[TAKEN] = { grants: [], settled: Promise.resolve() };
      return;
    }
    const keys = keysFor((request.context as unknown as SecretsContext).hashKey);
    const outcome = await takeAll(store, rules, input(request), (raw) => pseudonym(keys, 'rate-limit', raw), now(), {
      ...(trusted ? { trusted: trusted(request) } : {}),
      requestClock: now,
      // Unset stays unset: the limiter reads an undefined holdMs as no holdMs (its own holdFor).
      holdMs,
    });
    if (outcome.ok) {
      request[TAKEN] = { grants: outcome.grants, settled: outcome.settled };
      (request.context as { [RULES]?: string[] })[RULES] = outcome.grants.map((g) => g.rule);
      return;
    }
    for (const refusal of outcome.refusals) countRateLimited(refusal.rule);
    logger.info('send refused by rate limit', { rules: outcome.refusals.map((r) => r.rule), retryAfterSeconds: Math.ceil(outcome.retryAfterSeconds) });
    if (outcome.refusal === 'unavailable') throw new ServiceUnavailable('budget', outcome.retryAfterSeconds);
    throw new RateLimited(outcome.retryAfterSeconds);
  };

  const rateLimitMiddlewareAfter = async (request: WithGrants): Promise<void> => {
    // Stryker disable next-line OptionalChaining: equivalent: after runs only once every before completed (Middy skips the after stack on an early response; a throw goes to onError), and before sets TAKEN on both of its returns.
    await request[TAKEN]?.settled;
  };

  const rateLimitMiddlewareOnError = async (request: WithGrants): Promise<void> => {
    const taken = request[TAKEN];
    if (taken === undefined) return;
    await taken.settled;
    if (!providerSentNothing(request.error)) return;
    request[TAKEN] = undefined;
    await giveBack(store, taken.grants);
    logger.info('rate limits given back after a send the provider refused', { rules: taken.grants.map((g) => g.rule) });
  };

  return { before: rateLimitMiddlewareBefore, after: rateLimitMiddlewareAfter, onError: rateLimitMiddlewareOnError };
};
