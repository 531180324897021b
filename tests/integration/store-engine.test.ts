/**
 * The adapter's refusal path on the engine it runs against (dynalite by default, Amazon's DynamoDB Local when
 * TEST_DYNAMODB_ENDPOINT is set; see docs/testing.md).
 *
 * DynamoDB returns the item that failed a condition when asked (ReturnValuesOnConditionCheckFailure), in raw
 * AttributeValue form; dynalite returns nothing. The adapter uses the returned item and reads only when there
 * is none. Each test proves which path ran by counting the commands the real SDK client sent, so on DynamoDB
 * Local the production path (no extra read) is exercised for real, not only against a mock.
 */
import { ConditionalCheckFailedException, DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createDynamoStore } from '../../lib/store/dynamodb';
import type { Store } from '../../lib/store/types';
import { useDynalite } from '../support/dynalite';

const db = useDynalite('engine');
const T0 = 1_800_000_000_000;

let raw: DynamoDBClient;
let sent: string[];
let store: Store;
beforeEach(() => {
  sent = [];
  raw = new DynamoDBClient({ endpoint: db.endpoint, region: 'ap-south-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  // Every command the adapter sends, by name (GetItemCommand, UpdateItemCommand, ...).
  raw.middlewareStack.add(
    (next, context) => (args) => {
      sent.push(String(context.commandName));
      return next(args);
    },
    { step: 'initialize', name: 'countCommands' },
  );
  store = createDynamoStore({ table: db.table, client: DynamoDBDocumentClient.from(raw) });
});
afterEach(() => raw.destroy());

/** Reads the adapter made after a refusal: none where the engine returned the item, one where it did not. */
const expectedReads = () => (db.engine === 'dynamodb' ? 0 : 1);
const reads = () => sent.filter((name) => name === 'GetItemCommand').length;

it('the engine returns the failed item raw (DynamoDB) or not at all (dynalite), as the adapter expects', async () => {
  const update = () =>
    new UpdateItemCommand({
      TableName: db.table,
      Key: { pk: { S: 'GAP#probe#s' } },
      UpdateExpression: 'SET #until = :until',
      ConditionExpression: 'attribute_not_exists(#until)',
      ExpressionAttributeNames: { '#until': 'until' },
      ExpressionAttributeValues: { ':until': { N: '42' } },
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    });
  await raw.send(update());
  const error = await raw.send(update()).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConditionalCheckFailedException);
  const item = (error as { Item?: unknown }).Item;
  if (db.engine === 'dynamodb') expect(item).toEqual({ pk: { S: 'GAP#probe#s' }, until: { N: '42' } });
  else expect(item).toBeUndefined();
});

it('a refused cooldown reports the blocking `until` from the failed write', async () => {
  const gap = { rule: 'phone-cooldown', subject: 's', now: T0, until: T0 + 60_000 };
  expect(await store.takeInterval(gap)).toEqual({ ok: true });
  sent = [];
  expect(await store.takeInterval({ ...gap, now: T0 + 40_000, until: T0 + 100_000 })).toEqual({ ok: false, until: T0 + 60_000 });
  expect(reads()).toBe(expectedReads());
});

/**
 * A refused claim always reads the record, on every engine: it then costs the same requests whether the id was
 * forged, expired, superseded or used (API.md, equal work for dead ids; tests/integration/dead-ids.test.ts).
 */
const claimReads = () => 1;

describe('a refused attempt is told apart by reading the record', () => {
  const rec = { codeId: 'c1', codeHash: 'h1', expiresAt: T0 + 300_000, sentAt: T0 };

  it('spent attempts on a live code: exhausted', async () => {
    await store.putOtp('s', rec);
    for (let i = 0; i < 3; i += 1) expect((await store.claimAttempt('s', 'c1', 3, T0 + 1000, T0 + 1000)).ok).toBe(true);
    sent = [];
    expect(await store.claimAttempt('s', 'c1', 3, T0 + 1000, T0 + 1000)).toEqual({ ok: false, reason: 'exhausted', lastClaimAt: T0 + 1000 });
    expect(reads()).toBe(claimReads());
  });

  it.each([
    ['used', async () => expect(await store.markUsed('s', 'c1', T0 + 10)).toBe(true), 'c1', T0 + 1000],
    ['superseded', async () => undefined, 'c0', T0 + 1000],
    ['expired', async () => undefined, 'c1', T0 + 300_000],
  ])('a %s code: gone', async (_what, arrange, codeId, now) => {
    await store.putOtp('s', rec);
    await arrange();
    sent = [];
    expect(await store.claimAttempt('s', codeId as string, 3, now as number, now as number)).toEqual({ ok: false, reason: 'gone' });
    expect(reads()).toBe(claimReads());
  });

  it('no code at all: gone, after the same one read as every other refusal', async () => {
    expect(await store.claimAttempt('nobody', 'c1', 3, T0, T0)).toEqual({ ok: false, reason: 'gone' });
    expect(reads()).toBe(1);
  });
});
