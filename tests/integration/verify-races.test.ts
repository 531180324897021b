/**
 * lib/otp/verify.ts under racing guesses, with the races pinned instead of left to timing: the "racers" are
 * attempts claimed (and later given back) straight on the code's record, as parallel guesses that wait for
 * their client's failure budget hold one and give it back when that budget refuses them. On dynalite such
 * races are rare (it serves requests in order); on Amazon's DynamoDB Local they decided how many guesses of
 * a burst were judged (tests/integration/rate-limit.test.ts, "parallel wrong guesses from one address").
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { realTime } from '../../lib/ratelimit/limiter';
import { startStack, type Stack } from '../support/stack';

let stack: Stack | undefined;
let doc: DynamoDBDocumentClient | undefined;
afterEach(async () => {
  doc?.destroy();
  await stack?.close();
  stack = doc = undefined;
});

const PHONE = '+919876512345';
const wrongFor = (code: string) => code.replace(/^./, (d) => String((Number(d) + 1) % 10));

const setUp = async (env: Record<string, string> = {}) => {
  stack = await startStack({ SEND_COOLDOWN_SECONDS: '0', VERIFY_MAX_ATTEMPTS: '3', ...env });
  const s = stack;
  doc = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: s.dynamo.endpoint, region: 'ap-south-1', credentials: { accessKeyId: 'l', secretAccessKey: 'l' } }));
  const sent = await s.sendAndRead(PHONE);
  const items = (await doc.send(new ScanCommand({ TableName: s.table, ConsistentRead: true }))).Items ?? [];
  const pk = String(items.find((i) => String(i.pk).startsWith('OTP#'))!.pk);
  const client = doc;
  return {
    s,
    sent,
    /** Racers claim `n` attempts now, stamped as a guess stamps its claim. */
    claim: (n: number) =>
      client.send(new UpdateCommand({ TableName: s.table, Key: { pk }, UpdateExpression: 'ADD attempts :n SET claimedAt = :at', ExpressionAttributeValues: { ':n': n, ':at': realTime() } })),
    /** A racer refused by its client's budget gives its attempt back. */
    giveBack: () => client.send(new UpdateCommand({ TableName: s.table, Key: { pk }, UpdateExpression: 'ADD attempts :minus', ExpressionAttributeValues: { ':minus': -1 } })),
    attempts: async () => Number((await client.send(new GetCommand({ TableName: s.table, Key: { pk }, ConsistentRead: true }))).Item?.attempts),
  };
};
const later = (ms: number, fn: () => Promise<unknown>) => new Promise<void>((resolve, reject) => setTimeout(() => fn().then(() => resolve(), reject), ms));

describe('a wrong guess that takes the last attempt while racers hold the others', () => {
  it('is told how many attempts really remain once a racer gives its attempt back, not that the code is dead', async () => {
    const { s, sent, claim, giveBack, attempts } = await setUp();
    await claim(2);
    const [answer] = await Promise.all([s.verify({ otpRequestId: sent.otpRequestId, otp: wrongFor(sent.code) }), later(60, giveBack)]);
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ error: 'invalid_code', attemptsRemaining: 1 });
    expect(await attempts()).toBe(2);
    // The code is alive: its owner verifies it.
    expect((await s.verify({ otpRequestId: sent.otpRequestId, otp: sent.code })).status).toBe(200);
  });

  it('is told the code is dead when the other attempts are kept (judged), after they settle', async () => {
    const { s, sent, claim } = await setUp();
    await claim(2);
    const answer = await s.verify({ otpRequestId: sent.otpRequestId, otp: wrongFor(sent.code) });
    expect(answer.status).toBe(429);
    expect(answer.body.error).toBe('too_many_attempts');
    expect(answer.headers['retry-after']).toBeUndefined();
    expect((await s.verify({ otpRequestId: sent.otpRequestId, otp: sent.code })).body.error).toBe('too_many_attempts');
  });

  it('wrong guesses a second apart (no racer) count 2, 1, then dead', async () => {
    const { s, sent } = await setUp();
    const guess = () => s.verify({ otpRequestId: sent.otpRequestId, otp: wrongFor(sent.code) });
    expect((await guess()).body).toMatchObject({ error: 'invalid_code', attemptsRemaining: 2 });
    expect((await guess()).body).toMatchObject({ error: 'invalid_code', attemptsRemaining: 1 });
    await new Promise((r) => setTimeout(r, 1100));
    expect((await guess()).body.error).toBe('too_many_attempts');
  });
});

describe('a guess refused because racers hold every attempt', () => {
  it('waits for one to be given back, then is judged (its client unit taken again, in order)', async () => {
    const { s, sent, claim, giveBack, attempts } = await setUp({ VERIFY_MAX_FAILURES_PER_IP_PER_HOUR: '5' });
    await claim(3);
    // Two of the three racers are refused by their budget and give back, a moment apart.
    const [answer] = await Promise.all([s.verify({ otpRequestId: sent.otpRequestId, otp: wrongFor(sent.code) }), later(60, giveBack), later(200, giveBack)]);
    expect(answer.body).toMatchObject({ error: 'invalid_code', attemptsRemaining: 1 });
    expect(await attempts()).toBe(2);
  });

  it('is told the code is dead when none is given back', async () => {
    const { s, sent, claim } = await setUp();
    await claim(3);
    const answer = await s.verify({ otpRequestId: sent.otpRequestId, otp: sent.code });
    expect(answer.status).toBe(429);
    expect(answer.body.error).toBe('too_many_attempts');
    expect(answer.headers['retry-after']).toBeUndefined();
  });
});
