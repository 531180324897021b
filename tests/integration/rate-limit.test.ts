/**
 * Issue 3, end to end: every limit of API.md ("Configuration") through the REAL send and verify handlers,
 * dynalite, the Secrets Manager stand-in and the sandbox provider over HTTP. Each limit is hit by a storm of
 * parallel requests and must let EXACTLY its limit through, counted at the provider (calls that delivered an
 * SMS) and in 201 answers. The other limits are set out of the way in each storm: when two limits bind in the
 * same burst the service may let fewer through (never more), see docs/rate-limits.md.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { startStack, type Answer, type Stack } from '../support/stack';

/**
 * The handlers run as many "Lambdas" at once in this one process, on the same event loop as dynalite; on a
 * busy machine a DynamoDB call can then wait longer than the store's 2 s request timeout (which is sized for
 * DynamoDB, a few ms away), and the request fails closed. The handlers' client is built exactly as in
 * production except for that timeout, so the storms measure the limits, not the machine's load.
 */
jest.mock('@aws-sdk/client-dynamodb', () => jest.requireActual('../support/patient-dynamodb').patientModule());

it('runs its storms with the patient DynamoDB client (tests/support/patient-dynamodb.ts)', () => {
  expect(jest.requireMock<typeof import('@aws-sdk/client-dynamodb')>('@aws-sdk/client-dynamodb').DynamoDBClient.name).toBe('PatientDynamoDBClient');
});

// ~1–2 s per storm on an idle machine; generous so that a busy CI neighbour does not turn slowness into failures.
jest.setTimeout(90_000);

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
const OUT_OF_THE_WAY = '1000';

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

/**
 * Powertools writes ERROR lines (a 503, a 502) to stderr, which the stack's own check (stdout) does not see:
 * they are kept here, off the terminal, and must not hold a number either.
 */
const stderr: string[] = [];
const realStderrWrite = process.stderr.write.bind(process.stderr);
beforeAll(() => {
  process.stderr.write = ((chunk: unknown, ...rest: unknown[]) => {
    stderr.push(String(chunk));
    (rest.find((r) => typeof r === 'function') as (() => void) | undefined)?.();
    return true;
  }) as typeof process.stderr.write;
});
afterAll(() => {
  process.stderr.write = realStderrWrite;
  expect(stderr.join('')).not.toMatch(/\+9198765\d{5}|\+14155550123|\+6591234567|\+447700900123/);
});

const start = async (env: Record<string, string>): Promise<Stack> => {
  stack = await startStack({
    SEND_COOLDOWN_SECONDS: '0',
    SEND_LIMIT_PER_PHONE_PER_HOUR: OUT_OF_THE_WAY,
    SEND_LIMIT_PER_PHONE_PER_DAY: OUT_OF_THE_WAY,
    SEND_LIMIT_PER_IP_PER_HOUR: OUT_OF_THE_WAY,
    SEND_BUDGET_PER_DAY: OUT_OF_THE_WAY,
    // The new-number pool has its own storms (abuse.test.ts); here every number may use the whole budget.
    SEND_BUDGET_NEW_NUMBERS_PER_DAY: OUT_OF_THE_WAY,
    ...env,
  });
  return stack;
};

/** Distinct Indian mobile numbers, `+9198765xxxxx`. */
const phone = (i: number): string => `+9198765${String(i).padStart(5, '0')}`;
const ip = (i: number): string => `198.51.100.${i}`;
const parallel = <T>(n: number, make: (i: number) => Promise<T>): Promise<T[]> => Promise.all(Array.from({ length: n }, (_, i) => make(i)));
const delivered = (s: Stack) => s.sandbox.calls.filter((c) => c.delivered);
const byStatus = (answers: Answer[], status: number) => answers.filter((a) => a.status === status);
/** `{ '201': 5, '429 rate_limited': 25 }`: one assertion that says everything when it fails. */
const tally = (answers: Answer[]): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const a of answers) {
    const k = a.status === 201 ? '201' : `${a.status} ${String(a.body.error)}`;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
};

/**
 * A request that failed closed: 503 without Retry-After (the store or the secrets did not answer in time;
 * a spent budget always says Retry-After). Nothing was sent for it and it holds nothing.
 */
const failedClosed = (a: Answer): boolean => a.status === 503 && a.headers['retry-after'] === undefined;

