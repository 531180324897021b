/**
 * middleware/rate-limit.ts on its own, against the real DynamoDB adapter on dynalite, with an injected clock:
 * options validated when the pipeline is built, the answer for a refusal (429 or 503, Retry-After the longest
 * wait, no rule named), the log line (rule named, number never), and the give-back after a provider failure
 * that certainly sent nothing.
 */
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { MiddlewareObj, Request } from '@middy/core';
import { loadConfig } from '../../lib/config';
import { ProviderRateLimited, RateLimited, ServiceUnavailable, UpstreamError, UpstreamTimeout } from '../../lib/errors';
import { logger } from '../../lib/log';
import { keysFor, pseudonym } from '../../lib/otp/keys';
import { sendRules, type RateLimitRule, type RateLimitSubjectInput } from '../../lib/ratelimit/rules';
import type { Store } from '../../lib/store/types';
import { useDynalite } from '../support/dynalite';
import { rateLimitMiddleware, rulesTaken } from '../../middleware/rate-limit';
import { newHashKey } from '../../local/keys';

const SECRET = newHashKey();
const PHONE = '+919876543210';
const IP = '198.51.100.23';
/** 2030-01-01T10:00:00Z */
const H = Date.UTC(2030, 0, 1, 10);

const db = useDynalite('mw');
let client: DynamoDBDocumentClient;
let table: string;
let store: Store;
beforeEach(() => ({ client, table, store } = db));
afterEach(() => jest.restoreAllMocks());

type Body = { phoneNumber: string; ip?: string };
const input = (r: Request): RateLimitSubjectInput => {
  const body = (r.event as { body: Body }).body;
  return { phoneNumber: body.phoneNumber, sourceIp: body.ip };
};

const request = (phoneNumber = PHONE, ip: string | undefined = IP): Request =>
  ({ event: { body: { phoneNumber, ip } }, context: { hashKey: SECRET } as object, response: undefined, error: undefined, internal: {} }) as unknown as Request;

const window = (name: string, limit: number, windowSeconds = 3600, subject = (r: RateLimitSubjectInput) => r.phoneNumber as string | undefined): RateLimitRule => ({
  name,
  kind: 'window',
  limit,
  windowSeconds,
  subject,
});
const gap = (seconds: number): RateLimitRule => ({ name: 'phone-cooldown', kind: 'gap', seconds, subject: (r) => r.phoneNumber });

/** A middleware on a settable clock; one request at a time, so nothing is held by a racer (`holdMs: 0`). */
const build = (rules: RateLimitRule[], at = H) => {
  const clock = { now: at };
  const mw = rateLimitMiddleware<RateLimitSubjectInput>({ store, rules, input, now: () => clock.now, holdMs: 0 });
  return { mw, clock };
};
const before = (mw: MiddlewareObj, req: Request = request()) => (mw.before as (r: Request) => Promise<void>)(req);
const onError = async (mw: MiddlewareObj, req: Request, error: unknown) => {
  req.error = error as Error;
  await (mw.onError as (r: Request) => Promise<void>)(req);
};
const refusal = (mw: MiddlewareObj, req: Request = request()) => before(mw, req).then(() => undefined, (e: unknown) => e);

describe('options are checked when the pipeline is built', () => {
  const ok = () => [window('phone-hour', 5)];
  it('accepts the service\'s own rules, with and without the cooldown', () => {
    expect(() => rateLimitMiddleware({ store, rules: sendRules(loadConfig({})), input })).not.toThrow();
    const noCooldown = sendRules(loadConfig({ SEND_COOLDOWN_SECONDS: '0' }));
    expect(noCooldown.map((r) => r.name)).toEqual(['phone-hour', 'phone-day', 'ip-hour', 'global-day', 'new-numbers-day']);
    expect(() => rateLimitMiddleware({ store, rules: noCooldown, input })).not.toThrow();
  });

  it.each([
    ['an unknown option', () => rateLimitMiddleware({ store, rules: ok(), input, clock: Date.now } as never), /unknown option "clock"/],
    ['a missing store', () => rateLimitMiddleware({ store: undefined as never, rules: ok(), input }), /store is required/],
    ['duplicate rule names', () => rateLimitMiddleware({ store, rules: [window('phone-hour', 5), window('phone-hour', 9)], input }), /phone-hour/],
    ['a rule name with capitals or spaces', () => rateLimitMiddleware({ store, rules: [window('Phone hour', 5)], input }), /Phone hour/],
    ['an empty rule name', () => rateLimitMiddleware({ store, rules: [window('', 5)], input }), /rule name/],
    ['a zero limit', () => rateLimitMiddleware({ store, rules: [window('phone-hour', 0)], input }), /phone-hour/],
    ['a negative limit', () => rateLimitMiddleware({ store, rules: [window('phone-hour', -1)], input }), /phone-hour/],
    ['a fractional limit', () => rateLimitMiddleware({ store, rules: [window('phone-hour', 2.5)], input }), /phone-hour/],
    ['a NaN limit', () => rateLimitMiddleware({ store, rules: [window('phone-hour', Number.NaN)], input }), /phone-hour/],
    ['an infinite limit', () => rateLimitMiddleware({ store, rules: [window('phone-hour', Number.POSITIVE_INFINITY)], input }), /phone-hour/],
    ['a zero window', () => rateLimitMiddleware({ store, rules: [window('phone-hour', 5, 0)], input }), /phone-hour/],
    ['a fractional window', () => rateLimitMiddleware({ store, rules: [window('phone-hour', 5, 0.5)], input }), /phone-hour/],
    ['a zero gap', () => rateLimitMiddleware({ store, rules: [gap(0)], input }), /phone-cooldown/],
    ['an unknown kind', () => rateLimitMiddleware({ store, rules: [{ name: 'odd', kind: 'bucket', subject: () => 'x' } as never], input }), /odd/],
  ])('refuses %s with a TypeError', (_what, make, message) => {
    expect(make).toThrow(TypeError);
    expect(make).toThrow(message);
  });
});

