import type { Config } from '../config';
import { InvalidCode, OtpExpired, ServiceUnavailable, TooManyAttempts } from '../errors';
import { logger, maskPhone } from '../log';
import { countRateLimited } from '../metrics';
import { holdFor, MAX_WAIT_MS, realTime, sleepMs, takeWindowPatiently } from '../ratelimit/limiter';
import { verifyFailureRule } from '../ratelimit/rules';
import type { Store, WindowCounter } from '../store/types';
import { codeMatches } from './codes';
import { keysFor, pseudonym, type Keys } from './keys';
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
  /** The caller's address (requestContext.http.sourceIp): wrong codes are counted per client. */
  sourceIp: string | undefined;
}

export interface VerifyResponse {
  verified: true;
  token: string;
  tokenExpiresAt: string;
}

/**
 * A forged, tampered or foreign id has no record: it claims an attempt on a record that never
 * exists, so it costs exactly the DynamoDB requests of an expired, superseded or used id.
 */
const DEAD_ID = 'dead-id';
const decoyFor = (keys: Keys) => ({ subject: phoneSubject(keys, DEAD_ID), codeId: DEAD_ID, phone: undefined });

/** Whether a claim stamped `at` may belong to a parallel guess that still holds it (none: as if long ago). */
const racing = (at: number | undefined, roundTripMs: number): boolean => realTime() - (at ?? 0) < holdFor(roundTripMs);

/**
 * The code's claimed attempts once the guesses that hold one while they wait for their client's budget have
 * been judged or given theirs back: looked at with growing pauses until one is free, or until any such guess
 * (claimed at `since` or later) has answered. Undefined: the code is no longer current.
 */
const settledAttempts = async (store: Store, target: { subject: string; codeId: string }, max: number, since: number): Promise<number | undefined> => {
  const until = since + MAX_WAIT_MS + 500;
  for (let pause = 20; ; pause *= 2) {
    const attempts = await store.attemptsOf(target.subject, target.codeId).catch(() => undefined);
    if (attempts === undefined || attempts < max || realTime() >= until) return attempts;
    await sleepMs(Math.min(pause, until - realTime()));
  }
};

/**
 * Verify, exact under parallel guesses. Every guess first takes, atomically and in parallel (one
 * DynamoDB round trip): one attempt of the code (only while it is current, unexpired, unused and
 * under VERIFY_MAX_ATTEMPTS) and one unit of the client's hourly failure budget
 * (VERIFY_MAX_FAILURES_PER_IP_PER_HOUR; IPv6 by /64). Only a guess that got both is judged, so N
 * parallel guesses can never judge more than the budgets allow.
 *   - Over the client's budget: 429 too_many_attempts with Retry-After, the guess not judged and the
 *     code's attempt given back; the code stays alive for whoever holds it. There is no per-number
 *     failure budget: a stranger's wrong guesses on codes they requested never stop the owner.
 *   - A wrong guess keeps its failure unit. A right guess marks the code used (single use: one
 *     winner), gives its failure unit back and records the number as trusted (budget pools).
 */
