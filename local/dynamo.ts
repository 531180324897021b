/**
 * The embedded DynamoDB for `npm start`, `local/invoke.ts` and the integration tests: dynalite, in memory,
 * so every start begins with empty counters.
 *
 * dynalite has no TransactWriteItems and no UpdateTimeToLive, so the table is created without its TTL
 * specification here (expired items simply stay; the service checks expiry itself, as it must in AWS too,
 * where TTL deletion is lazy).
 */
import type { Server } from 'node:http';
import { CreateTableCommand, DynamoDBClient, waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import { dummyAwsEnv, listenOnLoopback, LOCALHOST } from './env';

/**
 * The table's key schema, the one copy the local tooling uses. serverless.yml's `OtpTable` must say the same;
 * tests/integration/local-pieces.test.ts holds the two together.
 */
export const OTP_TABLE_SCHEMA = {
  attributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
  keySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
  billingMode: 'PAY_PER_REQUEST',
  ttlAttribute: 'ttl',
} as const;

export interface LocalDynamo {
  endpoint: string;
  close(): Promise<void>;
}

type DynaliteFactory = (options: { createTableMs?: number; deleteTableMs?: number; updateTableMs?: number }) => Server;
// dynalite ships no types; this is the one call we make.
const dynalite = require('dynalite') as DynaliteFactory;

export const startLocalDynamo = async (opts: { port?: number } = {}): Promise<LocalDynamo> => {
  // Zero delays: a table is ACTIVE as soon as it is created, so a start does not wait half a second per table.
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  const port = await listenOnLoopback(server, opts.port);
  let closing: Promise<void> | undefined;
  return {
    endpoint: `http://${LOCALHOST}:${port}`,
    close: () =>
      (closing ??= new Promise<void>((resolve, reject) => {
        server.close((err?: Error) => (err ? reject(err) : resolve()));
        // SDK clients keep connections alive; without this, close() waits for them to time out.
        server.closeAllConnections();
      })),
  };
};

/** Creates the OTP table (on-demand, `pk` string hash key) and waits until it is ACTIVE. */
export const createTable = async (endpoint: string, tableName: string): Promise<void> => {
  const client = new DynamoDBClient({
    endpoint,
    region: process.env.AWS_REGION ?? dummyAwsEnv.AWS_REGION,
    credentials: { accessKeyId: dummyAwsEnv.AWS_ACCESS_KEY_ID, secretAccessKey: dummyAwsEnv.AWS_SECRET_ACCESS_KEY },
  });
  try {
    await client.send(
      new CreateTableCommand({
        TableName: tableName,
        BillingMode: OTP_TABLE_SCHEMA.billingMode,
        AttributeDefinitions: OTP_TABLE_SCHEMA.attributeDefinitions.map((a) => ({ ...a })),
        KeySchema: OTP_TABLE_SCHEMA.keySchema.map((k) => ({ ...k })),
      }),
    );
    await waitUntilTableExists({ client, maxWaitTime: 10, minDelay: 0.1, maxDelay: 0.5 }, { TableName: tableName });
  } finally {
    client.destroy();
  }
};
