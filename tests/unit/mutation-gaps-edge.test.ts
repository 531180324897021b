/**
 * Gaps a mutation run left in the edge layers (docs/mutation.md): the CloudFront origin check
 * (middleware/origin-verify.ts) and the headers every answer carries (middleware/response-headers.ts), through the
 * shared pipeline the handlers use (middleware/http-api.ts), with the secret read over HTTP from the local Secrets
 * Manager stand-in (local/secrets.ts). Every test is a cold start: the modules are loaded afresh, as a new Lambda
 * instance loads them, so the secret is prefetched anew and no cache leaks from one test into the next.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { startSecretsStandIn, type SecretsStandIn } from '../../local/secrets';
import { logEntries, upstreamKinds } from '../support/emf';
import { apiEvent, context } from '../support/stack';
import { captureStdio } from '../support/capture-stdio';

const SECRET_ID = 'otp/origin-verify';
const SECRET = 'edge-3c9f1a7e5b2d4c8a9f0e';
/** The CloudFront edge server's address, as API Gateway sees it. */
const EDGE_IP = '130.176.1.1';
const VIEWER = '198.51.100.10:46532';
const FORBIDDEN = { error: 'forbidden', message: "This endpoint is only served through the service's public address." };

let sm: SecretsStandIn;
const savedEndpoint = process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER;
beforeAll(async () => {
  sm = await startSecretsStandIn({ secrets: { [SECRET_ID]: SECRET } });
});
afterAll(async () => {
  await sm.close();
});

/** What the function printed (Powertools writes INFO to stdout, WARN and ERROR to stderr). */
const printed: string[] = [];
let restore: () => void;
beforeEach(() => {
  process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = sm.endpoint;
  sm.set(SECRET_ID, SECRET);
  sm.failAll(false);
  printed.length = 0;
  restore = captureStdio((chunk) => printed.push(chunk));
});
afterEach(() => {
  restore();
  jest.restoreAllMocks();
  if (savedEndpoint === undefined) delete process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER;
  else process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = savedEndpoint;
});

interface Seen {
  ip: string | undefined;
  headers: Record<string, string | undefined>;
  context: Record<string, unknown>;
}
interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

/** A new Lambda instance: the shared pipeline (http-api.ts) around a handler that reports what it was given. */
const coldStart = (opts: { secretId?: string; cacheSeconds?: number; corsAllowedOrigins?: string[] } = {}) => {
  let httpApi!: typeof import('../../middleware/http-api').httpApi;
  jest.isolateModules(() => {
    ({ httpApi } = require('../../middleware/http-api') as typeof import('../../middleware/http-api'));
  });
  const seen: Seen[] = [];
  const fn = httpApi({
    corsAllowedOrigins: opts.corsAllowedOrigins ?? [],
    originVerify: { secretId: 'secretId' in opts ? opts.secretId : SECRET_ID, cacheSeconds: opts.cacheSeconds ?? 300 },
  }).handler(async (event, ctx) => {
    seen.push({ ip: event.requestContext?.http?.sourceIp, headers: { ...event.headers }, context: { ...ctx } });
    return { statusCode: 200, body: '{"ok":true}' };
  });
  const invoke = async (event: APIGatewayProxyEventV2): Promise<Answer> => {
    const r = (await fn(event, context())) as APIGatewayProxyStructuredResultV2;
    return { status: r.statusCode!, headers: r.headers as Record<string, string>, body: JSON.parse(String(r.body)) as Record<string, unknown> };
  };
  const call = (headers: Record<string, string>) => invoke(apiEvent('/auth/send-otp', {}, { headers, sourceIp: EDGE_IP }));
  return { call, invoke, seen };
};

const warnings = () => logEntries(printed).filter((l) => l.level === 'WARN');
const failures = () => logEntries(printed).filter((l) => l.message === 'request failed');

