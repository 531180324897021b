/**
 * The local stand-ins behind `npm start`, exercised through the real AWS SDK clients the service uses:
 * if these pass, the handlers see the same wire behaviour locally as from AWS (for the calls they make).
 */
import { resolve } from 'node:path';
import { DeleteItemCommand, DescribeTableCommand, DynamoDBClient, GetItemCommand, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import {
  GetSecretValueCommand,
  InternalServiceError,
  ResourceNotFoundException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { createTable, OTP_TABLE_SCHEMA, startLocalDynamo, type LocalDynamo } from '../../local/dynamo';
import { isListening } from '../../local/env';
import { checkKeySecrets, localKeySecrets, startSecretsStandIn, type SecretsStandIn } from '../../local/secrets';
import { startLocalPieces } from '../../local/start';
import { ConfigError } from '../../lib/config';
import { keysFor } from '../../lib/otp/keys';
import { parseTokenKey } from '../../lib/otp/token';
import { loadCfnYaml } from '../../local/serverless-yaml';

const creds = { accessKeyId: 'test', secretAccessKey: 'test' };
const region = 'ap-south-1';

describe('OTP_TABLE_SCHEMA', () => {
  type Table = {
    Type: string;
    Properties: {
      BillingMode: string;
      AttributeDefinitions: unknown[];
      KeySchema: unknown[];
      TimeToLiveSpecification?: { AttributeName: string; Enabled: boolean };
    };
  };
  // `resources` is a list (the fixed resources first, then those deploy/stack.cjs builds from params).
  const yml = loadCfnYaml(resolve(__dirname, '../../serverless.yml')) as {
    resources: [{ Resources: { OtpTable: Table } }];
    functions: { sendOtp: { role: unknown } };
  };
  const table = yml.resources[0].Resources.OtpTable;

  it('matches the OtpTable resource in serverless.yml', () => {
    expect(table.Type).toBe('AWS::DynamoDB::Table');
    expect(table.Properties.BillingMode).toBe(OTP_TABLE_SCHEMA.billingMode);
    expect(table.Properties.AttributeDefinitions).toEqual(OTP_TABLE_SCHEMA.attributeDefinitions);
    expect(table.Properties.KeySchema).toEqual(OTP_TABLE_SCHEMA.keySchema);
    expect(table.Properties.TimeToLiveSpecification).toEqual({ AttributeName: OTP_TABLE_SCHEMA.ttlAttribute, Enabled: true });
  });

  it('reads CloudFormation short-form tags instead of failing on them', () => {
    expect(yml.functions.sendOtp.role).toEqual({ 'Fn::Sub': '${SendOtpRole.Arn}' });
  });
});

describe('startLocalDynamo + createTable', () => {
  let dynamo: LocalDynamo;
  let client: DynamoDBClient;

  beforeAll(async () => {
    dynamo = await startLocalDynamo();
    client = new DynamoDBClient({ endpoint: dynamo.endpoint, region, credentials: creds });
  });
  afterAll(async () => {
    client.destroy();
    await dynamo.close();
  });

  it('listens on 127.0.0.1 only', () => {
    expect(dynamo.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('creates an ACTIVE on-demand table keyed by pk', async () => {
    await createTable(dynamo.endpoint, 'otp-test');
    const { Table } = await client.send(new DescribeTableCommand({ TableName: 'otp-test' }));
    expect(Table?.TableStatus).toBe('ACTIVE');
    expect(Table?.KeySchema).toEqual([{ AttributeName: 'pk', KeyType: 'HASH' }]);
    expect(Table?.AttributeDefinitions).toEqual([{ AttributeName: 'pk', AttributeType: 'S' }]);
    expect(Table?.BillingModeSummary?.BillingMode).toBe('PAY_PER_REQUEST');
  });

  it('serves the conditional writes and atomic counters the store relies on', async () => {
    await createTable(dynamo.endpoint, 'otp-cond');
    const Item = { pk: { S: 'otp#1' }, attempts: { N: '0' }, ttl: { N: '1' } };
    await client.send(new PutItemCommand({ TableName: 'otp-cond', Item, ConditionExpression: 'attribute_not_exists(pk)' }));
    await expect(
      client.send(new PutItemCommand({ TableName: 'otp-cond', Item, ConditionExpression: 'attribute_not_exists(pk)' })),
    ).rejects.toMatchObject({ name: 'ConditionalCheckFailedException' });

    const up = await client.send(
      new UpdateItemCommand({
        TableName: 'otp-cond',
        Key: { pk: { S: 'otp#1' } },
        UpdateExpression: 'ADD attempts :one',
        ConditionExpression: 'attempts < :max',
        ExpressionAttributeValues: { ':one': { N: '1' }, ':max': { N: '3' } },
        ReturnValues: 'ALL_NEW',
      }),
    );
    expect(up.Attributes?.attempts).toEqual({ N: '1' });
    await client.send(new DeleteItemCommand({ TableName: 'otp-cond', Key: { pk: { S: 'otp#1' } } }));
    const got = await client.send(new GetItemCommand({ TableName: 'otp-cond', Key: { pk: { S: 'otp#1' } }, ConsistentRead: true }));
    expect(got.Item).toBeUndefined();
  });

  it('starts empty every time', async () => {
    const other = await startLocalDynamo();
    const c = new DynamoDBClient({ endpoint: other.endpoint, region, credentials: creds });
    try {
      await expect(c.send(new DescribeTableCommand({ TableName: 'otp-test' }))).rejects.toMatchObject({
        name: 'ResourceNotFoundException',
      });
    } finally {
      c.destroy();
      await other.close();
    }
  });

  it('close() frees the port even while a client holds a keep-alive connection', async () => {
    const other = await startLocalDynamo();
    const port = Number(new URL(other.endpoint).port);
    const c = new DynamoDBClient({ endpoint: other.endpoint, region, credentials: creds });
    await createTable(other.endpoint, 'otp-x');
    await c.send(new DescribeTableCommand({ TableName: 'otp-x' }));
    await other.close();
    expect(await isListening(port)).toBe(false);
    c.destroy();
  });
});

describe('localKeySecrets (what npm start serves)', () => {
  it('a fresh 32-byte hash key and a token key pair each time, both as the service parses them', async () => {
    const ids = { hashSecretId: 'otp/hash-key', tokenKeySecretId: 'otp/token-key' };
    const [a, b] = [await localKeySecrets(ids), await localKeySecrets(ids)];
    for (const s of [a, b]) {
      expect(keysFor(s['otp/hash-key']!).id).toHaveLength(32);
      const set = parseTokenKey(JSON.parse(s['otp/token-key']!));
      expect(set.jwks.keys).toHaveLength(1);
      expect(set.jwks.keys[0]).not.toHaveProperty('d');
    }
    expect(a['otp/hash-key']).not.toBe(b['otp/hash-key']);
    expect(a['otp/token-key']).not.toBe(b['otp/token-key']);
  });
});

describe('checkKeySecrets (npm start pointed at another Secrets Manager)', () => {
  const ids = { hashSecretId: 'otp/hash-key', tokenKeySecretId: 'otp/token-key' };
  const env = { AWS_REGION: 'ap-south-1' };
  let sm: SecretsStandIn;
  beforeAll(async () => {
    sm = await startSecretsStandIn({ secrets: await localKeySecrets(ids) });
  });
  afterAll(() => sm.close());

  it('accepts good keys', async () => {
    await expect(checkKeySecrets(sm.endpoint, ids, env)).resolves.toBeUndefined();
  });

  it.each([
    ['a pass phrase as the hash key', 'otp/hash-key', 'CheckoutOtp2026!', 'HASH_SECRET_ID'],
    ['a token key that is not JSON', 'otp/token-key', 'not-json-token-key', 'TOKEN_KEY_SECRET_ID'],
  ])('refuses %s with a ConfigError naming the variable, never the value', async (_, id, value, variable) => {
    const good = await localKeySecrets(ids);
    const other = await startSecretsStandIn({ secrets: { ...good, [id]: value } });
    try {
      const error = (await checkKeySecrets(other.endpoint, ids, env).catch((e: unknown) => e)) as Error;
      expect(error).toBeInstanceOf(ConfigError);
      expect(error.message).toContain(variable);
      expect(error.message).not.toContain(value);
    } finally {
      await other.close();
    }
  });

  it('a missing secret names the variable and the id', async () => {
    const error = (await checkKeySecrets(sm.endpoint, { ...ids, hashSecretId: 'otp/nope' }, env).catch((e: unknown) => e)) as Error;
    expect(error.message).toMatch(/^HASH_SECRET_ID: could not read the secret "otp\/nope"/);
  });

  it('startLocalPieces refuses it, so npm start stops before serving anything', async () => {
    const bad = await startSecretsStandIn({ secrets: { ...(await localKeySecrets(ids)), 'otp/hash-key': 'A'.repeat(44) } });
    try {
      await expect(startLocalPieces({ AWS_ENDPOINT_URL_SECRETS_MANAGER: bad.endpoint, AWS_REGION: 'ap-south-1' })).rejects.toThrow(/HASH_SECRET_ID/);
    } finally {
      await bad.close();
    }
  });
});

describe('startSecretsStandIn through the real Secrets Manager client', () => {
  let sm: SecretsStandIn;
  let client: SecretsManagerClient;
  const savedEndpoint = process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER;

  beforeAll(async () => {
    sm = await startSecretsStandIn({ secrets: { 'sm/api-key': 'sm_test_local', 'otp/hash-key': 'k'.repeat(43) } });
    // The way the service finds it: the SDK's own per-service endpoint variable, no code change.
    process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = sm.endpoint;
    client = new SecretsManagerClient({ region, credentials: creds, maxAttempts: 1 });
  });
  afterAll(async () => {
    client.destroy();
    await sm.close();
    if (savedEndpoint === undefined) delete process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER;
    else process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = savedEndpoint;
  });

  it('is reached via AWS_ENDPOINT_URL_SECRETS_MANAGER and answers GetSecretValue', async () => {
    const before = sm.requests;
    const out = await client.send(new GetSecretValueCommand({ SecretId: 'sm/api-key' }));
    expect(out.SecretString).toBe('sm_test_local');
    expect(out.Name).toBe('sm/api-key');
    expect(out.ARN).toMatch(/^arn:aws:secretsmanager:ap-south-1:\d{12}:secret:sm\/api-key-\w{6}$/);
    expect(out.VersionId).toEqual(expect.any(String));
    expect(out.CreatedDate).toBeInstanceOf(Date);
    expect(sm.requests).toBe(before + 1);
  });

  it('finds a secret by its full ARN too', async () => {
    const { ARN } = await client.send(new GetSecretValueCommand({ SecretId: 'otp/hash-key' }));
    const out = await client.send(new GetSecretValueCommand({ SecretId: ARN }));
    expect(out.SecretString).toBe('k'.repeat(43));
  });

  it('answers ResourceNotFoundException for an unknown id', async () => {
    const err: unknown = await client.send(new GetSecretValueCommand({ SecretId: 'nope' })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResourceNotFoundException);
    expect((err as ResourceNotFoundException).$metadata.httpStatusCode).toBe(400);
  });

  it('set() rotates a value (new version) and remove() makes it unknown', async () => {
    const first = await client.send(new GetSecretValueCommand({ SecretId: 'otp/hash-key' }));
    sm.set('otp/hash-key', 'rotated');
    const second = await client.send(new GetSecretValueCommand({ SecretId: 'otp/hash-key' }));
    expect(second.SecretString).toBe('rotated');
    expect(second.VersionId).not.toBe(first.VersionId);

    sm.set('extra', 'x');
    sm.remove('extra');
    await expect(client.send(new GetSecretValueCommand({ SecretId: 'extra' }))).rejects.toBeInstanceOf(ResourceNotFoundException);
  });

  it('failAll(true) answers 500 InternalServiceError until switched off', async () => {
    sm.failAll(true);
    try {
      const before = sm.requests;
      const err: unknown = await client.send(new GetSecretValueCommand({ SecretId: 'sm/api-key' })).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InternalServiceError);
      expect((err as InternalServiceError).$metadata.httpStatusCode).toBe(500);
      expect(sm.requests).toBe(before + 1);
    } finally {
      sm.failAll(false);
    }
    await expect(client.send(new GetSecretValueCommand({ SecretId: 'sm/api-key' }))).resolves.toMatchObject({
      SecretString: 'sm_test_local',
    });
  });

  it('refuses operations it does not implement, loudly', async () => {
    const res = await fetch(sm.endpoint, {
      method: 'POST',
      headers: { 'x-amz-target': 'secretsmanager.PutSecretValue', 'content-type': 'application/x-amz-json-1.1' },
      body: '{}',
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('application/x-amz-json-1.1');
    expect(await res.json()).toMatchObject({ __type: 'UnknownOperationException' });
  });
});
