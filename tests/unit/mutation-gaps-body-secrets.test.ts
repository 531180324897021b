/**
 * Gaps a mutation run left in middleware/json-body.ts and middleware/secrets.ts (docs/mutation.md), stated as
 * what a client or an operator sees through the shared HTTP pipeline (middleware/http-api.ts):
 * - JSON body: which Content-Type values are JSON (API.md: `application/json`, a parameter is fine, nothing
 *   that merely contains it), a request without any headers or with a null body is the client's 4xx, never a
 *   500, and the message each 400 carries; duplicate property names whatever the whitespace before the colon;
 * - secrets, against the local Secrets Manager stand-in over HTTP (local/secrets.ts, the real SDK): which
 *   variable a 503's log names, what Secrets Manager said when a secret is missing, what is fetched and how
 *   often (a secret left unset is not asked for, the same set in another order is fetched once, the cache
 *   lasts exactly `cacheSeconds`), and that a Secrets Manager that never answers is a 503 after two attempts.
 *
 * Every test loads the layers inside itself (`fresh()`, jest.isolateModules): a module loaded at the top of a
 * file runs its module-level code (the media-type pattern, the table of secret checks) outside any test, and
 * Stryker's per-test coverage then runs those mutants against none of the tests that would notice them.
 * It also gives each test its own Middy cache, as a cold start would.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { newHashKey, newTokenKeySecret, type TokenKeySecret } from '../../local/keys';
import { startSecretsStandIn, type SecretsStandIn } from '../../local/secrets';
import type * as HttpApiModule from '../../middleware/http-api';
import type * as JsonBodyModule from '../../middleware/json-body';
import type * as SecretsModule from '../../middleware/secrets';
import { captureStdio } from '../support/capture-stdio';

type Layers = { httpApi: typeof HttpApiModule.httpApi; jsonBody: typeof JsonBodyModule.jsonBodyMiddleware; secrets: typeof SecretsModule.secretsMiddleware };
const fresh = (): Layers => {
  let layers!: Layers;
  jest.isolateModules(() => {
    layers = {
      httpApi: (require('../../middleware/http-api') as typeof HttpApiModule).httpApi,
      jsonBody: (require('../../middleware/json-body') as typeof JsonBodyModule).jsonBodyMiddleware,
      secrets: (require('../../middleware/secrets') as typeof SecretsModule).secretsMiddleware,
    };
  });
  return layers;
};

/** No CloudFront edge: the origin-verify layer is a no-op. */
const NO_EDGE = { secretId: undefined, cacheSeconds: 300 };
const context = (): Context => ({ awsRequestId: 'req-1', functionName: 'otp-test', getRemainingTimeInMillis: () => 25_000 }) as unknown as Context;
const event = (body: string | null | undefined, headers: Record<string, string> | null = { 'content-type': 'application/json' }): APIGatewayProxyEventV2 =>
  ({
    version: '2.0',
    routeKey: 'POST /x',
    rawPath: '/x',
    rawQueryString: '',
    ...(headers === null ? {} : { headers }),
    requestContext: { http: { method: 'POST', path: '/x', sourceIp: '203.0.113.7' }, requestId: 'r', stage: '$default' },
    body,
    isBase64Encoded: false,
  }) as unknown as APIGatewayProxyEventV2;

interface Answer {
  status: number;
  body: { error?: string; message?: string; [k: string]: unknown };
}
type Handler = (e: APIGatewayProxyEventV2, c: Context) => Promise<unknown>;
const answer = async (handler: Handler, e: APIGatewayProxyEventV2): Promise<Answer> => {
  const res = (await handler(e, context())) as APIGatewayProxyStructuredResultV2;
  return { status: res.statusCode!, body: JSON.parse(String(res.body)) as Answer['body'] };
};

// What the functions print (Powertools: INFO to stdout, WARN and ERROR to stderr), one JSON object a line.
const out: string[] = [];
let restore: () => void;
beforeEach(() => {
  out.length = 0;
  restore = captureStdio((chunk) => out.push(chunk));
});
afterEach(() => restore());
const lines = () =>
  out
    .flatMap((chunk) => chunk.split('\n'))
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
const failures = () => lines().filter((l) => l.message === 'request failed');

