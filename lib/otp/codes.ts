import { createHmac, randomInt, timingSafeEqual } from 'node:crypto';
import type { Keys } from './keys';

/**
 * A code of `length` digits. Random (CSPRNG) unless `seed` is given: a send that
 * carries an Idempotency-Key derives its code from the key, so a retry after an
 * uncertain provider answer (timeout) re-sends the same code under the same
 * provider idempotency key and whatever reached the phone still verifies.
 */
export const generateCode = (length: number, keys?: Keys, seed?: string): string => {
  if (seed === undefined || keys === undefined) {
    return String(randomInt(0, 10 ** length)).padStart(length, '0');
  }
  const digest = createHmac('sha256', keys.code).update(`seed\0${seed}`).digest();
  // 64 bits mod 10^8: bias below 1e-11.
  return (digest.readBigUInt64BE(0) % 10n ** BigInt(length)).toString().padStart(length, '0');
};

/** Only this keyed hash of a code is stored; bound to the code's id so equal codes hash differently. */
export const hashCode = (keys: Keys, codeId: string, code: string): string =>
  createHmac('sha256', keys.code).update(`${codeId}\0${code}`).digest('base64url');

export const codeMatches = (keys: Keys, codeId: string, code: string, storedHash: string): boolean => {
  const a = Buffer.from(hashCode(keys, codeId, code));
  const b = Buffer.from(storedHash);
  return a.length === b.length && timingSafeEqual(a, b);
};
