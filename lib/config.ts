/**
 * The one place that reads the environment (API.md, "Configuration").
 * Read once per cold start; an invalid value throws a message naming the variable,
 * so a bad deploy fails at init instead of misbehaving per request.
 */
import { ASSIGNED_CALLING_CODES } from './calling-codes';

export interface Config {
  startMessagingBaseUrl: string;
  startMessagingTimeoutMs: number;
  /** Secret ids (API.md "Keys"): one secret per purpose; each function fetches only those it uses. */
  apiKeySecretId: string;
  hashSecretId: string;
  tokenKeySecretId: string;
  table: string;
  allowedCountryCodes: readonly string[];
  otpLength: number;
  otpTtlSeconds: number;
  verifyMaxAttempts: number;
  /** Wrong codes per client IP (IPv6: per /64) per UTC hour, across numbers. */
  verifyMaxFailuresPerIpPerHour: number;
  sendCooldownSeconds: number;
  sendLimitPerPhonePerHour: number;
  sendLimitPerPhonePerDay: number;
  sendLimitPerIpPerHour: number;
  sendBudgetPerDay: number;
  /** The part of the daily budget numbers not trusted (not verified within trustedNumberDays) may draw on. */
  sendBudgetNewNumbersPerDay: number;
  trustedNumberDays: number;
  challengeProvider: ChallengeProvider;
  challengeMode: 'enforce' | 'monitor';
  challengeSecretId: string;
  /** The provider's siteverify endpoint (its public one unless CHALLENGE_VERIFY_URL says otherwise). */
  challengeVerifyUrl: string;
  /** TEST_NUMBERS: number → fixed code; such a send calls no provider (never in the prod stage). */
  testNumbers: ReadonlyMap<string, string>;
  tokenTtlSeconds: number;
  /** The token's `iss` and `aud` claims; a checkout backend requires both. */
  tokenIssuer: string;
  tokenAudience: string;
  corsAllowedOrigins: readonly string[];
  /** Optional extras for the provider request (not in API.md's table; documented in the README). */
  appName: string | undefined;
  templateId: string | undefined;
  /** How long a fetched secret is trusted before it is fetched again (rotation pick-up). */
  secretsCacheSeconds: number;
  /** ORIGIN_VERIFY_SECRET_ID: set only behind the CloudFront edge (middleware/origin-verify.ts); undefined otherwise. */
  originVerifySecretId: string | undefined;
}

type Env = Record<string, string | undefined>;

export type ChallengeProvider = 'none' | 'turnstile' | 'hcaptcha' | 'recaptcha';
/** Each provider's public server-side verification endpoint. */
export const SITEVERIFY_URLS: Record<Exclude<ChallengeProvider, 'none'>, string> = {
  turnstile: 'https://challenges.cloudflare.com/turnstile/v0/siteverify',
  hcaptcha: 'https://api.hcaptcha.com/siteverify',
  recaptcha: 'https://www.google.com/recaptcha/api/siteverify',
};

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const str = (env: Env, name: string, fallback: string): string => {
  const v = env[name];
  return v === undefined || v.trim() === '' ? fallback : v.trim();
};

const int = (env: Env, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const s = raw.trim();
  if (!/^\d+$/.test(s) || Number(s) < min || Number(s) > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `from ${min} to ${max}`;
    throw new ConfigError(`${name} must be a whole number ${range}, got "${raw}"`);
  }
  return Number(s);
};

const list = (env: Env, name: string, fallback: string): string[] =>
  str(env, name, fallback)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');