describe('JSON body, as the client sees it', () => {
  const echo = (): Handler => {
    const { httpApi, jsonBody } = fresh();
    return httpApi({ originVerify: NO_EDGE, corsAllowedOrigins: [] })
      .use(jsonBody())
      .handler(async (e) => ({ statusCode: 200, body: JSON.stringify({ got: e.body }) })) as unknown as Handler;
  };

  it.each(['application/json; charset=utf-8', 'application/json ; charset=utf-8', 'Application/JSON;charset=UTF-8'])('Content-Type %p is JSON: the body is read', async (type) => {
    expect(await answer(echo(), event('{"a":1}', { 'content-type': type }))).toEqual({ status: 200, body: { got: { a: 1 } } });
  });

  it.each(['text/plain; note=application/json', 'x-application/json', 'application/jsonx', 'application/json-seq', 'application/json5; charset=utf-8'])(
    'Content-Type %p only contains the JSON type: 415 unsupported_media_type',
    async (type) => {
      const r = await answer(echo(), event('{"a":1}', { 'content-type': type }));
      expect({ status: r.status, error: r.body.error }).toEqual({ status: 415, error: 'unsupported_media_type' });
    },
  );

  it('a request without any headers (a direct invoke) is 415, not a 500', async () => {
    const r = await answer(echo(), event('{"a":1}', null));
    expect({ status: r.status, error: r.body.error }).toEqual({ status: 415, error: 'unsupported_media_type' });
  });

  it.each([
    ['no body (null)', null],
    ['an empty body', ''],
  ])('%s is 400 invalid_request asking for a JSON object, not a 500 or a parse error', async (_, body) => {
    expect(await answer(echo(), event(body))).toEqual({ status: 400, body: { error: 'invalid_request', message: 'The request body must be a JSON object.' } });
  });

  it.each(['[1]', '"phoneNumber"', 'null'])('JSON that is not an object (%s) says a JSON object is wanted', async (raw) => {
    expect(await answer(echo(), event(raw))).toEqual({ status: 400, body: { error: 'invalid_request', message: 'The request body must be a JSON object.' } });
  });

  it.each(['{"a"\n:1,"a"\n:2}', '{"a"\r\n:1,"a"\r:2}', '{"a" \t\r\n :1,"a":2}'])('a repeated property name is refused whatever whitespace comes before the colon (%j)', async (raw) => {
    expect(await answer(echo(), event(raw))).toEqual({ status: 400, body: { error: 'invalid_request', message: 'The request body names a property more than once.' } });
  });

  it('a misspelt option names itself when the function is built', () => {
    const { jsonBody } = fresh();
    expect(() => jsonBody({ maxbytes: 10 } as never)).toThrow('jsonBodyMiddleware: unknown option "maxbytes"');
  });
});

