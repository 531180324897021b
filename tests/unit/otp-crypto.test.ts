import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { codeMatches, generateCode, hashCode, openCode, sealCode } from '../../lib/otp/codes';
import { keysFor, pseudonym } from '../../lib/otp/keys';
import { checkPhoneNumber } from '../../lib/otp/phone';
import { openRequestId, sealRequestId } from '../../lib/otp/request-id';

const keys = keysFor(randomBytes(32).toString('base64'));
const other = keysFor(randomBytes(32).toString('base64'));

describe('codes', () => {
  it.each([4, 6, 8])('generates %i ASCII digits', (n) => {
    for (let i = 0; i < 200; i++) expect(generateCode(n)).toMatch(new RegExp(`^\\d{${n}}$`));
  });

  it('spreads random codes over the digits (no constant or short output)', () => {
    const seen = new Set(Array.from({ length: 500 }, () => generateCode(6)));
    expect(seen.size).toBeGreaterThan(490);
  });

  it('codes are never derived from anything a client sends: generateCode takes only a length', () => {
    expect(generateCode).toHaveLength(1);
  });

  it('a code kept for an idempotent retry is sealed: it opens only with the same key and for the same record', () => {
    const sealed = sealCode(keys, '123456', 'record-a');
    expect(sealed).not.toContain('123456');
    expect(sealCode(keys, '123456', 'record-a')).not.toBe(sealed);
    expect(openCode(keys, sealed, 'record-a')).toBe('123456');
    expect(openCode(keys, sealed, 'record-b')).toBeUndefined();
    expect(openCode(other, sealed, 'record-a')).toBeUndefined();
    const tampered = Buffer.from(sealed, 'base64url');
    tampered[13] = tampered[13]! ^ 1;
    expect(openCode(keys, tampered.toString('base64url'), 'record-a')).toBeUndefined();
    expect(openCode(keys, 'short', 'record-a')).toBeUndefined();
  });

  it('a sealed code or an id cut short (no whole nonce and tag left) never opens', () => {
    const sealed = Buffer.from(sealCode(keys, '123456', 'record-a'), 'base64url');
    const { otpRequestId } = sealRequestId(keys, '+919876543210');
    const id = Buffer.from(otpRequestId, 'base64url');
    for (let n = 0; n < 28; n++) {
      expect(openCode(keys, sealed.subarray(0, n).toString('base64url'), 'record-a')).toBeUndefined();
      expect(openRequestId(keys, id.subarray(0, n).toString('base64url'))).toBeUndefined();
    }
  });

  it('stores a keyed hash bound to the code id, compared in constant time', () => {
    const h = hashCode(keys, 'id1', '123456');
    expect(h).not.toContain('123456');
    expect(codeMatches(keys, 'id1', '123456', h)).toBe(true);
    expect(codeMatches(keys, 'id1', '123457', h)).toBe(false);
    expect(codeMatches(keys, 'id2', '123456', h)).toBe(false);
    expect(codeMatches(other, 'id1', '123456', h)).toBe(false);
    expect(codeMatches(keys, 'id1', '123456', 'short')).toBe(false);
  });

  it('refuses a hash key that is not 32+ random bytes in base64, naming HASH_SECRET_ID and never the value', () => {
    const bad = ['short', 'CheckoutOtp2026!', Buffer.alloc(31, 9).toString('base64'), 'A'.repeat(44), Buffer.from('a pass phrase long enough to be 32 bytes').toString('base64')];
    for (const value of bad) {
      expect(() => keysFor(value)).toThrow(/HASH_SECRET_ID/);
      expect(() => keysFor(value)).not.toThrow(value);
    }
  });

  it('accepts 32+ random bytes in either base64 alphabet, with or without padding', () => {
    const bytes = randomBytes(48);
    for (const value of [bytes.toString('base64'), bytes.toString('base64url'), randomBytes(32).toString('base64').replace(/=+$/, ''), `${bytes.toString('base64')}\n`]) {
      expect(() => keysFor(value)).not.toThrow();
    }
    expect(keysFor(bytes.toString('base64')).id.equals(keysFor(bytes.toString('base64url')).id)).toBe(true);
  });

  it('derives one sub-key per purpose, all different', () => {
    const all = [keys.subject, keys.code, keys.id, keys.retryCode].map((k) => k.toString('hex'));
    expect(new Set(all).size).toBe(4);
    for (const k of [keys.subject, keys.code, keys.id, keys.retryCode]) expect(k).toHaveLength(32);
  });

  it('pseudonyms differ per namespace and key and never contain the value', () => {
    const a = pseudonym(keys, 'phone', '+919876543210');
    expect(a).not.toContain('9876543210');
    expect(a).not.toBe(pseudonym(keys, 'rate-limit', '+919876543210'));
    expect(a).not.toBe(pseudonym(other, 'phone', '+919876543210'));
  });
});

