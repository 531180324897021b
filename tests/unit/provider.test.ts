/**
 * The StartMessaging client against the sandbox provider, over real HTTP on 127.0.0.1.
 * Backoff sleeps are injected (recorded, not waited) except where a test needs real time.
 */
import { createServer } from 'node:net';
import { inspect } from 'node:util';
import { OtpError, ProviderRateLimited, RateLimited, ServiceUnavailable, UpstreamError, UpstreamTimeout } from '../../lib/errors';
import {
  createStartMessagingClient,
  providerDetail,
  type AttemptInfo,
  type SendOtpInput,
  type StartMessagingClientOptions,
} from '../../lib/provider/startmessaging';
import { startSandboxProvider, type Sandbox } from '../../local/sandbox-provider';

const API_KEY = 'sm_live_K3y_do_not_leak';
const PHONE = '+919876543210';
/** Put into every faked provider body: it must never reach a thrown error's visible surface. */
const MARK = 'zq-provider-said';

let sandbox: Sandbox;
beforeAll(async () => {
  sandbox = await startSandboxProvider({ apiKey: API_KEY, quiet: true });
});
afterAll(() => sandbox.close());
beforeEach(() => sandbox.reset());

const setup = (over: Partial<StartMessagingClientOptions> = {}) => {
  const sleeps: number[] = [];
  const attempts: AttemptInfo[] = [];
  const client = createStartMessagingClient({
    baseUrl: sandbox.url,
    timeoutMs: 2000,
    sleep: async (ms) => void sleeps.push(ms),
    onAttempt: (info) => attempts.push(info),
    ...over,
  });
  return { client, sleeps, attempts };
};

let seq = 0;
const input = (over: Partial<SendOtpInput> = {}): SendOtpInput => ({
  apiKey: API_KEY,
  phoneNumber: PHONE,
  otp: '493817',
  idempotencyKey: `idem-${Date.now()}-${++seq}`,
  ...over,
});

/** Every visible rendering of an error: none may hold the key or provider text. */
const expectNoLeak = (error: unknown): void => {
  const e = error as OtpError;
  const views = [String(e), e.message, e.stack ?? '', JSON.stringify(e), JSON.stringify(e.toBody()), inspect(e), JSON.stringify(Object.entries(e))];
  for (const view of views) {
    expect(view).not.toContain(API_KEY);
    expect(view).not.toContain(MARK);
    for (const providerText of ['Insufficient', 'Cannot POST', 'Invalid API key', 'Bad Request', 'variables.otp']) {
      expect(view).not.toContain(providerText);
    }
  }
  // The detail for logs exists but is hidden from serialisers, and even it never holds the key.
  expect(Object.keys(e)).not.toContain('providerDetail');
  expect(JSON.stringify(providerDetail(e) ?? {})).not.toContain(API_KEY);
};

const failure = async (promise: Promise<unknown>): Promise<OtpError> => {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(OtpError);
    expectNoLeak(error);
    return error as OtpError;
  }
  throw new Error('expected sendOtp to fail');
};

const json = (body: unknown) => JSON.stringify(body);

