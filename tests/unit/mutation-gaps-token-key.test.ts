/**
 * Gaps a mutation run left in lib/otp/token.ts (docs/mutation.md): what the token key secret must hold
 * (API.md "Keys", docs/keys.md), stated as what an operator and a checkout backend see:
 * - each malformed secret is refused with a message naming TOKEN_KEY_SECRET_ID, the member at fault and the
 *   rule it broke (never a key's value), and each rule refuses exactly what it names: a key at each rule's
 *   edge is accepted;
 * - what is published and what signs: the JWKS lists current, next, previous in that order, each with exactly
 *   the public members; the signing key is the current one.
 *
 * Every test loads lib/otp/token.ts inside itself (jest.isolateModules), as a cold start does: its patterns are
 * module-level, and Stryker's per-test coverage tries a module-level mutant only with tests that load the
 * module themselves.
 */
import { decodeProtectedHeader } from 'jose';
import { newTokenJwk, publicJwk, type PrivateJwk } from '../../local/keys';
import type * as TokenModule from '../../lib/otp/token';
import { jwksFromDocument, verifyOtpToken } from '../../lib/otp/token-verifier';

const fresh = (): typeof TokenModule => {
  let mod!: typeof TokenModule;
  jest.isolateModules(() => {
    mod = require('../../lib/otp/token') as typeof TokenModule;
  });
  return mod;
};

let current: PrivateJwk;
let other: PrivateJwk;
let third: PrivateJwk;
beforeAll(async () => {
  [current, other, third] = await Promise.all([newTokenJwk(), newTokenJwk(), newTokenJwk()]);
});

const SHAPE = 'TOKEN_KEY_SECRET_ID must hold {"current": <private EC P-256 JWK with kid>, "previous": [<public JWKs>]}: ';

/** The message a secret is refused with; fails the test if it is accepted or refused otherwise. */
const refusal = (secret: unknown): string => {
  const { parseTokenKey, TokenKeyError } = fresh();
  try {
    parseTokenKey(secret);
  } catch (e) {
    expect(e).toBeInstanceOf(TokenKeyError);
    expect((e as Error).name).toBe('TokenKeyError');
    for (const value of [current.d, current.x, current.y]) expect((e as Error).message).not.toContain(value);
    return (e as Error).message;
  }
  throw new Error('accepted');
};

const withCurrent = (changes: Record<string, unknown>) => ({ current: { ...current, ...changes }, previous: [] });
const coordinate = (c: string) => `${'A'.repeat(43 - c.length)}${c}`;

describe('a malformed token key secret says what is wrong', () => {
  it.each([
    ['null', null],
    ['a string', 'not json'],
    ['a list', [current]],
    ['a number', 42],
  ])('a secret that is %s: not the documented JSON', (_, secret) => {
    expect(refusal(secret)).toBe('TOKEN_KEY_SECRET_ID must hold JSON {"current": <private EC P-256 JWK with kid>, "previous": [<public JWKs>]}');
  });

  it.each([
    ['missing', {}],
    ['null', { current: null }],
    ['a list', { current: [current] }],
    ['a string', { current: 'key' }],
  ])('"current" %s: not a JWK object', (_, secret) => {
    expect(refusal(secret)).toBe(`${SHAPE}"current" is not a JWK object`);
  });

  it.each([
    ['an RSA key', { kty: 'RSA' }],
    ['another curve', { crv: 'P-384' }],
  ])('%s: not an EC P-256 key', (_, changes) => {
    expect(refusal(withCurrent(changes))).toBe(`${SHAPE}"current" is not an EC P-256 key`);
  });

  it.each([
    ['x missing', { x: undefined }],
    ['y missing', { y: undefined }],
    ['x one character short', { x: 'A'.repeat(42) }],
    ['y one character long', { y: 'A'.repeat(44) }],
    ['x in the standard alphabet', { x: coordinate('+') }],
    ['y with padding', { y: `${'A'.repeat(42)}=` }],
    ['x as a list holding a coordinate', { x: ['A'.repeat(43)] }],
    ['y as a list holding a coordinate', { y: ['A'.repeat(43)] }],
  ])('%s: no valid x and y', (_, changes) => {
    expect(refusal(withCurrent(changes))).toBe(`${SHAPE}"current" has no valid x and y`);
  });

  it.each([
    ['missing', undefined],
    ['empty', ''],
    ['129 characters', 'k'.repeat(129)],
    ['with a space', 'key 1'],
    ['with a control character', 'key\x7f'],
    ['with a non-ASCII letter', 'clé'],
    ['a list', ['key-1']],
  ])('a kid %s: no kid', (_, kid) => {
    expect(refusal(withCurrent({ kid }))).toBe(`${SHAPE}"current" has no kid (1 to 128 printable characters)`);
  });

  it('an alg other than ES256, a use other than sig', () => {
    expect(refusal(withCurrent({ alg: 'RS256' }))).toBe(`${SHAPE}"current" has an alg other than ES256`);
    expect(refusal(withCurrent({ use: 'enc' }))).toBe(`${SHAPE}"current" has a use other than sig`);
  });

  it.each([
    ['missing', undefined],
    ['one character short', 'A'.repeat(42)],
    ['one character long', 'A'.repeat(44)],
    ['a list holding a scalar', ['A'.repeat(43)]],
    ['in the standard alphabet', coordinate('/')],
  ])('a private scalar "d" %s: "current" must be a private key', (_, d) => {
    expect(refusal(withCurrent({ d }))).toBe('TOKEN_KEY_SECRET_ID: "current" must be a private key (with "d")');
  });

  it('"previous" that is not a list; a bad entry named by its place', () => {
    expect(refusal({ current, previous: {} })).toBe('TOKEN_KEY_SECRET_ID: "previous" must be a list of public JWKs');
    expect(refusal({ current, previous: publicJwk(other) })).toBe('TOKEN_KEY_SECRET_ID: "previous" must be a list of public JWKs');
    expect(refusal({ current, previous: [publicJwk(other), { ...publicJwk(third), crv: 'P-521' }] })).toBe(`${SHAPE}"previous"[1] is not an EC P-256 key`);
  });

  it('a bad "next"', () => {
    expect(refusal({ current, next: { ...publicJwk(other), kid: '' }, previous: [] })).toBe(`${SHAPE}"next" has no kid (1 to 128 printable characters)`);
  });

  it.each([
    ['current and next', () => ({ current, next: { ...publicJwk(other), kid: current.kid }, previous: [] })],
    ['next and previous', () => ({ current, next: publicJwk(other), previous: [{ ...publicJwk(third), kid: other.kid }] })],
    ['two previous', () => ({ current, previous: [publicJwk(other), { ...publicJwk(third), kid: other.kid }] })],
  ])('two keys under one kid (%s)', (_, secret) => {
    expect(refusal(secret())).toBe('TOKEN_KEY_SECRET_ID: every key needs its own kid (a verifier picks the key by kid)');
  });
});

