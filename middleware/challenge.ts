import type { MiddlewareObj, Request } from '@middy/core';
import type { ChallengeProvider } from '../lib/config';
import { ChallengeFailed } from '../lib/errors';
import { logger } from '../lib/log';
import { count } from '../lib/metrics';
import { siteverify } from '../lib/challenge/siteverify';

/**
 * API.md "Bot challenge", as its own layer: after idempotent replays are answered (a replay needs
 * no new token, and tokens are single-use) and before any limit is spent.
 *
 * enforce: a missing or refused token is 403 challenge_failed. monitor: the send goes on; the
 * outcome is logged and counted all the same. The provider unreachable, slow (timeoutMs) or
 * unreadable: the send goes on in both modes (every other limit still applies), so the provider's
 * outage never locks every customer out. The secret is the secrets layer's `challengeSecret`.
 */
export interface ChallengeOptions {
  provider: ChallengeProvider;
  mode: 'enforce' | 'monitor';
  verifyUrl: string;
  /** The token the page sent (the validated body's `challengeToken`). */
  token: (request: Request) => string | undefined;
  remoteIp: (request: Request) => string | undefined;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export interface ChallengeContext {
  challengeSecret: string;
}

const OPTION_KEYS = new Set(['provider', 'mode', 'verifyUrl', 'token', 'remoteIp', 'timeoutMs', 'fetch']);

export const challengeMiddleware = (opts: ChallengeOptions): MiddlewareObj => {
  for (const key of Object.keys(opts)) if (!OPTION_KEYS.has(key)) throw new TypeError(`challengeMiddleware: unknown option "${key}"`);
  // No provider configured: the layer stays in the pipeline (Middy needs a function) and does nothing.
  if (opts.provider === 'none') return { before: function challengeMiddlewareOff() {} };
  if (opts.mode !== 'enforce' && opts.mode !== 'monitor') throw new TypeError('challengeMiddleware: mode must be enforce or monitor');
  if (!/^https?:\/\//.test(opts.verifyUrl)) throw new TypeError('challengeMiddleware: verifyUrl must be an http(s) URL');
  const { provider, mode, verifyUrl } = opts;
  const timeoutMs = opts.timeoutMs ?? 2000;

  const refuse = (why: string, errorCodes: string[] = []): void => {
    count('ChallengeFailed');
    logger.info('bot challenge failed', { provider, mode, why, errorCodes });
    if (mode === 'enforce') throw new ChallengeFailed();
  };

  const challengeMiddlewareBefore = async (request: Request): Promise<void> => {
    const token = opts.token(request);
    if (token === undefined || token === '') return refuse('no token');
    const secret = (request.context as unknown as Partial<ChallengeContext>).challengeSecret;
    const result =
      typeof secret === 'string' && secret !== ''
        ? await siteverify({ url: verifyUrl, secret, token, remoteIp: opts.remoteIp(request), timeoutMs, ...(opts.fetch ? { fetch: opts.fetch } : {}) })
        : ({ outcome: 'unavailable', reason: 'no secret' } as const);
    if (result.outcome === 'passed') {
      count('ChallengePassed');
      return;
    }
    if (result.outcome === 'failed') return refuse('refused by the provider', result.errorCodes);
    count('ChallengeUnavailable');
    logger.warn('bot challenge could not be checked; the send goes on', { provider, reason: result.reason });
  };

  return { before: challengeMiddlewareBefore };
};
