import type { Config } from '../config';
import { InvalidCode, OtpExpired, ServiceUnavailable, TooManyAttempts } from '../errors';
import { logger, maskPhone } from '../log';
import { verifyFailureRule } from '../ratelimit/rules';
import type { Store, WindowCounter } from '../store/types';
import { codeMatches } from './codes';
import { keysFor, pseudonym } from './keys';
import { openRequestId } from './request-id';
import { phoneSubject } from './send';
import { signOtpToken } from './token';

export interface VerifyDeps {
  config: Config;
  store: Store;
  now?: () => number;
}

export interface VerifyRequest {
  otpRequestId: string;
  otp: string;
  /** The hash key (HASH_SECRET_ID, base64) and the token key secret (parsed JSON), from middleware/secrets.ts. */
  hashKey: string;
  tokenKey: unknown;
}

export interface VerifyResponse {
  verified: true;
  token: string;
  tokenExpiresAt: string;
}

/**
 * Verify, exact under parallel guesses. Every guess first takes, atomically and in parallel (one
 * DynamoDB round trip): one attempt of the code (only while it is current, unexpired, unused and
 * under VERIFY_MAX_ATTEMPTS) and one unit of the number's hourly failure budget. Only a guess that
 * got both is judged, so N parallel guesses can never judge more than the budgets allow. A right
 * guess then marks the code used (single use: one winner) and gives its failure unit back.
 */
export const verifyOtp = async (deps: VerifyDeps, req: VerifyRequest): Promise<VerifyResponse> => {
  const { config, store } = deps;
  const now = (deps.now ?? Date.now)();
  const keys = keysFor(req.hashKey);

  // Unknown, tampered and foreign ids are answered exactly like expired ones.
  const opened = openRequestId(keys, req.otpRequestId);
  if (opened === undefined) throw new OtpExpired();
  const subject = phoneSubject(keys, opened.phone);

  const rule = verifyFailureRule(config);
  const window = Math.floor(now / 1000 / rule.windowSeconds);
  const failure: WindowCounter = {
    rule: rule.name,
    subject: pseudonym(keys, 'rate-limit', opened.phone),
    window,
    limit: rule.limit,
    expiresAt: (window + 1) * rule.windowSeconds + 3600,
  };

  const [claimed, budget] = await Promise.allSettled([
    store.claimAttempt(subject, opened.codeId, config.verifyMaxAttempts, now),
    store.takeWindow(failure),
  ]);
  if (claimed.status === 'rejected' || budget.status === 'rejected') {
    // The attempt stays spent (safe side); a taken failure unit is given back.
    if (budget.status === 'fulfilled' && budget.value !== undefined) await store.giveBackWindow(failure).catch(() => undefined);
    const cause = claimed.status === 'rejected' ? claimed.reason : (budget as PromiseRejectedResult).reason;
    throw cause instanceof ServiceUnavailable ? cause : new ServiceUnavailable('store', undefined, cause);
  }

  const claim = claimed.value;
  if (!claim.ok) {
    if (budget.value !== undefined) await store.giveBackWindow(failure);
    throw claim.reason === 'gone' ? new OtpExpired() : new TooManyAttempts();
  }
  if (budget.value === undefined) {
    // The number's budget across codes is spent: this code is dead too.
    await store.exhaust(subject, opened.codeId, config.verifyMaxAttempts);
    logger.info('verify refused by rate limit', { rules: [rule.name] });
    throw new TooManyAttempts();
  }

  if (!codeMatches(keys, opened.codeId, req.otp, claim.codeHash)) {
    // Whichever budget runs out first: the code's, or the number's across codes.
    const attemptsRemaining = Math.min(config.verifyMaxAttempts - claim.attempts, failure.limit - budget.value);
    logger.info('wrong code', { phone: maskPhone(opened.phone), attemptsRemaining });
    if (attemptsRemaining <= 0) throw new TooManyAttempts();
    throw new InvalidCode(attemptsRemaining);
  }

  const [used] = await Promise.all([store.markUsed(subject, opened.codeId, now), store.giveBackWindow(failure)]);
  if (!used) throw new OtpExpired();

  const { token, expiresAt } = await signOtpToken(req.tokenKey, {
    phone: opened.phone,
    otpRequestId: req.otpRequestId,
    nowSeconds: Math.floor(now / 1000),
    ttlSeconds: config.tokenTtlSeconds,
    issuer: config.tokenIssuer,
    audience: config.tokenAudience,
  });
  logger.info('code verified', { phone: maskPhone(opened.phone) });
  return { verified: true, token, tokenExpiresAt: new Date(expiresAt * 1000).toISOString() };
};
