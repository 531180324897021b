/**
 * GET /.well-known/jwks.json through the real handler and the Secrets Manager stand-in, and the token key's
 * rotation as docs/keys.md runs it (stage, promote, drop), seen from a checkout backend that has only the JWKS.
 */
import { decodeProtectedHeader } from 'jose';
import { promoteTokenKey, pruneTokenKey, stageTokenKey } from '../../local/keys';
import { jwksFromDocument, verifyOtpToken } from '../../lib/otp/token-verifier';
import { SECRET_IDS, startStack, type Stack } from '../support/stack';

const PHONE = '+919876543210';
const TOKEN = { issuer: 'otp-service', audience: 'checkout' };
let stack: Stack;
let n = 0;
const phone = () => `+9198765${String(40000 + (n++ % 60000)).padStart(5, '0')}`;

beforeEach(async () => {
  stack = await startStack({ SEND_COOLDOWN_SECONDS: '0' });
});
afterEach(async () => {
  await stack.close();
});

/** A token from the real flow. */
const tokenFromFlow = async (number = phone()): Promise<string> => {
  const { otpRequestId, code } = await stack.sendAndRead(number);
  const verified = await stack.verify({ otpRequestId, otp: code });
  expect(verified.status).toBe(200);
  return String(verified.body.token);
};
/** What a backend sees: the JWKS as served right now. */
const backendKeys = async () => {
  const answer = await stack.jwks();
  expect(answer.status).toBe(200);
  return jwksFromDocument(answer.body as { keys: unknown[] });
};
const kids = async () => ((await stack.jwks()).body.keys as { kid: string }[]).map((k) => k.kid);

describe('GET /.well-known/jwks.json', () => {
  it('lists the current public key, cacheable for five minutes, with only public members', async () => {
    const answer = await stack.jwks();
    expect(answer.status).toBe(200);
    expect(answer.headers['cache-control']).toBe('public, max-age=300');
    expect(answer.headers['content-type']).toBe('application/json');
    expect(answer.headers['x-content-type-options']).toBe('nosniff');
    const { x, y, kid } = stack.tokenKey.current;
    expect(answer.body).toEqual({ keys: [{ kty: 'EC', crv: 'P-256', x, y, kid, alg: 'ES256', use: 'sig' }] });
    expect(JSON.stringify(answer)).not.toContain(stack.tokenKey.current.d);
  });

  it('needs only the token key secret: it answers with the API key and the hash key gone', async () => {
    stack.secrets.remove(SECRET_IDS.apiKey);
    stack.secrets.remove(SECRET_IDS.hashKey);
    stack.coldStart();
    expect((await stack.jwks()).status).toBe(200);
    // ...while the functions that need them cannot work.
    expect((await stack.send({ phoneNumber: PHONE })).status).toBe(503);
  });

  it('Secrets Manager down: 503 service_unavailable, not cacheable', async () => {
    stack.secrets.failAll(true);
    stack.coldStart();
    const answer = await stack.jwks();
    expect(answer.status).toBe(503);
    expect(answer.body).toMatchObject({ error: 'service_unavailable' });
    expect(answer.headers['cache-control']).toBe('no-store');
    stack.secrets.failAll(false);
    expect((await stack.jwks()).status).toBe(200);
  });

  it('a backend with only the JWKS verifies a real token from the flow', async () => {
    const token = await tokenFromFlow(PHONE);
    await expect(verifyOtpToken(token, await backendKeys(), TOKEN)).resolves.toMatchObject({ sub: PHONE, iss: 'otp-service', aud: 'checkout' });
  });
});

describe('token key rotation (docs/keys.md), through the real handlers', () => {
  it('stage → promote → drop: no token is refused while it lives; a token of a dropped key is refused', async () => {
    const first = stack.tokenKey;
    const oldToken = await tokenFromFlow();
    const t0 = Math.floor(Date.now() / 1000);
    const timing = { nowSeconds: t0, keepSeconds: 900 };

    // 1. Stage: published at once (after the cache, here a cold start), nothing signs with it yet.
    const staged = await stageTokenKey(first);
    stack.setTokenKey(staged);
    stack.coldStart();
    expect(await kids()).toEqual([first.current.kid, staged.next!.kid]);
    const keysAtStage = await backendKeys(); // a backend that fetched the JWKS now and caches it
    const stillOld = await tokenFromFlow();
    expect(decodeProtectedHeader(stillOld).kid).toBe(first.current.kid);

    // 2. Promote: new tokens carry the new kid; the backend's cached JWKS from step 1 already verifies them.
    const promoted = promoteTokenKey(staged, timing);
    stack.setTokenKey(promoted);
    stack.coldStart();
    const newToken = await tokenFromFlow();
    expect(decodeProtectedHeader(newToken).kid).toBe(staged.next!.kid);
    await expect(verifyOtpToken(newToken, keysAtStage, TOKEN)).resolves.toBeDefined();
    expect(await kids()).toEqual([staged.next!.kid, first.current.kid]);
    // The token signed by the previous key verifies as long as the key is listed.
    await expect(verifyOtpToken(oldToken, await backendKeys(), TOKEN)).resolves.toBeDefined();

    // 3. Drop, once every token of the old key has expired.
    stack.setTokenKey(pruneTokenKey(promoted, { ...timing, nowSeconds: t0 + 901 }));
    stack.coldStart();
    expect(await kids()).toEqual([staged.next!.kid]);
    await expect(verifyOtpToken(oldToken, await backendKeys(), TOKEN)).rejects.toMatchObject({ name: 'InvalidOtpToken' });
    await expect(verifyOtpToken(newToken, await backendKeys(), TOKEN)).resolves.toBeDefined();
  });

  it('rotating the token key leaves pending codes and counters alone', async () => {
    const number = phone();
    const { otpRequestId, code } = await stack.sendAndRead(number);
    stack.setTokenKey(promoteTokenKey(await stageTokenKey(stack.tokenKey), { nowSeconds: Math.floor(Date.now() / 1000), keepSeconds: 900 }));
    stack.coldStart();
    const verified = await stack.verify({ otpRequestId, otp: code });
    expect(verified.status).toBe(200);
    expect(decodeProtectedHeader(String(verified.body.token)).kid).toBe(stack.tokenKey.current.kid);
  });
});
