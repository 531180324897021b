import { createServer, connect, type Server, type Socket } from 'node:net';
import { DeleteTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { startLocalDynamo, type LocalDynamo } from '../../local/dynamo';

/**
 * Which DynamoDB the tests run against, chosen by ONE variable so the same suites run on either engine:
 *
 *   unset                                  dynalite, in this process (one per suite or stack, as before)
 *   TEST_DYNAMODB_ENDPOINT=http://127.0.0.1:8000   a DynamoDB already listening there, e.g. Amazon's DynamoDB
 *                                          Local (scripts/ci-dynamodb-local.sh starts it, isolated)
 *
 * Either way every suite or stack gets its own endpoint and its own fresh tables. For an external engine the
 * endpoint is a loopback relay in front of it, so `close()` still makes "DynamoDB" unreachable for that
 * suite alone (the fail-closed tests rely on it) without stopping the shared engine.
 */
export const ENDPOINT_VARIABLE = 'TEST_DYNAMODB_ENDPOINT';

/**
 * `dynalite` answers a failed condition without the item; `dynamodb` (DynamoDB Local, as AWS) returns it when
 * asked (ReturnValuesOnConditionCheckFailure) and supports transactions.
 */
export type Engine = 'dynalite' | 'dynamodb';

export interface TestDynamo extends LocalDynamo {
  engine: Engine;
  /** Drops a table made for one test (a no-op on dynalite, which goes away with the suite). */
  dropTable(table: string): Promise<void>;
}

const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };

/** The external endpoint, or undefined for dynalite. Only loopback: tests create and drop tables there. */
export const externalEndpoint = (): string | undefined => {
  const value = process.env[ENDPOINT_VARIABLE];
  if (value === undefined || value === '') return undefined;
  const url = new URL(value);
  if (url.protocol !== 'http:' || !['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname) || url.port === '') {
    throw new Error(`${ENDPOINT_VARIABLE} must be http://127.0.0.1:<port> (a local DynamoDB), not ${value}`);
  }
  return `http://${url.hostname}:${url.port}`;
};

export const testEngine = (): Engine => (externalEndpoint() === undefined ? 'dynalite' : 'dynamodb');

/** A TCP relay on 127.0.0.1 to `target`: closing it cuts every connection and refuses new ones. */
const startRelay = async (target: URL): Promise<LocalDynamo> => {
  const sockets = new Set<Socket>();
  const track = (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  };
  const server: Server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname.replace(/^\[|\]$/g, ''));
    track(client);
    track(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as { port: number };
  let closing: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      })),
  };
};

export const startTestDynamo = async (): Promise<TestDynamo> => {
  const external = externalEndpoint();
  if (external === undefined) {
    const dynamo = await startLocalDynamo();
    return { ...dynamo, engine: 'dynalite', dropTable: async () => undefined };
  }
  const relay = await startRelay(new URL(external));
  return {
    ...relay,
    engine: 'dynamodb',
    // Straight to the engine, not through the relay: a test may have closed the relay on purpose.
    async dropTable(table) {
      const client = new DynamoDBClient({ endpoint: external, region: process.env.AWS_REGION ?? 'ap-south-1', credentials });
      try {
        await client.send(new DeleteTableCommand({ TableName: table }));
      } finally {
        client.destroy();
      }
    },
  };
};
