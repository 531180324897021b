import { CountryNotAllowed, InvalidPhoneNumber } from '../errors';

const E164 = /^\+[1-9]\d{6,14}$/;
/** Per-country mobile rules on the national number, where we know them; other allowed countries get the E.164 check only. */
const MOBILE: Record<string, RegExp> = {
  '91': /^[6-9]\d{9}$/,
};

/**
 * Judges a phone number against API.md: E.164 (else 400 invalid_phone_number), a calling
 * code in ALLOWED_COUNTRY_CODES (else 403 country_not_allowed) and, where the country has a
 * mobile rule, a mobile number (else 400 invalid_phone_number). Returns the number unchanged.
 */
export const checkPhoneNumber = (phone: string, allowedCountryCodes: readonly string[]): string => {
  if (!E164.test(phone)) throw new InvalidPhoneNumber();
  const digits = phone.slice(1);
  const cc = allowedCountryCodes.find((code) => digits.startsWith(code));
  if (cc === undefined) throw new CountryNotAllowed();
  const rule = MOBILE[cc];
  if (rule !== undefined && !rule.test(digits.slice(cc.length))) throw new InvalidPhoneNumber();
  return phone;
};
