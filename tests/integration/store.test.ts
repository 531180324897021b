import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { useDynalite } from '../support/dynalite';
import { createDynamoStore } from '../../lib/store/dynamodb';
import type { Store } from '../../lib/store/types';

/** The DynamoDB adapter against a real local DynamoDB (dynalite): conditions, not mocks. */
const db = useDynalite('store');
let store: Store;
beforeEach(() => ({ store } = db));

const T0 = 1_800_000_000_000;

describe('codes', () => {
  const rec = { codeId: 'c1', codeHash: 'h1', expiresAt: T0 + 300_000, sentAt: T0 };

  it('claims attempts up to the maximum, exactly, under parallel claims', async () => {
    await store.putOtp('s', rec);
    const claims = await Promise.all(Array.from({ length: 20 }, () => store.claimAttempt('s', 'c1', 3, T0, T0)));
    expect(claims.filter((c) => c.ok)).toHaveLength(3);
    expect(claims.filter((c) => c.ok).map((c) => (c as { attempts: number }).attempts).sort()).toEqual([1, 2, 3]);
    expect(claims.filter((c) => !c.ok).every((c) => !c.ok && c.reason === 'exhausted')).toBe(true);
  });

  it('an expired, superseded, used or unknown code is gone', async () => {
    expect(await store.claimAttempt('nobody', 'c1', 3, T0, T0)).toEqual({ ok: false, reason: 'gone' });
    await store.putOtp('s', rec);
    expect(await store.claimAttempt('s', 'c1', 3, rec.expiresAt, rec.expiresAt)).toEqual({ ok: false, reason: 'gone' });
    expect(await store.claimAttempt('s', 'other', 3, T0, T0)).toEqual({ ok: false, reason: 'gone' });
    expect(await store.markUsed('s', 'c1', T0)).toBe(true);
    expect(await store.claimAttempt('s', 'c1', 3, T0, T0)).toEqual({ ok: false, reason: 'gone' });
  });

  it('marks a code used for exactly one of many parallel callers', async () => {
    await store.putOtp('s', rec);
    const used = await Promise.all(Array.from({ length: 10 }, () => store.markUsed('s', 'c1', T0)));
    expect(used.filter(Boolean)).toHaveLength(1);
  });

  it('a new code replaces the old one with a fresh attempt budget', async () => {
    await store.putOtp('s', rec);
    for (let i = 0; i < 3; i++) await store.claimAttempt('s', 'c1', 3, T0, T0);
    expect(await store.claimAttempt('s', 'c1', 3, T0, T0)).toEqual({ ok: false, reason: 'exhausted', lastClaimAt: T0 });
    await store.putOtp('s', { ...rec, codeId: 'c2', codeHash: 'h2' });
    expect(await store.claimAttempt('s', 'c2', 3, T0, T0)).toEqual({ ok: true, codeHash: 'h2', attempts: 1 });
    expect(await store.markUsed('s', 'c1', T0)).toBe(false);
  });
});