/**
 * Runs a storm on a fresh stack. The storm's requests are 30 "Lambdas" in one process, sharing one SDK client
 * (50 sockets) and one dynalite, so on a loaded machine some DynamoDB calls outlive the store's 2 s request
 * timeout and those requests fail closed. Such a storm must still never let more than `limit` through (checked
 * on every try), but it cannot show exactness: then it is run again on a fresh stack, up to three times.
 */
const storm = async (env: Record<string, string>, sendLimit: number | undefined, run: (s: Stack) => Promise<Answer[]>): Promise<{ s: Stack; answers: Answer[] }> => {
  for (let attempt = 1; ; attempt++) {
    await awayFromWindowEdge();
    const s = await start(env);
    const answers = await run(s);
    if (sendLimit !== undefined) {
      expect(byStatus(answers, 201).length).toBeLessThanOrEqual(sendLimit);
      expect(delivered(s)).toHaveLength(byStatus(answers, 201).length);
    }
    if (!answers.some(failedClosed)) return { s, answers };
    if (attempt === 3) throw new Error(`every try had requests that failed closed (DynamoDB slower than the store's timeout): ${JSON.stringify(tally(answers))}`);
    await s.close();
    stack = undefined;
  }
};

/** The storms below fill hour and day windows in real time: never start one within 10 s of the top of an hour. */
const awayFromWindowEdge = async (): Promise<void> => {
  const left = HOUR_MS - (Date.now() % HOUR_MS);
  if (left < 10_000) await new Promise((r) => setTimeout(r, left + 50));
};
const secondsTo = (windowMs: number, from: number): number => Math.ceil((windowMs - (from % windowMs)) / 1000);

/** A 429 rate_limited exactly as API.md words it: Retry-After header = body field, whole seconds ≥ 1, no limit named. */
const expectRateLimited = (a: Answer, min: number, max: number): void => {
  expect(a.status).toBe(429);
  expect(a.body).toEqual({ error: 'rate_limited', message: expect.any(String), retryAfterSeconds: expect.any(Number) });
  expect(a.headers['retry-after']).toMatch(/^[1-9]\d*$/);
  expect(Number(a.headers['retry-after'])).toBe(a.body.retryAfterSeconds);
  expect(a.body.retryAfterSeconds).toBeGreaterThanOrEqual(min);
  expect(a.body.retryAfterSeconds).toBeLessThanOrEqual(max);
  expect(String(a.body.message)).not.toMatch(/cooldown|hour|day|daily|IP|address|budget|number|phone-|global/i);
};

