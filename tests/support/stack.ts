import { randomBytes, randomUUID } from 'node:crypto';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2, Context } from 'aws-lambda';
import { createTable } from '../../local/dynamo';
import { startSandboxProvider, type Sandbox } from '../../local/sandbox-provider';
import { newHashKey, newTokenKeySecret, type TokenKeySecret } from '../../local/keys';
import { startSecretsStandIn, type SecretsStandIn } from '../../local/secrets';
import { startTestDynamo, type TestDynamo } from './test-dynamodb';
import { captureStdio } from './capture-stdio';

/**
 * The real handlers against real local pieces: dynalite or the DynamoDB at TEST_DYNAMODB_ENDPOINT (a fresh
 * table per stack; tests/support/test-dynamodb.ts), the Secrets Manager stand-in and the StartMessaging
 * sandbox over HTTP. Handlers are loaded in an isolated module
 * registry after the environment is set, as a cold start would read it.
 *
 * Everything the handlers write to stdout and stderr (logs, EMF metrics) is captured; `close()` fails the test
 * if any of it contains the API key, the hash key, the token key's private member, a full phone number, a code,
 * an otpRequestId or a token.
 */
export const API_KEY = 'sm_test_9f2c4e1a7b';
/** The secret ids the stack serves (lib/config.ts defaults). */
export const SECRET_IDS = { apiKey: 'sm/api-key', hashKey: 'otp/hash-key', tokenKey: 'otp/token-key', challengeSecret: 'otp/challenge-secret' } as const;
/** The bot challenge secret the stack's Secrets Manager holds (local/siteverify.ts checks the same default). */
export const CHALLENGE_SECRET = 'local-challenge-secret';
type Handler = (event: APIGatewayProxyEventV2, context: Context) => Promise<APIGatewayProxyResultV2>;

export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  sourceIp?: string;
  raw?: string;
  isBase64Encoded?: boolean;
  remainingMs?: number;
}

export interface Stack {
  dynamo: TestDynamo;
  secrets: SecretsStandIn;
  sandbox: Sandbox;
  table: string;
  /** The hash key served as HASH_SECRET_ID (base64). */
  hashKey: string;
  /** The token key secret served as TOKEN_KEY_SECRET_ID. */
  tokenKey: TokenKeySecret;
  /** Serves another token key secret (a rotation); later log scans cover its private member too. */
  setTokenKey(secret: TokenKeySecret): void;
  logs: string[];
  send(body: unknown, opts?: RequestOptions): Promise<Answer>;
  verify(body: unknown, opts?: RequestOptions): Promise<Answer>;
  /** GET /.well-known/jwks.json through the jwks handler. */
  jwks(opts?: RequestOptions): Promise<Answer>;
  /** A send that must succeed, then the code the sandbox "delivered". */
  sendAndRead(phone: string, opts?: RequestOptions): Promise<{ otpRequestId: string; code: string; answer: Answer }>;
  /** Reloads the handlers (a new cold start), e.g. after changing the environment. */
  coldStart(env?: Record<string, string | undefined>): void;
  close(): Promise<void>;
}

export const context = (remainingMs = 25_000): Context =>
  ({
    awsRequestId: randomUUID(),
    functionName: 'otp-test',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:ap-south-1:000000000000:function:otp-test',
    memoryLimitInMB: '512',
    logGroupName: '/aws/lambda/otp-test',
    logStreamName: 'test',
    callbackWaitsForEmptyEventLoop: false,
    getRemainingTimeInMillis: () => remainingMs,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  }) as Context;

export const apiEvent = (path: string, body: unknown, opts: RequestOptions = {}): APIGatewayProxyEventV2 => {
  const raw = opts.raw ?? (typeof body === 'string' ? body : JSON.stringify(body));
  return {
    version: '2.0',
    routeKey: `POST ${path}`,
    rawPath: path,
    rawQueryString: '',
    headers: { 'content-type': 'application/json', ...(opts.headers ?? {}) },
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: 'localhost',
      domainPrefix: 'localhost',
      http: { method: 'POST', path, protocol: 'HTTP/1.1', sourceIp: opts.sourceIp ?? '203.0.113.7', userAgent: 'jest' },
      requestId: randomUUID(),
      routeKey: `POST ${path}`,
      stage: '$default',
      time: new Date().toISOString(),
      timeEpoch: Date.now(),
    },
    body: opts.isBase64Encoded ? Buffer.from(raw).toString('base64') : raw,
    isBase64Encoded: opts.isBase64Encoded ?? false,
  };
};

const toAnswer = (result: APIGatewayProxyResultV2): Answer => {
  const r = result as { statusCode: number; headers?: Record<string, string | number | boolean>; body?: string };
  const headers = Object.fromEntries(Object.entries(r.headers ?? {}).map(([k, v]) => [k.toLowerCase(), String(v)]));
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(r.body ?? '');
  } catch {
    throw new Error(`response body is not JSON: ${r.statusCode} ${String(r.body).slice(0, 200)}`);
  }
  return { status: r.statusCode, headers, body };
};

const ENV_KEYS = [
  'AWS_ENDPOINT_URL_DYNAMODB',
  'AWS_ENDPOINT_URL_SECRETS_MANAGER',
  'STARTMESSAGING_BASE_URL',
  'OTP_TABLE',
  'POWERTOOLS_METRICS_NAMESPACE',
];

