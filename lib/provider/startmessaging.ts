/**
 * StartMessaging client: the one place that knows the provider's wire format (shared/startmessaging.md).
 *
 * Every answer is mapped onto our closed error set (lib/errors.ts). Provider text never goes into an error's
 * message: it reaches logs only through `onAttempt` and the non-enumerable `providerDetail` of a thrown error,
 * with the API key and long digit runs (numbers, codes) removed.
 */
import { type OtpError, ProviderRateLimited, ServiceUnavailable, UpstreamError, UpstreamTimeout } from '../errors';

export interface SendOtpInput {
  apiKey: string;
  phoneNumber: string;
  otp: string;
  idempotencyKey: string;
  appName?: string;
  templateId?: string;
  /** absolute epoch ms by which we must have given up (Lambda remaining time minus a margin) */
  deadline?: number;
}

export interface SendOtpResult {
  providerOtpId: string | undefined;
  messageId: string | undefined;
  traceId: string | undefined;
  attempts: number;
}

export type AttemptOutcome =
  | 'sent' | 'rejected' | 'unauthorized' | 'wallet' | 'not_found' | 'conflict'
  | 'rate_limited' | 'server_error' | 'bad_response' | 'timeout' | 'connection';

export interface AttemptInfo {
  attempt: number;
  status?: number;
  outcome: AttemptOutcome;
  durationMs: number;
  /** Whether this outcome is one that may be retried (the deadline or the attempt count may still stop it). */
  retryable: boolean;
  /** Redacted and shortened: for logs only. */
  providerMessage?: string;
  providerCode?: string;
  traceId?: string;
}

/** What a thrown error carries, non-enumerably, for logs (`attempt` = attempts made, 0 if the deadline allowed none). */
export type ProviderDetail = Omit<AttemptInfo, 'durationMs' | 'retryable'>;

export interface StartMessagingClientOptions {
  baseUrl: string;
  timeoutMs: number;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  now?: () => number;
  /** Default 3, and never more: API.md promises at most three attempts. */
  maxAttempts?: number;
  onAttempt?: (info: AttemptInfo) => void;
}

