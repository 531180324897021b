/**
 * What the verify use case (lib/otp/verify.ts) promises, beyond the flow and race tests (issue 15: the
 * mutation run of verify.ts with its own tests left these unpinned): a client over its failure budget, a
 * caller without an address, a store that fails half-way, what a right code records and returns, and what
 * operators see. The real store on dynalite; codes come from the real send use case.
 */
import { randomBytes } from 'node:crypto';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { decodeJwt } from 'jose';
import { loadConfig } from '../../lib/config';
import { InvalidCode, OtpExpired, ServiceUnavailable, TooManyAttempts } from '../../lib/errors';
import { keysFor, pseudonym } from '../../lib/otp/keys';
import { openRequestId } from '../../lib/otp/request-id';
import { phoneSubject, sendOtp } from '../../lib/otp/send';
import { MAX_WAIT_MS, realTime } from '../../lib/ratelimit/limiter';
import { verifyOtp } from '../../lib/otp/verify';
import type { StartMessagingClient } from '../../lib/provider/startmessaging';
import type { Store, WindowCounter } from '../../lib/store/types';
import { newTokenKeySecret, type TokenKeySecret } from '../../local/keys';
import { useDynalite } from '../support/dynalite';
import { useTelemetry } from '../support/telemetry';

const db = useDynalite('verify');
const KEY = randomBytes(32).toString('base64');
const keys = keysFor(KEY);
const PHONE = '+919876543210';
const IP = '203.0.113.9';
const HOUR_MS = 3_600_000;
// 20 minutes into an hour: the failure window ends 40 minutes later.
const T0 = 1_800_000_000_000 - (1_800_000_000_000 % HOUR_MS) + 20 * 60_000;

let tokenKey: TokenKeySecret;
beforeAll(async () => {
  tokenKey = await newTokenKeySecret();
});

let sentCodes: string[];
const provider = {
  sendOtp: async (request: { otp: string }) => {
    sentCodes.push(request.otp);
    return { providerOtpId: 'p-1', traceId: 't-1', attempts: 1 };
  },
} as unknown as StartMessagingClient;

const { logged, metricsAdded, clear: clearTelemetry } = useTelemetry();
beforeEach(() => {
  sentCodes = [];
});

const ENV = { SEND_COOLDOWN_SECONDS: '0', VERIFY_MAX_ATTEMPTS: '3', VERIFY_MAX_FAILURES_PER_IP_PER_HOUR: '2' };

/** A fresh code for `phone`, sent at `at`. */
const sendAt = async (at: number, phone = PHONE, env: Record<string, string> = {}) => {
  const { body } = await sendOtp({ config: loadConfig({ ...ENV, ...env }), store: db.store, provider, now: () => at }, { phoneNumber: phone, apiKey: 'sm_key', hashKey: KEY });
  return { otpRequestId: body.otpRequestId, code: sentCodes.at(-1)! };
};
const wrongFor = (code: string) => code.replace(/^./, (d) => String((Number(d) + 1) % 10));

const verifyAt = (at: number, req: { otpRequestId: string; otp: string; sourceIp?: string | undefined }, opts: { env?: Record<string, string>; store?: Store } = {}) =>
  verifyOtp(
    { config: loadConfig({ ...ENV, ...opts.env }), store: opts.store ?? db.store, now: () => at },
    { hashKey: KEY, tokenKey, sourceIp: 'sourceIp' in req ? req.sourceIp : IP, otpRequestId: req.otpRequestId, otp: req.otp },
  );
/** What `p` was rejected with (a test fails if it resolves). */
const rejection = (p: Promise<unknown>): Promise<unknown> => p.then((v) => Promise.reject(new Error(`resolved: ${JSON.stringify(v)}`)), (e: unknown) => e);

/** The IP failure counter of `ip` for the hour holding `at`, as verify.ts writes it. */
const failureCounter = (at: number, ip = IP): WindowCounter => {
  const window = Math.floor(at / HOUR_MS);
  return { rule: 'verify-failures-ip-hour', subject: pseudonym(keys, 'rate-limit', ip), window, limit: 2, expiresAt: (window + 1) * 3600 + 3600 };
};
const attemptsOf = async (otpRequestId: string) => db.store.attemptsOf(phoneSubject(keys, PHONE), openRequestId(keys, otpRequestId)!.codeId);

