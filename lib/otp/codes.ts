import { createCipheriv, createDecipheriv, createHmac, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import type { Keys } from './keys';

/** A code of `length` digits, always fresh from the CSPRNG: nothing a client sends can predict it. */
export const generateCode = (length: number): string => String(randomInt(0, 10 ** length)).padStart(length, '0');

/** Only this keyed hash of a code is stored; bound to the code's id so equal codes hash differently. */
export const hashCode = (keys: Keys, codeId: string, code: string): string =>
  createHmac('sha256', keys.code).update(`${codeId}\0${code}`).digest('base64url');

export const codeMatches = (keys: Keys, codeId: string, code: string, storedHash: string): boolean => {
  const a = Buffer.from(hashCode(keys, codeId, code));
  const b = Buffer.from(storedHash);
  return a.length === b.length && timingSafeEqual(a, b);
};

/**
 * A code kept for an idempotent retry: base64url(nonce ‖ AES-256-GCM(code) ‖ tag) under the
 * service-only `retryCode` key, bound (AAD) to the record it lives in, so a sealed code copied
 * into another record does not open.
 */
const NONCE = 12;
const TAG = 16;
const aad = (boundTo: string) => Buffer.from(`retry-code/v1\0${boundTo}`);

export const sealCode = (keys: Keys, code: string, boundTo: string): string => {
  const nonce = randomBytes(NONCE);
  const cipher = createCipheriv('aes-256-gcm', keys.retryCode, nonce).setAAD(aad(boundTo));
  // A string is encrypted as its UTF-8 bytes.
  return Buffer.concat([nonce, cipher.update(code), cipher.final(), cipher.getAuthTag()]).toString('base64url');
};

export const openCode = (keys: Keys, sealed: string, boundTo: string): string | undefined => {
  const raw = Buffer.from(sealed, 'base64url');
  try {
    // authTagLength: a value too short to hold a whole tag throws instead of checking a truncated one.
    // Stryker disable next-line ObjectLiteral: equivalent in any test: below 16 bytes the "tag" is cut from the nonce itself, so a truncated tag that checks is a 2^-32 search per key, and the tag of anything longer is whole anyway.
    const decipher = createDecipheriv('aes-256-gcm', keys.retryCode, raw.subarray(0, NONCE), { authTagLength: TAG }).setAAD(aad(boundTo));
    decipher.setAuthTag(raw.subarray(raw.length - TAG));
    return Buffer.concat([decipher.update(raw.subarray(NONCE, raw.length - TAG)), decipher.final()]).toString('utf8');
  } catch {
    // Not sealed by us for this record (another record, key or a tampered value): nothing to re-deliver.
  }
  return undefined;
};
