import type { MiddlewareObj, Request } from '@middy/core';
import { InternalError, InvalidRequest, OtpError, PayloadTooLarge, ProviderRateLimited, ServiceUnavailable, UnsupportedMediaType, UpstreamError, type ValidationDetail } from '../lib/errors';
import { logger } from '../lib/log';
import { countErrorResponse, countUpstreamError } from '../lib/metrics';
import { IdempotentReplay } from './idempotency';

/**
 * Maps whatever was thrown onto API.md's closed error set, in one place, then hands an exposed
 * HTTP error to @middy/http-error-handler, which writes the response. The body is built only from
 * our own error classes: no raw error, provider text, stack or secret can reach a client.
 * Use it right after http-error-handler so that its onError runs just before the handler's.
 */
interface MiddyHttpError {
  statusCode?: number;
  cause?: { package?: string; data?: unknown };
}

const fromValidator = (data: unknown): InvalidRequest => {
  const details: ValidationDetail[] = Array.isArray(data)
    ? data.slice(0, 10).map((e: { instancePath?: string; message?: string; params?: { additionalProperty?: string; missingProperty?: string } }) => ({
        path: (e.instancePath ?? '').replace(/^\/body/, '') || '/',
        message: e.params?.additionalProperty
          ? `unknown property "${e.params.additionalProperty}"`
          : e.params?.missingProperty
            ? `missing property "${e.params.missingProperty}"`
            : (e.message ?? 'invalid'),
      }))
    : [];
  return new InvalidRequest('The request body is not valid.', details);
};

export const toOtpError = (error: unknown): OtpError => {
  if (error instanceof OtpError) return error;
  const e = error as MiddyHttpError | undefined;
  if (e?.cause?.package === '@middy/validator' && e.statusCode === 400) return fromValidator(e.cause.data);
  if (e?.statusCode === 413) return new PayloadTooLarge();
  if (e?.statusCode === 415) return new UnsupportedMediaType();
  if (e?.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500) return new InvalidRequest();
  return new InternalError();
};

export const errorsMiddleware = (): MiddlewareObj => {
  const errorsMiddlewareOnError = async (request: Request): Promise<void> => {
    if (request.response !== undefined) return;
    const thrown = request.error;
    if (thrown instanceof IdempotentReplay) {
      request.response = thrown.response;
      return;
    }
    const mapped = toOtpError(thrown);
    countErrorResponse(mapped.statusCode);
    if (mapped instanceof UpstreamError) countUpstreamError(mapped.kind);
    // StartMessaging's own 429 (provider throttling): answered as our 429, alarmed as an upstream failure.
    if (mapped instanceof ProviderRateLimited) countUpstreamError('rate_limited');
    if (mapped instanceof ServiceUnavailable) countUpstreamError(mapped.reason);
    const fields = {
      status: mapped.statusCode,
      code: mapped.code,
      ...(mapped instanceof UpstreamError ? { kind: mapped.kind, upstreamStatus: mapped.upstreamStatus } : {}),
      ...(mapped instanceof ServiceUnavailable ? { reason: mapped.reason } : {}),
    };
    if (mapped instanceof ServiceUnavailable && mapped.reason === 'budget') {
      // Expected once the day's budget is spent: the alarm on the budget says so, no stack needed.
      logger.warn('send refused: daily budget spent', fields);
    } else if (mapped.statusCode >= 500) {
      logger.error('request failed', { ...fields, error: mapped instanceof InternalError ? thrown : (mapped.cause ?? mapped) });
    } else {
      logger.info('request refused', fields);
    }
    request.error = Object.assign(new Error(JSON.stringify(mapped.toBody())), {
      statusCode: mapped.statusCode,
      expose: true,
      headers: { ...mapped.headers },
    });
  };
  return { onError: errorsMiddlewareOnError };
};
