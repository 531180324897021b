import { ServiceUnavailable } from '../errors';
import type { Interval, Store, WindowCounter } from '../store/types';
import type { RateLimitRule } from './rules';

/**
 * Takes every applicable rule at once: one conditional write per rule, all in parallel
 * (one DynamoDB round trip). If any rule refuses, what the others took is given back
 * before answering, so a refused request never holds budget and never lets an extra
 * SMS through. A store error fails closed (503) after giving back what was taken.
 */
export type Grant = { rule: string; window: WindowCounter } | { rule: string; gap: Interval };
export interface Refusal {
  rule: string;
  retryAfterSeconds: number;
  refusal: 'rate_limited' | 'unavailable';
}
export type TakeOutcome = { ok: true; grants: Grant[] } | { ok: false; refusals: Refusal[] };

/** Turns a raw subject (phone number, IP) into the pseudonym stored in keys. */
export type Pseudonymise = (rawSubject: string) => string;

export const takeAll = async <I>(
  store: Store,
  rules: readonly RateLimitRule<I>[],
  input: I,
  pseudonymise: Pseudonymise,
  now: number,
): Promise<TakeOutcome> => {
  const planned: { rule: RateLimitRule<I>; grant: Grant }[] = [];
  for (const rule of rules) {
    const raw = rule.subject(input);
    if (raw === undefined) continue;
    const subject = pseudonymise(raw);
    if (rule.kind === 'window') {
      const window = Math.floor(now / 1000 / rule.windowSeconds);
      const expiresAt = (window + 1) * rule.windowSeconds + 3600;
      planned.push({ rule, grant: { rule: rule.name, window: { rule: rule.name, subject, window, limit: rule.limit, expiresAt } } });
    } else {
      planned.push({ rule, grant: { rule: rule.name, gap: { rule: rule.name, subject, now, until: now + rule.seconds * 1000 } } });
    }
  }

  const results = await Promise.allSettled(
    planned.map(async ({ rule, grant }): Promise<Refusal | undefined> => {
      if ('window' in grant) {
        if ((await store.takeWindow(grant.window)) !== undefined) return undefined;
        const windowEnd = (grant.window.window + 1) * (rule as { windowSeconds: number }).windowSeconds * 1000;
        return { rule: rule.name, retryAfterSeconds: (windowEnd - now) / 1000, refusal: rule.refusal ?? 'rate_limited' };
      }
      const taken = await store.takeInterval(grant.gap);
      if (taken.ok) return undefined;
      const until = taken.until ?? grant.gap.until;
      // Never more than the gap itself: a concurrent take stamped a few ms later (or by a Lambda whose
      // clock runs ahead) would otherwise make a 60 s cooldown answer Retry-After: 61.
      return { rule: rule.name, retryAfterSeconds: Math.min(grant.gap.until - now, until - now) / 1000, refusal: rule.refusal ?? 'rate_limited' };
    }),
  );

  const granted = planned.filter((_, i) => results[i]?.status === 'fulfilled' && results[i].value === undefined).map((p) => p.grant);
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  const refusals = results.flatMap((r) => (r.status === 'fulfilled' && r.value !== undefined ? [r.value] : []));
  if (failure !== undefined || refusals.length > 0) {
    await giveBack(store, granted);
    if (failure !== undefined) {
      throw failure.reason instanceof ServiceUnavailable ? failure.reason : new ServiceUnavailable('store', undefined, failure.reason);
    }
    return { ok: false, refusals };
  }
  return { ok: true, grants: granted };
};

/** Best effort: a give-back that fails leaves the budget spent (safe side), never lets more through. */
export const giveBack = async (store: Store, grants: readonly Grant[]): Promise<void> => {
  await Promise.allSettled(grants.map((g) => ('window' in g ? store.giveBackWindow(g.window) : store.giveBackInterval(g.gap))));
};
