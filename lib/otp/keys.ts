import { createHmac, hkdfSync, webcrypto } from 'node:crypto';

/**
 * Everything keyed by the signing secret (SIGNING_SECRET_ID). One secret, separate
 * sub-keys per purpose (HKDF), so a value computed for one purpose is useless for another.
 * Tokens are signed with the secret itself, so a checkout backend that holds the
 * same secret verifies them without knowing about the sub-keys.
 */
export interface Keys {
  /** HMAC key for phone numbers and other identifiers that end up in DynamoDB keys. */
  readonly subject: Buffer;
  /** HMAC key for codes. */
  readonly code: Buffer;
  /** AES-256-GCM key for otpRequestIds. */
  readonly id: Buffer;
  /** AES-256-GCM key for codes kept in idempotency records, so a retry can re-deliver the first code. */
  readonly retryCode: Buffer;
  /** HS256 key for tokens, imported once: signing with raw bytes re-imports the key every time (~30× slower). */
  readonly token: Promise<webcrypto.CryptoKey>;
}

const derive = (secret: Buffer, info: string): Buffer =>
  Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), `otp-service/${info}/v1`, 32));

// A warm container sees one secret (two around a rotation): derive once per secret value.
let cached: { secret: string; keys: Keys } | undefined;

export const keysFor = (signingSecret: string): Keys => {
  if (cached?.secret === signingSecret) return cached.keys;
  if (typeof signingSecret !== 'string' || signingSecret.length < 16) {
    throw new Error('signing secret is missing or shorter than 16 characters');
  }
  const raw = Buffer.from(signingSecret, 'utf8');
  const keys: Keys = {
    subject: derive(raw, 'subject'),
    code: derive(raw, 'code'),
    id: derive(raw, 'id'),
    retryCode: derive(raw, 'retry-code'),
    token: webcrypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']),
  };
  cached = { secret: signingSecret, keys };
  return keys;
};

/** A stable pseudonym for an identifier (phone number, IP, …) in a given namespace. */
export const pseudonym = (keys: Keys, namespace: string, value: string): string =>
  createHmac('sha256', keys.subject).update(`${namespace}\0${value}`).digest('base64url');
