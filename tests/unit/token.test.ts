import { SignJWT, base64url } from 'jose';
import { InvalidOtpToken, signOtpToken, verifyOtpToken } from '../../lib/otp/token';

const KEY = 'a-signing-key-of-enough-length-123';
const now = Math.floor(Date.now() / 1000);
const make = () => signOtpToken(KEY, { phone: '+919876543210', otpRequestId: 'req_1', nowSeconds: now, ttlSeconds: 600 });

describe('verifyOtpToken (for checkout backends)', () => {
  it('returns the claims of a good token', async () => {
    const { token, expiresAt } = await make();
    await expect(verifyOtpToken(token, KEY)).resolves.toEqual({ sub: '+919876543210', jti: 'req_1', iat: now, exp: expiresAt, iss: 'otp-service' });
    expect(expiresAt).toBe(now + 600);
  });

  it('accepts the key as bytes too', async () => {
    const { token } = await make();
    await expect(verifyOtpToken(token, new TextEncoder().encode(KEY))).resolves.toMatchObject({ jti: 'req_1' });
  });

  it('refuses a tampered payload', async () => {
    const { token } = await make();
    const [h, , s] = token.split('.');
    const forged = base64url.encode(JSON.stringify({ sub: '+919999999999', jti: 'req_1', iat: now, exp: now + 600, iss: 'otp-service' }));
    await expect(verifyOtpToken(`${h}.${forged}.${s}`, KEY)).rejects.toEqual(expect.objectContaining({ reason: 'invalid' }));
  });

  it('refuses a token signed with another key', async () => {
    const { token } = await make();
    await expect(verifyOtpToken(token, 'another-key-of-enough-length-456')).rejects.toBeInstanceOf(InvalidOtpToken);
  });

  it('refuses an expired token, saying so', async () => {
    const { token } = await signOtpToken(KEY, { phone: '+919876543210', otpRequestId: 'r', nowSeconds: now - 1000, ttlSeconds: 600 });
    await expect(verifyOtpToken(token, KEY)).rejects.toEqual(expect.objectContaining({ reason: 'expired' }));
  });

  it('refuses alg: none', async () => {
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }));
    const payload = base64url.encode(JSON.stringify({ sub: '+919876543210', jti: 'x', iat: now, exp: now + 600, iss: 'otp-service' }));
    await expect(verifyOtpToken(`${header}.${payload}.`, KEY)).rejects.toEqual(expect.objectContaining({ reason: 'invalid' }));
  });

  it('refuses another HMAC algorithm and another issuer', async () => {
    const key = new TextEncoder().encode(KEY);
    const hs512 = await new SignJWT({}).setProtectedHeader({ alg: 'HS512' }).setSubject('+919876543210').setJti('x').setIssuedAt(now).setExpirationTime(now + 60).setIssuer('otp-service').sign(key);
    await expect(verifyOtpToken(hs512, KEY)).rejects.toBeInstanceOf(InvalidOtpToken);
    const foreign = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('+919876543210').setJti('x').setIssuedAt(now).setExpirationTime(now + 60).setIssuer('someone-else').sign(key);
    await expect(verifyOtpToken(foreign, KEY)).rejects.toBeInstanceOf(InvalidOtpToken);
  });

  it('refuses garbage', async () => {
    for (const t of ['', 'a.b.c', 'not-a-token']) await expect(verifyOtpToken(t, KEY)).rejects.toBeInstanceOf(InvalidOtpToken);
  });
});
