import { createHmac, randomUUID } from 'node:crypto';
import type { Config } from '../config';
import { logger, maskPhone } from '../log';
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
  signingKey: string;
  /** The client's Idempotency-Key, if it sent one (already validated). */
  idempotencyKey?: string | undefined;
  /** Epoch ms by which the provider must have answered (Lambda time left minus a margin). */
  deadline?: number | undefined;
}

export interface SendResponse {
  otpRequestId: string;
  expiresAt: string;
  resendAfterSeconds: number;
}

/** The number's pseudonym in the store (also how verify finds the record again). */
export const phoneSubject = (keys: Keys, phone: string): string => pseudonym(keys, 'phone', phone);

/** A UUID-shaped provider idempotency key derived from ours, so a retried action reuses it. */
const derivedProviderKey = (keys: Keys, phone: string, clientKey: string): string => {
  const h = createHmac('sha256', keys.subject).update(`provider-idempotency\0${phone}\0${clientKey}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
};

/**
 * Send: the limits were taken by the middleware before this runs. Store the new code (only its
 * keyed hash; it supersedes the number's previous code), then ask StartMessaging to deliver it.
 * The code is stored first so that whatever reaches the phone can be verified.
 */
export const sendOtp = async (deps: SendDeps, req: SendRequest): Promise<SendResponse> => {
  const { config, store, provider } = deps;
  const now = (deps.now ?? Date.now)();
  const keys = keysFor(req.signingKey);
  const phone = req.phoneNumber;

  const seed = req.idempotencyKey === undefined ? undefined : `${phone}\0${req.idempotencyKey}`;
  const code = generateCode(config.otpLength, keys, seed);
  const { otpRequestId, codeId } = sealRequestId(keys, phone);
  const expiresAt = now + config.otpTtlSeconds * 1000;

  await store.putOtp(phoneSubject(keys, phone), { codeId, codeHash: hashCode(keys, codeId, code), expiresAt, sentAt: now });

  const result = await provider.sendOtp({
    apiKey: req.apiKey,
    phoneNumber: phone,
    otp: code,
    idempotencyKey: req.idempotencyKey === undefined ? randomUUID() : derivedProviderKey(keys, phone, req.idempotencyKey),
    ...(config.appName ? { appName: config.appName } : {}),
    ...(config.templateId ? { templateId: config.templateId } : {}),
    ...(req.deadline ? { deadline: req.deadline } : {}),
  });
  logger.info('code sent', { phone: maskPhone(phone), providerOtpId: result.providerOtpId, providerTraceId: result.traceId, attempts: result.attempts });

  return { otpRequestId, expiresAt: new Date(expiresAt).toISOString(), resendAfterSeconds: config.sendCooldownSeconds };
};
