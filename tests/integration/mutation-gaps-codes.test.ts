/**
 * Gaps a mutation run found (docs/mutation.md), closed through the real handlers so the tests hold
 * whatever the code looks like inside:
 * - codes are fresh and uniform: a constant or skewed code generator must fail here;
 * - every code has exactly OTP_LENGTH digits, leading zeros included;
 * - every item the service writes to DynamoDB carries a TTL that DynamoDB may act on only after
 *   the item stops mattering (a counter's TTL after its window's end), since real DynamoDB
 *   deletes expired items and a counter deleted mid-window resets its limit;
 * - an otpRequestId is accepted only as issued: another spelling of the same bytes is 410.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { startStack, type Stack } from '../support/stack';

// Hundreds of sends, ten at a time: on a loaded machine a DynamoDB call may outlast the store's 2 s timeout
// and fail closed; the patient client (as in the rate-limit storms) keeps this test about codes.
jest.mock('@aws-sdk/client-dynamodb', () => jest.requireActual('../support/patient-dynamodb').patientModule());
jest.setTimeout(120_000);

let stack: Stack;
/** Before anything is written: every bound below holds for every item of the stack's table. */
let startedSeconds: number;
const OPEN_LIMITS = {
  SEND_COOLDOWN_SECONDS: '0',
  SEND_LIMIT_PER_PHONE_PER_HOUR: '1000',
  SEND_LIMIT_PER_PHONE_PER_DAY: '1000',
  SEND_LIMIT_PER_IP_PER_HOUR: '100000',
  SEND_BUDGET_PER_DAY: '100000',
};
beforeAll(async () => {
  startedSeconds = Date.now() / 1000;
  stack = await startStack(OPEN_LIMITS);
});
afterAll(async () => {
  await stack?.close();
});

let seq = 0;
const phone = (): string => `+9197${String(10_000_000 + ++seq).slice(-8)}`;

/** n sends, `batch` at a time, each to its own number; returns the delivered codes. */
const sendMany = async (n: number, withKey: boolean, batch = 10): Promise<string[]> => {
  const codes: string[] = [];
  for (let i = 0; i < n; i += batch) {
    const round = await Promise.all(
      Array.from({ length: Math.min(batch, n - i) }, async (_, j) => {
        const headers = withKey ? { 'Idempotency-Key': `gap-key-${seq}-${i + j}-${Math.random().toString(36).slice(2)}` } : undefined;
        const { code } = await stack.sendAndRead(phone(), { ...(headers ? { headers } : {}), sourceIp: `198.51.100.${(i + j) % 250}` });
        return code;
      }),
    );
    codes.push(...round);
  }
  return codes;
};

/**
 * Pearson's chi-square of digit counts against the uniform distribution (9 degrees of freedom).
 * The bound 50 is exceeded by a fair generator with probability about 1e-7: this cannot flake, yet
 * a constant code, a narrowed range or a lost digit is far above it.
 */
const chiSquare = (digits: string[]): number => {
  const counts = new Array<number>(10).fill(0);
  for (const d of digits) counts[Number(d)] = (counts[Number(d)] ?? 0) + 1;
  const expected = digits.length / 10;
  return counts.reduce((sum, c) => sum + (c - expected) ** 2 / expected, 0);
};
const BOUND = 50;

describe('codes', () => {
  it.each([
    ['without an Idempotency-Key', false],
    ['with a distinct Idempotency-Key each', true],
  ])('are fresh, uniformly distributed and exactly OTP_LENGTH digits (6 by default), %s', async (_, withKey) => {
    const codes = await sendMany(150, withKey);
    // Every code is six digits, a leading zero kept as a digit.
    for (const code of codes) expect(code).toMatch(/^\d{6}$/);
    // Codes differ from send to send: 150 draws from 10^6 collide about once in 90 runs, so allow a few.
    expect(new Set(codes).size).toBeGreaterThanOrEqual(codes.length - 3);
    // Each position is uniform over 0–9, the first one included (leading zeros occur, about one code in ten).
    for (let pos = 0; pos < 6; pos++) expect(chiSquare(codes.map((c) => c[pos] as string))).toBeLessThan(BOUND);
    expect(chiSquare(codes.flatMap((c) => [...c]))).toBeLessThan(BOUND);
    expect(codes.some((c) => c.startsWith('0'))).toBe(true);
  });

  // (Not 4 here: the stack's leak check would mistake short digit runs in ids and latencies for codes.)
  it('follow OTP_LENGTH: 8 digits, uniform', async () => {
    for (const length of [8]) {
      stack.coldStart({ OTP_LENGTH: String(length) });
      const codes = [...(await sendMany(40, false)), ...(await sendMany(40, true))];
      for (const code of codes) expect(code).toMatch(new RegExp(`^\\d{${length}}$`));
      expect(chiSquare(codes.flatMap((c) => [...c]))).toBeLessThan(BOUND);
      if (length === 8) expect(new Set(codes).size).toBe(codes.length);
    }
    stack.coldStart({ OTP_LENGTH: undefined });
  });
});

