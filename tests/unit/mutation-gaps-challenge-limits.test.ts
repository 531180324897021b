/**
 * Gaps a mutation run found in the bot challenge, rate-limit and phone-number layers (docs/mutation.md), stated as
 * what the client gets, what an operator reads in the logs and metrics, and what the provider stand-in received.
 * Real Middy pipelines (http-error-handler + the errors layer, as every handler has them), the local siteverify
 * stand-in over real HTTP (local/siteverify.ts) and the DynamoDB adapter on dynalite:
 * - challenge: an empty token is no token (never sent to the provider); no challenge secret means nothing to ask
 *   the provider with (fail open, "no secret"); the 2 s default timeout and a shorter `timeoutMs`; a given `fetch`
 *   is the one used; verifyUrl must *start* with http(s)://; what each outcome logs;
 * - rate limit: a request already charged (`skip`) draws on no rule and survives a provider refusal; the give-back
 *   is logged by rule name; `holdMs: 0` waits for nobody; a trusted number's answer waits for its pool unit to be
 *   back; rule kinds; `rulesTaken` without the layer;
 * - a cold start accepts every documented option of both layers; phone-number's cold-start error names the setting.
 */
import middy from '@middy/core';
import type { Request } from '@middy/core';
import httpErrorHandler from '@middy/http-error-handler';
import { UpstreamError } from '../../lib/errors';
import { logger } from '../../lib/log';
import { metrics } from '../../lib/metrics';
import type { RateLimitRule, RateLimitSubjectInput } from '../../lib/ratelimit/rules';
import type { Store } from '../../lib/store/types';
import { newHashKey } from '../../local/keys';
import { FAILING_TOKEN, PASSING_TOKEN, startSiteverifyStandIn, type SiteverifyStandIn } from '../../local/siteverify';
import { challengeMiddleware, type ChallengeOptions } from '../../middleware/challenge';
import { errorsMiddleware } from '../../middleware/errors';
import { phoneNumberMiddleware } from '../../middleware/phone-number';
import { rateLimitMiddleware, rulesTaken, type RateLimitOptions } from '../../middleware/rate-limit';
import { useDynalite } from '../support/dynalite';

const CHALLENGE_SECRET = 'gaps-challenge-secret';
const HASH_KEY = newHashKey();
const PHONE = '+919876543210';
const IP = '198.51.100.23';
/** 2030-01-01T10:00:00Z */
const H = Date.UTC(2030, 0, 1, 10);

type Body = { phoneNumber: string; challengeToken?: string };
type Answer = { status: number; headers: Record<string, string>; body: Record<string, unknown> };
const bodyOf = (r: Request) => (r.event as { body: Body }).body;
const sourceIp = (r: Request) => (r.event as { requestContext: { http: { sourceIp: string } } }).requestContext.http.sourceIp;
const event = (body: Body, headers: Record<string, string> = {}) => ({ headers, body, requestContext: { http: { sourceIp: IP } } });
const answerOf = (r: { statusCode: number; headers?: Record<string, string>; body: string }): Answer => ({
  status: r.statusCode,
  headers: r.headers ?? {},
  body: JSON.parse(r.body) as Record<string, unknown>,
});

let infos: [string, unknown][];
let warnings: [string, unknown][];
let counted: string[];
beforeEach(() => {
  infos = [];
  warnings = [];
  jest.spyOn(logger, 'info').mockImplementation(((message: string, fields: unknown) => void infos.push([message, fields])) as never);
  jest.spyOn(logger, 'warn').mockImplementation(((message: string, fields: unknown) => void warnings.push([message, fields])) as never);
  jest.spyOn(logger, 'error').mockImplementation(() => undefined);
  const added = jest.spyOn(metrics, 'addMetric');
  counted = [];
  added.mockImplementation(((name: string) => void counted.push(name)) as never);
});
afterEach(() => jest.restoreAllMocks());
const logged = (lines: [string, unknown][], message: string) => lines.filter(([m]) => m === message).map(([, fields]) => fields);

