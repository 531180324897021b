/**
 * Gaps a mutation run left in lib/otp/keys.ts and the code hash of lib/otp/codes.ts (docs/mutation.md), stated as what an operator and a deploy see:
 * - each way a hash key is refused says which rule it broke (the operator fixes the secret from that
 *   message), and each rule refuses exactly what it names: a key at each rule's edge is accepted;
 * - the sub-keys are a fixed function of the hash key: a deploy that derived them differently would make
 *   every stored record, sealed id and kept code unreadable. The expected values below were computed apart
 *   from this code, with Python's `cryptography` (HKDF-SHA256, empty salt, info `otp-service/<purpose>/v1`;
 *   HMAC-SHA256 for the pseudonym);
 * - a warm container derives once per secret value, and a rotation back and forth gives each key's own
 *   sub-keys.
 *
 * Every test loads lib/otp/keys.ts inside itself (jest.isolateModules), as a cold start does: its helpers are
 * module-level, and Stryker's per-test coverage tries a module-level mutant only with tests that load the
 * module themselves.
 */
import { randomBytes } from 'node:crypto';
import type * as KeysModule from '../../lib/otp/keys';

const fresh = (): typeof KeysModule => {
  let mod!: typeof KeysModule;
  jest.isolateModules(() => {
    mod = require('../../lib/otp/keys') as typeof KeysModule;
  });
  return mod;
};

/** Random bytes of which at least 16 differ and not all are printable: what a real key looks like. */
const randomKey = (length = 32): Buffer => {
  for (;;) {
    const bytes = randomBytes(length);
    if (new Set(bytes).size >= 16 && !bytes.every((b) => b >= 0x20 && b <= 0x7e)) return bytes;
  }
};

const refusal = (value: unknown): string => {
  const { decodeHashKey, HashKeyError } = fresh();
  try {
    decodeHashKey(value);
  } catch (e) {
    expect(e).toBeInstanceOf(HashKeyError);
    expect((e as Error).name).toBe('HashKeyError');
    expect((e as Error).message).toMatch(/^HASH_SECRET_ID must hold at least 32 random bytes in base64 \(44\+ characters; `openssl rand -base64 32`\): /);
    return (e as Error).message.replace(/^[^:]*: /, '');
  }
  throw new Error('accepted');
};

describe('a refused hash key says which rule it broke', () => {
  it.each([
    ['empty', ''],
    ['only white space', ' \n\t'],
    ['not a string', 42],
    ['missing', undefined],
  ])('%s: "the secret is empty or not a string"', (_, value) => {
    expect(refusal(value)).toBe('the secret is empty or not a string');
  });

  it.each([
    ['a stray character', (k: string) => `${k.slice(0, 20)}*${k.slice(21)}`],
    ['a space inside', (k: string) => `${k.slice(0, 20)} ${k.slice(20)}`],
    ['padding in the middle', (k: string) => `${k.slice(0, 20)}=${k.slice(20)}`],
    ['one character too many for base64', (k: string) => `${k}A`],
  ])('%s: "the secret is not base64"', (_, spoil) => {
    // 33 bytes: 44 characters, no padding.
    expect(refusal(spoil(randomKey(33).toString('base64')))).toBe('the secret is not base64');
  });

  it('too short: says how many bytes it decodes to', () => {
    expect(refusal(randomKey(31).toString('base64'))).toBe('the secret decodes to 31 bytes');
    expect(refusal(randomKey(16).toString('base64url'))).toBe('the secret decodes to 16 bytes');
  });

  it.each([
    ['printable text, from the space to the tilde', Buffer.from(` ~${'CheckoutOtp2026!pass-phrase-in-b64'}`)],
    ['15 distinct bytes', Buffer.from(Array.from({ length: 45 }, (_, i) => 0x80 + (i % 15)))],
  ])('%s: "not random bytes"', (_, bytes) => {
    expect(refusal(bytes.toString('base64'))).toBe('the secret decodes to text or repeated bytes, not random bytes');
  });
});

