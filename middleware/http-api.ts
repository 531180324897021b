import middy, { type MiddlewareObj } from '@middy/core';
import httpErrorHandler from '@middy/http-error-handler';
import httpHeaderNormalizer from '@middy/http-header-normalizer';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2, Context } from 'aws-lambda';
import { logger } from '../lib/log';
import { latencyMiddleware, metrics } from '../lib/metrics';
import { errorsMiddleware } from './errors';
import { originVerifyMiddleware, type OriginVerifyOptions } from './origin-verify';
import { responseHeadersMiddleware } from './response-headers';

/**
 * The outer layers every HTTP function shares, in one place, so a handler file shows only what is its own:
 *
 *   response headers      first, so its after/onError run last: errors and replays get them too
 *   logger context        injectLambdaContext: request id on every line, keys reset per request
 *   metrics flush         EMF, after the error is mapped, so the flush sees the final answer
 *   latency               optional (SendLatency, VerifyLatency): before → successful answer
 *   http-error-handler    writes the exposed error that errors mapped
 *   errors                maps anything thrown onto API.md's closed set (middleware/errors.ts)
 *   header normaliser     lower-case header names for every inner layer
 *   origin verify         behind the CloudFront edge only: 403 without CloudFront's secret header, and the
 *                         viewer's address as the source IP (middleware/origin-verify.ts); a no-op otherwise
 */
export interface HttpApiOptions {
  corsAllowedOrigins: readonly string[];
  latencyMetric?: 'SendLatency' | 'VerifyLatency';
  /** Default `no-store`. */
  cacheControl?: string;
  /** Required, so no function can forget the edge check: `{ secretId: config.originVerifySecretId, ... }`. */
  originVerify: OriginVerifyOptions;
}

const OPTION_KEYS = new Set(['corsAllowedOrigins', 'latencyMetric', 'cacheControl', 'originVerify']);

/**
 * logMetrics, except that an invocation with nothing to report (an idempotent replay, a JWKS answer) writes no
 * "No application metrics to publish" warning into the log.
 */
const metricsFlushMiddleware = (): MiddlewareObj => {
  const inner = logMetrics(metrics);
  const metricsFlushMiddlewareAfter = (): void => {
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  };
  return { before: inner.before!, after: metricsFlushMiddlewareAfter, onError: metricsFlushMiddlewareAfter };
};

export const httpApi = (opts: HttpApiOptions) => {
  for (const key of Object.keys(opts)) if (!OPTION_KEYS.has(key)) throw new TypeError(`httpApi: unknown option "${key}"`);
  const pipeline = middy<APIGatewayProxyEventV2, APIGatewayProxyResultV2, Error, Context>()
    .use(responseHeadersMiddleware({ corsAllowedOrigins: opts.corsAllowedOrigins, ...(opts.cacheControl ? { cacheControl: opts.cacheControl } : {}) }))
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(metricsFlushMiddleware());
  if (opts.latencyMetric) pipeline.use(latencyMiddleware(opts.latencyMetric));
  // Stryker disable next-line BooleanLiteral: equivalent: http-error-handler only calls a logger that is a function, so `true` logs nothing either.
  return pipeline.use(httpErrorHandler({ logger: false })).use(errorsMiddleware()).use(httpHeaderNormalizer()).use(originVerifyMiddleware(opts.originVerify));
};
