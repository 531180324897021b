/**
 * A minimal Secrets Manager GetSecretValue on 127.0.0.1 (AWS JSON 1.1 over HTTP), for the cold-start children:
 * our handlers queue a secrets prefetch at init, and if it ever got as far as a request it must stay on this
 * machine and be answered. Counts what it answers.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { answerSecret } from './answers';

export interface SecretsStandIn {
  endpoint: string;
  readonly requests: number;
  close(): Promise<void>;
}

export const startSecretsStandIn = async (): Promise<SecretsStandIn> => {
  let requests = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests += 1;
      let status = 200;
      let body: unknown;
      try {
        const input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as { SecretId?: unknown };
        if (req.headers['x-amz-target'] !== 'secretsmanager.GetSecretValue') throw new Error('only GetSecretValue is served');
        body = answerSecret(input.SecretId);
      } catch (error) {
        status = 400;
        body = { __type: 'ResourceNotFoundException', message: (error as Error).message };
      }
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    get requests() {
      return requests;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
};

/** A local port with nothing listening: an endpoint that refuses at once instead of leaving the machine. */
export const closedPort = async (): Promise<number> => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
};
