import { ServiceUnavailable } from '../errors';
import type { Interval, Store, WindowCounter } from '../store/types';
import type { RateLimitRule } from './rules';

/**
 * Takes every applicable rule at once: one conditional write per rule, all in parallel and in
 * parallel with the trust lookup (one DynamoDB round trip). If any rule refuses, what the others
 * took is given back before answering, so a refused request never holds budget and never lets an
 * extra SMS through. A store error fails closed (503) after giving back what was taken.
 *
 * Pools: a rule with `pool: 'new-numbers'` is taken by every request (its trust is not known
 * before the round trip) and given back at once, refusal ignored, when the number turns out to
 * be trusted. The give-back runs while the caller goes on (`settled`), so it costs no round trip.
 *
 * Units other racers hold for a moment: a request may be refused by a window that is full only
 * because refused racers have not given back yet. Two things keep that from costing an SMS or
 * an honest answer (docs/rate-limits.md, "Races"):
 *   - a request that holds a gap (it won the number's cooldown), or whose only refusals are
 *     pools, takes its refused windows again after a moment (twice at most), by when the
 *     racers have given back;
 *   - Retry-After is the longest wait among the refusing gaps and the refusing windows that are
 *     still full a moment after the refusal (one consistent read each, on refusals only): a
 *     window full only of racers' units does not count.
 */
export type Grant = { rule: string; window: WindowCounter } | { rule: string; gap: Interval };
export interface Refusal {
  rule: string;
  retryAfterSeconds: number;
  refusal: 'rate_limited' | 'unavailable';
}
export type TakeOutcome =
  | { ok: true; grants: Grant[]; settled: Promise<void> }
  | { ok: false; refusals: Refusal[]; retryAfterSeconds: number; refusal: 'rate_limited' | 'unavailable' };

/** Turns a raw subject (phone number, IP) into the pseudonym stored in keys. */
export type Pseudonymise = (rawSubject: string) => string;