describe('a client over its failure budget', () => {
  it('is answered 429 with Retry-After to the end of the hour; its guess is not judged and the code keeps its attempt', async () => {
    const sent = await sendAt(T0);
    for (let i = 0; i < 2; i++) await expect(verifyAt(T0, { ...sent, otp: wrongFor(sent.code) })).rejects.toBeInstanceOf(InvalidCode);
    expect(await attemptsOf(sent.otpRequestId)).toBe(2);
    clearTelemetry();

    // The right code, from the same network, 90.5 s later: refused without being judged.
    const at = T0 + 90_500;
    const refused = await rejection(verifyAt(at, { ...sent, otp: sent.code })) as TooManyAttempts;
    expect(refused).toBeInstanceOf(TooManyAttempts);
    const retryAfter = Math.ceil((Math.floor(at / HOUR_MS) + 1) * 3600 - at / 1000);
    expect(retryAfter).toBe(40 * 60 - 90);
    expect(refused.headers['Retry-After']).toBe(String(retryAfter));
    expect(refused.extra.retryAfterSeconds).toBe(retryAfter);
    expect(await attemptsOf(sent.otpRequestId)).toBe(2);
    expect(metricsAdded).toEqual([{ name: 'RateLimited', value: 1, dimension: 'Rule=verify-failures-ip-hour' }]);
    expect(logged).toEqual([{ level: 'info', message: 'verify refused by rate limit', extra: { rules: ['verify-failures-ip-hour'], retryAfterSeconds: retryAfter } }]);

    // The code is alive: from another network the owner verifies it, on its last attempt.
    await expect(verifyAt(at, { ...sent, otp: sent.code, sourceIp: '198.51.100.7' })).resolves.toMatchObject({ verified: true });
  });

  it('a client with budget left is judged while another is refused', async () => {
    const sent = await sendAt(T0);
    const counter = failureCounter(T0, '198.51.100.8');
    for (let i = 0; i < 2; i++) await db.store.takeWindow(counter, Date.now() - 60_000);
    await expect(verifyAt(T0, { ...sent, otp: wrongFor(sent.code), sourceIp: '198.51.100.8' })).rejects.toMatchObject({ code: 'too_many_attempts', extra: { retryAfterSeconds: 40 * 60 } });
    await expect(verifyAt(T0, { ...sent, otp: wrongFor(sent.code) })).rejects.toMatchObject({ code: 'invalid_code', extra: { attemptsRemaining: 2 } });
  });

  it('its failures count in the hour, not the day: the next hour it is judged again', async () => {
    const sent = await sendAt(T0);
    for (let i = 0; i < 2; i++) await expect(verifyAt(T0, { ...sent, otp: wrongFor(sent.code) })).rejects.toBeInstanceOf(InvalidCode);
    await expect(verifyAt(T0 + 39 * 60_000, { ...sent, otp: sent.code })).rejects.toMatchObject({ code: 'too_many_attempts' });
    const nextHour = T0 + 40 * 60_000;
    const fresh = await sendAt(nextHour);
    await expect(verifyAt(nextHour, { ...fresh, otp: fresh.code })).resolves.toMatchObject({ verified: true });
  });
});

describe('the failure budget is counted per client', () => {
  it('a wrong guess keeps its unit; a right one gives its unit back', async () => {
    const sent = await sendAt(T0);
    const counter = failureCounter(T0);
    await expect(verifyAt(T0, { ...sent, otp: wrongFor(sent.code) })).rejects.toBeInstanceOf(InvalidCode);
    expect((await db.store.readWindow(counter)).n).toBe(1);
    await verifyAt(T0, { ...sent, otp: sent.code });
    expect((await db.store.readWindow(counter)).n).toBe(1);
  });

  it('a dead id spends the unit of a failure, as a wrong code does', async () => {
    const sent = await sendAt(T0);
    await verifyAt(T0, { ...sent, otp: sent.code });
    await expect(verifyAt(T0, { ...sent, otp: sent.code })).rejects.toBeInstanceOf(OtpExpired);
    // A right code gave its unit back; the used id's guess did not.
    expect((await db.store.readWindow(failureCounter(T0))).n).toBe(0);
    const forged = `${sent.otpRequestId.slice(0, -2)}AA`;
    await expect(verifyAt(T0, { otpRequestId: forged, otp: sent.code })).rejects.toBeInstanceOf(OtpExpired);
    expect((await db.store.readWindow(failureCounter(T0))).n).toBe(0);
  });

  it('a caller without an address (no sourceIp) is judged without a failure budget: no counter is touched', async () => {
    const sent = await sendAt(T0);
    const calls: string[] = [];
    const store = new Proxy(db.store, {
      get: (target, name: keyof Store) => (...args: unknown[]) => (calls.push(name), (target[name] as (...a: unknown[]) => unknown).apply(target, args)),
    });
    await expect(verifyAt(T0, { ...sent, otp: wrongFor(sent.code), sourceIp: undefined }, { store })).rejects.toMatchObject({ code: 'invalid_code', extra: { attemptsRemaining: 2 } });
    await expect(verifyAt(T0, { ...sent, otp: sent.code, sourceIp: undefined }, { store })).resolves.toMatchObject({ verified: true });
    expect(calls).toEqual(['claimAttempt', 'claimAttempt', 'markUsed', 'trust']);
  });
});

