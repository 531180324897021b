/**
 * What the send use case (lib/otp/send.ts) promises, beyond the flow tests: what the provider is asked, a
 * test number, which failures put the replaced code back, and what operators see (issue 15: the mutation run
 * of send.ts with its own tests left these unpinned). The real store on dynalite; the provider is a recorder.
 */
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../lib/config';
import { UpstreamError, UpstreamTimeout } from '../../lib/errors';
import { codeMatches } from '../../lib/otp/codes';
import { keysFor } from '../../lib/otp/keys';
import { openRequestId } from '../../lib/otp/request-id';
import { phoneSubject, sendOtp } from '../../lib/otp/send';
import type { StartMessagingClient } from '../../lib/provider/startmessaging';
import { useDynalite } from '../support/dynalite';
import { useTelemetry } from '../support/telemetry';

const db = useDynalite('send');
const KEY = randomBytes(32).toString('base64');
const keys = keysFor(KEY);
const PHONE = '+919876543210';
const T0 = 1_800_000_000_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

type Asked = Parameters<StartMessagingClient['sendOtp']>[0];
let asked: Asked[];
let answer: (request: Asked) => Promise<unknown>;
const provider = {
  sendOtp: async (request: Asked) => {
    asked.push(request);
    return answer(request);
  },
} as unknown as StartMessagingClient;

const { logged, metricsAdded } = useTelemetry();
beforeEach(() => {
  asked = [];
  answer = async () => ({ providerOtpId: 'p-1', traceId: 't-1', attempts: 1 });
});

const send = (env: Record<string, string> = {}, req: { idempotencyKey?: string; keptCode?: string; deadline?: number } = {}) =>
  sendOtp({ config: loadConfig(env), store: db.store, provider, now: () => T0 }, { phoneNumber: PHONE, apiKey: 'sm_key', hashKey: KEY, ...req });

/** Whether `code` is the number's current code for `otpRequestId` (what a verify would judge). */
const isCurrent = async (otpRequestId: string, code: string): Promise<boolean> => {
  const opened = openRequestId(keys, otpRequestId);
  if (opened === undefined) return false;
  const claim = await db.store.claimAttempt(phoneSubject(keys, PHONE), opened.codeId, 100, T0, T0);
  return claim.ok && codeMatches(keys, opened.codeId, code, claim.codeHash);
};

describe('what the provider is asked', () => {
  it('the app name and template when configured, nothing of them when not', async () => {
    await send({ STARTMESSAGING_APP_NAME: 'ShopKart', STARTMESSAGING_TEMPLATE_ID: 'tpl-42' });
    expect(asked[0]).toMatchObject({ appName: 'ShopKart', templateId: 'tpl-42', phoneNumber: PHONE, apiKey: 'sm_key' });
    await send();
    expect(asked[1]).not.toHaveProperty('appName');
    expect(asked[1]).not.toHaveProperty('templateId');
  });

  it('the deadline when there is one', async () => {
    await send({}, { deadline: T0 + 5000 });
    expect(asked[0]?.deadline).toBe(T0 + 5000);
    await send();
    expect(asked[1]).not.toHaveProperty('deadline');
  });

  it('without an Idempotency-Key: a fresh UUID per send; with one: a UUID derived from the key and the code', async () => {
    await send();
    await send();
    expect(asked[0]?.idempotencyKey).toMatch(UUID);
    expect(asked[1]?.idempotencyKey).toMatch(UUID);
    expect(asked[0]?.idempotencyKey).not.toBe(asked[1]?.idempotencyKey);
    // Random (version 4), not derived: two keyless sends that happen to carry the same code are two SMS.
    const twins = asked.length;
    await send({}, { keptCode: '424242' });
    await send({}, { keptCode: '424242' });
    const [twin1, twin2] = asked.slice(twins).map((a) => a.idempotencyKey);
    for (const key of [asked[0]?.idempotencyKey, asked[1]?.idempotencyKey, twin1, twin2]) {
      expect(key).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    }
    expect(twin1).not.toBe(twin2);
    asked.splice(2);

    await send({}, { idempotencyKey: 'order-1234-abcd', keptCode: '123456' });
    await send({}, { idempotencyKey: 'order-1234-abcd', keptCode: '123456' });
    await send({}, { idempotencyKey: 'order-1234-abcd', keptCode: '654321' });
    await send({}, { idempotencyKey: 'order-9999-abcd', keptCode: '123456' });
    const [same1, same2, otherCode, otherKey] = asked.slice(2).map((a) => a.idempotencyKey);
    expect(same1).toMatch(UUID);
    expect(same2).toBe(same1);
    // Every part of the UUID comes from the derivation: none repeats the whole digest or another part.
    expect(new Set(same1!.split('-')).size).toBe(5);
    expect(otherCode).toMatch(UUID);
    expect(otherCode).not.toBe(same1);
    expect(otherKey).not.toBe(same1);
    // The re-delivered code is the kept one.
    expect(asked[2]?.otp).toBe('123456');
  });
});

