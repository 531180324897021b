import validator from '@middy/validator';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { loadConfig } from '../lib/config';
import { InvalidCode, TooManyAttempts } from '../lib/errors';
import { count } from '../lib/metrics';
import { verifyOtp } from '../lib/otp/verify';
import { createDynamoStore } from '../lib/store/dynamodb';
import { httpApi } from '../middleware/http-api';
import { jsonBodyMiddleware } from '../middleware/json-body';
import { secretsMiddleware, type WithSecrets } from '../middleware/secrets';
import { validateVerifyOtp } from '../schemas/validators.generated';

/** POST /auth/verify-otp. The attempt budgets are decided in lib/otp/verify (they need the code's record, in the same round trip). */
const config = loadConfig();
const store = createDynamoStore({ table: config.table });

type Event = Omit<APIGatewayProxyEventV2, 'body'> & { body: { otpRequestId: string; otp: string } };

export const handler = httpApi({ corsAllowedOrigins: config.corsAllowedOrigins, originVerify: { secretId: config.originVerifySecretId, cacheSeconds: config.secretsCacheSeconds }, latencyMetric: 'VerifyLatency' })
  .use(jsonBodyMiddleware({ maxBytes: 4096 }))
  .use(validator({ eventSchema: validateVerifyOtp }))
  .use(secretsMiddleware({ secrets: { hashKey: config.hashSecretId, tokenKey: config.tokenKeySecretId }, cacheSeconds: config.secretsCacheSeconds }))
  .handler(async (event, context) => {
    const e = event as unknown as Event;
    try {
      const ctx = context as WithSecrets<'hashKey' | 'tokenKey'>;
      const body = await verifyOtp({ config, store }, { ...e.body, hashKey: ctx.hashKey, tokenKey: ctx.tokenKey, sourceIp: e.requestContext?.http?.sourceIp });
      count('OtpVerified');
      return { statusCode: 200, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) };
    } catch (error) {
      if (error instanceof InvalidCode || error instanceof TooManyAttempts) count('OtpVerifyFailed');
      throw error;
    }
  });
