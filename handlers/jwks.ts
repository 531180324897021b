import middy from '@middy/core';
import httpErrorHandler from '@middy/http-error-handler';
import httpHeaderNormalizer from '@middy/http-header-normalizer';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2, Context } from 'aws-lambda';
import { loadConfig } from '../lib/config';
import { logger } from '../lib/log';
import { metrics } from '../lib/metrics';
import { errorsMiddleware } from '../middleware/errors';
import { originVerifyMiddleware } from '../middleware/origin-verify';
import { responseHeadersMiddleware } from '../middleware/response-headers';

/**
 * GET /.well-known/jwks.json — PLACEHOLDER so the stack (its route, its own role, its alarms) can be packaged
 * and tested before the keys branch (helper "k") lands; that branch's handler replaces this file. Until then it
 * answers API.md's 503 body rather than an empty key set a verifier might cache.
 */
const config = loadConfig();

export const handler = middy<APIGatewayProxyEventV2, APIGatewayProxyResultV2, Error, Context>()
  .use(responseHeadersMiddleware({ corsAllowedOrigins: config.corsAllowedOrigins }))
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics))
  .use(httpErrorHandler({ logger: false }))
  .use(errorsMiddleware())
  .use(httpHeaderNormalizer())
  .use(originVerifyMiddleware({ secretId: config.originVerifySecretId, cacheSeconds: config.secretsCacheSeconds }))
  .handler(async () => ({
    statusCode: 503,
    headers: { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' },
    body: JSON.stringify({ error: 'service_unavailable', message: 'The service is temporarily unavailable. Please try again later.' }),
  }));
