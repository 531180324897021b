/**
 * What the benchmark's handlers talk to, and what they are handed: the secrets, DynamoDB's answers, the
 * events and the Lambda context. Two ways of answering the AWS calls, the same answers either way:
 *
 *  - over HTTP (startAwsStandIn, in the parent process): DynamoDB and Secrets Manager on one 127.0.0.1 port,
 *    so a production bundle runs unmodified, SDK client setup, signing and connections included;
 *  - at the client seam (installClientSeam, inside a warm child): `send` of the bundled SDK clients replaced,
 *    answered on the microtask queue, so a warm figure is the handler's own code and nothing else.
 *
 * Stateless on purpose: every invocation takes the same path (limits granted, no previous code, the
 * idempotency key new). The one read that matters is the code's record on verify (the claim, an UpdateItem
 * returning ALL_OLD): it carries the hash of RIGHT_CODE for whatever code id was asked, so any sealed otpRequestId
 * verifies with RIGHT_CODE and fails with any other code.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { hashCode } from '../lib/otp/codes';
import { keysFor } from '../lib/otp/keys';

export const SECRET_IDS = { apiKey: 'bench/sm-api-key', hashKey: 'bench/otp-hash-key', tokenKey: 'bench/otp-token-key' } as const;
export const API_KEY = 'sm_bench_0123456789abcdef';
/** Fixed so runs are comparable; bench-only values (sha256 of a label; a key pair made for the benchmark). */
export const HASH_KEY = '/tBczEo0Fk6f50xkLz9og3xMmNUFf4UOQ+D3rwfOeKI=';
export const TOKEN_KEY = {
  current: {
    kty: 'EC',
    crv: 'P-256',
    x: 'yNIINLA7X1_DETRBUEDpXJUUmcwunsnloncduhh3s3M',
    y: 'JSMBmrJWgdAygsuXYuEtiXESigUuxH5uxUg0ApIax6g',
    d: '8ZTVsnvRoBc8q926RlM920HNjf0UTKM5zzEEWtn1ZYk',
    kid: '6ypJyQtl2P74Zd7EQiq8CLB35iJEvdKwX2pY9KytVqI',
    alg: 'ES256',
    use: 'sig',
  },
  previous: [],
};
const SECRETS: Record<string, string> = { [SECRET_IDS.apiKey]: API_KEY, [SECRET_IDS.hashKey]: HASH_KEY, [SECRET_IDS.tokenKey]: JSON.stringify(TOKEN_KEY) };
export const PHONE = '+919876543210';
export const RIGHT_CODE = '123456';
export const WRONG_CODE = '000000';

/** The AWS SDK must never look for real credentials or the instance metadata service. */
export const AWS_ENV = {
  AWS_REGION: 'ap-south-1',
  AWS_ACCESS_KEY_ID: 'bench',
  AWS_SECRET_ACCESS_KEY: 'bench',
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
} as const;

/** A child's whole environment: nothing from the caller's shell but PATH and HOME; every endpoint local. */
export const childEnv = (awsEndpoint: string, providerUrl: string): Record<string, string> => ({
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: process.env.HOME ?? '/tmp',
  ...AWS_ENV,
  AWS_ENDPOINT_URL_SECRETS_MANAGER: awsEndpoint,
  AWS_ENDPOINT_URL_DYNAMODB: awsEndpoint,
  STAGE: 'bench',
  OTP_TABLE: 'otp-bench',
  STARTMESSAGING_BASE_URL: providerUrl,
  API_KEY_SECRET_ID: SECRET_IDS.apiKey,
  HASH_SECRET_ID: SECRET_IDS.hashKey,
  TOKEN_KEY_SECRET_ID: SECRET_IDS.tokenKey,
  POWERTOOLS_SERVICE_NAME: 'otp-service',
});

// ------------------------------------------------------------------------------------------- the answers

export type DynamoOperation = 'GetItem' | 'PutItem' | 'UpdateItem' | 'DeleteItem';
type Plain = Record<string, unknown>;

