/**
 * lib/ratelimit/limiter.ts `takeAll` against the real DynamoDB adapter on dynalite, with an injected clock:
 * fixed UTC windows and their roll-over, Retry-After to the window's end, the cooldown gap to the
 * millisecond, give-back of what a refused request took, exactness under parallel takes, failing closed.
 * Subjects are used raw here (identity pseudonymiser) so the items can be read back by key.
 */
import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { ServiceUnavailable } from '../../lib/errors';
import { giveBack, takeAll, takeWindowPatiently, type TakeOutcome } from '../../lib/ratelimit/limiter';
import type { RateLimitRule } from '../../lib/ratelimit/rules';
import { createDynamoStore } from '../../lib/store/dynamodb';
import type { Store } from '../../lib/store/types';
import { useDynalite } from '../support/dynalite';

type In = { phone: string; ip?: string };
const identity = (s: string) => s;
const HOUR_MS = 3_600_000;
/** 2030-01-01T10:00:00Z: the start of an hour (and 10 h into a day). */
const H = Date.UTC(2030, 0, 1, 10);

const db = useDynalite('limiter');
let client: DynamoDBDocumentClient;
let table: string;
let store: Store;
beforeEach(() => ({ client, table, store } = db));

const item = async (pk: string) => (await client.send(new GetCommand({ TableName: table, Key: { pk }, ConsistentRead: true }))).Item;
const count = async (rule: string, windowSeconds: number, now: number, subject: string) =>
  Number((await item(`RL#${rule}#${Math.floor(now / 1000 / windowSeconds)}#${subject}`))?.n ?? 0);

const hourRule = (limit: number, name = 'phone-hour'): RateLimitRule<In> => ({ name, kind: 'window', limit, windowSeconds: 3600, subject: (r) => r.phone });
const ipRule = (limit: number): RateLimitRule<In> => ({ name: 'ip-hour', kind: 'window', limit, windowSeconds: 3600, subject: (r) => r.ip });
const gapRule = (seconds: number): RateLimitRule<In> => ({ name: 'phone-cooldown', kind: 'gap', seconds, subject: (r) => r.phone });

/**
 * One request at a time: nothing is held by a racer, so a full window is spent at once (`holdMs: 0`), and the
 * clock stands at the request's `now`, so Retry-After is exact to the millisecond.
 */
const take = (rules: RateLimitRule<In>[], input: In, now: number) => takeAll(store, rules, input, identity, now, { holdMs: 0, clock: () => now, requestClock: () => now });
/** Parallel requests: the limiter's own patience, with the real clock. */
const race = (rules: RateLimitRule<In>[], input: In, now: number) => takeAll(store, rules, input, identity, now);
const refusals = (o: TakeOutcome) => (o.ok ? [] : o.refusals);