export const startStack = async (env: Record<string, string | undefined> = {}): Promise<Stack> => {
  const dynamo = await startTestDynamo();
  const table = `otp-test-${randomBytes(4).toString('hex')}`;
  await createTable(dynamo.endpoint, table);
  const hashKey = newHashKey();
  const tokenKeys = [await newTokenKeySecret()];
  const secrets = await startSecretsStandIn({
    secrets: {
      [SECRET_IDS.apiKey]: API_KEY,
      [SECRET_IDS.hashKey]: hashKey,
      [SECRET_IDS.tokenKey]: JSON.stringify(tokenKeys[0]),
      [SECRET_IDS.challengeSecret]: CHALLENGE_SECRET,
    },
  });
  const sandbox = await startSandboxProvider({ apiKey: API_KEY, quiet: true });

  const saved = new Map<string, string | undefined>();
  const setEnv = (values: Record<string, string | undefined>) => {
    for (const [k, v] of Object.entries(values)) {
      if (!saved.has(k)) saved.set(k, process.env[k]);
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  setEnv({
    AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.endpoint,
    STARTMESSAGING_BASE_URL: sandbox.url,
    OTP_TABLE: table,
    STARTMESSAGING_TIMEOUT_MS: '1000',
    ...env,
  });
  void ENV_KEYS;

  const logs: string[] = [];
  const phones = new Set<string>();
  const tokens = new Set<string>();
  const requestIds = new Set<string>();
  let handlers!: { send: Handler; verify: Handler; jwks: Handler };
  const coldStart = (more: Record<string, string | undefined> = {}) => {
    setEnv(more);
    jest.isolateModules(() => {
      handlers = {
        send: require('../../handlers/send-otp').handler,
        verify: require('../../handlers/verify-otp').handler,
        jwks: require('../../handlers/jwks').handler,
      };
    });
  };
  coldStart();

  // Capture what the handlers print while they run (Powertools writes INFO to stdout, WARN and ERROR to
  // stderr). One capture for however many invocations overlap: it is installed by the first and removed
  // by the last, so parallel invocations cannot restore each other's capture in the wrong order.
  let active = 0;
  let restore: (() => void) | undefined;
  const capture = () => {
    if (active++ > 0) return;
    restore = captureStdio((chunk) => logs.push(chunk));
  };
  const release = () => {
    if (--active === 0) restore?.();
  };
  const invoke = async (fn: Handler, event: APIGatewayProxyEventV2, remainingMs?: number): Promise<Answer> => {
    capture();
    try {
      return toAnswer(await fn(event, context(remainingMs)));
    } finally {
      release();
    }
  };

  const stack: Stack = {
    dynamo,
    secrets,
    sandbox,
    table,
    hashKey,
    get tokenKey() {
      return tokenKeys.at(-1)!;
    },
    setTokenKey(secret) {
      tokenKeys.push(secret);
      secrets.set(SECRET_IDS.tokenKey, JSON.stringify(secret));
    },
    logs,
    async send(body, opts = {}) {
      const phone = (body as { phoneNumber?: unknown })?.phoneNumber;
      if (typeof phone === 'string' && phone.length > 6) phones.add(phone);
      const answer = await invoke(handlers.send, apiEvent('/auth/send-otp', body, opts), opts.remainingMs);
      if (typeof answer.body.otpRequestId === 'string') requestIds.add(answer.body.otpRequestId);
      return answer;
    },
    async verify(body, opts = {}) {
      const answer = await invoke(handlers.verify, apiEvent('/auth/verify-otp', body, opts), opts.remainingMs);
      if (typeof answer.body.token === 'string') tokens.add(answer.body.token);
      return answer;
    },
    async jwks(opts = {}) {
      const event = apiEvent('/.well-known/jwks.json', undefined, { ...opts, raw: '' });
      const get = { ...event, routeKey: 'GET /.well-known/jwks.json', body: undefined, headers: { ...(opts.headers ?? {}) } };
      get.requestContext = { ...event.requestContext, routeKey: get.routeKey, http: { ...event.requestContext.http, method: 'GET' } };
      return invoke(handlers.jwks, get as APIGatewayProxyEventV2, opts.remainingMs);
    },
    async sendAndRead(phone, opts) {
      const answer = await stack.send({ phoneNumber: phone }, opts);
      if (answer.status !== 201) throw new Error(`send failed: ${answer.status} ${JSON.stringify(answer.body)}`);
      const code = sandbox.lastCode(phone);
      if (code === undefined) throw new Error('the sandbox received no code');
      return { otpRequestId: String(answer.body.otpRequestId), code, answer };
    },
    coldStart,
    async close() {
      await Promise.all([dynamo.close().then(() => dynamo.dropTable(table)), secrets.close(), sandbox.close()]);
      for (const [k, v] of saved) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      const text = logs.join('');
      const privateMembers = tokenKeys.flatMap((k) => [k.current.d, ...(k.next ? [k.next.d] : [])]);
      // The hash key in any encoding a careless log line might use.
      const hashBytes = Buffer.from(hashKey, 'base64');
      const hashForms = [hashKey, hashBytes.toString('base64url'), hashBytes.toString('hex')];
      const literal = [API_KEY, CHALLENGE_SECRET, ...hashForms, ...privateMembers, ...phones, ...tokens, ...requestIds].filter((s) => s.length > 0);
      // A code is a short digit run: look for it standing alone (`"otp":"123456"`, `code 123456`, `?code=123456`),
      // not inside longer numbers (timestamps) or hex ids (a request id's `…f735996a…` is a digit run by chance:
      // with 300 codes in one suite, CI met one).
      const codes = [...new Set(sandbox.calls.map((c) => c.otp).filter((c) => /^\d{4,8}$/.test(c)))];
      const leaked = [...literal.filter((s) => text.includes(s)), ...codes.filter((c) => new RegExp(`(?<![0-9A-Za-z])${c}(?![0-9A-Za-z])`).test(text))];
      if (leaked.length > 0) throw new Error(`logs contain a secret, number, code, otpRequestId or token: ${leaked.map((s) => s.slice(0, 6) + '…').join(', ')}`);
    },
  };
  return stack;
};
