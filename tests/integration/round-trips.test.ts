/**
 * Issue 12's budget, held here for the pools of issue 11: DynamoDB round trips ≤ 2 per send (new number or
 * trusted) and 1 per wrong-code verify, through the real handlers. Counted at the SDK client, as bench/ does:
 * a request issued while another is in flight belongs to the same round trip.
 */
import { startStack, type Stack } from '../support/stack';

jest.mock('@aws-sdk/lib-dynamodb', () => {
  const actual = jest.requireActual<typeof import('@aws-sdk/lib-dynamodb')>('@aws-sdk/lib-dynamodb');
  // The store sends every request through the document client: time each one there.
  const from = (...args: Parameters<typeof actual.DynamoDBDocumentClient.from>) => {
    const doc = actual.DynamoDBDocumentClient.from(...args);
    const send = doc.send.bind(doc) as (...a: unknown[]) => Promise<unknown>;
    (doc as unknown as { send: unknown }).send = (...a: unknown[]) => {
      const entry: { start: number; end?: number } = { start: performance.now() };
      ((globalThis as { __ddbLog?: { start: number; end?: number }[] }).__ddbLog ??= []).push(entry);
      return send(...a).finally(() => {
        entry.end = performance.now();
      });
    };
    return doc;
  };
  return { ...actual, DynamoDBDocumentClient: Object.assign(Object.create(actual.DynamoDBDocumentClient), { from }) };
});

const log = () => ((globalThis as { __ddbLog?: { start: number; end?: number }[] }).__ddbLog ??= []);
/** Round trips and requests of what `run` did. */
const measure = async (run: () => Promise<unknown>): Promise<{ requests: number; roundTrips: number }> => {
  log().length = 0;
  await run();
  const entries = [...log()].sort((a, b) => a.start - b.start);
  let roundTrips = 0;
  let openUntil = -Infinity;
  for (const e of entries) {
    if (e.start >= openUntil) roundTrips += 1;
    openUntil = Math.max(openUntil, e.end ?? Infinity);
  }
  return { requests: entries.length, roundTrips };
};

let s: Stack;
beforeAll(async () => {
  s = await startStack({ SEND_COOLDOWN_SECONDS: '0' });
  // Warm: the first invocation's secrets fetch and sockets are not what is measured.
  await s.sendAndRead('+919876599990');
});
afterAll(() => s.close());

it('a send to a new number (cooldown off: 5 rules): 2 round trips, the rules and the trust lookup in parallel, then the code', async () => {
  expect(await measure(() => s.send({ phoneNumber: '+919876599991' }))).toEqual({ requests: 7, roundTrips: 2 });
});

it('a send to a trusted number: still 2 (its pool unit goes back beside the code)', async () => {
  const { otpRequestId, code } = await s.sendAndRead('+919876599992');
  expect((await s.verify({ otpRequestId, otp: code })).status).toBe(200);
  expect(await measure(() => s.send({ phoneNumber: '+919876599992' }))).toEqual({ requests: 8, roundTrips: 2 });
});

it('a wrong-code verify: 1 round trip', async () => {
  const { otpRequestId, code } = await s.sendAndRead('+919876599993');
  expect(await measure(() => s.verify({ otpRequestId, otp: code === '000000' ? '111111' : '000000' }))).toEqual({ requests: 2, roundTrips: 1 });
});