describe('fixed UTC windows', () => {
  it('allows exactly `limit` takes in a window, refuses the next until the window ends, then allows again', async () => {
    const rules = [hourRule(3)];
    for (const t of [H, H + 1, H + 1000]) expect((await take(rules, { phone: 'A' }, t)).ok).toBe(true);

    const refused = await take(rules, { phone: 'A' }, H + 10 * 60_000);
    expect(refused).toEqual({ ok: false, refusals: [{ rule: 'phone-hour', retryAfterSeconds: 50 * 60, refusal: 'rate_limited' }], retryAfterSeconds: 50 * 60, refusal: 'rate_limited' });
    // One millisecond before the boundary: still the same window, 1 ms to go.
    expect(refusals(await take(rules, { phone: 'A' }, H + HOUR_MS - 1))).toEqual([{ rule: 'phone-hour', retryAfterSeconds: 0.001, refusal: 'rate_limited' }]);
    // At the boundary a new window (a new item) starts with the full limit.
    for (let i = 0; i < 3; i++) expect((await take(rules, { phone: 'A' }, H + HOUR_MS + i)).ok).toBe(true);
    expect((await take(rules, { phone: 'A' }, H + HOUR_MS + 5)).ok).toBe(false);
    expect(await count('phone-hour', 3600, H, 'A')).toBe(3);
    expect(await count('phone-hour', 3600, H + HOUR_MS, 'A')).toBe(3);
  });

  it('windows are aligned to UTC, not to the first take: a burst at 10:59:59 and 11:00:00 gets twice the limit', async () => {
    const rules = [hourRule(2)];
    const late = H + HOUR_MS - 1000;
    expect((await take(rules, { phone: 'A' }, late)).ok).toBe(true);
    expect((await take(rules, { phone: 'A' }, late)).ok).toBe(true);
    expect(refusals(await take(rules, { phone: 'A' }, late))[0]?.retryAfterSeconds).toBe(1);
    expect((await take(rules, { phone: 'A' }, H + HOUR_MS)).ok).toBe(true);
    expect((await take(rules, { phone: 'A' }, H + HOUR_MS)).ok).toBe(true);
    expect((await take(rules, { phone: 'A' }, H + HOUR_MS)).ok).toBe(false);
  });

  it('a day window ends at UTC midnight, whatever the hour of the first take', async () => {
    const rules: RateLimitRule<In>[] = [{ name: 'global-day', kind: 'window', limit: 1, windowSeconds: 86_400, subject: () => 'all', refusal: 'unavailable' }];
    expect((await take(rules, { phone: 'A' }, H)).ok).toBe(true);
    const refused = refusals(await take(rules, { phone: 'B' }, H + 1234));
    expect(refused).toEqual([{ rule: 'global-day', retryAfterSeconds: (Date.UTC(2030, 0, 2) - (H + 1234)) / 1000, refusal: 'unavailable' }]);
    expect((await take(rules, { phone: 'B' }, Date.UTC(2030, 0, 2))).ok).toBe(true);
  });

  it('windows of different subjects and rules are independent items', async () => {
    const rules = [hourRule(1)];
    expect((await take(rules, { phone: 'A' }, H)).ok).toBe(true);
    expect((await take(rules, { phone: 'B' }, H)).ok).toBe(true);
    expect((await take([hourRule(1, 'other-hour')], { phone: 'A' }, H)).ok).toBe(true);
    expect((await take(rules, { phone: 'A' }, H)).ok).toBe(false);
  });
});

describe('the gap rule (cooldown)', () => {
  it('refuses until exactly `seconds` after the last take, to the millisecond, and says how long is left', async () => {
    const rules = [gapRule(60)];
    const t0 = H + 123;
    expect((await take(rules, { phone: 'A' }, t0)).ok).toBe(true);
    expect(refusals(await take(rules, { phone: 'A' }, t0 + 1))).toEqual([{ rule: 'phone-cooldown', retryAfterSeconds: 59.999, refusal: 'rate_limited' }]);
    expect(refusals(await take(rules, { phone: 'A' }, t0 + 59_999))).toEqual([{ rule: 'phone-cooldown', retryAfterSeconds: 0.001, refusal: 'rate_limited' }]);
    expect((await take(rules, { phone: 'A' }, t0 + 60_000)).ok).toBe(true);
    // The new take starts a new gap from its own time.
    expect(refusals(await take(rules, { phone: 'A' }, t0 + 60_001))[0]?.retryAfterSeconds).toBe(59.999);
    expect((await item('GAP#phone-cooldown#A'))?.until).toBe(t0 + 120_000);
  });

  it('never says to wait longer than the gap, even when a concurrent take was stamped by a clock a little ahead', async () => {
    const rules = [gapRule(60)];
    expect((await take(rules, { phone: 'A' }, H + 5)).ok).toBe(true);
    // Another Lambda (or a request whose clock was read a few ms earlier) arrives "before" the winner.
    expect(refusals(await take(rules, { phone: 'A' }, H))[0]?.retryAfterSeconds).toBe(60);
  });

  it('is not a window: it does not reset at the top of the hour', async () => {
    const rules = [gapRule(60)];
    expect((await take(rules, { phone: 'A' }, H - 1000)).ok).toBe(true);
    expect(refusals(await take(rules, { phone: 'A' }, H))[0]?.retryAfterSeconds).toBe(59);
  });
});