const hashes = new Map<string, string>(); // memoised: the answering must stay negligible next to the handler
/** The Attributes (UpdateItem) to answer with, undefined for none. */
export const answerDynamo = (operation: DynamoOperation, key: Plain | undefined, values: Plain | undefined, returnValues: unknown): Plain | undefined => {
  if (operation !== 'UpdateItem' || !['ALL_NEW', 'ALL_OLD', 'UPDATED_NEW'].includes(String(returnValues))) return undefined;
  const codeId = values?.[':codeId'];
  const now = Date.now();
  if (typeof codeId !== 'string') return { ...key, n: 1 };
  let codeHash = hashes.get(codeId);
  if (codeHash === undefined) hashes.set(codeId, (codeHash = hashCode(keysFor(HASH_KEY), codeId, RIGHT_CODE)));
  // A claim answers the record as it was (ALL_OLD: no attempt yet), anything else as it is after one.
  return { ...key, codeId, codeHash, expiresAt: now + 300_000, sentAt: now, attempts: returnValues === 'ALL_OLD' ? 0 : 1 };
};

export const answerSecret = (secretId: unknown) => {
  const value = typeof secretId === 'string' ? SECRETS[secretId] : undefined;
  if (value === undefined) throw Object.assign(new Error(`no secret ${String(secretId)}`), { name: 'ResourceNotFoundException' });
  return { Name: String(secretId), SecretString: value, VersionId: 'bench-v1', ARN: `arn:aws:secretsmanager:ap-south-1:000000000000:secret:${String(secretId)}-bench` };
};

/** AttributeValue maps ↔ plain values (strings, numbers, booleans: all the answers hold). */
type AttributeValue = { S?: string; N?: string; BOOL?: boolean };
const fromWire = (item: unknown): Plain | undefined =>
  typeof item === 'object' && item !== null
    ? Object.fromEntries(Object.entries(item as Record<string, AttributeValue>).map(([k, a]) => [k, a.S ?? (a.N !== undefined ? Number(a.N) : a.BOOL)]))
    : undefined;
const toWire = (item: Plain): Record<string, AttributeValue> =>
  Object.fromEntries(Object.entries(item).map(([k, v]) => [k, typeof v === 'number' ? { N: String(v) } : typeof v === 'boolean' ? { BOOL: v } : { S: String(v) }]));

// -------------------------------------------------------------------------------------------- counting

/** Requests per service; a DynamoDB request issued while another is in flight joins its round trip. */
export class Counter {
  ddbRequests = 0;
  ddbRoundTrips = 0;
  smRequests = 0;
  unexpected: string[] = [];
  private ddbInFlight = 0;
  reset(): void {
    this.ddbRequests = this.ddbRoundTrips = this.smRequests = 0;
  }
  begin(service: 'dynamodb' | 'secretsmanager'): void {
    if (service === 'secretsmanager') return void (this.smRequests += 1);
    if (this.ddbInFlight === 0) this.ddbRoundTrips += 1;
    this.ddbRequests += 1;
    this.ddbInFlight += 1;
  }
  end(service: 'dynamodb' | 'secretsmanager'): void {
    if (service === 'dynamodb') this.ddbInFlight -= 1;
  }
  snapshot() {
    return { ddbRequests: this.ddbRequests, ddbRoundTrips: this.ddbRoundTrips, smRequests: this.smRequests };
  }
}

// ------------------------------------------------------------------------ over HTTP, for the real bundles

export interface AwsStandIn {
  endpoint: string;
  counter: Counter;
  close(): Promise<void>;
}

/**
 * DynamoDB (JSON 1.0) and Secrets Manager (JSON 1.1) on one local port, told apart by X-Amz-Target.
 * `GET /counts` answers the counts since the last `GET /counts` (a child asks between invocations).
 */
