/**
 * lib/provider/startmessaging.ts: what issue 15's mutation run of the provider client found unpinned, stated as
 * behaviour. The provider's answers are fed in through the client's `fetch` option (no network), so each edge
 * (a status at the boundary of its class, an unreadable Retry-After, an error body the provider dressed in
 * HTML) is exact.
 */
import { ProviderRateLimited, ServiceUnavailable, UpstreamError, UpstreamTimeout } from '../../lib/errors';
import { createStartMessagingClient, providerDetail, type AttemptInfo, type SendOtpInput } from '../../lib/provider/startmessaging';

const API_KEY = 'sm_live_gap_key';
const NOW = Date.UTC(2030, 0, 1, 10);
const input = (over: Partial<SendOtpInput> = {}): SendOtpInput => ({ apiKey: API_KEY, phoneNumber: '+919876543210', otp: '493817', idempotencyKey: 'idem-1', ...over });

type Answer = { status: number; body?: string; headers?: Record<string, string> } | Error;
/** A client whose provider gives `answers` in turn (the last one again once they run out). */
const client = (answers: Answer[], over: { baseUrl?: string; now?: () => number } = {}) => {
  const calls: { url: string; init: RequestInit }[] = [];
  const attempts: AttemptInfo[] = [];
  const fetch = (async (url: string, init: RequestInit) => {
    calls.push({ url, init });
    const a = answers[Math.min(calls.length - 1, answers.length - 1)]!;
    if (a instanceof Error) throw a;
    return { status: a.status, headers: new Headers(a.headers ?? {}), text: async () => a.body ?? '' };
  }) as unknown as typeof globalThis.fetch;
  const c = createStartMessagingClient({
    baseUrl: over.baseUrl ?? 'http://provider.test',
    timeoutMs: 1000,
    fetch,
    sleep: async () => undefined,
    random: () => 0,
    now: over.now ?? (() => NOW),
    onAttempt: (info) => attempts.push(info),
  });
  return { send: (i: Partial<SendOtpInput> = {}) => c.sendOtp(input(i)), calls, attempts };
};
const failure = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a failure'); }, (e: unknown) => e);
const ok = (status = 200) => ({ status, body: JSON.stringify({ success: true, data: { otpRequestId: 'p-1' } }) });

describe('status classes, at their edges', () => {
  it.each([
    [299, 'sent'],
    [300, 'bad_response'],
    [399, 'bad_response'],
    [400, 'rejected'],
    [418, 'rejected'],
    [499, 'rejected'],
    [409, 'conflict'],
    [500, 'server_error'],
    [599, 'server_error'],
    [600, 'bad_response'],
    [199, 'bad_response'],
  ])('HTTP %i is %s', async (status, outcome) => {
    const c = client([status < 300 && status >= 200 ? ok(status) : { status, body: '{}' }]);
    if (outcome === 'sent') {
      await expect(c.send()).resolves.toMatchObject({ providerOtpId: 'p-1', attempts: 1 });
    } else {
      const err = await failure(c.send());
      expect(providerDetail(err)?.outcome).toBe(outcome);
      expect((err as UpstreamError).kind).toBe(outcome);
    }
    expect(c.attempts[0]).toMatchObject({ outcome, status });
    // Only a 5xx is worth another attempt.
    expect(c.calls).toHaveLength(outcome === 'server_error' ? 3 : 1);
  });

  it('a 2xx the provider calls a failure, or that is not JSON, is not a send', async () => {
    expect(providerDetail(await failure(client([{ status: 200, body: JSON.stringify({ success: false }) }]).send()))?.outcome).toBe('rejected');
    expect(providerDetail(await failure(client([{ status: 200, body: 'OK' }]).send()))?.outcome).toBe('bad_response');
  });

  it('a sent attempt is reported as not retryable, with how long it took by the injected clock', async () => {
    let t = NOW;
    const c = client([ok()], { now: () => (t += 5) });
    await c.send();
    expect(c.attempts).toEqual([expect.objectContaining({ attempt: 1, outcome: 'sent', retryable: false, durationMs: 5 })]);
  });

  it('a 403 is the wallet only when it talks about money; with no words it is the key', async () => {
    const wallet = await failure(client([{ status: 403, body: JSON.stringify({ message: 'Insufficient balance' }) }]).send());
    expect(wallet).toBeInstanceOf(ServiceUnavailable);
    const key = await failure(client([{ status: 403, body: '' }]).send());
    expect(providerDetail(key)?.outcome).toBe('unauthorized');
  });
});