describe('before: a refusal', () => {
  it('lets requests through up to the limit, then answers 429 rate_limited with Retry-After to the window end', async () => {
    const { mw, clock } = build([window('phone-hour', 2)], H + 15 * 60_000);
    await before(mw);
    await before(mw);
    clock.now += 30_500;
    const err = await refusal(mw);
    expect(err).toBeInstanceOf(RateLimited);
    const limited = err as RateLimited;
    // 44 min 29.5 s to 11:00 → rounded up to whole seconds.
    expect(limited.extra.retryAfterSeconds).toBe(44 * 60 + 30);
    expect(limited.headers).toEqual({ 'Retry-After': String(44 * 60 + 30) });
    expect(limited.toBody()).toEqual({ error: 'rate_limited', message: expect.any(String), retryAfterSeconds: 2670 });
    expect(limited.message).not.toMatch(/hour|day|cooldown|phone|ip|budget|limit of/i);
  });

  it('never answers Retry-After 0: 1 ms before the window ends it is 1', async () => {
    const { mw, clock } = build([window('phone-hour', 1)], H);
    await before(mw);
    clock.now = H + 3_600_000 - 1;
    expect(((await refusal(mw)) as RateLimited).headers['Retry-After']).toBe('1');
    clock.now = H + 3_600_000;
    await expect(before(mw)).resolves.toBeUndefined();
  });

  it('when several limits refuse, Retry-After is the longest of their waits (an earlier retry would be refused again)', async () => {
    // The day cap outlasts the cooldown…
    const { mw, clock } = build([gap(60), window('phone-day', 1, 86_400)], H);
    await before(mw);
    clock.now = H + 1000;
    expect(((await refusal(mw)) as RateLimited).extra.retryAfterSeconds).toBe(14 * 3600 - 1);
    clock.now = H + 61_000;
    expect(((await refusal(mw)) as RateLimited).extra.retryAfterSeconds).toBe(14 * 3600 - 61);

    // …and a long cooldown outlasts the hour window about to roll over.
    const other = '+919876500002';
    const { mw: mw2, clock: c2 } = build([gap(600), window('phone-hour', 1)], H + 59 * 60_000);
    await before(mw2, request(other));
    c2.now += 10_000;
    expect(((await refusal(mw2, request(other))) as RateLimited).extra.retryAfterSeconds).toBe(590);
  });

  it('a refusing "unavailable" rule (the shared budget) is 503 service_unavailable with Retry-After, even when a 429 rule refuses too', async () => {
    const budget: RateLimitRule = { name: 'global-day', kind: 'window', limit: 1, windowSeconds: 86_400, subject: () => 'all', refusal: 'unavailable' };
    const { mw } = build([gap(60), budget], H);
    await before(mw);
    const alone = (await refusal(mw, request('+919876500001'))) as ServiceUnavailable;
    expect(alone).toBeInstanceOf(ServiceUnavailable);
    expect(alone.reason).toBe('budget');
    expect(alone.headers['Retry-After']).toBe(String(14 * 3600));
    expect(alone.toBody()).toEqual({ error: 'service_unavailable', message: expect.any(String), retryAfterSeconds: 14 * 3600 });
    const withCooldown = (await refusal(mw)) as ServiceUnavailable;
    expect(withCooldown).toBeInstanceOf(ServiceUnavailable);
    expect(withCooldown.headers['Retry-After']).toBe(String(14 * 3600));
  });

  it('logs the refusing rules by name and never the number or the IP; counts a metric per rule', async () => {
    const info = jest.spyOn(logger, 'info');
    const { mw } = build([gap(60), window('ip-hour', 1, 3600, (r) => r.sourceIp)], H);
    await before(mw);
    await refusal(mw);
    const refused = info.mock.calls.find(([message]) => message === 'send refused by rate limit');
    expect(refused?.[1]).toEqual({ rules: ['phone-cooldown', 'ip-hour'], retryAfterSeconds: 3600 });
    const everything = JSON.stringify(info.mock.calls);
    expect(everything).not.toContain(PHONE);
    expect(everything).not.toContain(PHONE.slice(3));
    expect(everything).not.toContain(IP);
  });

  it('stores only pseudonyms: no DynamoDB key holds the number or the IP', async () => {
    const { mw } = build(sendRules(loadConfig({})));
    await before(mw);
    const keys = ((await client.send(new ScanCommand({ TableName: table }))).Items ?? []).map((i) => String(i.pk));
    expect(keys).toHaveLength(6);
    for (const k of keys) {
      expect(k).not.toContain(PHONE.slice(3));
      expect(k).not.toContain(IP);
    }
    const keys_ = keysFor(SECRET);
    expect(keys).toContain(`GAP#phone-cooldown#${pseudonym(keys_, 'rate-limit', PHONE)}`);
    expect(keys).toContain(`RL#ip-hour#${Math.floor(H / 3_600_000)}#${pseudonym(keys_, 'rate-limit', IP)}`);
  });
});

