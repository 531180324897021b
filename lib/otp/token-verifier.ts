import { createLocalJWKSet, createRemoteJWKSet, errors as joseErrors, jwtVerify, type JSONWebKeySet } from 'jose';

/**
 * For checkout backends written in TypeScript (examples/ has the same in plain JavaScript and Python): checks a
 * token against the service's published public keys. Nothing here is secret.
 *
 * Accepted only: alg ES256 (so `alg: none` and HS256 signed with a public key as an HMAC secret are refused),
 * header typ JWT, a kid found in the key set, the expected iss and aud, sub/jti/iat/exp present, exp not
 * passed and iat no older than `maxTokenAgeSeconds`.
 *
 *   const jwks = jwksFromUrl('https://otp.example/.well-known/jwks.json'); // once per process: it caches keys
 *   const { sub } = await verifyOtpToken(req.body.otpToken, jwks, { issuer: 'otp-service', audience: 'checkout' });
 */
export interface OtpTokenClaims {
  iss: string;
  aud: string;
  sub: string;
  jti: string;
  iat: number;
  exp: number;
}

export type KeySource = ReturnType<typeof createLocalJWKSet> | ReturnType<typeof createRemoteJWKSet>;

export class InvalidOtpToken extends Error {
  override name = 'InvalidOtpToken';
  /** 'expired' | 'invalid': enough for a backend to choose its answer. */
  readonly reason: 'expired' | 'invalid';
  constructor(reason: 'expired' | 'invalid') {
    super(reason === 'expired' ? 'OTP token has expired' : 'OTP token is not valid');
    this.reason = reason;
  }
}

/** Keys fetched from the service's JWKS URL, cached, refetched (rate-limited) when an unknown kid appears. */
export const jwksFromUrl = (url: string | URL): KeySource => createRemoteJWKSet(new URL(url));
/** Keys given as a JWKS document (tests, or a backend that ships the keys itself). */
export const jwksFromDocument = (doc: { keys: unknown[] }): KeySource => createLocalJWKSet(doc as JSONWebKeySet);

export interface VerifyTokenOptions {
  issuer: string;
  audience: string;
  /** Refuse tokens issued longer ago than this, whatever their exp says. Default 600 (TOKEN_TTL_SECONDS's default). */
  maxTokenAgeSeconds?: number;
  clockToleranceSeconds?: number;
  currentDate?: Date;
}

export const verifyOtpToken = async (token: string, keys: KeySource, options: VerifyTokenOptions): Promise<OtpTokenClaims> => {
  try {
    const { payload } = await jwtVerify(token, keys, {
      algorithms: ['ES256'],
      typ: 'JWT',
      issuer: options.issuer,
      audience: options.audience,
      maxTokenAge: options.maxTokenAgeSeconds ?? 600,
      clockTolerance: options.clockToleranceSeconds ?? 5,
      requiredClaims: ['iss', 'aud', 'sub', 'jti', 'iat', 'exp'],
      ...(options.currentDate ? { currentDate: options.currentDate } : {}),
    });
    return payload as unknown as OtpTokenClaims;
  } catch (error) {
    throw new InvalidOtpToken(error instanceof joseErrors.JWTExpired ? 'expired' : 'invalid');
  }
};
