/**
 * Issue 4: `Idempotency-Key` on POST /auth/send-otp (API.md), through the REAL handler, dynalite and
 * the sandbox provider: a replay returns the first 201 (same otpRequestId), sends no SMS and consumes
 * no limit; another body is 409; parallel duplicates share one send; failures are not remembered, and
 * a retry after an uncertain failure re-sends the same code under the same provider idempotency key.
 */
import { randomBytes } from 'node:crypto';
import { startStack, type Answer, type Stack } from '../support/stack';

const TIMEOUT_MS = 200;
const IP_LIMIT = 3;

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({
    STARTMESSAGING_TIMEOUT_MS: String(TIMEOUT_MS),
    SEND_COOLDOWN_SECONDS: '60',
    SEND_LIMIT_PER_IP_PER_HOUR: String(IP_LIMIT),
  });
});
afterAll(async () => {
  await stack.close();
});
beforeEach(() => stack.sandbox.reset());

let seq = 0;
const phone = (): string => `+9199${String(10_000_000 + ++seq).slice(-8)}`;
/** Each test sends from its own source IP, so the per-IP limit (3) is the test's own. */
let ipSeq = 0;
const ip = (): string => `198.51.100.${++ipSeq}`;
const key = (): string => `order-${randomBytes(8).toString('hex')}`;

const send = (phoneNumber: string, opts: { key?: string; sourceIp: string; raw?: string }) =>
  stack.send({ phoneNumber }, { sourceIp: opts.sourceIp, headers: opts.key === undefined ? {} : { 'idempotency-key': opts.key }, ...(opts.raw ? { raw: opts.raw } : {}) });

/**
 * stack.send swaps process.stdout.write for the duration of one invocation; overlapping invocations
 * restore each other's capture, which would leave stdout captured. Parallel batches restore it here.
 */
const parallel = async (requests: (() => Promise<Answer>)[]): Promise<Answer[]> => {
  const write = process.stdout.write;
  try {
    return await Promise.all(requests.map((r) => r()));
  } finally {
    process.stdout.write = write;
  }
};

const expectCreated = (answer: Answer): void => {
  expect(answer.status).toBe(201);
  expect(answer.body).toEqual({ otpRequestId: expect.any(String), expiresAt: expect.any(String), resendAfterSeconds: expect.any(Number) });
};

describe('replays', () => {
  it('same key and body: the same 201 body, one SMS, and not blocked by the cooldown a keyless send hits', async () => {
    const number = phone();
    const sourceIp = ip();
    const k = key();
    const first = await send(number, { key: k, sourceIp });
    expectCreated(first);
    expect(first.headers['idempotent-replayed']).toBeUndefined();

    const keyless = await send(number, { sourceIp });
    expect(keyless.status).toBe(429);
    expect(keyless.body.error).toBe('rate_limited');

    const again = await send(number, { key: k, sourceIp });
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    expect(again.headers['idempotent-replayed']).toBe('true');
    // The header's name is case-insensitive (API Gateway may pass any case).
    const cased = await stack.send({ phoneNumber: number }, { sourceIp, headers: { 'Idempotency-Key': k } });
    expect(cased.body).toEqual(first.body);

    expect(stack.sandbox.calls).toHaveLength(1);
    expect(stack.sandbox.calls.filter((c) => c.delivered)).toHaveLength(1);
    // The replayed otpRequestId is live: the one code delivered verifies with it.
    const verified = await stack.verify({ otpRequestId: again.body.otpRequestId, otp: stack.sandbox.lastCode(number) });
    expect(verified.status).toBe(200);
  });

  it('"same body" means the same request, not the same bytes: whitespace and key order do not matter', async () => {
    const number = phone();
    const sourceIp = ip();
    const k = key();
    const first = await send(number, { key: k, sourceIp });
    const spaced = await send(number, { key: k, sourceIp, raw: `{ \n "phoneNumber" :\t"${number}" }` });
    expect(spaced.status).toBe(201);
    expect(spaced.body).toEqual(first.body);
    expect(stack.sandbox.calls).toHaveLength(1);
  });

  it('replays consume no limit: after five replays the source IP still has its whole remaining budget', async () => {
    const sourceIp = ip();
    const k = key();
    const number = phone();
    expectCreated(await send(number, { key: k, sourceIp })); // 1 of IP_LIMIT
    for (let i = 0; i < 5; i += 1) expect((await send(number, { key: k, sourceIp })).status).toBe(201);
    // IP_LIMIT - 1 more sends fit, then the limit refuses.
    for (let i = 1; i < IP_LIMIT; i += 1) expectCreated(await send(phone(), { sourceIp }));
    const over = await send(phone(), { sourceIp });
    expect(over.status).toBe(429);
    expect(over.body.error).toBe('rate_limited');
    expect(stack.sandbox.calls).toHaveLength(IP_LIMIT);
  });

  it('the same key with another number is 409 idempotency_conflict, and sends nothing', async () => {
    const sourceIp = ip();
    const k = key();
    expectCreated(await send(phone(), { key: k, sourceIp }));
    const other = await send(phone(), { key: k, sourceIp });
    expect(other.status).toBe(409);
    expect(other.body).toEqual({ error: 'idempotency_conflict', message: expect.any(String) });
    expect(other.headers['content-type']).toBe('application/json');
    expect(stack.sandbox.calls).toHaveLength(1);
  });

  it('keys are per key: two keys for one number are two sends (the second meets the cooldown)', async () => {
    const number = phone();
    const sourceIp = ip();
    expectCreated(await send(number, { key: key(), sourceIp }));
    const second = await send(number, { key: key(), sourceIp });
    expect(second.status).toBe(429);
    expect(stack.sandbox.calls).toHaveLength(1);
  });
});