describe('several rules at once', () => {
  it('a request refused by one rule gives back what it took from the others', async () => {
    const rules = [gapRule(60), hourRule(5), ipRule(1)];
    expect((await take(rules, { phone: 'A', ip: 'X' }, H)).ok).toBe(true);
    expect(refusals(await take(rules, { phone: 'B', ip: 'X' }, H)).map((r) => r.rule)).toEqual(['ip-hour']);
    // B's cooldown and hour count were given back: nothing is held for B.
    expect(await count('phone-hour', 3600, H, 'B')).toBe(0);
    expect(await item('GAP#phone-cooldown#B')).toBeUndefined();
    expect((await take(rules, { phone: 'B', ip: 'Y' }, H)).ok).toBe(true);
    expect(await count('ip-hour', 3600, H, 'X')).toBe(1);
  });

  it('lists every rule that refused, each with its own Retry-After and kind', async () => {
    const rules: RateLimitRule<In>[] = [gapRule(60), hourRule(1), { name: 'global-day', kind: 'window', limit: 1, windowSeconds: 86_400, subject: () => 'all', refusal: 'unavailable' }];
    expect((await take(rules, { phone: 'A' }, H)).ok).toBe(true);
    const got = refusals(await take(rules, { phone: 'A' }, H + 1000));
    expect(got).toEqual([
      { rule: 'phone-cooldown', retryAfterSeconds: 59, refusal: 'rate_limited' },
      { rule: 'phone-hour', retryAfterSeconds: 3599, refusal: 'rate_limited' },
      { rule: 'global-day', retryAfterSeconds: 14 * 3600 - 1, refusal: 'unavailable' },
    ]);
  });

  it('a rule whose subject is undefined does not apply (no item, no refusal)', async () => {
    const rules = [hourRule(5), ipRule(1)];
    for (let i = 0; i < 3; i++) expect((await take(rules, { phone: `P${i}` }, H)).ok).toBe(true);
    const all = await client.send(new ScanCommand({ TableName: table }));
    expect(all.Items?.map((i) => String(i.pk)).filter((pk) => pk.includes('ip-hour'))).toEqual([]);
  });

  it('returns one grant per applicable rule, which giveBack releases', async () => {
    const rules = [gapRule(60), hourRule(1)];
    const first = await take(rules, { phone: 'A' }, H);
    if (!first.ok) throw new Error('first take refused');
    expect(first.grants.map((g) => g.rule)).toEqual(['phone-cooldown', 'phone-hour']);
    await giveBack(store, first.grants);
    expect((await take(rules, { phone: 'A' }, H + 1)).ok).toBe(true);
  });

  it('hands the pseudonymiser every raw subject and stores only what it returns', async () => {
    const seen: string[] = [];
    const rules = [gapRule(60), hourRule(5), ipRule(5)];
    await takeAll(store, rules, { phone: '+919876543210', ip: '198.51.100.4' }, (raw) => (seen.push(raw), `h(${raw.length})`), H);
    expect(seen.sort()).toEqual(['+919876543210', '+919876543210', '198.51.100.4']);
    const keys = ((await client.send(new ScanCommand({ TableName: table }))).Items ?? []).map((i) => String(i.pk)).sort();
    expect(keys).toEqual([`GAP#phone-cooldown#h(13)`, `RL#ip-hour#${H / HOUR_MS}#h(12)`, `RL#phone-hour#${H / HOUR_MS}#h(13)`]);
  });
});