export interface TakeOptions {
  /** Whether the number is trusted (numbers that are do not draw on `pool` rules). */
  trusted?: Promise<boolean>;
  /** Pauses before taking refused windows again (see above). */
  retryDelaysMs?: readonly number[];
  /** Pause before a refused request looks at which refusing windows are really spent. */
  settleMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

type Planned<I> = { rule: RateLimitRule<I>; grant: Grant };
/** Pauses before a refused window is taken again (send, and verify's client failure budget). */
export const DEFAULT_RETRY_DELAYS = [25, 75] as const;
const DEFAULT_SETTLE_MS = 25;
export const sleepMs = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const plan = <I>(rules: readonly RateLimitRule<I>[], input: I, pseudonymise: Pseudonymise, now: number): Planned<I>[] => {
  const planned: Planned<I>[] = [];
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
  return planned;
};

/** One take; a refusal says how long until this rule alone would let the request through. */
const take = async <I>(store: Store, { rule, grant }: Planned<I>, now: number): Promise<Refusal | undefined> => {
  const refusal = rule.refusal ?? 'rate_limited';
  if ('window' in grant) {
    if ((await store.takeWindow(grant.window)) !== undefined) return undefined;
    const windowEnd = (grant.window.window + 1) * (rule as { windowSeconds: number }).windowSeconds * 1000;
    return { rule: rule.name, retryAfterSeconds: (windowEnd - now) / 1000, refusal };
  }
  const taken = await store.takeInterval(grant.gap);
  if (taken.ok) return undefined;
  const until = taken.until ?? grant.gap.until;
  // Never more than the gap itself: a concurrent take stamped a few ms later (or by a Lambda whose
  // clock runs ahead) would otherwise make a 60 s cooldown answer Retry-After: 61.
  return { rule: rule.name, retryAfterSeconds: Math.min(grant.gap.until - now, until - now) / 1000, refusal };
};

type Result = { status: 'granted' } | { status: 'refused'; refusal: Refusal } | { status: 'failed'; reason: unknown };
const settleTake = <I>(store: Store, p: Planned<I>, now: number): Promise<Result> =>
  take(store, p, now).then(
    (refusal): Result => (refusal === undefined ? { status: 'granted' } : { status: 'refused', refusal }),
    (reason: unknown): Result => ({ status: 'failed', reason }),
  );

export const takeAll = async <I>(
  store: Store,
  rules: readonly RateLimitRule<I>[],
  input: I,
  pseudonymise: Pseudonymise,
  now: number,
  options: TakeOptions = {},
): Promise<TakeOutcome> => {
  const planned = plan(rules, input, pseudonymise, now);
  const [results, trust] = await Promise.all([
    Promise.all(planned.map((p) => settleTake(store, p, now))),
    (options.trusted ?? Promise.resolve(false)).then(
      (trusted) => ({ ok: true as const, trusted }),
      (reason: unknown) => ({ ok: false as const, reason }),
    ),
  ]);
  const grantsWhere = (keep: (p: Planned<I>) => boolean) => planned.filter((p, i) => results[i]!.status === 'granted' && keep(p)).map((p) => p.grant);

  // A trusted number's pool units go straight back; its pool refusals do not count.
  const trusted = trust.ok && trust.trusted;
  const applies = (p: Planned<I>) => !(trusted && p.rule.pool !== undefined);
  const released = grantsWhere((p) => !applies(p));

  const failure = results.find((r): r is Extract<Result, { status: 'failed' }> => r.status === 'failed')?.reason ?? (trust.ok ? undefined : trust.reason);
  if (failure !== undefined) {
    await giveBack(store, grantsWhere(() => true));
    throw failure instanceof ServiceUnavailable ? failure : new ServiceUnavailable('store', undefined, failure);
  }

  const refusedIndexes = () => planned.flatMap((p, i) => (applies(p) && results[i]!.status === 'refused' ? [i] : []));
  let refused = refusedIndexes();
  const holdsGap = planned.some((p, i) => p.rule.kind === 'gap' && results[i]!.status === 'granted');
  const onlyWindows = refused.every((i) => planned[i]!.rule.kind === 'window');
  const onlyPools = refused.every((i) => planned[i]!.rule.pool !== undefined);
  if (refused.length > 0 && onlyWindows && (holdsGap || onlyPools)) {
    for (const delay of options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS) {
      await (options.sleep ?? sleepMs)(delay);
      const again = await Promise.all(refused.map((i) => settleTake(store, planned[i]!, now)));
      refused.forEach((index, k) => {
        results[index] = again[k]!;
      });
      const failed = again.find((r): r is Extract<Result, { status: 'failed' }> => r.status === 'failed');
      if (failed !== undefined) {
        await giveBack(store, grantsWhere(() => true));
        throw failed.reason instanceof ServiceUnavailable ? failed.reason : new ServiceUnavailable('store', undefined, failed.reason);
      }
      refused = refusedIndexes();
      if (refused.length === 0) break;
    }
  }

  if (refused.length > 0) {
    await giveBack(store, grantsWhere(() => true));
    const refusalAt = (i: number) => (results[i] as Extract<Result, { status: 'refused' }>).refusal;
    // Honest Retry-After: a window counts only if it is still full once racers have given back.
    const windows = refused.filter((i) => planned[i]!.rule.kind === 'window');
    let spent = windows;
    if (windows.length > 0) {
      await (options.sleep ?? sleepMs)(options.settleMs ?? DEFAULT_SETTLE_MS);
      const counts = await Promise.all(
        windows.map((i) => {
          const w = (planned[i]!.grant as { window: WindowCounter }).window;
          return store.countWindow(w).then((n) => n >= w.limit, () => true);
        }),
      );
      spent = windows.filter((_, k) => counts[k]);
    }
    const refusals = refused.map(refusalAt);
    const named = [...refused.filter((i) => planned[i]!.rule.kind === 'gap'), ...spent].map(refusalAt);
    return {
      ok: false,
      refusals,
      // Nothing is spent after all (every refusal was a unit a racer held for a moment): try again at once.
      retryAfterSeconds: named.length > 0 ? Math.max(...named.map((r) => r.retryAfterSeconds)) : 1,
      refusal: (named.length > 0 ? named : refusals).some((r) => r.refusal === 'unavailable') ? 'unavailable' : 'rate_limited',
    };
  }
  return { ok: true, grants: grantsWhere(applies), settled: giveBack(store, released) };
};

/** Best effort: a give-back that fails leaves the budget spent (safe side), never lets more through. */
export const giveBack = async (store: Store, grants: readonly Grant[]): Promise<void> => {
  await Promise.allSettled(grants.map((g) => ('window' in g ? store.giveBackWindow(g.window) : store.giveBackInterval(g.gap))));
};