export const verifyOtp = async (deps: VerifyDeps, req: VerifyRequest): Promise<VerifyResponse> => {
  const { config, store } = deps;
  const now = (deps.now ?? Date.now)();
  const keys = keysFor(req.hashKey);

  const opened = openRequestId(keys, req.otpRequestId);
  const target = opened === undefined ? decoyFor(keys) : { subject: phoneSubject(keys, opened.phone), codeId: opened.codeId, phone: opened.phone };

  const rule = verifyFailureRule(config);
  const client = rule.subject({ sourceIp: req.sourceIp });
  const window = Math.floor(now / 1000 / rule.windowSeconds);
  const failure: WindowCounter | undefined =
    client === undefined
      ? undefined
      : { rule: rule.name, subject: pseudonym(keys, 'rate-limit', client), window, limit: rule.limit, expiresAt: (window + 1) * rule.windowSeconds + 3600 };

  const startedAt = realTime();
  const [claimed, budget] = await Promise.allSettled([
    store.claimAttempt(target.subject, target.codeId, config.verifyMaxAttempts, now, startedAt),
    failure === undefined ? Promise.resolve(0) : store.takeWindow(failure, startedAt),
  ]);
  const roundTripMs = realTime() - startedAt;
  // Whether this guess holds one of its client's failure units (never without an address: there is no counter).
  let tookUnit = failure !== undefined && budget.status === 'fulfilled' && budget.value !== undefined;
  const giveBackUnit = () => (tookUnit ? store.giveBackWindow(failure!) : Promise.resolve());
  if (claimed.status === 'rejected' || budget.status === 'rejected') {
    // The attempt stays spent (safe side); a taken failure unit is given back.
    await giveBackUnit().catch(() => undefined);
    const cause = claimed.status === 'rejected' ? claimed.reason : (budget as PromiseRejectedResult).reason;
    throw cause instanceof ServiceUnavailable ? cause : new ServiceUnavailable('store', undefined, cause);
  }

  let claim = claimed.value;
  if (tookUnit && !claim.ok && claim.reason === 'exhausted' && racing(claim.lastClaimAt, roundTripMs)) {
    // The code's attempts may be held only by parallel guesses that wait for this client's budget (below) and
    // give theirs back if it is spent. Holding our unit would keep them waiting: give it back, wait until the
    // code has an attempt free (or they are all judged), then take again in order, the client's unit first.
    const unit = failure!; // tookUnit: there is a counter
    await store.giveBackWindow(unit);
    await settledAttempts(store, target, config.verifyMaxAttempts, claim.lastClaimAt!);
    tookUnit =
      (await store.takeWindow(unit, realTime())) !== undefined || (await takeWindowPatiently(store, unit, roundTripMs).catch(() => false));
    if (tookUnit) {
      claim = await store.claimAttempt(target.subject, target.codeId, config.verifyMaxAttempts, now, realTime()).catch(async (error: unknown) => {
        await store.giveBackWindow(unit).catch(() => undefined);
        throw error instanceof ServiceUnavailable ? error : new ServiceUnavailable('store', undefined, error);
      });
    }
  }
  if (!tookUnit && claim.ok && failure !== undefined) {
    // The window may be full only of units that parallel guesses hold for a moment (their claims were refused,
    // and they are giving back): wait for those, as the send limiter does (lib/ratelimit/limiter.ts), so a burst
    // judges exactly the budget. Only a refused guess on a live code waits, and only while the window's last
    // unit is recent.
    tookUnit = await takeWindowPatiently(store, failure, roundTripMs).catch(() => false);
  }
  if (!tookUnit && failure !== undefined) {
    // The client is over its failure budget: nothing is judged and the code keeps its attempt (a guess that
    // waited on a recent claim above holds none).
    if (claim.ok) await store.releaseAttempt(target.subject, target.codeId);
    const retryAfter = ((window + 1) * rule.windowSeconds * 1000 - now) / 1000;
    countRateLimited(rule.name);
    logger.info('verify refused by rate limit', { rules: [rule.name], retryAfterSeconds: Math.ceil(retryAfter) });
    throw new TooManyAttempts(retryAfter);
  }
  if (!claim.ok || target.phone === undefined) {
    await giveBackUnit();
    throw claim.ok || claim.reason === 'gone' ? new OtpExpired() : new TooManyAttempts();
  }

  if (!codeMatches(keys, target.codeId, req.otp, claim.codeHash)) {
    let attemptsRemaining = config.verifyMaxAttempts - claim.attempts;
    if (attemptsRemaining <= 0 && racing(claim.previousClaimAt, roundTripMs)) {
      // The count may include attempts that parallel guesses hold while they wait for the client's budget, and
      // give back if it refuses them: the code is dead only if they are judged. Count again once they settle.
      const settled = await settledAttempts(store, target, config.verifyMaxAttempts, claim.previousClaimAt!);
      if (settled !== undefined) attemptsRemaining = config.verifyMaxAttempts - settled;
    }
    logger.info('wrong code', { phone: maskPhone(target.phone), attemptsRemaining });
    if (attemptsRemaining <= 0) throw new TooManyAttempts();
    throw new InvalidCode(attemptsRemaining);
  }

  const trustedUntil = now + config.trustedNumberDays * 86_400_000;
  const [used] = await Promise.all([
    store.markUsed(target.subject, target.codeId, now),
    giveBackUnit(),
    // Best effort: a number not recorded as trusted only draws on the smaller pool next time.
    store.trust(target.subject, trustedUntil).catch((error: unknown) => logger.warn('could not record the number as trusted', { error })),
  ]);
  if (!used) throw new OtpExpired();

  const { token, expiresAt } = await signOtpToken(req.tokenKey, {
    phone: target.phone,
    otpRequestId: req.otpRequestId,
    nowSeconds: Math.floor(now / 1000),
    ttlSeconds: config.tokenTtlSeconds,
    issuer: config.tokenIssuer,
    audience: config.tokenAudience,
  });
  logger.info('code verified', { phone: maskPhone(target.phone) });
  return { verified: true, token, tokenExpiresAt: new Date(expiresAt * 1000).toISOString() };
};