describe('secrets, against the Secrets Manager stand-in', () => {
  let sm: SecretsStandIn;
  let HASH: string;
  let TOKEN_KEY: TokenKeySecret;
  const endpointBefore = process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER;
  beforeAll(async () => {
    HASH = newHashKey();
    TOKEN_KEY = await newTokenKeySecret();
    sm = await startSecretsStandIn({ secrets: {} });
    process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = sm.endpoint;
  });
  afterAll(async () => {
    if (endpointBefore === undefined) delete process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER;
    else process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = endpointBefore;
    await sm.close();
  });
  beforeEach(() => {
    for (const id of ['sm/api-key', 'otp/hash-key', 'otp/token-key', 'otp/challenge-secret']) sm.remove(id);
    sm.failAll(false);
    base = sm.requests;
  });
  let base = 0;
  /** GetSecretValue calls the stand-in answered in this test. */
  const fetched = () => sm.requests - base;

  /** A function that needs `secrets` and answers 200 with the names of the secrets it was given. */
  const fn = (secrets: SecretsModule.SecretsOptions['secrets'], cacheSeconds = 300, layers = fresh()) => {
    const seen: Record<string, unknown>[] = [];
    const handler = layers
      .httpApi({ originVerify: NO_EDGE, corsAllowedOrigins: [] })
      .use(layers.secrets({ secrets, cacheSeconds }))
      .handler(async (_e, ctx) => {
        const c = ctx as unknown as Record<string, unknown>;
        seen.push({ apiKey: c.apiKey, hashKey: c.hashKey, tokenKey: c.tokenKey, challengeSecret: c.challengeSecret });
        return { statusCode: 200, body: '{}' };
      }) as unknown as Handler;
    return { invoke: () => answer(handler, event('{}')), seen };
  };

  it.each([
    ['an empty API key', { apiKey: 'sm/api-key' }, { 'sm/api-key': '' }, 'API_KEY_SECRET_ID'],
    ['a challenge secret stored as JSON, not a plain string', { challengeSecret: 'otp/challenge-secret' }, { 'otp/challenge-secret': '{"secret":"x"}' }, 'CHALLENGE_SECRET_ID'],
    ['a hash key that is a pass phrase', { hashKey: 'otp/hash-key' }, { 'otp/hash-key': 'CheckoutOtp2026!' }, 'HASH_SECRET_ID'],
    ['a token key that is not the documented JSON', { tokenKey: 'otp/token-key' }, { 'otp/token-key': '{"current":{}}' }, 'TOKEN_KEY_SECRET_ID'],
  ] as const)('%s: 503 service_unavailable, logged as reason "secrets" naming the variable to fix', async (_, secrets, stored, variable) => {
    for (const [id, value] of Object.entries(stored)) sm.set(id, value);
    const r = await fn(secrets).invoke();
    expect({ status: r.status, error: r.body.error }).toEqual({ status: 503, error: 'service_unavailable' });
    const [failure, ...more] = failures();
    expect(more).toEqual([]);
    expect(failure).toMatchObject({ level: 'ERROR', status: 503, reason: 'secrets', error: { message: expect.stringContaining(variable) } });
    const metrics = lines().find((l) => '_aws' in l && 'UpstreamError' in l);
    expect(metrics).toMatchObject({ Kind: 'secrets' });
    for (const value of Object.values(stored)) if (value.length > 3) expect(out.join('')).not.toContain(value);
  });

  it('a secret missing from Secrets Manager: 503, and the log carries what Secrets Manager said', async () => {
    sm.set('otp/hash-key', HASH);
    const r = await fn({ apiKey: 'sm/api-key', hashKey: 'otp/hash-key' }).invoke();
    expect({ status: r.status, error: r.body.error }).toEqual({ status: 503, error: 'service_unavailable' });
    const [failure, ...more] = failures();
    expect(more).toEqual([]);
    expect(failure).toMatchObject({ level: 'ERROR', status: 503, reason: 'secrets' });
    expect(JSON.stringify(failure!.error)).toContain('ResourceNotFoundException');
    expect(JSON.stringify(failure!.error)).not.toContain('API_KEY_SECRET_ID');
  });

  it('a secret left unset (no bot challenge configured) is not asked for: one fetch, and the function answers', async () => {
    sm.set('sm/api-key', 'key-1');
    const f = fn({ apiKey: 'sm/api-key', challengeSecret: undefined });
    expect((await f.invoke()).status).toBe(200);
    expect(f.seen).toEqual([{ apiKey: 'key-1', hashKey: undefined, tokenKey: undefined, challengeSecret: undefined }]);
    expect(fetched()).toBe(1);
  });

  it('two functions in one process naming the same secrets, in another order, share one fetch of each', async () => {
    sm.set('sm/api-key', 'key-1');
    sm.set('otp/hash-key', HASH);
    const layers = fresh();
    const first = fn({ apiKey: 'sm/api-key', hashKey: 'otp/hash-key' }, 300, layers);
    expect((await first.invoke()).status).toBe(200);
    expect(fetched()).toBe(2);
    const second = fn({ hashKey: 'otp/hash-key', apiKey: 'sm/api-key' }, 300, layers);
    expect((await second.invoke()).status).toBe(200);
    expect(second.seen).toEqual([{ apiKey: 'key-1', hashKey: HASH, tokenKey: undefined, challengeSecret: undefined }]);
    expect(fetched()).toBe(2);
  });

  it('a secret is served from the cache for exactly cacheSeconds: a rotation is picked up only after that', async () => {
    sm.set('sm/api-key', 'key-1');
    const t0 = Date.now();
    const now = jest.spyOn(Date, 'now').mockReturnValue(t0);
    try {
      const f = fn({ apiKey: 'sm/api-key' }, 60);
      expect((await f.invoke()).status).toBe(200);
      expect(fetched()).toBe(1);
      sm.set('sm/api-key', 'key-2');
      now.mockReturnValue(t0 + 60_000);
      expect((await f.invoke()).status).toBe(200);
      expect(fetched()).toBe(1);
      now.mockReturnValue(t0 + 60_001);
      expect((await f.invoke()).status).toBe(200);
      expect(fetched()).toBe(2);
      expect(f.seen.map((s) => s.apiKey)).toEqual(['key-1', 'key-1', 'key-2']);
    } finally {
      now.mockRestore();
    }
  });

  describe('a Secrets Manager that accepts connections but never answers', () => {
    let hanging: Server;
    let asked = 0;
    beforeAll(async () => {
      hanging = createServer(() => void (asked += 1));
      await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
    });
    afterAll(async () => {
      hanging.closeAllConnections();
      await new Promise((resolve) => hanging.close(resolve));
    });

    it('is a 503 after two attempts, not a hung invocation', async () => {
      process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}`;
      try {
        const r = await fn({ tokenKey: 'otp/token-key' }).invoke();
        expect({ status: r.status, error: r.body.error }).toEqual({ status: 503, error: 'service_unavailable' });
        expect(asked).toBe(2);
        expect(failures()).toEqual([expect.objectContaining({ reason: 'secrets' })]);
      } finally {
        process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = sm.endpoint;
      }
    }, 20_000);
  });

  it('a valid token key is handed over parsed', async () => {
    sm.set('otp/token-key', JSON.stringify(TOKEN_KEY));
    const f = fn({ tokenKey: 'otp/token-key' });
    expect((await f.invoke()).status).toBe(200);
    expect(f.seen[0]!.tokenKey).toEqual(TOKEN_KEY);
  });
});
