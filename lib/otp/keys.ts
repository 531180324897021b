import { createHmac, hkdfSync } from 'node:crypto';

/**
 * Everything keyed by the hash key (HASH_SECRET_ID, API.md "Keys"): keyed hashes of codes, numbers and IPs,
 * sealed otpRequestIds, codes kept encrypted for idempotent retries. It never leaves the service, and it
 * signs nothing: tokens have their own key pair (lib/otp/token.ts), so holding a token's verification key
 * gives nothing here. One secret, a separate HKDF sub-key per purpose, so a value computed for one purpose
 * is useless for another.
 */
export interface Keys {
  /** HMAC key for phone numbers and other identifiers that end up in DynamoDB keys. */
  readonly subject: Buffer;
  /** HMAC key for codes. */
  readonly code: Buffer;
  /** AES-256-GCM key for otpRequestIds. */
  readonly id: Buffer;
  /** AES-256-GCM key for a code kept in an idempotency record, so a retry can re-deliver it. */
  readonly retryCode: Buffer;
}

/** The variable that names the secret, for messages a person acts on. The value itself is never shown. */
export const HASH_KEY_VARIABLE = 'HASH_SECRET_ID';
export const MIN_HASH_KEY_BYTES = 32;

export class HashKeyError extends Error {
  override name = 'HashKeyError';
}

/**
 * The hash key's bytes, or a HashKeyError saying what is wrong (never the value): at least 32 bytes in base64
 * (standard or URL-safe alphabet, padding optional), and bytes that look random: a pass phrase written in
 * base64 decodes to printable text, and a repeated character to a handful of distinct bytes. Each check fails
 * for a truly random 32-byte key with a probability below 1e-13.
 */
export const decodeHashKey = (value: unknown): Buffer => {
  const advice = `${HASH_KEY_VARIABLE} must hold at least ${MIN_HASH_KEY_BYTES} random bytes in base64 (44+ characters; \`openssl rand -base64 32\`)`;
  if (typeof value !== 'string' || value.trim() === '') throw new HashKeyError(`${advice}: the secret is empty or not a string`);
  // A trailing newline (a secret put from a file or `echo`) is not part of the key.
  const text = value.trim();
  // Node decodes leniently (it skips stray characters): the value is base64 when it round-trips. Compared in
  // the URL-safe alphabet without padding, so that either alphabet, with or without padding, is accepted.
  const spelled = text.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  const bytes = Buffer.from(spelled, 'base64url');
  if (bytes.toString('base64url') !== spelled) throw new HashKeyError(`${advice}: the secret is not base64`);
  if (bytes.length < MIN_HASH_KEY_BYTES) throw new HashKeyError(`${advice}: the secret decodes to ${bytes.length} bytes`);
  if (bytes.every((b) => b >= 0x20 && b <= 0x7e) || new Set(bytes).size < 16) {
    throw new HashKeyError(`${advice}: the secret decodes to text or repeated bytes, not random bytes`);
  }
  return bytes;
};

const derive = (root: Buffer, info: string): Buffer => Buffer.from(hkdfSync('sha256', root, Buffer.alloc(0), `otp-service/${info}/v1`, 32));

// A warm container sees one hash key (two around a rotation): derive once per secret value.
let cached: { secret: string; keys: Keys } | undefined;

/** The sub-keys of a hash key (the base64 string from the secret). Throws HashKeyError for a weak or malformed one. */
export const keysFor = (hashKey: string): Keys => {
  if (cached?.secret === hashKey) return cached.keys;
  const root = decodeHashKey(hashKey);
  const keys: Keys = {
    subject: derive(root, 'subject'),
    code: derive(root, 'code'),
    id: derive(root, 'id'),
    retryCode: derive(root, 'retry-code'),
  };
  cached = { secret: hashKey, keys };
  return keys;
};

/** A stable pseudonym for an identifier (phone number, IP, …) in a given namespace. */
export const pseudonym = (keys: Keys, namespace: string, value: string): string =>
  createHmac('sha256', keys.subject).update(`${namespace}\0${value}`).digest('base64url');
