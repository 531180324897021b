/**
 * Issue 4: StartMessaging failures through the REAL send handler (Middy pipeline, dynalite, Secrets
 * Manager stand-in, sandbox provider over HTTP), mapped as shared/startmessaging.md and API.md say.
 *
 * Every provider answer below carries MARK (in its body, and for some in a header): our answer must
 * never contain it, nor the API key, nor anything else the provider said.
 */
import { API_KEY, startStack, type Answer, type Stack } from '../support/stack';
import type { SandboxFault } from '../../local/sandbox-provider';

const TIMEOUT_MS = 200;
const MARK = 'zq-provider-text-7781';
/** API.md, "Errors": the only fields an error body may have. */
const ERROR_FIELDS = new Set(['error', 'message', 'details', 'retryAfterSeconds', 'attemptsRemaining']);

let stack: Stack;
/**
 * Powertools writes ERROR and WARN lines to stderr, which the stack's capture (stdout) does not see:
 * they are collected here and put through the same hygiene check.
 */
const stderr: string[] = [];
const realStderrWrite = process.stderr.write.bind(process.stderr);
beforeAll(async () => {
  process.stderr.write = ((chunk: unknown, ...rest: unknown[]) => {
    stderr.push(String(chunk));
    return realStderrWrite(chunk as string, ...(rest as []));
  }) as typeof process.stderr.write;
  stack = await startStack({
    STARTMESSAGING_TIMEOUT_MS: String(TIMEOUT_MS),
    SEND_COOLDOWN_SECONDS: '0',
    SEND_LIMIT_PER_PHONE_PER_HOUR: '1000',
    SEND_LIMIT_PER_PHONE_PER_DAY: '1000',
    SEND_LIMIT_PER_IP_PER_HOUR: '1000',
  });
});
afterAll(async () => {
  process.stderr.write = realStderrWrite;
  // The stack's hygiene check (stdout), then the same for stderr: no API key, hash key, token key, number or code.
  await stack.close();
  // The stack checks only the codes of the calls since the last reset: all of them, in both streams, here.
  const text = stack.logs.join('') + stderr.join('');
  for (const secret of [API_KEY, stack.hashKey, stack.tokenKey.current.d, ...sent]) expect(text).not.toContain(secret);
  for (const code of codes) expect(text).not.toMatch(new RegExp(`(?<!\\d)${code}(?!\\d)`));
});
const codes = new Set<string>();
beforeEach(() => stack.sandbox.reset());
afterEach(() => {
  for (const c of stack.sandbox.calls) if (/^\d{4,8}$/.test(c.otp)) codes.add(c.otp);
});

let seq = 0;
/** A fresh Indian mobile number per send, so no per-number state links two tests. */
const sent: string[] = [];
const phone = (): string => {
  const number = `+9197${String(10_000_000 + ++seq).slice(-8)}`;
  sent.push(number);
  return number;
};

const json = (v: unknown): string => JSON.stringify(v);

/** The provider's words must not reach the client: not in the body, not in a header. */
const expectNothingFromProvider = (answer: Answer): void => {
  const visible = json(answer.body) + json(answer.headers);
  expect(visible).not.toContain(MARK);
  expect(visible).not.toContain(API_KEY);
  for (const providerText of ['Cannot POST', 'Insufficient', 'Invalid API key', 'Bad Request', 'html', 'statusCode', 'success']) {
    expect(visible).not.toContain(providerText);
  }
};

const expectError = (answer: Answer, status: number, code: string): void => {
  expect({ status: answer.status, error: answer.body.error }).toEqual({ status, error: code });
  expect(typeof answer.body.message).toBe('string');
  expect(String(answer.body.message).length).toBeGreaterThan(0);
  for (const key of Object.keys(answer.body)) expect(ERROR_FIELDS.has(key)).toBe(true);
  expect(answer.headers['content-type']).toBe('application/json');
  expectNothingFromProvider(answer);
};

const send = (number: string, headers: Record<string, string> = {}) => stack.send({ phoneNumber: number }, { headers });

