/**
 * The bot challenge on its own: lib/challenge/siteverify.ts (the provider call) and middleware/challenge.ts (the
 * layer), against the local siteverify stand-in over real HTTP (local/siteverify.ts), plus ipSubject (the
 * client every per-IP rule counts).
 */
import type { MiddlewareObj, Request } from '@middy/core';
import { siteverify } from '../../lib/challenge/siteverify';
import { ChallengeFailed } from '../../lib/errors';
import { metrics } from '../../lib/metrics';
import { ipSubject } from '../../lib/ratelimit/rules';
import { challengeMiddleware } from '../../middleware/challenge';
import { FAILING_TOKEN, PASSING_TOKEN, startSiteverifyStandIn, type SiteverifyStandIn } from '../../local/siteverify';

const SECRET = 'unit-challenge-secret';
let sv: SiteverifyStandIn;
beforeEach(async () => {
  sv = await startSiteverifyStandIn({ secret: SECRET });
});
afterEach(async () => {
  await sv.close();
  jest.restoreAllMocks();
});

describe('siteverify', () => {
  const ask = (token: string, over: Partial<Parameters<typeof siteverify>[0]> = {}) =>
    siteverify({ url: sv.url, secret: SECRET, token, remoteIp: '203.0.113.9', timeoutMs: 2000, ...over });

  it('a passing token passes, a failing one fails with the provider\'s error codes; the form carries secret, response and remoteip', async () => {
    expect(await ask(PASSING_TOKEN)).toEqual({ outcome: 'passed' });
    expect(await ask(FAILING_TOKEN)).toEqual({ outcome: 'failed', errorCodes: ['invalid-input-response'] });
    expect(sv.calls[0]).toEqual({ secretOk: true, response: PASSING_TOKEN, remoteip: '203.0.113.9', contentType: 'application/x-www-form-urlencoded' });
  });

  it('a wrong secret is not the customer\'s fault: unavailable, not failed', async () => {
    expect(await ask(PASSING_TOKEN, { secret: 'wrong' })).toMatchObject({ outcome: 'unavailable' });
  });

  it.each([
    ['no answer within the timeout', { hang: true } as const, 'timeout'],
    ['a 503', { status: 503 }, 'status 503'],
    ['HTML', { body: '<html></html>' }, 'not json'],
    ['JSON without a boolean success', { body: '{"ok":1}' }, 'unexpected answer'],
  ])('%s is unavailable', async (_what, fault, reason) => {
    sv.failNext(fault);
    const started = Date.now();
    expect(await ask(PASSING_TOKEN, { timeoutMs: 300 })).toEqual({ outcome: 'unavailable', reason });
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('nothing listening is unavailable (connection)', async () => {
    await sv.close();
    expect(await ask(PASSING_TOKEN)).toEqual({ outcome: 'unavailable', reason: 'connection' });
    sv = await startSiteverifyStandIn({ secret: SECRET });
  });
});

describe('challengeMiddleware', () => {
  const request = (token?: string): Request =>
    ({ event: { body: { phoneNumber: '+919876543210', challengeToken: token }, requestContext: { http: { sourceIp: '198.51.100.4' } } }, context: { challengeSecret: SECRET } }) as unknown as Request;
  const build = (mode: 'enforce' | 'monitor', timeoutMs = 2000): MiddlewareObj =>
    challengeMiddleware({
      provider: 'hcaptcha',
      mode,
      verifyUrl: sv.url,
      timeoutMs,
      token: (r) => (r.event as { body: { challengeToken?: string } }).body.challengeToken,
      remoteIp: (r) => (r.event as { requestContext: { http: { sourceIp: string } } }).requestContext.http.sourceIp,
    });
  const run = (mw: MiddlewareObj, req: Request) => (mw.before as (r: Request) => Promise<void>)(req).then(() => undefined, (e: unknown) => e);
  const counted = () => {
    const spy = jest.spyOn(metrics, 'addMetric');
    return () => spy.mock.calls.map((c) => c[0]);
  };

  it('enforce: passes a passing token, refuses a missing or failing one with 403 challenge_failed', async () => {
    const names = counted();
    const mw = build('enforce');
    expect(await run(mw, request(PASSING_TOKEN))).toBeUndefined();
    const missing = await run(mw, request());
    expect(missing).toBeInstanceOf(ChallengeFailed);
    expect((missing as ChallengeFailed).statusCode).toBe(403);
    expect((missing as ChallengeFailed).toBody()).toEqual({ error: 'challenge_failed', message: expect.any(String) });
    expect(await run(mw, request(FAILING_TOKEN))).toBeInstanceOf(ChallengeFailed);
    expect(names()).toEqual(['ChallengePassed', 'ChallengeFailed', 'ChallengeFailed']);
    // A missing token never reaches the provider.
    expect(sv.calls.map((c) => c.response)).toEqual([PASSING_TOKEN, FAILING_TOKEN]);
    expect(sv.calls[0]!.remoteip).toBe('198.51.100.4');
  });

  it('monitor: lets everything through and counts what it saw', async () => {
    const names = counted();
    const mw = build('monitor');
    expect(await run(mw, request(FAILING_TOKEN))).toBeUndefined();
    expect(await run(mw, request())).toBeUndefined();
    expect(names()).toEqual(['ChallengeFailed', 'ChallengeFailed']);
  });

  it('the provider down: fails open in enforce mode too, counted as ChallengeUnavailable', async () => {
    const names = counted();
    sv.failAlways({ hang: true });
    expect(await run(build('enforce', 200), request(PASSING_TOKEN))).toBeUndefined();
    expect(names()).toEqual(['ChallengeUnavailable']);
  });

  it('provider none: a layer that does nothing; bad options are refused when the pipeline is built', () => {
    const off = challengeMiddleware({ provider: 'none', mode: 'enforce', verifyUrl: '', token: () => undefined, remoteIp: () => undefined });
    expect(off.before).toEqual(expect.any(Function));
    expect(() => challengeMiddleware({ provider: 'turnstile', mode: 'enforce', verifyUrl: 'nope', token: () => undefined, remoteIp: () => undefined })).toThrow(/verifyUrl/);
    expect(() => challengeMiddleware({ provider: 'turnstile', mode: 'log' as never, verifyUrl: sv.url, token: () => undefined, remoteIp: () => undefined })).toThrow(/mode/);
    expect(() => challengeMiddleware({ provider: 'turnstile', mode: 'enforce', verifyUrl: sv.url, token: () => undefined, remoteIp: () => undefined, extra: 1 } as never)).toThrow(
      /unknown option "extra"/,
    );
  });
});

describe('ipSubject: the client a per-IP rule counts', () => {
  it.each([
    ['198.51.100.7', '198.51.100.7'],
    ['2001:db8:1:2::a', '2001:db8:1:2::/64'],
    ['2001:0DB8:0001:0002:ffff:1:2:3', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['::ffff:198.51.100.7', '198.51.100.7'],
  ])('%s → %s', (ip, subject) => {
    expect(ipSubject(ip)).toBe(subject);
  });

  it('no address: the rule does not apply', () => {
    expect(ipSubject(undefined)).toBeUndefined();
    expect(ipSubject('')).toBeUndefined();
  });
});