describe('the origin check behind CloudFront', () => {
  it('lets CloudFront through (the x-origin-verify header, as serverless.yml configures it) and takes the viewer as the source IP', async () => {
    const { call, seen } = coldStart();
    expect(await call({ 'X-Origin-Verify': SECRET, 'CloudFront-Viewer-Address': VIEWER })).toMatchObject({ status: 200, body: { ok: true } });
    expect(seen).toHaveLength(1);
    expect(seen[0]!.ip).toBe('198.51.100.10');
    // Nothing after the check sees (or could log) the secret header; the viewer address stays readable.
    expect(seen[0]!.headers['x-origin-verify']).toBeUndefined();
    expect(seen[0]!.headers['cloudfront-viewer-address']).toBe(VIEWER);
    expect(warnings()).toEqual([]);
  });

  it.each([
    ['no header', {}],
    ['a wrong value of the same length', { 'x-origin-verify': SECRET.replace(/.$/, 'X') }],
    ['the secret with something appended', { 'x-origin-verify': `${SECRET}0` }],
    ['the secret under another header name', { 'x-origin-verified': SECRET }],
  ])('refuses %s with 403 forbidden, never running the handler', async (_, headers) => {
    const { call, seen } = coldStart();
    expect(await call({ 'cloudfront-viewer-address': VIEWER, ...headers })).toMatchObject({ status: 403, body: FORBIDDEN });
    expect(seen).toEqual([]);
  });

  it('does not hand the secret to the handler: nothing of it is on the Lambda context', async () => {
    const { call, seen } = coldStart();
    expect((await call({ 'x-origin-verify': SECRET, 'cloudfront-viewer-address': VIEWER })).status).toBe(200);
    expect(JSON.stringify(seen[0]!.context)).not.toContain(SECRET);
    expect(seen[0]!.context).not.toHaveProperty('originVerify');
  });

  it.each([
    ['absent', undefined, false],
    ['not an address', 'edge-pop-BOM51', true],
    ['an address without its port', '198.51.100.10', true],
  ])('with the viewer address %s, the request is served, counted under the edge address, and a warning says so', async (_, viewer, present) => {
    const { call, seen } = coldStart();
    const answer = await call({ 'x-origin-verify': SECRET, ...(viewer === undefined ? {} : { 'cloudfront-viewer-address': viewer }) });
    expect(answer.status).toBe(200);
    expect(seen[0]!.ip).toBe(EDGE_IP);
    expect(warnings()).toEqual([
      expect.objectContaining({ message: 'no usable CloudFront-Viewer-Address: per-IP limits count the edge address', present }),
    ]);
  });

  it('the check itself copes with an event without request context (a hand-made test event): the handler runs, with a warning', async () => {
    // Only the origin layer, behind the error mapping: the shared pipeline's CORS layer needs requestContext.http.
    let originVerifyMiddleware!: typeof import('../../middleware/origin-verify').originVerifyMiddleware;
    let errorsMiddleware!: typeof import('../../middleware/errors').errorsMiddleware;
    let middy!: typeof import('@middy/core').default;
    let httpErrorHandler!: typeof import('@middy/http-error-handler').default;
    jest.isolateModules(() => {
      ({ originVerifyMiddleware } = require('../../middleware/origin-verify') as typeof import('../../middleware/origin-verify'));
      ({ errorsMiddleware } = require('../../middleware/errors') as typeof import('../../middleware/errors'));
      middy = (require('@middy/core') as { default: typeof middy }).default;
      httpErrorHandler = (require('@middy/http-error-handler') as { default: typeof httpErrorHandler }).default;
    });
    const handler = jest.fn(async () => ({ statusCode: 200, body: '{"ok":true}' }));
    const fn = middy()
      .use(httpErrorHandler({ logger: false }))
      .use(errorsMiddleware())
      .use(originVerifyMiddleware({ secretId: SECRET_ID, cacheSeconds: 300 }))
      .handler(handler);
    const event = apiEvent('/auth/send-otp', {}, { headers: { 'x-origin-verify': SECRET, 'cloudfront-viewer-address': VIEWER } });
    delete (event as { requestContext?: unknown }).requestContext;
    expect(await fn(event, context())).toMatchObject({ statusCode: 200 });
    expect(handler).toHaveBeenCalledTimes(1);
    expect(warnings()).toEqual([expect.objectContaining({ present: true })]);
  });
});

