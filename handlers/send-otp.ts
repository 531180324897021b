import validator from '@middy/validator';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { loadConfig } from '../lib/config';
import { count } from '../lib/metrics';
import { generateCode } from '../lib/otp/codes';
import { keysFor } from '../lib/otp/keys';
import { phoneSubject, sendOtp } from '../lib/otp/send';
import { createStartMessagingClient } from '../lib/provider/startmessaging';
import { sendRules, type RateLimitSubjectInput } from '../lib/ratelimit/rules';
import { createDynamoStore } from '../lib/store/dynamodb';
import { challengeMiddleware } from '../middleware/challenge';
import { httpApi } from '../middleware/http-api';
import { idempotencyMiddleware, idempotentCode, limitsAlreadyTaken } from '../middleware/idempotency';
import { jsonBodyMiddleware } from '../middleware/json-body';
import { phoneNumberMiddleware } from '../middleware/phone-number';
import { rateLimitMiddleware, rulesTaken } from '../middleware/rate-limit';
import { secretsMiddleware, type WithSecrets } from '../middleware/secrets';
import { validateSendOtp } from '../schemas/validators.generated';

/** POST /auth/send-otp. Layers run top to bottom before the handler; see README "Pipeline". */
const config = loadConfig();
const store = createDynamoStore({ table: config.table });
const provider = createStartMessagingClient({ baseUrl: config.startMessagingBaseUrl, timeoutMs: config.startMessagingTimeoutMs });

type Event = Omit<APIGatewayProxyEventV2, 'body'> & { body: { phoneNumber: string; challengeToken?: string } };
type SendContext = WithSecrets<'apiKey' | 'hashKey'>;
const body = (r: { event: unknown }) => (r.event as Event).body;
const sourceIp = (r: { event: unknown }) => (r.event as Event).requestContext?.http?.sourceIp;

export const handler = httpApi({ corsAllowedOrigins: config.corsAllowedOrigins, originVerify: { secretId: config.originVerifySecretId, cacheSeconds: config.secretsCacheSeconds }, latencyMetric: 'SendLatency' })
  .use(jsonBodyMiddleware({ maxBytes: 4096 }))
  .use(validator({ eventSchema: validateSendOtp }))
  .use(
    secretsMiddleware({
      secrets: {
        apiKey: config.apiKeySecretId,
        hashKey: config.hashSecretId,
        ...(config.challengeProvider === 'none' ? {} : { challengeSecret: config.challengeSecretId }),
      },
      cacheSeconds: config.secretsCacheSeconds,
    }),
  )
  .use(phoneNumberMiddleware({ allowedCountryCodes: config.allowedCountryCodes }))
  .use(
    idempotencyMiddleware({
      store,
      scope: 'send-otp',
      fingerprint: (r) => body(r).phoneNumber,
      newCode: () => generateCode(config.otpLength),
    }),
  )
  .use(
    challengeMiddleware({
      provider: config.challengeProvider,
      mode: config.challengeMode,
      verifyUrl: config.challengeVerifyUrl,
      token: (r) => body(r).challengeToken,
      remoteIp: sourceIp,
    }),
  )
  .use(
    rateLimitMiddleware<RateLimitSubjectInput>({
      store,
      rules: sendRules(config),
      input: (r) => ({ phoneNumber: body(r).phoneNumber, sourceIp: sourceIp(r) }),
      trusted: (r) => store.isTrusted(phoneSubject(keysFor((r.context as SendContext).hashKey), body(r).phoneNumber), Date.now()),
      skip: limitsAlreadyTaken,
    }),
  )
  .handler(async (event, context) => {
    const ctx = context as SendContext;
    const request = { event };
    const { body: answer, smsSent } = await sendOtp(
      { config, store, provider },
      {
        phoneNumber: body(request).phoneNumber,
        apiKey: ctx.apiKey,
        hashKey: ctx.hashKey,
        idempotencyKey: event.headers?.['idempotency-key'],
        keptCode: idempotentCode(context),
        // Leave the function time to answer (and API Gateway's 30 s) after the last provider attempt.
        deadline: ctx.getRemainingTimeInMillis ? Date.now() + ctx.getRemainingTimeInMillis() - 1500 : undefined,
      },
    );
    if (smsSent) count('OtpSent');
    if (smsSent && rulesTaken(context).includes('new-numbers-day')) count('NewNumberSent');
    return { statusCode: 201, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(answer) };
  });
