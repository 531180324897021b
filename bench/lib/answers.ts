/**
 * How the stand-ins answer DynamoDB and Secrets Manager: at once, and as if every condition held.
 *
 * Stateless on purpose: every invocation takes the same path (limits granted, no previous code, the
 * idempotency key new), so a benchmark measures one path, not a store filling up. The one read that
 * matters is the code's record on verify (an UpdateItem returning ALL_NEW): it is answered with the hash
 * of RIGHT_CODE for whatever code id was asked, so any sealed otpRequestId verifies with RIGHT_CODE and
 * fails with any other code.
 */
import { hashCode } from '../../lib/otp/codes';
import { keysFor } from '../../lib/otp/keys';
import { HASH_KEY, RIGHT_CODE, SECRETS } from './fixtures';

export type DynamoOperation = 'GetItem' | 'PutItem' | 'UpdateItem' | 'DeleteItem';
type Plain = Record<string, unknown>;

export interface PlainDynamoRequest {
  operation: DynamoOperation;
  key?: Plain | undefined;
  values?: Plain | undefined;
  returnValues?: string | undefined;
}

// Memoised so that the seam's own work per answer stays negligible next to the handler's.
const hashes = new Map<string, string>();
const rightHash = (codeId: string): string => {
  let h = hashes.get(codeId);
  if (h === undefined) {
    h = hashCode(keysFor(HASH_KEY), codeId, RIGHT_CODE);
    if (hashes.size > 1000) hashes.clear();
    hashes.set(codeId, h);
  }
  return h;
};

/** The Attributes (UpdateItem) or Item (GetItem) to answer with, undefined for none. */
export const answerDynamo = (req: PlainDynamoRequest): Plain | undefined => {
  if (req.operation !== 'UpdateItem' || (req.returnValues !== 'ALL_NEW' && req.returnValues !== 'UPDATED_NEW')) return undefined;
  const codeId = req.values?.[':codeId'];
  const now = Date.now();
  if (typeof codeId === 'string') {
    return { ...req.key, codeId, codeHash: rightHash(codeId), expiresAt: now + 300_000, sentAt: now, attempts: 1 };
  }
  return { ...req.key, n: 1 };
};

export class SecretNotFound extends Error {
  override name = 'ResourceNotFoundException';
}

export const answerSecret = (secretId: unknown): { Name: string; SecretString: string; VersionId: string; ARN: string } => {
  const value = typeof secretId === 'string' ? SECRETS[secretId] : undefined;
  if (value === undefined) throw new SecretNotFound(`no secret ${String(secretId)}`);
  return { Name: String(secretId), SecretString: value, VersionId: 'bench-v1', ARN: `arn:aws:secretsmanager:ap-south-1:000000000000:secret:${String(secretId)}-bench` };
};

/** AttributeValue maps ↔ plain values, for the answers given on the wire (strings, numbers, booleans only). */
type AttributeValue = { S?: string; N?: string; BOOL?: boolean; NULL?: boolean };
export const fromWire = (item: unknown): Plain | undefined => {
  if (typeof item !== 'object' || item === null) return undefined;
  return Object.fromEntries(
    Object.entries(item as Record<string, AttributeValue>).map(([k, a]) => [k, a.S ?? (a.N !== undefined ? Number(a.N) : a.BOOL ?? (a.NULL ? null : a))]),
  );
};
export const toWire = (item: Plain): Record<string, AttributeValue> =>
  Object.fromEntries(
    Object.entries(item).map(([k, v]) => [k, typeof v === 'number' ? { N: String(v) } : typeof v === 'boolean' ? { BOOL: v } : { S: String(v) }]),
  );