describe('the origin-verify secret', () => {
  it('is read at cold start and kept for the cache time, up to its last millisecond; a rotation is picked up after it', async () => {
    const ROTATED = 'edge-rotated-7d1e0c9b2a4f6e8d';
    let now = Date.parse('2026-12-02T10:00:00Z');
    jest.spyOn(Date, 'now').mockImplementation(() => now);
    const { call } = coldStart({ cacheSeconds: 60 });
    expect((await call({ 'x-origin-verify': SECRET, 'cloudfront-viewer-address': VIEWER })).status).toBe(200);
    expect(sm.requests).toBeGreaterThan(0);
    const fetched = sm.requests;
    sm.set(SECRET_ID, ROTATED);

    now += 60_000;
    expect((await call({ 'x-origin-verify': SECRET, 'cloudfront-viewer-address': VIEWER })).status).toBe(200);
    expect((await call({ 'x-origin-verify': ROTATED, 'cloudfront-viewer-address': VIEWER })).status).toBe(403);
    expect(sm.requests).toBe(fetched);

    now += 1;
    expect((await call({ 'x-origin-verify': SECRET, 'cloudfront-viewer-address': VIEWER })).status).toBe(403);
    expect((await call({ 'x-origin-verify': ROTATED, 'cloudfront-viewer-address': VIEWER })).status).toBe(200);
    expect(sm.requests).toBe(fetched + 1);
  });

  it('unreadable: 503 service_unavailable, logged and counted as a Secrets Manager failure with its cause', async () => {
    sm.failAll(true);
    const { call, seen } = coldStart();
    expect(await call({ 'x-origin-verify': SECRET, 'cloudfront-viewer-address': VIEWER })).toMatchObject({
      status: 503,
      body: { error: 'service_unavailable' },
    });
    expect(seen).toEqual([]);
    expect(upstreamKinds(printed)).toEqual(['secrets']);
    const [failure, ...more] = failures();
    expect(more).toEqual([]);
    expect(failure).toMatchObject({ reason: 'secrets' });
    expect(JSON.stringify(failure)).toContain('InternalServiceError');
    expect(JSON.stringify(failure)).not.toContain('too short');
  });

  it.each([
    ['empty', ''],
    ['15 characters', 'edge-0123456789'],
    ['stored as JSON key/value (the console default)', JSON.stringify({ originVerify: SECRET })],
  ])('%s: every request is 503 service_unavailable (misconfigured, fails closed), even one sending that value', async (_, value) => {
    sm.set(SECRET_ID, value);
    const { call, seen } = coldStart();
    for (const given of [value, SECRET]) {
      expect(await call({ 'x-origin-verify': given, 'cloudfront-viewer-address': VIEWER })).toMatchObject({ status: 503, body: { error: 'service_unavailable' } });
    }
    expect(seen).toEqual([]);
    expect(upstreamKinds(printed)).toEqual(['secrets', 'secrets']);
    expect(failures()[0]).toMatchObject({ reason: 'secrets', error: expect.objectContaining({ message: 'the origin-verify secret is empty or too short' }) });
  });

  it('of exactly 16 characters is accepted', async () => {
    sm.set(SECRET_ID, 'edge-0123456789a');
    const { call } = coldStart();
    expect((await call({ 'x-origin-verify': 'edge-0123456789a', 'cloudfront-viewer-address': VIEWER })).status).toBe(200);
    expect((await call({ 'x-origin-verify': 'edge-0123456789b', 'cloudfront-viewer-address': VIEWER })).status).toBe(403);
  });

  describe('from a Secrets Manager that accepts the connection and never answers', () => {
    let hanging: Server;
    let endpoint: string;
    beforeAll(async () => {
      hanging = createServer(() => undefined);
      await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', r));
      endpoint = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      hanging.closeAllConnections();
      await new Promise<void>((r) => hanging.close(() => r()));
    });

    it('answers 503 within seconds (two tries of 2 s each), well inside the function timeout', async () => {
      process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = endpoint;
      const started = Date.now();
      const { call } = coldStart();
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'no answer'>((r) => (timer = setTimeout(() => r('no answer'), 12_000)));
      const answer = await Promise.race([call({ 'x-origin-verify': SECRET, 'cloudfront-viewer-address': VIEWER }), deadline]);
      clearTimeout(timer);
      expect(answer).toMatchObject({ status: 503, body: { error: 'service_unavailable' } });
      expect(Date.now() - started).toBeGreaterThanOrEqual(3_900);
      expect(upstreamKinds(printed)).toEqual(['secrets']);
    }, 20_000);
  });
});