describe('a store that fails half-way', () => {
  it('a failed claim is 503 (store) and the failure unit taken alongside is given back', async () => {
    const sent = await sendAt(T0);
    const broken = new Error('claim failed');
    const store = { ...db.store, claimAttempt: async () => Promise.reject(broken) };
    const error = await rejection(verifyAt(T0, { ...sent, otp: sent.code }, { store })) as ServiceUnavailable;
    expect(error).toBeInstanceOf(ServiceUnavailable);
    expect(error.reason).toBe('store');
    expect(error.cause).toBe(broken);
    expect((await db.store.readWindow(failureCounter(T0))).n).toBe(0);
  });

  it('a failed budget take is 503 (store); the attempt stays spent (the safe side)', async () => {
    const sent = await sendAt(T0);
    const broken = new Error('take failed');
    const store = { ...db.store, takeWindow: async () => Promise.reject(broken) };
    const error = await rejection(verifyAt(T0, { ...sent, otp: sent.code }, { store })) as ServiceUnavailable;
    expect(error).toMatchObject({ reason: 'store', cause: broken });
    expect(await attemptsOf(sent.otpRequestId)).toBe(1);
  });

  it('a 503 the store already said is passed on as it is', async () => {
    const sent = await sendAt(T0);
    const said = new ServiceUnavailable('store', 2);
    const store = { ...db.store, claimAttempt: async () => Promise.reject(said) };
    expect(await rejection(verifyAt(T0, { ...sent, otp: sent.code }, { store }))).toBe(said);
  });

  it('a right code whose number cannot be recorded as trusted still verifies; the warning carries the error', async () => {
    const sent = await sendAt(T0);
    const broken = new Error('trust failed');
    const store = { ...db.store, trust: async () => Promise.reject(broken) };
    await expect(verifyAt(T0, { ...sent, otp: sent.code }, { store })).resolves.toMatchObject({ verified: true });
    expect(logged.filter((l) => l.level === 'warn')).toEqual([{ level: 'warn', message: 'could not record the number as trusted', extra: { error: broken } }]);
  });

  it('a right code that another guess used first is 410', async () => {
    const sent = await sendAt(T0);
    const store = { ...db.store, markUsed: async () => false };
    await expect(verifyAt(T0, { ...sent, otp: sent.code }, { store })).rejects.toBeInstanceOf(OtpExpired);
  });
});

describe('a right code', () => {
  it('records the number as trusted for TRUSTED_NUMBER_DAYS from now', async () => {
    const sent = await sendAt(T0);
    await verifyAt(T0, { ...sent, otp: sent.code }, { env: { TRUSTED_NUMBER_DAYS: '7' } });
    const subject = phoneSubject(keys, PHONE);
    expect(await db.store.isTrusted(subject, T0 + 7 * 86_400_000 - 1)).toBe(true);
    expect(await db.store.isTrusted(subject, T0 + 7 * 86_400_000)).toBe(false);
  });

  it('returns a token for the number and the id, with the configured issuer, audience and lifetime, and when it expires', async () => {
    const at = T0 + 1_234; // not a whole second: the token counts whole seconds
    const sent = await sendAt(at);
    const answer = await verifyAt(at, { ...sent, otp: sent.code }, { env: { TOKEN_TTL_SECONDS: '120', TOKEN_ISSUER: 'otp.example', TOKEN_AUDIENCE: 'shop' } });
    const iat = Math.floor(at / 1000);
    expect(decodeJwt(answer.token)).toEqual({ iss: 'otp.example', aud: 'shop', sub: PHONE, jti: sent.otpRequestId, iat, exp: iat + 120 });
    expect(answer).toEqual({ verified: true, token: answer.token, tokenExpiresAt: new Date((iat + 120) * 1000).toISOString() });
    expect(logged.filter((l) => l.level === 'info' && l.message === 'code verified')).toEqual([{ level: 'info', message: 'code verified', extra: { phone: '+91******3210' } }]);
  });
});

