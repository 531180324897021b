/**
 * A stand-in for AWS Secrets Manager's GetSecretValue, reached by the real SDK through
 * `AWS_ENDPOINT_URL_SECRETS_MANAGER`: the service code does not know it is talking to it.
 *
 * Wire format (AWS JSON 1.1): `POST /` with `X-Amz-Target: secretsmanager.GetSecretValue` and a body
 * `{"SecretId": "..."}`. Errors carry `__type`, which the SDK turns into the named exception class.
 * Signatures are not checked: the only callers are local processes with dummy credentials.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ConfigError } from '../lib/config';
import { decodeHashKey } from '../lib/otp/keys';
import { parseTokenKey } from '../lib/otp/token';
import { listenOnLoopback, LOCALHOST } from './env';
import { newHashKey, newTokenKeySecret } from './keys';

export interface SecretsStandIn {
  endpoint: string;
  /** Adds or replaces a secret (a new VersionId each time, as a rotation would). */
  set(id: string, value: string): void;
  remove(id: string): void;
  /** While on, every call answers 500 InternalServiceError: "Secrets Manager is down". */
  failAll(on: boolean): void;
  /** How many GetSecretValue calls arrived (including failed ones). */
  readonly requests: number;
  close(): Promise<void>;
}

const CONTENT_TYPE = 'application/x-amz-json-1.1';
const REGION = 'ap-south-1';
const ACCOUNT = '000000000000';

interface StoredSecret {
  value: string;
  versionId: string;
  createdDate: number;
  arnSuffix: string;
}

const send = (res: ServerResponse, status: number, body: unknown): void => {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': CONTENT_TYPE,
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': randomUUID(),
  });
  res.end(text);
};

const error = (res: ServerResponse, status: number, type: string, message: string): void =>
  send(res, status, { __type: type, message });

const readBody = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });

export const startSecretsStandIn = async (opts: { secrets: Record<string, string>; port?: number }): Promise<SecretsStandIn> => {
  const secrets = new Map<string, StoredSecret>();
  // Real ARNs end in a random 6-character suffix; a caller may ask by name or by full ARN.
  const arnOf = (name: string, s: StoredSecret) => `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${name}-${s.arnSuffix}`;
  const put = (id: string, value: string) =>
    secrets.set(id, { value, versionId: randomUUID(), createdDate: Date.now() / 1000, arnSuffix: randomUUID().slice(0, 6) });
  for (const [id, value] of Object.entries(opts.secrets)) put(id, value);

  let failing = false;
  let requests = 0;

  const lookup = (secretId: string): [string, StoredSecret] | undefined => {
    const byName = secrets.get(secretId);
    if (byName) return [secretId, byName];
    for (const [name, s] of secrets) if (arnOf(name, s) === secretId) return [name, s];
    return undefined;
  };

  const server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      const target = req.headers['x-amz-target'];
      if (req.method !== 'POST' || req.url?.split('?')[0] !== '/' || typeof target !== 'string') {
        return error(res, 400, 'UnknownOperationException', 'only POST / with X-Amz-Target is served');
      }
      if (target !== 'secretsmanager.GetSecretValue') {
        return error(res, 400, 'UnknownOperationException', `the local stand-in only serves GetSecretValue, not ${target}`);
      }
      requests += 1;
      if (failing) return error(res, 500, 'InternalServiceError', 'the local stand-in was told to fail');

      let secretId: unknown;
      try {
        secretId = (JSON.parse(body) as { SecretId?: unknown }).SecretId;
      } catch {
        return error(res, 400, 'SerializationException', 'body is not JSON');
      }
      if (typeof secretId !== 'string' || secretId === '') {
        return error(res, 400, 'InvalidParameterException', 'SecretId is required');
      }
      const found = lookup(secretId);
      if (!found) {
        return error(res, 400, 'ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
      }
      const [name, s] = found;
      send(res, 200, {
        ARN: arnOf(name, s),
        Name: name,
        SecretString: s.value,
        VersionId: s.versionId,
        VersionStages: ['AWSCURRENT'],
        CreatedDate: s.createdDate,
      });
    })().catch(() => {
      if (!res.headersSent) error(res, 500, 'InternalServiceError', 'stand-in failure');
      else res.destroy();
    });
  });

  const port = await listenOnLoopback(server, opts.port);

  let closing: Promise<void> | undefined;
  return {
    endpoint: `http://${LOCALHOST}:${port}`,
    set: put,
    remove: (id) => void secrets.delete(id),
    failAll: (on) => void (failing = on),
    get requests() {
      return requests;
    },
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
};

/**
 * The two key secrets a local stack serves, generated fresh (API.md "Local stack"): a random hash key and a
 * token key pair. Checked with the service's own parsers, so the stand-in can never serve what the service
 * would refuse.
 */
export const localKeySecrets = async (ids: { hashSecretId: string; tokenKeySecretId: string }): Promise<Record<string, string>> => {
  const hashKey = newHashKey();
  decodeHashKey(hashKey);
  const tokenKey = await newTokenKeySecret();
  parseTokenKey(tokenKey);
  return { [ids.hashSecretId]: hashKey, [ids.tokenKeySecretId]: JSON.stringify(tokenKey) };
};

/**
 * When `npm start` is pointed at someone else's Secrets Manager (AWS_ENDPOINT_URL_SECRETS_MANAGER), the key
 * secrets are checked before anything starts: a hash key that is not 32+ random bytes in base64, or a token key
 * that is not the documented JSON, stops the start with a message naming the variable (never the value),
 * instead of a 503 on the first request.
 */
export const checkKeySecrets = async (
  endpoint: string,
  ids: { hashSecretId: string; tokenKeySecretId: string },
  env: NodeJS.ProcessEnv,
): Promise<void> => {
  const client = new SecretsManagerClient({
    endpoint,
    region: env.AWS_REGION || 'ap-south-1',
    maxAttempts: 1,
    // The caller's credentials when it has some (its own stand-in may check them), dummies otherwise.
    ...(env.AWS_ACCESS_KEY_ID ? {} : { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }),
  });
  const read = async (variable: string, id: string): Promise<string> => {
    try {
      const { SecretString } = await client.send(new GetSecretValueCommand({ SecretId: id }));
      return SecretString ?? '';
    } catch (error) {
      throw new ConfigError(`${variable}: could not read the secret "${id}" from ${endpoint} (${(error as Error).name})`);
    }
  };
  try {
    const hashKey = await read('HASH_SECRET_ID', ids.hashSecretId);
    const tokenKey = await read('TOKEN_KEY_SECRET_ID', ids.tokenKeySecretId);
    try {
      decodeHashKey(hashKey);
      let parsed: unknown;
      try {
        parsed = JSON.parse(tokenKey);
      } catch {
        parsed = undefined; // parseTokenKey names the variable and the expected shape
      }
      parseTokenKey(parsed);
    } catch (error) {
      throw new ConfigError((error as Error).message);
    }
  } finally {
    client.destroy();
  }
};
