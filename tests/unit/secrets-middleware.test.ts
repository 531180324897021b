/**
 * middleware/secrets.ts at the SDK seam (aws-sdk-client-mock): prefetch at build time, cache, expiry,
 * a failed fetch not cached, and every failure as 503 service_unavailable.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { clearCache } from '@middy/util';
import type { Request } from '@middy/core';
import { mockClient } from 'aws-sdk-client-mock';
import { secretsMiddleware } from '../../middleware/secrets';

const sm = mockClient(SecretsManagerClient);
const SIGNING = 's'.repeat(32);
/** Answers GetSecretValue for these ids; any other id is ResourceNotFound. */
const serve = (ids: Record<string, string>): void => {
  sm.on(GetSecretValueCommand).rejects(Object.assign(new Error('not found'), { name: 'ResourceNotFoundException' }));
  for (const [SecretId, SecretString] of Object.entries(ids)) sm.on(GetSecretValueCommand, { SecretId }).resolves({ SecretString });
};
const settle = () => new Promise((resolve) => setImmediate(resolve));
const request = (): Request => ({ event: {}, context: {} as never, response: undefined, error: undefined, internal: {} }) as unknown as Request;
const build = (cacheSeconds = 300) => secretsMiddleware({ apiKeySecretId: 'sm/api-key', signingSecretId: 'otp/signing-key', cacheSeconds });
const calls = () => sm.commandCalls(GetSecretValueCommand).length;

beforeEach(() => {
  sm.reset();
  clearCache();
  jest.useRealTimers();
});

it('prefetches both secrets when built and puts them on the context, with no further fetch when warm', async () => {
  serve({ 'sm/api-key': 'key-1', 'otp/signing-key': SIGNING });
  const mw = build();
  await settle();
  expect(calls()).toBe(2);
  for (let i = 0; i < 5; i++) {
    const r = request();
    await mw.before!(r);
    expect(r.context).toMatchObject({ apiKey: 'key-1', signingKey: SIGNING });
  }
  expect(calls()).toBe(2);
});

it('a failed prefetch is no unhandled rejection, answers 503, is not cached, and the next call recovers', async () => {
  const unhandled = jest.fn();
  process.on('unhandledRejection', unhandled);
  sm.on(GetSecretValueCommand).rejects(Object.assign(new Error('down'), { name: 'InternalServiceError' }));
  const mw = build();
  // As in Lambda: init ends, the prefetch fails while no invocation is waiting for it.
  await settle();
  await settle();
  await expect(mw.before!(request())).rejects.toMatchObject({ statusCode: 503, code: 'service_unavailable', reason: 'secrets' });
  sm.reset();
  serve({ 'sm/api-key': 'key-1', 'otp/signing-key': SIGNING });
  const r = request();
  await mw.before!(r);
  expect(r.context).toMatchObject({ apiKey: 'key-1', signingKey: SIGNING });
  await new Promise((resolve) => setImmediate(resolve));
  process.off('unhandledRejection', unhandled);
  expect(unhandled).not.toHaveBeenCalled();
});

it('a missing secret, an empty one or a signing key too short to be a key is 503', async () => {
  serve({ 'sm/api-key': 'key-1' });
  await expect(build().before!(request())).rejects.toMatchObject({ code: 'service_unavailable' });
  clearCache();
  sm.reset();
  serve({ 'sm/api-key': 'key-1', 'otp/signing-key': 'short' });
  await expect(build().before!(request())).rejects.toMatchObject({ code: 'service_unavailable' });
  clearCache();
  sm.reset();
  serve({ 'sm/api-key': '', 'otp/signing-key': SIGNING });
  await expect(build().before!(request())).rejects.toMatchObject({ code: 'service_unavailable' });
});

it('picks up a rotated secret once the cache has expired, not before', async () => {
  serve({ 'sm/api-key': 'key-1', 'otp/signing-key': SIGNING });
  const t0 = Date.now();
  const now = jest.spyOn(Date, 'now').mockReturnValue(t0);
  const mw = build(60);
  await settle();
  sm.reset();
  serve({ 'sm/api-key': 'key-2', 'otp/signing-key': SIGNING });
  now.mockReturnValue(t0 + 59_000);
  const before = request();
  await mw.before!(before);
  expect(before.context).toMatchObject({ apiKey: 'key-1' });
  now.mockReturnValue(t0 + 61_000);
  const after = request();
  await mw.before!(after);
  expect(after.context).toMatchObject({ apiKey: 'key-2' });
  now.mockRestore();
});
