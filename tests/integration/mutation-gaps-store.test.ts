/**
 * The DynamoDB adapter's remaining conditions, each stated as what a caller sees (issue 15: the mutation run
 * of lib/store left these unpinned). Against the engine the suite runs on (dynalite, or DynamoDB Local with
 * TEST_DYNAMODB_ENDPOINT); the failure paths no engine produces on demand use a client that answers as
 * DynamoDB would.
 */
import { createServer, type Socket } from 'node:net';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createDynamoStore, documentClient } from '../../lib/store/dynamodb';
import type { Store } from '../../lib/store/types';
import { useDynalite } from '../support/dynalite';

const db = useDynalite('gaps');
let store: Store;
beforeEach(() => ({ store } = db));

const T0 = 1_800_000_000_000;
const rec = (codeId: string) => ({ codeId, codeHash: `hash-${codeId}`, expiresAt: T0 + 300_000, sentAt: T0 });
const rawItem = async (pk: string) => (await db.client.send(new GetCommand({ TableName: db.table, Key: { pk }, ConsistentRead: true }))).Item;

describe('undoing a send (restoreOtp)', () => {
  it('undoing the first code of a number leaves no code at all', async () => {
    expect(await store.putOtp('s', rec('c1'))).toBeUndefined();
    await store.restoreOtp('s', 'c1', undefined);
    expect(await store.claimAttempt('s', 'c1', 3, T0, T0)).toEqual({ ok: false, reason: 'gone' });
    // Nothing was left behind for the next send to replace.
    expect(await store.putOtp('s', rec('c2'))).toBeUndefined();
  });

  it('undoing a code that replaced another brings the other back, with the attempts it had', async () => {
    await store.putOtp('s', rec('c1'));
    expect((await store.claimAttempt('s', 'c1', 3, T0, T0)).ok).toBe(true);
    const replaced = await store.putOtp('s', rec('c2'));
    await store.restoreOtp('s', 'c2', replaced);
    expect(await store.claimAttempt('s', 'c2', 3, T0, T0)).toEqual({ ok: false, reason: 'gone' });
    expect(await store.claimAttempt('s', 'c1', 3, T0, T0 + 1)).toMatchObject({ ok: true, codeHash: 'hash-c1', attempts: 2 });
  });

  it('a newer send made meanwhile stays, whatever is being undone', async () => {
    await store.putOtp('s', rec('c1'));
    const replaced = await store.putOtp('s', rec('c2'));
    await store.putOtp('s', rec('c3'));
    await store.restoreOtp('s', 'c2', replaced);
    await store.restoreOtp('s', 'c2', undefined);
    expect(await store.claimAttempt('s', 'c3', 3, T0, T0)).toMatchObject({ ok: true, codeHash: 'hash-c3', attempts: 1 });
    expect(await store.claimAttempt('s', 'c1', 3, T0, T0)).toEqual({ ok: false, reason: 'gone' });
  });
});

describe('giving back an attempt (releaseAttempt)', () => {
  it('a given-back attempt can be claimed again, once', async () => {
    await store.putOtp('s', rec('c1'));
    for (let i = 0; i < 3; i += 1) expect((await store.claimAttempt('s', 'c1', 3, T0, T0)).ok).toBe(true);
    expect(await store.claimAttempt('s', 'c1', 3, T0, T0)).toMatchObject({ ok: false, reason: 'exhausted' });
    await store.releaseAttempt('s', 'c1');
    expect(await store.attemptsOf('s', 'c1')).toBe(2);
    expect(await store.claimAttempt('s', 'c1', 3, T0, T0)).toMatchObject({ ok: true, attempts: 3 });
    expect(await store.claimAttempt('s', 'c1', 3, T0, T0)).toMatchObject({ ok: false, reason: 'exhausted' });
  });

  it('never below zero: extra give-backs add no attempts', async () => {
    await store.putOtp('s', rec('c1'));
    await store.releaseAttempt('s', 'c1');
    await store.releaseAttempt('s', 'c1');
    expect(await store.attemptsOf('s', 'c1')).toBe(0);
    const claims = await Promise.all(Array.from({ length: 6 }, () => store.claimAttempt('s', 'c1', 3, T0, T0)));
    expect(claims.filter((c) => c.ok)).toHaveLength(3);
  });

  it('a give-back for a code no longer current does not touch the current one', async () => {
    await store.putOtp('s', rec('c1'));
    for (let i = 0; i < 3; i += 1) await store.claimAttempt('s', 'c1', 3, T0, T0);
    await store.releaseAttempt('s', 'c0');
    expect(await store.attemptsOf('s', 'c1')).toBe(3);
    expect(await store.claimAttempt('s', 'c1', 3, T0, T0)).toMatchObject({ ok: false, reason: 'exhausted' });
  });
});