const url = (env: Env, name: string, fallback: string): string => {
  const v = str(env, name, fallback);
  let parsed: URL;
  try {
    parsed = new URL(v);
  } catch {
    throw new ConfigError(`${name} must be an http(s) URL, got "${v}"`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new ConfigError(`${name} must be an http(s) URL, got "${v}"`);
  }
  return v.replace(/\/+$/, '');
};

const oneOf = <T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T => {
  const v = str(env, name, fallback);
  if (!(allowed as readonly string[]).includes(v)) throw new ConfigError(`${name} must be one of ${allowed.join(', ')}, got "${v}"`);
  return v as T;
};

/** `+919876543210:123456,+919876543211:654321`: numbers that get a fixed code and no SMS (staging tests). */
const testNumbers = (env: Env, otpLength: number): Map<string, string> => {
  const out = new Map<string, string>();
  for (const pair of list(env, 'TEST_NUMBERS', '')) {
    const m = /^(\+[1-9]\d{6,14}):(\d+)$/.exec(pair);
    if (m === null || m[2]!.length !== otpLength) {
      throw new ConfigError(`TEST_NUMBERS must be comma-separated "+E164:code" pairs with ${otpLength}-digit codes, got "${pair.replace(/\d{4}(?=\d{4}(:|$))/, '****')}"`);
    }
    out.set(m[1]!, m[2]!);
  }
  if (out.size > 0 && str(env, 'STAGE', 'dev') === 'prod') {
    throw new ConfigError('TEST_NUMBERS must be empty in the prod stage: a test number gets a fixed code and no SMS');
  }
  return out;
};

// A claim value a backend types into its verifier: printable ASCII, no spaces, at most 200 characters.
const claim = (env: Env, name: string, fallback: string): string => {
  const v = str(env, name, fallback);
  if (!/^[\x21-\x7e]{1,200}$/.test(v)) throw new ConfigError(`${name} must be 1 to 200 printable characters without spaces, got "${v}"`);
  return v;
};

export const loadConfig = (env: Env = process.env): Config => {
  const allowedCountryCodes = list(env, 'ALLOWED_COUNTRY_CODES', '91');
  for (const cc of allowedCountryCodes) {
    if (!/^[1-9]\d{0,2}$/.test(cc)) {
      throw new ConfigError(`ALLOWED_COUNTRY_CODES must be comma-separated calling codes like "91,65", got "${cc}"`);
    }
  }
  for (const cc of allowedCountryCodes) {
    if (!ASSIGNED_CALLING_CODES.has(cc)) {
      throw new ConfigError(`ALLOWED_COUNTRY_CODES must name assigned country calling codes (91 for India), got "${cc}", which is not one`);
    }
  }
  if (allowedCountryCodes.length === 0) {
    throw new ConfigError('ALLOWED_COUNTRY_CODES must name at least one calling code');
  }
  const corsAllowedOrigins = list(env, 'CORS_ALLOWED_ORIGINS', '');
  for (const origin of corsAllowedOrigins) {
    if (origin !== '*' && !/^https?:\/\/[^/\s]+$/.test(origin)) {
      throw new ConfigError(`CORS_ALLOWED_ORIGINS must be origins like "https://shop.example", got "${origin}"`);
    }
  }
  const otpLength = int(env, 'OTP_LENGTH', 6, 4, 8);
  const sendBudgetPerDay = int(env, 'SEND_BUDGET_PER_DAY', 10000, 1);
  const challengeProvider = oneOf(env, 'CHALLENGE_PROVIDER', ['none', 'turnstile', 'hcaptcha', 'recaptcha'] as const, 'none');
  const templateId = env.STARTMESSAGING_TEMPLATE_ID?.trim() || undefined;
  const appName = env.STARTMESSAGING_APP_NAME?.trim() || undefined;
  return {
    startMessagingBaseUrl: url(env, 'STARTMESSAGING_BASE_URL', 'https://api.startmessaging.com'),
    startMessagingTimeoutMs: int(env, 'STARTMESSAGING_TIMEOUT_MS', 5000, 100, 20000),
    apiKeySecretId: str(env, 'API_KEY_SECRET_ID', 'sm/api-key'),
    hashSecretId: str(env, 'HASH_SECRET_ID', 'otp/hash-key'),
    tokenKeySecretId: str(env, 'TOKEN_KEY_SECRET_ID', 'otp/token-key'),
    table: str(env, 'OTP_TABLE', `otp-${str(env, 'STAGE', 'dev')}`),
    allowedCountryCodes,
    otpLength,
    otpTtlSeconds: int(env, 'OTP_TTL_SECONDS', 300, 1, 600),
    verifyMaxAttempts: int(env, 'VERIFY_MAX_ATTEMPTS', 3, 1),
    verifyMaxFailuresPerIpPerHour: int(env, 'VERIFY_MAX_FAILURES_PER_IP_PER_HOUR', 30, 1),
    sendCooldownSeconds: int(env, 'SEND_COOLDOWN_SECONDS', 60, 0),
    sendLimitPerPhonePerHour: int(env, 'SEND_LIMIT_PER_PHONE_PER_HOUR', 5, 1),
    sendLimitPerPhonePerDay: int(env, 'SEND_LIMIT_PER_PHONE_PER_DAY', 10, 1),
    sendLimitPerIpPerHour: int(env, 'SEND_LIMIT_PER_IP_PER_HOUR', 20, 1),
    sendBudgetPerDay,
    sendBudgetNewNumbersPerDay: int(env, 'SEND_BUDGET_NEW_NUMBERS_PER_DAY', Math.max(1, Math.floor(0.6 * sendBudgetPerDay)), 1),
    trustedNumberDays: int(env, 'TRUSTED_NUMBER_DAYS', 90, 1),
    challengeProvider,
    challengeMode: oneOf(env, 'CHALLENGE_MODE', ['enforce', 'monitor'] as const, 'enforce'),
    challengeSecretId: str(env, 'CHALLENGE_SECRET_ID', 'otp/challenge-secret'),
    challengeVerifyUrl: challengeProvider === 'none' ? '' : url(env, 'CHALLENGE_VERIFY_URL', SITEVERIFY_URLS[challengeProvider]),
    testNumbers: testNumbers(env, otpLength),
    tokenTtlSeconds: int(env, 'TOKEN_TTL_SECONDS', 600, 1),
    tokenIssuer: claim(env, 'TOKEN_ISSUER', 'otp-service'),
    tokenAudience: claim(env, 'TOKEN_AUDIENCE', 'checkout'),
    corsAllowedOrigins,
    appName,
    templateId,
    secretsCacheSeconds: int(env, 'SECRETS_CACHE_SECONDS', 300, 1),
    originVerifySecretId: env.ORIGIN_VERIFY_SECRET_ID?.trim() || undefined,
  };
};
