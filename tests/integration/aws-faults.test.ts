/**
 * Issue 4: DynamoDB and Secrets Manager failures through the REAL handlers.
 *
 * DynamoDB faults come from a small proxy in front of dynalite that speaks the DynamoDB JSON
 * protocol: it forwards everything, except the operations a test tells it to fail, which it answers
 * as DynamoDB does (HTTP 400/500 with `__type`). The service must fail closed: 503, and no SMS.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { decodeProtectedHeader } from 'jose';
import { promoteTokenKey, stageTokenKey } from '../../local/keys';
import { API_KEY, startStack, type Answer, type Stack } from '../support/stack';

const MARK = 'zq-aws-said-5531';
const ERROR_FIELDS = new Set(['error', 'message', 'details', 'retryAfterSeconds', 'attemptsRemaining']);

let seq = 0;
const sent: string[] = [];
const phone = (): string => {
  const number = `+9188${String(10_000_000 + ++seq).slice(-8)}`;
  sent.push(number);
  return number;
};

const expectError = (answer: Answer, status: number, code: string): void => {
  expect({ status: answer.status, error: answer.body.error }).toEqual({ status, error: code });
  expect(typeof answer.body.message).toBe('string');
  for (const key of Object.keys(answer.body)) expect(ERROR_FIELDS.has(key)).toBe(true);
  const visible = JSON.stringify(answer);
  for (const text of [MARK, API_KEY, 'Exception', 'DynamoDB', 'Secrets', 'stack', '    at ']) expect(visible).not.toContain(text);
};

/** Lambda's stderr goes to CloudWatch too: anything written outside an invocation (the stack captures those) lands here. */
const stderr: string[] = [];
const realStderrWrite = process.stderr.write.bind(process.stderr);
beforeAll(() => {
  process.stderr.write = ((chunk: unknown, ...rest: unknown[]) => {
    stderr.push(String(chunk));
    return realStderrWrite(chunk as string, ...(rest as []));
  }) as typeof process.stderr.write;
});
afterAll(() => {
  process.stderr.write = realStderrWrite;
});

const closedPort = async (): Promise<number> => {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
};

type DynamoFault = { status: number; type: string } | 'hang';
interface DynamoProxy {
  endpoint: string;
  /** Operations (e.g. 'UpdateItem', '*') to fail, and how; forwarded to dynalite otherwise. */
  fail(operation: string, fault: DynamoFault | undefined): void;
  /** Operations seen, in order (e.g. 'PutItem'), failed ones included. */
  seen: string[];
  close(): Promise<void>;
}

