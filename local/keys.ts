/**
 * New key material in the shapes API.md "Keys" asks for, and the token key's rotation steps: used by
 * `npm start` (fresh keys at every start), the tests, and `npm run keys:*` (scripts/keys.ts, the runbook in
 * docs/keys.md). Pure functions of the secret's JSON: reading and writing Secrets Manager is the caller's.
 */
import { randomBytes } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';

/** 32 random bytes, base64 (44 characters): the hash key (HASH_SECRET_ID). */
export const newHashKey = (): string => randomBytes(32).toString('base64');

type Kid = { kid: string };
export type PrivateJwk = JWK & Kid & { d: string };
/** A public JWK as kept in `previous`; `retiredAt` (epoch seconds) says when it stopped signing. */
export type PreviousJwk = JWK & Kid & { retiredAt?: number };

export interface TokenKeySecret {
  current: PrivateJwk;
  /** Staged: published in the JWKS, not yet signing. */
  next?: PrivateJwk;
  previous: PreviousJwk[];
}

/** A private EC P-256 JWK whose kid is its RFC 7638 thumbprint (unique per key, nothing to invent). */
export const newTokenJwk = async (): Promise<PrivateJwk> => {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, d: jwk.d!, kid, alg: 'ES256', use: 'sig' };
};

/** The public half of a JWK: what `previous` and the JWKS hold. */
export const publicJwk = (jwk: JWK & Kid): JWK & Kid => {
  const { kty, crv, x, y, kid } = jwk;
  return { kty, crv, x, y, kid, alg: 'ES256', use: 'sig' };
};

/** A first token key secret: a fresh current key, nothing else. */
export const newTokenKeySecret = async (previous: (JWK & Kid)[] = []): Promise<TokenKeySecret> => ({
  current: await newTokenJwk(),
  previous: previous.map(publicJwk),
});

/**
 * Rotation, step 1: a new key goes into `next`. The JWKS publishes it at once; nothing signs with it yet, so
 * every verifier can hold it before the first token under it exists.
 */
export const stageTokenKey = async (secret: TokenKeySecret): Promise<TokenKeySecret> => {
  if (secret.next) throw new Error('a next key is already staged: promote it first');
  return { ...secret, next: await newTokenJwk() };
};

export interface Timing {
  nowSeconds: number;
  /** How long a retired key stays published: TOKEN_TTL_SECONDS + SECRETS_CACHE_SECONDS (see docs/keys.md). */
  keepSeconds: number;
}

/** Drops previous keys retired more than `keepSeconds` ago: no live token can carry their kid any more. */
export const pruneTokenKey = (secret: TokenKeySecret, t: Timing): TokenKeySecret => ({
  ...secret,
  previous: secret.previous.filter((k) => typeof k.retiredAt !== 'number' || t.nowSeconds - k.retiredAt <= t.keepSeconds),
});

/**
 * Rotation, step 2 (once the staged key has been published long enough): `next` signs from now on; the old
 * current key's public half goes first in `previous`, stamped `retiredAt`; expired previous keys are dropped.
 */
export const promoteTokenKey = (secret: TokenKeySecret, t: Timing): TokenKeySecret => {
  if (!secret.next) throw new Error('no next key is staged: stage one first');
  const pruned = pruneTokenKey(secret, t);
  return { current: secret.next, previous: [{ ...publicJwk(secret.current), retiredAt: t.nowSeconds }, ...pruned.previous] };
};