export const startAwsStandIn = async (): Promise<AwsStandIn> => {
  const counter = new Counter();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'GET') {
        const text = JSON.stringify({ ...counter.snapshot(), unexpected: counter.unexpected.splice(0) });
        counter.reset();
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(text);
      }
      const [prefix = '', operation = ''] = String(req.headers['x-amz-target'] ?? '').split('.');
      const service = prefix.startsWith('DynamoDB') ? 'dynamodb' : prefix === 'secretsmanager' ? 'secretsmanager' : undefined;
      let status = 200;
      let body: unknown;
      try {
        if (service === undefined) throw new Error(`unknown target ${prefix}.${operation}`);
        counter.begin(service);
        const input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
        if (service === 'secretsmanager') body = answerSecret(input.SecretId);
        else {
          const out = answerDynamo(operation as DynamoOperation, fromWire(input.Key) ?? { pk: fromWire(input.Item)?.pk }, fromWire(input.ExpressionAttributeValues), input.ReturnValues);
          body = out === undefined ? {} : { Attributes: toWire(out) };
        }
      } catch (error) {
        counter.unexpected.push((error as Error).message);
        status = 400;
        body = { __type: 'ResourceNotFoundException', message: (error as Error).message };
      }
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'content-length': Buffer.byteLength(text), 'x-amzn-requestid': 'bench' });
      res.end(text, () => service && counter.end(service));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    counter,
    close: () => new Promise<void>((resolve) => (server.close(() => resolve()), server.closeAllConnections())),
  };
};

// --------------------------------------------------------------------- at the client seam, for warm runs

type AnyCommand = { input: Record<string, unknown> };
type Sendable = { send: (command: AnyCommand) => Promise<unknown> };
/** What a seam bundle exports besides `load`: the SDK classes of the very copy the handler uses. */
export interface SeamSdk {
  DynamoDBClient: { prototype: unknown };
  DynamoDBDocumentClient: { prototype: unknown };
  SecretsManagerClient: { prototype: unknown };
  GetSecretValueCommand: new (...a: never[]) => unknown;
  UpdateCommand: new (...a: never[]) => unknown;
  PutCommand: new (...a: never[]) => unknown;
  GetCommand: new (...a: never[]) => unknown;
  DeleteCommand: new (...a: never[]) => unknown;
}
/** The seam bundle's entry: the SDK classes, and the handler module loaded only once the seam is in place. */
export const SEAM_SDK_EXPORTS = `
export { DynamoDBClient } from '@aws-sdk/client-dynamodb';
export { SecretsManagerClient, GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
export { DynamoDBDocumentClient, UpdateCommand, PutCommand, GetCommand, DeleteCommand } from '@aws-sdk/lib-dynamodb';`;

const METADATA = { httpStatusCode: 200, requestId: 'bench', attempts: 1, totalRetryDelay: 0 };

export const installClientSeam = (sdk: SeamSdk, counter: Counter): void => {
  const answerSoon = (service: 'dynamodb' | 'secretsmanager', answer: () => unknown): Promise<unknown> => {
    counter.begin(service);
    let value: unknown;
    let failure: unknown;
    try {
      value = answer();
    } catch (error) {
      failure = error;
    }
    return Promise.resolve().then(() => {
      counter.end(service);
      if (failure !== undefined) throw failure;
      return value;
    });
  };
  // Any other client reaching the Smithy base class's send (the raw DynamoDB client included) fails the run.
  (Object.getPrototypeOf(sdk.DynamoDBClient.prototype) as Sendable).send = function unexpectedSend(command) {
    counter.unexpected.push(`${this.constructor.name}: ${JSON.stringify(command.input).slice(0, 120)}`);
    return Promise.reject(new Error('bench seam: an SDK client the seam does not answer'));
  };
  (sdk.DynamoDBDocumentClient.prototype as Sendable).send = function benchDocumentSend(command) {
    return answerSoon('dynamodb', () => {
      const operation: DynamoOperation | undefined =
        command instanceof sdk.UpdateCommand ? 'UpdateItem' : command instanceof sdk.PutCommand ? 'PutItem' : command instanceof sdk.GetCommand ? 'GetItem' : command instanceof sdk.DeleteCommand ? 'DeleteItem' : undefined;
      if (operation === undefined) throw new Error('bench seam: unknown DynamoDB document command');
      const i = command.input as { Key?: Plain; Item?: Plain; ExpressionAttributeValues?: Plain; ReturnValues?: string };
      const out = answerDynamo(operation, i.Key ?? { pk: i.Item?.pk }, i.ExpressionAttributeValues, i.ReturnValues);
      return { $metadata: METADATA, ...(out === undefined ? {} : { Attributes: out }) };
    });
  };
  (sdk.SecretsManagerClient.prototype as Sendable).send = function benchSecretsSend(command) {
    return answerSoon('secretsmanager', () => {
      if (!(command instanceof sdk.GetSecretValueCommand)) throw new Error('bench seam: unknown Secrets Manager command');
      return { $metadata: METADATA, ...answerSecret(command.input.SecretId) };
    });
  };
};

