/**
 * The seam, inside a benchmark child: DynamoDB and Secrets Manager answered at once (bench/lib/answers.ts),
 * every request counted, and the provider's time measured so it can be taken out.
 *
 * Two depths, both on the SDK instance bundled with the handler (bench/lib/seam-sdk.ts):
 *  - 'client': `send` of SecretsManagerClient, DynamoDBClient and DynamoDBDocumentClient replaced. Nothing
 *    of the SDK runs (no marshalling, no signing, no middleware stack): what is timed is our code only.
 *  - 'http': NodeHttpHandler.handle replaced. The SDK does all its client-side work (marshall, serialize,
 *    sign, parse, unmarshall); only the network is gone, answered on the next turn of the event loop.
 */
import { Readable } from 'node:stream';
import type * as Sdk from './seam-sdk';
import { answerDynamo, answerSecret, fromWire, toWire, type DynamoOperation } from './answers';

export type SdkModule = typeof Sdk;
type Service = 'dynamodb' | 'secretsmanager';

/**
 * Requests per service, and DynamoDB round trips: a request issued while another is in flight joins its
 * round trip (the handler issued them in parallel); one issued with none in flight starts a new one.
 */
export class SeamCounter {
  ddbRequests = 0;
  ddbRoundTrips = 0;
  smRequests = 0;
  unexpected: string[] = [];
  private inFlight = { dynamodb: 0, secretsmanager: 0 };

  reset(): void {
    this.ddbRequests = 0;
    this.ddbRoundTrips = 0;
    this.smRequests = 0;
  }

  begin(service: Service): void {
    if (service === 'dynamodb') {
      if (this.inFlight.dynamodb === 0) this.ddbRoundTrips += 1;
      this.ddbRequests += 1;
    } else {
      this.smRequests += 1;
    }
    this.inFlight[service] += 1;
  }

  end(service: Service): void {
    this.inFlight[service] -= 1;
  }
}

const METADATA = { httpStatusCode: 200, requestId: 'bench', attempts: 1, totalRetryDelay: 0 };
type AnyCommand = { input: Record<string, unknown> };
type Sendable = { send: (command: AnyCommand, ...rest: unknown[]) => Promise<unknown> };
const prototypeOf = (cls: { prototype: unknown }) => cls.prototype as Sendable;

/** The answer is computed at once; it is delivered on the microtask queue, as fast as a promise can settle. */
const answerSoon = <T>(counter: SeamCounter, service: Service, answer: () => T): Promise<T> => {
  counter.begin(service);
  let value: T;
  try {
    value = answer();
  } catch (error) {
    return Promise.resolve().then(() => {
      counter.end(service);
      throw error;
    });
  }
  return Promise.resolve().then(() => {
    counter.end(service);
    return value;
  });
};

export const installClientSeam = (sdk: SdkModule, counter: SeamCounter): void => {
  // Any other client reaching the Smithy base class's send is a call the seam does not know: fail loudly.
  const base = Object.getPrototypeOf(sdk.DynamoDBClient.prototype) as Sendable;
  base.send = function unexpectedSend(command: AnyCommand) {
    counter.unexpected.push(`${this.constructor.name}: ${JSON.stringify(command.input).slice(0, 120)}`);
    return Promise.reject(new Error('bench seam: an SDK client the seam does not answer'));
  };

  const docOperation = (command: AnyCommand): DynamoOperation | undefined =>
    command instanceof sdk.UpdateCommand ? 'UpdateItem'
    : command instanceof sdk.PutCommand ? 'PutItem'
    : command instanceof sdk.GetCommand ? 'GetItem'
    : command instanceof sdk.DeleteCommand ? 'DeleteItem'
    : undefined;
  const rawOperation = (command: AnyCommand): DynamoOperation | undefined =>
    command instanceof sdk.UpdateItemCommand ? 'UpdateItem'
    : command instanceof sdk.PutItemCommand ? 'PutItem'
    : command instanceof sdk.GetItemCommand ? 'GetItem'
    : command instanceof sdk.DeleteItemCommand ? 'DeleteItem'
    : undefined;

  const shape = (operation: DynamoOperation, out: Record<string, unknown> | undefined) =>
    ({ $metadata: METADATA, ...(out === undefined ? {} : operation === 'GetItem' ? { Item: out } : { Attributes: out }) });

  prototypeOf(sdk.DynamoDBDocumentClient).send = function benchDocumentSend(command: AnyCommand) {
    return answerSoon(counter, 'dynamodb', () => {
      const operation = docOperation(command);
      if (operation === undefined) throw new Error('bench seam: unknown DynamoDB document command');
      const i = command.input as { Key?: Record<string, unknown>; Item?: Record<string, unknown>; ExpressionAttributeValues?: Record<string, unknown>; ReturnValues?: string };
      return shape(operation, answerDynamo({ operation, key: i.Key ?? { pk: i.Item?.pk }, values: i.ExpressionAttributeValues, returnValues: i.ReturnValues }));
    });
  };
  prototypeOf(sdk.DynamoDBClient).send = function benchDynamoSend(command: AnyCommand) {
    return answerSoon(counter, 'dynamodb', () => {
      const operation = rawOperation(command);
      if (operation === undefined) throw new Error('bench seam: unknown DynamoDB command');
      const i = command.input as { Key?: unknown; Item?: unknown; ExpressionAttributeValues?: unknown; ReturnValues?: string };
      const out = answerDynamo({ operation, key: fromWire(i.Key) ?? { pk: fromWire(i.Item)?.pk }, values: fromWire(i.ExpressionAttributeValues), returnValues: i.ReturnValues });
      return shape(operation, out && toWire(out));
    });
  };
  prototypeOf(sdk.SecretsManagerClient).send = function benchSecretsSend(command: AnyCommand) {
    return answerSoon(counter, 'secretsmanager', () => {
      if (!(command instanceof sdk.GetSecretValueCommand)) throw new Error('bench seam: unknown Secrets Manager command');
      return { $metadata: METADATA, ...answerSecret(command.input.SecretId) };
    });
  };
};