const startDynamoProxy = async (target: string): Promise<DynamoProxy> => {
  const faults = new Map<string, DynamoFault>();
  const seen: string[] = [];
  const sockets = new Set<Socket>();
  const upstream = new URL(target);
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const operation = String(req.headers['x-amz-target'] ?? '').split('.').pop() ?? '';
      seen.push(operation);
      const fault = faults.get(operation) ?? faults.get('*');
      if (fault === 'hang') return; // never answers: the SDK's requestTimeout must end it
      if (fault !== undefined) {
        const text = JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${fault.type}`, message: `${fault.type} ${MARK}` });
        res.writeHead(fault.status, { 'content-type': 'application/x-amz-json-1.0', 'content-length': Buffer.byteLength(text), 'x-amzn-requestid': MARK });
        return void res.end(text);
      }
      const forward = httpRequest(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
        (up) => {
          res.writeHead(up.statusCode ?? 500, up.headers);
          up.pipe(res);
        },
      );
      forward.on('error', () => res.destroy());
      forward.end(body);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    fail: (operation, fault) => void (fault === undefined ? faults.delete(operation) : faults.set(operation, fault)),
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        for (const s of sockets) s.destroy();
      }),
  };
};

const THROTTLED: DynamoFault = { status: 400, type: 'ProvisionedThroughputExceededException' };

describe('DynamoDB unreachable or refusing: fail closed (503, no SMS)', () => {
  let stack: Stack;
  let proxy: DynamoProxy;
  beforeAll(async () => {
    stack = await startStack({ SEND_COOLDOWN_SECONDS: '0' });
    proxy = await startDynamoProxy(stack.dynamo.endpoint);
    stack.coldStart({ AWS_ENDPOINT_URL_DYNAMODB: proxy.endpoint });
  });
  afterAll(async () => {
    await proxy.close();
    await stack.close();
  });
  beforeEach(() => {
    stack.sandbox.reset();
    proxy.fail('*', undefined);
    for (const op of ['GetItem', 'PutItem', 'UpdateItem', 'DeleteItem']) proxy.fail(op, undefined);
  });

  it('the proxy itself is transparent: a send and a verify work through it', async () => {
    const { otpRequestId, code } = await stack.sendAndRead(phone());
    expect((await stack.verify({ otpRequestId, otp: code })).status).toBe(200);
    expect(proxy.seen).toEqual(expect.arrayContaining(['UpdateItem', 'PutItem']));
  });

  it('nothing listening on the DynamoDB endpoint: 503 service_unavailable, the provider never called', async () => {
    stack.coldStart({ AWS_ENDPOINT_URL_DYNAMODB: `http://127.0.0.1:${await closedPort()}` });
    try {
      expectError(await stack.send({ phoneNumber: phone() }), 503, 'service_unavailable');
      // With an Idempotency-Key the first DynamoDB call is another one: same answer.
      expectError(await stack.send({ phoneNumber: phone() }, { headers: { 'idempotency-key': 'order-123456' } }), 503, 'service_unavailable');
      // An id that never opens does the same store work as an expired one (API.md: equal work for dead ids),
      // so with the store down it fails closed like any other verify.
      expectError(await stack.verify({ otpRequestId: 'x'.repeat(40), otp: '123456' }), 503, 'service_unavailable');
      expect(stack.sandbox.calls).toHaveLength(0);
    } finally {
      stack.coldStart({ AWS_ENDPOINT_URL_DYNAMODB: proxy.endpoint });
    }
  });

  it('a verify of a real id with DynamoDB unreachable is 503, and the code still verifies afterwards', async () => {
    const { otpRequestId, code } = await stack.sendAndRead(phone());
    stack.coldStart({ AWS_ENDPOINT_URL_DYNAMODB: `http://127.0.0.1:${await closedPort()}` });
    try {
      expectError(await stack.verify({ otpRequestId, otp: code }), 503, 'service_unavailable');
    } finally {
      stack.coldStart({ AWS_ENDPOINT_URL_DYNAMODB: proxy.endpoint });
    }
    expect((await stack.verify({ otpRequestId, otp: code })).status).toBe(200);
  });

  it.each([
    ['ProvisionedThroughputExceededException', THROTTLED],
    ['InternalServerError', { status: 500, type: 'InternalServerError' }],
    ['ResourceNotFoundException (table missing)', { status: 400, type: 'ResourceNotFoundException' }],
    ['AccessDeniedException', { status: 400, type: 'AccessDeniedException' }],
  ] as [string, DynamoFault][])('every call answered %s: 503, no SMS', async (_, fault) => {
    proxy.fail('*', fault);
    expectError(await stack.send({ phoneNumber: phone() }), 503, 'service_unavailable');
    expect(stack.sandbox.calls).toHaveLength(0);
    expect(proxy.seen.length).toBeGreaterThan(0);
  });

  it('throttled only when the code is stored (after the limits were taken): 503, no SMS', async () => {
    proxy.fail('PutItem', THROTTLED);
    expectError(await stack.send({ phoneNumber: phone() }), 503, 'service_unavailable');
    expect(stack.sandbox.calls).toHaveLength(0);
  });

  it('throttled on the Idempotency-Key record: 503, no SMS; the same key works once DynamoDB is back', async () => {
    const number = phone();
    const headers = { 'idempotency-key': `order-${randomBytes(6).toString('hex')}` };
    proxy.fail('PutItem', THROTTLED);
    expectError(await stack.send({ phoneNumber: number }, { headers }), 503, 'service_unavailable');
    expect(stack.sandbox.calls).toHaveLength(0);
    proxy.fail('PutItem', undefined);
    expect((await stack.send({ phoneNumber: number }, { headers })).status).toBe(201);
    expect(stack.sandbox.calls).toHaveLength(1);
  });

  it('a verify while DynamoDB throttles is 503', async () => {
    const { otpRequestId, code } = await stack.sendAndRead(phone());
    proxy.fail('UpdateItem', THROTTLED);
    expectError(await stack.verify({ otpRequestId, otp: code }), 503, 'service_unavailable');
  });

  it('DynamoDB that accepts the connection but never answers: 503 in bounded time, no SMS', async () => {
    proxy.fail('*', 'hang');
    const started = Date.now();
    expectError(await stack.send({ phoneNumber: phone() }), 503, 'service_unavailable');
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(stack.sandbox.calls).toHaveLength(0);
  }, 20_000);

  it('the logs name the failure as the store being unavailable and hold no secret or number', async () => {
    const number = phone();
    proxy.fail('*', THROTTLED);
    const before = stack.logs.length;
    expectError(await stack.send({ phoneNumber: number }), 503, 'service_unavailable');
    const lines = stack.logs.slice(before).join('').split('\n').filter((l) => l.startsWith('{'));
    const failed = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.message === 'request failed');
    expect(failed).toMatchObject({ level: 'ERROR', status: 503, code: 'service_unavailable', reason: 'store' });
    for (const secret of [number, API_KEY, stack.hashKey, stack.tokenKey.current.d]) expect(lines.join('\n')).not.toContain(secret);
  });
});

