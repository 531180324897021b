/**
 * middleware/origin-verify.ts in the handlers' error pipeline (http-error-handler + errors mapping), with the
 * secret served at the SDK seam: the edge header is required when a secret id is configured, a request
 * without it is 403 `forbidden` before the handler, and CloudFront-Viewer-Address becomes the source IP.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import middy from '@middy/core';
import httpErrorHandler from '@middy/http-error-handler';
import { clearCache } from '@middy/util';
import { mockClient } from 'aws-sdk-client-mock';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2, Context } from 'aws-lambda';
import { errorsMiddleware } from '../../middleware/errors';
import { originVerifyMiddleware, viewerIp } from '../../middleware/origin-verify';
import { apiEvent, context } from '../support/stack';

const sm = mockClient(SecretsManagerClient);
const SECRET = 'edge-3c9f1a7e5b2d4c8a9f0e';
const settle = () => new Promise((resolve) => setImmediate(resolve));

const pipeline = (secretId: string | undefined) => {
  const handler = jest.fn(async (event: APIGatewayProxyEventV2) => ({
    statusCode: 200,
    body: JSON.stringify({ ip: event.requestContext.http.sourceIp, headers: Object.keys(event.headers) }),
  }));
  const fn = middy<APIGatewayProxyEventV2, APIGatewayProxyResultV2, Error, Context>()
    .use(httpErrorHandler({ logger: false }))
    .use(errorsMiddleware())
    .use(originVerifyMiddleware({ secretId, cacheSeconds: 300 }))
    .handler(handler);
  const call = async (headers: Record<string, string>) => {
    const r = (await fn(apiEvent('/auth/send-otp', {}, { headers, sourceIp: '130.176.1.1' }), context())) as { statusCode: number; body: string };
    return { status: r.statusCode, body: JSON.parse(r.body) as Record<string, unknown> };
  };
  return { call, handler };
};

beforeEach(() => {
  sm.reset();
  clearCache();
  sm.on(GetSecretValueCommand, { SecretId: 'otp/origin-verify' }).resolves({ SecretString: SECRET });
});

it('does nothing without a secret id (the plain HTTP API): no fetch, the source IP untouched', async () => {
  const { call } = pipeline(undefined);
  expect(await call({ 'cloudfront-viewer-address': '198.51.100.10:46532' })).toEqual({ status: 200, body: { ip: '130.176.1.1', headers: expect.any(Array) } });
  expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(0);
});

it.each([
  ['no header', {}],
  ['a wrong header', { 'x-origin-verify': 'edge-wrong-value-000000' }],
  ['a prefix of the secret', { 'x-origin-verify': SECRET.slice(0, -1) }],
])('refuses a request with %s: 403 forbidden, stable body, the handler never runs', async (_, headers) => {
  const { call, handler } = pipeline('otp/origin-verify');
  await settle();
  expect(await call({ 'cloudfront-viewer-address': '198.51.100.10:46532', ...headers })).toEqual({
    status: 403,
    body: { error: 'forbidden', message: "This endpoint is only served through the service's public address." },
  });
  expect(handler).not.toHaveBeenCalled();
});

it('lets the edge through: the viewer address becomes the source IP, the secret header is dropped', async () => {
  const { call } = pipeline('otp/origin-verify');
  await settle();
  const ok = await call({ 'x-origin-verify': SECRET, 'cloudfront-viewer-address': '198.51.100.10:46532' });
  expect(ok.status).toBe(200);
  expect(ok.body.ip).toBe('198.51.100.10');
  expect(ok.body.headers).not.toContain('x-origin-verify');
  expect((await call({ 'x-origin-verify': SECRET, 'cloudfront-viewer-address': '2001:db8::8a2e:370:7334:443' })).body.ip).toBe('2001:db8::8a2e:370:7334');
  // Fetched once (at init), not per request.
  expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(1);
});

it('answers 503 service_unavailable when the secret cannot be read (fails closed, no 403 guess)', async () => {
  sm.reset();
  sm.on(GetSecretValueCommand).rejects(Object.assign(new Error('down'), { name: 'InternalServiceError' }));
  const { call, handler } = pipeline('otp/origin-verify');
  await settle();
  expect(await call({ 'x-origin-verify': SECRET })).toMatchObject({ status: 503, body: { error: 'service_unavailable' } });
  expect(handler).not.toHaveBeenCalled();
});

it('reads CloudFront-Viewer-Address in its IPv4, IPv6 and bracketed forms, and nothing else', () => {
  expect(viewerIp('198.51.100.10:46532')).toBe('198.51.100.10');
  expect(viewerIp('2001:db8::1:8080')).toBe('2001:db8::1');
  expect(viewerIp('[2001:db8::1]:8080')).toBe('2001:db8::1');
  for (const bad of [undefined, '', 'not-an-ip:1', '198.51.100.10', '999.1.1.1:80']) expect(viewerIp(bad)).toBeUndefined();
});