describe('TTL of what the service stores', () => {
  // The attribute DynamoDB's TTL reads, as deployed.
  const ttlAttribute = /TimeToLiveSpecification:\s*\n\s*AttributeName:\s*(\w+)/.exec(readFileSync(join(__dirname, '../../serverless.yml'), 'utf8'))?.[1];

  it('is set on every item, in epoch seconds, never before the end of what the item counts or holds', async () => {
    expect(ttlAttribute).toBeDefined();
    stack.coldStart({ SEND_COOLDOWN_SECONDS: '60' });
    // Every kind of item: send counters (phone, IP, global budget), the cooldown, the code, an idempotency
    // record, and the verify failure counter (a wrong guess).
    const first = await stack.sendAndRead(phone());
    await stack.sendAndRead(phone(), { headers: { 'Idempotency-Key': 'ttl-check-key-0001' } });
    const wrong = first.code === '000000' ? '000001' : '000000';
    expect((await stack.verify({ otpRequestId: first.otpRequestId, otp: wrong })).status).toBe(400);
    stack.coldStart({ SEND_COOLDOWN_SECONDS: OPEN_LIMITS.SEND_COOLDOWN_SECONDS });

    const client = DynamoDBDocumentClient.from(
      new DynamoDBClient({ endpoint: stack.dynamo.endpoint, region: 'ap-south-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } }),
    );
    try {
      const items = (await client.send(new ScanCommand({ TableName: stack.table, ConsistentRead: true }))).Items ?? [];
      expect(items.length).toBeGreaterThanOrEqual(8);
      const endOfHour = (Math.floor(startedSeconds / 3600) + 1) * 3600;
      const endOfDay = (Math.floor(startedSeconds / 86400) + 1) * 86400;
      const kinds = new Set<string>();
      for (const item of items) {
        const ttl = item[ttlAttribute as string] as unknown;
        const what = JSON.stringify(Object.keys(item).sort());
        expect({ what, ttl: typeof ttl }).toEqual({ what, ttl: 'number' });
        // Epoch seconds (not ms), and in the future.
        expect(ttl as number).toBeGreaterThan(startedSeconds);
        expect(ttl as number).toBeLessThan(startedSeconds + 2 * 86400 + 7200);
        const key = String(item.pk);
        // A counter of a calendar window (its rule named …-hour or …-day, as in the RateLimited metric)
        // must outlive the window: DynamoDB deleting it earlier would reset the limit mid-window.
        if (/-hour\b|-hour#/.test(key)) {
          kinds.add('hour counter');
          expect(ttl as number).toBeGreaterThanOrEqual(endOfHour);
        }
        if (/-day\b|-day#/.test(key)) {
          kinds.add('day counter');
          expect(ttl as number).toBeGreaterThanOrEqual(endOfDay);
        }
        // Anything holding an expiry or a cooldown end (epoch ms) keeps it until then.
        for (const field of ['expiresAt', 'until', 'lockedUntil']) {
          if (typeof item[field] === 'number') {
            kinds.add(field);
            expect(ttl as number).toBeGreaterThanOrEqual(Math.ceil((item[field] as number) / 1000));
          }
        }
        // An idempotency record answers replays for 24 h (API.md).
        if (typeof item.fingerprint === 'string') {
          kinds.add('idempotency');
          expect(ttl as number).toBeGreaterThanOrEqual(Math.floor(startedSeconds) + 86400);
        }
      }
      expect([...kinds].sort()).toEqual(expect.arrayContaining(['day counter', 'expiresAt', 'hour counter', 'idempotency', 'until']));
    } finally {
      client.destroy();
    }
  });
});

describe('otpRequestId spelling', () => {
  /**
   * Other spellings, within the request schema's alphabet, that base64url-decode to exactly the bytes of
   * `id` (the last character's unused low bits; padding, '+', '/' and whitespace are refused by the schema).
   */
  const respellings = (id: string): string[] => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const bytes = Buffer.from(id, 'base64url');
    const candidates: string[] = [];
    // The last character's unused low bits (when the length is not a multiple of 4).
    const last = alphabet.indexOf(id.slice(-1));
    for (let bit = 0; bit < 4; bit++) candidates.push(id.slice(0, -1) + alphabet[last ^ (1 << bit)]);
    return [...new Set(candidates)].filter((c) => c !== id && /^[A-Za-z0-9_-]+$/.test(c) && Buffer.from(c, 'base64url').equals(bytes));
  };

  it('is answered 410 in any spelling but the one issued, even with the right code; the issued one still verifies', async () => {
    const { otpRequestId, code } = await stack.sendAndRead(phone());
    const others = respellings(otpRequestId);
    expect(others.length).toBeGreaterThanOrEqual(1);
    for (const other of others) {
      const answer = await stack.verify({ otpRequestId: other, otp: code });
      expect({ status: answer.status, error: answer.body.error }).toEqual({ status: 410, error: 'otp_expired' });
    }
    const ok = await stack.verify({ otpRequestId, otp: code });
    expect(ok.status).toBe(200);
    expect(typeof ok.body.token).toBe('string');
  });
});
