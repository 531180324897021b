import { type AttributeValue, ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { ServiceUnavailable } from '../errors';
import type { AttemptClaim, IdempotencyState, Interval, OtpRecord, Store, WindowCounter } from './types';

/**
 * The DynamoDB adapter: the only module that knows key shapes and expressions.
 *
 * Single table, string hash key `pk`, TTL attribute `ttl` (epoch seconds; cleanup only —
 * every expiry that matters is compared inside a condition expression, so the design is
 * exact on dynalite, which has no TTL, and on DynamoDB, whose TTL deletes late).
 *
 *   RL#<rule>#<window>#<subject>  { n, at, ttl }        counting rule, one item per fixed window (`at`: the last take)
 *   GAP#<rule>#<subject>          { until, ttl }        gap rule (cooldown)
 *   OTP#<subject>                 { codeId, codeHash, expiresAt, attempts, claimedAt?, usedAt?, sentAt, ttl }
 *   IDEM#<key>                    { fingerprint, owner, status, lockedUntil, response?, retryCode?, ttl }
 *   TRUST#<subject>               { trustedUntil, ttl }  a number that verified (budget pools)
 *
 * Every decision is one conditional write; no transactions (dynalite has none, and none is
 * needed: each rule owns its item). Any error other than a failed condition becomes
 * 503 service_unavailable: with the store unreachable the service fails closed.
 */
export interface DynamoStoreOptions {
  table: string;
  client?: DynamoDBDocumentClient;
}

let sharedClient: DynamoDBDocumentClient | undefined;
/** Module scope: one client (and its keep-alive sockets) per container. */
export const documentClient = (): DynamoDBDocumentClient => {
  sharedClient ??= DynamoDBDocumentClient.from(
    new DynamoDBClient({
      // Fail fast into a 503 rather than hold a checkout for the SDK's default backoff.
      maxAttempts: 2,
      // throwOnRequestTimeout: without it the SDK only warns (on console) and a hung DynamoDB hangs the invocation.
      requestHandler: { connectionTimeout: 1000, requestTimeout: 2000, throwOnRequestTimeout: true },
    }),
  );
  return sharedClient;
};

const isConditionFailure = (error: unknown): error is ConditionalCheckFailedException & { Item?: Record<string, unknown> } =>
  error instanceof ConditionalCheckFailedException || (error as { name?: string })?.name === 'ConditionalCheckFailedException';

/**
 * The item DynamoDB returns with a failed condition (ReturnValuesOnConditionCheckFailure) arrives as raw
 * AttributeValues ({ N: "…" }): lib-dynamodb unmarshalls outputs, not errors.
 */
const unmarshallFailed = (item: Record<string, unknown> | undefined): Record<string, unknown> | undefined =>
  item && unmarshall(item as Record<string, AttributeValue>);

export const createDynamoStore = (options: DynamoStoreOptions): Store => {
  const TableName = options.table;
  const client = options.client ?? documentClient();

  /** Runs one command; a failed condition is returned as `false`, anything else is the store being unavailable. */
  const write = async (command: UpdateCommand | PutCommand | DeleteCommand): Promise<{ ok: true; item?: Record<string, unknown> } | { ok: false; item?: Record<string, unknown> }> => {
    try {
      const out = await client.send(command as UpdateCommand);
      return { ok: true, item: out.Attributes };
    } catch (error) {
      if (isConditionFailure(error)) return { ok: false, item: unmarshallFailed(error.Item) };
      throw new ServiceUnavailable('store', undefined, error);
    }
  };
  const read = async (pk: string): Promise<Record<string, unknown> | undefined> => {
    try {
      const out = await client.send(new GetCommand({ TableName, Key: { pk }, ConsistentRead: true }));
      return out.Item;
    } catch (error) {
      throw new ServiceUnavailable('store', undefined, error);
    }
  };

  const windowKey = (c: WindowCounter) => `RL#${c.rule}#${c.window}#${c.subject}`;
  const gapKey = (i: Interval) => `GAP#${i.rule}#${i.subject}`;
  const otpKey = (subject: string) => `OTP#${subject}`;
  const idemKey = (key: string) => `IDEM#${key}`;
  const trustKey = (subject: string) => `TRUST#${subject}`;

  return {
    async takeWindow(c, takenAt) {
      const r = await write(
        new UpdateCommand({
          TableName,
          Key: { pk: windowKey(c) },
          UpdateExpression: 'ADD n :one SET #ttl = :ttl, #at = :at',
          ConditionExpression: 'attribute_not_exists(n) OR n < :limit',
          ExpressionAttributeNames: { '#ttl': 'ttl', '#at': 'at' },
          ExpressionAttributeValues: { ':one': 1, ':limit': c.limit, ':ttl': c.expiresAt, ':at': takenAt },
          ReturnValues: 'UPDATED_NEW',
        }),
      );
      return r.ok ? Number(r.item?.n) : undefined;
    },

    async giveBackWindow(c) {
      await write(
        new UpdateCommand({
          TableName,
          Key: { pk: windowKey(c) },
          UpdateExpression: 'ADD n :minus',
          ConditionExpression: 'n > :zero',
          ExpressionAttributeValues: { ':minus': -1, ':zero': 0 },
        }),
      );
    },

    async readWindow(c) {
      const item = await read(windowKey(c));
      return { n: typeof item?.n === 'number' ? item.n : 0, takenAt: typeof item?.at === 'number' ? item.at : undefined };
    },

    async takeInterval(i) {
      const r = await write(
        new UpdateCommand({
          TableName,
          Key: { pk: gapKey(i) },
          UpdateExpression: 'SET #until = :until, #ttl = :ttl',
          ConditionExpression: 'attribute_not_exists(#until) OR #until <= :now',
          ExpressionAttributeNames: { '#until': 'until', '#ttl': 'ttl' },
          ExpressionAttributeValues: { ':until': i.until, ':now': i.now, ':ttl': Math.ceil(i.until / 1000) + 60 },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      if (r.ok) return { ok: true };
      // DynamoDB returns the blocking item with the failure; dynalite does not, so read it (refusals only).
      const item = r.item ?? (await read(gapKey(i)));
      return { ok: false, until: typeof item?.until === 'number' ? item.until : undefined };
    },

    async giveBackInterval(i) {
      // Only our own claim is given back: a later claim by someone else stays.
      await write(
        new DeleteCommand({
          TableName,
          Key: { pk: gapKey(i) },
          ConditionExpression: '#until = :until',
          ExpressionAttributeNames: { '#until': 'until' },
          ExpressionAttributeValues: { ':until': i.until },
        }),
      );
    },

    async putOtp(subject, rec: OtpRecord) {
      const r = await write(
        new PutCommand({
          TableName,
          Item: {
            pk: otpKey(subject),
            codeId: rec.codeId,
            codeHash: rec.codeHash,
            expiresAt: rec.expiresAt,
            sentAt: rec.sentAt,
            attempts: 0,
            ttl: Math.ceil(rec.expiresAt / 1000) + 3600,
          },
          ReturnValues: 'ALL_OLD',
        }),
      );
      return r.item;
    },

    async restoreOtp(subject, codeId, replaced) {
      const condition = { ConditionExpression: 'codeId = :codeId', ExpressionAttributeValues: { ':codeId': codeId } };
      // A failed condition means a newer send replaced ours meanwhile: then there is nothing to restore.
      await write(
        replaced === undefined
          ? new DeleteCommand({ TableName, Key: { pk: otpKey(subject) }, ...condition })
          : new PutCommand({ TableName, Item: { ...replaced, pk: otpKey(subject) }, ...condition }),
      );
    },

    async claimAttempt(subject, codeId, maxAttempts, now, claimedAt): Promise<AttemptClaim> {
      const r = await write(
        new UpdateCommand({
          TableName,
          Key: { pk: otpKey(subject) },
          UpdateExpression: 'ADD attempts :one SET claimedAt = :at',
          ConditionExpression: 'codeId = :codeId AND expiresAt > :now AND attribute_not_exists(usedAt) AND attempts < :max',
          ExpressionAttributeValues: { ':one': 1, ':codeId': codeId, ':now': now, ':max': maxAttempts, ':at': claimedAt },
          // The record as it was: its attempt count plus ours, and when the previous attempt was claimed.
          ReturnValues: 'ALL_OLD',
        }),
      );
      if (r.ok) {
        // The condition needs the item, so ALL_OLD always returns it; this adapter is its only writer.
        const old = r.item as { codeHash: string; attempts: number; claimedAt?: number };
        return { ok: true, codeHash: old.codeHash, attempts: old.attempts + 1, previousClaimAt: old.claimedAt };
      }
      // Always read (never ReturnValuesOnConditionCheckFailure, which DynamoDB fills only when the item
      // exists): a refused claim then costs the same requests whether the id was forged, expired,
      // superseded or used (API.md: equal work for dead ids).
      const item = await read(otpKey(subject));
      const alive = item !== undefined && item.codeId === codeId && Number(item.expiresAt) > now && item.usedAt === undefined;
      if (!alive) return { ok: false, reason: 'gone' };
      return { ok: false, reason: 'exhausted', lastClaimAt: item.claimedAt as number | undefined };
    },

    async attemptsOf(subject, codeId) {
      const item = await read(otpKey(subject));
      return item?.codeId === codeId ? Number(item.attempts) : undefined;
    },

    async markUsed(subject, codeId, now) {
      const r = await write(
        new UpdateCommand({
          TableName,
          Key: { pk: otpKey(subject) },
          UpdateExpression: 'SET usedAt = :now',
          ConditionExpression: 'codeId = :codeId AND attribute_not_exists(usedAt)',
          ExpressionAttributeValues: { ':now': now, ':codeId': codeId },
        }),
      );
      return r.ok;
    },

    async releaseAttempt(subject, codeId) {
      await write(
        new UpdateCommand({
          TableName,
          Key: { pk: otpKey(subject) },
          UpdateExpression: 'ADD attempts :minus',
          ConditionExpression: 'codeId = :codeId AND attempts > :zero',
          ExpressionAttributeValues: { ':minus': -1, ':codeId': codeId, ':zero': 0 },
        }),
      );
    },

    async trust(subject, until) {
      await write(new PutCommand({ TableName, Item: { pk: trustKey(subject), trustedUntil: until, ttl: Math.ceil(until / 1000) + 3600 } }));
    },

    async isTrusted(subject, now) {
      const item = await read(trustKey(subject));
      return typeof item?.trustedUntil === 'number' && item.trustedUntil > now;
    },

    async beginIdempotent(key, fingerprint, owner, now, lockMs, ttlSeconds, retryCode): Promise<IdempotencyState> {
      const r = await write(
        new PutCommand({
          TableName,
          Item: {
            pk: idemKey(key),
            fingerprint,
            owner,
            status: 'pending',
            lockedUntil: now + lockMs,
            ttl: Math.ceil(now / 1000) + ttlSeconds,
            // lib-dynamodb leaves out a top-level attribute that is undefined (no sealed code: none stored).
            retryCode,
          },
          // Taken over: a pending record whose owner died (lock expired), or a charged one with the same body.
          ConditionExpression:
            'attribute_not_exists(pk) OR (#status = :pending AND lockedUntil < :now) OR (#status = :charged AND fingerprint = :fingerprint)',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':pending': 'pending', ':charged': 'charged', ':now': now, ':fingerprint': fingerprint },
          ReturnValues: 'ALL_OLD',
        }),
      );
      if (r.ok) {
        // Taken over from an attempt that may have delivered its code: keep that code (retries only).
        const first = typeof r.item?.retryCode === 'string' ? r.item.retryCode : undefined;
        // Stryker disable next-line ConditionalExpression: equivalent: when the record already holds our own sealed code, writing it again changes nothing.
        if (first !== undefined && first !== retryCode) {
          await write(
            new UpdateCommand({
              TableName,
              Key: { pk: idemKey(key) },
              UpdateExpression: 'SET retryCode = :first',
              ConditionExpression: '#owner = :owner',
              ExpressionAttributeNames: { '#owner': 'owner' },
              ExpressionAttributeValues: { ':first': first, ':owner': owner },
            }),
          );
        }
        return { state: 'acquired', charged: r.item?.status === 'charged', retryCode: first ?? retryCode };
      }
      return (await this.readIdempotent(key)) ?? { state: 'pending', fingerprint };
    },

    async readIdempotent(key): Promise<IdempotencyState | undefined> {
      const item = await read(idemKey(key));
      if (item === undefined) return undefined;
      const fingerprint = String(item.fingerprint);
      // `done` always comes with its response (completeIdempotent sets both in one write).
      if (item.status === 'done') return { state: 'done', fingerprint, response: String(item.response) };
      if (item.status === 'charged') return { state: 'charged', fingerprint };
      return { state: 'pending', fingerprint };
    },

    async completeIdempotent(key, owner, response) {
      await write(
        new UpdateCommand({
          TableName,
          Key: { pk: idemKey(key) },
          // The code is delivered: a replay needs only the answer, so the sealed code goes.
          UpdateExpression: 'SET #status = :done, #response = :response REMOVE lockedUntil, retryCode',
          ConditionExpression: '#owner = :owner',
          ExpressionAttributeNames: { '#status': 'status', '#response': 'response', '#owner': 'owner' },
          ExpressionAttributeValues: { ':done': 'done', ':response': response, ':owner': owner },
        }),
      );
    },

    async chargeIdempotent(key, owner) {
      await write(
        new UpdateCommand({
          TableName,
          Key: { pk: idemKey(key) },
          UpdateExpression: 'SET #status = :charged REMOVE lockedUntil',
          ConditionExpression: '#owner = :owner',
          ExpressionAttributeNames: { '#status': 'status', '#owner': 'owner' },
          ExpressionAttributeValues: { ':charged': 'charged', ':owner': owner },
        }),
      );
    },

    async abandonIdempotent(key, owner) {
      await write(
        new DeleteCommand({
          TableName,
          Key: { pk: idemKey(key) },
          ConditionExpression: '#owner = :owner AND #status = :pending',
          ExpressionAttributeNames: { '#owner': 'owner', '#status': 'status' },
          ExpressionAttributeValues: { ':owner': owner, ':pending': 'pending' },
        }),
      );
    },
  };
};
