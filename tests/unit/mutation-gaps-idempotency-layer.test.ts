/**
 * Gaps a mutation run of middleware/ found in the Idempotency-Key layer and the errors layer
 * (docs/mutation.md), stated as what a client (or the operator reading logs and alarms) sees, through a
 * real Middy pipeline: http-error-handler, the errors layer, the idempotency layer on the real DynamoDB
 * adapter (dynalite), and a stand-in handler.
 *
 * - the key's format at its edges (API.md: 8 to 128 characters of A-Z a-z 0-9 _ - : .), anchored at both ends;
 * - a replay's status, body and headers (`Idempotent-Replayed: true`), a key's scope (the route);
 * - the code the record keeps (the handler gets it back on a retry after an uncertain failure), and
 *   whether the retry skips the limits;
 * - the options: every documented one accepted, an unknown one refused at cold start; the defaults
 *   (a dead invocation's lock lasts 30 s);
 * - a waiting duplicate: it polls at `pollMs` (never in a tight loop), gives up 1 s before its Lambda's
 *   deadline (or after `maxWaitMs` when the context has no deadline), and starts afresh when the first
 *   attempt fails for certain;
 * - the errors layer: validator details at their edges, the metrics and log words alarms and people read.
 *
 * Each test loads the layers afresh (jest.isolateModules): the module-level parts (the key pattern, the
 * option list, the defaults) are then evaluated inside the test, where a mutation run can see them.
 */
import { randomBytes } from 'node:crypto';
import type { Request } from '@middy/core';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import type { Store } from '../../lib/store/types';
import type { IdempotencyOptions } from '../../middleware/idempotency';
import { emittedMetrics } from '../support/emf';
import { useDynalite } from '../support/dynalite';

interface Layers {
  idempotency: typeof import('../../middleware/idempotency');
  errors: typeof import('../../middleware/errors');
  lib: typeof import('../../lib/errors');
  log: typeof import('../../lib/log');
  middy: typeof import('@middy/core').default;
  httpErrorHandler: typeof import('@middy/http-error-handler').default;
}

/** The layers as a cold start loads them. */
const coldStart = (): Layers => {
  let layers: Layers | undefined;
  jest.isolateModules(() => {
    layers = {
      idempotency: require('../../middleware/idempotency'),
      errors: require('../../middleware/errors'),
      lib: require('../../lib/errors'),
      log: require('../../lib/log'),
      middy: require('@middy/core').default,
      httpErrorHandler: require('@middy/http-error-handler').default,
    };
  });
  return layers!;
};

const db = useDynalite('idem-layer');
afterEach(() => jest.restoreAllMocks());

// The secrets layer's hash key (base64).
const HASH_KEY = randomBytes(32).toString('base64');
/** A Lambda context; `remainingMs: null` is a context without getRemainingTimeInMillis (a local run). */
const lambdaContext = (remainingMs: number | null = 10_000) =>
  ({ hashKey: HASH_KEY, ...(remainingMs === null ? {} : { getRemainingTimeInMillis: () => remainingMs }) }) as never;

let seq = 0;
const phone = (): string => `+9198${String(10_000_000 + ++seq).slice(-8)}`;
const key = (): string => `order-${randomBytes(6).toString('hex')}`;
const event = (idempotencyKey: string | undefined, phoneNumber: string) =>
  ({ headers: idempotencyKey === undefined ? {} : { 'idempotency-key': idempotencyKey }, body: { phoneNumber } }) as never;
const phoneOf = (r: Request<APIGatewayProxyEventV2>): string => (r.event.body as unknown as { phoneNumber: string }).phoneNumber;

interface Answer {
  statusCode: number;
  headers?: Record<string, string>;
  body?: string;
}
const created = (otpRequestId: string): Answer => ({ statusCode: 201, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ otpRequestId }) });
const bodyOf = (a: Answer): Record<string, unknown> => JSON.parse(a.body ?? 'null') as Record<string, unknown>;

