/**
 * lib/ratelimit: what issue 15's mutation run of the limiter and the rules (on their unit tests) found
 * unpinned, stated as behaviour: the rules' list as API.md describes it, IPv6 subjects whose tail reaches the
 * /64, and the limiter's waiting (a fixed hold is not stretched; a failed look refuses), its counters' TTL,
 * the pool when no trust is given, the Retry-After of a request refused by a cooldown and a spent window, and
 * a store failure while taking again in order.
 */
import { loadConfig } from '../../lib/config';
import { ServiceUnavailable } from '../../lib/errors';
import { takeAll, type TakeOutcome } from '../../lib/ratelimit/limiter';
import { ipSubject, sendRules, verifyFailureRule, type RateLimitRule } from '../../lib/ratelimit/rules';
import type { Store } from '../../lib/store/types';
import { useDynalite } from '../support/dynalite';

type In = { phone: string; ip?: string };
const identity = (s: string) => s;
/** 2030-01-01T10:00:00Z */
const H = Date.UTC(2030, 0, 1, 10);
const hour = (limit: number, name = 'phone-hour'): RateLimitRule<In> => ({ name, kind: 'window', limit, windowSeconds: 3600, subject: (r) => r.phone });
const refusal = (o: TakeOutcome) => (o.ok ? undefined : o);

const db = useDynalite('gaps-rl');
let store: Store;
beforeEach(() => ({ store } = db));

describe('the rules', () => {
  it('send: every limit and budget of API.md, by name, with the budgets answering 503 and only the pool for new numbers', () => {
    const rules = sendRules(loadConfig({ SEND_COOLDOWN_SECONDS: '60', SEND_BUDGET_PER_DAY: '100', SEND_BUDGET_NEW_NUMBERS_PER_DAY: '40' }));
    const input = { phoneNumber: '+919876543210', sourceIp: '198.51.100.7' };
    expect(rules.map((r) => [r.name, r.kind, r.refusal ?? 'rate_limited', r.pool ?? '-', r.subject(input)])).toEqual([
      ['phone-cooldown', 'gap', 'rate_limited', '-', '+919876543210'],
      ['phone-hour', 'window', 'rate_limited', '-', '+919876543210'],
      ['phone-day', 'window', 'rate_limited', '-', '+919876543210'],
      ['ip-hour', 'window', 'rate_limited', '-', '198.51.100.7'],
      ['global-day', 'window', 'unavailable', '-', 'all'],
      ['new-numbers-day', 'window', 'unavailable', 'new-numbers', 'all'],
    ]);
    expect(rules.find((r) => r.name === 'global-day')).toMatchObject({ limit: 100, windowSeconds: 86_400 });
    expect(rules.find((r) => r.name === 'new-numbers-day')).toMatchObject({ limit: 40, windowSeconds: 86_400 });
    expect(sendRules(loadConfig({ SEND_COOLDOWN_SECONDS: '0' })).map((r) => r.name)).not.toContain('phone-cooldown');
  });

  it("verify: the client's hourly failure budget, counted by IP (/64 for IPv6)", () => {
    const rule = verifyFailureRule(loadConfig({ VERIFY_MAX_FAILURES_PER_IP_PER_HOUR: '7' }));
    expect(rule).toMatchObject({ name: 'verify-failures-ip-hour', kind: 'window', limit: 7, windowSeconds: 3600 });
    expect(rule.subject({ sourceIp: '2001:db8:1:2::a' })).toBe('2001:db8:1:2::/64');
    expect(rule.subject({ sourceIp: undefined })).toBeUndefined();
  });

  it.each([
    ['::1:2:3:4:5:6', '0:0:1:2::/64'],
    ['2001:db8:1::', '2001:db8:1:0::/64'],
    ['2001:db8::ffff:1.2.3.4', '2001:db8:0:0::/64'],
    ['::ffff:198.51.100.77', '198.51.100.77'],
    // The hex spelling of the same IPv4-mapped address is the same client.
    ['::ffff:c633:644d', '198.51.100.77'],
    // A `::` after the first group with a tail long enough to reach the /64.
    ['1::2:3:4:5:6', '1:0:0:2::/64'],
    // An embedded dotted quad is two groups: the tail starts one group earlier than its parts count.
    ['::5:6:7:8:1.2.3.4', '0:0:5:6::/64'],
    ['', undefined],
  ])('ipSubject(%j) is %j', (ip, subject) => {
    expect(ipSubject(ip)).toBe(subject);
  });
});