describe('success', () => {
  test('sends the documented request and returns the ids', async () => {
    const { client, attempts } = setup();
    const req = input({ appName: 'Acme', templateId: 'tpl-1' });
    const result = await client.sendOtp(req);

    expect(result.attempts).toBe(1);
    expect(result.providerOtpId).toMatch(/^[0-9a-f-]{36}$/);
    expect(result.messageId).toMatch(/^msg_/);
    expect(result.traceId).toMatch(/^req_/);
    expect(result.providerOtpId).not.toBe(result.traceId);
    expect(sandbox.calls).toHaveLength(1);
    const call = sandbox.calls[0]!;
    expect(call.headers['x-api-key']).toBe(API_KEY);
    expect(call.headers['content-type']).toBe('application/json');
    expect(call.headers['idempotency-key']).toBe(req.idempotencyKey);
    expect(call.headers['x-idempotency-key']).toBe(req.idempotencyKey);
    expect(call.body).toEqual({
      phoneNumber: PHONE,
      variables: { otp: '493817', appName: 'Acme' },
      templateId: 'tpl-1',
      idempotencyKey: req.idempotencyKey,
    });
    expect(sandbox.lastCode(PHONE)).toBe('493817');
    expect(attempts).toEqual([expect.objectContaining({ attempt: 1, status: 201, outcome: 'sent' })]);
  });

  test('omits appName and templateId when not configured', async () => {
    const { client } = setup();
    const req = input();
    await client.sendOtp(req);
    expect(sandbox.calls[0]!.body).toEqual({ phoneNumber: PHONE, variables: { otp: '493817' }, idempotencyKey: req.idempotencyKey });
  });

  test('falls back to data.requestId; the top-level requestId is only the trace id', async () => {
    const { client } = setup();
    sandbox.failNext(
      { status: 201, body: json({ success: true, requestId: 'trace-1', data: { requestId: 'otp-2', messageId: 'm-1' } }) },
      { status: 200, body: json({ success: true, requestId: 'trace-2', data: { status: 'queued' } }) },
    );
    expect(await client.sendOtp(input())).toEqual({ providerOtpId: 'otp-2', messageId: 'm-1', traceId: 'trace-1', attempts: 1 });
    expect(await client.sendOtp(input())).toEqual({ providerOtpId: undefined, messageId: undefined, traceId: 'trace-2', attempts: 1 });
  });

  test('a repeat with the same idempotency key is a replay: same id, no second SMS', async () => {
    const { client } = setup();
    const req = input();
    const first = await client.sendOtp(req);
    const second = await client.sendOtp({ ...req, otp: '111111' });
    expect(second.providerOtpId).toBe(first.providerOtpId);
    expect(sandbox.calls).toHaveLength(1);
    expect(sandbox.lastCode(PHONE)).toBe('493817');
  });

  test('a broken onAttempt hook does not fail a delivered code', async () => {
    const { client } = setup({ onAttempt: () => { throw new Error('logger down'); } });
    await expect(client.sendOtp(input())).resolves.toMatchObject({ attempts: 1 });
  });
});