/** Backoff before attempts 2 and 3: base × (1 + jitter), so at most 400 + 1200 ms, well under API.md's 3 s. */
const BACKOFF_BASE_MS = [200, 600] as const;
/** Codes of connection failures worth another try (the idempotency key makes a repeat safe). */
const TRANSIENT = new Set(['ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN',
  'ENETUNREACH', 'EHOSTUNREACH', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_CLOSED']);
/** A 403 about money, not about the key. "insufficient permissions/scope" is still a key problem. */
const WALLET = /balance|credit|wallet|fund|recharge|insufficient(?!\s*(permission|privilege|scope|access|right))/i;

type Json = Record<string, unknown>;
interface Failure {
  ok: false;
  outcome: AttemptOutcome;
  error: OtpError;
  retryable: boolean;
  status?: number;
  traceId?: string;
  providerCode?: string;
  providerMessage?: string;
}
type Attempt = { ok: true; status: number; result: Omit<SendOtpResult, 'attempts'> } | Failure;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const text = (v: unknown): string | undefined =>
  typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined;
const parseJson = (body: string): unknown => {
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
};

/** The three known error shapes: `message` (string or array), then `error.message`, then `error`. */
const describe = (json: unknown, raw: string): { message?: string; code?: string } => {
  if (!isObject(json)) return { message: raw.replace(/<[^>]*>/g, ' ') || undefined };
  const err = json.error;
  const message = Array.isArray(json.message) ? json.message.map(String).join('; ') : text(json.message);
  return {
    message: message ?? (isObject(err) ? text(err.message) : text(err)),
    code: (isObject(err) ? text(err.code) : undefined) ?? text(json.code),
  };
};

/** `Retry-After` as delay-seconds or an HTTP date; 1 s when absent or unreadable (RateLimited rounds up to ≥ 1). */
const retryAfterSeconds = (header: string | null, now: number): number => {
  const value = header?.trim() ?? '';
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value);
  const at = value === '' ? NaN : Date.parse(value);
  return Number.isNaN(at) ? 1 : (at - now) / 1000;
};

/** Undici hides the useful code one or two `cause`s deep (AggregateError for dual-stack connects). */
const errorCode = (err: unknown): string | undefined => {
  for (let e = err, depth = 0; isObject(e) && depth < 4; depth++) {
    if (typeof e.code === 'string') return e.code;
    e = e.cause ?? (Array.isArray(e.errors) ? e.errors[0] : undefined);
  }
  return undefined;
};

/** Log text must not carry the key, a phone number or a code, whatever the provider echoes back. */
const redactFor = (s: string | undefined, apiKey: string): string | undefined => {
  if (s === undefined) return undefined;
  const keyless = apiKey ? s.split(apiKey).join('[key]') : s;
  return keyless.replace(/\+?\d{4,}/g, '[digits]').replace(/\s+/g, ' ').trim().slice(0, 200) || undefined;
};

/** The log detail attached to a thrown error; undefined for errors this client did not throw. */
export const providerDetail = (error: unknown): ProviderDetail | undefined =>
  isObject(error) ? (error.providerDetail as ProviderDetail | undefined) : undefined;

export const createStartMessagingClient = (options: StartMessagingClientOptions) => {
  const doFetch = options.fetch ?? ((...args: Parameters<typeof fetch>) => fetch(...args));
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const random = options.random ?? Math.random;
  const now = options.now ?? Date.now;
  const maxAttempts = Math.min(3, Math.max(1, options.maxAttempts ?? 3));
  const url = `${options.baseUrl.replace(/\/+$/, '')}/otp/send`;

  const classify = (status: number, headers: Headers, raw: string, redact: (s?: string) => string | undefined): Attempt => {
    const json = parseJson(raw);
    const traceId = isObject(json) ? text(json.requestId) : undefined;
    const { message, code } = describe(json, raw);
    const fail = (outcome: AttemptOutcome, error: OtpError, retryable = false): Attempt =>
      ({ ok: false, outcome, error, retryable, status, traceId, providerCode: redact(code), providerMessage: redact(message) });

    if (status >= 200 && status < 300) {
      if (!isObject(json)) return fail('bad_response', new UpstreamError('bad_response', status));
      if (json.success === false) return fail('rejected', new UpstreamError('rejected', status));
      const data = isObject(json.data) ? json.data : {};
      // The top-level requestId is only a trace id; the OTP id lives under data.
      const providerOtpId = text(data.otpRequestId) ?? text(data.requestId);
      return { ok: true, status, result: { providerOtpId, messageId: text(data.messageId), traceId } };
    }
    if (status === 429) return fail('rate_limited', new ProviderRateLimited(retryAfterSeconds(headers.get('retry-after'), now())));
    if (status >= 500 && status < 600) return fail('server_error', new UpstreamError('server_error', status), true);
    if (status === 402 || (status === 403 && WALLET.test(`${message ?? ''} ${code ?? ''}`))) {
      return fail('wallet', new ServiceUnavailable('wallet'));
    }
    if (status === 401 || status === 403) return fail('unauthorized', new UpstreamError('unauthorized', status));
    if (status === 404) return fail('not_found', new UpstreamError('not_found', status));
    if (status === 409) return fail('conflict', new UpstreamError('conflict', status));
    if (status >= 400 && status < 500) return fail('rejected', new UpstreamError('rejected', status));
    return fail('bad_response', new UpstreamError('bad_response', status)); // 1xx/3xx: not an answer we understand
  };

  const sendOtp = async (input: SendOtpInput): Promise<SendOtpResult> => {
    const redact = (s?: string) => redactFor(s, input.apiKey);
    const variables: Json = { otp: input.otp, ...(input.appName ? { appName: input.appName } : {}) };
    const body = JSON.stringify({
      phoneNumber: input.phoneNumber, variables, ...(input.templateId ? { templateId: input.templateId } : {}),
      idempotencyKey: input.idempotencyKey,
    });
    // The docs disagree on where the idempotency key goes: body and both headers cover every variant.
    const headers = { 'X-API-Key': input.apiKey, 'Content-Type': 'application/json', Accept: 'application/json',
      'Idempotency-Key': input.idempotencyKey, 'X-Idempotency-Key': input.idempotencyKey };

    const attemptOnce = async (budgetMs: number): Promise<Attempt> => {
      // One timer for the whole exchange: a provider that sends headers and then stalls the body is a timeout too.
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), budgetMs);
      try {
        // redirect 'manual': following one would resend X-API-Key to wherever the Location points.
        const res = await doFetch(url, { method: 'POST', headers, body, signal: controller.signal, redirect: 'manual' });
        return classify(res.status, res.headers, await res.text(), redact);
      } catch (err) {
        if (controller.signal.aborted) return { ok: false, outcome: 'timeout', error: new UpstreamTimeout(), retryable: true };
        // Keep only a code and the cause's message, redacted: e.g. a header-validation message quotes the key.
        // Anything that is not a known transient socket failure (bad URL, bad header, TLS) would fail again.
        // Duck-typed, not instanceof: fetch's errors may come from another realm (jest's vm, a bundled undici).
        const code = errorCode(err) ?? (isObject(err) ? text(err.name) : undefined);
        const cause = isObject(err) && isObject(err.cause) ? text(err.cause.message) : undefined;
        return { ok: false, outcome: 'connection', error: new UpstreamError('connection'), retryable: TRANSIENT.has(code ?? ''),
          providerCode: code, providerMessage: redact(cause) };
      } finally {
        clearTimeout(timer);
      }
    };

    const report = (attempt: number, a: Attempt, durationMs: number): void => {
      const info: AttemptInfo = a.ok
        ? { attempt, status: a.status, outcome: 'sent', durationMs, retryable: false, traceId: a.result.traceId }
        : { attempt, status: a.status, outcome: a.outcome, durationMs, retryable: a.retryable, traceId: a.traceId,
            providerCode: a.providerCode, providerMessage: a.providerMessage };
      try {
        options.onAttempt?.(info);
      } catch {
        // A broken logger must not turn a delivered code into a failure.
      }
    };

    const remaining = () => (input.deadline === undefined ? Infinity : input.deadline - now());
    let last: Failure | undefined;
    let attempts = 0;
    while (attempts < maxAttempts) {
      if (attempts > 0) {
        const delay = BACKOFF_BASE_MS[attempts - 1]! * (1 + random());
        if (delay >= remaining()) break; // sleeping into the deadline would only delay the same answer
        await sleep(delay);
      }
      const budget = Math.min(options.timeoutMs, remaining());
      if (budget <= 0) break;
      attempts += 1;
      const started = now();
      const outcome = await attemptOnce(budget);
      report(attempts, outcome, now() - started);
      if (outcome.ok) return { ...outcome.result, attempts };
      last = outcome;
      if (!outcome.retryable) break;
    }

    // No attempt fitted before the deadline: to the caller that is the provider not answering in time.
    const failure: Failure = last ?? { ok: false, outcome: 'timeout', error: new UpstreamTimeout(), retryable: false };
    const detail: ProviderDetail = { attempt: attempts, outcome: failure.outcome, status: failure.status, traceId: failure.traceId,
      providerCode: failure.providerCode, providerMessage: failure.providerMessage };
    Object.defineProperty(failure.error, 'providerDetail', { value: detail, enumerable: false });
    throw failure.error;
  };

  return { sendOtp };
};

export type StartMessagingClient = ReturnType<typeof createStartMessagingClient>;
