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
 * The DynamoDB rate limit, as a Middy layer before the provider call.
 *
 * before: takes every rule that applies (lib/ratelimit/limiter: one conditional write per rule,
 * in parallel). A refusal is 429 rate_limited with Retry-After (or 503 for a rule whose refusal
 * is 'unavailable', the shared daily budget); the answer never says which rule refused, the log
 * does (by rule name, never the number).
 * onError: when the provider certainly sent nothing (lib/errors providerSentNothing), what was
 * taken is given back, so a failed send does not cost the person their cooldown or budget.
 */
export interface RateLimitOptions<I> {
  store: Store;
  rules: readonly RateLimitRule<I>[];
  /** What the rules' `subject` functions read, from the request. */
  input: (request: Request) => I;
  now?: () => number;
}

const OPTION_KEYS = new Set(['store', 'rules', 'input', 'now']);
const GRANTS = Symbol('rate-limit grants');
type WithGrants = Request & { [GRANTS]?: Grant[] };

export const rateLimitMiddleware = <I>(opts: RateLimitOptions<I>): MiddlewareObj => {
  for (const key of Object.keys(opts)) if (!OPTION_KEYS.has(key)) throw new TypeError(`rateLimitMiddleware: unknown option "${key}"`);
  const { store, rules, input } = opts;
  const now = opts.now ?? Date.now;
  if (typeof store?.takeWindow !== 'function') throw new TypeError('rateLimitMiddleware: store is required');
  const names = new Set<string>();
  for (const rule of rules) {
    if (!/^[a-z0-9-]{1,40}$/.test(rule.name) || names.has(rule.name)) throw new TypeError(`rateLimitMiddleware: rule name "${rule.name}" must be unique, lower-case letters, digits and dashes`);
    names.add(rule.name);
    const size = rule.kind === 'window' ? rule.limit >= 1 && rule.windowSeconds >= 1 : rule.kind === 'gap' && rule.seconds >= 1;
    if (!size) throw new TypeError(`rateLimitMiddleware: rule "${rule.name}" needs a limit and window (or gap seconds) of at least 1`);
  }

  const rateLimitMiddlewareBefore = async (request: WithGrants): Promise<void> => {
    const keys = keysFor((request.context as unknown as SecretsContext).signingKey);
    const outcome = await takeAll(store, rules, input(request), (raw) => pseudonym(keys, 'rate-limit', raw), now());
    if (outcome.ok) {
      request[GRANTS] = outcome.grants;
      return;
    }
    const retryAfter = Math.max(...outcome.refusals.map((r) => r.retryAfterSeconds));
    for (const refusal of outcome.refusals) countRateLimited(refusal.rule);
    logger.info('send refused by rate limit', { rules: outcome.refusals.map((r) => r.rule), retryAfterSeconds: Math.ceil(retryAfter) });
    if (outcome.refusals.some((r) => r.refusal === 'unavailable')) throw new ServiceUnavailable('budget', retryAfter);
    throw new RateLimited(retryAfter);
  };

  const rateLimitMiddlewareOnError = async (request: WithGrants): Promise<void> => {
    const grants = request[GRANTS];
    if (grants === undefined || !providerSentNothing(request.error)) return;
    request[GRANTS] = undefined;
    await giveBack(store, grants);
    logger.info('rate limits given back after a send the provider refused', { rules: grants.map((g) => g.rule) });
  };

  return { before: rateLimitMiddlewareBefore, onError: rateLimitMiddlewareOnError };
};