/** The send route's layers in the handlers' order, around `handler`. */
const pipeline = (L: Layers, handler: (event: unknown, context: unknown) => Promise<Answer | undefined>, opts: Partial<IdempotencyOptions> = {}) => {
  const h = L.middy()
    .use(L.httpErrorHandler({ logger: false }))
    .use(L.errors.errorsMiddleware())
    .use(L.idempotency.idempotencyMiddleware({ store: db.store, scope: 'send-otp', fingerprint: phoneOf, ...opts }))
    .handler(handler as never);
  return (e: unknown, context: unknown = lambdaContext()) => h(e as never, context as never) as unknown as Promise<Answer | undefined>;
};

/** A first request that began (its record is pending) and is still running, or died: only its `before` ran. */
const began = async (L: Layers, e: unknown, opts: Partial<IdempotencyOptions> = {}) => {
  const layer = L.idempotency.idempotencyMiddleware({ store: db.store, scope: 'send-otp', fingerprint: phoneOf, ...opts });
  const request = { event: e, context: lambdaContext(), response: undefined, error: undefined, internal: {} } as unknown as Request<APIGatewayProxyEventV2>;
  await layer.before!(request as never);
  return { layer, request };
};

/** A clock that only moves when the layer sleeps; `onSleep` runs at each poll with the time elapsed. */
const virtualClock = (onSleep: (elapsed: number) => Promise<void> = async () => undefined) => {
  const start = 1_800_000_000_000;
  let t = start;
  return {
    now: () => t,
    sleep: async (ms: number) => {
      t += ms;
      await onSleep(t - start);
    },
    elapsed: () => t - start,
  };
};

/** A store whose reads are counted. */
const countingReads = (store: Store) => {
  let reads = 0;
  return {
    store: { ...store, readIdempotent: async (k: string) => ((reads += 1), store.readIdempotent(k)) } as Store,
    reads: () => reads,
  };
};

describe('the Idempotency-Key format (API.md: 8 to 128 characters of A-Z a-z 0-9 _ - : .)', () => {
  it('a key of 7 characters is 400 invalid_request naming the header; 8 and 128 are accepted; 129 is 400', async () => {
    const L = coldStart();
    let ran = 0;
    const send = pipeline(L, async () => ((ran += 1), created(`id-${ran}`)));
    const short = (await send(event('abcdefg', phone())))!;
    expect(short.statusCode).toBe(400);
    expect(bodyOf(short)).toEqual({ error: 'invalid_request', message: expect.stringMatching(/^Idempotency-Key must be 8 to 128 characters/) });
    expect((await send(event('abcdefgh', phone())))!.statusCode).toBe(201);
    expect((await send(event('k'.repeat(128), phone())))!.statusCode).toBe(201);
    const long = (await send(event('m'.repeat(129), phone())))!;
    expect(long.statusCode).toBe(400);
    expect(bodyOf(long).error).toBe('invalid_request');
    expect(ran).toBe(2);
  });

  it('every allowed character is accepted: letters of both cases, digits, _ - : .', async () => {
    const L = coldStart();
    const send = pipeline(L, async () => created('x'));
    expect((await send(event('aZ09_-:.', phone())))!.statusCode).toBe(201);
  });

  it('a key with a space, a slash, a non-ASCII letter or a newline is refused, also when it is only at either end', async () => {
    const L = coldStart();
    let ran = 0;
    const send = pipeline(L, async () => ((ran += 1), created('x')));
    for (const bad of ['order 12345', 'order/12345', 'ordér-12345', '!order-12345', 'order-12345!', ' order-12345', 'order-12345\n', '🙂order-12345']) {
      const answer = (await send(event(bad, phone())))!;
      expect([bad, answer.statusCode, bodyOf(answer).error]).toEqual([bad, 400, 'invalid_request']);
    }
    expect(ran).toBe(0);
  });

  it('a request without any headers at all (not even an empty map) is simply not idempotent', async () => {
    const L = coldStart();
    const send = pipeline(L, async () => created('plain'));
    const answer = (await send({ body: { phoneNumber: phone() } }))!;
    expect(answer.statusCode).toBe(201);
    expect(answer.headers?.['Idempotent-Replayed']).toBeUndefined();
  });
});

