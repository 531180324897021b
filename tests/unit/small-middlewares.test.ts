/**
 * The small layers on their own: phone policy, response headers, and idempotency against an in-memory
 * store (the DynamoDB behaviour of the same records is in tests/integration/store.test.ts).
 */
import type { Request } from '@middy/core';
import { UpstreamError, UpstreamTimeout } from '../../lib/errors';
import type { IdempotencyState, Store } from '../../lib/store/types';
import { IdempotentReplay, idempotencyMiddleware, limitsAlreadyTaken } from '../../middleware/idempotency';
import { phoneNumberMiddleware } from '../../middleware/phone-number';
import { responseHeadersMiddleware } from '../../middleware/response-headers';
import { newHashKey } from '../../local/keys';

const SECRET = newHashKey();
const req = (event: Record<string, unknown>, extra: Partial<Request> = {}): Request =>
  ({ event, context: { hashKey: SECRET, getRemainingTimeInMillis: () => 10_000 }, response: undefined, error: undefined, internal: {}, ...extra }) as unknown as Request;

describe('phoneNumberMiddleware', () => {
  const mw = phoneNumberMiddleware({ allowedCountryCodes: ['91'] });
  it.each([
    ['+919876543210', undefined],
    ['+9198765', 'invalid_phone_number'],
    ['+915876543210', 'invalid_phone_number'],
    ['+14155550123', 'country_not_allowed'],
  ])('%s → %s', async (phoneNumber, code) => {
    const run = mw.before!(req({ body: { phoneNumber } }));
    if (code === undefined) await expect(run).resolves.toBeUndefined();
    else await expect(run).rejects.toMatchObject({ code });
  });
  it('refuses to be built without a country', () => {
    expect(() => phoneNumberMiddleware({ allowedCountryCodes: [] })).toThrow(TypeError);
  });
});

