import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Keys } from './keys';

/**
 * otpRequestId = base64url(nonce ‖ AES-256-GCM(phone) ‖ tag).
 *
 * The id carries the number, sealed, so that the store never holds a number (only
 * HMACs), verify finds the number's record without a lookup table (one DynamoDB
 * round trip), and the token can name the verified number. The nonce doubles as the
 * code's id in the store, which is how a newer send supersedes an older id.
 * A tampered, truncated or foreign id fails to open and is answered like an expired one.
 */
// Stryker disable next-line StringLiteral: equivalent: any constant binds sealing and opening alike.
const AAD = Buffer.from('otp-request-id/v1');
const NONCE = 12;
const TAG = 16;

export interface OpenedId {
  phone: string;
  codeId: string;
}

export const sealRequestId = (keys: Keys, phone: string): { otpRequestId: string; codeId: string } => {
  const nonce = randomBytes(NONCE);
  const cipher = createCipheriv('aes-256-gcm', keys.id, nonce).setAAD(AAD);
  // A string is encrypted as its UTF-8 bytes.
  const sealed = Buffer.concat([nonce, cipher.update(phone), cipher.final(), cipher.getAuthTag()]);
  return { otpRequestId: sealed.toString('base64url'), codeId: nonce.toString('base64url') };
};

export const openRequestId = (keys: Keys, otpRequestId: string): OpenedId | undefined => {
  const raw = Buffer.from(otpRequestId, 'base64url');
  if (raw.toString('base64url') !== otpRequestId) return undefined;
  const nonce = raw.subarray(0, NONCE);
  try {
    // authTagLength: an id too short to hold a whole tag throws instead of checking a truncated one.
    // Stryker disable next-line ObjectLiteral: equivalent in any test: below 16 bytes the "tag" is cut from the nonce itself, so a truncated tag that checks is a 2^-32 search per key, and the tag of anything longer is whole anyway.
    const decipher = createDecipheriv('aes-256-gcm', keys.id, nonce, { authTagLength: TAG }).setAAD(AAD);
    decipher.setAuthTag(raw.subarray(raw.length - TAG));
    const phone = Buffer.concat([decipher.update(raw.subarray(NONCE, raw.length - TAG)), decipher.final()]).toString('utf8');
    return { phone, codeId: nonce.toString('base64url') };
  } catch {
    // Not sealed by us (forged or tampered): unknown.
  }
  return undefined;
};