describe('replays', () => {
  it('a replay answers the first status and body again, with Idempotent-Replayed: true and Content-Type application/json; the handler runs once', async () => {
    const L = coldStart();
    let ran = 0;
    const send = pipeline(L, async () => ((ran += 1), created('first-id')));
    const k = key();
    const number = phone();
    const first = (await send(event(k, number)))!;
    expect(first.statusCode).toBe(201);
    expect(first.headers?.['Idempotent-Replayed']).toBeUndefined();
    const again = (await send(event(k, number)))!;
    expect(again).toEqual({ statusCode: 201, headers: { 'Content-Type': 'application/json', 'Idempotent-Replayed': 'true' }, body: first.body });
    expect(ran).toBe(1);
    // The same key with another body is 409.
    const other = (await send(event(k, phone())))!;
    expect(other.statusCode).toBe(409);
    expect(bodyOf(other).error).toBe('idempotency_conflict');
  });

  it('a key belongs to its route: the same key on another route is another request, not a conflict or a replay', async () => {
    const L = coldStart();
    const k = key();
    const send = pipeline(L, async () => created('on-send'));
    const resend = pipeline(L, async () => created('on-resend'), { scope: 'resend-otp' });
    expect(bodyOf((await send(event(k, phone())))!)).toEqual({ otpRequestId: 'on-send' });
    const elsewhere = (await resend(event(k, phone())))!;
    expect(elsewhere.statusCode).toBe(201);
    expect(bodyOf(elsewhere)).toEqual({ otpRequestId: 'on-resend' });
    expect(elsewhere.headers?.['Idempotent-Replayed']).toBeUndefined();
  });

  it('a replay thrown past a pipeline without the errors layer still reads as what it is in the Lambda\'s error log', async () => {
    const L = coldStart();
    const bare = L.middy()
      .use(L.idempotency.idempotencyMiddleware({ store: db.store, scope: 'send-otp', fingerprint: phoneOf }))
      .handler((async () => created('bare')) as never);
    const k = key();
    const number = phone();
    await bare(event(k, number), lambdaContext());
    const thrown = await bare(event(k, number), lambdaContext()).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(thrown).toMatchObject({ name: 'IdempotentReplay', message: 'idempotent replay', response: { statusCode: 201 } });
    expect(String(thrown)).toBe('IdempotentReplay: idempotent replay');
  });

  it('an invocation that answers nothing is not an error of this layer', async () => {
    const L = coldStart();
    const send = pipeline(L, async () => undefined);
    await expect(send(event(key(), phone()))).resolves.toBeUndefined();
  });

  it('a 201 that cannot be remembered is still a 201, and the warning says so with the store\'s error', async () => {
    const L = coldStart();
    const failure = new Error('DynamoDB said no');
    const store = { ...db.store, completeIdempotent: async () => Promise.reject(failure) } as Store;
    const warn = jest.spyOn(L.log.logger, 'warn').mockImplementation(() => undefined);
    const send = pipeline(L, async () => created('kept'), { store });
    expect((await send(event(key(), phone())))!.statusCode).toBe(201);
    expect(warn.mock.calls).toEqual([['could not store the idempotent response', { error: failure }]]);
  });
});