describe('what operators see of a wrong code', () => {
  it('one line with the masked number and the attempts left, never the code', async () => {
    const sent = await sendAt(T0);
    clearTelemetry();
    await expect(verifyAt(T0, { ...sent, otp: wrongFor(sent.code) })).rejects.toMatchObject({ extra: { attemptsRemaining: 2 } });
    expect(logged).toEqual([{ level: 'info', message: 'wrong code', extra: { phone: '+91******3210', attemptsRemaining: 2 } }]);
  });

  it('the last attempt is 429 too_many_attempts without Retry-After (the code is dead, not the client)', async () => {
    const sent = await sendAt(T0);
    for (let i = 0; i < 2; i++) await verifyAt(T0, { ...sent, otp: wrongFor(sent.code), sourceIp: `198.51.100.${i}` }).catch(() => undefined);
    const dead = await rejection(verifyAt(T0, { ...sent, otp: wrongFor(sent.code) })) as TooManyAttempts;
    expect(dead).toBeInstanceOf(TooManyAttempts);
    expect(dead.headers['Retry-After']).toBeUndefined();
    await expect(verifyAt(T0, { ...sent, otp: sent.code })).rejects.toBeInstanceOf(TooManyAttempts);
  });
});

/**
 * Racers: parallel guesses that hold the code's attempts (or the client's units) for a moment while they wait
 * for their client's budget, and give them back if it refuses them (the comments in lib/otp/verify.ts).
 * Here they are played straight on the records, as in verify-races.test.ts; the store records what verify
 * asks of it, because what a guess waits for shows in its DynamoDB requests (each one costs).
 */
