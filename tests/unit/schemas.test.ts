import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateValidators, OUTPUT, TYPES, TYPES_SOURCE } from '../../scripts/build-schemas';
import { validateSendOtp, validateVerifyOtp } from '../../schemas/validators.generated';

describe('precompiled validators', () => {
  it('are up to date with schemas/*.json (run `npm run build:schemas` after editing a schema)', () => {
    expect(readFileSync(OUTPUT, 'utf8')).toBe(generateValidators());
    expect(readFileSync(TYPES, 'utf8')).toBe(TYPES_SOURCE);
  });

  it('do not pull the Ajv compiler into the bundle (only its tiny runtime helpers)', () => {
    const code = readFileSync(join(__dirname, '../../schemas/validators.generated.js'), 'utf8');
    const requires = [...code.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]);
    for (const r of requires) expect(r).toMatch(/^ajv\/dist\/runtime\//);
  });

  it('validate the event body', () => {
    expect(validateSendOtp({ body: { phoneNumber: '+919876543210' } })).toBe(true);
    expect(validateSendOtp({ body: { phoneNumber: '+919876543210', extra: 1 } })).toBe(false);
    expect(validateSendOtp({ body: { phoneNumber: 919876543210 } })).toBe(false);
    expect(validateSendOtp({ body: {} })).toBe(false);
    expect(validateVerifyOtp({ body: { otpRequestId: 'abc_-1', otp: '1234' } })).toBe(true);
    expect(validateVerifyOtp({ body: { otpRequestId: 'abc', otp: '123' } })).toBe(false);
    expect(validateVerifyOtp({ body: { otpRequestId: 'abc', otp: '123456789' } })).toBe(false);
    expect(validateVerifyOtp({ body: { otpRequestId: 'a b', otp: '1234' } })).toBe(false);
    expect(validateVerifyOtp({ body: { otpRequestId: 'x'.repeat(129), otp: '1234' } })).toBe(false);
    expect(validateVerifyOtp({ body: { otpRequestId: 'abc', otp: '١٢٣٤' } })).toBe(false);
    expect(validateVerifyOtp({ body: JSON.parse('{"otpRequestId":"abc","otp":"1234","__proto__":{"x":1}}') })).toBe(false);
  });
});
