import { Logger } from '@aws-lambda-powertools/logger';

/**
 * The service's one logger: structured JSON lines with the Lambda request id
 * (injectLambdaContext in the handlers). Never pass it a code, a token, a key
 * or a full phone number: use maskPhone().
 */
export const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'otp-service' });

/** `+919876543210` → `+91******3210`: enough for support to match a complaint, not enough to text anyone. */
export const maskPhone = (phone: string): string => {
  if (phone.length < 8) return '***';
  const cc = phone.startsWith('+91') ? 3 : Math.min(3, phone.length - 6);
  return phone.slice(0, cc) + '*'.repeat(Math.max(1, phone.length - cc - 4)) + phone.slice(-4);
};
