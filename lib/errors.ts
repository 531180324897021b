/**
 * The closed set of errors the service answers with (API.md, "Errors").
 *
 * Each class carries its HTTP status, a stable `code` and `expose`, the shape
 * @middy/http-error-handler understands. Only exposed errors reach a client with
 * their own message; anything else is answered as the generic 500 body by
 * middleware/errors.ts. Never put provider text, keys or stack traces in a
 * message: messages are written for a person using the checkout.
 */
export type ErrorCode =
  | 'invalid_request'
  | 'invalid_phone_number'
  | 'country_not_allowed'
  | 'challenge_failed'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'idempotency_conflict'
  | 'rate_limited'
  | 'invalid_code'
  | 'too_many_attempts'
  | 'otp_expired'
  | 'upstream_error'
  | 'service_unavailable'
  | 'upstream_timeout'
  | 'internal_error'
  | 'forbidden';

export abstract class OtpError extends Error {
  abstract readonly statusCode: number;
  abstract readonly code: ErrorCode;
  /** Extra body fields (API.md names them per code). */
  readonly extra: Record<string, unknown> = {};
  /** Response headers, e.g. Retry-After. */
  readonly headers: Record<string, string> = {};
  get expose(): boolean {
    return true;
  }
  override get name(): string {
    return this.constructor.name;
  }
  toBody(): Record<string, unknown> {
    return { error: this.code, message: this.message, ...this.extra };
  }
}

export interface ValidationDetail {
  path: string;
  message: string;
}

export class InvalidRequest extends OtpError {
  readonly statusCode = 400;
  readonly code = 'invalid_request';
  constructor(message = 'The request body is not valid.', details?: ValidationDetail[]) {
    super(message);
    if (details?.length) this.extra.details = details;
  }
}

export class InvalidPhoneNumber extends OtpError {
  readonly statusCode = 400;
  readonly code = 'invalid_phone_number';
  constructor() {
    super('Enter a mobile number in international format, for example +919876543210.');
  }
}

export class CountryNotAllowed extends OtpError {
  readonly statusCode = 403;
  readonly code = 'country_not_allowed';
  constructor() {
    super('Codes cannot be sent to numbers in this country.');
  }
}

export class ChallengeFailed extends OtpError {
  readonly statusCode = 403;
  readonly code = 'challenge_failed';
  constructor() {
    super('Please confirm you are not a robot, then ask for the code again.');
  }
}

export class PayloadTooLarge extends OtpError {
  readonly statusCode = 413;
  readonly code = 'payload_too_large';
  constructor() {
    super('The request body is larger than 4 KiB.');
  }
}

export class UnsupportedMediaType extends OtpError {
  readonly statusCode = 415;
  readonly code = 'unsupported_media_type';
  constructor() {
    super('Send the request body as JSON with Content-Type: application/json.');
  }
}

export class IdempotencyConflict extends OtpError {
  readonly statusCode = 409;
  readonly code = 'idempotency_conflict';
  constructor(message = 'This Idempotency-Key was already used with a different request body.') {
    super(message);
  }
}

const retryAfter = (seconds: number): number => Math.max(1, Math.ceil(seconds));

export class RateLimited extends OtpError {
  readonly statusCode = 429;
  readonly code = 'rate_limited';
  /** Deliberately does not say which limit refused. */
  constructor(retryAfterSeconds: number) {
    super('Too many codes were requested. Please wait before asking for another one.');
    const s = retryAfter(retryAfterSeconds);
    this.extra.retryAfterSeconds = s;
    this.headers['Retry-After'] = String(s);
  }
}

export class InvalidCode extends OtpError {
  readonly statusCode = 400;
  readonly code = 'invalid_code';
  constructor(attemptsRemaining: number) {
    super('That code is not correct.');
    this.extra.attemptsRemaining = attemptsRemaining;
  }
}

