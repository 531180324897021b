/**
 * What the verify use case (lib/otp/verify.ts) promises, beyond the flow and race tests (issue 15: the
 * mutation run of verify.ts with its own tests left these unpinned): a client over its failure budget, a
 * caller without an address, a store that fails half-way, what a right code records and returns, and what
 * operators see. The real store on dynalite; codes come from the real send use case.
 */
import { randomBytes } from 'node:crypto';
import { decodeJwt } from 'jose';
import { loadConfig } from '../../lib/config';
import { InvalidCode, OtpExpired, ServiceUnavailable, TooManyAttempts } from '../../lib/errors';
import { logger } from '../../lib/log';
import { metrics } from '../../lib/metrics';
import { keysFor, pseudonym } from '../../lib/otp/keys';
import { openRequestId } from '../../lib/otp/request-id';
import { phoneSubject, sendOtp } from '../../lib/otp/send';
import { verifyOtp } from '../../lib/otp/verify';
import type { StartMessagingClient } from '../../lib/provider/startmessaging';
import type { Store, WindowCounter } from '../../lib/store/types';
import { newTokenKeySecret, type TokenKeySecret } from '../../local/keys';
import { useDynalite } from '../support/dynalite';

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

let logged: { level: string; message: string; extra: unknown }[];
let metricsAdded: { name: string; value: number; dimension?: string }[];
beforeEach(() => {
  sentCodes = [];
  logged = [];
  for (const level of ['error', 'warn', 'info'] as const) {
    jest.spyOn(logger, level).mockImplementation(((message: string, extra: unknown) => void logged.push({ level, message, extra })) as never);
  }
  metricsAdded = [];
  jest.spyOn(metrics, 'addMetric').mockImplementation(((name: string, _unit: unknown, value: number) => void metricsAdded.push({ name, value })) as never);
  jest.spyOn(metrics, 'singleMetric').mockImplementation((() => {
    let dimension: string | undefined;
    return {
      addDimension: (k: string, v: string) => void (dimension = `${k}=${v}`),
      addMetric: (name: string, _unit: unknown, value: number) => void metricsAdded.push({ name, value, dimension }),
    };
  }) as never);
});
afterEach(() => jest.restoreAllMocks());

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
    logged = [];
    metricsAdded = [];

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

  it('a caller without an address (no sourceIp) is judged without a failure budget', async () => {
    const sent = await sendAt(T0);
    const takeWindow = jest.spyOn(db.store, 'takeWindow');
    await expect(verifyAt(T0, { ...sent, otp: wrongFor(sent.code), sourceIp: undefined })).rejects.toMatchObject({ code: 'invalid_code', extra: { attemptsRemaining: 2 } });
    await expect(verifyAt(T0, { ...sent, otp: sent.code, sourceIp: undefined })).resolves.toMatchObject({ verified: true });
    expect(takeWindow).not.toHaveBeenCalled();
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
    logged = [];
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
