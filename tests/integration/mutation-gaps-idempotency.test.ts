/**
 * Gaps a mutation run found in the Idempotency-Key handling (docs/mutation.md), through the real send
 * handler: a duplicate never waits past its own Lambda's deadline (it answers 409 in time, rather than
 * being killed by a Lambda timeout), and a duplicate waiting on a first attempt that ends uncertainly
 * (provider timeout) takes over and completes the send.
 */
import { randomBytes } from 'node:crypto';
import { startStack, type Answer, type Stack } from '../support/stack';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ SEND_COOLDOWN_SECONDS: '60' });
});
afterAll(async () => {
  await stack?.close();
});
beforeEach(() => stack.sandbox.reset());

let seq = 0;
const phone = (): string => `+9195${String(10_000_000 + ++seq).slice(-8)}`;
const key = (): string => `gap-${randomBytes(8).toString('hex')}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const send = (phoneNumber: string, idempotencyKey: string, remainingMs?: number): Promise<Answer> =>
  stack.send({ phoneNumber }, { headers: { 'Idempotency-Key': idempotencyKey }, ...(remainingMs === undefined ? {} : { remainingMs }) });

/** Polls until the sandbox has received `n` provider calls: the first request's record is then surely pending. */
const providerCalls = async (n: number): Promise<void> => {
  for (let i = 0; i < 400 && stack.sandbox.calls.length < n; i++) await sleep(25);
  expect(stack.sandbox.calls.length).toBeGreaterThanOrEqual(n);
};

it('a duplicate gives up by its own deadline: 409 while the first is still sending, not a wait past it', async () => {
  const number = phone();
  const k = key();
  // Every provider attempt of the first request hangs (1 s timeout each, three attempts).
  stack.sandbox.failNext({ hang: true }, { hang: true }, { hang: true });
  const first = send(number, k);
  await providerCalls(1);
  // A duplicate whose Lambda has 2.5 s left cannot wait for the first (3 s or more): it must answer before
  // its deadline, and the only honest answer then is 409 "still being processed".
  const duplicate = await send(number, k, 2500);
  expect(duplicate.status).toBe(409);
  expect(duplicate.body.error).toBe('idempotency_conflict');
  expect((await first).status).toBe(504);
  // The first ended uncertainly: a retry with the key, with time to spare, completes the send.
  const retried = await send(number, k);
  expect(retried.status).toBe(201);
});

it('a duplicate waiting on a first attempt that times out takes over: 201, the code delivered verifies, not held back by the cooldown', async () => {
  const number = phone();
  const k = key();
  stack.sandbox.failNext({ hang: true }, { hang: true }, { hang: true });
  const first = send(number, k);
  await providerCalls(1);
  const duplicate = send(number, k, 25_000);
  const [a, b] = await Promise.all([first, duplicate]);
  expect(a.status).toBe(504);
  expect(b.status).toBe(201);
  const delivered = stack.sandbox.calls.filter((c) => c.delivered);
  expect(delivered).toHaveLength(1);
  expect((await stack.verify({ otpRequestId: b.body.otpRequestId, otp: delivered[0]!.otp })).status).toBe(200);
});
