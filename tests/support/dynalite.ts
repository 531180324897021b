import { randomBytes } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createDynamoStore } from '../../lib/store/dynamodb';
import type { Store } from '../../lib/store/types';
import { createTable } from '../../local/dynamo';
import { startTestDynamo, type Engine, type TestDynamo } from './test-dynamodb';

export interface Dynalite {
  endpoint: string;
  /** dynalite, or the DynamoDB at TEST_DYNAMODB_ENDPOINT (tests/support/test-dynamodb.ts). */
  engine: Engine;
  client: DynamoDBDocumentClient;
  /** A fresh table for every test, and the real DynamoDB adapter on it. */
  table: string;
  store: Store;
}

/**
 * One local DynamoDB per test file (dynalite, or a relay to TEST_DYNAMODB_ENDPOINT), a fresh table (and store)
 * per test: registers the jest hooks and returns an object whose fields are current inside each test.
 */
export const useDynalite = (prefix: string): Dynalite => {
  const db = {} as Dynalite;
  let dynamo: TestDynamo;
  beforeAll(async () => {
    dynamo = await startTestDynamo();
    db.endpoint = dynamo.endpoint;
    db.engine = dynamo.engine;
    db.client = DynamoDBDocumentClient.from(
      new DynamoDBClient({ endpoint: dynamo.endpoint, region: 'ap-south-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }),
    );
  });
  afterAll(async () => {
    db.client.destroy();
    await dynamo.close();
  });
  beforeEach(async () => {
    db.table = `${prefix}-${randomBytes(4).toString('hex')}`;
    await createTable(dynamo.endpoint, db.table);
    db.store = createDynamoStore({ table: db.table, client: db.client });
  });
  afterEach(async () => {
    await dynamo.dropTable(db.table);
  });
  return db;
};
