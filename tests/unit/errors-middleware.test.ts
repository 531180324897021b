/**
 * middleware/errors.ts with @middy/http-error-handler, as the handlers use them: whatever is thrown
 * becomes one of API.md's error bodies; nothing of the thrown error (message, stack, provider text,
 * a secret) reaches the client; the structured logger records it; the console is never used.
 */
import middy from '@middy/core';
import httpErrorHandler from '@middy/http-error-handler';
import { createError } from '@middy/util';
import fc from 'fast-check';
import type { APIGatewayProxyResultV2 } from 'aws-lambda';
import {
  CountryNotAllowed,
  IdempotencyConflict,
  InternalError,
  InvalidCode,
  InvalidPhoneNumber,
  InvalidRequest,
  OtpExpired,
  PayloadTooLarge,
  ProviderRateLimited,
  RateLimited,
  ServiceUnavailable,
  TooManyAttempts,
  UnsupportedMediaType,
  UpstreamError,
  UpstreamTimeout,
  type OtpError,
} from '../../lib/errors';
import { logger } from '../../lib/log';
import { errorsMiddleware, toOtpError } from '../../middleware/errors';
import { IdempotentReplay } from '../../middleware/idempotency';

const SECRET = 'sm_live_dont_leak_0042';

interface Result {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

const answerTo = async (thrown: unknown): Promise<Result> => {
  const handler = middy()
    .use(httpErrorHandler({ logger: false }))
    .use(errorsMiddleware())
    .handler(async () => {
      throw thrown;
    });
  return (await handler({}, {} as never)) as unknown as Result;
};

let logged: { level: string; message: string; attributes: Record<string, unknown> }[];
let consoleCalls: number;
beforeEach(() => {
  logged = [];
  consoleCalls = 0;
  for (const level of ['error', 'warn', 'info', 'debug'] as const) {
    jest.spyOn(logger, level).mockImplementation(((message: string, attributes: Record<string, unknown> = {}) => {
      logged.push({ level, message, attributes });
    }) as never);
  }
  for (const method of ['log', 'error', 'warn', 'info', 'debug'] as const) {
    jest.spyOn(console, method).mockImplementation(() => void (consoleCalls += 1));
  }
});
afterEach(() => {
  jest.restoreAllMocks();
  // http-error-handler's default logger is console.error: the handlers pass logger: false.
  expect(consoleCalls).toBe(0);
});

const ERROR_FIELDS = new Set(['error', 'message', 'details', 'retryAfterSeconds', 'attemptsRemaining']);
const parse = (r: Result): Record<string, unknown> => {
  expect(r.headers['Content-Type']).toBe('application/json');
  const body = JSON.parse(r.body) as Record<string, unknown>;
  for (const key of Object.keys(body)) expect(ERROR_FIELDS.has(key)).toBe(true);
  return body;
};

describe('our own errors pass through with their status, code, fields and headers', () => {
  const cases: [OtpError, number, string][] = [
    [new InvalidRequest(), 400, 'invalid_request'],
    [new InvalidRequest('x', [{ path: '/phoneNumber', message: 'must be string' }]), 400, 'invalid_request'],
    [new InvalidPhoneNumber(), 400, 'invalid_phone_number'],
    [new CountryNotAllowed(), 403, 'country_not_allowed'],
    [new PayloadTooLarge(), 413, 'payload_too_large'],
    [new UnsupportedMediaType(), 415, 'unsupported_media_type'],
    [new IdempotencyConflict(), 409, 'idempotency_conflict'],
    [new RateLimited(12.2), 429, 'rate_limited'],
    [new ProviderRateLimited(0.2), 429, 'rate_limited'],
    [new InvalidCode(2), 400, 'invalid_code'],
    [new TooManyAttempts(), 429, 'too_many_attempts'],
    [new OtpExpired(), 410, 'otp_expired'],
    [new UpstreamError('unauthorized', 401), 502, 'upstream_error'],
    [new UpstreamTimeout(), 504, 'upstream_timeout'],
    [new ServiceUnavailable('store'), 503, 'service_unavailable'],
    [new ServiceUnavailable('budget', 3600), 503, 'service_unavailable'],
    [new InternalError(), 500, 'internal_error'],
  ];
  it.each(cases)('%p → %i %s', async (error, status, code) => {
    const r = await answerTo(error);
    expect(r.statusCode).toBe(status);
    const body = parse(r);
    expect(body).toEqual(error.toBody());
    expect(body.error).toBe(code);
    expect(r.headers).toMatchObject(error.headers);
  });

  it('429 and 503-with-a-wait carry Retry-After in whole seconds (at least 1), the same as retryAfterSeconds', async () => {
    for (const [error, seconds] of [[new RateLimited(12.2), 13], [new ProviderRateLimited(0.2), 1], [new ServiceUnavailable('budget', 3600), 3600]] as const) {
      const r = await answerTo(error);
      expect(r.headers['Retry-After']).toBe(String(seconds));
      expect(JSON.parse(r.body).retryAfterSeconds).toBe(seconds);
    }
  });

  it('the kind and upstream status of a provider failure are logged, never answered', async () => {
    const r = await answerTo(new UpstreamError('unauthorized', 401));
    expect(r.body).not.toMatch(/unauthorized|401/);
    expect(logged).toContainEqual(expect.objectContaining({ level: 'error', message: 'request failed', attributes: expect.objectContaining({ kind: 'unauthorized', upstreamStatus: 401 }) }));
  });
});

describe('anything else is 500 internal_error, with nothing of it in the answer', () => {
  const foreign: [string, unknown][] = [
    ['an Error', new Error(`boom ${SECRET}`)],
    ['a TypeError', new TypeError(`cannot read ${SECRET}`)],
    ['a string', `thrown string ${SECRET}`],
    ['undefined', undefined],
    ['null', null],
    ['an object', { message: SECRET, stack: SECRET }],
    ['an exposed 500', createError(500, `server ${SECRET}`)],
    ['a 503 from a library', Object.assign(new Error(SECRET), { statusCode: 503, expose: true })],
    ['an AWS SDK error', Object.assign(new Error(`User: arn:aws:iam::1:user/x is not authorized ${SECRET}`), { name: 'AccessDeniedException', $fault: 'client', $metadata: { httpStatusCode: 400 } })],
  ];
  it.each(foreign)('%s', async (_, thrown) => {
    const r = await answerTo(thrown);
    expect(r.statusCode).toBe(500);
    expect(parse(r)).toEqual({ error: 'internal_error', message: new InternalError().message });
    expect(JSON.stringify(r)).not.toContain(SECRET);
    expect(JSON.stringify(r)).not.toMatch(/ at |Error|stack/);
    const failed = logged.find((l) => l.message === 'request failed');
    expect(failed).toMatchObject({ level: 'error', attributes: { status: 500, code: 'internal_error' } });
  });

  it('property: whatever is thrown, the answer is a documented status with a closed-set code and none of the thrown text', async () => {
    const codes = new Set(['invalid_request', 'payload_too_large', 'unsupported_media_type', 'internal_error']);
    const thrown = fc.oneof(
      fc.string().map((m) => new Error(`${m}${SECRET}`)),
      fc.record({ statusCode: fc.integer({ min: 100, max: 599 }), message: fc.string().map((m) => m + SECRET), expose: fc.boolean() }),
      fc.constantFrom(400, 401, 403, 404, 405, 409, 413, 415, 422, 429, 500, 502, 503, 504).map((s) => createError(s, SECRET)),
      fc.anything(),
    );
    await fc.assert(
      fc.asyncProperty(thrown, async (t) => {
        const r = await answerTo(t);
        const body = parse(r);
        expect(codes.has(String(body.error))).toBe(true);
        expect([400, 413, 415, 500]).toContain(r.statusCode);
        expect(r.body).not.toContain(SECRET);
      }),
      { numRuns: 200 },
    );
  });
});

describe('Middy errors from the layers before the handler', () => {
  it('a @middy/validator error is 400 invalid_request with details, without the values', async () => {
    const error = createError(400, 'Event object failed validation', {
      cause: {
        package: '@middy/validator',
        data: [
          { instancePath: '/body', keyword: 'additionalProperties', params: { additionalProperty: 'extra' }, message: 'must NOT have additional properties' },
          { instancePath: '/body', keyword: 'required', params: { missingProperty: 'otp' }, message: "must have required property 'otp'" },
          { instancePath: '/body/otp', keyword: 'pattern', params: { pattern: '^[0-9]+$' }, message: 'must match pattern "^[0-9]+$"', data: SECRET },
        ],
      },
    });
    const r = await answerTo(error);
    expect(r.statusCode).toBe(400);
    expect(parse(r)).toEqual({
      error: 'invalid_request',
      message: expect.any(String),
      details: [
        { path: '/', message: 'unknown property "extra"' },
        { path: '/', message: 'missing property "otp"' },
        { path: '/otp', message: 'must match pattern "^[0-9]+$"' },
      ],
    });
    expect(r.body).not.toContain(SECRET);
    expect(logged).toContainEqual(expect.objectContaining({ level: 'info', message: 'request refused' }));
  });

  it('at most ten details', async () => {
    const data = Array.from({ length: 50 }, (_, i) => ({ instancePath: `/body/p${i}`, message: 'bad', params: {} }));
    const r = await answerTo(createError(400, 'x', { cause: { package: '@middy/validator', data } }));
    expect((parse(r).details as unknown[]).length).toBe(10);
  });

  it.each([
    [createError(413, 'too big'), 413, 'payload_too_large'],
    [createError(415, 'Unsupported Media Type', { cause: { package: '@middy/http-json-body-parser', data: SECRET } }), 415, 'unsupported_media_type'],
    [createError(422, `Invalid or malformed JSON ${SECRET}`), 400, 'invalid_request'],
    [createError(404, SECRET), 400, 'invalid_request'],
  ] as [unknown, number, string][])('%p → %i %s', async (thrown, status, code) => {
    const r = await answerTo(thrown);
    expect(r.statusCode).toBe(status);
    expect(parse(r).error).toBe(code);
    expect(r.body).not.toContain(SECRET);
  });
});

describe('toOtpError', () => {
  it('returns our errors unchanged and maps the rest', () => {
    const own = new OtpExpired();
    expect(toOtpError(own)).toBe(own);
    expect(toOtpError(new Error('x'))).toBeInstanceOf(InternalError);
    expect(toOtpError({ statusCode: 413 })).toBeInstanceOf(PayloadTooLarge);
    expect(toOtpError({ statusCode: 415 })).toBeInstanceOf(UnsupportedMediaType);
    expect(toOtpError({ statusCode: 499 })).toBeInstanceOf(InvalidRequest);
    expect(toOtpError({ statusCode: 500 })).toBeInstanceOf(InternalError);
    expect(toOtpError({ statusCode: 399 })).toBeInstanceOf(InternalError);
  });
});

describe('replays and answers already made', () => {
  it('an IdempotentReplay is answered with the remembered response, and not logged as an error', async () => {
    const remembered: APIGatewayProxyResultV2 = { statusCode: 201, headers: { 'Content-Type': 'application/json', 'Idempotent-Replayed': 'true' }, body: '{"otpRequestId":"abc"}' };
    const r = await answerTo(new IdempotentReplay(remembered));
    expect(r).toMatchObject({ statusCode: 201, body: '{"otpRequestId":"abc"}' });
    expect(logged.filter((l) => l.level === 'error')).toHaveLength(0);
  });

  it('a response set by an earlier onError is left alone', async () => {
    const handler = middy()
      .use(httpErrorHandler({ logger: false }))
      .use(errorsMiddleware())
      .use({ onError: async (request) => void (request.response = { statusCode: 418, body: '{}' }) })
      .handler(async () => {
        throw new Error('x');
      });
    expect(await handler({}, {} as never)).toMatchObject({ statusCode: 418 });
  });
});

describe('logging', () => {
  it('4xx are logged at info as "request refused", 5xx at error as "request failed" with the cause', async () => {
    await answerTo(new InvalidPhoneNumber());
    expect(logged).toEqual([{ level: 'info', message: 'request refused', attributes: { status: 400, code: 'invalid_phone_number' } }]);
    logged.length = 0;
    const cause = new Error('dynamo said no');
    await answerTo(new ServiceUnavailable('store', undefined, cause));
    expect(logged).toEqual([{ level: 'error', message: 'request failed', attributes: { status: 503, code: 'service_unavailable', reason: 'store', error: cause } }]);
  });
});
