/**
 * The benchmark's moving parts, checked for behaviour only (never timing): the naive baseline handler it
 * compares against (at the SDK seam, with the real sandbox provider over HTTP), how it reads serverless.yml's
 * esbuild options, how it counts DynamoDB round trips, what its stand-ins answer, and its statistics.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { join } from 'node:path';
import { answerDynamo, answerSecret } from '../../bench/lib/answers';
import { readDeployBuild } from '../../bench/lib/build';
import { API_KEY, PHONE, RIGHT_CODE, SECRET_IDS, HASH_KEY, TOKEN_KEY, WRONG_CODE } from '../../bench/lib/fixtures';
import { SeamCounter } from '../../bench/lib/seam';
import { pairRatios, percentile, rotate, summarize } from '../../bench/lib/stats';
import { codeMatches } from '../../lib/otp/codes';
import { keysFor } from '../../lib/otp/keys';
import { startSandboxProvider, type Sandbox } from '../../local/sandbox-provider';

type Baseline = typeof import('../../bench/baseline/handler');

const secretsMock = mockClient(SecretsManagerClient);
const dynamoMock = mockClient(DynamoDBDocumentClient);
let sandbox: Sandbox;
let baseline: Baseline;

beforeAll(async () => {
  secretsMock.on(GetSecretValueCommand).resolves({ SecretString: API_KEY });
  sandbox = await startSandboxProvider({ apiKey: API_KEY, quiet: true });
  process.env.STARTMESSAGING_BASE_URL = sandbox.url;
  process.env.API_KEY_SECRET_ID = SECRET_IDS.apiKey;
  process.env.OTP_TABLE = 'otp-bench-test';
  // Read at module load, as the tutorial's handler does: import it once the environment is set.
  baseline = await import('../../bench/baseline/handler');
});
afterAll(async () => {
  await sandbox.close();
  secretsMock.restore();
  dynamoMock.restore();
});
beforeEach(() => {
  sandbox.reset();
  dynamoMock.reset();
});

const send = (body: unknown) => baseline.handler({ body: JSON.stringify(body) });

describe('the baseline handler', () => {
  test('sends a 6-digit code with the API key from Secrets Manager, after one counter update per number', async () => {
    dynamoMock.on(UpdateCommand).resolves({});

    const res = await send({ phoneNumber: PHONE });

    expect(res.statusCode).toBe(200);
    expect(sandbox.calls).toHaveLength(1);
    expect(sandbox.calls[0]).toMatchObject({ phoneNumber: PHONE, delivered: true });
    expect(sandbox.calls[0]!.headers['x-api-key']).toBe(API_KEY);
    expect(sandbox.calls[0]!.otp).toMatch(/^\d{6}$/);
    const updates = dynamoMock.commandCalls(UpdateCommand);
    expect(updates).toHaveLength(1);
    expect(updates[0]!.args[0].input).toMatchObject({
      TableName: 'otp-bench-test',
      Key: { pk: `count#${PHONE}` },
      UpdateExpression: expect.stringContaining('ADD #c :one'),
      ConditionExpression: 'attribute_not_exists(#c) OR #c < :limit',
      ExpressionAttributeValues: expect.objectContaining({ ':limit': 5 }),
    });
  });

  test('keeps the API key in a module variable: one GetSecretValue for many sends', async () => {
    dynamoMock.on(UpdateCommand).resolves({});

    for (let i = 0; i < 3; i++) expect((await send({ phoneNumber: PHONE })).statusCode).toBe(200);

    // Whichever test of this file sent first fetched it; nothing fetches it again.
    expect(secretsMock.commandCalls(GetSecretValueCommand)).toHaveLength(1);
    expect(sandbox.calls).toHaveLength(3);
  });

  test('answers 429 and sends nothing once the counter refuses', async () => {
    dynamoMock.on(UpdateCommand).rejects(new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} }));

    const res = await send({ phoneNumber: PHONE });

    expect(res.statusCode).toBe(429);
    expect(sandbox.calls).toHaveLength(0);
  });

  test('validates nothing: a missing number still reaches the provider, which refuses it (the naivety being measured)', async () => {
    dynamoMock.on(UpdateCommand).resolves({});

    const res = await send({});

    expect(res.statusCode).toBe(502);
    expect(sandbox.calls).toHaveLength(1);
    expect(sandbox.calls[0]!.status).toBe(400);
  });
});

describe('the benchmark harness', () => {
  test('reads the esbuild options from serverless.yml without the plugin-only keys', () => {
    const build = readDeployBuild(join(__dirname, '..', '..'));

    expect(build.options).toMatchObject({ bundle: true, platform: 'node' });
    for (const key of ['exclude', 'packager', 'concurrency', 'watch']) expect(build.options).not.toHaveProperty(key);
    expect(Array.isArray(build.options.external)).toBe(true);
    expect(build.functions.sendOtp?.entry).toMatch(/^handlers\/send-otp\.(ts|js)$/);
    expect(build.functions.verifyOtp?.entry).toMatch(/^handlers\/verify-otp\.(ts|js)$/);
  });

  test('counts requests issued while others are in flight as one round trip', () => {
    const c = new SeamCounter();
    // Five parallel rule writes, then a write issued after they settled, then one more on its own.
    for (let i = 0; i < 5; i++) c.begin('dynamodb');
    for (let i = 0; i < 5; i++) c.end('dynamodb');
    c.begin('dynamodb');
    c.end('dynamodb');
    c.begin('secretsmanager');
    c.end('secretsmanager');

    expect({ requests: c.ddbRequests, roundTrips: c.ddbRoundTrips, secrets: c.smRequests }).toEqual({ requests: 6, roundTrips: 2, secrets: 1 });
    c.reset();
    expect(c.ddbRoundTrips).toBe(0);
  });

  test('the stand-ins hold a code record that the right code matches and a wrong one does not', () => {
    const attrs = answerDynamo({ operation: 'UpdateItem', key: { pk: 'OTP#x' }, values: { ':codeId': 'abc' }, returnValues: 'ALL_NEW' });
    const keys = keysFor(HASH_KEY);

    expect(codeMatches(keys, 'abc', RIGHT_CODE, String(attrs?.codeHash))).toBe(true);
    expect(codeMatches(keys, 'abc', WRONG_CODE, String(attrs?.codeHash))).toBe(false);
    expect(answerDynamo({ operation: 'PutItem', key: { pk: 'OTP#x' } })).toBeUndefined();
    expect(answerSecret(SECRET_IDS.hashKey).SecretString).toBe(HASH_KEY);
    expect(JSON.parse(answerSecret(SECRET_IDS.tokenKey).SecretString!)).toEqual(TOKEN_KEY);
    expect(() => answerSecret('nope')).toThrow();
  });

  test('statistics: nearest-rank percentiles, pairwise ratios, rotation', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect([percentile(xs, 50), percentile(xs, 90), percentile(xs, 99), percentile(xs, 100)]).toEqual([50, 90, 99, 100]);
    expect(summarize([3, 1, 2])).toMatchObject({ n: 3, p50: 2, min: 1, max: 3, mean: 2 });
    expect(pairRatios([2, 9], [1, 3])).toEqual([2, 3]);
    expect(() => pairRatios([1], [1, 2])).toThrow();
    expect([rotate(['a', 'b', 'c'], 0), rotate(['a', 'b', 'c'], 1), rotate(['a', 'b', 'c'], 4)]).toEqual([['a', 'b', 'c'], ['b', 'c', 'a'], ['b', 'c', 'a']]);
  });
});