describe('bot challenge, as the client, the operator and the provider see it', () => {
  let sv: SiteverifyStandIn;
  beforeEach(async () => {
    sv = await startSiteverifyStandIn({ secret: CHALLENGE_SECRET });
  });
  afterEach(async () => {
    await sv.close();
  });

  /** The send pipeline's error layers and the challenge layer; the handler stands for the send (201). */
  const pipeline = (over: Partial<ChallengeOptions> = {}) => {
    const sends: string[] = [];
    const handler = middy()
      .use(httpErrorHandler({ logger: false }))
      .use(errorsMiddleware())
      .use(challengeMiddleware({ provider: 'turnstile', mode: 'enforce', verifyUrl: sv.url, token: (r) => bodyOf(r).challengeToken, remoteIp: sourceIp, ...over }))
      .handler(async (e: unknown) => {
        sends.push((e as { body: Body }).body.phoneNumber);
        return { statusCode: 201, body: '{"otpRequestId":"sent"}' };
      });
    const send = async (challengeToken: string | undefined, context: object = { challengeSecret: CHALLENGE_SECRET }): Promise<Answer> =>
      answerOf(await handler(event({ phoneNumber: PHONE, ...(challengeToken === undefined ? {} : { challengeToken }) }) as never, context as never));
    return { send, sends };
  };

  it('an empty token is no token: 403 challenge_failed without asking the provider, logged as "no token"', async () => {
    const { send, sends } = pipeline();
    expect(await send('')).toEqual({ status: 403, headers: expect.any(Object), body: { error: 'challenge_failed', message: expect.any(String) } });
    expect(sends).toEqual([]);
    expect(sv.calls).toEqual([]);
    expect(logged(infos, 'bot challenge failed')).toEqual([{ provider: 'turnstile', mode: 'enforce', why: 'no token', errorCodes: [] }]);
    expect(counted).toContain('ChallengeFailed');
  });

  it('monitor: a missing token lets the send go on, and the log says which mode let it', async () => {
    const { send, sends } = pipeline({ mode: 'monitor', provider: 'hcaptcha' });
    expect((await send('')).status).toBe(201);
    expect(sends).toEqual([PHONE]);
    expect(sv.calls).toEqual([]);
    expect(logged(infos, 'bot challenge failed')).toEqual([{ provider: 'hcaptcha', mode: 'monitor', why: 'no token', errorCodes: [] }]);
  });

  it('a token the provider refuses: 403, logged with the provider\'s own error codes', async () => {
    const { send, sends } = pipeline();
    expect((await send(FAILING_TOKEN)).body).toMatchObject({ error: 'challenge_failed' });
    expect(sends).toEqual([]);
    expect(sv.calls.map((c) => [c.response, c.remoteip, c.secretOk])).toEqual([[FAILING_TOKEN, IP, true]]);
    expect(logged(infos, 'bot challenge failed')).toEqual([{ provider: 'turnstile', mode: 'enforce', why: 'refused by the provider', errorCodes: ['invalid-input-response'] }]);
  });

  it.each([
    ['no challenge secret in the context', {}],
    ['an empty challenge secret', { challengeSecret: '' }],
  ])('%s: the provider is never asked (it could only refuse our secret); the send goes on, warned as "no secret"', async (_what, context) => {
    const { send, sends } = pipeline();
    expect((await send(FAILING_TOKEN, context)).status).toBe(201);
    expect(sends).toEqual([PHONE]);
    expect(sv.calls).toEqual([]);
    expect(logged(warnings, 'bot challenge could not be checked; the send goes on')).toEqual([{ provider: 'turnstile', reason: 'no secret' }]);
    expect(counted).toEqual(['ChallengeUnavailable']);
  });

  it('without timeoutMs (the handler\'s configuration) the provider is given its 2 s: tokens are judged, not waved through', async () => {
    const { send, sends } = pipeline();
    expect((await send(FAILING_TOKEN)).status).toBe(403);
    expect((await send(PASSING_TOKEN)).status).toBe(201);
    expect(sends).toEqual([PHONE]);
    expect(counted.filter((name) => name.startsWith('Challenge'))).toEqual(['ChallengeFailed', 'ChallengePassed']);
    expect(warnings).toEqual([]);
  });

  it('a provider slower than timeoutMs is not waited for: the send goes on, warned as a timeout; the given fetch is the one used', async () => {
    // The network between us and the provider takes 300 ms before the request even leaves; timeoutMs is 50.
    const used: string[] = [];
    const slowNetwork = (async (url: string, init: RequestInit) => {
      used.push(url);
      await new Promise((r) => setTimeout(r, 300));
      return fetch(url, init);
    }) as typeof fetch;
    const { send, sends } = pipeline({ timeoutMs: 50, fetch: slowNetwork });
    expect((await send(FAILING_TOKEN)).status).toBe(201);
    expect(sends).toEqual([PHONE]);
    expect(used).toEqual([sv.url]);
    // The request was given up before it was sent.
    expect(sv.calls).toEqual([]);
    expect(logged(warnings, 'bot challenge could not be checked; the send goes on')).toEqual([{ provider: 'turnstile', reason: 'timeout' }]);
    expect(counted).toEqual(['ChallengeUnavailable']);
  });

  it('verifyUrl must start with http(s)://: one that only contains it is refused when the pipeline is built', () => {
    for (const verifyUrl of ['ftp://example.test/?next=https://example.test', 'javascript:alert("http://x")']) {
      expect(() => challengeMiddleware({ provider: 'recaptcha', mode: 'enforce', verifyUrl, token: () => undefined, remoteIp: () => undefined })).toThrow(/verifyUrl/);
    }
  });
});

