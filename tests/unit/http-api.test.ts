/**
 * middleware/http-api.ts: the outer layers the three functions share, run through a real Middy pipeline.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { InvalidRequest } from '../../lib/errors';
import { logger } from '../../lib/log';
import { httpApi } from '../../middleware/http-api';
import { apiEvent, context } from '../support/stack';
import { captureStdio } from '../support/capture-stdio';

/** No CloudFront edge: the origin-verify layer is a no-op. */
const NO_EDGE = { secretId: undefined, cacheSeconds: 300 };
const out: string[] = [];
let restore: () => void;
beforeEach(() => {
  out.length = 0;
  restore = captureStdio((chunk) => out.push(chunk));
});
afterEach(() => restore());

const run = async (handler: (e: APIGatewayProxyEventV2, c: ReturnType<typeof context>) => Promise<unknown>, headers: Record<string, string> = {}) => {
  const res = (await handler(apiEvent('/x', {}, { headers: { 'X-Mixed-Case': 'v', ...headers } }), context())) as APIGatewayProxyStructuredResultV2;
  return { status: res.statusCode, headers: res.headers as Record<string, string>, body: JSON.parse(String(res.body)) as Record<string, unknown> };
};
const emf = () => out.filter((l) => l.includes('"_aws"')).map((l) => JSON.parse(l) as Record<string, unknown>);

it('refuses an unknown option', () => {
  expect(() => httpApi({ originVerify: NO_EDGE, corsAllowedOrigins: [], cors: true } as never)).toThrow(/unknown option "cors"/);
});

it('a success gets the shared headers, lower-cased request headers inside, and no metrics line when there is nothing to count', async () => {
  let seen: Record<string, string | undefined> = {};
  const handler = httpApi({ originVerify: NO_EDGE, corsAllowedOrigins: [] }).handler(async (event) => {
    seen = event.headers;
    return { statusCode: 200, body: '{"ok":true}' };
  });
  const answer = await run(handler);
  expect(answer).toMatchObject({ status: 200, body: { ok: true } });
  expect(answer.headers).toMatchObject({ 'Content-Type': 'application/json', 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
  expect(seen['x-mixed-case']).toBe('v');
  expect(out.join('')).not.toContain('No application metrics');
  expect(emf()).toEqual([]);
});

it('a cacheable route keeps its Cache-Control on success, never on an error', async () => {
  const ok = httpApi({ originVerify: NO_EDGE, corsAllowedOrigins: [], cacheControl: 'public, max-age=300' }).handler(async () => ({ statusCode: 200, body: '{}' }));
  expect((await run(ok)).headers['Cache-Control']).toBe('public, max-age=300');
  const failing = httpApi({ originVerify: NO_EDGE, corsAllowedOrigins: [], cacheControl: 'public, max-age=300' }).handler(async () => {
    throw new Error('boom with a secret sk_live_123');
  });
  const answer = await run(failing);
  expect(answer.status).toBe(500);
  expect(answer.headers['Cache-Control']).toBe('no-store');
  expect(answer.body).toEqual({ error: 'internal_error', message: expect.any(String) });
  expect(JSON.stringify(answer)).not.toContain('sk_live_123');
});

it('maps errors onto the closed set and counts them; the latency metric only where asked for', async () => {
  const refusing = httpApi({ originVerify: NO_EDGE, corsAllowedOrigins: [], latencyMetric: 'VerifyLatency' }).handler(async () => {
    throw new InvalidRequest();
  });
  const answer = await run(refusing);
  expect(answer).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
  const names = emf().flatMap((l) => (l._aws as { CloudWatchMetrics: { Metrics: { Name: string }[] }[] }).CloudWatchMetrics.flatMap((d) => d.Metrics.map((m) => m.Name)));
  expect(names).toEqual(['ClientError']);

  out.length = 0;
  const ok = httpApi({ originVerify: NO_EDGE, corsAllowedOrigins: [], latencyMetric: 'VerifyLatency' }).handler(async () => ({ statusCode: 200, body: '{}' }));
  await run(ok);
  expect(emf().flatMap((l) => Object.keys(l))).toContain('VerifyLatency');
});

it('answers CORS for a listed origin only', async () => {
  const handler = httpApi({ originVerify: NO_EDGE, corsAllowedOrigins: ['https://shop.example'] }).handler(async () => ({ statusCode: 200, body: '{}' }));
  expect((await run(handler, { origin: 'https://shop.example' })).headers['Access-Control-Allow-Origin']).toBe('https://shop.example');
  expect(Object.keys((await run(handler, { origin: 'https://evil.example' })).headers).filter((h) => h.startsWith('Access-Control'))).toEqual([]);
});

it('the log keys one invocation adds do not leak into the next invocation\'s lines', async () => {
  const handler = httpApi({ originVerify: NO_EDGE, corsAllowedOrigins: [] }).handler(async (event) => {
    if (event.headers['x-first'] === '1') logger.appendKeys({ phoneMasked: '+91******3210' });
    logger.info('handled');
    return { statusCode: 200, body: '{}' };
  });
  await run(handler, { 'x-first': '1' });
  await run(handler);
  const handled = out.filter((l) => l.includes('"handled"')).map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(handled).toHaveLength(2);
  expect(handled[0]).toMatchObject({ phoneMasked: '+91******3210' });
  expect(handled[1]).not.toHaveProperty('phoneMasked');
});

it('an error is logged once, as the structured line, never dumped raw through console.error', async () => {
  const consoleError = jest.spyOn(console, 'error').mockImplementation(() => undefined);
  try {
    // A fresh load, as at a cold start: http-error-handler takes its default logger (console.error) when loaded.
    let freshHttpApi!: typeof httpApi;
    jest.isolateModules(() => {
      ({ httpApi: freshHttpApi } = require('../../middleware/http-api') as typeof import('../../middleware/http-api'));
    });
    const failing = freshHttpApi({ originVerify: NO_EDGE, corsAllowedOrigins: [] }).handler(async () => {
      throw new Error('boom');
    });
    expect((await run(failing)).status).toBe(500);
    expect(consoleError).not.toHaveBeenCalled();
    expect(out.filter((l) => l.includes('"request failed"'))).toHaveLength(1);
  } finally {
    consoleError.mockRestore();
  }
});