export class TooManyAttempts extends OtpError {
  readonly statusCode = 429;
  readonly code = 'too_many_attempts';
  /** With `retryAfterSeconds`: the client's IP failure budget is spent (the code itself is still alive). */
  constructor(retryAfterSeconds?: number) {
    super(retryAfterSeconds === undefined ? 'Too many wrong codes. Request a new code.' : 'Too many wrong codes from this network. Please wait before trying again.');
    if (retryAfterSeconds !== undefined) {
      const s = retryAfter(retryAfterSeconds);
      this.headers['Retry-After'] = String(s);
      this.extra.retryAfterSeconds = s;
    }
  }
}

export class OtpExpired extends OtpError {
  readonly statusCode = 410;
  readonly code = 'otp_expired';
  constructor() {
    super('This code has expired or was already used. Request a new code.');
  }
}

export type UpstreamErrorKind =
  | 'rejected'
  | 'unauthorized'
  | 'not_found'
  | 'conflict'
  | 'server_error'
  | 'bad_response'
  | 'connection';

export class UpstreamError extends OtpError {
  readonly statusCode = 502;
  readonly code = 'upstream_error';
  /** For logs and metrics only, never in the body. */
  readonly kind: UpstreamErrorKind;
  readonly upstreamStatus: number | undefined;
  constructor(kind: UpstreamErrorKind, upstreamStatus?: number) {
    super('The SMS provider could not send the code. Please try again.');
    this.kind = kind;
    this.upstreamStatus = upstreamStatus;
  }
}

export class UpstreamTimeout extends OtpError {
  readonly statusCode = 504;
  readonly code = 'upstream_timeout';
  constructor() {
    super('The SMS provider did not answer in time. Please try again.');
  }
}

export type UnavailableReason = 'store' | 'secrets' | 'wallet' | 'budget';

export class ServiceUnavailable extends OtpError {
  readonly statusCode = 503;
  readonly code = 'service_unavailable';
  /** For logs and metrics only, never in the body. */
  readonly reason: UnavailableReason;
  constructor(reason: UnavailableReason, retryAfterSeconds?: number, cause?: unknown) {
    super('The service is temporarily unavailable. Please try again later.', { cause });
    this.reason = reason;
    if (retryAfterSeconds !== undefined) {
      const s = retryAfter(retryAfterSeconds);
      this.headers['Retry-After'] = String(s);
      this.extra.retryAfterSeconds = s;
    }
  }
}

/** Provider's own 429: our `rate_limited`, with the provider's Retry-After. */
export class ProviderRateLimited extends RateLimited {}

/** Behind the CloudFront edge: a request that went around it (middleware/origin-verify.ts). */
export class Forbidden extends OtpError {
  readonly statusCode = 403;
  readonly code = 'forbidden';
  constructor() {
    super('This endpoint is only served through the service\'s public address.');
  }
}

export class InternalError extends OtpError {
  readonly statusCode = 500;
  readonly code = 'internal_error';
  constructor() {
    super('Something went wrong on our side.');
  }
}

/** Errors after which the provider certainly sent nothing: the rate limits taken for the request are given back. */
export const providerSentNothing = (error: unknown): boolean =>
  error instanceof ProviderRateLimited ||
  // The store failed before the provider was asked (storing the new code).
  (error instanceof ServiceUnavailable && error.reason === 'store') ||
  (error instanceof ServiceUnavailable && error.reason === 'wallet') ||
  (error instanceof UpstreamError && error.kind !== 'server_error' && error.kind !== 'connection' && error.kind !== 'bad_response');

/** Errors after which the provider may have sent the SMS (no answer, 5xx, unreadable answer): nothing is given back. */
export const providerMayHaveSent = (error: unknown): boolean =>
  error instanceof UpstreamTimeout ||
  (error instanceof UpstreamError && (error.kind === 'server_error' || error.kind === 'connection' || error.kind === 'bad_response'));
