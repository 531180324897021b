/**
 * Gaps a mutation run found (docs/mutation.md): the metrics the alarms read and the log level of each
 * kind of failure, through the real handlers. Each cause must be counted under its own Kind
 * (UpstreamError) and as a ServerError/ClientError, so that an alarm on it fires; the expected end of the
 * daily budget is a warning, not an error; a client's mistake is neither.
 */
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { emittedMetrics, logEntries, upstreamKinds } from '../support/emf';
import { startStack, type Answer, type Stack } from '../support/stack';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.close();
});
beforeEach(() => {
  stack.secrets.failAll(false);
  stack.sandbox.reset();
  // Every test starts from a cold start on healthy pieces.
  stack.coldStart({ AWS_ENDPOINT_URL_DYNAMODB: stack.dynamo.endpoint, AWS_ENDPOINT_URL_SECRETS_MANAGER: stack.secrets.endpoint, SEND_BUDGET_PER_DAY: undefined });
});

let seq = 0;
const phone = (): string => `+9196${String(10_000_000 + ++seq).slice(-8)}`;

const closedPort = async (): Promise<number> => {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
};

/** Runs one invocation and returns its answer with what it printed. */
const observe = async (invoke: () => Promise<Answer>) => {
  const from = stack.logs.length;
  const answer = await invoke();
  const printed = stack.logs.slice(from);
  return { answer, printed, metrics: emittedMetrics(printed).map((m) => m.name), kinds: upstreamKinds(printed), logs: logEntries(printed) };
};

const levelOf = (logs: Record<string, unknown>[], message: RegExp): unknown[] =>
  logs.filter((e) => typeof e.message === 'string' && message.test(e.message)).map((e) => e.level);

describe('each alarm-feeding failure is counted under its cause, and logged as an ERROR', () => {
  it('DynamoDB unreachable: 503, UpstreamError{Kind=store}, ServerError', async () => {
    stack.coldStart({ AWS_ENDPOINT_URL_DYNAMODB: `http://127.0.0.1:${await closedPort()}` });
    for (const invoke of [() => stack.send({ phoneNumber: phone() }), () => stack.verify({ otpRequestId: 'A'.repeat(60), otp: '123456' })]) {
      const seen = await observe(invoke);
      // (verify opens the id before any store call: a well-formed but foreign id is 410 without DynamoDB.)
      if (seen.answer.status === 410) continue;
      expect(seen.answer.status).toBe(503);
      expect(seen.answer.body.error).toBe('service_unavailable');
      expect(seen.kinds).toEqual(['store']);
      expect(seen.metrics).toContain('ServerError');
      expect(seen.metrics).not.toContain('ClientError');
      expect(levelOf(seen.logs, /failed/)).toEqual(['ERROR']);
    }
  });

  it('DynamoDB unreachable on verify (a real id): 503, UpstreamError{Kind=store}', async () => {
    const { otpRequestId, code } = await stack.sendAndRead(phone());
    stack.coldStart({ AWS_ENDPOINT_URL_DYNAMODB: `http://127.0.0.1:${await closedPort()}` });
    const seen = await observe(() => stack.verify({ otpRequestId, otp: code }));
    expect(seen.answer.status).toBe(503);
    expect(seen.kinds).toEqual(['store']);
    expect(seen.metrics).toContain('ServerError');
  });

  it('Secrets Manager unreachable: 503, UpstreamError{Kind=secrets}, ServerError', async () => {
    stack.secrets.failAll(true);
    stack.coldStart();
    const seen = await observe(() => stack.send({ phoneNumber: phone() }));
    expect(seen.answer.status).toBe(503);
    expect(seen.answer.body.error).toBe('service_unavailable');
    expect(seen.kinds).toEqual(['secrets']);
    expect(seen.metrics).toContain('ServerError');
    expect(levelOf(seen.logs, /failed/)).toEqual(['ERROR']);
    expect(stack.sandbox.calls).toHaveLength(0);
  });

  it('the StartMessaging wallet is empty (402): 503, UpstreamError{Kind=wallet}, ServerError', async () => {
    stack.sandbox.failAlways({ status: 402, body: JSON.stringify({ message: 'Insufficient wallet balance' }) });
    const seen = await observe(() => stack.send({ phoneNumber: phone() }));
    stack.sandbox.failAlways(undefined);
    expect(seen.answer.status).toBe(503);
    expect(seen.answer.body.error).toBe('service_unavailable');
    expect(seen.kinds).toEqual(['wallet']);
    expect(seen.metrics).toContain('ServerError');
    expect(levelOf(seen.logs, /failed/)).toEqual(['ERROR']);
  });

  it('StartMessaging answers 5xx: 502, UpstreamError{Kind=server_error}, ServerError', async () => {
    stack.sandbox.failAlways({ status: 500 });
    const seen = await observe(() => stack.send({ phoneNumber: phone() }));
    stack.sandbox.failAlways(undefined);
    expect(seen.answer.status).toBe(502);
    expect(seen.answer.body.error).toBe('upstream_error');
    expect(seen.kinds).toEqual(['server_error']);
    expect(seen.metrics).toContain('ServerError');
    expect(levelOf(seen.logs, /failed/)).toEqual(['ERROR']);
  });

  it('StartMessaging does not answer in time: 504, UpstreamError{Kind=timeout}, ServerError', async () => {
    stack.sandbox.failAlways({ hang: true });
    const seen = await observe(() => stack.send({ phoneNumber: phone() }));
    stack.sandbox.failAlways(undefined);
    expect(seen.answer.status).toBe(504);
    expect(seen.kinds).toEqual(['timeout']);
    expect(seen.metrics).toContain('ServerError');
  });
});