describe('the limiter', () => {
  /** A virtual clock that a look at the store moves by `lookMs` (a slow store), and sleeps move too. */
  const slowLooks = (lookMs: number) => {
    const clock = { now: H };
    const slow: Store = {
      ...store,
      readWindow: async (w) => {
        clock.now += lookMs;
        return store.readWindow(w);
      },
    };
    return { clock, slow, patience: { clock: () => clock.now, requestClock: () => clock.now, sleep: async (ms: number) => void (clock.now += ms) } };
  };

  it('a slow look stretches the hold it works out itself, never one it was given', async () => {
    for (const [holdMs, refusedAt] of [
      [500, H + 500],
      [undefined, H + 1000],
    ] as const) {
      const { clock, slow, patience } = slowLooks(100);
      await store.giveBackWindow({ rule: 'phone-hour', subject: 'A', window: Math.floor(H / 3_600_000), limit: 1, expiresAt: 0 });
      expect((await takeAll(slow, [hour(1)], { phone: 'A' }, identity, H, patience)).ok).toBe(true);
      const outcome = await takeAll(slow, [hour(1)], { phone: 'A' }, identity, H, { ...patience, ...(holdMs === undefined ? {} : { holdMs }) });
      expect(outcome.ok).toBe(false);
      // The looks are 100 ms; the one that sees the take `hold` old refuses.
      expect(clock.now).toBeGreaterThanOrEqual(refusedAt);
      expect(clock.now).toBeLessThan(refusedAt + 250);
    }
  });

  it('a look that fails is a refusal, not an error', async () => {
    expect((await takeAll(store, [hour(1)], { phone: 'A' }, identity, H)).ok).toBe(true);
    const broken: Store = { ...store, readWindow: () => Promise.reject(new Error('ECONNRESET')) };
    const outcome = await takeAll(broken, [hour(1)], { phone: 'A' }, identity, H);
    expect(refusal(outcome)?.refusal).toBe('rate_limited');
  });

  it("a counter's TTL is an hour after its window ends", async () => {
    const outcome = await takeAll(store, [hour(5)], { phone: 'A' }, identity, H + 1234);
    if (!outcome.ok) throw new Error('refused');
    const w = (outcome.grants[0] as { window: { window: number; expiresAt: number } }).window;
    expect(w.expiresAt).toBe((w.window + 1) * 3600 + 3600);
    expect(w.expiresAt * 1000).toBe(H + 2 * 3_600_000);
  });

  it('with no trust lookup, the number is new: the pool applies', async () => {
    const pool: RateLimitRule<In> = { name: 'new-numbers-day', kind: 'window', limit: 1, windowSeconds: 86_400, subject: () => 'all', refusal: 'unavailable', pool: 'new-numbers' };
    expect((await takeAll(store, [pool], { phone: 'A' }, identity, H, { holdMs: 0 })).ok).toBe(true);
    expect(refusal(await takeAll(store, [pool], { phone: 'B' }, identity, H, { holdMs: 0 }))?.refusal).toBe('unavailable');
  });

  it('refused by a cooldown and by a spent window: Retry-After is the longer wait, the window', async () => {
    const gap: RateLimitRule<In> = { name: 'phone-cooldown', kind: 'gap', seconds: 60, subject: (r) => r.phone };
    expect((await takeAll(store, [gap, hour(1)], { phone: 'A' }, identity, H, { holdMs: 0 })).ok).toBe(true);
    const out = refusal(await takeAll(store, [gap, hour(1)], { phone: 'A' }, identity, H + 1000, { holdMs: 0, requestClock: () => H + 1000 }));
    expect(out?.refusals.map((r) => r.rule)).toEqual(['phone-cooldown', 'phone-hour']);
    expect(out?.retryAfterSeconds).toBe(3599);
  });

  it('a store failure while taking again in order is 503, and what was taken again is given back', async () => {
    // The racer: one unit of the hour, given back while the request waits; the request's day unit is free.
    const day: RateLimitRule<In> = { name: 'phone-day', kind: 'window', limit: 5, windowSeconds: 86_400, subject: (r) => r.phone };
    const held = await takeAll(store, [hour(1)], { phone: 'A' }, identity, H);
    if (!held.ok) throw new Error('refused');
    let refusedOnce = false;
    const failing: Store = {
      ...store,
      takeWindow: async (c, at) => {
        if (refusedOnce && c.rule === 'phone-day') throw new ServiceUnavailable('store');
        const n = await store.takeWindow(c, at);
        if (n === undefined) {
          refusedOnce = true;
          setTimeout(() => void store.giveBackWindow(c), 30);
        }
        return n;
      },
    };
    await expect(takeAll(failing, [hour(1), day], { phone: 'A' }, identity, H)).rejects.toBeInstanceOf(ServiceUnavailable);
    expect((await store.readWindow({ rule: 'phone-hour', subject: 'A', window: Math.floor(H / 3_600_000), limit: 1, expiresAt: 0 })).n).toBe(0);
    expect((await store.readWindow({ rule: 'phone-day', subject: 'A', window: Math.floor(H / 86_400_000), limit: 5, expiresAt: 0 })).n).toBe(0);
  });
});
