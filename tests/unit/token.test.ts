/**
 * lib/otp/token.ts (signing with the token key) against lib/otp/token-verifier.ts (what a checkout backend runs,
 * with only the published JWKS): every way a token must be refused, and rotation through `previous`.
 */
import { createPublicKey } from 'node:crypto';
import { SignJWT, base64url, decodeProtectedHeader, importJWK } from 'jose';
import { newTokenKeySecret, promoteTokenKey, pruneTokenKey, publicJwk, stageTokenKey, type TokenKeySecret } from '../../local/keys';
import { parseTokenKey, signOtpToken } from '../../lib/otp/token';
import { InvalidOtpToken, jwksFromDocument, verifyOtpToken, type KeySource } from '../../lib/otp/token-verifier';

const ISSUER = 'otp-service';
const AUDIENCE = 'checkout';
const PHONE = '+919876543210';
const now = Math.floor(Date.now() / 1000);
const expect_ = { issuer: ISSUER, audience: AUDIENCE };

let secret: TokenKeySecret;
let jwks: KeySource;
beforeAll(async () => {
  secret = await newTokenKeySecret();
  jwks = jwksFromDocument(parseTokenKey(secret).jwks);
});

const make = (overrides: Partial<Parameters<typeof signOtpToken>[1]> = {}, key: unknown = secret) =>
  signOtpToken(key, { phone: PHONE, otpRequestId: 'req_1', nowSeconds: now, ttlSeconds: 600, issuer: ISSUER, audience: AUDIENCE, ...overrides });

const refused = async (token: string, keys = jwks, options = expect_, reason: 'invalid' | 'expired' = 'invalid') =>
  expect(verifyOtpToken(token, keys, options)).rejects.toEqual(expect.objectContaining({ name: 'InvalidOtpToken', reason }));

/** A token with the given header and claims, signed by our current key (so only what we changed is wrong). */
const signedWith = async (header: Record<string, unknown>, claims: Record<string, unknown>) =>
  new SignJWT(claims).setProtectedHeader({ alg: 'ES256', ...header }).sign(await importJWK(secret.current, 'ES256'));
const goodClaims = () => ({ iss: ISSUER, aud: AUDIENCE, sub: PHONE, jti: 'req_1', iat: now, exp: now + 600 });

describe('the token', () => {
  it('is ES256 with typ JWT and the current kid, carrying iss, aud, sub, jti, iat, exp', async () => {
    const { token, expiresAt } = await make();
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'ES256', typ: 'JWT', kid: secret.current.kid });
    await expect(verifyOtpToken(token, jwks, expect_)).resolves.toEqual({ iss: ISSUER, aud: AUDIENCE, sub: PHONE, jti: 'req_1', iat: now, exp: now + 600 });
    expect(expiresAt).toBe(now + 600);
  });

  it('imports the private key once per secret value, not per token', async () => {
    // The module object token.ts calls into (an `import * as` namespace would be a copy).
    const spy = jest.spyOn(jest.requireActual<typeof import('node:crypto')>('node:crypto'), 'createPrivateKey');
    const fresh = await newTokenKeySecret();
    for (let i = 0; i < 5; i++) await make({}, fresh);
    expect(spy).toHaveBeenCalledTimes(1);
    spy.mockRestore();
  });
});

describe('verifyOtpToken refuses', () => {
  it('a tampered payload', async () => {
    const { token } = await make();
    const [h, , s] = token.split('.');
    const forged = base64url.encode(JSON.stringify({ ...goodClaims(), sub: '+919999999999' }));
    await refused(`${h}.${forged}.${s}`);
  });

  it('a tampered signature', async () => {
    const { token } = await make();
    const last = token.at(-2) === 'A' ? 'B' : 'A';
    await refused(`${token.slice(0, -2)}${last}${token.at(-1)}`);
  });

  it('an expired token, saying so', async () => {
    const { token } = await make({ nowSeconds: now - 1000 });
    await refused(token, jwks, expect_, 'expired');
  });

  it('a token issued longer ago than the maximum age, whatever its exp', async () => {
    const { token } = await make({ nowSeconds: now - 700, ttlSeconds: 3600 });
    await refused(token, jwks, expect_, 'expired');
    await expect(verifyOtpToken(token, jwks, { ...expect_, maxTokenAgeSeconds: 800 })).resolves.toMatchObject({ sub: PHONE });
  });

  it('a token signed by another key under the same kid', async () => {
    const other = await newTokenKeySecret();
    const { token } = await make({}, { current: { ...other.current, kid: secret.current.kid }, previous: [] });
    await refused(token);
  });

  it('a token whose kid is not in the key set', async () => {
    const other = await newTokenKeySecret();
    const { token } = await make({}, other);
    await refused(token);
  });

  it('alg: none', async () => {
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT', kid: secret.current.kid }));
    await refused(`${header}.${base64url.encode(JSON.stringify(goodClaims()))}.`);
  });

  it('HS256 signed with the public key as the HMAC secret (algorithm confusion)', async () => {
    const pub = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: secret.current.x!, y: secret.current.y! }, format: 'jwk' });
    const pem = pub.export({ type: 'spki', format: 'pem' });
    const candidates = [Buffer.from(pem), Buffer.from(JSON.stringify(parseTokenKey(secret).jwks.keys[0])), pub.export({ type: 'spki', format: 'der' })];
    for (const hmacKey of candidates) {
      const forged = await new SignJWT(goodClaims()).setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: secret.current.kid }).sign(new Uint8Array(hmacKey));
      await refused(forged);
    }
  });

  it('another audience and another issuer', async () => {
    await refused((await make({ audience: 'another-shop' })).token);
    await refused((await make({ issuer: 'someone-else' })).token);
    // ...and a verifier configured for another audience refuses ours.
    await refused((await make()).token, jwks, { ...expect_, audience: 'another-shop' });
  });

  it('a token without typ JWT, or without one of the required claims', async () => {
    await refused(await signedWith({ typ: 'at+jwt', kid: secret.current.kid }, goodClaims()));
    for (const claim of ['sub', 'jti', 'iat', 'exp', 'aud', 'iss'] as const) {
      const claims: Record<string, unknown> = goodClaims();
      delete claims[claim];
      await refused(await signedWith({ typ: 'JWT', kid: secret.current.kid }, claims));
    }
  });

  it('garbage', async () => {
    for (const t of ['', 'a.b.c', 'not-a-token', '..']) await expect(verifyOtpToken(t, jwks, expect_)).rejects.toBeInstanceOf(InvalidOtpToken);
  });
});