describe('exact under parallel takes', () => {
  it('40 parallel takes of a window with limit 7: exactly 7 granted, the counter says 7', async () => {
    const rules = [hourRule(7)];
    const outcomes = await Promise.all(Array.from({ length: 40 }, (_, i) => race(rules, { phone: 'A' }, H + i)));
    expect(outcomes.filter((o) => o.ok)).toHaveLength(7);
    expect(await count('phone-hour', 3600, H, 'A')).toBe(7);
  });

  it('40 parallel takes of a gap: exactly one granted, and it gives nothing back that the others need', async () => {
    const rules = [gapRule(30), hourRule(100)];
    const outcomes = await Promise.all(Array.from({ length: 40 }, () => race(rules, { phone: 'A' }, H)));
    expect(outcomes.filter((o) => o.ok)).toHaveLength(1);
    // The 39 refused ones gave their hour unit back.
    expect(await count('phone-hour', 3600, H, 'A')).toBe(1);
  });

  it('40 parallel takes across a binding IP rule and per-number rules never hold more than the limits', async () => {
    const rules = [gapRule(60), hourRule(2), ipRule(5)];
    const outcomes = await Promise.all(Array.from({ length: 40 }, (_, i) => race(rules, { phone: `P${i % 8}`, ip: 'X' }, H)));
    // One cooldown winner per number (8), of which the IP's 5 get through: no more, and no fewer.
    expect(outcomes.filter((o) => o.ok)).toHaveLength(5);
    expect(await count('ip-hour', 3600, H, 'X')).toBe(5);
    let held = 0;
    for (let p = 0; p < 8; p++) held += await count('phone-hour', 3600, H, `P${p}`);
    expect(held).toBe(5);
  });

  it('two windows of one number (5 an hour, 10 a day), 40 parallel takes: exactly 5, and every refusal names the end of the hour', async () => {
    // The racers take the two windows in no common order: some win the hour and lose the day, others the reverse.
    const day: RateLimitRule<In> = { name: 'phone-day', kind: 'window', limit: 10, windowSeconds: 86_400, subject: (r) => r.phone };
    const rules = [hourRule(5), day, ipRule(1)];
    const outcomes = await Promise.all(Array.from({ length: 40 }, (_, i) => race(rules, { phone: 'A', ip: `I${i}` }, H)));
    expect(outcomes.filter((o) => o.ok)).toHaveLength(5);
    expect(await count('phone-hour', 3600, H, 'A')).toBe(5);
    expect(await count('phone-day', 86_400, H, 'A')).toBe(5);
    for (const o of outcomes) {
      if (o.ok) continue;
      expect(o.refusal).toBe('rate_limited');
      expect(o.retryAfterSeconds).toBeGreaterThan(3590);
      expect(o.retryAfterSeconds).toBeLessThanOrEqual(3600);
    }
  });

  it('a pool refused only because trusted numbers held it for a moment: the new number still gets the last unit', async () => {
    const pool: RateLimitRule<In> = { name: 'new-numbers-day', kind: 'window', limit: 1, windowSeconds: 86_400, subject: () => 'all', refusal: 'unavailable', pool: 'new-numbers' };
    const trusted = (phone: string) => Promise.resolve(phone !== 'NEW');
    const outcomes = await Promise.all(
      ['T1', 'T2', 'T3', 'NEW', 'T4', 'T5'].map((phone) => takeAll(store, [pool], { phone }, identity, H, { trusted: trusted(phone) })),
    );
    expect(outcomes.every((o) => o.ok)).toBe(true);
    await Promise.all(outcomes.map((o) => (o.ok ? o.settled : undefined)));
    expect(await count('new-numbers-day', 86_400, H, 'all')).toBe(1);
  });
});