describe('provider error table (no retry for any 4xx)', () => {
  const cases: Array<[string, () => void, (e: OtpError) => void]> = [
    ['400', () => sandbox.failNext({ status: 400, body: json({ message: [`${MARK} phoneNumber invalid`], error: 'Bad Request', statusCode: 400 }) }),
      (e) => expect(e).toMatchObject({ kind: 'rejected', upstreamStatus: 400, statusCode: 502 })],
    ['422', () => sandbox.failNext({ status: 422, body: json({ message: `${MARK} Unprocessable` }) }),
      (e) => expect(e).toMatchObject({ kind: 'rejected', upstreamStatus: 422 })],
    ['401', () => sandbox.failNext({ status: 401, body: json({ message: `${MARK} Invalid API key ${API_KEY}` }) }),
      (e) => expect(e).toMatchObject({ kind: 'unauthorized', upstreamStatus: 401 })],
    ['403 (key)', () => sandbox.failNext({ status: 403, body: json({ message: `${MARK} Forbidden resource`, error: 'Forbidden', statusCode: 403 }) }),
      (e) => expect(e).toMatchObject({ kind: 'unauthorized', upstreamStatus: 403 })],
    ['403 insufficient permissions', () => sandbox.failNext({ status: 403, body: json({ message: `${MARK} Insufficient permissions` }) }),
      (e) => expect(e).toMatchObject({ kind: 'unauthorized' })],
    ['403 Insufficient balance', () => sandbox.failNext({ status: 403, body: json({ message: `${MARK} Insufficient balance` }) }),
      (e) => expect(e).toMatchObject({ reason: 'wallet', statusCode: 503 })],
    ['402', () => sandbox.failNext({ status: 402, body: json({ message: `${MARK} Payment Required` }) }),
      (e) => expect(e).toMatchObject({ reason: 'wallet', statusCode: 503 })],
    ['404', () => sandbox.failNext({ status: 404, body: json({ message: `Cannot POST /otp/send ${MARK}`, error: 'Not Found', statusCode: 404 }) }),
      (e) => expect(e).toMatchObject({ kind: 'not_found', upstreamStatus: 404 })],
    ['409', () => sandbox.failNext({ status: 409, body: json({ error: { code: 'IDEMPOTENCY_CONFLICT', message: MARK } }) }),
      (e) => expect(e).toMatchObject({ kind: 'conflict', upstreamStatus: 409 })],
    ['418 (other 4xx)', () => sandbox.failNext({ status: 418, body: json({ message: MARK }) }),
      (e) => expect(e).toMatchObject({ kind: 'rejected', upstreamStatus: 418 })],
    ['200 success:false', () => sandbox.failNext({ status: 200, body: json({ success: false, message: MARK }) }),
      (e) => expect(e).toMatchObject({ kind: 'rejected', upstreamStatus: 200 })],
    ['200 HTML', () => sandbox.failNext({ status: 200, body: `<html><body>${MARK}</body></html>`, headers: { 'content-type': 'text/html' } }),
      (e) => expect(e).toMatchObject({ kind: 'bad_response', upstreamStatus: 200 })],
    ['302 (redirects are not followed: they would carry the key elsewhere)',
      () => sandbox.failNext({ status: 302, headers: { location: 'http://127.0.0.1:9/steal' }, body: json({ message: MARK }) }),
      (e) => expect(e).toMatchObject({ kind: 'bad_response', upstreamStatus: 302 })],
    ['201 truncated JSON', () => sandbox.failNext({ status: 201, body: '{"success":true,"data":{"otpRequestId":"ab' }),
      (e) => expect(e).toMatchObject({ kind: 'bad_response', upstreamStatus: 201 })],
  ];

  test.each(cases)('%s', async (_name, arrange, check) => {
    const { client, sleeps, attempts } = setup();
    arrange();
    const error = await failure(client.sendOtp(input()));
    check(error);
    expect(error instanceof UpstreamError || error instanceof ServiceUnavailable).toBe(true);
    expect(sandbox.calls).toHaveLength(1);
    expect(sleeps).toEqual([]);
    expect(attempts).toHaveLength(1);
    expect(providerDetail(error)).toMatchObject({ attempt: 1 });
  });

  test('404 from a real missing route', async () => {
    const { client, attempts } = setup({ baseUrl: `${sandbox.url}/v2/` });
    const error = await failure(client.sendOtp(input()));
    expect(error).toMatchObject({ kind: 'not_found', upstreamStatus: 404 });
    expect(attempts).toEqual([expect.objectContaining({ status: 404, outcome: 'not_found', providerMessage: 'Cannot POST /v2/otp/send' })]);
  });

  test('409 from a real idempotency conflict (same key, other number)', async () => {
    const { client } = setup();
    const req = input();
    await client.sendOtp(req);
    const error = await failure(client.sendOtp({ ...req, phoneNumber: '+919123456789' }));
    expect(error).toMatchObject({ kind: 'conflict', upstreamStatus: 409 });
    expect(sandbox.lastCode('+919123456789')).toBeUndefined();
  });

  test('401 from the sandbox for a wrong key; the key is not echoed anywhere', async () => {
    const { client, attempts } = setup();
    const error = await failure(client.sendOtp(input({ apiKey: 'sm_live_wrong' })));
    expect(error).toMatchObject({ kind: 'unauthorized', upstreamStatus: 401 });
    expect(attempts[0]).toMatchObject({ outcome: 'unauthorized', retryable: false });
  });

  test('429 with Retry-After in seconds', async () => {
    const { client, sleeps } = setup();
    sandbox.failNext({ status: 429, headers: { 'retry-after': '7' }, body: json({ message: MARK }) });
    const error = await failure(client.sendOtp(input()));
    expect(error).toBeInstanceOf(ProviderRateLimited);
    expect(error).toBeInstanceOf(RateLimited);
    expect(error.extra.retryAfterSeconds).toBe(7);
    expect(error.headers['Retry-After']).toBe('7');
    expect(sleeps).toEqual([]);
    expect(sandbox.calls).toHaveLength(1);
  });

  test('429 with Retry-After as an HTTP date', async () => {
    const now = Date.parse('Wed, 21 Oct 2026 07:28:00 GMT');
    const { client } = setup({ now: () => now });
    sandbox.failNext({ status: 429, headers: { 'retry-after': 'Wed, 21 Oct 2026 07:28:30 GMT' } });
    const error = await failure(client.sendOtp(input()));
    expect(error).toBeInstanceOf(ProviderRateLimited);
    expect(error.extra.retryAfterSeconds).toBe(30);
  });

  test.each([
    ['absent', undefined, 1],
    ['unparseable', 'soon', 1],
    ['zero', '0', 1],
    ['fractional', '2.5', 3],
    ['a date in the past', 'Wed, 21 Oct 2015 07:28:00 GMT', 1],
  ])('429 with Retry-After %s', async (_name, header, expected) => {
    const { client } = setup();
    sandbox.failNext({ status: 429, ...(header === undefined ? {} : { headers: { 'retry-after': header } }) });
    const error = await failure(client.sendOtp(input()));
    expect(error.extra.retryAfterSeconds).toBe(expected);
  });
});

