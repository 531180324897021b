/**
 * middleware/secrets.ts at the SDK seam (aws-sdk-client-mock): prefetch at build time, cache, expiry,
 * a failed fetch not cached, and every failure as 503 service_unavailable.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { clearCache } from '@middy/util';
import type { Request } from '@middy/core';
import { mockClient } from 'aws-sdk-client-mock';
import { newHashKey, newTokenKeySecret, type TokenKeySecret } from '../../local/keys';
import { secretsMiddleware, type SecretsOptions } from '../../middleware/secrets';

const sm = mockClient(SecretsManagerClient);
const HASH = newHashKey();
let TOKEN_KEY: TokenKeySecret;
beforeAll(async () => {
  TOKEN_KEY = await newTokenKeySecret();
});
/** Answers GetSecretValue for these ids; any other id is ResourceNotFound. */
const serve = (ids: Record<string, string>): void => {
  sm.on(GetSecretValueCommand).rejects(Object.assign(new Error('not found'), { name: 'ResourceNotFoundException' }));
  for (const [SecretId, SecretString] of Object.entries(ids)) sm.on(GetSecretValueCommand, { SecretId }).resolves({ SecretString });
};
const settle = () => new Promise((resolve) => setImmediate(resolve));
const request = (): Request => ({ event: {}, context: {} as never, response: undefined, error: undefined, internal: {} }) as unknown as Request;
const SEND: SecretsOptions['secrets'] = { apiKey: 'sm/api-key', hashKey: 'otp/hash-key' };
const build = (cacheSeconds = 300, secrets = SEND) => secretsMiddleware({ secrets, cacheSeconds });
const calls = () => sm.commandCalls(GetSecretValueCommand).length;

beforeEach(() => {
  sm.reset();
  clearCache();
  jest.useRealTimers();
});

it('prefetches both secrets when built and puts them on the context, with no further fetch when warm', async () => {
  serve({ 'sm/api-key': 'key-1', 'otp/hash-key': HASH });
  const mw = build();
  await settle();
  expect(calls()).toBe(2);
  for (let i = 0; i < 5; i++) {
    const r = request();
    await mw.before!(r);
    expect(r.context).toMatchObject({ apiKey: 'key-1', hashKey: HASH });
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
  serve({ 'sm/api-key': 'key-1', 'otp/hash-key': HASH });
  const r = request();
  await mw.before!(r);
  expect(r.context).toMatchObject({ apiKey: 'key-1', hashKey: HASH });
  await new Promise((resolve) => setImmediate(resolve));
  process.off('unhandledRejection', unhandled);
  expect(unhandled).not.toHaveBeenCalled();
});

it('a missing secret or an empty API key is 503', async () => {
  serve({ 'sm/api-key': 'key-1' });
  await expect(build().before!(request())).rejects.toMatchObject({ code: 'service_unavailable' });
  clearCache();
  sm.reset();
  serve({ 'sm/api-key': '', 'otp/hash-key': HASH });
  await expect(build().before!(request())).rejects.toMatchObject({ code: 'service_unavailable', cause: expect.objectContaining({ message: expect.stringContaining('API_KEY_SECRET_ID') }) });
});

it.each([
  ['too short', Buffer.alloc(31, 7).toString('base64')],
  ['a pass phrase', 'CheckoutOtp2026!'],
  ['a long pass phrase in base64', Buffer.from('CheckoutOtp2026!CheckoutOtp2026!CheckoutOtp').toString('base64')],
  ['one repeated character', 'A'.repeat(44)],
  ['not base64', `${HASH.slice(0, 40)}*${HASH.slice(41)}`],
  ['empty', ''],
])('a hash key that is %s is 503, logged as naming HASH_SECRET_ID and never the value', async (_, value) => {
  serve({ 'sm/api-key': 'key-1', 'otp/hash-key': value });
  const error = await build().before!(request()).then(() => undefined, (e: unknown) => e as { code: string; cause: Error });
  expect(error).toMatchObject({ code: 'service_unavailable' });
  expect(error!.cause.message).toContain('HASH_SECRET_ID');
  if (value.length > 3) expect(error!.cause.message).not.toContain(value);
});

it('a malformed secret is not cached: fixed, the next invocation fetches it again', async () => {
  serve({ 'sm/api-key': 'key-1', 'otp/hash-key': 'short' });
  const mw = build();
  await expect(mw.before!(request())).rejects.toMatchObject({ code: 'service_unavailable' });
  sm.reset();
  serve({ 'sm/api-key': 'key-1', 'otp/hash-key': HASH });
  const r = request();
  await mw.before!(r);
  expect(r.context).toMatchObject({ hashKey: HASH });
});

it('fetches only the secrets a function names (jwks: the token key alone), parsed', async () => {
  serve({ 'sm/api-key': 'key-1', 'otp/hash-key': HASH, 'otp/token-key': JSON.stringify(TOKEN_KEY) });
  const mw = build(300, { tokenKey: 'otp/token-key' });
  const r = request();
  await mw.before!(r);
  expect(sm.commandCalls(GetSecretValueCommand).map((c) => c.args[0].input.SecretId)).toEqual(['otp/token-key']);
  expect(r.context).toEqual({ tokenKey: TOKEN_KEY });
});

it.each([
  ['not JSON', 'not json'],
  ['without a private current key', () => JSON.stringify({ current: { ...TOKEN_KEY.current, d: undefined }, previous: [] })],
  ['with an RSA key', () => JSON.stringify({ current: { ...TOKEN_KEY.current, kty: 'RSA' }, previous: [] })],
  ['without a kid', () => JSON.stringify({ current: { ...TOKEN_KEY.current, kid: undefined }, previous: [] })],
  ['with previous not a list', () => JSON.stringify({ current: TOKEN_KEY.current, previous: {} })],
  ['with two keys under one kid', () => JSON.stringify({ current: TOKEN_KEY.current, previous: [TOKEN_KEY.current] })],
])('a token key secret %s is 503 naming TOKEN_KEY_SECRET_ID', async (_, value) => {
  serve({ 'otp/token-key': typeof value === 'string' ? value : value() });
  const error = await build(300, { tokenKey: 'otp/token-key' }).before!(request()).then(() => undefined, (e: unknown) => e as { cause: Error });
  expect(error).toMatchObject({ code: 'service_unavailable' });
  expect(error!.cause.message).toContain('TOKEN_KEY_SECRET_ID');
  expect(error!.cause.message).not.toContain(TOKEN_KEY.current.d);
});

it('refuses unknown options and unknown secret names when built', () => {
  expect(() => secretsMiddleware({ secrets: SEND, cacheSeconds: 1, extra: 1 } as never)).toThrow(/unknown option "extra"/);
  expect(() => secretsMiddleware({ secrets: { rootKey: 'otp/root-key' } as never, cacheSeconds: 1 })).toThrow(/unknown secret "rootKey"/);
  expect(() => secretsMiddleware({ secrets: {}, cacheSeconds: 1 })).toThrow(/at least one/);
});

it('picks up a rotated secret once the cache has expired, not before', async () => {
  serve({ 'sm/api-key': 'key-1', 'otp/hash-key': HASH });
  const t0 = Date.now();
  const now = jest.spyOn(Date, 'now').mockReturnValue(t0);
  const mw = build(60);
  await settle();
  sm.reset();
  serve({ 'sm/api-key': 'key-2', 'otp/hash-key': HASH });
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