describe('otpRequestId', () => {
  it('seals the number so that only the key opens it', () => {
    const { otpRequestId, codeId } = sealRequestId(keys, '+919876543210');
    expect(otpRequestId).toMatch(/^[A-Za-z0-9_-]{1,128}$/);
    expect(otpRequestId).not.toContain('9876543210');
    expect(openRequestId(keys, otpRequestId)).toEqual({ phone: '+919876543210', codeId });
    expect(openRequestId(other, otpRequestId)).toBeUndefined();
  });

  it('a fresh id for every send of the same number', () => {
    const ids = new Set(Array.from({ length: 100 }, () => sealRequestId(keys, '+919876543210').otpRequestId));
    expect(ids.size).toBe(100);
  });

  it('any change to an id makes it unknown (property)', () => {
    const { otpRequestId } = sealRequestId(keys, '+919876543210');
    fc.assert(
      fc.property(fc.nat({ max: otpRequestId.length - 1 }), fc.constantFrom(...'ABCxyz019_-'), (i, ch) => {
        const changed = otpRequestId.slice(0, i) + ch + otpRequestId.slice(i + 1);
        fc.pre(changed !== otpRequestId);
        expect(openRequestId(keys, changed)).toBeUndefined();
      }),
    );
  });

  it('random well-formed strings never open (property)', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z0-9_-]{1,128}$/), (id) => {
        expect(openRequestId(keys, id)).toBeUndefined();
      }),
    );
  });
});

describe('checkPhoneNumber', () => {
  it.each(['+919876543210', '+916000000000', '+917999999999'])('accepts Indian mobile %s', (n) => {
    expect(checkPhoneNumber(n, ['91'])).toBe(n);
  });
  it.each(['+91987654321', '+9198765432101', '+915876543210', '+910876543210'])('refuses %s as not an Indian mobile', (n) => {
    expect(() => checkPhoneNumber(n, ['91'])).toThrow(expect.objectContaining({ code: 'invalid_phone_number' }));
  });
  it.each(['919876543210', '+0919876543210', '+91 98765 43210', '+91-9876543210', '+', '', '+١٢٣٤٥٦٧٨٩٠', '+91９８７６５４３２１０'])(
    'refuses %j as not E.164',
    (n) => {
      expect(() => checkPhoneNumber(n, ['91'])).toThrow(expect.objectContaining({ code: 'invalid_phone_number' }));
    },
  );
  it('a cold start judges alike: the E.164 and mobile patterns are anchored at both ends', () => {
    // Loaded afresh inside the test, as a Lambda cold start does (the patterns are built at module load).
    let check!: typeof checkPhoneNumber;
    jest.isolateModules(() => {
      ({ checkPhoneNumber: check } = jest.requireActual<typeof import('../../lib/otp/phone')>('../../lib/otp/phone'));
    });
    for (const [n, allowed] of [
      ['x+919876543210', ['91']],
      ['+14155550123x', ['1']],
      ['+9198765432101', ['91']],
      ['+915876543210', ['91']],
      // A valid mobile number behind one extra digit: still 15 digits or fewer, so only the anchor refuses it.
      ['+9159876543210', ['91']],
    ] as const) {
      expect(() => check(n, allowed)).toThrow(expect.objectContaining({ code: 'invalid_phone_number' }));
    }
    expect(check('+919876543210', ['91'])).toBe('+919876543210');
    expect(check('+14155550123', ['1'])).toBe('+14155550123');
  });

  it('refuses a valid number of another country with 403', () => {
    expect(() => checkPhoneNumber('+6591234567', ['91'])).toThrow(expect.objectContaining({ code: 'country_not_allowed', statusCode: 403 }));
    expect(checkPhoneNumber('+6591234567', ['91', '65'])).toBe('+6591234567');
  });
  it('never accepts anything but + and ASCII digits (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 20 }), (s) => {
        let ok = false;
        try {
          checkPhoneNumber(s, ['91', '1', '65']);
          ok = true;
        } catch (e) {
          expect(['invalid_phone_number', 'country_not_allowed']).toContain((e as { code: string }).code);
        }
        if (ok) expect(s).toMatch(/^\+\d{7,15}$/);
      }),
      { numRuns: 500 },
    );
  });
});
