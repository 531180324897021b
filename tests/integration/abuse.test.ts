/**
 * Issue 11's scenarios ("Why"), each through the REAL handlers, dynalite, the Secrets Manager stand-in, the
 * StartMessaging sandbox and (for the bot challenge) the local siteverify stand-in, all over real HTTP:
 *   - targeted lockout: a stranger's wrong guesses never stop the owner from verifying;
 *   - budget flood: fresh numbers spend only their pool, returning customers are still served;
 *   - bot challenge: enforced, monitored, provider down;
 *   - race Retry-After: refused racers are told the wait that would really let them through;
 * plus TEST_NUMBERS and the code an idempotent retry re-delivers (issue 10, item 7).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { FAILING_TOKEN, PASSING_TOKEN, startSiteverifyStandIn, type SiteverifyStandIn } from '../../local/siteverify';
import { startStack, type Answer, type Stack } from '../support/stack';

jest.mock('@aws-sdk/client-dynamodb', () => jest.requireActual('../support/patient-dynamodb').patientModule());
jest.setTimeout(90_000);

const HOUR_MS = 3_600_000;
const phone = (i: number): string => `+9198766${String(i).padStart(5, '0')}`;
const ip = (i: number): string => `198.51.100.${i}`;
const parallel = <T>(n: number, make: (i: number) => Promise<T>): Promise<T[]> => Promise.all(Array.from({ length: n }, (_, i) => make(i)));
const tally = (answers: Answer[]): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const a of answers) {
    const k = a.status === 201 || a.status === 200 ? String(a.status) : `${a.status} ${String(a.body.error)}`;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
};
const wrongFor = (code: string) => (code === '000000' ? '111111' : '000000');
/** EMF lines the handlers printed for one metric. */
const metricCount = (s: Stack, name: string): number =>
  s.logs
    .flatMap((chunk) => chunk.split('\n'))
    .filter((l) => l.startsWith('{"_aws"'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .reduce((n, m) => n + (typeof m[name] === 'number' ? (m[name] as number) : 0), 0);

let stack: Stack | undefined;
let siteverify: SiteverifyStandIn | undefined;
afterEach(async () => {
  await stack?.close();
  await siteverify?.close();
  stack = undefined;
  siteverify = undefined;
});
const start = async (env: Record<string, string>): Promise<Stack> => {
  stack = await startStack(env);
  return stack;
};
/** Storms fill hour windows in real time: never start one within 10 s of the top of an hour. */
const awayFromWindowEdge = async (): Promise<void> => {
  const left = HOUR_MS - (Date.now() % HOUR_MS);
  if (left < 10_000) await new Promise((r) => setTimeout(r, left + 50));
};

describe('targeted lockout: a stranger cannot stop the owner from verifying', () => {
  it('4 sends to the victim and 10 wrong guesses from one IP; the victim then verifies the right code (was 429 too_many_attempts)', async () => {
    // The defaults, with the cooldown off only so the attacker's 4 sends need not wait 3 minutes.
    const s = await start({ SEND_COOLDOWN_SECONDS: '0' });
    const victim = phone(1);
    const attacker = { sourceIp: ip(66) };
    let wrong = 0;
    for (let send = 0; send < 4; send++) {
      const { otpRequestId, code } = await s.sendAndRead(victim, attacker);
      for (let guess = 0; guess < 3 && wrong < 10; guess++, wrong++) {
        const a = await s.verify({ otpRequestId, otp: wrongFor(code) }, attacker);
        expect([400, 429]).toContain(a.status);
      }
    }
    expect(wrong).toBe(10);

    const own = await s.sendAndRead(victim, { sourceIp: ip(1) });
    const answer = await s.verify({ otpRequestId: own.otpRequestId, otp: own.code }, { sourceIp: ip(1) });
    expect(answer.status).toBe(200);
    expect(answer.body.verified).toBe(true);
  });

  it('what remains by design: the stranger can spend the number\'s hourly sends (5), and no more', async () => {
    const s = await start({ SEND_COOLDOWN_SECONDS: '0' });
    for (let i = 0; i < 5; i++) await s.sendAndRead(phone(2), { sourceIp: ip(66) });
    const refused = await s.send({ phoneNumber: phone(2) }, { sourceIp: ip(2) });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(Math.ceil((HOUR_MS - (Date.now() % HOUR_MS)) / 1000) + 1);
  });
});

describe('budget flood: fresh numbers cannot lock returning customers out', () => {
  it('budget 40 (new-number pool 24): 3 IPs × 20 fresh numbers spend exactly the pool; returning customers still get codes', async () => {
    await awayFromWindowEdge();
    const s = await start({ SEND_BUDGET_PER_DAY: '40', SEND_COOLDOWN_SECONDS: '0' });
    // Three returning customers verified earlier (each drew once on the new-number pool then).
    const returning = [phone(100), phone(101), phone(102)];
    for (const [i, n] of returning.entries()) {
      const { otpRequestId, code } = await s.sendAndRead(n, { sourceIp: ip(10 + i) });
      expect((await s.verify({ otpRequestId, otp: code })).status).toBe(200);
    }

    const flood = await parallel(60, (i) => s.send({ phoneNumber: phone(200 + i) }, { sourceIp: ip(20 + (i % 3)) }));
    expect(flood.some((a) => a.status === 503 && a.headers['retry-after'] === undefined)).toBe(false);
    expect(tally(flood)).toEqual({ '201': 21, '503 service_unavailable': 39 });
    for (const a of flood.filter((x) => x.status === 503)) expect(Number(a.headers['retry-after'])).toBeGreaterThan(0);

    // A new customer meets the spent pool; every returning customer still gets a code (the global budget has room).
    expect((await s.send({ phoneNumber: phone(300) }, { sourceIp: ip(30) })).status).toBe(503);
    for (const [i, n] of returning.entries()) {
      const again = await s.sendAndRead(n, { sourceIp: ip(40 + i) });
      expect((await s.verify({ otpRequestId: again.otpRequestId, otp: again.code })).status).toBe(200);
    }
    expect(s.sandbox.calls.filter((c) => c.delivered)).toHaveLength(3 + 21 + 3);
    // NewNumberSent counts exactly the sends that drew on the pool (the alarm at 80 % reads it).
    expect(metricCount(s, 'NewNumberSent')).toBe(24);
  });

  it('the global budget still caps trusted numbers: once it is spent they get 503 too', async () => {
    const s = await start({ SEND_BUDGET_PER_DAY: '3', SEND_BUDGET_NEW_NUMBERS_PER_DAY: '1', SEND_COOLDOWN_SECONDS: '0' });
    const { otpRequestId, code } = await s.sendAndRead(phone(400));
    expect((await s.verify({ otpRequestId, otp: code })).status).toBe(200);
    expect((await s.send({ phoneNumber: phone(401) })).status).toBe(503);
    expect((await s.send({ phoneNumber: phone(400) })).status).toBe(201);
    expect((await s.send({ phoneNumber: phone(400) })).status).toBe(201);
    const spent = await s.send({ phoneNumber: phone(400) });
    expect(spent.status).toBe(503);
    expect(spent.headers['retry-after']).toBeDefined();
  });
});

describe('bot challenge (against the local siteverify stand-in over HTTP)', () => {
  const withChallenge = async (mode: 'enforce' | 'monitor', env: Record<string, string> = {}) => {
    siteverify = await startSiteverifyStandIn();
    return start({ CHALLENGE_PROVIDER: 'turnstile', CHALLENGE_MODE: mode, CHALLENGE_VERIFY_URL: siteverify.url, ...env });
  };

  it('enforced: no token or a rejected one is 403 challenge_failed, sends nothing and spends no limit; a passing token sends', async () => {
    const s = await withChallenge('enforce', { SEND_COOLDOWN_SECONDS: '60' });
    const missing = await s.send({ phoneNumber: phone(500) });
    expect(missing.status).toBe(403);
    expect(missing.body).toEqual({ error: 'challenge_failed', message: expect.any(String) });
    const rejected = await s.send({ phoneNumber: phone(500), challengeToken: FAILING_TOKEN }, { sourceIp: ip(5) });
    expect(rejected.body.error).toBe('challenge_failed');
    expect(s.sandbox.calls).toHaveLength(0);
    // Nothing was spent: the number's cooldown is free, so the passing send goes through at once.
    const passed = await s.send({ phoneNumber: phone(500), challengeToken: PASSING_TOKEN }, { sourceIp: ip(5) });
    expect(passed.status).toBe(201);
    expect(s.sandbox.calls).toHaveLength(1);
    // The provider was asked as the real ones expect: form POST, our secret, the token, the caller's IP.
    expect(siteverify!.calls).toHaveLength(2);
    expect(siteverify!.calls[1]).toEqual({ secretOk: true, response: PASSING_TOKEN, remoteip: ip(5), contentType: 'application/x-www-form-urlencoded' });
    expect(metricCount(s, 'ChallengeFailed')).toBe(2);
    expect(metricCount(s, 'ChallengePassed')).toBe(1);
  });

  it('a replay with the same Idempotency-Key is answered before the challenge: no new token needed, the provider is not asked', async () => {
    const s = await withChallenge('enforce');
    const headers = { 'idempotency-key': 'order-4711-attempt' };
    const first = await s.send({ phoneNumber: phone(501), challengeToken: PASSING_TOKEN }, { headers });
    expect(first.status).toBe(201);
    const replay = await s.send({ phoneNumber: phone(501) }, { headers });
    expect(replay.status).toBe(201);
    expect(replay.body.otpRequestId).toBe(first.body.otpRequestId);
    expect(siteverify!.calls).toHaveLength(1);
  });

  it('monitored: a rejected token still sends, and the failure is logged and counted', async () => {
    const s = await withChallenge('monitor');
    expect((await s.send({ phoneNumber: phone(502), challengeToken: FAILING_TOKEN })).status).toBe(201);
    expect((await s.send({ phoneNumber: phone(503) })).status).toBe(201);
    expect(metricCount(s, 'ChallengeFailed')).toBe(2);
    expect(s.logs.join('')).toContain('bot challenge failed');
  });

  it.each([
    ['does not answer (2 s timeout)', { hang: true } as const],
    ['answers 500', { status: 500 }],
    ['answers HTML, not JSON', { body: '<html>oops</html>' }],
  ])('provider down — it %s: the send goes on (fail open), counted as ChallengeUnavailable; the other limits still apply', async (_what, fault) => {
    const s = await withChallenge('enforce', { SEND_COOLDOWN_SECONDS: '60' });
    siteverify!.failAlways(fault);
    const started = Date.now();
    const sent = await s.send({ phoneNumber: phone(504), challengeToken: PASSING_TOKEN });
    expect(sent.status).toBe(201);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(metricCount(s, 'ChallengeUnavailable')).toBe(1);
    const again = await s.send({ phoneNumber: phone(504), challengeToken: PASSING_TOKEN });
    expect(again.status).toBe(429);
    // Fail open is for the provider's failure only: a missing token is still refused.
    expect((await s.send({ phoneNumber: phone(505) })).status).toBe(403);
  });
});

describe('race Retry-After: refused racers are told the wait that would let them through', () => {
  it('30 parallel sends to one number (defaults): one SMS, and every 429 says Retry-After ≤ SEND_COOLDOWN_SECONDS', async () => {
    await awayFromWindowEdge();
    const s = await start({});
    const answers = await parallel(30, () => s.send({ phoneNumber: phone(600) }));
    expect(tally(answers)).toEqual({ '201': 1, '429 rate_limited': 29 });
    for (const a of answers.filter((x) => x.status === 429)) {
      expect(Number(a.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(Number(a.headers['retry-after'])).toBeLessThanOrEqual(60);
    }
    expect(s.sandbox.calls).toHaveLength(1);
  });

  it('cooldown off and 5 per hour: 40 parallel sends → 5 SMS, and the refusals name the end of the hour', async () => {
    await awayFromWindowEdge();
    const s = await start({ SEND_COOLDOWN_SECONDS: '0', SEND_LIMIT_PER_PHONE_PER_HOUR: '5' });
    const at = Date.now();
    const answers = await parallel(40, (i) => s.send({ phoneNumber: phone(601) }, { sourceIp: ip(100 + i) }));
    expect(tally(answers)).toEqual({ '201': 5, '429 rate_limited': 35 });
    const toHourEnd = Math.ceil((HOUR_MS - (at % HOUR_MS)) / 1000);
    for (const a of answers.filter((x) => x.status === 429)) {
      expect(Number(a.headers['retry-after'])).toBeGreaterThanOrEqual(toHourEnd - 30);
      expect(Number(a.headers['retry-after'])).toBeLessThanOrEqual(toHourEnd);
    }
    expect(s.sandbox.calls.filter((c) => c.delivered)).toHaveLength(5);
  });
});

describe('TEST_NUMBERS', () => {
  it('a test number gets its fixed code and no SMS; every limit still applies', async () => {
    const s = await start({ TEST_NUMBERS: '+919000000001:424242', SEND_COOLDOWN_SECONDS: '60' });
    const sent = await s.send({ phoneNumber: '+919000000001' });
    expect(sent.status).toBe(201);
    expect(s.sandbox.calls).toHaveLength(0);
    expect((await s.send({ phoneNumber: '+919000000001' })).status).toBe(429);
    expect((await s.verify({ otpRequestId: sent.body.otpRequestId, otp: '424243' })).body.error).toBe('invalid_code');
    expect((await s.verify({ otpRequestId: sent.body.otpRequestId, otp: '424242' })).status).toBe(200);
    // Other numbers are sent as usual.
    await s.sendAndRead(phone(700));
    expect(s.sandbox.calls).toHaveLength(1);
  });
});

describe('Idempotency-Key: the code is fresh, and a retry re-delivers the first one (issue 10, item 7)', () => {
  const scan = async (s: Stack, prefix: string) => {
    const client = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: s.dynamo.endpoint, region: 'ap-south-1', credentials: { accessKeyId: 'l', secretAccessKey: 'l' } }));
    try {
      const items = (await client.send(new ScanCommand({ TableName: s.table, ConsistentRead: true }))).Items ?? [];
      return { client, items: items.filter((i) => String(i.pk).startsWith(prefix)) };
    } catch (error) {
      client.destroy();
      throw error;
    }
  };

  it('within the record\'s life a charged retry re-delivers the same code, kept sealed (never in clear) in the record', async () => {
    const s = await start({ SEND_COOLDOWN_SECONDS: '0' });
    const headers = { 'idempotency-key': 'checkout-77-send' };
    s.sandbox.failNext({ hang: true }, { hang: true }, { hang: true });
    const first = await s.send({ phoneNumber: phone(800) }, { headers });
    expect(first.status).toBe(504);
    const pending = await scan(s, 'IDEM#');
    pending.client.destroy();
    const firstCode = s.sandbox.calls[0]!.otp;
    expect(pending.items).toHaveLength(1);
    expect(typeof pending.items[0]!.retryCode).toBe('string');
    expect(JSON.stringify(pending.items[0])).not.toContain(firstCode);

    const retry = await s.send({ phoneNumber: phone(800) }, { headers });
    expect(retry.status).toBe(201);
    const codes = new Set(s.sandbox.calls.map((c) => c.otp));
    expect(codes).toEqual(new Set([firstCode]));
    expect((await s.verify({ otpRequestId: retry.body.otpRequestId, otp: firstCode })).status).toBe(200);
    // Answered: the record keeps only the answer, not the sealed code.
    const done = await scan(s, 'IDEM#');
    done.client.destroy();
    expect(done.items[0]!.retryCode).toBeUndefined();
  });

  it('once the record is gone (24 h), the same key gets an independent code', async () => {
    const s = await start({ SEND_COOLDOWN_SECONDS: '0' });
    const headers = { 'idempotency-key': 'checkout-78-send' };
    const codes: string[] = [];
    for (let i = 0; i < 3; i++) {
      const sent = await s.send({ phoneNumber: phone(801) }, { headers });
      expect(sent.status).toBe(201);
      // Delivered, not deduplicated by the provider: a new code goes under a new provider idempotency key.
      expect(s.sandbox.calls.filter((c) => c.delivered)).toHaveLength(i + 1);
      codes.push(s.sandbox.calls.at(-1)!.otp);
      expect((await s.verify({ otpRequestId: sent.body.otpRequestId, otp: codes.at(-1)! })).status).toBe(200);
      const { client, items } = await scan(s, 'IDEM#');
      for (const item of items) await client.send(new DeleteCommand({ TableName: s.table, Key: { pk: item.pk } }));
      client.destroy();
    }
    // Three sends under one key, each after its record expired: three CSPRNG codes (equal by chance: 3 in a million).
    expect(new Set(codes).size).toBeGreaterThan(1);
  });
});
