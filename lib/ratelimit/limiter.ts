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
 * Units other racers hold for a moment. Parallel requests take their rules in no common order, so
 * a request can be refused by a window that is full only of units taken by racers that are refused
 * elsewhere and about to give back; left at that, a burst of 40 sends under a cap of 5 sends 4 and
 * tells the rest to wait for the hour's end. So a request refused by windows only (docs/rate-limits.md,
 * "Parallel requests, give-back, and exact"):
 *   1. gives back its windows (it keeps a cooldown it holds: nobody else can take that);
 *   2. looks at each refusing window (one consistent read). Each take stamps the window with its
 *      time (`takenAt`), so a full window whose last take is older than `holdMs` is full of units
 *      that are kept: spent. A full window with a recent take is looked at again, with growing pauses,
 *      until it has room or its last take is `holdMs` old;
 *   3. when every refusing window has room, takes its windows again one at a time, in the rules'
 *      order. Racers that do this all take in the same order, so none holds what another waits on;
 *      a refusal there goes back to 2.
 * Nothing is waited on longer than `maxWaitMs`. A request refused by a gap (another request holds the
 * number's cooldown) is refused; it only looks (2) at its refusing windows, for Retry-After: the longest wait
 * among the refusing gaps and the refusing windows known to be spent. A window full only of racers' units
 * does not count.
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

/** How a refused request waits for units that racers hold for a moment (see above). */
export interface Patience {
  /**
   * A unit taken longer ago than this is kept or has been given back. Unset: ten times this request's slowest
   * round trip (`holdFor`), within MIN_HOLD_MS and MAX_HOLD_MS.
   */
  holdMs?: number;
  /** The longest a refused request waits before answering (unset: MAX_WAIT_MS). */
  maxWaitMs?: number;
  sleep?: (ms: number) => Promise<void>;
  /**
   * Real time (epoch ms) for `takenAt` stamps and waits (default `realTime`); the `now` of a take only places
   * its windows.
   */
  clock?: () => number;
}
export interface TakeOptions extends Patience {
  /** Whether the number is trusted (numbers that are do not draw on `pool` rules). */
  trusted?: Promise<boolean>;
  /** The clock `now` came from (default Date.now): Retry-After after a wait counts from when the answer is given. */
  requestClock?: () => number;
}

/**
 * Epoch ms from the monotonic clock: what holds are measured with, so that a test that stands Date.now still
 * (virtual time) does not stand the waits still too. Lambda clocks agree to a few ms; holds are 200 ms or more.
 */
export const realTime = (): number => performance.timeOrigin + performance.now();

/**
 * A hold lasts one to a few round trips of the racer (its other takes, then its give-back). A refused
 * request waits for ten of its own round trips (the refused one, and each look since: the slowest), at
 * least 200 ms and at most 3 s: a few ms each on DynamoDB, hundreds on a loaded emulator. A refusal is
 * delayed by that much at most, and only while the refusing window's last take is that recent.
 */
export const MIN_HOLD_MS = 200;
export const MAX_HOLD_MS = 3000;
/** The longest a refused request waits for racers before it answers. */
export const MAX_WAIT_MS = MAX_HOLD_MS + 1500;
const HOLD_ROUND_TRIPS = 10;
const FIRST_PAUSE_MS = 20;
const MAX_LOOKS = 10;
export const sleepMs = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** How long a racer may hold a unit, for a request whose DynamoDB round trip took `roundTripMs`. */
export const holdFor = (roundTripMs: number): number => Math.min(MAX_HOLD_MS, Math.max(MIN_HOLD_MS, HOLD_ROUND_TRIPS * roundTripMs));

type Timing = Required<Patience> & { fixedHold: boolean };
const timing = (p: Patience, roundTripMs: number): Timing => ({
  holdMs: p.holdMs ?? holdFor(roundTripMs),
  fixedHold: p.holdMs !== undefined,
  maxWaitMs: p.maxWaitMs ?? MAX_WAIT_MS,
  sleep: p.sleep ?? sleepMs,
  clock: p.clock ?? realTime,
});

/**
 * Looks at a window that refused a take until it has room (`true`) or is known to be spent (`false`):
 * full, and its last take `holdMs` old (or the wait is over). A failed read counts as spent (safe side).
 */
const awaitRoom = async (store: Store, w: WindowCounter, t: Timing, deadline: number): Promise<boolean> => {
  let pause = FIRST_PAUSE_MS;
  let holdMs = t.holdMs;
  // A bounded number of looks, whatever the clock does (an injected one may stand still).
  for (let look = 0; look < MAX_LOOKS; look++) {
    const readAt = t.clock();
    const seen = await store.readWindow(w).catch(() => undefined);
    if (seen === undefined) return false;
    if (seen.n < w.limit) return true;
    const now = t.clock();
    // A request refused early in a burst saw a short round trip; the burst's stragglers see long ones. A slow
    // look says the store is busy now: the hold grows with it.
    if (!t.fixedHold) holdMs = Math.max(holdMs, holdFor(now - readAt));
    const settledAt = Math.min((seen.takenAt ?? -Infinity) + holdMs, deadline);
    if (now >= settledAt) return false;
    await t.sleep(Math.min(pause, settledAt - now));
    pause *= 2;
  }
  return false;
};

/**
 * A window that just refused a request that holds something else it will not give up (verify's claimed
 * attempt), taken as soon as racers' units let it; `false` once the window is spent. `roundTripMs`: how
 * long the request's refused round trip took (it sets the hold, as in takeAll).
 */
export const takeWindowPatiently = async (store: Store, w: WindowCounter, roundTripMs: number, patience: Patience = {}): Promise<boolean> => {
  const t = timing(patience, roundTripMs);
  const deadline = t.clock() + t.maxWaitMs;
  for (let tries = 0; tries < MAX_LOOKS; tries++) {
    if (!(await awaitRoom(store, w, t, deadline))) return false;
    if ((await store.takeWindow(w, t.clock())) !== undefined) return true;
  }
  return false;
};

type Planned<I> = { rule: RateLimitRule<I>; grant: Grant };

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

const windowOf = <I>(p: Planned<I>): WindowCounter => (p.grant as { window: WindowCounter }).window;
/** Seconds from `at` until this rule alone would let the request through. */
const windowWait = <I>(p: Planned<I>, at: number) => ((windowOf(p).window + 1) * (p.rule as { windowSeconds: number }).windowSeconds * 1000 - at) / 1000;
const refusalOf = <I>(p: Planned<I>, retryAfterSeconds: number): Refusal => ({ rule: p.rule.name, retryAfterSeconds, refusal: p.rule.refusal ?? 'rate_limited' });

/** One take; a refusal says how long until this rule alone would let the request through. */
const take = async <I>(store: Store, p: Planned<I>, now: number, clock: () => number): Promise<Refusal | undefined> => {
  const { grant } = p;
  if ('window' in grant) {
    if ((await store.takeWindow(grant.window, clock())) !== undefined) return undefined;
    return refusalOf(p, windowWait(p, now));
  }
  const taken = await store.takeInterval(grant.gap);
  if (taken.ok) return undefined;
  const until = taken.until ?? grant.gap.until;
  // Never more than the gap itself: a concurrent take stamped a few ms later (or by a Lambda whose
  // clock runs ahead) would otherwise make a 60 s cooldown answer Retry-After: 61.
  return refusalOf(p, Math.min(grant.gap.until - now, until - now) / 1000);
};

type Result = { status: 'granted' } | { status: 'refused'; refusal: Refusal } | { status: 'failed'; reason: unknown };
const settleTake = <I>(store: Store, p: Planned<I>, now: number, clock: () => number): Promise<Result> =>
  take(store, p, now, clock).then(
    (refusal): Result => (refusal === undefined ? { status: 'granted' } : { status: 'refused', refusal }),
    (reason: unknown): Result => ({ status: 'failed', reason }),
  );
const unavailable = (reason: unknown) => (reason instanceof ServiceUnavailable ? reason : new ServiceUnavailable('store', undefined, reason));

export const takeAll = async <I>(
  store: Store,
  rules: readonly RateLimitRule<I>[],
  input: I,
  pseudonymise: Pseudonymise,
  now: number,
  options: TakeOptions = {},
): Promise<TakeOutcome> => {
  const clock = options.clock ?? realTime;
  const requestClock = options.requestClock ?? Date.now;
  const startedAt = clock();
  const requestStartedAt = requestClock();
  const planned = plan(rules, input, pseudonymise, now);
  const [results, trust] = await Promise.all([
    Promise.all(planned.map((p) => settleTake(store, p, now, clock))),
    (options.trusted ?? Promise.resolve(false)).then(
      (trusted) => ({ ok: true as const, trusted }),
      (reason: unknown) => ({ ok: false as const, reason }),
    ),
  ]);
  const grantsWhere = (keep: (p: Planned<I>) => boolean) => planned.filter((p, i) => results[i]!.status === 'granted' && keep(p)).map((p) => p.grant);

  // A trusted number's pool units go straight back; its pool refusals do not count.
  const trusted = trust.ok && trust.trusted;
  const applies = (p: Planned<I>) => !(trusted && p.rule.pool !== undefined);
  const isWindow = (p: Planned<I>) => p.rule.kind === 'window';

  const failure = results.find((r): r is Extract<Result, { status: 'failed' }> => r.status === 'failed')?.reason ?? (trust.ok ? undefined : trust.reason);
  if (failure !== undefined) {
    await giveBack(store, grantsWhere(() => true));
    throw unavailable(failure);
  }

  const refused = planned.flatMap((p, i) => (applies(p) && results[i]!.status === 'refused' ? [i] : []));
  if (refused.length === 0) return { ok: true, grants: grantsWhere(applies), settled: giveBack(store, grantsWhere((p) => !applies(p))) };
  const t = timing(options, clock() - startedAt);

  // The current time in the request's clock, for Retry-After after a wait.
  const at = () => now + (requestClock() - requestStartedAt);
  const refuse = (refusals: Refusal[], named: Refusal[]): TakeOutcome => ({
    ok: false,
    refusals,
    // Nothing is known to be spent (every refusal was a unit a racer held for a moment): try again at once.
    retryAfterSeconds: named.length > 0 ? Math.max(...named.map((r) => r.retryAfterSeconds)) : 1,
    refusal: (named.length > 0 ? named : refusals).some((r) => r.refusal === 'unavailable') ? 'unavailable' : 'rate_limited',
  });
  const refusalAt = (i: number) => (results[i] as Extract<Result, { status: 'refused' }>).refusal;

  const deadline = startedAt + t.maxWaitMs;
  if (refused.some((i) => !isWindow(planned[i]!))) {
    // Another request holds a cooldown: refused. Retry-After also names the refusing windows that are spent
    // (full once racers' units are settled, as below); a window that has room by then does not count.
    await giveBack(store, grantsWhere(() => true));
    const windows = refused.filter((i) => isWindow(planned[i]!));
    const spent = await Promise.all(windows.map(async (i) => !(await awaitRoom(store, windowOf(planned[i]!), t, deadline))));
    const named = [...refused.filter((i) => !isWindow(planned[i]!)), ...windows.filter((_, k) => spent[k])].map(refusalAt);
    return refuse(refused.map(refusalAt), named);
  }

  // Refused by windows only: steps 1 to 3 above.
  const gaps = grantsWhere((p) => !isWindow(p));
  await giveBack(store, grantsWhere(isWindow));
  const inOrder = planned.filter((p) => isWindow(p) && applies(p));
  let waitingOn = refused.map((i) => planned[i]!);
  for (let round = 0; ; round++) {
    const room = round < MAX_LOOKS ? await Promise.all(waitingOn.map((p) => awaitRoom(store, windowOf(p), t, deadline))) : waitingOn.map(() => false);
    if (room.some((r) => !r)) {
      await giveBack(store, gaps);
      const refusals = waitingOn.map((p) => refusalOf(p, windowWait(p, at())));
      return refuse(refusals, refusals.filter((_, k) => !room[k]));
    }
    const taken: Grant[] = [];
    let refusedAt: Planned<I> | undefined;
    for (const p of inOrder) {
      const r = await settleTake(store, p, now, t.clock);
      if (r.status === 'failed') {
        await giveBack(store, [...taken, ...gaps]);
        throw unavailable(r.reason);
      }
      if (r.status === 'refused') {
        refusedAt = p;
        break;
      }
      taken.push(p.grant);
    }
    if (refusedAt === undefined) return { ok: true, grants: [...gaps, ...taken], settled: Promise.resolve() };
    await giveBack(store, taken);
    waitingOn = [refusedAt];
  }
};

/** Best effort: a give-back that fails leaves the budget spent (safe side), never lets more through. */
export const giveBack = async (store: Store, grants: readonly Grant[]): Promise<void> => {
  await Promise.allSettled(grants.map((g) => ('window' in g ? store.giveBackWindow(g.window) : store.giveBackInterval(g.gap))));
};
