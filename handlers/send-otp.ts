import validator from '@middy/validator';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { loadConfig } from '../lib/config';
import { count } from '../lib/metrics';
import { deliverSend, prepareSend, type PreparedSend } from '../lib/otp/send';
import { createStartMessagingClient } from '../lib/provider/startmessaging';
import { sendRules, type RateLimitSubjectInput } from '../lib/ratelimit/rules';
import { createDynamoStore } from '../lib/store/dynamodb';
import { httpApi } from '../middleware/http-api';
import { idempotencyMiddleware, limitsAlreadyTaken } from '../middleware/idempotency';
import { jsonBodyMiddleware } from '../middleware/json-body';
import { phoneNumberMiddleware } from '../middleware/phone-number';
import { rateLimitMiddleware } from '../middleware/rate-limit';
import { secretsMiddleware, type WithSecrets } from '../middleware/secrets';
import { validateSendOtp } from '../schemas/validators.generated';

/** POST /auth/send-otp. Layers run top to bottom before the handler; see README "Pipeline". */
const config = loadConfig();
const store = createDynamoStore({ table: config.table });
const provider = createStartMessagingClient({ baseUrl: config.startMessagingBaseUrl, timeoutMs: config.startMessagingTimeoutMs });

type Event = Omit<APIGatewayProxyEventV2, 'body'> & { body: { phoneNumber: string } };
type SendContext = WithSecrets<'apiKey' | 'hashKey'> & { preparedSend: PreparedSend };

export const handler = httpApi({ corsAllowedOrigins: config.corsAllowedOrigins, originVerify: { secretId: config.originVerifySecretId, cacheSeconds: config.secretsCacheSeconds }, latencyMetric: 'SendLatency' })
  .use(jsonBodyMiddleware({ maxBytes: 4096 }))
  .use(validator({ eventSchema: validateSendOtp }))
  .use(secretsMiddleware({ secrets: { apiKey: config.apiKeySecretId, hashKey: config.hashSecretId }, cacheSeconds: config.secretsCacheSeconds }))
  .use(phoneNumberMiddleware({ allowedCountryCodes: config.allowedCountryCodes }))
  .use(idempotencyMiddleware({ store, scope: 'send-otp', fingerprint: (r) => (r.event as unknown as Event).body.phoneNumber }))
  .use(
    rateLimitMiddleware<RateLimitSubjectInput>({
      store,
      rules: sendRules(config),
      input: (r) => ({ phoneNumber: (r.event as Event).body.phoneNumber, sourceIp: (r.event as Event).requestContext?.http?.sourceIp }),
      skip: limitsAlreadyTaken,
      // Store the new code once the limits are taken (undone if the provider certainly sent nothing).
      afterTaken: async (r) => {
        const e = r.event as Event;
        const ctx = r.context as SendContext;
        ctx.preparedSend = await prepareSend(
          { config, store },
          { phoneNumber: e.body.phoneNumber, hashKey: ctx.hashKey, idempotencyKey: e.headers?.['idempotency-key'] },
        );
        return ctx.preparedSend.undo;
      },
    }),
  )
  .handler(async (_event, context) => {
    const ctx = context as SendContext;
    const body = await deliverSend({ config, provider }, ctx.preparedSend, {
      apiKey: ctx.apiKey,
      // Leave the function time to answer (and API Gateway's 30 s) after the last provider attempt.
      deadline: ctx.getRemainingTimeInMillis ? Date.now() + ctx.getRemainingTimeInMillis() - 1500 : undefined,
    });
    count('OtpSent');
    return { statusCode: 201, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) };
  });