describe('each rule refuses only what it names', () => {
  const accepted = (value: string): Buffer => fresh().decodeHashKey(value);

  it('either alphabet, with or without padding, gives the same bytes', () => {
    // fb ef ff is "++//" in the standard alphabet and "--__" in the URL-safe one.
    const bytes = Buffer.concat([Buffer.from('fbefff', 'hex'), randomKey(32)]);
    const std = bytes.toString('base64');
    expect(std.slice(0, 4)).toBe('++//');
    expect(bytes.toString('base64url').slice(0, 4)).toBe('--__');
    for (const value of [std, std.replace(/=+$/, ''), bytes.toString('base64url'), `${std}\n`, ` ${std} `]) {
      expect(accepted(value).equals(bytes)).toBe(true);
    }
  });

  it('two padding characters are padding too', () => {
    const bytes = randomKey(34);
    expect(bytes.toString('base64')).toMatch(/[^=]==$/);
    expect(accepted(bytes.toString('base64')).equals(bytes)).toBe(true);
  });

  it('32 bytes are enough', () => {
    const bytes = randomKey(32);
    expect(accepted(bytes.toString('base64')).equals(bytes)).toBe(true);
  });

  it('16 distinct bytes are enough', () => {
    const bytes = Buffer.from(Array.from({ length: 48 }, (_, i) => 0x80 + (i % 16)));
    expect(accepted(bytes.toString('base64')).equals(bytes)).toBe(true);
  });

  it('bytes are text only when every one is printable: one below the space or one above the tilde is not text', () => {
    const text = Buffer.from('CheckoutOtp2026!pass-phrase-in-base64');
    for (const odd of [0x1f, 0x7f, 0x00, 0xff]) {
      const bytes = Buffer.concat([text, Buffer.from([odd])]);
      expect(accepted(bytes.toString('base64')).equals(bytes)).toBe(true);
    }
  });
});

describe('sub-keys', () => {
  const ROOT = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8='; // bytes 0..31: not text, 32 distinct

  it('are a fixed function of the hash key (computed apart, with Python)', () => {
    const { keysFor, pseudonym } = fresh();
    const keys = keysFor(ROOT);
    expect(keys.subject.toString('hex')).toBe('0a90c416f3423c78f729046c1ff682ec8be92038c722847c64a857162e1c7474');
    expect(keys.code.toString('hex')).toBe('f5d213ff434d0d3a9095ca7796636d0b0bc99401a88ee26f66c0561cdd19754e');
    expect(keys.id.toString('hex')).toBe('c9197510e9e998524478cea9c7c9e7459361a8d101ef64ee640cefaba8be686e');
    expect(keys.retryCode.toString('hex')).toBe('58c1c9a244354899b72bc5fe3c0220fced824d74fdd9c0a90faf8540fc42e04c');
    expect(pseudonym(keys, 'phone', '+919811100005')).toBe('Lvfj5h6jcQTFR8QIVlkezUC1BXZ37tca-VfFN4MoVlo');
    // What the store holds of a code: its keyed hash, bound to the code's id, in base64url.
    let hashCode!: typeof import('../../lib/otp/codes').hashCode;
    jest.isolateModules(() => {
      ({ hashCode } = require('../../lib/otp/codes') as typeof import('../../lib/otp/codes'));
    });
    expect(hashCode(keys, 'AAECAwQFBgcICQoL', '123456')).toBe('_yBjMvSMGhBmtQ5lp3lpt8-T4RvFJOLjasocP5z-P6Q');
  });

  it('a warm container derives once per secret value; a rotation back and forth gives each key its own sub-keys', () => {
    const { keysFor } = fresh();
    const other = randomKey(32).toString('base64');
    const first = keysFor(ROOT);
    expect(keysFor(ROOT)).toBe(first);
    const second = keysFor(other);
    expect(second.id.equals(first.id)).toBe(false);
    expect(keysFor(ROOT).id.equals(first.id)).toBe(true);
    expect(keysFor(other).id.equals(second.id)).toBe(true);
  });

  it('a refused key is refused again, not served from the cache', () => {
    const { keysFor } = fresh();
    keysFor(ROOT);
    expect(() => keysFor('short')).toThrow(/HASH_SECRET_ID/);
    expect(() => keysFor('short')).toThrow(/HASH_SECRET_ID/);
  });
});