/** Items of the stack's table, to look at counters (keys hold pseudonyms only). */
const items = async (s: Stack, prefix: string): Promise<Record<string, unknown>[]> => {
  const client = DynamoDBDocumentClient.from(
    new DynamoDBClient({ endpoint: s.dynamo.endpoint, region: 'ap-south-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }),
  );
  try {
    const out = await client.send(new ScanCommand({ TableName: s.table, ConsistentRead: true }));
    return (out.Items ?? []).filter((i) => String(i.pk).startsWith(prefix));
  } finally {
    client.destroy();
  }
};

describe('a storm of 30 parallel sends lets exactly the limit through', () => {
  it('cooldown (SEND_COOLDOWN_SECONDS=60): one number → exactly one SMS, 29 × 429 with Retry-After 1..60; the delivered code verifies', async () => {
    const { s, answers } = await storm({ SEND_COOLDOWN_SECONDS: '60' }, 1, (x) => parallel(30, () => x.send({ phoneNumber: phone(1) })));
    expect(tally(answers)).toEqual({ '201': 1, '429 rate_limited': 29 });
    expect(s.sandbox.calls).toHaveLength(1);
    for (const a of answers.filter((x) => x.status !== 201)) expectRateLimited(a, 1, 60);

    // The refused sends must not have displaced the code that was delivered.
    const sent = byStatus(answers, 201)[0]!;
    const verified = await s.verify({ otpRequestId: sent.body.otpRequestId, otp: s.sandbox.lastCode(phone(1)) });
    expect(verified.status).toBe(200);
  });

  it('per number per hour (SEND_LIMIT_PER_PHONE_PER_HOUR=5, no cooldown): exactly 5, the rest wait for the top of the hour', async () => {
    let at = 0;
    const { s, answers } = await storm({ SEND_LIMIT_PER_PHONE_PER_HOUR: '5' }, 5, (x) => {
      at = Date.now();
      return parallel(30, (i) => x.send({ phoneNumber: phone(2) }, { sourceIp: ip(i) }));
    });
    expect(tally(answers)).toEqual({ '201': 5, '429 rate_limited': 25 });
    expect(delivered(s)).toHaveLength(5);
    const toHour = secondsTo(HOUR_MS, at);
    for (const a of answers.filter((x) => x.status !== 201)) expectRateLimited(a, toHour - 30, toHour);
  });

  it('per number per day (SEND_LIMIT_PER_PHONE_PER_DAY=4, hour cap out of the way): exactly 4, the rest wait for UTC midnight', async () => {
    let at = 0;
    const { s, answers } = await storm({ SEND_LIMIT_PER_PHONE_PER_DAY: '4' }, 4, (x) => {
      at = Date.now();
      return parallel(30, () => x.send({ phoneNumber: phone(3) }));
    });
    expect(tally(answers)).toEqual({ '201': 4, '429 rate_limited': 26 });
    expect(delivered(s)).toHaveLength(4);
    const toMidnight = secondsTo(DAY_MS, at);
    for (const a of answers.filter((x) => x.status !== 201)) expectRateLimited(a, toMidnight - 30, toMidnight);
  });

  it('per IP per hour (SEND_LIMIT_PER_IP_PER_HOUR=7): 30 numbers from one source IP → exactly 7', async () => {
    const { s, answers } = await storm({ SEND_COOLDOWN_SECONDS: '60', SEND_LIMIT_PER_IP_PER_HOUR: '7' }, 7, (x) =>
      parallel(30, (i) => x.send({ phoneNumber: phone(100 + i) }, { sourceIp: '203.0.113.99' })),
    );
    expect(tally(answers)).toEqual({ '201': 7, '429 rate_limited': 23 });
    expect(new Set(delivered(s).map((c) => c.phoneNumber)).size).toBe(7);
    for (const a of answers.filter((x) => x.status !== 201)) expectRateLimited(a, 1, 3600);
    // Another address is not affected.
    expect((await s.send({ phoneNumber: phone(199) }, { sourceIp: '203.0.113.100' })).status).toBe(201);
  });

  it('global daily budget (SEND_BUDGET_PER_DAY=6): exactly 6 sent, the rest 503 service_unavailable with Retry-After to UTC midnight', async () => {
    let at = 0;
    const { s, answers } = await storm({ SEND_BUDGET_PER_DAY: '6' }, 6, (x) => {
      at = Date.now();
      return parallel(30, (i) => x.send({ phoneNumber: phone(200 + i) }, { sourceIp: ip(i) }));
    });
    expect(tally(answers)).toEqual({ '201': 6, '503 service_unavailable': 24 });
    expect(delivered(s)).toHaveLength(6);
    const toMidnight = secondsTo(DAY_MS, at);
    for (const a of answers.filter((x) => x.status !== 201)) {
      expect(a.body).toEqual({ error: 'service_unavailable', message: expect.any(String), retryAfterSeconds: expect.any(Number) });
      expect(Number(a.headers['retry-after'])).toBe(a.body.retryAfterSeconds);
      expect(a.body.retryAfterSeconds).toBeGreaterThanOrEqual(toMidnight - 30);
      expect(a.body.retryAfterSeconds).toBeLessThanOrEqual(toMidnight);
    }
  });

  it('country allowlist: 30 parallel sends outside ALLOWED_COUNTRY_CODES are 403, send nothing and consume no limit', async () => {
    const s = await start({ ALLOWED_COUNTRY_CODES: '91', SEND_LIMIT_PER_IP_PER_HOUR: '1', SEND_BUDGET_PER_DAY: '2', SEND_COOLDOWN_SECONDS: '60' });
    const foreign = ['+14155550123', '+6591234567', '+447700900123'];
    const answers = await parallel(30, (i) => s.send({ phoneNumber: foreign[i % 3] }, { sourceIp: '203.0.113.50' }));
    for (const a of answers) {
      expect(a.status).toBe(403);
      expect(a.body).toEqual({ error: 'country_not_allowed', message: expect.any(String) });
    }
    expect(s.sandbox.calls).toHaveLength(0);
    expect(await items(s, 'RL#')).toEqual([]);
    expect(await items(s, 'GAP#')).toEqual([]);
    // The address's one send is still there, and it really was a limit of one…
    expect((await s.send({ phoneNumber: phone(300) }, { sourceIp: '203.0.113.50' })).status).toBe(201);
    expectRateLimited(await s.send({ phoneNumber: phone(301) }, { sourceIp: '203.0.113.50' }), 1, 3600);
    // …and so is the whole day's budget of two.
    expect((await s.send({ phoneNumber: phone(302) }, { sourceIp: '203.0.113.51' })).status).toBe(201);
    expect((await s.send({ phoneNumber: phone(303) }, { sourceIp: '203.0.113.52' })).status).toBe(503);
    expect(delivered(s).map((c) => c.phoneNumber)).toEqual([phone(300), phone(302)]);
  });
});

describe('verify: attempts per code and the failure budget per client IP', () => {
  const wrongFor = (code: string) => (code === '000000' ? '111111' : '000000');

  it('40 parallel wrong guesses: at most VERIFY_MAX_ATTEMPTS judged, the rest too_many_attempts, and the right code is refused afterwards', async () => {
    let code = '';
    let otpRequestId = '';
    const { s, answers } = await storm({ VERIFY_MAX_ATTEMPTS: '3' }, undefined, async (x) => {
      ({ otpRequestId, code } = await x.sendAndRead(phone(400)));
      return parallel(40, () => x.verify({ otpRequestId, otp: wrongFor(code) }));
    });
    const invalid = answers.filter((a) => a.body.error === 'invalid_code');
    const tooMany = answers.filter((a) => a.body.error === 'too_many_attempts');
    expect(invalid.length + tooMany.length).toBe(40);
    expect(invalid.length).toBeLessThanOrEqual(2);
    for (const a of invalid) expect(a.status).toBe(400);
    for (const a of tooMany) expect(a.status).toBe(429);
    // Each judged wrong guess saw a different count: the attempts were spent one at a time.
    const remaining = invalid.map((a) => a.body.attemptsRemaining);
    expect(new Set(remaining).size).toBe(remaining.length);
    for (const r of remaining) expect([1, 2]).toContain(r);

    const [otp] = await items(s, 'OTP#');
    expect(Number(otp?.attempts)).toBeLessThanOrEqual(3);
    const [failures] = await items(s, 'RL#verify-failures-ip-hour#');
    expect(Number(failures?.n ?? 0)).toBeLessThanOrEqual(3);

    const right = await s.verify({ otpRequestId, otp: code });
    expect(right.status).toBe(429);
    expect(right.body.error).toBe('too_many_attempts');
  });

  it('the IP budget (4 failures) spans codes and numbers; over it, 429 with Retry-After to the hour, the guess not judged and the code left alive', async () => {
    const at = Date.now();
    const s = await start({ VERIFY_MAX_FAILURES_PER_IP_PER_HOUR: '4', VERIFY_MAX_ATTEMPTS: '3' });
    const attacker = { sourceIp: ip(77) };
    const a = await s.sendAndRead(phone(401));
    const b = await s.sendAndRead(phone(402));
    expect((await s.verify({ otpRequestId: a.otpRequestId, otp: wrongFor(a.code) }, attacker)).body).toMatchObject({ error: 'invalid_code', attemptsRemaining: 2 });
    expect((await s.verify({ otpRequestId: a.otpRequestId, otp: wrongFor(a.code) }, attacker)).body).toMatchObject({ error: 'invalid_code', attemptsRemaining: 1 });
    expect((await s.verify({ otpRequestId: b.otpRequestId, otp: wrongFor(b.code) }, attacker)).body).toMatchObject({ error: 'invalid_code', attemptsRemaining: 2 });
    expect((await s.verify({ otpRequestId: b.otpRequestId, otp: wrongFor(b.code) }, attacker)).body).toMatchObject({ error: 'invalid_code', attemptsRemaining: 1 });
    // The fifth failure from that address: refused before judging, even with the right digits.
    const over = await s.verify({ otpRequestId: b.otpRequestId, otp: b.code }, attacker);
    expect(over.status).toBe(429);
    expect(over.body).toEqual({ error: 'too_many_attempts', message: expect.any(String), retryAfterSeconds: expect.any(Number) });
    expect(Number(over.headers['retry-after'])).toBe(over.body.retryAfterSeconds);
    expect(Number(over.headers['retry-after'])).toBeLessThanOrEqual(secondsTo(HOUR_MS, at));
    // The code kept its last attempt: its owner, elsewhere, verifies it.
    expect((await s.verify({ otpRequestId: b.otpRequestId, otp: b.code }, { sourceIp: ip(78) })).status).toBe(200);
    const counters = await items(s, 'RL#verify-failures-ip-hour#');
    expect(counters.map((c) => c.n).sort()).toEqual([0, 4]);
  });

  it('parallel wrong guesses from one address across many codes judge exactly the IP budget, never more', async () => {
    const { s, answers } = await storm({ VERIFY_MAX_FAILURES_PER_IP_PER_HOUR: '5', VERIFY_MAX_ATTEMPTS: '3' }, undefined, async (x) => {
      const codes = await Promise.all(Array.from({ length: 8 }, (_, i) => x.sendAndRead(phone(410 + i), { sourceIp: ip(i + 1) })));
      return parallel(40, (i) => x.verify({ otpRequestId: codes[i % 8]!.otpRequestId, otp: wrongFor(codes[i % 8]!.code) }, { sourceIp: ip(90) }));
    });
    const judged = answers.filter((a) => a.body.error === 'invalid_code');
    expect(judged).toHaveLength(5);
    const refused = answers.filter((a) => a.body.error === 'too_many_attempts');
    expect(refused).toHaveLength(35);
    for (const a of refused) expect(Number(a.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    const [failures] = await items(s, 'RL#verify-failures-ip-hour#');
    expect(failures?.n).toBe(5);
  });

  it('IPv6 clients count by their /64: two addresses of one /64 share the budget, another /64 has its own', async () => {
    const s = await start({ VERIFY_MAX_FAILURES_PER_IP_PER_HOUR: '2', SEND_LIMIT_PER_IP_PER_HOUR: '2' });
    const c = await s.sendAndRead(phone(420), { sourceIp: '2001:db8:1:2::a' });
    await s.verify({ otpRequestId: c.otpRequestId, otp: wrongFor(c.code) }, { sourceIp: '2001:db8:1:2::a' });
    await s.verify({ otpRequestId: c.otpRequestId, otp: wrongFor(c.code) }, { sourceIp: '2001:db8:1:2:ffff:1:2:3' });
    const sameNet = await s.verify({ otpRequestId: c.otpRequestId, otp: c.code }, { sourceIp: '2001:0db8:0001:0002::b' });
    expect(sameNet.body.error).toBe('too_many_attempts');
    expect(sameNet.headers['retry-after']).toBeDefined();
    expect((await s.verify({ otpRequestId: c.otpRequestId, otp: c.code }, { sourceIp: '2001:db8:1:3::1' })).status).toBe(200);
    // The send limit per IP counts the /64 too: two sends used it up from another address of the same /64.
    await s.sendAndRead(phone(421), { sourceIp: '2001:db8:1:2::c' });
    expect((await s.send({ phoneNumber: phone(422) }, { sourceIp: '2001:db8:1:2::d' })).status).toBe(429);
    expect((await s.send({ phoneNumber: phone(422) }, { sourceIp: '2001:db8:1:3::d' })).status).toBe(201);
  });
});

describe('give-back: a refused or certainly-unsent request holds nothing', () => {
  beforeEach(awayFromWindowEdge);

  it('refused by the IP limit, a number keeps its cooldown and hour cap: it sends at once from another address', async () => {
    const s = await start({ SEND_COOLDOWN_SECONDS: '60', SEND_LIMIT_PER_PHONE_PER_HOUR: '1', SEND_LIMIT_PER_IP_PER_HOUR: '1' });
    const answers = await Promise.all([s.send({ phoneNumber: phone(500) }, { sourceIp: ip(1) }), s.send({ phoneNumber: phone(501) }, { sourceIp: ip(1) })]);
    expect(answers.map((a) => a.status).sort()).toEqual([201, 429]);
    const refusedPhone = answers[0]!.status === 429 ? phone(500) : phone(501);
    expect((await s.send({ phoneNumber: refusedPhone }, { sourceIp: ip(2) })).status).toBe(201);
    expect(delivered(s).map((c) => c.phoneNumber).sort()).toEqual([phone(500), phone(501)]);
  });

  it('refused by the global budget (503), a number keeps its hour cap: with a larger budget it sends', async () => {
    const s = await start({ SEND_BUDGET_PER_DAY: '1', SEND_LIMIT_PER_PHONE_PER_HOUR: '1', SEND_COOLDOWN_SECONDS: '60' });
    expect((await s.send({ phoneNumber: phone(510) }, { sourceIp: ip(1) })).status).toBe(201);
    expect((await s.send({ phoneNumber: phone(511) }, { sourceIp: ip(2) })).status).toBe(503);
    s.coldStart({ SEND_BUDGET_PER_DAY: '2' });
    expect((await s.send({ phoneNumber: phone(511) }, { sourceIp: ip(2) })).status).toBe(201);
    expect((await s.send({ phoneNumber: phone(512) }, { sourceIp: ip(3) })).status).toBe(503);
    expect(delivered(s)).toHaveLength(2);
  });

  it.each([
    ['a 400 (request rejected)', { status: 400 }, 502, 'upstream_error'],
    ['a 402 (wallet empty)', { status: 402 }, 503, 'service_unavailable'],
    ['a 429 from the provider', { status: 429, headers: { 'Retry-After': '2' } }, 429, 'rate_limited'],
  ])('after %s nothing was sent: the cooldown and the hour cap are given back', async (_what, fault, status, error) => {
    const s = await start({ SEND_COOLDOWN_SECONDS: '60', SEND_LIMIT_PER_PHONE_PER_HOUR: '1', SEND_BUDGET_PER_DAY: '1' });
    s.sandbox.failNext(fault);
    const failed = await s.send({ phoneNumber: phone(520) });
    expect(failed.status).toBe(status);
    expect(failed.body.error).toBe(error);
    const again = await s.send({ phoneNumber: phone(520) });
    expect(again.status).toBe(201);
    expect(delivered(s)).toHaveLength(1);
  });

  it.each([
    ['a 500 on every attempt', [{ status: 500 }, { status: 500 }, { status: 500 }], 502],
    ['a timeout on every attempt', [{ hang: true as const }, { hang: true as const }, { hang: true as const }], 504],
  ])('after %s the SMS may have gone out: the limits stay taken', async (_what, faults, status) => {
    const s = await start({ SEND_COOLDOWN_SECONDS: '60', STARTMESSAGING_TIMEOUT_MS: '100' });
    s.sandbox.failNext(...faults);
    expect((await s.send({ phoneNumber: phone(530) })).status).toBe(status);
    expectRateLimited(await s.send({ phoneNumber: phone(530) }), 55, 60);
    expect(s.sandbox.calls).toHaveLength(3);
  });
});

describe('failing closed', () => {
  it('with DynamoDB unreachable no SMS is sent: 503 service_unavailable', async () => {
    const s = await start({});
    await s.dynamo.close();
    const answers = await parallel(5, (i) => s.send({ phoneNumber: phone(600 + i) }));
    for (const a of answers) {
      expect(a.status).toBe(503);
      expect(a.body.error).toBe('service_unavailable');
    }
    expect(s.sandbox.calls).toHaveLength(0);
  });
});

describe('refusals are logged with the rule name, never the number', () => {
  const lines = (s: Stack) =>
    s.logs
      .join('')
      .split('\n')
      .filter((l) => l.trim().startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  it('a cooldown refusal names "phone-cooldown", a budget refusal "global-day", and neither line holds the number', async () => {
    const s = await start({ SEND_COOLDOWN_SECONDS: '60', SEND_BUDGET_PER_DAY: '2' });
    const n = phone(700);
    expect((await s.send({ phoneNumber: n })).status).toBe(201);
    expect((await s.send({ phoneNumber: n })).status).toBe(429);
    expect((await s.send({ phoneNumber: phone(701) })).status).toBe(201);
    expect((await s.send({ phoneNumber: phone(702) })).status).toBe(503);

    const refused = lines(s).filter((l) => l.message === 'send refused by rate limit');
    expect(refused.map((l) => l.rules)).toEqual([['phone-cooldown'], ['global-day']]);
    expect(refused[0]?.retryAfterSeconds).toBe(60);
    expect(refused[1]?.retryAfterSeconds).toEqual(expect.any(Number));
    const text = s.logs.join('');
    for (const number of [n, phone(701), phone(702)]) {
      expect(text).not.toContain(number);
      expect(text).not.toContain(number.slice(3));
    }
  });
});