describe('error body shapes', () => {
  test('message as an array (the sandbox validation answer)', async () => {
    const { client, attempts } = setup();
    const error = await failure(client.sendOtp(input({ otp: '' })));
    expect(error).toMatchObject({ kind: 'rejected', upstreamStatus: 400 });
    expect(attempts[0]!.providerMessage).toBe('variables.otp must be a string of 4 to 8 digits');
  });

  test('error.message with error.code', async () => {
    const { client, attempts } = setup();
    sandbox.failNext({ status: 403, body: json({ success: false, error: { code: 'INSUFFICIENT_BALANCE', message: `${MARK} Wallet is empty` } }) });
    const error = await failure(client.sendOtp(input()));
    expect(error).toBeInstanceOf(ServiceUnavailable);
    expect(attempts[0]).toMatchObject({ providerCode: 'INSUFFICIENT_BALANCE', providerMessage: `${MARK} Wallet is empty` });
    expect(providerDetail(error)).toMatchObject({ status: 403, outcome: 'wallet', providerCode: 'INSUFFICIENT_BALANCE' });
  });

  test('error as a string with a top-level code', async () => {
    const { client, attempts } = setup();
    sandbox.failNext({ status: 403, body: json({ error: `${MARK} Insufficient credit`, code: 'E_CREDIT' }) });
    const error = await failure(client.sendOtp(input()));
    expect(error).toMatchObject({ reason: 'wallet' });
    expect(attempts[0]).toMatchObject({ providerCode: 'E_CREDIT', providerMessage: `${MARK} Insufficient credit` });
  });

  test('a code alone can say "balance"', async () => {
    const { client } = setup();
    sandbox.failNext({ status: 403, body: json({ code: 'LOW_BALANCE', message: 'Forbidden' }) });
    expect(await failure(client.sendOtp(input()))).toMatchObject({ reason: 'wallet' });
  });

  test('provider text for logs has the key, numbers and codes redacted', async () => {
    const { client, attempts } = setup();
    sandbox.failNext({ status: 400, body: json({ message: `key ${API_KEY} cannot send 493817 to ${PHONE}` }) });
    const error = await failure(client.sendOtp(input()));
    const logged = JSON.stringify([attempts, providerDetail(error)]);
    expect(logged).not.toContain(API_KEY);
    expect(logged).not.toContain('9876543210');
    expect(logged).not.toContain('493817');
    expect(attempts[0]!.providerMessage).toBe('key [key] cannot send [digits] to [digits]');
  });
});

