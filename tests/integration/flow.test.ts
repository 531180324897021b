import { decodeJwt } from 'jose';
import { jwksFromDocument, verifyOtpToken } from '../../lib/otp/token-verifier';
import { startStack, type Stack } from '../support/stack';

const PHONE = '+919876543210';
let stack: Stack;

beforeEach(async () => {
  stack = await startStack({ SEND_COOLDOWN_SECONDS: '0' });
});
afterEach(async () => {
  await stack.close();
});

describe('send then verify, through the real handlers, dynalite and the sandbox provider', () => {
  it('sends one SMS, verifies the code and returns a token whose claims match', async () => {
    const { otpRequestId, code, answer } = await stack.sendAndRead(PHONE);
    expect(answer.status).toBe(201);
    expect(answer.headers['content-type']).toBe('application/json');
    expect(answer.body).toEqual({ otpRequestId: expect.stringMatching(/^[A-Za-z0-9_-]{1,128}$/), expiresAt: expect.any(String), resendAfterSeconds: 0 });
    const expiresIn = Date.parse(String(answer.body.expiresAt)) - Date.now();
    expect(expiresIn).toBeGreaterThan(290_000);
    expect(expiresIn).toBeLessThanOrEqual(300_000);
    expect(stack.sandbox.calls).toHaveLength(1);
    expect(code).toMatch(/^\d{6}$/);

    const verified = await stack.verify({ otpRequestId, otp: code });
    expect(verified.status).toBe(200);
    expect(verified.body).toEqual({ verified: true, token: expect.any(String), tokenExpiresAt: expect.any(String) });
    const claims = decodeJwt(String(verified.body.token));
    expect(claims).toMatchObject({ sub: PHONE, jti: otpRequestId, iss: 'otp-service', aud: 'checkout' });
    expect(claims.exp! - claims.iat!).toBe(600);
    expect(new Date(claims.exp! * 1000).toISOString()).toBe(verified.body.tokenExpiresAt);
    // What a checkout backend does: only the published JWKS, no secret.
    const jwks = jwksFromDocument((await stack.jwks()).body as { keys: unknown[] });
    await expect(verifyOtpToken(String(verified.body.token), jwks, { issuer: 'otp-service', audience: 'checkout' })).resolves.toMatchObject({ sub: PHONE });
  });

  it('a wrong code says how many attempts remain and does not burn the right one', async () => {
    const { otpRequestId, code } = await stack.sendAndRead(PHONE);
    const wrong = code === '000000' ? '111111' : '000000';
    const first = await stack.verify({ otpRequestId, otp: wrong });
    expect(first.status).toBe(400);
    expect(first.body).toEqual({ error: 'invalid_code', message: expect.any(String), attemptsRemaining: 2 });
    expect((await stack.verify({ otpRequestId, otp: code })).status).toBe(200);
  });

  it('the third wrong code kills the code: too_many_attempts, then the right code is refused', async () => {
    const { otpRequestId, code } = await stack.sendAndRead(PHONE);
    const wrong = code === '000000' ? '111111' : '000000';
    expect((await stack.verify({ otpRequestId, otp: wrong })).body.attemptsRemaining).toBe(2);
    expect((await stack.verify({ otpRequestId, otp: wrong })).body.attemptsRemaining).toBe(1);
    const third = await stack.verify({ otpRequestId, otp: wrong });
    expect(third.status).toBe(429);
    expect(third.body.error).toBe('too_many_attempts');
    const right = await stack.verify({ otpRequestId, otp: code });
    expect(right.status).toBe(429);
    expect(right.body.error).toBe('too_many_attempts');
  });

  it('a code verifies once: reuse is otp_expired', async () => {
    const { otpRequestId, code } = await stack.sendAndRead(PHONE);
    expect((await stack.verify({ otpRequestId, otp: code })).status).toBe(200);
    const again = await stack.verify({ otpRequestId, otp: code });
    expect(again.status).toBe(410);
    expect(again.body.error).toBe('otp_expired');
  });

  it('a new send supersedes the previous code', async () => {
    const older = await stack.sendAndRead(PHONE);
    const newer = await stack.sendAndRead(PHONE);
    expect(newer.otpRequestId).not.toBe(older.otpRequestId);
    const stale = await stack.verify({ otpRequestId: older.otpRequestId, otp: older.code });
    expect(stale.status).toBe(410);
    expect(stale.body.error).toBe('otp_expired');
    expect((await stack.verify({ otpRequestId: newer.otpRequestId, otp: newer.code })).status).toBe(200);
  });

  it('an unknown but well-formed id answers exactly like an expired one', async () => {
    const { otpRequestId } = await stack.sendAndRead(PHONE);
    const tampered = otpRequestId.slice(0, -2) + (otpRequestId.endsWith('AA') ? 'BB' : 'AA');
    const unknown = await stack.verify({ otpRequestId: tampered, otp: '123456' });
    const made_up = await stack.verify({ otpRequestId: 'abc', otp: '123456' });
    expect(unknown).toEqual(made_up);
    expect(unknown.status).toBe(410);
    expect(unknown.body.error).toBe('otp_expired');
  });
});

describe('expiry', () => {
  it('a code past OTP_TTL_SECONDS is otp_expired, even with the right digits', async () => {
    stack.coldStart({ OTP_TTL_SECONDS: '1' });
    const { otpRequestId, code } = await stack.sendAndRead(PHONE);
    await new Promise((r) => setTimeout(r, 1100));
    const late = await stack.verify({ otpRequestId, otp: code });
    expect(late.status).toBe(410);
    expect(late.body.error).toBe('otp_expired');
  });
});

describe('a refused send leaves no trace', () => {
  it('a send refused by the cooldown does not supersede the code the person already has', async () => {
    stack.coldStart({ SEND_COOLDOWN_SECONDS: '60' });
    const { otpRequestId, code } = await stack.sendAndRead(PHONE);
    const refused = await stack.send({ phoneNumber: PHONE });
    expect(refused.status).toBe(429);
    expect(stack.sandbox.calls.filter((c) => c.delivered)).toHaveLength(1);
    expect((await stack.verify({ otpRequestId, otp: code })).status).toBe(200);
  });

  it('a send the provider refused (400) restores the previous code and gives the limits back', async () => {
    stack.coldStart({ SEND_COOLDOWN_SECONDS: '60' });
    const first = await stack.sendAndRead(PHONE);
    stack.coldStart({ SEND_COOLDOWN_SECONDS: '0', SEND_LIMIT_PER_PHONE_PER_HOUR: '2' });
    stack.sandbox.failNext({ status: 400, body: '{"message":"bad"}' });
    const failed = await stack.send({ phoneNumber: PHONE });
    expect(failed.status).toBe(502);
    expect((await stack.verify({ otpRequestId: first.otpRequestId, otp: first.code })).status).toBe(200);
    // The hour cap of 2 counted only the first send: one more fits, then no more.
    expect((await stack.send({ phoneNumber: PHONE })).status).toBe(201);
    expect((await stack.send({ phoneNumber: PHONE })).status).toBe(429);
  });
});