describe('parallel duplicates', () => {
  it.each([2, 10])('%i parallel requests with one key and body: all 201, one otpRequestId, exactly one SMS', async (n) => {
    const number = phone();
    const sourceIp = ip();
    const k = key();
    // A slow provider keeps the first request in flight while the others arrive.
    stack.sandbox.failNext({ delayMs: 150 });
    const answers = await parallel(Array.from({ length: n }, () => () => send(number, { key: k, sourceIp })));
    for (const a of answers) expectCreated(a);
    expect(new Set(answers.map((a) => a.body.otpRequestId)).size).toBe(1);
    expect(new Set(answers.map((a) => JSON.stringify(a.body))).size).toBe(1);
    expect(stack.sandbox.calls).toHaveLength(1);
    expect(stack.sandbox.calls.filter((c) => c.delivered)).toHaveLength(1);
    // They took one unit of the IP budget between them.
    for (let i = 1; i < IP_LIMIT; i += 1) expectCreated(await send(phone(), { sourceIp }));
    expect((await send(phone(), { sourceIp })).status).toBe(429);
  });

  it('two parallel requests with one key and different numbers: one 201, one 409, one SMS', async () => {
    const sourceIp = ip();
    const k = key();
    stack.sandbox.failNext({ delayMs: 150 });
    const answers = await parallel([() => send(phone(), { key: k, sourceIp }), () => send(phone(), { key: k, sourceIp })]);
    expect(answers.map((a) => a.status).sort()).toEqual([201, 409]);
    expect(answers.find((a) => a.status === 409)!.body.error).toBe('idempotency_conflict');
    expect(stack.sandbox.calls).toHaveLength(1);
  });
});

describe('the key itself', () => {
  const invalid: [string, string][] = [
    ['empty', ''],
    ['7 characters', 'abcdefg'],
    ['129 characters', 'a'.repeat(129)],
    ['a space', 'order 12345678'],
    ['a tab', 'order\t12345678'],
    ['a slash', 'order/12345678'],
    ['a plus', 'order+12345678'],
    ['non-ASCII letters', 'заказ-12345678'],
    ['an emoji', 'order-🙂-12345678'],
    ['fullwidth digits', 'order-１２３４５６７８'],
    ['a quote', 'order"12345678'],
  ];
  it.each(invalid)('%s → 400 invalid_request, nothing sent', async (_, k) => {
    const answer = await send(phone(), { key: k, sourceIp: ip() });
    expect(answer.status).toBe(400);
    expect(answer.body).toEqual({ error: 'invalid_request', message: expect.any(String) });
    expect(JSON.stringify(answer.body)).not.toContain(k.length > 0 ? k : '\u0000');
    expect(stack.sandbox.calls).toHaveLength(0);
  });

  it.each([
    ['8 characters, the shortest', 'a1_-:.Zz'],
    ['128 characters, the longest', 'k'.repeat(128)],
    ['a UUID', '6c1f3b5e-2a4d-4f8e-9b1a-0c2d3e4f5a6b'],
  ])('%s is accepted', async (_, k) => {
    const number = phone();
    const sourceIp = ip();
    expectCreated(await send(number, { key: k, sourceIp }));
    expect((await send(number, { key: k, sourceIp })).headers['idempotent-replayed']).toBe('true');
  });
});

