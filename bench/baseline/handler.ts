/**
 * The baseline the benchmark compares against: a naive, single-file send handler, the way StartMessaging's
 * AWS Lambda tutorial writes it (startmessaging.com/blog/send-otp-aws-lambda). The API key from Secrets
 * Manager cached in a module variable, one DynamoDB UpdateItem counter per number (ADD, refused past the
 * limit), one `fetch` to the provider. No validation, no logging, no metrics, no idempotency, no verify.
 *
 * Not part of the service: it exists so that bench/run.ts can build it with the same esbuild options and the
 * same SDK versions as our handlers and measure both side by side. Do not copy it: it trusts its input,
 * returns the provider's body to the caller and fails open on nothing.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { randomInt, randomUUID } from 'node:crypto';

const sm = new SecretsManagerClient({});
const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({}));

const TABLE = process.env.OTP_TABLE ?? 'OtpRateLimit';
const BASE_URL = process.env.STARTMESSAGING_BASE_URL ?? 'https://api.startmessaging.com';
const SECRET_ID = process.env.API_KEY_SECRET_ID ?? 'sm/api-key';
const LIMIT = Number(process.env.SEND_LIMIT_PER_PHONE_PER_HOUR ?? 5);

let cached: string | null = null;

async function getApiKey(): Promise<string> {
  if (cached) return cached;
  const r = await sm.send(new GetSecretValueCommand({ SecretId: SECRET_ID }));
  cached = r.SecretString!;
  return cached;
}

export const handler = async (event: { body?: string | null }): Promise<{ statusCode: number; headers: Record<string, string>; body: string }> => {
  const body = JSON.parse(event.body ?? '{}') as { phoneNumber?: string };
  const apiKey = await getApiKey();

  // hourly cap per phone
  try {
    await ddb.send(
      new UpdateCommand({
        TableName: TABLE,
        Key: { pk: `count#${body.phoneNumber}` },
        UpdateExpression: 'ADD #c :one SET #ttl = :ttl',
        ConditionExpression: 'attribute_not_exists(#c) OR #c < :limit',
        ExpressionAttributeNames: { '#c': 'count', '#ttl': 'ttl' },
        ExpressionAttributeValues: { ':one': 1, ':limit': LIMIT, ':ttl': Math.floor(Date.now() / 1000) + 3600 },
      }),
    );
  } catch (error) {
    if ((error as Error).name === 'ConditionalCheckFailedException') {
      return { statusCode: 429, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ error: 'Too many requests' }) };
    }
    throw error;
  }

  const otp = String(randomInt(0, 1_000_000)).padStart(6, '0');
  const r = await fetch(`${BASE_URL}/otp/send`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-API-Key': apiKey },
    body: JSON.stringify({ phoneNumber: body.phoneNumber, variables: { otp }, idempotencyKey: randomUUID() }),
  });
  const data: unknown = await r.json();
  return { statusCode: r.ok ? 200 : 502, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(data) };
};