describe('each rule refuses only what it names', () => {
  const kidsOf = (secret: unknown) => fresh().parseTokenKey(secret).jwks.keys.map((k) => k.kid);

  it('a kid of 1 and of 128 printable characters, from "!" to "~"', () => {
    for (const kid of ['k', '!', '~', `!${'k'.repeat(126)}~`]) expect(kidsOf(withCurrent({ kid }))).toEqual([kid]);
  });

  it('alg ES256 and use sig may be written out or left out; "previous" may be left out', () => {
    expect(kidsOf({ current: { ...current, alg: 'ES256', use: 'sig' } })).toEqual([current.kid]);
    const { alg: _alg, use: _use, ...bare } = { alg: undefined, use: undefined, ...current };
    expect(Object.keys(bare)).not.toContain('alg');
    expect(kidsOf({ current: bare, next: { ...publicJwk(other), alg: undefined, use: undefined } })).toEqual([current.kid, other.kid]);
  });

  it('coordinates and the scalar use the whole URL-safe alphabet', () => {
    // Not a real key, so only parsing is asked (signing would refuse a point off the curve).
    const { parseTokenKey } = fresh();
    const set = parseTokenKey(withCurrent({ x: coordinate('-_z9'), y: coordinate('Z0a_'), d: coordinate('-') }));
    expect(set.privateJwk).toEqual({ kty: 'EC', crv: 'P-256', x: coordinate('-_z9'), y: coordinate('Z0a_'), d: coordinate('-') });
  });
});

describe('what is published and what signs', () => {
  it('current, next, previous in that order, each with exactly the public members; the current key signs', async () => {
    const { parseTokenKey, signOtpToken } = fresh();
    const secret = { current: { ...current, use: 'sig' }, next: { ...other, alg: 'ES256' }, previous: [third] };
    const set = parseTokenKey(secret);
    const pub = (k: PrivateJwk) => ({ kty: 'EC', crv: 'P-256', x: k.x, y: k.y, kid: k.kid, alg: 'ES256', use: 'sig' });
    expect(set.jwks).toEqual({ keys: [pub(current), pub(other), pub(third)] });
    expect(set.kid).toBe(current.kid);
    expect(set.privateJwk).toEqual({ kty: 'EC', crv: 'P-256', x: current.x, y: current.y, d: current.d });

    const claims = { phone: '+919876543210', otpRequestId: 'req_7', nowSeconds: Math.floor(Date.now() / 1000), ttlSeconds: 300, issuer: 'otp-service', audience: 'checkout' };
    const { token, expiresAt } = await signOtpToken(secret, claims);
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'ES256', typ: 'JWT', kid: current.kid });
    expect(expiresAt).toBe(claims.nowSeconds + 300);
    await expect(verifyOtpToken(token, jwksFromDocument({ keys: [pub(current)] }), { issuer: 'otp-service', audience: 'checkout' })).resolves.toEqual({
      iss: 'otp-service',
      aud: 'checkout',
      sub: '+919876543210',
      jti: 'req_7',
      iat: claims.nowSeconds,
      exp: claims.nowSeconds + 300,
    });
  });

  it('parsed once per secret value (the secrets cache hands over the same object); another value is parsed anew', () => {
    const { parseTokenKey } = fresh();
    const secret = { current, previous: [] };
    const set = parseTokenKey(secret);
    expect(parseTokenKey(secret)).toBe(set);
    const rotated = { current: other, previous: [publicJwk(current)] };
    expect(parseTokenKey(rotated).kid).toBe(other.kid);
    expect(parseTokenKey(secret)).toBe(set);
  });

  it('a key whose point is not on the curve is refused when it signs, every time (nothing is cached)', async () => {
    const { signOtpToken } = fresh();
    const offCurve = { current: { ...current, y: current.x }, previous: [] };
    const claims = { phone: '+919876543210', otpRequestId: 'req_8', nowSeconds: 1, ttlSeconds: 1, issuer: 'i', audience: 'a' };
    await expect(signOtpToken(offCurve, claims)).rejects.toThrow();
    await expect(signOtpToken(offCurve, claims)).rejects.toThrow();
  });
});
