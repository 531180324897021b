import { createHmac, randomUUID } from 'node:crypto';
import type { Config } from '../config';
import { UpstreamTimeout } from '../errors';
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

/** A code stored and ready to deliver; `undo` puts back the code it replaced. */
export interface PreparedSend {
  phoneNumber: string;
  code: string;
  otpRequestId: string;
  expiresAt: number;
  providerIdempotencyKey: string;
  undo: () => Promise<void>;
}

/**
 * Send, step 1: store the new code (only its keyed hash; it supersedes the number's previous code).
 * The code is stored before it is sent so that whatever reaches the phone can be verified. The
 * rate-limit middleware makes this write only once every limit is taken (a refused send writes
 * nothing, so it never kills the code the person already has) and calls `undo` when the provider
 * certainly sent nothing.
 */
export const prepareSend = async (deps: Pick<SendDeps, 'config' | 'store' | 'now'>, req: Omit<SendRequest, 'apiKey' | 'deadline'>): Promise<PreparedSend> => {
  const { config, store } = deps;
  const now = (deps.now ?? Date.now)();
  const keys = keysFor(req.hashKey);
  const phone = req.phoneNumber;

  const seed = req.idempotencyKey === undefined ? undefined : `${phone}\0${req.idempotencyKey}`;
  const code = generateCode(config.otpLength, keys, seed);
  const { otpRequestId, codeId } = sealRequestId(keys, phone);
  const expiresAt = now + config.otpTtlSeconds * 1000;
  const subject = phoneSubject(keys, phone);

  const replaced = await store.putOtp(subject, { codeId, codeHash: hashCode(keys, codeId, code), expiresAt, sentAt: now });
  return {
    phoneNumber: phone,
    code,
    otpRequestId,
    expiresAt,
    providerIdempotencyKey: req.idempotencyKey === undefined ? randomUUID() : derivedProviderKey(keys, phone, req.idempotencyKey),
    undo: () => store.restoreOtp(subject, codeId, replaced),
  };
};

/** Send, step 2 (the limits are taken and the code stored): ask StartMessaging to deliver it. */
export const deliverSend = async (
  deps: Pick<SendDeps, 'config' | 'provider'>,
  prepared: PreparedSend,
  req: Pick<SendRequest, 'apiKey' | 'deadline'>,
): Promise<SendResponse> => {
  const { config, provider } = deps;
  const providerStarted = Date.now();
  const result = await provider
    .sendOtp({
      apiKey: req.apiKey,
      phoneNumber: prepared.phoneNumber,
      otp: prepared.code,
      idempotencyKey: prepared.providerIdempotencyKey,
      ...(config.appName ? { appName: config.appName } : {}),
      ...(config.templateId ? { templateId: config.templateId } : {}),
      ...(req.deadline ? { deadline: req.deadline } : {}),
    })
    .catch((error: unknown) => {
      // The errors middleware counts UpstreamError by its kind; a timeout has none there, yet it is the
      // failure the provider-error alarm most needs to see.
      if (error instanceof UpstreamTimeout) countUpstreamError('timeout');
      throw error;
    })
    .finally(() => recordLatency('ProviderLatency', Date.now() - providerStarted));
  logger.info('code sent', { phone: maskPhone(prepared.phoneNumber), providerOtpId: result.providerOtpId, providerTraceId: result.traceId, attempts: result.attempts });
  return { otpRequestId: prepared.otpRequestId, expiresAt: new Date(prepared.expiresAt).toISOString(), resendAfterSeconds: config.sendCooldownSeconds };
};