describe('how long a refused request waits for racers', () => {
  /** A clock the test moves, and a sleep that moves it (no real waiting). */
  const virtual = (start: number) => {
    const clock = { now: start, slept: [] as number[] };
    return { clock, patience: { clock: () => clock.now, requestClock: () => clock.now, sleep: async (ms: number) => void (clock.slept.push(ms), (clock.now += ms)) } };
  };

  it('a window whose last unit was taken longer ago than holdMs is spent: refused at once, without a pause', async () => {
    const rules = [hourRule(1)];
    const { clock, patience } = virtual(H);
    expect((await takeAll(store, rules, { phone: 'A' }, identity, H, patience)).ok).toBe(true);
    clock.now += 1000;
    const refused = await takeAll(store, rules, { phone: 'A' }, identity, H + 1000, patience);
    expect(refused.ok).toBe(false);
    expect(clock.slept).toEqual([]);
    expect((refused as Extract<TakeOutcome, { ok: false }>).retryAfterSeconds).toBe(3599);
  });

  it('a full window with a recent take is looked at again, with growing pauses, until that take is holdMs old; then refused', async () => {
    const rules = [hourRule(1)];
    const { clock, patience } = virtual(H);
    expect((await takeAll(store, rules, { phone: 'A' }, identity, H, patience)).ok).toBe(true);
    clock.now += 100;
    const refused = await takeAll(store, rules, { phone: 'A' }, identity, H + 100, { ...patience, holdMs: 500 });
    expect(refused.ok).toBe(false);
    expect(clock.slept).toEqual([20, 40, 80, 160, 100]);
    expect(clock.now).toBe(H + 500);
    // Retry-After counts from when the answer is given, not from when the request arrived.
    expect((refused as Extract<TakeOutcome, { ok: false }>).retryAfterSeconds).toBe(3599.5);
  });

  it('the wait ends at maxWaitMs even while racers keep taking', async () => {
    const rules = [hourRule(1)];
    const { clock, patience } = virtual(H);
    expect((await takeAll(store, rules, { phone: 'A' }, identity, H, patience)).ok).toBe(true);
    const refused = await takeAll(store, rules, { phone: 'A' }, identity, H, { ...patience, holdMs: 10_000, maxWaitMs: 300 });
    expect(refused.ok).toBe(false);
    expect(clock.now).toBe(H + 300);
  });

  it('a clock that stands still cannot make it wait for ever', async () => {
    const rules = [hourRule(1)];
    const sleep = jest.fn(async () => undefined);
    expect((await takeAll(store, rules, { phone: 'A' }, identity, H, { clock: () => H, sleep })).ok).toBe(true);
    expect((await takeAll(store, rules, { phone: 'A' }, identity, H, { clock: () => H, sleep })).ok).toBe(false);
    expect(sleep.mock.calls.length).toBeLessThanOrEqual(10);
  });

  it('takeWindowPatiently: taken once a racer gives back; refused once the window is spent', async () => {
    const w = { rule: 'verify-failures-ip-hour', subject: 'X', window: 1, limit: 1, expiresAt: 9_999_999_999 };
    expect(await store.takeWindow(w, Date.now())).toBe(1);
    // Held by a racer that gives back 50 ms later.
    const later = takeWindowPatiently(store, w, 20);
    setTimeout(() => void store.giveBackWindow(w), 50);
    expect(await later).toBe(true);
    expect(await takeWindowPatiently(store, w, 20, { holdMs: 0 })).toBe(false);
    expect((await store.readWindow(w)).n).toBe(1);
  });
});

describe('give-back', () => {
  it('a window is given back once per grant and never below zero', async () => {
    const rules = [hourRule(2)];
    const a = await take(rules, { phone: 'A' }, H);
    if (!a.ok) throw new Error('refused');
    await giveBack(store, a.grants);
    await giveBack(store, a.grants);
    expect(await count('phone-hour', 3600, H, 'A')).toBe(0);
    expect((await take(rules, { phone: 'A' }, H)).ok).toBe(true);
    expect((await take(rules, { phone: 'A' }, H)).ok).toBe(true);
    expect((await take(rules, { phone: 'A' }, H)).ok).toBe(false);
  });

  it('giving back an old gap claim does not release a newer claim', async () => {
    const rules = [gapRule(10)];
    const old = await take(rules, { phone: 'A' }, H);
    if (!old.ok) throw new Error('refused');
    expect((await take(rules, { phone: 'A' }, H + 10_000)).ok).toBe(true);
    await giveBack(store, old.grants);
    expect(refusals(await take(rules, { phone: 'A' }, H + 10_001))[0]?.retryAfterSeconds).toBe(9.999);
  });
});