describe('the code the record keeps, and the limits', () => {
  it('the handler gets the kept code; a retry after an uncertain failure gets that very code and skips the limits; after a certain failure, a new code and the limits again', async () => {
    const L = coldStart();
    const fresh = ['111111', '222222', '333333', '444444'];
    const seen: { code: string | undefined; limitsTaken: boolean }[] = [];
    let fail: Error | undefined;
    const h = L.middy()
      .use(L.httpErrorHandler({ logger: false }))
      .use(L.errors.errorsMiddleware())
      .use(L.idempotency.idempotencyMiddleware({ store: db.store, scope: 'send-otp', fingerprint: phoneOf, newCode: () => fresh.shift()! }))
      .use({ before: async (request) => void seen.push({ code: undefined, limitsTaken: L.idempotency.limitsAlreadyTaken(request) }) })
      .handler((async (_e: unknown, context: object) => {
        seen[seen.length - 1]!.code = L.idempotency.idempotentCode(context);
        if (fail) throw fail;
        return created('x');
      }) as never);
    const send = (e: unknown) => h(e as never, lambdaContext()) as unknown as Promise<Answer>;

    const uncertain = key();
    const number = phone();
    fail = new L.lib.UpstreamTimeout();
    expect((await send(event(uncertain, number))).statusCode).toBe(504);
    fail = undefined;
    expect((await send(event(uncertain, number))).statusCode).toBe(201);
    expect(seen).toEqual([
      { code: '111111', limitsTaken: false },
      { code: '111111', limitsTaken: true },
    ]);

    seen.length = 0;
    const certain = key();
    fail = new L.lib.UpstreamError('rejected', 400);
    expect((await send(event(certain, phone()))).statusCode).toBe(502);
    fail = undefined;
    expect((await send(event(certain, phone()))).statusCode).toBe(201);
    expect(seen).toEqual([
      { code: '333333', limitsTaken: false },
      { code: '444444', limitsTaken: false },
    ]);
  });

  it('without newCode, or without a key, the handler gets no kept code', async () => {
    const L = coldStart();
    const codes: (string | undefined)[] = [];
    const send = pipeline(L, async (_e, context) => (codes.push(L.idempotency.idempotentCode(context as object)), created('x')));
    await send(event(key(), phone()));
    await send(event(undefined, phone()));
    expect(codes).toEqual([undefined, undefined]);
  });
});

describe('options', () => {
  it('every documented option is accepted; an unknown one is a TypeError at cold start naming it', () => {
    const L = coldStart();
    const all: Required<IdempotencyOptions> = {
      store: db.store,
      scope: 'send-otp',
      fingerprint: phoneOf,
      newCode: () => '123456',
      ttlSeconds: 60,
      lockMs: 1000,
      maxWaitMs: 500,
      pollMs: 10,
      now: Date.now,
      sleep: async () => undefined,
    };
    expect(() => L.idempotency.idempotencyMiddleware(all)).not.toThrow();
    expect(() => L.idempotency.idempotencyMiddleware({ ...all, tllSeconds: 60 } as never)).toThrow(new TypeError('idempotencyMiddleware: unknown option "tllSeconds"'));
  });

  it('by default a dead invocation\'s pending record holds its key for 30 s: a duplicate before then is 409, after it takes over', async () => {
    const L = coldStart();
    const k = key();
    const number = phone();
    const clock = virtualClock();
    await began(L, event(k, number), { now: clock.now });
    let ran = 0;
    const at = (ms: number) => pipeline(L, async () => ((ran += 1), created('taken-over')), { now: () => clock.now() + ms, maxWaitMs: 0 });
    const early = (await at(29_999)(event(k, number)))!;
    expect(early.statusCode).toBe(409);
    expect(bodyOf(early).message).toMatch(/still being processed/);
    expect(ran).toBe(0);
    expect((await at(30_001)(event(k, number)))!.statusCode).toBe(201);
    expect(ran).toBe(1);
  });
});

