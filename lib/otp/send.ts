import { createHmac, randomUUID } from 'node:crypto';
import type { Config } from '../config';
import { UpstreamTimeout, providerSentNothing } from '../errors';
import { logger, maskPhone } from '../log';
import { countUpstreamError, recordLatency } from '../metrics';
import type { StartMessagingClient } from '../provider/startmessaging';
import type { Store } from '../store/types';
import { generateCode, hashCode } from './codes';
import { keysFor, pseudonym, type Keys } from './keys';
import { sealRequestId } from './request-id';

export interface SendDeps {
  config: Config;
  store: Store;
  provider: StartMessagingClient;
  now?: () => number;
}

export interface SendRequest {
  /** Already judged by middleware/phone-number.ts. */
  phoneNumber: string;
  apiKey: string;
  /** The hash key (HASH_SECRET_ID, base64), from middleware/secrets.ts. */
  hashKey: string;
  /** The client's Idempotency-Key, if it sent one (already validated). */
  idempotencyKey?: string | undefined;
  /** The code the Idempotency-Key's record keeps (middleware/idempotency.ts), to re-deliver on a retry. */
  keptCode?: string | undefined;
  /** Epoch ms by which the provider must have answered (Lambda time left minus a margin). */
  deadline?: number | undefined;
}

export interface SendResponse {
  otpRequestId: string;
  expiresAt: string;
  resendAfterSeconds: number;
}

/** The number's pseudonym in the store (also how verify finds the record again). */
// Stryker disable next-line StringLiteral: equivalent: send and verify both derive the subject here, and no other pseudonym uses an empty namespace.
export const phoneSubject = (keys: Keys, phone: string): string => pseudonym(keys, 'phone', phone);

/**
 * A UUID-shaped provider idempotency key derived from ours and the code, so a retry that re-delivers the
 * kept code reuses it (the provider deduplicates), while a new code under the same client key (after our
 * record expired) is a new provider request and is delivered. The code cannot be recovered from it (HMAC).
 */
const derivedProviderKey = (keys: Keys, phone: string, clientKey: string, code: string): string => {
  const h = createHmac('sha256', keys.subject).update(`provider-idempotency\0${phone}\0${clientKey}\0${code}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
};

/**
 * Send, the whole use case. The layers before it have judged the number, answered idempotent
 * replays, checked the bot challenge and taken every rate limit (a refused send never gets here,
 * so it never replaces the code the person already has).
 *
 *   1. the code: a TEST_NUMBERS number's fixed one; for a retry with an Idempotency-Key, the code
 *      its record keeps (the first attempt may have delivered it); otherwise fresh from the CSPRNG;
 *   2. store only its keyed hash, superseding the number's previous code. Stored before it is sent,
 *      so that whatever reaches the phone verifies;
 *   3. ask StartMessaging to deliver it (a test number: nobody is asked);
 *   4. if the provider certainly sent nothing, put back the code it replaced (the rate-limit
 *      layer gives the limits back on the same errors).
 */
export const sendOtp = async (deps: SendDeps, req: SendRequest): Promise<{ body: SendResponse; smsSent: boolean }> => {
  const { config, store, provider } = deps;
  const now = (deps.now ?? Date.now)();
  const keys = keysFor(req.hashKey);
  const phone = req.phoneNumber;

  const testCode = config.testNumbers.get(phone);
  const code = testCode ?? req.keptCode ?? generateCode(config.otpLength);
  const { otpRequestId, codeId } = sealRequestId(keys, phone);
  const expiresAt = now + config.otpTtlSeconds * 1000;
  const subject = phoneSubject(keys, phone);
  const replaced = await store.putOtp(subject, { codeId, codeHash: hashCode(keys, codeId, code), expiresAt, sentAt: now });
  const body = { otpRequestId, expiresAt: new Date(expiresAt).toISOString(), resendAfterSeconds: config.sendCooldownSeconds };

  if (testCode !== undefined) {
    logger.info('test number: code stored, no SMS sent', { phone: maskPhone(phone) });
    return { body, smsSent: false };
  }
  try {
    await deliver(deps, {
      apiKey: req.apiKey,
      phoneNumber: phone,
      code,
      idempotencyKey: req.idempotencyKey === undefined ? randomUUID() : derivedProviderKey(keys, phone, req.idempotencyKey, code),
      deadline: req.deadline,
    });
  } catch (error) {
    // Best effort: if the undo fails, the newer (undelivered) code simply stays current.
    if (providerSentNothing(error)) {
      await store.restoreOtp(subject, codeId, replaced).catch((e: unknown) => logger.warn('could not restore the replaced code', { error: e }));
    }
    throw error;
  }
  return { body, smsSent: true };
};

const deliver = async (
  { config, provider }: Pick<SendDeps, 'config' | 'provider'>,
  m: { apiKey: string; phoneNumber: string; code: string; idempotencyKey: string; deadline: number | undefined },
): Promise<void> => {
  const providerStarted = Date.now();
  const result = await provider
    .sendOtp({
      apiKey: m.apiKey,
      phoneNumber: m.phoneNumber,
      otp: m.code,
      idempotencyKey: m.idempotencyKey,
      ...(config.appName ? { appName: config.appName } : {}),
      ...(config.templateId ? { templateId: config.templateId } : {}),
      ...(m.deadline ? { deadline: m.deadline } : {}),
    })
    .catch((error: unknown) => {
      // The errors middleware counts UpstreamError by its kind; a timeout has none there, yet it is the
      // failure the provider-error alarm most needs to see.
      if (error instanceof UpstreamTimeout) countUpstreamError('timeout');
      throw error;
    })
    .finally(() => recordLatency('ProviderLatency', Date.now() - providerStarted));
  logger.info('code sent', { phone: maskPhone(m.phoneNumber), providerOtpId: result.providerOtpId, providerTraceId: result.traceId, attempts: result.attempts });
};