describe('5xx and transport failures are retried with the same idempotency key', () => {
  it('500 on every attempt: three calls with one idempotency key, then 502 upstream_error', async () => {
    stack.sandbox.failAlways({ status: 500, body: json({ message: `db down ${MARK}` }), headers: { 'x-debug': MARK } });
    const answer = await send(phone());
    expectError(answer, 502, 'upstream_error');
    const calls = stack.sandbox.calls;
    expect(calls).toHaveLength(3);
    const keys = new Set(calls.map((c) => c.idempotencyKey));
    expect(keys.size).toBe(1);
    expect([...keys][0]).toEqual(expect.any(String));
    // The same key in the body and both header variants, on every attempt; and the same code.
    for (const c of calls) {
      expect(c.headers['idempotency-key']).toBe(c.idempotencyKey);
      expect(c.headers['x-idempotency-key']).toBe(c.idempotencyKey);
    }
    expect(new Set(calls.map((c) => c.otp)).size).toBe(1);
  });

  it.each([502, 503, 504])('%i then success: 201 after one retry', async (status) => {
    stack.sandbox.failNext({ status, body: MARK });
    const answer = await send(phone());
    expect(answer.status).toBe(201);
    expect(answer.body).toEqual({ otpRequestId: expect.any(String), expiresAt: expect.any(String), resendAfterSeconds: 0 });
    const calls = stack.sandbox.calls;
    expect(calls.map((c) => c.status)).toEqual([status, 201]);
    expect(calls[0]!.idempotencyKey).toBe(calls[1]!.idempotencyKey);
    expect(calls[0]!.otp).toBe(calls[1]!.otp);
  });

  it('the code delivered after a retry verifies', async () => {
    const number = phone();
    stack.sandbox.failNext({ status: 500 }, { reset: true });
    const answer = await send(number);
    expect(answer.status).toBe(201);
    expect(stack.sandbox.calls).toHaveLength(3);
    const verified = await stack.verify({ otpRequestId: answer.body.otpRequestId, otp: stack.sandbox.lastCode(number) });
    expect(verified.status).toBe(200);
  });

  it('a provider that never answers: 504 upstream_timeout within 3 × timeout + 3 s, after three attempts', async () => {
    stack.sandbox.failAlways({ hang: true });
    const started = Date.now();
    const answer = await send(phone());
    const elapsed = Date.now() - started;
    expectError(answer, 504, 'upstream_timeout');
    expect(elapsed).toBeLessThan(3 * TIMEOUT_MS + 3000);
    expect(elapsed).toBeGreaterThanOrEqual(3 * TIMEOUT_MS - 50);
    expect(stack.sandbox.calls).toHaveLength(3);
    expect(new Set(stack.sandbox.calls.map((c) => c.idempotencyKey)).size).toBe(1);
  });

  it('a 201 whose body never finishes is a timeout too (504), not a success', async () => {
    stack.sandbox.failAlways({ stallBody: true });
    const started = Date.now();
    const answer = await send(phone());
    expectError(answer, 504, 'upstream_timeout');
    expect(Date.now() - started).toBeLessThan(3 * TIMEOUT_MS + 3000);
    expect(stack.sandbox.calls).toHaveLength(3);
  });

  it('a late answer (slower than the timeout) is retried; the retry succeeds', async () => {
    stack.sandbox.failNext({ delayMs: TIMEOUT_MS * 3 });
    const answer = await send(phone());
    expect(answer.status).toBe(201);
    // The late one still lands (a slow provider still sends); the retry's key made it a replay, not a second SMS.
    await new Promise((r) => setTimeout(r, TIMEOUT_MS * 3));
    expect(stack.sandbox.calls.filter((c) => c.delivered)).toHaveLength(1);
  });

  it('the Lambda deadline bounds the attempts: with little time left there is no retry', async () => {
    stack.sandbox.failAlways({ hang: true });
    const started = Date.now();
    // The handler keeps 1.5 s for itself: this leaves ~300 ms for the provider, one attempt.
    const answer = await stack.send({ phoneNumber: phone() }, { remainingMs: 1800 });
    expectError(answer, 504, 'upstream_timeout');
    expect(Date.now() - started).toBeLessThan(1500);
    expect(stack.sandbox.calls).toHaveLength(1);
  });

  it('connection reset on every attempt: 502 after three attempts', async () => {
    stack.sandbox.failAlways({ reset: true });
    const answer = await send(phone());
    expectError(answer, 502, 'upstream_error');
    expect(stack.sandbox.calls).toHaveLength(3);
    expect(new Set(stack.sandbox.calls.map((c) => c.idempotencyKey)).size).toBe(1);
  });
});

describe("the provider's 429 becomes our 429 rate_limited with its Retry-After", () => {
  it('Retry-After in seconds', async () => {
    stack.sandbox.failNext({ status: 429, body: json({ message: `slow down ${MARK}` }), headers: { 'retry-after': '17' } });
    const answer = await send(phone());
    expectError(answer, 429, 'rate_limited');
    expect(answer.headers['retry-after']).toBe('17');
    expect(answer.body.retryAfterSeconds).toBe(17);
    expect(stack.sandbox.calls).toHaveLength(1); // a 429 is not retried
  });

  it('Retry-After as an HTTP date', async () => {
    const at = new Date(Date.now() + 45_000).toUTCString();
    stack.sandbox.failNext({ status: 429, body: MARK, headers: { 'retry-after': at } });
    const answer = await send(phone());
    expectError(answer, 429, 'rate_limited');
    const seconds = Number(answer.headers['retry-after']);
    expect(Number.isInteger(seconds)).toBe(true);
    expect(seconds).toBeGreaterThanOrEqual(43);
    expect(seconds).toBeLessThanOrEqual(46);
    expect(answer.body.retryAfterSeconds).toBe(seconds);
  });

  it.each([
    ['no Retry-After', {}],
    ['an unreadable Retry-After', { 'retry-after': `soon ${MARK}` }],
    ['a date in the past', { 'retry-after': 'Wed, 21 Oct 2015 07:28:00 GMT' }],
  ])('%s: still a whole number of seconds, at least 1', async (_, headers) => {
    stack.sandbox.failNext({ status: 429, body: MARK, headers });
    const answer = await send(phone());
    expectError(answer, 429, 'rate_limited');
    const seconds = Number(answer.headers['retry-after']);
    expect(Number.isInteger(seconds) && seconds >= 1).toBe(true);
    expect(answer.body.retryAfterSeconds).toBe(seconds);
  });
});