describe('onError: give-back when the provider certainly sent nothing', () => {
  const rules = () => [gap(60), window('phone-hour', 1), window('ip-hour', 1, 3600, (r) => r.sourceIp)];

  it.each([
    ['a 400 (rejected)', new UpstreamError('rejected', 400)],
    ['a 401 (unauthorized)', new UpstreamError('unauthorized', 401)],
    ['a 404', new UpstreamError('not_found', 404)],
    ['a 409', new UpstreamError('conflict', 409)],
    ['the provider\'s own 429', new ProviderRateLimited(5)],
    ['an empty wallet (402)', new ServiceUnavailable('wallet')],
    ['a store failure before the provider was asked (storing the code)', new ServiceUnavailable('store')],
  ])('after %s every limit is given back: the same request passes again at once', async (_what, error) => {
    const { mw } = build(rules());
    const req = request();
    await before(mw, req);
    await onError(mw, req, error);
    await expect(before(mw)).resolves.toBeUndefined();
  });

  it.each([
    ['a timeout', new UpstreamTimeout()],
    ['a 5xx after retries', new UpstreamError('server_error', 500)],
    ['a broken connection', new UpstreamError('connection')],
    ['an unreadable answer', new UpstreamError('bad_response', 200)],
    ['a bug', new TypeError('x is undefined')],
  ])('after %s the limits stay taken (the SMS may have gone out)', async (_what, error) => {
    const { mw } = build(rules());
    const req = request();
    await before(mw, req);
    await onError(mw, req, error);
    expect(await refusal(mw)).toBeInstanceOf(RateLimited);
  });

  it('gives back once: a second onError for the same request does not release someone else\'s unit', async () => {
    const { mw } = build([window('phone-hour', 2)]);
    const first = request();
    await before(mw, first);
    await before(mw);
    await onError(mw, first, new UpstreamError('rejected', 400));
    await onError(mw, first, new UpstreamError('rejected', 400));
    await expect(before(mw)).resolves.toBeUndefined();
    expect(await refusal(mw)).toBeInstanceOf(RateLimited);
  });

  it('a request refused in before holds nothing, so its onError gives nothing back', async () => {
    const { mw } = build([window('phone-hour', 1)]);
    await before(mw);
    const refused = request();
    const err = await refusal(mw, refused);
    await onError(mw, refused, err);
    expect(await refusal(mw)).toBeInstanceOf(RateLimited);
  });
});

