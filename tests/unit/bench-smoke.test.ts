/**
 * The benchmark's moving parts, checked for behaviour only (never timing): the naive baseline handler it
 * compares against (at the SDK seam, with the real sandbox provider over HTTP), how it derives the builds from
 * serverless.yml, how it counts DynamoDB round trips, what its stand-ins answer (in memory and over HTTP to the
 * real SDK), and its statistics.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { join } from 'node:path';
import { medianInterval, pairRatios, percentile, readDeployBuild, rotate, tutorialOptions } from '../../bench/run';
import { createDynamoStore } from '../../lib/store/dynamodb';
import { answerDynamo, answerSecret, API_KEY, Counter, HASH_KEY, KINDS, kindsOf, PHONE, RIGHT_CODE, SECRET_IDS, startAwsStandIn, TOKEN_KEY, WRONG_CODE, type DynamoOperation } from '../../bench/standins';
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
  test('builds what serverless-esbuild builds: serverless.yml options without the plugin-only keys, every function', () => {
    const build = readDeployBuild(join(__dirname, '..', '..'));

    expect(build.options).toMatchObject({ bundle: true, platform: 'node', format: 'esm', mainFields: ['module', 'main'] });
    for (const key of ['exclude', 'packager', 'outputFileExtension', 'outputWorkFolder', 'watch']) expect(build.options).not.toHaveProperty(key);
    expect(build.extension).toBe('.mjs');
    expect(build.functions).toMatchObject({ sendOtp: 'handlers/send-otp.ts', verifyOtp: 'handlers/verify-otp.ts', jwks: 'handlers/jwks.ts' });
    // Every function has an invocation the bench knows how to make (a new function fails the run, not the table).
    for (const fn of Object.keys(build.functions)) expect({ fn, kinds: kindsOf(fn).length > 0 }).toEqual({ fn, kinds: true });
  });

  test("the tutorial build is the same options as CommonJS, main-first, without the ESM banner", () => {
    const { options } = readDeployBuild(join(__dirname, '..', '..'));
    const tutorial = tutorialOptions(options);

    expect(tutorial.format).toBe('cjs');
    expect(tutorial).not.toHaveProperty('mainFields');
    expect(tutorial).not.toHaveProperty('banner');
    expect({ ...tutorial, format: options.format, mainFields: options.mainFields, banner: options.banner }).toEqual(options);
  });

  test('counts requests issued while others are in flight as one round trip', () => {
    const c = new Counter();
    // Five parallel rule writes, then a write issued after they settled, then a secret.
    for (let i = 0; i < 5; i++) c.begin('dynamodb');
    for (let i = 0; i < 5; i++) c.end('dynamodb');
    c.begin('dynamodb');
    c.end('dynamodb');
    c.begin('secretsmanager');
    c.end('secretsmanager');

    expect(c.snapshot()).toEqual({ ddbRequests: 6, ddbRoundTrips: 2, smRequests: 1 });
    c.reset();
    expect(c.snapshot()).toEqual({ ddbRequests: 0, ddbRoundTrips: 0, smRequests: 0 });
  });

  test("the real store adapter's claim, answered by the stand-in, holds a live code with its first attempt", async () => {
    // The adapter's own ReturnValues decide what the stand-in answers: if they change, verify in the bench must
    // still see a live code (this once answered 400 for the right code when the claim moved to ALL_OLD).
    const client = {
      send: async (command: { constructor: { name: string }; input: { Key?: Record<string, unknown>; ExpressionAttributeValues?: Record<string, unknown>; ReturnValues?: string } }) => ({
        Attributes: answerDynamo(command.constructor.name.replace(/Command$/, 'Item') as DynamoOperation, command.input.Key, command.input.ExpressionAttributeValues, command.input.ReturnValues),
      }),
    };
    const store = createDynamoStore({ table: 't', client: client as unknown as DynamoDBDocumentClient });
    const claim = await store.claimAttempt('OTP#x', 'abc', 3, Date.now(), Date.now());
    expect(claim).toMatchObject({ ok: true, attempts: 1 });
    expect(claim.ok && codeMatches(keysFor(HASH_KEY), 'abc', RIGHT_CODE, claim.codeHash)).toBe(true);
  });

  test('the stand-ins hold a code record that the right code matches and a wrong one does not', () => {
    const attrs = answerDynamo('UpdateItem', { pk: 'OTP#x' }, { ':codeId': 'abc' }, 'ALL_NEW');
    const keys = keysFor(HASH_KEY);

    expect(codeMatches(keys, 'abc', RIGHT_CODE, String(attrs?.codeHash))).toBe(true);
    expect(codeMatches(keys, 'abc', WRONG_CODE, String(attrs?.codeHash))).toBe(false);
    expect(answerDynamo('PutItem', { pk: 'OTP#x' }, undefined, undefined)).toBeUndefined();
    expect(answerSecret(SECRET_IDS.hashKey).SecretString).toBe(HASH_KEY);
    expect(JSON.parse(answerSecret(SECRET_IDS.tokenKey).SecretString)).toEqual(TOKEN_KEY);
    expect(() => answerSecret('nope')).toThrow();
    expect(KINDS.verifyRight.status).toBe(200);
  });

  test('the HTTP stand-in answers the real SDK clients and counts what they asked', async () => {
    // The real clients here, not the mocks the baseline's tests use (this is the last test of the file).
    secretsMock.restore();
    dynamoMock.restore();
    const aws = await startAwsStandIn();
    try {
      const sm = new SecretsManagerClient({ endpoint: aws.endpoint });
      const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: aws.endpoint }));
      const secret = await sm.send(new GetSecretValueCommand({ SecretId: SECRET_IDS.apiKey }));
      const updated = await ddb.send(
        new UpdateCommand({ TableName: 't', Key: { pk: 'OTP#x' }, UpdateExpression: 'SET codeId = :codeId', ExpressionAttributeValues: { ':codeId': 'abc' }, ReturnValues: 'ALL_NEW' }),
      );
      await expect(sm.send(new GetSecretValueCommand({ SecretId: 'nope' }))).rejects.toThrow(/no secret nope/);

      expect(secret.SecretString).toBe(API_KEY);
      expect(updated.Attributes).toMatchObject({ pk: 'OTP#x', codeId: 'abc', attempts: 1 });
      const counts = (await (await fetch(`${aws.endpoint}/counts`)).json()) as Record<string, unknown>;
      expect(counts).toMatchObject({ ddbRequests: 1, smRequests: 2, unexpected: ['no secret nope'] });
      sm.destroy();
      ddb.destroy();
    } finally {
      await aws.close();
    }
  });

  test('statistics: nearest-rank percentiles, an interval around the median, pairwise ratios, rotation', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect([percentile(xs, 50), percentile(xs, 90), percentile(xs, 99), percentile(xs, 100)]).toEqual([50, 90, 99, 100]);
    const [lo, hi] = medianInterval(xs);
    expect(lo).toBeLessThan(50);
    expect(hi).toBeGreaterThan(50);
    expect(pairRatios([2, 9], [1, 3])).toEqual([2, 3]);
    expect(() => pairRatios([1], [1, 2])).toThrow();
    expect([rotate(['a', 'b', 'c'], 0), rotate(['a', 'b', 'c'], 1), rotate(['a', 'b', 'c'], 4)]).toEqual([['a', 'b', 'c'], ['b', 'c', 'a'], ['b', 'c', 'a']]);
  });
});