describe('rate limit, as the client and the operator see it', () => {
  const db = useDynalite('gaps-rl');
  const input = (r: Request): RateLimitSubjectInput => ({ phoneNumber: bodyOf(r).phoneNumber, sourceIp: sourceIp(r) });
  const hour: RateLimitRule = { name: 'phone-hour', kind: 'window', limit: 1, windowSeconds: 3600, subject: (r) => r.phoneNumber };
  const cooldown: RateLimitRule = { name: 'phone-cooldown', kind: 'gap', seconds: 60, subject: (r) => r.phoneNumber };

  /**
   * The send pipeline's error layers and the rate-limit layer. The handler stands for the send: it answers 201
   * with the rules the request drew on, or fails as the provider did (`x-provider` header).
   */
  const pipeline = (over: Partial<RateLimitOptions<RateLimitSubjectInput>> = {}) => {
    const handler = middy()
      .use(httpErrorHandler({ logger: false }))
      .use(errorsMiddleware())
      .use(rateLimitMiddleware<RateLimitSubjectInput>({ store: db.store, rules: [cooldown, hour], input, now: () => H, holdMs: 0, ...over }))
      .handler(async (e: unknown, context: object) => {
        if ((e as { headers: Record<string, string> }).headers['x-provider'] === 'refused') throw new UpstreamError('rejected', 400);
        return { statusCode: 201, body: JSON.stringify({ rules: rulesTaken(context) }) };
      });
    return async (headers: Record<string, string> = {}): Promise<Answer> => answerOf(await handler(event({ phoneNumber: PHONE }, headers) as never, { hashKey: HASH_KEY } as never));
  };

  it('a retry already charged (skip) draws on no rule, and when the provider then refuses it the client gets that refusal', async () => {
    const send = pipeline({ skip: (r) => (r.event as { headers: Record<string, string> }).headers['x-charged'] === 'yes' });
    expect(await send()).toMatchObject({ status: 201, body: { rules: ['phone-cooldown', 'phone-hour'] } });
    // The retry of that send: nothing taken again, so the handler sees no rule (no NewNumberSent for it).
    expect(await send({ 'x-charged': 'yes' })).toMatchObject({ status: 201, body: { rules: [] } });
    expect(await send({ 'x-charged': 'yes', 'x-provider': 'refused' })).toMatchObject({ status: 502, body: { error: 'upstream_error' } });
    // The first send's units stay spent: a new send is still refused.
    const refused = await send();
    expect(refused).toMatchObject({ status: 429, body: { error: 'rate_limited' } });
    expect(refused.headers['Retry-After']).toBe('3600');
  });

  it('a send the provider refused gives back every limit it took, and the log names the rules given back', async () => {
    const send = pipeline();
    expect((await send({ 'x-provider': 'refused' })).status).toBe(502);
    expect(logged(infos, 'rate limits given back after a send the provider refused')).toEqual([{ rules: ['phone-cooldown', 'phone-hour'] }]);
    expect(await send()).toMatchObject({ status: 201, body: { rules: ['phone-cooldown', 'phone-hour'] } });
  });

  it('holdMs 0: a full window is spent at once, even if its last unit comes back just after the layer looked (429 with Retry-After)', async () => {
    // Another request holds the hour's only unit, and gives it back (its provider refused) right after our look.
    const holder = rateLimitMiddleware<RateLimitSubjectInput>({ store: db.store, rules: [hour], input, now: () => H, holdMs: 0 });
    const held = { event: event({ phoneNumber: PHONE }), context: { hashKey: HASH_KEY }, error: new UpstreamError('rejected', 400) } as unknown as Request;
    await (holder.before as (r: Request) => Promise<void>)(held);
    let looks = 0;
    const store: Store = {
      ...db.store,
      readWindow: async (w) => {
        const seen = await db.store.readWindow(w);
        if (looks++ === 0) await (holder.onError as (r: Request) => Promise<void>)(held);
        return seen;
      },
    };
    const answer = await pipeline({ store, rules: [hour] })();
    expect(answer).toMatchObject({ status: 429, body: { error: 'rate_limited', retryAfterSeconds: 3600 } });
    expect(answer.headers['Retry-After']).toBe('3600');
    // The unit did come back: the next send gets it.
    expect((await pipeline({ rules: [hour] })()).status).toBe(201);
  });

  it('a trusted number is answered only once the pool unit it did not need is back (Lambda may freeze right after the answer)', async () => {
    const budget: RateLimitRule = { name: 'global-day', kind: 'window', limit: 5, windowSeconds: 86_400, subject: () => 'all', refusal: 'unavailable' };
    const pool: RateLimitRule = { ...budget, name: 'new-numbers-day', limit: 1, pool: 'new-numbers' };
    const returned: string[] = [];
    const store: Store = {
      ...db.store,
      giveBackWindow: async (w) => {
        await db.store.giveBackWindow(w);
        returned.push(w.rule);
      },
    };
    const send = pipeline({ store, rules: [budget, pool], trusted: async () => true });
    expect(await send()).toMatchObject({ status: 201, body: { rules: ['global-day'] } });
    expect(returned).toEqual(['new-numbers-day']);
  });

  it('a rule of an unknown kind is refused when the pipeline is built, even with a gap\'s seconds', () => {
    const odd = { name: 'odd', kind: 'bucket', seconds: 60, subject: () => 'x' } as unknown as RateLimitRule;
    expect(() => rateLimitMiddleware({ store: db.store, rules: [odd], input })).toThrow(TypeError);
    expect(() => rateLimitMiddleware({ store: db.store, rules: [odd], input })).toThrow(/"odd"/);
  });

  it.each([
    ['a space', 'phone hour'],
    ['a trailing mark', 'phone-hour!'],
    ['41 characters', 'p'.repeat(41)],
  ])('a rule name with %s is refused when the pipeline is built (names go into DynamoDB keys and metrics)', (_what, name) => {
    expect(() => rateLimitMiddleware({ store: db.store, rules: [{ ...hour, name }], input })).toThrow(/rule name/);
  });

  it('a handler whose request went through no rate-limit layer sees no rule taken', async () => {
    const handler = middy().handler(async (_e: unknown, context: object) => ({ statusCode: 201, body: JSON.stringify({ rules: rulesTaken(context) }) }));
    expect(answerOf(await handler({} as never, {} as never)).body).toEqual({ rules: [] });
  });

  describe('cold start', () => {
    it('a fresh load of the modules (a new Lambda) accepts every documented option of the challenge and rate-limit layers', () => {
      let fresh!: { challenge: typeof challengeMiddleware; rateLimit: typeof rateLimitMiddleware };
      jest.isolateModules(() => {
        fresh = {
          challenge: require('../../middleware/challenge').challengeMiddleware,
          rateLimit: require('../../middleware/rate-limit').rateLimitMiddleware,
        };
      });
      const challenge: Required<ChallengeOptions> = {
        provider: 'turnstile',
        mode: 'monitor',
        verifyUrl: 'https://example.test/siteverify',
        token: () => undefined,
        remoteIp: () => undefined,
        timeoutMs: 1500,
        fetch,
      };
      expect(() => fresh.challenge(challenge)).not.toThrow();
      const rateLimit: Required<RateLimitOptions<RateLimitSubjectInput>> = {
        store: db.store,
        rules: [{ name: 'phone-hour', kind: 'window', limit: 1, windowSeconds: 3600, subject: (r) => r.phoneNumber }],
        input: () => ({ phoneNumber: PHONE, sourceIp: IP }),
        trusted: async () => false,
        skip: () => false,
        now: Date.now,
        holdMs: 0,
      };
      expect(() => fresh.rateLimit(rateLimit)).not.toThrow();
    });
  });
});

describe('phone numbers', () => {
  it('no allowed country is refused at cold start, and the error names the setting', () => {
    expect(() => phoneNumberMiddleware({ allowedCountryCodes: [] })).toThrow(/allowedCountryCodes is empty/);
  });
});
