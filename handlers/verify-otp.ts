import middy from '@middy/core';
import httpErrorHandler from '@middy/http-error-handler';
import httpHeaderNormalizer from '@middy/http-header-normalizer';
import validator from '@middy/validator';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2, Context } from 'aws-lambda';
import { loadConfig } from '../lib/config';
import { InvalidCode, TooManyAttempts } from '../lib/errors';
import { logger } from '../lib/log';
import { count, latencyMiddleware, metrics } from '../lib/metrics';
import { verifyOtp } from '../lib/otp/verify';
import { createDynamoStore } from '../lib/store/dynamodb';
import { errorsMiddleware } from '../middleware/errors';
import { jsonBodyMiddleware } from '../middleware/json-body';
import { responseHeadersMiddleware } from '../middleware/response-headers';
import { secretsMiddleware, type WithSecrets } from '../middleware/secrets';
import { validateVerifyOtp } from '../schemas/validators.generated';

/** POST /auth/verify-otp. The attempt budgets are decided in lib/otp/verify (they need the code's record, in the same round trip). */
const config = loadConfig();
const store = createDynamoStore({ table: config.table });

type Event = Omit<APIGatewayProxyEventV2, 'body'> & { body: { otpRequestId: string; otp: string } };

export const handler = middy<APIGatewayProxyEventV2, APIGatewayProxyResultV2, Error, Context>()
  .use(responseHeadersMiddleware({ corsAllowedOrigins: config.corsAllowedOrigins }))
  // Outer layers: their onError runs after the error is mapped, so the log context and the
  // metrics flush see the final answer.
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics))
  .use(latencyMiddleware('VerifyLatency'))
  .use(httpErrorHandler({ logger: false }))
  .use(errorsMiddleware())
  .use(httpHeaderNormalizer())
  .use(jsonBodyMiddleware({ maxBytes: 4096 }))
  .use(validator({ eventSchema: validateVerifyOtp }))
  .use(secretsMiddleware({ apiKeySecretId: config.apiKeySecretId, signingSecretId: config.signingSecretId, cacheSeconds: config.secretsCacheSeconds }))
  .handler(async (event, context) => {
    const e = event as unknown as Event;
    try {
      const body = await verifyOtp({ config, store }, { ...e.body, signingKey: (context as WithSecrets).signingKey, sourceIp: e.requestContext?.http?.sourceIp });
      count('OtpVerified');
      return { statusCode: 200, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) };
    } catch (error) {
      if (error instanceof InvalidCode || error instanceof TooManyAttempts) count('OtpVerifyFailed');
      throw error;
    }
  });