describe('4xx answers are not retried', () => {
  const bodies: [string, number, SandboxFault][] = [
    ['401 bad key', 401, { status: 401, body: json({ message: `Invalid API key ${API_KEY} ${MARK}`, error: 'Unauthorized', statusCode: 401 }) }],
    ['403 revoked key', 403, { status: 403, body: json({ error: { code: 'FORBIDDEN', message: `key revoked ${MARK}` } }) }],
    ['403 insufficient permissions (not money)', 403, { status: 403, body: json({ message: `Insufficient permissions ${MARK}` }) }],
    ['404 endpoint missing', 404, { status: 404, body: json({ message: `Cannot POST /otp/send ${MARK}`, error: 'Not Found', statusCode: 404 }) }],
    ['409 idempotency conflict', 409, { status: 409, body: json({ success: false, error: { code: 'IDEMPOTENCY_CONFLICT', message: MARK } }) }],
    ['400 rejected', 400, { status: 400, body: json({ message: [`phoneNumber ${MARK}`, 'variables.otp'], error: 'Bad Request' }) }],
    ['422 rejected', 422, { status: 422, body: json({ error: `unprocessable ${MARK}`, code: 'E_VALIDATION' }) }],
    ['418 (any other 4xx)', 418, { status: 418, body: MARK }],
    ['302 redirect (not followed)', 302, { status: 302, body: MARK, headers: { location: 'http://127.0.0.1:9/steal-the-key' } }],
  ];
  it.each(bodies)('%s → 502 upstream_error after one call', async (_, status, fault) => {
    stack.sandbox.failAlways(fault);
    const answer = await send(phone());
    expectError(answer, 502, 'upstream_error');
    expect(stack.sandbox.calls.map((c) => c.status)).toEqual([status]);
  });

  const wallet: [string, SandboxFault][] = [
    ['402', { status: 402, body: json({ message: `Payment required ${MARK}` }) }],
    ['403 "Insufficient balance"', { status: 403, body: json({ success: false, message: `Insufficient balance ${MARK}` }) }],
    ['403 with a credit error code', { status: 403, body: json({ error: { code: 'INSUFFICIENT_CREDITS', message: MARK } }) }],
  ];
  it.each(wallet)('%s (wallet empty) → 503 service_unavailable after one call', async (_, fault) => {
    stack.sandbox.failAlways(fault);
    const answer = await send(phone());
    expectError(answer, 503, 'service_unavailable');
    expect(stack.sandbox.calls).toHaveLength(1);
  });
});

describe('answers that cannot be read are 502', () => {
  const unreadable: [string, SandboxFault][] = [
    ['an HTML 200', { status: 200, body: `<html><body>${MARK}</body></html>`, headers: { 'content-type': 'text/html' } }],
    ['truncated JSON', { status: 201, body: `{"success":true,"data":{"otpRequestId":"${MARK}` }],
    ['a JSON array', { status: 201, body: json([MARK]) }],
    ['an empty 201', { status: 201, body: '' }],
    ['success: false with a 200', { status: 200, body: json({ success: false, message: MARK }) }],
  ];
  it.each(unreadable)('%s → 502 upstream_error', async (_, fault) => {
    stack.sandbox.failAlways(fault);
    const answer = await send(phone());
    expectError(answer, 502, 'upstream_error');
    expect(stack.sandbox.calls.length).toBeGreaterThanOrEqual(1);
    expect(stack.sandbox.calls.length).toBeLessThanOrEqual(3);
  });
});

describe('logs of provider failures', () => {
  it('name the failure (status, kind) without the provider text, the key or the number', async () => {
    const number = phone();
    stack.sandbox.failAlways({ status: 401, body: json({ message: `Invalid API key ${API_KEY} for ${number} ${MARK}` }) });
    const before = [stack.logs.length, stderr.length];
    const answer = await send(number);
    expectError(answer, 502, 'upstream_error');
    const lines = [...stack.logs.slice(before[0]), ...stderr.slice(before[1])].join('').split('\n').filter((l) => l.trim() !== '');
    const failed = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.message === 'request failed');
    expect(failed).toMatchObject({ level: 'ERROR', status: 502, code: 'upstream_error', kind: 'unauthorized', upstreamStatus: 401 });
    const text = lines.join('\n');
    expect(text).not.toContain(API_KEY);
    expect(text).not.toContain(number);
  });
});
