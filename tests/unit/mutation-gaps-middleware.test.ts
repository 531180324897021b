/**
 * Gaps a mutation run found in the layers (docs/mutation.md), stated as behaviour of each layer in a
 * Middy pipeline:
 * - errors: any 4xx raised by a layer is the client's 400 invalid_request, from 400 up to 499; a 5xx
 *   is ours (500), even when it comes from the validator (a response that fails its schema);
 * - idempotency: failing to remember a delivered answer still answers 201, and says so in the log;
 * - send: failing to put back the replaced code after a send the provider refused still answers with
 *   the provider's refusal, and says so in the log.
 */
import { randomBytes } from 'node:crypto';
import middy from '@middy/core';
import httpErrorHandler from '@middy/http-error-handler';
import { createError } from '@middy/util';
import { UpstreamError } from '../../lib/errors';
import { logger } from '../../lib/log';
import { loadConfig } from '../../lib/config';
import { sendOtp } from '../../lib/otp/send';
import type { StartMessagingClient } from '../../lib/provider/startmessaging';
import type { Store } from '../../lib/store/types';
import { errorsMiddleware } from '../../middleware/errors';
import { idempotencyMiddleware } from '../../middleware/idempotency';
import { useDynalite } from '../support/dynalite';

// The secrets layer's hash key (base64).
const KEY = randomBytes(32).toString('base64');
const lambdaContext = () => ({ hashKey: KEY, getRemainingTimeInMillis: () => 10_000 }) as never;

let logged: { level: string; message: string }[];
beforeEach(() => {
  logged = [];
  for (const level of ['error', 'warn', 'info', 'debug'] as const) {
    jest.spyOn(logger, level).mockImplementation(((message: string) => void logged.push({ level, message })) as never);
  }
});
afterEach(() => jest.restoreAllMocks());
const problems = () => logged.filter((l) => l.level === 'warn' || l.level === 'error');

describe('errors: what a layer throws, as the client sees it', () => {
  const answerTo = async (thrown: unknown) => {
    const handler = middy()
      .use(httpErrorHandler({ logger: false }))
      .use(errorsMiddleware())
      .handler(async () => {
        throw thrown;
      });
    const r = (await handler({}, {} as never)) as unknown as { statusCode: number; body: string };
    return { status: r.statusCode, error: (JSON.parse(r.body) as { error: string }).error };
  };

  it.each([400, 401, 404, 405, 406, 422, 431, 451])('a %i from a layer is 400 invalid_request', async (status) => {
    expect(await answerTo(createError(status, 'layer said no'))).toEqual({ status: 400, error: 'invalid_request' });
  });
  it.each([500, 501, 502, 503, 504, 511])('a %i from a layer is 500 internal_error (ours, not the client\'s)', async (status) => {
    expect(await answerTo(createError(status, 'layer broke'))).toEqual({ status: 500, error: 'internal_error' });
  });
  it('a validator error that is not about the request (a response failing its schema) is 500, not the client\'s fault', async () => {
    const error = createError(500, 'Response object failed validation', { cause: { package: '@middy/validator', data: [{ instancePath: '/body', message: 'x' }] } });
    expect(await answerTo(error)).toEqual({ status: 500, error: 'internal_error' });
  });
  it('a validator 400 lists what is wrong; another layer\'s 400 does not pretend to', async () => {
    const validator = createError(400, 'Event object failed validation', {
      cause: { package: '@middy/validator', data: [{ instancePath: '/body/phoneNumber', message: 'must be string' }] },
    });
    const r1 = await middy()
      .use(httpErrorHandler({ logger: false }))
      .use(errorsMiddleware())
      .handler(async () => {
        throw validator;
      })({}, {} as never);
    expect(JSON.parse((r1 as { body: string }).body)).toMatchObject({ error: 'invalid_request', details: [{ path: '/phoneNumber', message: 'must be string' }] });
    const other = createError(400, 'bad', { cause: { package: '@middy/something-else', data: [{ instancePath: '/body/x', message: 'y' }] } });
    const r2 = await middy()
      .use(httpErrorHandler({ logger: false }))
      .use(errorsMiddleware())
      .handler(async () => {
        throw other;
      })({}, {} as never);
    expect(JSON.parse((r2 as { body: string }).body)).toEqual({ error: 'invalid_request', message: expect.any(String) });
  });
});

describe('layers that write to the store after the answer is decided', () => {
  const db = useDynalite('gaps');
  const failing = (store: Store, method: keyof Store): Store =>
    ({ ...store, [method]: async () => Promise.reject(new Error('DynamoDB said no')) }) as Store;

  it('idempotency: a 201 whose answer cannot be remembered is still a 201, and the failure is logged', async () => {
    const store = failing(db.store, 'completeIdempotent');
    const handler = middy()
      .use(idempotencyMiddleware({ store, scope: 'send-otp', fingerprint: () => 'same body' }))
      .handler(async () => ({ statusCode: 201, body: '{"otpRequestId":"x"}' }));
    const answer = await handler({ headers: { 'idempotency-key': 'order-000001' }, body: {} } as never, lambdaContext());
    expect(answer).toMatchObject({ statusCode: 201 });
    expect(problems()).toHaveLength(1);
  });

  it('send: a failed undo after a send the provider refused keeps the refusal as the answer and is logged', async () => {
    const store = failing(db.store, 'restoreOtp');
    const refused = new UpstreamError('rejected', 400);
    const provider = { sendOtp: async () => Promise.reject(refused) } as unknown as StartMessagingClient;
    const run = sendOtp({ config: loadConfig({}), store, provider }, { phoneNumber: '+919876543210', apiKey: 'k', hashKey: KEY });
    await expect(run).rejects.toBe(refused);
    expect(problems()).toHaveLength(1);
  });
});
