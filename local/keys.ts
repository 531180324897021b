/**
 * New key material in the shapes API.md "Keys" asks for: used by `npm start` (fresh keys at every start),
 * the tests, and `npm run keys:*` (scripts/keys.ts, the rotation runbook in docs/keys.md).
 */
import { randomBytes } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';

/** 32 random bytes, base64 (44 characters): the hash key (HASH_SECRET_ID). */
export const newHashKey = (): string => randomBytes(32).toString('base64');

export interface TokenKeySecret {
  current: JWK & { kid: string; d: string };
  previous: (JWK & { kid: string })[];
}

/** A private EC P-256 JWK whose kid is its RFC 7638 thumbprint (unique per key, nothing to invent). */
export const newTokenJwk = async (): Promise<TokenKeySecret['current']> => {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, d: jwk.d!, kid, alg: 'ES256', use: 'sig' };
};

/** The public half of a JWK: what `previous` and the JWKS hold. */
export const publicJwk = (jwk: JWK & { kid: string }): JWK & { kid: string } => {
  const { kty, crv, x, y, kid } = jwk;
  return { kty, crv, x, y, kid, alg: 'ES256', use: 'sig' };
};

/** The token key secret (TOKEN_KEY_SECRET_ID): a fresh current key, and the given previous public keys. */
export const newTokenKeySecret = async (previous: (JWK & { kid: string })[] = []): Promise<TokenKeySecret> => ({
  current: await newTokenJwk(),
  previous: previous.map(publicJwk),
});

/**
 * The rotation step of docs/keys.md: a new current key; the old current key's public half goes first in
 * `previous`; previous keys whose tokens are all expired (retired more than `dropAfterSeconds` ago) go away.
 * `retiredAt` (epoch seconds) is kept on each previous key so the next rotation can tell.
 */
export const rotateTokenKeySecret = async (
  secret: TokenKeySecret,
  opts: { nowSeconds: number; dropAfterSeconds: number },
): Promise<TokenKeySecret> => {
  const stillLive = secret.previous.filter((k) => {
    const retiredAt = (k as { retiredAt?: unknown }).retiredAt;
    return typeof retiredAt !== 'number' || opts.nowSeconds - retiredAt <= opts.dropAfterSeconds;
  });
  return {
    current: await newTokenJwk(),
    previous: [{ ...publicJwk(secret.current), retiredAt: opts.nowSeconds } as JWK & { kid: string }, ...stillLive],
  };
};