describe('retries', () => {
  test('500 then success: one retry, same idempotency key everywhere, jittered backoff', async () => {
    const { client, sleeps, attempts } = setup({ random: () => 0.5 });
    sandbox.failNext({ status: 500, body: json({ message: MARK }) });
    const req = input();
    const result = await client.sendOtp(req);
    expect(result.attempts).toBe(2);
    expect(sleeps).toEqual([300]);
    expect(attempts.map((a) => a.outcome)).toEqual(['server_error', 'sent']);
    expect(sandbox.calls).toHaveLength(2);
    for (const call of sandbox.calls) {
      expect(call.idempotencyKey).toBe(req.idempotencyKey);
      expect(call.headers['idempotency-key']).toBe(req.idempotencyKey);
      expect(call.headers['x-idempotency-key']).toBe(req.idempotencyKey);
    }
    expect(sandbox.calls.map((c) => c.delivered)).toEqual([false, true]);
  });

  test('500 three times: 502 server_error after exactly 3 attempts, backoff under 3 s', async () => {
    const { client, sleeps } = setup({ random: () => 0.999 });
    sandbox.failAlways({ status: 503, body: json({ message: MARK }) });
    const error = await failure(client.sendOtp(input()));
    expect(error).toMatchObject({ kind: 'server_error', upstreamStatus: 503, statusCode: 502 });
    expect(sandbox.calls).toHaveLength(3);
    expect(sleeps).toHaveLength(2);
    expect(sleeps[0]).toBeGreaterThanOrEqual(200);
    expect(sleeps[0]).toBeLessThan(400);
    expect(sleeps[1]).toBeGreaterThanOrEqual(600);
    expect(sleeps[1]).toBeLessThan(1200);
    expect(sleeps[0]! + sleeps[1]!).toBeLessThan(3000);
    expect(providerDetail(error)).toMatchObject({ attempt: 3, outcome: 'server_error', status: 503 });
  });

  test('maxAttempts is capped at 3', async () => {
    const { client } = setup({ maxAttempts: 10 });
    sandbox.failAlways({ status: 500 });
    await failure(client.sendOtp(input()));
    expect(sandbox.calls).toHaveLength(3);
  });

  test('a hung provider: 504 within 3 × timeout + backoff (real timers)', async () => {
    const attempts: AttemptInfo[] = [];
    const client = createStartMessagingClient({ baseUrl: sandbox.url, timeoutMs: 150, onAttempt: (a) => attempts.push(a) });
    sandbox.failAlways({ hang: true });
    const started = Date.now();
    const error = await failure(client.sendOtp(input()));
    const elapsed = Date.now() - started;
    expect(error).toBeInstanceOf(UpstreamTimeout);
    expect(error.statusCode).toBe(504);
    expect(sandbox.calls).toHaveLength(3);
    expect(attempts.map((a) => a.outcome)).toEqual(['timeout', 'timeout', 'timeout']);
    expect(elapsed).toBeGreaterThanOrEqual(3 * 150 + 800 - 20);
    expect(elapsed).toBeLessThan(3 * 150 + 1600 + 700);
  });

  test('a hang then success', async () => {
    const { client } = setup({ timeoutMs: 150 });
    sandbox.failNext({ hang: true });
    await expect(client.sendOtp(input())).resolves.toMatchObject({ attempts: 2 });
  });

  test('the timeout also covers a body that stalls after the headers', async () => {
    const { client, attempts } = setup({ timeoutMs: 150, maxAttempts: 1 });
    sandbox.failNext({ stallBody: true });
    const started = Date.now();
    await expect(failure(client.sendOtp(input()))).resolves.toBeInstanceOf(UpstreamTimeout);
    expect(Date.now() - started).toBeLessThan(1500);
    expect(attempts[0]).toMatchObject({ outcome: 'timeout' });
  });

  test('a slow answer times out; the retry with the same key is a replay, so only one SMS', async () => {
    const { client } = setup({ timeoutMs: 150, sleep: (ms) => new Promise((r) => setTimeout(r, Math.max(ms, 400))) });
    sandbox.failNext({ delayMs: 300 });
    const result = await client.sendOtp(input());
    expect(result.attempts).toBe(2);
    expect(sandbox.calls.filter((c) => c.delivered)).toHaveLength(1);
  });

  test('connection reset three times: 502 connection', async () => {
    const { client, sleeps, attempts } = setup();
    sandbox.failAlways({ reset: true });
    const error = await failure(client.sendOtp(input()));
    expect(error).toMatchObject({ kind: 'connection', statusCode: 502 });
    expect(sandbox.calls).toHaveLength(3);
    expect(sleeps).toHaveLength(2);
    expect(attempts.every((a) => a.outcome === 'connection' && a.retryable)).toBe(true);
  });

  test('a reset then success', async () => {
    const { client } = setup();
    sandbox.failNext({ reset: true });
    await expect(client.sendOtp(input())).resolves.toMatchObject({ attempts: 2 });
  });

  test('connection refused: retried, then 502 connection', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
    const { port } = closed.address() as { port: number };
    await new Promise<void>((r) => closed.close(() => r()));
    const { client, attempts } = setup({ baseUrl: `http://127.0.0.1:${port}` });
    const error = await failure(client.sendOtp(input()));
    expect(error).toMatchObject({ kind: 'connection' });
    expect(attempts).toHaveLength(3);
    expect(attempts[0]).toMatchObject({ providerCode: 'ECONNREFUSED', providerMessage: expect.stringContaining('ECONNREFUSED') });
  });

  test('a local fault (an API key that is not a valid header value) is not retried and not quoted', async () => {
    const { client, attempts } = setup();
    const error = await failure(client.sendOtp(input({ apiKey: `${API_KEY}\nx` })));
    expect(error).toMatchObject({ kind: 'connection' });
    expect(attempts).toEqual([expect.objectContaining({ outcome: 'connection', retryable: false, providerCode: 'TypeError' })]);
    expect(JSON.stringify(attempts)).not.toContain(API_KEY);
    expect(sandbox.calls).toHaveLength(0);
  });

  test('failAlways can be cleared', async () => {
    const { client } = setup();
    sandbox.failAlways({ status: 500 });
    sandbox.failAlways(undefined);
    await expect(client.sendOtp(input())).resolves.toMatchObject({ attempts: 1 });
  });
});