describe('expected refusals are not errors', () => {
  it('the daily budget spent: 503 with Retry-After, logged as a WARNING (no ERROR), counted as ServerError', async () => {
    stack.coldStart({ SEND_BUDGET_PER_DAY: '1' });
    // The table's budget may already be spent by earlier tests: one send, delivered or not, spends it.
    const calls = stack.sandbox.calls.length;
    expect([201, 503]).toContain((await stack.send({ phoneNumber: phone() })).status);
    const delivered = stack.sandbox.calls.length;
    expect(delivered - calls).toBeLessThanOrEqual(1);
    const seen = await observe(() => stack.send({ phoneNumber: phone() }));
    expect(seen.answer.status).toBe(503);
    expect(seen.answer.body.error).toBe('service_unavailable');
    expect(Number(seen.answer.headers['retry-after'])).toBeGreaterThan(0);
    expect(seen.metrics).toContain('ServerError');
    const levels = seen.logs.map((e) => e.level);
    expect(levels).toContain('WARN');
    expect(levels).not.toContain('ERROR');
    expect(stack.sandbox.calls).toHaveLength(delivered);
  });

  it('a client mistake (400, 410, 429): ClientError, no UpstreamError, nothing above INFO', async () => {
    const number = phone();
    await stack.sendAndRead(number);
    for (const invoke of [
      () => stack.send({ phoneNumber: 'not a number' }),
      () => stack.send({ phoneNumber: number, extra: 1 }),
      () => stack.verify({ otpRequestId: 'A'.repeat(60), otp: '123456' }),
      () => stack.send({ phoneNumber: number }),
    ]) {
      const seen = await observe(invoke);
      expect(seen.answer.status).toBeGreaterThanOrEqual(400);
      expect(seen.answer.status).toBeLessThan(500);
      expect(seen.metrics).toContain('ClientError');
      expect(seen.metrics).not.toContain('ServerError');
      expect(seen.kinds).toEqual([]);
      for (const e of seen.logs) expect(['INFO', 'DEBUG']).toContain(e.level);
    }
  });
});