describe('a duplicate that finds the first request still running', () => {
  it('polls the store every pollMs (the default sleep), not in a tight loop, then gives up with 409', async () => {
    const L = coldStart();
    const k = key();
    const number = phone();
    await began(L, event(k, number));
    const counted = countingReads(db.store);
    const send = pipeline(L, async () => created('never'), { store: counted.store, pollMs: 100, maxWaitMs: 400 });
    const answer = (await send(event(k, number), lambdaContext(null)))!;
    expect(answer.statusCode).toBe(409);
    // 400 ms of waiting at one read per 100 ms: about four reads (a tight loop makes dozens).
    expect(counted.reads()).toBeGreaterThanOrEqual(1);
    expect(counted.reads()).toBeLessThanOrEqual(8);
  });

  it('with 3 s left in its Lambda, it gives up 1 s before the deadline: 409 at 2 s, not one poll later', async () => {
    const L = coldStart();
    const k = key();
    const number = phone();
    const clock = virtualClock();
    await began(L, event(k, number), { now: clock.now });
    const send = pipeline(L, async () => created('never'), { now: clock.now, sleep: clock.sleep, pollMs: 100 });
    const answer = (await send(event(k, number), lambdaContext(3000)))!;
    expect(answer.statusCode).toBe(409);
    expect(clock.elapsed()).toBeGreaterThan(1900);
    expect(clock.elapsed()).toBeLessThanOrEqual(2000);
  });

  it('without a Lambda deadline (a context without getRemainingTimeInMillis), it waits the whole maxWaitMs', async () => {
    const L = coldStart();
    const k = key();
    const number = phone();
    const clock = virtualClock();
    await began(L, event(k, number), { now: clock.now });
    const send = pipeline(L, async () => created('never'), { now: clock.now, sleep: clock.sleep, pollMs: 100, maxWaitMs: 5000 });
    const answer = (await send(event(k, number), lambdaContext(null)))!;
    expect(answer.statusCode).toBe(409);
    expect(clock.elapsed()).toBeGreaterThan(4900);
    expect(clock.elapsed()).toBeLessThanOrEqual(5000);
  });

  it('gets the first one\'s 201 as a replay once it completes', async () => {
    const L = coldStart();
    const k = key();
    const number = phone();
    let first: Awaited<ReturnType<typeof began>> | undefined;
    const clock = virtualClock(async (elapsed) => {
      if (elapsed !== 300) return;
      first!.request.response = created('from-the-first');
      await first!.layer.after!(first!.request as never);
    });
    first = await began(L, event(k, number), { now: clock.now });
    let ran = 0;
    const send = pipeline(L, async () => ((ran += 1), created('second')), { now: clock.now, sleep: clock.sleep, pollMs: 100 });
    const answer = (await send(event(k, number)))!;
    expect(answer).toMatchObject({ statusCode: 201, headers: { 'Idempotent-Replayed': 'true' } });
    expect(bodyOf(answer)).toEqual({ otpRequestId: 'from-the-first' });
    expect(ran).toBe(0);
  });

  it('runs itself when the first one fails for certain meanwhile (its record is dropped): 201', async () => {
    const L = coldStart();
    const k = key();
    const number = phone();
    let first: Awaited<ReturnType<typeof began>> | undefined;
    const clock = virtualClock(async (elapsed) => {
      if (elapsed !== 300) return;
      first!.request.error = new L.lib.UpstreamError('rejected', 400);
      await first!.layer.onError!(first!.request as never);
    });
    first = await began(L, event(k, number), { now: clock.now });
    let ran = 0;
    const send = pipeline(L, async () => ((ran += 1), created('second')), { now: clock.now, sleep: clock.sleep, pollMs: 100 });
    const answer = (await send(event(k, number)))!;
    expect(answer.statusCode).toBe(201);
    expect(answer.headers?.['Idempotent-Replayed']).toBeUndefined();
    expect(bodyOf(answer)).toEqual({ otpRequestId: 'second' });
    expect(ran).toBe(1);
  });
});