describe('deadline', () => {
  test('no attempt when the deadline has already passed', async () => {
    const { client } = setup({ now: () => 10_000 });
    const error = await failure(client.sendOtp(input({ deadline: 10_000 })));
    expect(error).toBeInstanceOf(UpstreamTimeout);
    expect(providerDetail(error)).toMatchObject({ attempt: 0 });
    expect(sandbox.calls).toHaveLength(0);
  });

  test('no sleep and no attempt past the deadline', async () => {
    let clock = 1_000_000;
    const starts: number[] = [];
    const sleeps: number[] = [];
    const { client } = setup({
      now: () => clock,
      random: () => 0.5,
      sleep: async (ms) => {
        sleeps.push(ms);
        clock += ms;
      },
      fetch: (...args) => {
        starts.push(clock);
        return fetch(...args);
      },
    });
    sandbox.failAlways({ status: 500 });
    const deadline = clock + 500;
    const error = await failure(client.sendOtp(input({ deadline })));
    expect(error).toMatchObject({ kind: 'server_error' });
    // 300 ms of backoff fits; the next 900 ms would not, so the client gives up instead of sleeping.
    expect(sleeps).toEqual([300]);
    expect(starts).toHaveLength(2);
    expect(starts.every((t) => t < deadline)).toBe(true);
  });

  test('the deadline shortens an attempt (real timers)', async () => {
    const { client } = setup({ timeoutMs: 5000 });
    sandbox.failAlways({ hang: true });
    const started = Date.now();
    const error = await failure(client.sendOtp(input({ deadline: started + 250 })));
    expect(error).toBeInstanceOf(UpstreamTimeout);
    expect(Date.now() - started).toBeLessThan(1500);
    expect(sandbox.calls).toHaveLength(1);
  });
});

describe('sandbox', () => {
  test('prints each delivered code with the number masked', async () => {
    const lines: string[] = [];
    const own = await startSandboxProvider({ print: (l) => lines.push(l) });
    try {
      const client = createStartMessagingClient({ baseUrl: own.url, timeoutMs: 2000 });
      await client.sendOtp(input());
      expect(lines).toEqual(['[sandbox-sms] +91******3210 code 493817']);
      expect(own.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    } finally {
      await own.close();
    }
  });

  test('unknown path → 404 Cannot POST; missing variables.otp → 400', async () => {
    const notFound = await fetch(`${sandbox.url}/x`, { method: 'POST', body: '{}' });
    expect(notFound.status).toBe(404);
    expect(await notFound.json()).toEqual({ message: 'Cannot POST /x', error: 'Not Found', statusCode: 404 });

    const missing = await fetch(`${sandbox.url}/otp/send`, {
      method: 'POST',
      headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' },
      body: json({ phoneNumber: PHONE, variables: {} }),
    });
    expect(missing.status).toBe(400);
    expect(sandbox.calls).toEqual([expect.objectContaining({ delivered: false, status: 400 })]);
  });

  test('close() ends hung connections promptly', async () => {
    const own = await startSandboxProvider({ quiet: true });
    own.failAlways({ hang: true });
    const pending = fetch(`${own.url}/otp/send`, { method: 'POST', body: json({}) }).then(
      () => 'answered',
      () => 'failed',
    );
    while (own.calls.length === 0) await new Promise((r) => setTimeout(r, 5));
    const started = Date.now();
    await own.close();
    expect(await pending).toBe('failed');
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
