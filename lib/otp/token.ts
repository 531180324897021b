import { SignJWT, importJWK, type JWK } from 'jose';

/**
 * The proof a checkout backend receives (API.md, "verify-otp"): a compact JWS, ES256, signed with the private
 * half of the token key (TOKEN_KEY_SECRET_ID). Backends verify it against the public keys at
 * GET /.well-known/jwks.json (handlers/jwks.ts) and hold no secret; the key here signs tokens and nothing else.
 *
 * The secret is JSON: `{ "current": <private EC P-256 JWK with kid>, "previous": [<public JWKs>] }`, plus, during
 * a rotation, `"next"`: the coming key, published before anything signs with it, so that every verifier already
 * has it when the first token under it arrives. `previous` keeps retired public keys published while tokens they
 * signed may still be alive. docs/keys.md has the runbook.
 */
export const TOKEN_KEY_VARIABLE = 'TOKEN_KEY_SECRET_ID';

export class TokenKeyError extends Error {
  override name = 'TokenKeyError';
}

/** A public JWK as published: exactly these members, never a private one. */
export interface PublicJwk {
  kty: 'EC';
  crv: 'P-256';
  x: string;
  y: string;
  kid: string;
  alg: 'ES256';
  use: 'sig';
}

export interface TokenKeySet {
  /** The current key's id, written into every token's header. */
  kid: string;
  /** The current private JWK (for signing only; never logged or returned). */
  privateJwk: JWK;
  /** The JWKS document: the current public key first, then the next one (if staged), then the previous ones. */
  jwks: { keys: PublicJwk[] };
}

// A P-256 coordinate or private scalar: 32 bytes, base64url without padding.
const COORDINATE = /^[A-Za-z0-9_-]{43}$/;
const KID = /^[\x21-\x7e]{1,128}$/;

const publicOf = (jwk: unknown, where: string): PublicJwk => {
  const fail = (why: string): never => {
    throw new TokenKeyError(`${TOKEN_KEY_VARIABLE} must hold {"current": <private EC P-256 JWK with kid>, "previous": [<public JWKs>]}: ${where} ${why}`);
  };
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) return fail('is not a JWK object');
  const k = jwk as Record<string, unknown>;
  if (k.kty !== 'EC' || k.crv !== 'P-256') fail('is not an EC P-256 key');
  if (typeof k.x !== 'string' || !COORDINATE.test(k.x) || typeof k.y !== 'string' || !COORDINATE.test(k.y)) fail('has no valid x and y');
  if (typeof k.kid !== 'string' || !KID.test(k.kid)) fail('has no kid (1 to 128 printable characters)');
  if (k.alg !== undefined && k.alg !== 'ES256') fail('has an alg other than ES256');
  if (k.use !== undefined && k.use !== 'sig') fail('has a use other than sig');
  return { kty: 'EC', crv: 'P-256', x: k.x as string, y: k.y as string, kid: k.kid as string, alg: 'ES256', use: 'sig' };
};

const parsed = new WeakMap<object, TokenKeySet>();

/**
 * Checks the token key secret (as @middy/secrets-manager hands it over: parsed JSON) and returns what signing
 * and publishing need. Cached per secret value (the parsed object lives as long as the secrets cache entry).
 * Throws TokenKeyError naming the variable and the member at fault, never a key's value.
 */
export const parseTokenKey = (secret: unknown): TokenKeySet => {
  if (typeof secret !== 'object' || secret === null || Array.isArray(secret)) {
    throw new TokenKeyError(`${TOKEN_KEY_VARIABLE} must hold JSON {"current": <private EC P-256 JWK with kid>, "previous": [<public JWKs>]}`);
  }
  const hit = parsed.get(secret);
  if (hit) return hit;
  const s = secret as { current?: unknown; next?: unknown; previous?: unknown };
  const current = publicOf(s.current, '"current"');
  const d = (s.current as { d?: unknown }).d;
  if (typeof d !== 'string' || !COORDINATE.test(d)) {
    throw new TokenKeyError(`${TOKEN_KEY_VARIABLE}: "current" must be a private key (with "d")`);
  }
  if (s.previous !== undefined && !Array.isArray(s.previous)) throw new TokenKeyError(`${TOKEN_KEY_VARIABLE}: "previous" must be a list of public JWKs`);
  const previous = ((s.previous ?? []) as unknown[]).map((k, i) => publicOf(k, `"previous"[${i}]`));
  const next = s.next === undefined ? [] : [publicOf(s.next, '"next"')];
  const keys = [current, ...next, ...previous];
  const kids = new Set(keys.map((k) => k.kid));
  if (kids.size !== keys.length) throw new TokenKeyError(`${TOKEN_KEY_VARIABLE}: every key needs its own kid (a verifier picks the key by kid)`);
  const set: TokenKeySet = { kid: current.kid, privateJwk: { kty: 'EC', crv: 'P-256', x: current.x, y: current.y, d }, jwks: { keys } };
  parsed.set(secret, set);
  return set;
};

type PrivateKey = Awaited<ReturnType<typeof importJWK>>;
// Importing a JWK costs far more than a signature: once per secret value, not per call.
const imported = new WeakMap<TokenKeySet, Promise<PrivateKey>>();

const privateKeyOf = (set: TokenKeySet): Promise<PrivateKey> => {
  let key = imported.get(set);
  if (!key) {
    key = importJWK(set.privateJwk, 'ES256');
    // A failed import (a point not on the curve) is not cached: the next call tries again and fails the same way.
    key.catch(() => imported.delete(set));
    imported.set(set, key);
  }
  return key;
};

export interface TokenClaimsInput {
  phone: string;
  otpRequestId: string;
  nowSeconds: number;
  ttlSeconds: number;
  issuer: string;
  audience: string;
}

export const signOtpToken = async (tokenKey: unknown, claims: TokenClaimsInput): Promise<{ token: string; expiresAt: number }> => {
  const set = parseTokenKey(tokenKey);
  const exp = claims.nowSeconds + claims.ttlSeconds;
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: set.kid })
    .setIssuer(claims.issuer)
    .setAudience(claims.audience)
    .setSubject(claims.phone)
    .setJti(claims.otpRequestId)
    .setIssuedAt(claims.nowSeconds)
    .setExpirationTime(exp)
    .sign(await privateKeyOf(set));
  return { token, expiresAt: exp };
};