describe('a test number (TEST_NUMBERS)', () => {
  it('stores its fixed code, asks no provider, and says so in the log without the number', async () => {
    const { body, smsSent } = await send({ TEST_NUMBERS: `${PHONE}:246810` });
    expect(smsSent).toBe(false);
    expect(asked).toEqual([]);
    expect(await isCurrent(body.otpRequestId, '246810')).toBe(true);
    const line = logged.find((l) => l.message === 'test number: code stored, no SMS sent');
    expect(line?.level).toBe('info');
    expect(JSON.stringify(line?.extra)).toContain('"phone"');
    expect(JSON.stringify(line?.extra)).not.toContain(PHONE);
  });

  it('an ordinary number next to it is sent as usual', async () => {
    const { smsSent } = await send({ TEST_NUMBERS: '+919800000001:246810' });
    expect(smsSent).toBe(true);
    expect(asked).toHaveLength(1);
    expect(asked[0]?.otp).toMatch(/^\d{6}$/);
  });
});

describe('which failures put the replaced code back', () => {
  const firstThen = async (failure: unknown) => {
    const first = await send();
    const firstCode = asked[0]!.otp;
    answer = async () => Promise.reject(failure);
    await expect(send()).rejects.toBe(failure);
    return { first: first.body.otpRequestId, firstCode, secondCode: asked[1]!.otp };
  };

  it('a provider that certainly sent nothing (rate-limited us): the code the person already has still verifies', async () => {
    const { ProviderRateLimited } = await import('../../lib/errors');
    const { first, firstCode } = await firstThen(new ProviderRateLimited(60));
    expect(await isCurrent(first, firstCode)).toBe(true);
    expect(logged.filter((l) => l.level === 'warn')).toEqual([]);
  });

  it('a provider that timed out (may have delivered): the new code stays current, and the timeout is counted for the alarm', async () => {
    const { first } = await firstThen(new UpstreamTimeout());
    expect(await isCurrent(first, asked[0]!.otp)).toBe(false);
    expect(metricsAdded.filter((m) => m.name === 'UpstreamError')).toEqual([{ name: 'UpstreamError', value: 1, dimension: 'Kind=timeout' }]);
  });

  it('a failed undo still answers with the provider\'s refusal, and the warning carries the store\'s error', async () => {
    const { ProviderRateLimited } = await import('../../lib/errors');
    const broken = new Error('store down');
    const store = { ...db.store, restoreOtp: async () => Promise.reject(broken) };
    answer = async () => Promise.reject(new ProviderRateLimited(60));
    const run = sendOtp({ config: loadConfig({}), store, provider, now: () => T0 }, { phoneNumber: PHONE, apiKey: 'sm_key', hashKey: KEY });
    await expect(run).rejects.toBeInstanceOf(ProviderRateLimited);
    expect(logged.filter((l) => l.level === 'warn')).toEqual([{ level: 'warn', message: 'could not restore the replaced code', extra: { error: broken } }]);
  });

  it('any other provider error is not counted here (the errors layer counts it by kind)', async () => {
    await firstThen(new UpstreamError('rejected', 400));
    expect(metricsAdded.filter((m) => m.name === 'UpstreamError')).toEqual([]);
  });
});

describe('what operators see of a delivered code', () => {
  it('one "code sent" line with the provider ids and a masked number, and the provider latency in ms', async () => {
    await send();
    const line = logged.find((l) => l.message === 'code sent');
    expect(line?.extra).toMatchObject({ providerOtpId: 'p-1', providerTraceId: 't-1', attempts: 1 });
    expect(JSON.stringify(line?.extra)).not.toContain(PHONE);
    const latency = metricsAdded.filter((m) => m.name === 'ProviderLatency');
    expect(latency).toHaveLength(1);
    expect(latency[0]!.value).toBeGreaterThanOrEqual(0);
    expect(latency[0]!.value).toBeLessThan(60_000);
  });
});