describe('rotation (docs/keys.md: stage, promote, drop)', () => {
  const keep = 900; // TOKEN_TTL_SECONDS + SECRETS_CACHE_SECONDS, the defaults
  const kids = (secret: unknown) => parseTokenKey(secret).jwks.keys.map((k) => k.kid);

  it('a staged key is published before it signs; a token signed by a previous key verifies until that key is dropped', async () => {
    const first = await newTokenKeySecret();
    const old = (await make({}, first)).token;

    // Step 1: stage. The JWKS gains the next key; tokens still carry the current kid.
    const staged = await stageTokenKey(first);
    expect(kids(staged)).toEqual([first.current.kid, staged.next!.kid]);
    expect(decodeProtectedHeader((await make({}, staged)).token).kid).toBe(first.current.kid);
    await expect(stageTokenKey(staged)).rejects.toThrow(/already staged/);

    // Step 2: promote. New tokens carry the new kid; a backend that fetched the JWKS at step 1 verifies them.
    const promoted = promoteTokenKey(staged, { nowSeconds: now, keepSeconds: keep });
    expect(promoted.current.kid).toBe(staged.next!.kid);
    expect(promoted.next).toBeUndefined();
    expect(kids(promoted)).toEqual([staged.next!.kid, first.current.kid]);
    expect(promoted.previous[0]).toEqual({ ...publicJwk(first.current), retiredAt: now });
    const fresh = (await make({}, promoted)).token;
    expect(decodeProtectedHeader(fresh).kid).toBe(promoted.current.kid);
    await expect(verifyOtpToken(fresh, jwksFromDocument(parseTokenKey(staged).jwks), expect_)).resolves.toMatchObject({ sub: PHONE });
    // ...and the old token still verifies against the new JWKS.
    await expect(verifyOtpToken(old, jwksFromDocument(parseTokenKey(promoted).jwks), expect_)).resolves.toMatchObject({ sub: PHONE });

    // Step 3: drop. Kept while a token it signed may live, gone after.
    expect(kids(pruneTokenKey(promoted, { nowSeconds: now + keep, keepSeconds: keep }))).toContain(first.current.kid);
    const dropped = pruneTokenKey(promoted, { nowSeconds: now + keep + 1, keepSeconds: keep });
    expect(kids(dropped)).toEqual([promoted.current.kid]);
    await refused(old, jwksFromDocument(parseTokenKey(dropped).jwks));
    // The next rotation prunes too.
    const again = promoteTokenKey(await stageTokenKey(promoted), { nowSeconds: now + keep + 1, keepSeconds: keep });
    expect(kids(again)).toEqual([again.current.kid, promoted.current.kid]);
  });

  it('promote needs a staged key', async () => {
    expect(() => promoteTokenKey(secret, { nowSeconds: now, keepSeconds: keep })).toThrow(/stage one first/);
  });

  it('the published set never carries a private member, even when previous holds one by mistake', async () => {
    const withPrivate = { current: secret.current, next: (await newTokenKeySecret()).current, previous: [(await newTokenKeySecret()).current] };
    const keys = parseTokenKey(withPrivate).jwks.keys;
    expect(keys).toHaveLength(3);
    for (const key of keys) expect(Object.keys(key).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
  });
});

describe('verifyOtpToken, what a backend can tune and read', () => {
  it('the error says which: an expired token and an invalid one read differently', async () => {
    const { token } = await make({ nowSeconds: now - 1000 });
    await expect(verifyOtpToken(token, jwks, expect_)).rejects.toThrow(/^OTP token has expired$/);
    await expect(verifyOtpToken('a.b.c', jwks, expect_)).rejects.toThrow(/^OTP token is not valid$/);
  });

  it('allows 5 s of clock skew by default, and what the backend asks for', async () => {
    // exp is 3 s ago: within the default tolerance.
    const { token: justExpired } = await make({ nowSeconds: now - 603, ttlSeconds: 600 });
    await expect(verifyOtpToken(justExpired, jwks, expect_)).resolves.toMatchObject({ sub: PHONE });
    // exp 8 s ago: outside the default, inside a tolerance of 10 s.
    const { token: later } = await make({ nowSeconds: now - 608, ttlSeconds: 600 });
    await refused(later, jwks, expect_, 'expired');
    await expect(verifyOtpToken(later, jwks, { ...expect_, clockToleranceSeconds: 10 })).resolves.toMatchObject({ sub: PHONE });
  });

  it('judges at the time given as currentDate', async () => {
    const { token } = await make();
    await expect(verifyOtpToken(token, jwks, { ...expect_, currentDate: new Date((now + 60) * 1000) })).resolves.toMatchObject({ sub: PHONE });
    await expect(verifyOtpToken(token, jwks, { ...expect_, currentDate: new Date((now + 700) * 1000) })).rejects.toMatchObject({ reason: 'expired' });
  });
});