describe('attempts of a code (attemptsOf)', () => {
  it('counts the current code only', async () => {
    expect(await store.attemptsOf('nobody', 'c1')).toBeUndefined();
    await store.putOtp('s', rec('c1'));
    expect(await store.attemptsOf('s', 'c1')).toBe(0);
    await store.claimAttempt('s', 'c1', 3, T0, T0);
    await store.claimAttempt('s', 'c1', 3, T0, T0);
    expect(await store.attemptsOf('s', 'c1')).toBe(2);
    expect(await store.attemptsOf('s', 'c0')).toBeUndefined();
  });

  it('a claim tells when the attempt before it was claimed, and a refusal when the last one was', async () => {
    await store.putOtp('s', rec('c1'));
    const first = await store.claimAttempt('s', 'c1', 2, T0, T0 + 10);
    expect(first).toMatchObject({ ok: true, attempts: 1 });
    expect((first as { previousClaimAt?: number }).previousClaimAt).toBeUndefined();
    expect(await store.claimAttempt('s', 'c1', 2, T0, T0 + 20)).toEqual({ ok: true, codeHash: 'hash-c1', attempts: 2, previousClaimAt: T0 + 10 });
    expect(await store.claimAttempt('s', 'c1', 2, T0, T0 + 30)).toEqual({ ok: false, reason: 'exhausted', lastClaimAt: T0 + 20 });
  });
});

describe('trusted numbers (trust, isTrusted)', () => {
  it('a number is trusted until the moment given, and only that number', async () => {
    expect(await store.isTrusted('s', T0)).toBe(false);
    await store.trust('s', T0 + 1000);
    expect(await store.isTrusted('s', T0 + 999)).toBe(true);
    expect(await store.isTrusted('s', T0 + 1000)).toBe(false);
    expect(await store.isTrusted('s', T0 + 5000)).toBe(false);
    expect(await store.isTrusted('t', T0)).toBe(false);
  });

  it("the trust item's TTL is after the trust ends, and not far after", async () => {
    const until = T0 + 30 * 86_400_000 + 123;
    await store.trust('s', until);
    const item = await rawItem('TRUST#s');
    expect(item?.trustedUntil).toBe(until);
    expect(item?.ttl as number).toBeGreaterThanOrEqual(Math.ceil(until / 1000));
    expect(item?.ttl as number).toBeLessThanOrEqual(Math.ceil(until / 1000) + 86_400);
  });
});

describe('idempotency records', () => {
  const begin = (owner: string, now: number, retryCode?: string, fingerprint = 'fp') => store.beginIdempotent('k', fingerprint, owner, now, 30_000, 86_400, retryCode);

  it('a takeover keeps the sealed code of the first attempt, for every later takeover too', async () => {
    expect(await begin('a', T0, 'sealed-A')).toEqual({ state: 'acquired', charged: false, retryCode: 'sealed-A' });
    expect(await begin('b', T0 + 30_001, 'sealed-B')).toEqual({ state: 'acquired', charged: false, retryCode: 'sealed-A' });
    expect(await begin('c', T0 + 60_002, 'sealed-C')).toEqual({ state: 'acquired', charged: false, retryCode: 'sealed-A' });
    expect((await rawItem('IDEM#k'))?.retryCode).toBe('sealed-A');
  });

  it('a takeover with no sealed code anywhere works and stores none', async () => {
    expect(await begin('a', T0)).toEqual({ state: 'acquired', charged: false, retryCode: undefined });
    expect(await begin('b', T0 + 30_001)).toEqual({ state: 'acquired', charged: false, retryCode: undefined });
    const item = await rawItem('IDEM#k');
    expect(item?.owner).toBe('b');
    expect(item).not.toHaveProperty('retryCode');
  });

  it('a charged record is taken over by the same request only', async () => {
    await begin('a', T0, 'sealed-A');
    await store.chargeIdempotent('k', 'a');
    expect(await begin('x', T0 + 1, 'sealed-X', 'other-fp')).toEqual({ state: 'charged', fingerprint: 'fp' });
    expect(await begin('b', T0 + 1, 'sealed-B')).toEqual({ state: 'acquired', charged: true, retryCode: 'sealed-A' });
  });

  it('reads each state, and nothing for an unknown key', async () => {
    expect(await store.readIdempotent('k')).toBeUndefined();
    await begin('a', T0);
    expect(await store.readIdempotent('k')).toEqual({ state: 'pending', fingerprint: 'fp' });
    await store.chargeIdempotent('k', 'a');
    expect(await store.readIdempotent('k')).toEqual({ state: 'charged', fingerprint: 'fp' });
    await store.completeIdempotent('k', 'a', '{"statusCode":201}');
    expect(await store.readIdempotent('k')).toEqual({ state: 'done', fingerprint: 'fp', response: '{"statusCode":201}' });
  });
});