describe('CloudFront-Viewer-Address forms', () => {
  it.each([
    ['a bracketed IPv6 address with its port', '[2001:db8::1]:8080', '2001:db8::1'],
    ['an address with spaces around it', '  198.51.100.10:46532 ', '198.51.100.10'],
  ])('%s gives the address', async (_, viewer, ip) => {
    const { call, seen } = coldStart();
    expect((await call({ 'x-origin-verify': SECRET, 'cloudfront-viewer-address': viewer })).status).toBe(200);
    expect(seen[0]!.ip).toBe(ip);
  });

  it.each([
    ['text before the brackets', 'x[2001:db8::1]:8080'],
    ['text after the port', '[2001:db8::1]:8080x'],
  ])('%s is not an address: the edge address is kept', async (_, viewer) => {
    const { call, seen } = coldStart();
    expect((await call({ 'x-origin-verify': SECRET, 'cloudfront-viewer-address': viewer })).status).toBe(200);
    expect(seen[0]!.ip).toBe(EDGE_IP);
  });
});

describe('the headers every answer carries', () => {
  it('an allowed origin gets the whole CORS grant: its requests may send Idempotency-Key and its scripts may read Retry-After', async () => {
    const { call } = coldStart({ secretId: undefined, corsAllowedOrigins: ['https://shop.example'] });
    const { headers } = await call({ origin: 'https://shop.example' });
    expect(headers).toMatchObject({
      'Access-Control-Allow-Origin': 'https://shop.example',
      'Access-Control-Allow-Headers': 'content-type,idempotency-key',
      'Access-Control-Allow-Methods': 'POST,OPTIONS',
      'Access-Control-Expose-Headers': 'retry-after',
      'Access-Control-Max-Age': '600',
    });
  });

  it('a header the handler leaves without a value is not passed on', async () => {
    let responseHeadersMiddleware!: typeof import('../../middleware/response-headers').responseHeadersMiddleware;
    let middy!: typeof import('@middy/core').default;
    jest.isolateModules(() => {
      ({ responseHeadersMiddleware } = require('../../middleware/response-headers') as typeof import('../../middleware/response-headers'));
      middy = (require('@middy/core') as { default: typeof import('@middy/core').default }).default;
    });
    const fn = middy()
      .use(responseHeadersMiddleware({ corsAllowedOrigins: [] }))
      .handler(async () => ({ statusCode: 200, headers: { 'X-Trace': undefined, 'X-Empty': '', 'X-Kept': 'yes' }, body: '{}' }));
    const r = (await fn(apiEvent('/auth/send-otp', {}), context())) as { headers: Record<string, unknown> };
    expect(Object.keys(r.headers)).toContain('X-Kept');
    expect(Object.keys(r.headers)).not.toContain('X-Trace');
    expect(Object.keys(r.headers)).not.toContain('X-Empty');
  });

  it('an error no layer turned into an answer fails the invocation with that same error (no headers-only answer is made up)', async () => {
    let responseHeadersMiddleware!: typeof import('../../middleware/response-headers').responseHeadersMiddleware;
    let middy!: typeof import('@middy/core').default;
    jest.isolateModules(() => {
      ({ responseHeadersMiddleware } = require('../../middleware/response-headers') as typeof import('../../middleware/response-headers'));
      middy = (require('@middy/core') as { default: typeof import('@middy/core').default }).default;
    });
    const boom = new Error('nothing mapped this');
    const fn = middy()
      .use(responseHeadersMiddleware({ corsAllowedOrigins: ['https://shop.example'] }))
      .handler(async () => {
        throw boom;
      });
    await expect(fn(apiEvent('/auth/send-otp', {}, { headers: { origin: 'https://shop.example' } }), context())).rejects.toBe(boom);
  });
});