describe('the errors layer', () => {
  /** Runs one invocation that throws `thrown`, with what the logger and the metrics (EMF on stdout) got. */
  const observe = async (L: Layers, thrown: unknown, after?: (request: Request) => void) => {
    const logged: [string, string][] = [];
    for (const level of ['error', 'warn', 'info', 'debug'] as const) {
      jest.spyOn(L.log.logger, level).mockImplementation(((message: string) => void logged.push([level, message])) as never);
    }
    let h = L.middy().use(L.httpErrorHandler({ logger: false })).use(L.errors.errorsMiddleware());
    if (after) h = h.use({ onError: async (request) => after(request) });
    const handler = h.handler(async () => {
      throw thrown;
    });
    const printed: string[] = [];
    const write = process.stdout.write;
    process.stdout.write = ((chunk: string | Uint8Array) => (printed.push(String(chunk)), true)) as typeof process.stdout.write;
    let answer: Answer;
    try {
      answer = (await handler({}, {} as never)) as unknown as Answer;
    } finally {
      process.stdout.write = write;
    }
    const metrics = emittedMetrics(printed);
    return { answer, logged, metrics: metrics.map((m) => m.name), kinds: metrics.filter((m) => m.name === 'UpstreamError').map((m) => m.dimensions.Kind) };
  };
  const validatorError = (data: unknown) =>
    Object.assign(new Error('Event object failed validation'), { statusCode: 400, expose: true, cause: { package: '@middy/validator', data } });

  it('validator details at their edges: no path is "/", no message is "invalid", a path outside the body is kept whole', async () => {
    const L = coldStart();
    const { answer } = await observe(L, validatorError([{ message: 'must be object' }, { instancePath: '/body/otp' }, { instancePath: '/headers/body', message: 'bad' }]));
    expect(answer.statusCode).toBe(400);
    expect(bodyOf(answer)).toEqual({
      error: 'invalid_request',
      message: 'The request body is not valid.',
      details: [
        { path: '/', message: 'must be object' },
        { path: '/otp', message: 'invalid' },
        { path: '/headers/body', message: 'bad' },
      ],
    });
  });

  it('a validator 400 without a list of errors is 400 "The request body is not valid." without details', async () => {
    const L = coldStart();
    const { answer } = await observe(L, validatorError('not a list'));
    expect(answer.statusCode).toBe(400);
    expect(bodyOf(answer)).toEqual({ error: 'invalid_request', message: 'The request body is not valid.' });
  });

  it('an answer a later layer already made is neither logged nor counted as a failure', async () => {
    const L = coldStart();
    const seen = await observe(L, new Error('x'), (request) => void (request.response = { statusCode: 418, body: '{}' }));
    expect(seen.answer).toMatchObject({ statusCode: 418 });
    expect(seen.logged).toEqual([]);
    expect(seen.metrics).toEqual([]);
  });

  it('StartMessaging\'s own 429 is our 429 rate_limited, counted as UpstreamError{Kind=rate_limited} for the alarm', async () => {
    const L = coldStart();
    const seen = await observe(L, new L.lib.ProviderRateLimited(2));
    expect(seen.answer.statusCode).toBe(429);
    expect(bodyOf(seen.answer).error).toBe('rate_limited');
    expect(seen.kinds).toEqual(['rate_limited']);
    // Our own limits are not an upstream failure.
    expect((await observe(L, new L.lib.RateLimited(2))).kinds).toEqual([]);
  });

  it('a 503 is counted under its reason: wallet, store, secrets', async () => {
    const L = coldStart();
    for (const reason of ['wallet', 'store', 'secrets'] as const) {
      const seen = await observe(L, new L.lib.ServiceUnavailable(reason));
      expect([reason, seen.answer.statusCode, seen.kinds]).toEqual([reason, 503, [reason]]);
    }
  });

  it('a spent daily budget is a warning that says so, not an error', async () => {
    const L = coldStart();
    const seen = await observe(L, new L.lib.ServiceUnavailable('budget', 3600));
    expect(seen.answer.statusCode).toBe(503);
    expect(seen.logged).toEqual([['warn', 'send refused: daily budget spent']]);
  });
});