describe('what DynamoDB answers that the engines do not produce on demand', () => {
  const failure = () => new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });
  /** A client whose writes fail with `writeError` and whose reads return `stored`. */
  const client = (writeError: unknown, stored?: Record<string, unknown>) =>
    ({
      send: async (command: object) => {
        if (command instanceof GetCommand) return { Item: stored };
        throw writeError;
      },
    }) as unknown as DynamoDBDocumentClient;
  const counter = { rule: 'r', subject: 's', window: 1, limit: 1, expiresAt: 1 };

  it('a failed condition from another copy of the SDK (same name, other class) is a refusal, not an outage', async () => {
    const foreign = Object.assign(new Error('The conditional request failed'), { name: 'ConditionalCheckFailedException' });
    expect(await createDynamoStore({ table: 't', client: client(foreign) }).takeWindow(counter, T0)).toBeUndefined();
  });

  it.each([
    ['an SDK error', Object.assign(new Error('throttled'), { name: 'ProvisionedThroughputExceededException' })],
    ['a thrown nothing', undefined],
    ['a thrown null', null],
  ])('%s on a write is 503 service_unavailable (store)', async (_what, error) => {
    await expect(createDynamoStore({ table: 't', client: client(error) }).takeWindow(counter, T0)).rejects.toMatchObject({ code: 'service_unavailable', reason: 'store' });
  });

  it('a failed read is 503 service_unavailable (store)', async () => {
    const broken = { send: async () => Promise.reject(new Error('socket hang up')) } as unknown as DynamoDBDocumentClient;
    await expect(createDynamoStore({ table: 't', client: broken }).readWindow(counter)).rejects.toMatchObject({ code: 'service_unavailable', reason: 'store' });
    await expect(createDynamoStore({ table: 't', client: broken }).isTrusted('s', T0)).rejects.toMatchObject({ code: 'service_unavailable', reason: 'store' });
  });

  it('a refused cooldown whose item is gone by the time it is read: refused, end unknown', async () => {
    const gap = { rule: 'g', subject: 's', now: T0, until: T0 + 60_000 };
    expect(await createDynamoStore({ table: 't', client: client(failure()) }).takeInterval(gap)).toEqual({ ok: false, until: undefined });
  });

  it('a refused idempotency key whose record is gone by the time it is read: pending (the caller waits and retries)', async () => {
    expect(await createDynamoStore({ table: 't', client: client(failure()) }).beginIdempotent('k', 'fp', 'o', T0, 30_000, 86_400)).toEqual({ state: 'pending', fingerprint: 'fp' });
  });
});

describe('the shared client (documentClient)', () => {
  it('a DynamoDB that accepts and never answers is 503 after two tries of 2 s each, not a hung invocation', async () => {
    const sockets: Socket[] = [];
    let requests = 0;
    const server = createServer((socket) => {
      sockets.push(socket);
      socket.on('data', (chunk) => (requests += (chunk.toString('latin1').match(/^POST /gm) ?? []).length));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const previous = process.env.AWS_ENDPOINT_URL_DYNAMODB;
    process.env.AWS_ENDPOINT_URL_DYNAMODB = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const shared = documentClient();
    let timer: NodeJS.Timeout | undefined;
    try {
      const started = Date.now();
      const outcome = await Promise.race([
        createDynamoStore({ table: 't' }).readWindow(counterOf('s')).then(
          () => 'answered',
          (error: unknown) => error,
        ),
        new Promise((resolve) => (timer = setTimeout(resolve, 12_000, 'still waiting after 12 s'))),
      ]);
      expect(outcome).toMatchObject({ code: 'service_unavailable', reason: 'store' });
      expect(requests).toBe(2);
      expect(Date.now() - started).toBeGreaterThanOrEqual(3900);
    } finally {
      clearTimeout(timer);
      shared.destroy();
      if (previous === undefined) delete process.env.AWS_ENDPOINT_URL_DYNAMODB;
      else process.env.AWS_ENDPOINT_URL_DYNAMODB = previous;
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  }, 20_000);
});

function counterOf(subject: string) {
  return { rule: 'r', subject, window: 1, limit: 1, expiresAt: 1 };
}