describe('Secrets Manager', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ SEND_COOLDOWN_SECONDS: '0' });
  });
  afterAll(async () => {
    await stack.close();
    const text = stderr.join('');
    for (const secret of [API_KEY, stack.hashKey, stack.tokenKey.current.d]) expect(text).not.toContain(secret);
  });
  beforeEach(() => {
    // Each test starts from a healthy stand-in holding the original secrets.
    stack.secrets.failAll(false);
    stack.secrets.set('sm/api-key', API_KEY);
    stack.secrets.set('otp/hash-key', stack.hashKey);
    stack.secrets.set('otp/token-key', JSON.stringify(stack.tokenKey));
    stack.sandbox.reset();
  });
  /** Every test begins with a cold start (after arranging what the init will meet). */
  const coldStart = (env: Record<string, string | undefined> = {}) =>
    stack.coldStart({ SECRETS_CACHE_SECONDS: undefined, AWS_ENDPOINT_URL_SECRETS_MANAGER: stack.secrets.endpoint, ...env });

  it('unreachable at the cold start: 503 on both routes, nothing sent; fixed, the NEXT invocation works without a cold start', async () => {
    stack.secrets.failAll(true);
    coldStart();
    const number = phone();
    expectError(await stack.send({ phoneNumber: number }), 503, 'service_unavailable');
    expectError(await stack.verify({ otpRequestId: 'abc', otp: '123456' }), 503, 'service_unavailable');
    expect(stack.sandbox.calls).toHaveLength(0);
    stack.secrets.failAll(false);
    const { otpRequestId, code } = await stack.sendAndRead(number);
    expect((await stack.verify({ otpRequestId, otp: code })).status).toBe(200);
  });

  it('unreachable when the cache expires on a warm container: 503 (no stale key), then recovers', async () => {
    coldStart({ SECRETS_CACHE_SECONDS: '1' });
    expect((await stack.send({ phoneNumber: phone() })).status).toBe(201);
    await new Promise((r) => setTimeout(r, 1100));
    stack.secrets.failAll(true);
    const before = stack.secrets.requests;
    expectError(await stack.send({ phoneNumber: phone() }), 503, 'service_unavailable');
    expect(stack.secrets.requests).toBeGreaterThan(before);
    expect(stack.sandbox.calls).toHaveLength(1);
    stack.secrets.failAll(false);
    expect((await stack.send({ phoneNumber: phone() })).status).toBe(201);
  });

  it('a missing hash key: 503, not cached; once it exists again the next invocation works', async () => {
    stack.secrets.remove('otp/hash-key');
    coldStart();
    expectError(await stack.send({ phoneNumber: phone() }), 503, 'service_unavailable');
    expectError(await stack.send({ phoneNumber: phone() }), 503, 'service_unavailable');
    expect(stack.sandbox.calls).toHaveLength(0);
    stack.secrets.set('otp/hash-key', stack.hashKey);
    const requests = stack.secrets.requests;
    expect((await stack.send({ phoneNumber: phone() })).status).toBe(201);
    expect(stack.secrets.requests).toBeGreaterThan(requests);
  });

  it('a missing API key: 503, nothing sent; restored, the next invocation works', async () => {
    stack.secrets.remove('sm/api-key');
    coldStart();
    expectError(await stack.send({ phoneNumber: phone() }), 503, 'service_unavailable');
    expect(stack.sandbox.calls).toHaveLength(0);
    stack.secrets.set('sm/api-key', API_KEY);
    expect((await stack.send({ phoneNumber: phone() })).status).toBe(201);
  });

  it.each([
    ['empty', ''],
    ['too short to be a key', 'short'],
    ['a pass phrase', 'CheckoutOtp2026!'],
    ['16 bytes in base64', randomBytes(16).toString('base64')],
  ])('a hash key that is %s: 503 on both routes, nothing sent, the log names HASH_SECRET_ID and not the value', async (_, value) => {
    stack.secrets.set('otp/hash-key', value);
    coldStart();
    const before = stack.logs.length;
    expectError(await stack.send({ phoneNumber: phone() }), 503, 'service_unavailable');
    expectError(await stack.verify({ otpRequestId: 'abc', otp: '123456' }), 503, 'service_unavailable');
    expect(stack.sandbox.calls).toHaveLength(0);
    const text = stack.logs.slice(before).join('') + stderr.join('');
    expect(text).toContain('HASH_SECRET_ID');
    if (value !== '') expect(text).not.toContain(value);
  });

  it('a token key that is not the documented JSON: verify and jwks answer 503 naming TOKEN_KEY_SECRET_ID; send is unaffected', async () => {
    stack.secrets.set('otp/token-key', JSON.stringify({ current: { kty: 'EC', crv: 'P-256' } }));
    coldStart();
    const before = stack.logs.length;
    const { otpRequestId, code } = await stack.sendAndRead(phone());
    expectError(await stack.verify({ otpRequestId, otp: code }), 503, 'service_unavailable');
    expectError(await stack.jwks(), 503, 'service_unavailable');
    expect(stack.logs.slice(before).join('') + stderr.join('')).toContain('TOKEN_KEY_SECRET_ID');
  });

  it('Secrets Manager that accepts the connection but never answers: 503 in bounded time, nothing sent', async () => {
    const sockets = new Set<Socket>();
    const hanging = createServer(() => undefined).on('connection', (s) => sockets.add(s));
    await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', r));
    try {
      coldStart({ AWS_ENDPOINT_URL_SECRETS_MANAGER: `http://127.0.0.1:${(hanging.address() as AddressInfo).port}` });
      const started = Date.now();
      expectError(await stack.send({ phoneNumber: phone() }), 503, 'service_unavailable');
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(stack.sandbox.calls).toHaveLength(0);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => hanging.close(() => r()));
      coldStart();
    }
    expect((await stack.send({ phoneNumber: phone() })).status).toBe(201);
  }, 20_000);

  it('warm invocations make no Secrets Manager request', async () => {
    coldStart();
    expect((await stack.send({ phoneNumber: phone() })).status).toBe(201);
    const requests = stack.secrets.requests;
    for (let i = 0; i < 3; i += 1) {
      const { otpRequestId, code } = await stack.sendAndRead(phone());
      expect((await stack.verify({ otpRequestId, otp: code })).status).toBe(200);
    }
    expect(stack.secrets.requests).toBe(requests);
  });

  it('a rotated token key signs once the cache expires, and not before; the JWKS lists the old key as previous', async () => {
    coldStart({ SECRETS_CACHE_SECONDS: '3' });
    const coldAt = Date.now();
    const sendAndVerify = async (): Promise<string> => {
      const { otpRequestId, code } = await stack.sendAndRead(phone());
      const verified = await stack.verify({ otpRequestId, otp: code });
      expect(verified.status).toBe(200);
      return String(verified.body.token);
    };
    const old = stack.tokenKey;
    await sendAndVerify(); // the prefetch is answered
    expect((await stack.jwks()).body).toEqual({ keys: [expect.objectContaining({ kid: old.current.kid })] });
    const rotated = promoteTokenKey(await stageTokenKey(old), { nowSeconds: Math.floor(Date.now() / 1000), keepSeconds: 900 });
    stack.setTokenKey(rotated);
    const requests = stack.secrets.requests;

    const before = await sendAndVerify();
    expect(Date.now() - coldAt).toBeLessThan(2500); // still inside the 3 s cache
    expect(decodeProtectedHeader(before).kid).toBe(old.current.kid);
    expect(stack.secrets.requests).toBe(requests);

    await new Promise((r) => setTimeout(r, 3100 - (Date.now() - coldAt)));
    const after = await sendAndVerify();
    expect(decodeProtectedHeader(after).kid).toBe(rotated.current.kid);
    expect(stack.secrets.requests).toBeGreaterThan(requests);
    expect(((await stack.jwks()).body.keys as { kid: string }[]).map((k) => k.kid)).toEqual([rotated.current.kid, old.current.kid]);
    expect(stack.logs.join('') + stderr.join('')).not.toContain(rotated.current.d);
  });

  it('a rotated API key reaches the provider once the cache expires, and not before', async () => {
    coldStart({ SECRETS_CACHE_SECONDS: '1' });
    expect((await stack.send({ phoneNumber: phone() })).status).toBe(201);
    const rotated = `sm_rotated_${randomBytes(6).toString('hex')}`;
    stack.secrets.set('sm/api-key', rotated);
    // Still the old key: the sandbox (started with API_KEY) accepts it.
    expect((await stack.send({ phoneNumber: phone() })).status).toBe(201);
    expect(stack.sandbox.calls.at(-1)!.headers['x-api-key']).toBe(API_KEY);
    await new Promise((r) => setTimeout(r, 1100));
    // The new key is sent; the sandbox does not know it (401), which is our 502.
    const answer = await stack.send({ phoneNumber: phone() });
    expectError(answer, 502, 'upstream_error');
    expect(stack.sandbox.calls.at(-1)!.headers['x-api-key']).toBe(rotated);
    expect(JSON.stringify(answer)).not.toContain(rotated);
    expect(stack.logs.join('') + stderr.join('')).not.toContain(rotated);
  });
});