// ----------------------------------------------------------------------------------- events and context

const apiEvent = (method: string, path: string, body: string | undefined, headers: Record<string, string>): APIGatewayProxyEventV2 => ({
  version: '2.0',
  routeKey: `${method} ${path}`,
  rawPath: path,
  rawQueryString: '',
  headers: {
    accept: 'application/json',
    host: 'abcdef1234.execute-api.ap-south-1.amazonaws.com',
    'user-agent': 'otp-bench',
    'x-forwarded-for': '203.0.113.10',
    'x-forwarded-proto': 'https',
    ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }),
    ...headers,
  },
  requestContext: {
    accountId: '123456789012',
    apiId: 'abcdef1234',
    domainName: 'abcdef1234.execute-api.ap-south-1.amazonaws.com',
    domainPrefix: 'abcdef1234',
    http: { method, path, protocol: 'HTTP/1.1', sourceIp: '203.0.113.10', userAgent: 'otp-bench' },
    requestId: randomUUID(),
    routeKey: `${method} ${path}`,
    stage: '$default',
    time: new Date().toISOString(),
    timeEpoch: Date.now(),
  },
  ...(body === undefined ? {} : { body }),
  isBase64Encoded: false,
});

export const sendEvent = (idempotencyKey?: string) =>
  apiEvent('POST', '/auth/send-otp', JSON.stringify({ phoneNumber: PHONE }), idempotencyKey === undefined ? {} : { 'idempotency-key': idempotencyKey });
export const verifyEvent = (otpRequestId: string, otp: string) => apiEvent('POST', '/auth/verify-otp', JSON.stringify({ otpRequestId, otp }), {});
export const getEvent = (path: string) => apiEvent('GET', path, undefined, {});

export const lambdaContext = (functionName: string): Context => ({
  callbackWaitsForEmptyEventLoop: true,
  functionName,
  functionVersion: '$LATEST',
  invokedFunctionArn: `arn:aws:lambda:ap-south-1:000000000000:function:${functionName}`,
  memoryLimitInMB: '512',
  awsRequestId: randomUUID(),
  logGroupName: `/aws/lambda/${functionName}`,
  logStreamName: 'bench',
  getRemainingTimeInMillis: () => 25_000,
  done: () => undefined,
  fail: () => undefined,
  succeed: () => undefined,
});

// ------------------------------------------------------------------------- the kinds of invocation

export type Kind = 'baseline' | 'send' | 'sendIdem' | 'verifyWrong' | 'verifyRight' | 'jwks';
let idem = 0;
/** Per kind: the function (serverless.yml name, or `baseline`), what it is handed, what it must answer. */
export const KINDS: Record<Kind, { fn: string; label: string; status: number; event: (otpRequestId: string) => APIGatewayProxyEventV2 }> = {
  baseline: { fn: 'baseline', label: 'baseline send', status: 200, event: () => sendEvent() },
  send: { fn: 'sendOtp', label: 'send', status: 201, event: () => sendEvent() },
  sendIdem: { fn: 'sendOtp', label: 'send with Idempotency-Key', status: 201, event: () => sendEvent(`bench-${(idem += 1)}-${randomUUID()}`) },
  verifyWrong: { fn: 'verifyOtp', label: 'verify, wrong code', status: 400, event: (id) => verifyEvent(id, WRONG_CODE) },
  verifyRight: { fn: 'verifyOtp', label: 'verify, right code', status: 200, event: (id) => verifyEvent(id, RIGHT_CODE) },
  jwks: { fn: 'jwks', label: 'JWKS', status: 200, event: () => getEvent('/.well-known/jwks.json') },
};
export const kindsOf = (fn: string): Kind[] => (Object.keys(KINDS) as Kind[]).filter((k) => KINDS[k].fn === fn);