describe('Retry-After of a provider 429', () => {
  it.each([
    ['7', 7],
    [' 7 ', 7],
    ['1.5', 2],
    ['30abc', 1],
    ['', 1],
    [new Date(NOW + 30_000).toUTCString(), 30],
  ])('%j → %i s', async (header, seconds) => {
    const err = await failure(client([{ status: 429, body: '{}', headers: header === '' ? {} : { 'Retry-After': header } }]).send());
    expect(err).toBeInstanceOf(ProviderRateLimited);
    expect((err as ProviderRateLimited).extra.retryAfterSeconds).toBe(seconds);
  });
});

describe('what the provider said, as logs get it', () => {
  const said = async (answer: Answer) => providerDetail(await failure(client([answer]).send()));

  it('an HTML error page: its words, without tags; an empty body: nothing', async () => {
    expect((await said({ status: 404, body: '<html><body><h1>Cannot</h1>\n<p>POST /otp/send</p></body></html>' }))?.providerMessage).toBe('Cannot POST /otp/send');
    expect((await said({ status: 404, body: '' }))?.providerMessage).toBeUndefined();
  });

  it('a list of messages is joined with "; ", an empty message falls back to the error object', async () => {
    expect((await said({ status: 400, body: JSON.stringify({ message: ['phone is invalid', 'otp is missing'] }) }))?.providerMessage).toBe('phone is invalid; otp is missing');
    expect(await said({ status: 400, body: JSON.stringify({ message: '', error: { message: 'bad template', code: 42 } }) })).toMatchObject({
      providerMessage: 'bad template',
      providerCode: '42',
    });
  });

  it('whitespace is collapsed, long numbers masked, the key removed, and the text cut at 200 characters', async () => {
    const detail = await said({ status: 400, body: JSON.stringify({ message: `key ${API_KEY}\n\n  for +919876543210 ${'x'.repeat(300)}` }) });
    expect(detail?.providerMessage).toBe(`key [key] for [digits] ${'x'.repeat(200)}`.slice(0, 200));
    expect(detail?.providerMessage).toHaveLength(200);
  });
});

describe('connection failures', () => {
  const nested = (depth: number, code: string): Error => {
    const root = Object.assign(new TypeError('fetch failed'), {});
    let e: Record<string, unknown> = root as unknown as Record<string, unknown>;
    for (let i = 1; i < depth; i++) e = (e.cause = { message: `level ${i}` }) as Record<string, unknown>;
    e.code = code;
    return root;
  };

  it('a transient code up to four causes deep is retried; one deeper is not recognised (one attempt)', async () => {
    const found = client([nested(4, 'ECONNRESET')]);
    expect(await failure(found.send())).toBeInstanceOf(UpstreamError);
    expect(found.calls).toHaveLength(3);
    expect(found.attempts[0]).toMatchObject({ outcome: 'connection', providerCode: 'ECONNRESET', retryable: true });
    const tooDeep = client([nested(5, 'ECONNRESET')]);
    await failure(tooDeep.send());
    expect(tooDeep.calls).toHaveLength(1);
    expect(tooDeep.attempts[0]).toMatchObject({ providerCode: 'TypeError', retryable: false });
  });
});

describe('the request', () => {
  it('goes to <baseUrl>/otp/send whatever trailing slashes the base has, as JSON, asking for JSON', async () => {
    const c = client([ok()], { baseUrl: 'http://provider.test//' });
    await c.send();
    expect(c.calls[0]!.url).toBe('http://provider.test/otp/send');
    expect(c.calls[0]!.init.headers).toMatchObject({ 'X-API-Key': API_KEY, 'Content-Type': 'application/json', Accept: 'application/json' });
  });

  it('with the deadline already past, nothing is sent and the answer is a timeout', async () => {
    const c = client([ok()]);
    const err = await failure(c.send({ deadline: NOW - 1 }));
    expect(err).toBeInstanceOf(UpstreamTimeout);
    expect(providerDetail(err)).toMatchObject({ attempt: 0, outcome: 'timeout' });
    expect(c.calls).toHaveLength(0);
  });
});
