import type { webcrypto } from 'node:crypto';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';

/**
 * The proof a checkout backend receives: a compact JWS, HS256, keyed with the
 * signing secret (SIGNING_SECRET_ID) as UTF-8 bytes.
 * Claims: sub (the verified E.164 number), jti (the otpRequestId), iat, exp, iss.
 */
export const TOKEN_ISSUER = 'otp-service';

export interface OtpTokenClaims {
  sub: string;
  jti: string;
  iat: number;
  exp: number;
  iss: string;
}

const keyBytes = (key: string | Uint8Array): Uint8Array => (typeof key === 'string' ? new TextEncoder().encode(key) : key);

export const signOtpToken = async (
  key: string | Uint8Array | webcrypto.CryptoKey | Promise<webcrypto.CryptoKey>,
  claims: { phone: string; otpRequestId: string; nowSeconds: number; ttlSeconds: number },
): Promise<{ token: string; expiresAt: number }> => {
  const exp = claims.nowSeconds + claims.ttlSeconds;
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.phone)
    .setJti(claims.otpRequestId)
    .setIssuedAt(claims.nowSeconds)
    .setExpirationTime(exp)
    .setIssuer(TOKEN_ISSUER)
    .sign(typeof key === 'string' || key instanceof Uint8Array ? keyBytes(key) : ((await key) as Parameters<SignJWT['sign']>[0]));
  return { token, expiresAt: exp };
};

export class InvalidOtpToken extends Error {
  override name = 'InvalidOtpToken';
  /** 'expired' | 'invalid' — enough for a backend to choose its answer. */
  readonly reason: 'expired' | 'invalid';
  constructor(reason: 'expired' | 'invalid') {
    super(reason === 'expired' ? 'OTP token has expired' : 'OTP token is not valid');
    this.reason = reason;
  }
}

/**
 * For checkout backends: checks signature (HS256 only: `alg: none` and every other
 * algorithm are refused), expiry and issuer, and returns the claims. Throws InvalidOtpToken.
 *
 *   const { sub } = await verifyOtpToken(req.body.otpToken, process.env.OTP_SIGNING_KEY)
 */
export const verifyOtpToken = async (
  token: string,
  key: string | Uint8Array,
  options: { issuer?: string; clockToleranceSeconds?: number; currentDate?: Date } = {},
): Promise<OtpTokenClaims> => {
  try {
    const { payload } = await jwtVerify(token, keyBytes(key), {
      algorithms: ['HS256'],
      issuer: options.issuer ?? TOKEN_ISSUER,
      clockTolerance: options.clockToleranceSeconds ?? 5,
      requiredClaims: ['sub', 'jti', 'iat', 'exp'],
      ...(options.currentDate ? { currentDate: options.currentDate } : {}),
    });
    return payload as unknown as OtpTokenClaims;
  } catch (error) {
    throw new InvalidOtpToken(error instanceof joseErrors.JWTExpired ? 'expired' : 'invalid');
  }
};
