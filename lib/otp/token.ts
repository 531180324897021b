import { createPrivateKey, sign, type JsonWebKey, type KeyObject } from 'node:crypto';
import type { JWK } from 'jose';

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

/**
 * Signing uses node:crypto directly, not jose's SignJWT: jose signs through WebCrypto, which hops to libuv's
 * thread pool and back, and that hop was the whole tail of a right-code verify (one signature measured alone:
 * p50 0.24 ms, p99 1.3-1.5 ms through jose; p50 0.04 ms, p99 0.11-0.16 ms with a synchronous sign on a KeyObject).
 * The token is a plain compact JWS (RFC 7515) with an IEEE P1363 (r‖s) signature, as ES256 requires; every
 * test verifies it with jose, and the examples with jose and PyJWT. The key object is built once per secret
 * value (the parsed secret lives as long as the secrets cache entry), never per token.
 */
const keyObjects = new WeakMap<TokenKeySet, { key: KeyObject; header: string }>();

const signerOf = (set: TokenKeySet): { key: KeyObject; header: string } => {
  let signer = keyObjects.get(set);
  if (!signer) {
    // Throws for a point that is not on the curve; nothing is cached then, so the next call fails the same way.
    const key = createPrivateKey({ key: set.privateJwk as JsonWebKey, format: 'jwk' });
    signer = { key, header: base64url({ alg: 'ES256', typ: 'JWT', kid: set.kid }) };
    keyObjects.set(set, signer);
  }
  return signer;
};

const base64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

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
  const { key, header } = signerOf(set);
  const payload = base64url({ iss: claims.issuer, aud: claims.audience, sub: claims.phone, jti: claims.otpRequestId, iat: claims.nowSeconds, exp });
  const input = `${header}.${payload}`;
  const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
  const token = `${input}.${signature}`;
  return { token, expiresAt: exp };
};