describe('racers', () => {
  /** Sets the code's claimed attempts, the last claimed at `claimedAt` (real time, as a guess stamps it). */
  const setClaims = (attempts: number, claimedAt: number) =>
    db.client.send(
      new UpdateCommand({
        TableName: db.table,
        Key: { pk: `OTP#${phoneSubject(keys, PHONE)}` },
        UpdateExpression: 'SET attempts = :n, claimedAt = :at',
        ExpressionAttributeValues: { ':n': attempts, ':at': claimedAt },
      }),
    );
  /**
   * The real store, recording the name of every method verify calls. `failing`: which call of a method fails
   * (1 = the first). `after`: what racers do once a call has answered, before verify sees the answer.
   */
  const recording = (failing: Partial<Record<keyof Store, (call: number) => boolean>> = {}, after: (name: keyof Store, call: number) => Promise<unknown> = async () => undefined) => {
    const calls: string[] = [];
    const store = new Proxy(db.store, {
      get: (target, name: keyof Store) => {
        const method = target[name] as (...a: unknown[]) => Promise<unknown>;
        return async (...args: unknown[]) => {
          calls.push(name);
          const call = calls.filter((c) => c === name).length;
          if (failing[name]?.(call)) throw new Error(`${name} failed`);
          const result = await method.apply(target, args);
          await after(name, call);
          return result;
        };
      },
    });
    return { store, calls, count: (name: keyof Store) => calls.filter((c) => c === name).length };
  };
  const later = (ms: number, fn: () => Promise<unknown>) => new Promise<void>((resolve, reject) => setTimeout(() => fn().then(() => resolve(), reject), ms));
  const giveBackOne = () =>
    db.client.send(new UpdateCommand({ TableName: db.table, Key: { pk: `OTP#${phoneSubject(keys, PHONE)}` }, UpdateExpression: 'ADD attempts :minus', ExpressionAttributeValues: { ':minus': -1 } }));

  it('no racer holds a claim 2.5 s old: a guess taking the last attempt after it is judged dead at once, in one round trip', async () => {
    const sent = await sendAt(T0);
    await setClaims(2, realTime() - 2500);
    const { store, calls } = recording();
    const dead = await rejection(verifyAt(T0, { ...sent, otp: wrongFor(sent.code) }, { store }));
    expect(dead).toBeInstanceOf(TooManyAttempts);
    expect(calls).toEqual(['claimAttempt', 'takeWindow']);
  });

  it('attempts all spent 2.5 s ago: a right code is 429 at once, and its unit is given back', async () => {
    const sent = await sendAt(T0);
    await setClaims(3, realTime() - 2500);
    const { store, calls } = recording();
    const dead = (await rejection(verifyAt(T0, { ...sent, otp: sent.code }, { store }))) as TooManyAttempts;
    expect(dead).toBeInstanceOf(TooManyAttempts);
    expect(dead.headers['Retry-After']).toBeUndefined();
    expect(calls).toEqual(['claimAttempt', 'takeWindow', 'giveBackWindow']);
    expect((await db.store.readWindow(failureCounter(T0))).n).toBe(0);
  });

  it('racers holding every attempt: a guess waits, and is judged as soon as one gives back (not at the end of the wait)', async () => {
    const sent = await sendAt(T0);
    await setClaims(3, realTime());
    const { store, count } = recording();
    const started = realTime();
    const [answer] = await Promise.all([verifyAt(T0, { ...sent, otp: sent.code }, { store }), later(100, giveBackOne)]);
    expect(answer).toMatchObject({ verified: true });
    // Looks at 0, 20, 60, 140 ms...: a handful, not the whole wait's (4.5 s and more).
    expect(count('attemptsOf')).toBeGreaterThanOrEqual(2);
    expect(count('attemptsOf')).toBeLessThanOrEqual(6);
    expect(realTime() - started).toBeLessThan(2500);
    // Its client unit: given back while it waited, taken again once (no patience needed), given back on the right code.
    expect(count('takeWindow')).toBe(2);
    expect(count('readWindow')).toBe(0);
    expect((await db.store.readWindow(failureCounter(T0))).n).toBe(0);
  });

  it('racers holding every attempt: a guess that waits answers as soon as the code is superseded', async () => {
    const sent = await sendAt(T0);
    await setClaims(3, realTime());
    const { store, count } = recording();
    const [answer] = await Promise.all([rejection(verifyAt(T0, { ...sent, otp: sent.code }, { store })), later(100, () => sendAt(T0))]);
    expect(answer).toBeInstanceOf(OtpExpired);
    expect(count('attemptsOf')).toBeLessThanOrEqual(6);
    expect((await db.store.readWindow(failureCounter(T0))).n).toBe(0);
  });

  it('a guess that waited on racers and finds its client budget spent by then: 429 with Retry-After, nothing claimed', async () => {
    const sent = await sendAt(T0);
    await setClaims(3, realTime());
    const counter = failureCounter(T0);
    await db.store.takeWindow(counter, realTime() - 60_000);
    const { store, count } = recording();
    const [refused] = await Promise.all([
      rejection(verifyAt(T0, { ...sent, otp: sent.code }, { store })),
      // Meanwhile the client's other guess takes its last unit, and a racer gives its attempt back.
      later(100, async () => {
        await db.store.takeWindow(counter, realTime() - 60_000);
        await giveBackOne();
      }),
    ]);
    expect(refused).toMatchObject({ code: 'too_many_attempts', extra: { retryAfterSeconds: 40 * 60 } });
    expect(count('claimAttempt')).toBe(1);
    expect(await attemptsOf(sent.otpRequestId)).toBe(2);
    expect((await db.store.readWindow(counter)).n).toBe(2);
  });

  it('a client over its budget while racers hold every attempt: 429 with Retry-After at once, no unit given back that it never took', async () => {
    const sent = await sendAt(T0);
    await setClaims(3, realTime());
    const counter = failureCounter(T0);
    for (let i = 0; i < 2; i++) await db.store.takeWindow(counter, realTime() - 60_000);
    const { store, calls } = recording();
    const refused = await rejection(verifyAt(T0, { ...sent, otp: sent.code }, { store }));
    expect(refused).toMatchObject({ code: 'too_many_attempts', extra: { retryAfterSeconds: 40 * 60 } });
    expect(calls).toEqual(['claimAttempt', 'takeWindow']);
    expect((await db.store.readWindow(counter)).n).toBe(2);
  });

  it('a claim that fails after the wait: 503 (store), and the unit taken again is given back', async () => {
    const sent = await sendAt(T0);
    await setClaims(3, realTime());
    const { store } = recording({ claimAttempt: (n) => n === 2 });
    const [failed] = await Promise.all([rejection(verifyAt(T0, { ...sent, otp: sent.code }, { store })), later(100, giveBackOne)]);
    expect(failed).toMatchObject({ reason: 'store', cause: expect.objectContaining({ message: 'claimAttempt failed' }) });
    expect((await db.store.readWindow(failureCounter(T0))).n).toBe(0);
  });

  it('a wrong guess right after another, with attempts left: judged at once, one round trip (no wait for racers)', async () => {
    const sent = await sendAt(T0);
    await expect(verifyAt(T0, { ...sent, otp: wrongFor(sent.code) })).rejects.toBeInstanceOf(InvalidCode);
    const { store, calls } = recording();
    await expect(verifyAt(T0, { ...sent, otp: wrongFor(sent.code) }, { store })).rejects.toMatchObject({ extra: { attemptsRemaining: 1 } });
    expect(calls).toEqual(['claimAttempt', 'takeWindow']);
  });

  it('a wrong guess that takes the last attempt while racers hold the others, and the code is superseded meanwhile: the code is dead (429)', async () => {
    const sent = await sendAt(T0);
    await setClaims(2, realTime());
    const [dead] = await Promise.all([rejection(verifyAt(T0, { ...sent, otp: wrongFor(sent.code) })), later(100, () => sendAt(T0))]);
    expect(dead).toBeInstanceOf(TooManyAttempts);
    expect((dead as TooManyAttempts).extra.attemptsRemaining).toBeUndefined();
  });

  it('racers may hold every attempt for as long as they wait for their budget, and a little more: a give-back just before that still counts', async () => {
    const sent = await sendAt(T0);
    await setClaims(3, realTime());
    // A racer waits at most MAX_WAIT_MS for its client's budget, then gives back (its round trips add a little).
    const [answer] = await Promise.all([verifyAt(T0, { ...sent, otp: sent.code }), later(MAX_WAIT_MS - 100, giveBackOne)]);
    expect(answer).toMatchObject({ verified: true });
  }, 15_000);

  it('a guess that waited on racers, found its client window full of fresh units, and then the store failing: 429, nothing judged', async () => {
    const sent = await sendAt(T0);
    await setClaims(3, realTime());
    const counter = failureCounter(T0);
    await db.store.takeWindow(counter, realTime() - 60_000);
    // takeWindow: 1 the guess's first; 2 after the wait, refused (the client's other guess took the last unit
    // meanwhile, as a racer gave its attempt back); 3 once that unit came back: fails.
    const { store, count } = recording({ takeWindow: (n) => n === 3 }, async (name, n) => {
      if (name === 'attemptsOf' && n === 1) {
        await db.store.takeWindow(counter, realTime());
        await giveBackOne();
      }
      if (name === 'takeWindow' && n === 2) await db.store.giveBackWindow(counter);
    });
    const refused = await rejection(verifyAt(T0, { ...sent, otp: sent.code }, { store }));
    expect(count('takeWindow')).toBe(3);
    expect(refused).toMatchObject({ code: 'too_many_attempts', extra: { retryAfterSeconds: 40 * 60 } });
    expect(await attemptsOf(sent.otpRequestId)).toBe(2);
  });

  it("a client window full only of units taken a moment ago: the guess waits for one to come back, then is judged", async () => {
    const sent = await sendAt(T0);
    const counter = failureCounter(T0);
    for (let i = 0; i < 2; i++) await db.store.takeWindow(counter, realTime());
    const [answer] = await Promise.all([verifyAt(T0, { ...sent, otp: sent.code }), later(100, () => db.store.giveBackWindow(counter))]);
    expect(answer).toMatchObject({ verified: true });
    expect(await attemptsOf(sent.otpRequestId)).toBe(1);
  });

  it('a client window full of units taken a moment ago, and the store failing while the guess waits: 429, nothing judged (fails closed)', async () => {
    const sent = await sendAt(T0);
    const counter = failureCounter(T0);
    for (let i = 0; i < 2; i++) await db.store.takeWindow(counter, realTime());
    const { store } = recording({ takeWindow: (n) => n >= 2 });
    const [refused] = await Promise.all([rejection(verifyAt(T0, { ...sent, otp: sent.code }, { store })), later(100, () => db.store.giveBackWindow(counter))]);
    expect(refused).toMatchObject({ code: 'too_many_attempts', extra: { retryAfterSeconds: 40 * 60 } });
    // Its attempt was given back: the code is as it was.
    expect(await attemptsOf(sent.otpRequestId)).toBe(0);
  });
});
