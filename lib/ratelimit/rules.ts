import { isIPv6 } from 'node:net';
import ipaddr from 'ipaddr.js';
import type { Config } from '../config';

/**
 * Rate-limit rules: the one list a deployer edits to add a limit (docs/rate-limits.md explains each).
 *
 * A rule names what it counts (`subject`, a raw identifier that the limiter turns into an HMAC
 * pseudonym before it reaches DynamoDB), how much, over what, and what a refusal means.
 *   - kind 'window': at most `limit` takes per fixed window of `windowSeconds` (UTC-aligned).
 *   - kind 'gap': at least `seconds` between two takes (a cooldown).
 * `refusal: 'unavailable'` answers 503 service_unavailable instead of 429 (a budget shared by
 * every caller is not the caller's fault). `pool: 'new-numbers'` marks a budget only numbers
 * that are not trusted draw on (API.md "Budgets").
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
  pool?: 'new-numbers';
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

/**
 * The client an IP rule counts: an IPv4 address as it is, an IPv6 address by its /64 (one
 * subscriber usually holds a whole /64, so counting single addresses would count nothing).
 * An IPv4-mapped address (::ffff:1.2.3.4, in either spelling) is that IPv4 client. Parsing is
 * ipaddr.js's: zone ids, `::` anywhere and an embedded dotted quad all count right.
 */
export const ipSubject = (ip: string | undefined): string | undefined => {
  // Stryker disable next-line ConditionalExpression: equivalent: isIPv6(undefined) is false, so undefined is returned either way.
  if (ip === undefined || !isIPv6(ip)) return ip || undefined;
  const address = ipaddr.IPv6.parse(ip);
  if (address.isIPv4MappedAddress()) return address.toIPv4Address().toString();
  return `${address.parts
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(':')}::/64`;
};

/** API.md's send limits and budgets, from the configuration. */
export const sendRules = (config: Config): RateLimitRule[] => {
  const rules: RateLimitRule[] = [
    { name: 'phone-hour', kind: 'window', limit: config.sendLimitPerPhonePerHour, windowSeconds: HOUR, subject: (r) => r.phoneNumber },
    { name: 'phone-day', kind: 'window', limit: config.sendLimitPerPhonePerDay, windowSeconds: DAY, subject: (r) => r.phoneNumber },
    { name: 'ip-hour', kind: 'window', limit: config.sendLimitPerIpPerHour, windowSeconds: HOUR, subject: (r) => ipSubject(r.sourceIp) },
    { name: 'global-day', kind: 'window', limit: config.sendBudgetPerDay, windowSeconds: DAY, subject: () => 'all', refusal: 'unavailable' },
    {
      name: 'new-numbers-day',
      kind: 'window',
      limit: config.sendBudgetNewNumbersPerDay,
      windowSeconds: DAY,
      subject: () => 'all',
      refusal: 'unavailable',
      pool: 'new-numbers',
    },
  ];
  if (config.sendCooldownSeconds > 0) {
    rules.unshift({ name: 'phone-cooldown', kind: 'gap', seconds: config.sendCooldownSeconds, subject: (r) => r.phoneNumber });
  }
  return rules;
};

/** Wrong codes per client (API.md: VERIFY_MAX_FAILURES_PER_IP_PER_HOUR), counted like a send rule. */
export const verifyFailureRule = (config: Config): WindowRule<{ sourceIp: string | undefined }> => ({
  name: 'verify-failures-ip-hour',
  kind: 'window',
  limit: config.verifyMaxFailuresPerIpPerHour,
  windowSeconds: HOUR,
  subject: (r) => ipSubject(r.sourceIp),
});
