import type { Config } from '../config';

/**
 * Rate-limit rules: the one list a deployer edits to add a limit.
 *
 * A rule names what it counts (`subject`, a raw identifier that the middleware turns into an
 * HMAC pseudonym before it reaches DynamoDB), how much, over what, and what a refusal means.
 *   - kind 'window': at most `limit` takes per fixed window of `windowSeconds` (UTC-aligned).
 *   - kind 'gap': at least `seconds` between two takes (a cooldown).
 * `refusal: 'unavailable'` answers 503 service_unavailable instead of 429 (a budget shared by
 * every caller is not the caller's fault).
 */
export interface RateLimitSubjectInput {
  phoneNumber: string;
  sourceIp: string | undefined;
}

interface RuleBase<I> {
  name: string;
  /** undefined: the rule does not apply to this request. */
  subject: (input: I) => string | undefined;
  refusal?: 'rate_limited' | 'unavailable';
}
export interface WindowRule<I = RateLimitSubjectInput> extends RuleBase<I> {
  kind: 'window';
  limit: number;
  windowSeconds: number;
}
export interface GapRule<I = RateLimitSubjectInput> extends RuleBase<I> {
  kind: 'gap';
  seconds: number;
}
export type RateLimitRule<I = RateLimitSubjectInput> = WindowRule<I> | GapRule<I>;

const HOUR = 3600;
const DAY = 86400;

/** API.md's send limits, from the configuration. */
export const sendRules = (config: Config): RateLimitRule[] => {
  const rules: RateLimitRule[] = [
    { name: 'phone-hour', kind: 'window', limit: config.sendLimitPerPhonePerHour, windowSeconds: HOUR, subject: (r) => r.phoneNumber },
    { name: 'phone-day', kind: 'window', limit: config.sendLimitPerPhonePerDay, windowSeconds: DAY, subject: (r) => r.phoneNumber },
    { name: 'ip-hour', kind: 'window', limit: config.sendLimitPerIpPerHour, windowSeconds: HOUR, subject: (r) => r.sourceIp },
    { name: 'global-day', kind: 'window', limit: config.sendBudgetPerDay, windowSeconds: DAY, subject: () => 'all', refusal: 'unavailable' },
  ];
  if (config.sendCooldownSeconds > 0) {
    rules.unshift({ name: 'phone-cooldown', kind: 'gap', seconds: config.sendCooldownSeconds, subject: (r) => r.phoneNumber });
  }
  return rules;
};

/** The per-number verify failure budget (API.md: VERIFY_MAX_FAILURES_PER_PHONE_PER_HOUR), counted like a send rule. */
export const verifyFailureRule = (config: Config): WindowRule<{ phoneNumber: string }> => ({
  name: 'verify-failures-phone-hour',
  kind: 'window',
  limit: config.verifyMaxFailuresPerPhonePerHour,
  windowSeconds: HOUR,
  subject: (r) => r.phoneNumber,
});