describe('failing closed', () => {
  /** The real store, except that one rule's take fails the way an unreachable DynamoDB does. */
  const failing = (rule: string, error: unknown): Store => ({
    ...store,
    takeWindow: (c, at) => (c.rule === rule ? Promise.reject(error) : store.takeWindow(c, at)),
  });

  it('a store error is 503 service_unavailable, and what the other rules took is given back', async () => {
    const rules: RateLimitRule<In>[] = [gapRule(60), hourRule(5), ipRule(5)];
    const broken = failing('ip-hour', new Error('connect ECONNREFUSED'));
    const err = await takeAll(broken, rules, { phone: 'A', ip: 'X' }, identity, H).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServiceUnavailable);
    expect((err as ServiceUnavailable).reason).toBe('store');
    expect(await count('phone-hour', 3600, H, 'A')).toBe(0);
    expect(await item('GAP#phone-cooldown#A')).toBeUndefined();
  });

  it('a ServiceUnavailable from the store is passed on as it is', async () => {
    const original = new ServiceUnavailable('store', undefined, new Error('timeout'));
    await expect(takeAll(failing('phone-hour', original), [hourRule(5)], { phone: 'A' }, identity, H)).rejects.toBe(original);
  });

  it('the real adapter turns an unreachable endpoint into ServiceUnavailable, not a refusal', async () => {
    const dead = DynamoDBDocumentClient.from(
      new DynamoDBClient({ endpoint: 'http://127.0.0.1:9', region: 'ap-south-1', maxAttempts: 1, credentials: { accessKeyId: 'x', secretAccessKey: 'x' } }),
    );
    try {
      const err = await takeAll(createDynamoStore({ table, client: dead }), [gapRule(60), hourRule(5)], { phone: 'A' }, identity, H).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ServiceUnavailable);
    } finally {
      dead.destroy();
    }
  });
});

describe('the adapter reads a refusal the way real DynamoDB returns it', () => {
  /**
   * DynamoDB (unlike dynalite) returns the blocking item with ConditionalCheckFailedException when asked to
   * (ReturnValuesOnConditionCheckFailure), in raw AttributeValue form: lib-dynamodb does not unmarshall errors.
   */
  const refusingClient = (rawItem: Record<string, unknown>) =>
    ({
      send: async () => {
        throw Object.assign(new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} }), { Item: rawItem });
      },
    }) as unknown as DynamoDBDocumentClient;

  it('a refused cooldown reports the blocking `until`, so Retry-After is the time left, not the whole gap', async () => {
    const real = createDynamoStore({ table, client: refusingClient({ pk: { S: 'GAP#phone-cooldown#A' }, until: { N: String(H + 20_000) }, ttl: { N: '1' } }) });
    expect(await real.takeInterval({ rule: 'phone-cooldown', subject: 'A', now: H, until: H + 60_000 })).toEqual({ ok: false, until: H + 20_000 });
    const outcome = await takeAll(real, [gapRule(60)], { phone: 'A' }, identity, H);
    expect(refusals(outcome)[0]?.retryAfterSeconds).toBe(20);
  });

  it('a refused claim reads the record (whatever the failure carries) and tells "exhausted" (429) from "gone" (410)', async () => {
    const item = { pk: 'OTP#s', codeId: 'c1', codeHash: 'h', expiresAt: H + 300_000, attempts: 3, sentAt: H };
    const readingClient = (stored: Record<string, unknown>) => {
      const sent: string[] = [];
      const client = {
        sent,
        send: async (command: object) => {
          sent.push(command.constructor.name);
          if (command instanceof GetCommand) return { Item: stored };
          throw Object.assign(new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} }), { Item: { pk: { S: 'OTP#s' } } });
        },
      };
      return client;
    };
    const spent = readingClient(item);
    expect(await createDynamoStore({ table, client: spent as unknown as DynamoDBDocumentClient }).claimAttempt('s', 'c1', 3, H + 1000, H + 1000)).toEqual({ ok: false, reason: 'exhausted' });
    expect(spent.sent).toEqual(['UpdateCommand', 'GetCommand']);
    const used = readingClient({ ...item, attempts: 1, usedAt: H + 10 });
    expect(await createDynamoStore({ table, client: used as unknown as DynamoDBDocumentClient }).claimAttempt('s', 'c1', 3, H + 1000, H + 1000)).toEqual({ ok: false, reason: 'gone' });
    const other = readingClient(item);
    expect(await createDynamoStore({ table, client: other as unknown as DynamoDBDocumentClient }).claimAttempt('s', 'c0', 3, H + 1000, H + 1000)).toEqual({ ok: false, reason: 'gone' });
  });
});