describe('responseHeadersMiddleware', () => {
  const mw = responseHeadersMiddleware({ corsAllowedOrigins: ['https://shop.example'] });
  const answer = async (origin?: string) => {
    const r = req({ version: '2.0', headers: origin ? { origin } : {}, requestContext: { http: { method: 'POST' } } });
    r.response = { statusCode: 201, headers: {}, body: '{}' };
    await mw.after!(r);
    return (r.response as { headers: Record<string, string> }).headers;
  };
  it('sets JSON, no-store and the security headers, and nothing empty', async () => {
    const h = await answer();
    expect(h).toMatchObject({ 'Content-Type': 'application/json', 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
    expect(h['Strict-Transport-Security']).toMatch(/max-age=\d+/);
    for (const v of Object.values(h)) expect(v).not.toBe('');
  });
  it('grants an allowed origin and gives any other origin no Access-Control-* header', async () => {
    expect((await answer('https://shop.example'))['Access-Control-Allow-Origin']).toBe('https://shop.example');
    for (const origin of ['https://evil.example', undefined]) {
      expect(Object.keys(await answer(origin)).filter((k) => k.toLowerCase().startsWith('access-control-'))).toEqual([]);
    }
  });
  it('rejects unknown options', () => {
    expect(() => responseHeadersMiddleware({ corsAllowedOrigins: [], extra: 1 } as never)).toThrow(/unknown option/);
  });
});

describe('idempotencyMiddleware', () => {
  /** The store's idempotency records in memory, with the same semantics as the DynamoDB adapter. */
  const memoryStore = () => {
    const records = new Map<string, { fingerprint: string; owner: string; status: string; response?: string }>();
    let reads = 0;
    const store = {
      async beginIdempotent(key: string, fingerprint: string, owner: string): Promise<IdempotencyState> {
        const r = records.get(key);
        if (r === undefined || (r.status === 'charged' && r.fingerprint === fingerprint)) {
          records.set(key, { fingerprint, owner, status: 'pending' });
          return { state: 'acquired', charged: r?.status === 'charged', retryCode: undefined };
        }
        return (await store.readIdempotent(key))!;
      },
      async readIdempotent(key: string): Promise<IdempotencyState | undefined> {
        reads += 1;
        const r = records.get(key);
        if (!r) return undefined;
        if (r.status === 'done') return { state: 'done', fingerprint: r.fingerprint, response: r.response! };
        return { state: r.status as 'pending' | 'charged', fingerprint: r.fingerprint };
      },
      async completeIdempotent(key: string, owner: string, response: string) {
        const r = records.get(key);
        if (r?.owner === owner) Object.assign(r, { status: 'done', response });
      },
      async abandonIdempotent(key: string, owner: string) {
        if (records.get(key)?.owner === owner) records.delete(key);
      },
      async chargeIdempotent(key: string, owner: string) {
        const r = records.get(key);
        if (r?.owner === owner) r.status = 'charged';
      },
    };
    return { store: store as unknown as Store, records, reads: () => reads };
  };
  const event = (key: string | undefined, phoneNumber = '+919876543210') => ({ headers: key ? { 'idempotency-key': key } : {}, body: { phoneNumber } });
  const build = (store: Store) =>
    idempotencyMiddleware({ store, scope: 'send-otp', fingerprint: (r) => (r.event as unknown as { body: { phoneNumber: string } }).body.phoneNumber, pollMs: 1, maxWaitMs: 50, sleep: () => Promise.resolve() });

  it('does nothing, and calls no store, without the header', async () => {
    const m = memoryStore();
    await build(m.store).before!(req(event(undefined)));
    expect(m.records.size).toBe(0);
  });

  it('refuses a malformed key with 400', async () => {
    const m = memoryStore();
    for (const key of ['short', 'has space in it', 'x'.repeat(129), 'emoji-🙂-key']) {
      await expect(build(m.store).before!(req(event(key)))).rejects.toMatchObject({ code: 'invalid_request' });
    }
  });

  it('replays a 201, conflicts on another body, and stores nothing but 201s', async () => {
    const m = memoryStore();
    const mw = build(m.store);
    const first = req(event('order-12345'));
    await mw.before!(first);
    first.response = { statusCode: 201, body: '{"otpRequestId":"a"}' };
    await mw.after!(first);
    await expect(mw.before!(req(event('order-12345')))).rejects.toBeInstanceOf(IdempotentReplay);
    await expect(mw.before!(req(event('order-12345', '+919876543211')))).rejects.toMatchObject({ code: 'idempotency_conflict' });

    const other = req(event('order-67890'));
    await mw.before!(other);
    other.response = { statusCode: 200, body: '{}' };
    await mw.after!(other);
    expect([...m.records.values()].filter((r) => r.status === 'done')).toHaveLength(1);
  });

  it('after a certain failure the key is free; after an uncertain one it is charged and the retry skips the limits', async () => {
    const m = memoryStore();
    const mw = build(m.store);
    const refused = req(event('order-aaaaaa'));
    await mw.before!(refused);
    refused.error = new UpstreamError('rejected', 400);
    await mw.onError!(refused);
    expect(m.records.size).toBe(0);

    const timedOut = req(event('order-bbbbbb'));
    await mw.before!(timedOut);
    expect(limitsAlreadyTaken(timedOut)).toBe(false);
    timedOut.error = new UpstreamTimeout();
    await mw.onError!(timedOut);
    const retry = req(event('order-bbbbbb'));
    await mw.before!(retry);
    expect(limitsAlreadyTaken(retry)).toBe(true);
  });

  it('a duplicate that finds the first still running waits, then gives up with 409', async () => {
    const m = memoryStore();
    const mw = build(m.store);
    await mw.before!(req(event('order-cccccc')));
    await expect(mw.before!(req(event('order-cccccc')))).rejects.toMatchObject({ code: 'idempotency_conflict', message: expect.stringMatching(/still being processed/) });
    expect(m.reads()).toBeGreaterThan(1);
  });
});