describe('pools: a trusted number draws on no pool', () => {
  const pool: RateLimitRule = { name: 'new-numbers-day', kind: 'window', limit: 1, windowSeconds: 86_400, subject: () => 'all', refusal: 'unavailable', pool: 'new-numbers' };
  const budget: RateLimitRule = { name: 'global-day', kind: 'window', limit: 3, windowSeconds: 86_400, subject: () => 'all', refusal: 'unavailable' };
  const trustedPhones = new Set(['+919876500009']);
  const withTrust = (trusted: (r: Request) => Promise<boolean>) =>
    rateLimitMiddleware<RateLimitSubjectInput>({ store, rules: [budget, pool], input, trusted, now: () => H, holdMs: 0 });
  const isTrusted = async (r: Request) => trustedPhones.has(input(r).phoneNumber);
  const poolCount = async () => (await store.readWindow({ rule: 'new-numbers-day', subject: pseudonym(keysFor(SECRET), 'rate-limit', 'all'), window: Math.floor(H / 86_400_000), limit: 1, expiresAt: 0 })).n;

  it('new numbers share the pool; once it is spent a new number is 503 while a trusted one still sends, up to the whole budget', async () => {
    const mw = withTrust(isTrusted);
    const first = request('+919876500001');
    await before(mw, first);
    expect(rulesTaken(first.context)).toEqual(['global-day', 'new-numbers-day']);
    const refused = (await refusal(mw, request('+919876500002'))) as ServiceUnavailable;
    expect(refused).toBeInstanceOf(ServiceUnavailable);
    expect(refused.reason).toBe('budget');
    const trusted = request('+919876500009');
    await before(mw, trusted);
    await (mw.after as (r: Request) => Promise<void>)(trusted);
    expect(rulesTaken(trusted.context)).toEqual(['global-day']);
    // The trusted send's pool unit went back: the pool holds the first new number's unit only.
    expect(await poolCount()).toBe(1);
    await before(mw, request('+919876500009'));
    expect(await refusal(mw, request('+919876500009'))).toBeInstanceOf(ServiceUnavailable);
  });

  it('when the trust lookup fails, the request fails closed and holds nothing', async () => {
    const mw = withTrust(() => Promise.reject(new Error('ECONNRESET')));
    expect(await refusal(mw)).toBeInstanceOf(ServiceUnavailable);
    expect(await poolCount()).toBe(0);
  });
});

describe('races: units other requests hold for a moment', () => {
  /** A request that holds the one unit of `rule` until the test gives it back (its provider refused). */
  const holdOne = async (rule: RateLimitRule) => {
    const holder = rateLimitMiddleware<RateLimitSubjectInput>({ store, rules: [rule], input, now: () => H });
    const held = request();
    await before(holder, held);
    return () => onError(holder, held, new UpstreamError('rejected', 400));
  };
  /** The store, telling the test when a take was refused. */
  const watching = () => {
    let refused!: () => void;
    const takeRefused = new Promise<void>((resolve) => (refused = resolve));
    const watched: Store = {
      ...store,
      takeWindow: async (c, at) => {
        const n = await store.takeWindow(c, at);
        if (n === undefined) refused();
        return n;
      },
    };
    return { watched, takeRefused };
  };

  it('a request refused by a window a racer is about to give back is let through once it does', async () => {
    const hour = window('phone-hour', 1);
    const giveBackHeld = await holdOne(hour);
    const { watched, takeRefused } = watching();
    const mw = rateLimitMiddleware<RateLimitSubjectInput>({ store: watched, rules: [hour], input, now: () => H });
    const req = request();
    const pending = before(mw, req);
    await takeRefused;
    await giveBackHeld();
    await expect(pending).resolves.toBeUndefined();
    expect(rulesTaken(req.context)).toEqual(['phone-hour']);
  });

  it('holdMs reaches the limiter: with 0, a full window is spent at once and the same request is refused', async () => {
    const hour = window('phone-hour', 1);
    const giveBackHeld = await holdOne(hour);
    const { watched, takeRefused } = watching();
    const mw = rateLimitMiddleware<RateLimitSubjectInput>({ store: watched, rules: [hour], input, now: () => H, holdMs: 0 });
    const pending = refusal(mw);
    await takeRefused;
    const err = (await pending) as RateLimited;
    await giveBackHeld();
    expect(err).toBeInstanceOf(RateLimited);
    expect(err.extra.retryAfterSeconds).toBeGreaterThan(3590);
  });

  it('the request holding the cooldown takes a window again once a racer gives it back, so the burst still sends once', async () => {
    const hour = window('phone-hour', 1);
    const giveBackHeld = await holdOne(hour);
    const { watched, takeRefused } = watching();
    const mw = rateLimitMiddleware<RateLimitSubjectInput>({ store: watched, rules: [gap(60), hour], input, now: () => H });
    const req = request();
    const pending = before(mw, req);
    await takeRefused;
    await giveBackHeld();
    await expect(pending).resolves.toBeUndefined();
    expect(rulesTaken(req.context)).toEqual(['phone-cooldown', 'phone-hour']);
  });
});