describe('failures are not remembered; a retry with the key repeats the same action', () => {
  // With the default 60 s cooldown: an uncertain failure keeps the limits it took, and the retry with
  // the same key gets past them (it is "charged" already and cannot cost a second SMS).
  beforeAll(() => stack.coldStart({ SEND_COOLDOWN_SECONDS: '60', SEND_LIMIT_PER_IP_PER_HOUR: '1000' }));
  afterAll(() => stack.coldStart({ SEND_COOLDOWN_SECONDS: '60', SEND_LIMIT_PER_IP_PER_HOUR: String(IP_LIMIT) }));

  it('after a 502 the same key is retried and succeeds: the same code, the same provider key', async () => {
    const number = phone();
    const sourceIp = ip();
    const k = key();
    stack.sandbox.failNext({ status: 500 }, { status: 500 }, { status: 500 });
    const failed = await send(number, { key: k, sourceIp });
    expect(failed.status).toBe(502);
    expect(failed.body.error).toBe('upstream_error');
    const retried = await send(number, { key: k, sourceIp });
    expectCreated(retried);
    expect(retried.headers['idempotent-replayed']).toBeUndefined();
    const calls = stack.sandbox.calls;
    expect(calls.map((c) => c.status)).toEqual([500, 500, 500, 201]);
    expect(new Set(calls.map((c) => c.idempotencyKey)).size).toBe(1);
    expect(new Set(calls.map((c) => c.otp)).size).toBe(1);
    // And now the 201 is what is remembered.
    expect((await send(number, { key: k, sourceIp })).body).toEqual(retried.body);
    expect(stack.sandbox.calls).toHaveLength(4);
  });

  it('after a 4xx-mapped failure (provider 400) the key is free again too', async () => {
    const number = phone();
    const sourceIp = ip();
    const k = key();
    stack.sandbox.failNext({ status: 400 });
    expect((await send(number, { key: k, sourceIp })).status).toBe(502);
    expectCreated(await send(number, { key: k, sourceIp }));
  });

  it('after a 504 the retry sends the SAME code under the SAME provider idempotency key, and that code verifies', async () => {
    const number = phone();
    const sourceIp = ip();
    const k = key();
    stack.sandbox.failNext({ hang: true }, { hang: true }, { hang: true });
    const timedOut = await send(number, { key: k, sourceIp });
    expect(timedOut.status).toBe(504);
    expect(timedOut.body.error).toBe('upstream_timeout');
    const hung = [...stack.sandbox.calls];
    expect(hung).toHaveLength(3);

    const retried = await send(number, { key: k, sourceIp });
    expectCreated(retried);
    const last = stack.sandbox.calls.at(-1)!;
    expect(stack.sandbox.calls).toHaveLength(4);
    // The first attempt's cooldown still holds for anything but this key.
    expect((await send(number, { sourceIp })).status).toBe(429);
    expect((await send(number, { key: key(), sourceIp })).status).toBe(429);
    expect(last.idempotencyKey).toBe(hung[0]!.idempotencyKey);
    expect(last.otp).toBe(hung[0]!.otp);
    expect((await stack.verify({ otpRequestId: retried.body.otpRequestId, otp: last.otp })).status).toBe(200);
  });

  it('a provider that delivered but answered too late: the retry is deduplicated by the provider (one SMS) and the delivered code verifies', async () => {
    const number = phone();
    const sourceIp = ip();
    const k = key();
    const late = { delayMs: TIMEOUT_MS * 3 };
    stack.sandbox.failNext(late, late, late);
    const timedOut = await send(number, { key: k, sourceIp });
    expect(timedOut.status).toBe(504);
    await new Promise((r) => setTimeout(r, TIMEOUT_MS * 3)); // let the late answers land
    const delivered = stack.sandbox.lastCode(number);
    expect(delivered).toMatch(/^\d{6}$/);

    const retried = await send(number, { key: k, sourceIp });
    expectCreated(retried);
    expect(stack.sandbox.calls.filter((c) => c.delivered)).toHaveLength(1);
    expect((await stack.verify({ otpRequestId: retried.body.otpRequestId, otp: delivered })).status).toBe(200);
  });

  it('without a key, a retry after a 504 is a new action: it meets the cooldown the first attempt kept', async () => {
    const number = phone();
    const sourceIp = ip();
    stack.sandbox.failNext({ hang: true }, { hang: true }, { hang: true });
    expect((await send(number, { sourceIp })).status).toBe(504);
    const retry = await send(number, { sourceIp });
    expect(retry.status).toBe(429);
    expect(Number(retry.headers['retry-after'])).toBeGreaterThan(50);
    expect(stack.sandbox.calls).toHaveLength(3);
  });

  it('without a key and without a cooldown, a retry after a 504 is a new code under a new provider key', async () => {
    stack.coldStart({ SEND_COOLDOWN_SECONDS: '0', SEND_LIMIT_PER_IP_PER_HOUR: '1000' });
    const number = phone();
    const sourceIp = ip();
    stack.sandbox.failNext({ hang: true }, { hang: true }, { hang: true });
    expect((await send(number, { sourceIp })).status).toBe(504);
    expectCreated(await send(number, { sourceIp }));
    const [first, , , last] = stack.sandbox.calls;
    expect(last!.idempotencyKey).not.toBe(first!.idempotencyKey);
    expect(last!.otp).not.toBe(first!.otp);
  });

  it('a charged key with another body is still a conflict', async () => {
    stack.coldStart({ SEND_COOLDOWN_SECONDS: '60', SEND_LIMIT_PER_IP_PER_HOUR: '1000' });
    const sourceIp = ip();
    const k = key();
    stack.sandbox.failNext({ status: 503 }, { status: 503 }, { status: 503 });
    expect((await send(phone(), { key: k, sourceIp })).status).toBe(502);
    expect((await send(phone(), { key: k, sourceIp })).status).toBe(409);
  });
});