describe('rate-limit items', () => {
  const counter = { rule: 'r', subject: 's', window: 1, limit: 4, expiresAt: 9_999_999_999 };

  it('a window takes exactly its limit under 30 parallel takes and gives back one at a time', async () => {
    const taken = await Promise.all(Array.from({ length: 30 }, () => store.takeWindow(counter, T0)));
    expect(taken.filter(Boolean).sort()).toEqual([1, 2, 3, 4]);
    await store.giveBackWindow(counter);
    expect(await store.takeWindow(counter, T0)).toBe(4);
    expect(await store.takeWindow(counter, T0)).toBeUndefined();
    expect(await store.takeWindow({ ...counter, window: 2 }, T0)).toBe(1);
  });

  it('a window remembers when its last unit was taken; a refused take and a give-back do not change it', async () => {
    expect(await store.readWindow(counter)).toEqual({ n: 0, takenAt: undefined });
    await store.takeWindow(counter, T0 + 1);
    await store.takeWindow(counter, T0 + 5);
    expect(await store.readWindow(counter)).toEqual({ n: 2, takenAt: T0 + 5 });
    await store.takeWindow(counter, T0 + 6);
    await store.takeWindow(counter, T0 + 7);
    expect(await store.takeWindow(counter, T0 + 9)).toBeUndefined();
    await store.giveBackWindow(counter);
    expect(await store.readWindow(counter)).toEqual({ n: 3, takenAt: T0 + 7 });
  });

  it('a give-back never drives a counter below zero', async () => {
    await store.giveBackWindow(counter);
    await store.giveBackWindow(counter);
    const taken = await Promise.all(Array.from({ length: 10 }, () => store.takeWindow(counter, T0)));
    expect(taken.filter(Boolean)).toHaveLength(4);
  });

  it('a gap is taken once until it ends and reports when it ends', async () => {
    const gap = { rule: 'g', subject: 's', now: T0, until: T0 + 60_000 };
    const results = await Promise.all(Array.from({ length: 30 }, () => store.takeInterval(gap)));
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.find((r) => !r.ok)).toEqual({ ok: false, until: T0 + 60_000 });
    expect((await store.takeInterval({ ...gap, now: T0 + 59_999, until: T0 + 119_999 })).ok).toBe(false);
    expect((await store.takeInterval({ ...gap, now: T0 + 60_000, until: T0 + 120_000 })).ok).toBe(true);
  });

  it('only the owner of a gap can give it back', async () => {
    const mine = { rule: 'g', subject: 's', now: T0, until: T0 + 60_000 };
    await store.takeInterval(mine);
    await store.giveBackInterval({ ...mine, until: T0 + 1 });
    expect((await store.takeInterval({ ...mine, until: T0 + 2 })).ok).toBe(false);
    await store.giveBackInterval(mine);
    expect((await store.takeInterval({ ...mine, until: T0 + 3 })).ok).toBe(true);
  });
});

describe('idempotency records', () => {
  it('one owner among parallel beginners; the others see it pending, then done', async () => {
    const states = await Promise.all(Array.from({ length: 10 }, (_, i) => store.beginIdempotent('k', 'fp', `o${i}`, T0, 30_000, 86400)));
    expect(states.filter((s) => s.state === 'acquired')).toHaveLength(1);
    expect(states.filter((s) => s.state === 'pending')).toHaveLength(9);
    const owner = `o${states.findIndex((s) => s.state === 'acquired')}`;
    await store.completeIdempotent('k', 'not-the-owner', 'x').catch(() => undefined);
    expect(await store.readIdempotent('k')).toEqual({ state: 'pending', fingerprint: 'fp' });
    await store.completeIdempotent('k', owner, '{"statusCode":201}');
    expect(await store.readIdempotent('k')).toEqual({ state: 'done', fingerprint: 'fp', response: '{"statusCode":201}' });
    expect(await store.beginIdempotent('k', 'fp', 'late', T0 + 60_000, 30_000, 86400)).toEqual({ state: 'done', fingerprint: 'fp', response: '{"statusCode":201}' });
  });

  it('an abandoned or stale pending record can be taken again', async () => {
    expect((await store.beginIdempotent('k', 'fp', 'a', T0, 30_000, 86400)).state).toBe('acquired');
    await store.abandonIdempotent('k', 'a');
    expect((await store.beginIdempotent('k', 'fp', 'b', T0, 30_000, 86400)).state).toBe('acquired');
    expect((await store.beginIdempotent('k', 'fp', 'c', T0 + 10_000, 30_000, 86400)).state).toBe('pending');
    expect((await store.beginIdempotent('k', 'fp', 'd', T0 + 30_001, 30_000, 86400)).state).toBe('acquired');
  });
});

describe('failure', () => {
  it('an unreachable DynamoDB is 503 service_unavailable, not a crash', async () => {
    const client = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: 'http://127.0.0.1:9', maxAttempts: 1 }));
    const down = createDynamoStore({ table: 't', client });
    await expect(down.takeWindow({ rule: 'r', subject: 's', window: 1, limit: 1, expiresAt: 1 }, T0)).rejects.toMatchObject({ code: 'service_unavailable', reason: 'store' });
    await expect(down.claimAttempt('s', 'c', 3, T0, T0)).rejects.toMatchObject({ code: 'service_unavailable' });
  });
});