interface WireRequest {
  headers: Record<string, string | undefined>;
  body?: unknown;
}

export const installHttpSeam = (sdk: SdkModule, counter: SeamCounter): void => {
  const header = (h: WireRequest['headers'], name: string) => Object.entries(h).find(([k]) => k.toLowerCase() === name)?.[1];
  (sdk.NodeHttpHandler.prototype as unknown as { handle: (r: WireRequest) => Promise<unknown> }).handle = async function benchHandle(request: WireRequest) {
    const [prefix = '', operation = ''] = (header(request.headers, 'x-amz-target') ?? '').split('.');
    const service: Service | undefined = prefix.startsWith('DynamoDB') ? 'dynamodb' : prefix === 'secretsmanager' ? 'secretsmanager' : undefined;
    if (service === undefined) {
      counter.unexpected.push(`http: ${prefix}.${operation}`);
      throw new Error('bench seam: a request the HTTP seam does not answer');
    }
    counter.begin(service);
    const raw = typeof request.body === 'string' ? request.body : Buffer.from((request.body as Uint8Array | undefined) ?? []).toString('utf8');
    const input = JSON.parse(raw || '{}') as Record<string, unknown>;
    let status = 200;
    let payload: unknown;
    if (service === 'secretsmanager') {
      try {
        payload = answerSecret(input.SecretId);
      } catch (error) {
        status = 400;
        payload = { __type: 'ResourceNotFoundException', message: (error as Error).message };
      }
    } else {
      const op = operation as DynamoOperation;
      const out = answerDynamo({
        operation: op,
        key: fromWire(input.Key) ?? { pk: fromWire(input.Item)?.pk },
        values: fromWire(input.ExpressionAttributeValues),
        returnValues: typeof input.ReturnValues === 'string' ? input.ReturnValues : undefined,
      });
      payload = out === undefined ? {} : op === 'GetItem' ? { Item: toWire(out) } : { Attributes: toWire(out) };
    }
    const text = Buffer.from(JSON.stringify(payload));
    // A real answer is an I/O event: the next turn of the event loop at the earliest.
    await new Promise<void>((resolve) => setImmediate(resolve));
    counter.end(service);
    return {
      response: new sdk.HttpResponse({
        statusCode: status,
        headers: {
          'content-type': service === 'dynamodb' ? 'application/x-amz-json-1.0' : 'application/x-amz-json-1.1',
          'content-length': String(text.length),
          'x-amzn-requestid': 'bench',
        },
        body: Readable.from([text]),
      }),
    };
  };
};

/**
 * Wraps the global fetch (the provider client's and the baseline's) to time each provider exchange in full,
 * body included: the body is read here and handed on in memory, so what the caller does with the answer
 * afterwards (parse it) is still counted as its own time.
 */
export interface ProviderTimer {
  ms: number;
  cpuMs: number;
  calls: number;
  /** When set, every exchange's [start, end] in µs of the monotonic clock (for the profile step). */
  windows?: [number, number][];
  reset(): void;
}
export const installFetchTimer = (): ProviderTimer => {
  const realFetch = globalThis.fetch;
  const timer: ProviderTimer = {
    ms: 0,
    cpuMs: 0,
    calls: 0,
    reset() {
      this.ms = 0;
      this.cpuMs = 0;
      this.calls = 0;
    },
  };
  globalThis.fetch = async function timedFetch(input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]): Promise<Response> {
    // The window opens before and closes after the CPU readings, so their cost is taken out with the provider's.
    const started = process.hrtime.bigint();
    const cpu = process.cpuUsage();
    try {
      const res = await realFetch(input, init);
      const body = await res.arrayBuffer();
      return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
    } finally {
      const { user, system } = process.cpuUsage(cpu);
      const ended = process.hrtime.bigint();
      timer.ms += Number(ended - started) / 1e6;
      timer.windows?.push([Number(started / 1000n), Number(ended / 1000n)]);
      timer.cpuMs += (user + system) / 1000;
      timer.calls += 1;
    }
  };
  return timer;
};
