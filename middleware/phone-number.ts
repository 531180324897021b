import type { MiddlewareObj, Request } from '@middy/core';
import { checkPhoneNumber } from '../lib/otp/phone';

/**
 * Judges `body.phoneNumber` (already a string: the validator ran) before anything counts
 * against a limit: a malformed number is 400 invalid_phone_number, a number from a country
 * that is not allowed is 403 country_not_allowed, and neither costs the caller any budget.
 */
export const phoneNumberMiddleware = (opts: { allowedCountryCodes: readonly string[] }): MiddlewareObj<{ body: unknown }> => {
  const allowed = [...opts.allowedCountryCodes];
  if (allowed.length === 0) throw new TypeError('phoneNumberMiddleware: allowedCountryCodes is empty');
  const phoneNumberMiddlewareBefore = async (request: Request<{ body: unknown }>): Promise<void> => {
    const body = request.event.body as { phoneNumber: string };
    checkPhoneNumber(body.phoneNumber, allowed);
  };
  return { before: phoneNumberMiddlewareBefore };
};
