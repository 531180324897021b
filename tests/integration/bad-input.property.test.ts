/**
 * Issue 4: bad input on both routes, through the REAL handlers (fast-check). Whatever arrives, the
 * answer is one of API.md's documented 4xx with a JSON `{ error, message }` body whose `error` is a
 * code API.md gives for that status; never a 5xx; and nothing that is not a valid send reaches the
 * provider.
 */
import fc from 'fast-check';
import { startStack, type Answer, type RequestOptions, type Stack } from '../support/stack';

const VALID_PHONE = '+919876543210';
/** API.md, "Errors": the codes each status may carry, per route (only what bad input can meet). */
const SEND_CODES: Record<number, readonly string[]> = {
  400: ['invalid_request', 'invalid_phone_number'],
  403: ['country_not_allowed'],
  409: ['idempotency_conflict'],
  413: ['payload_too_large'],
  415: ['unsupported_media_type'],
};
const VERIFY_CODES: Record<number, readonly string[]> = {
  400: ['invalid_request', 'invalid_code'],
  410: ['otp_expired'],
  413: ['payload_too_large'],
  415: ['unsupported_media_type'],
  429: ['too_many_attempts'],
};
const ERROR_FIELDS = new Set(['error', 'message', 'details', 'retryAfterSeconds', 'attemptsRemaining']);
const JSON_TYPES = ['application/json', 'application/json; charset=utf-8', 'Application/JSON', 'application/json;charset=UTF-8'];
const OTHER_TYPES = ['text/plain', 'application/xml', 'text/json', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/vnd.api+json', 'application/jsonx', '', 'json'];

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ SEND_COOLDOWN_SECONDS: '0' });
});
afterAll(async () => {
  await stack.close();
});

/** What the route accepts: exactly `{ phoneNumber }` (a string that is an Indian mobile number). */
const isValidSend = (value: unknown): boolean =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 1 &&
  typeof (value as { phoneNumber?: unknown }).phoneNumber === 'string' && /^\+91[6-9]\d{9}$/.test((value as { phoneNumber: string }).phoneNumber);

const rawSend = (raw: string, opts: Omit<RequestOptions, 'raw'> = {}) => stack.send(undefined, { ...opts, raw });
const rawVerify = (raw: string, opts: Omit<RequestOptions, 'raw'> = {}) => stack.verify(undefined, { ...opts, raw });

const expectDocumented = (answer: Answer, codes: Record<number, readonly string[]>): void => {
  const allowed = codes[answer.status];
  if (allowed === undefined || !allowed.includes(String(answer.body.error))) {
    throw new Error(`undocumented answer ${answer.status} ${JSON.stringify(answer.body)}`);
  }
  expect(typeof answer.body.message).toBe('string');
  for (const key of Object.keys(answer.body)) expect(ERROR_FIELDS.has(key)).toBe(true);
  expect(answer.headers['content-type']).toBe('application/json');
};

/** Runs one bad send and checks the answer and that the provider saw nothing. */
const badSend = async (raw: string, opts: Omit<RequestOptions, 'raw'> = {}): Promise<Answer> => {
  const before = stack.sandbox.calls.length;
  const answer = await rawSend(raw, opts);
  expectDocumented(answer, SEND_CODES);
  expect(stack.sandbox.calls.length).toBe(before);
  return answer;
};
const badVerify = async (raw: string, opts: Omit<RequestOptions, 'raw'> = {}): Promise<Answer> => {
  const answer = await rawVerify(raw, opts);
  expectDocumented(answer, VERIFY_CODES);
  return answer;
};

const RUNS = { numRuns: 150 };
const FEW = { numRuns: 100 };

// Values that are objects most of the time, sometimes with the right key.
const bodyValue = fc.oneof(
  fc.jsonValue(),
  fc.anything().map((v) => JSON.parse(JSON.stringify(v ?? null) ?? 'null') as unknown),
  fc.record({ phoneNumber: fc.oneof(fc.string(), fc.jsonValue()) }, { requiredKeys: [] }),
  fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 4 }).map((d) => ({ phoneNumber: VALID_PHONE, ...d })),
);
const notAValidSend = bodyValue.filter((v) => !isValidSend(v));

describe('POST /auth/send-otp', () => {
  it('arbitrary JSON values: a documented 4xx, no SMS', async () => {
    await fc.assert(fc.asyncProperty(notAValidSend, async (v) => void (await badSend(JSON.stringify(v)))), RUNS);
  });

  it('arbitrary strings as the body: a documented 4xx, no SMS', async () => {
    await fc.assert(fc.asyncProperty(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' })), async (raw) => {
      fc.pre(!((): boolean => { try { return isValidSend(JSON.parse(raw)); } catch { return false; } })());
      await badSend(raw);
    }), RUNS);
  });

  it('a content type that is not JSON is 415, even for a valid body; JSON with any charset parameter is parsed', async () => {
    await fc.assert(fc.asyncProperty(fc.constantFrom(...OTHER_TYPES, undefined), async (type) => {
      const answer = await badSend(JSON.stringify({ phoneNumber: VALID_PHONE }), { headers: { 'content-type': type as string } });
      expect(answer.status).toBe(415);
      expect(answer.body.error).toBe('unsupported_media_type');
    }), { numRuns: 30 });
    await fc.assert(fc.asyncProperty(fc.constantFrom(...JSON_TYPES), notAValidSend, async (type, v) => {
      const answer = await badSend(JSON.stringify(v), { headers: { 'content-type': type } });
      expect(answer.status).not.toBe(415);
    }), FEW);
  });

  it('base64 bodies (as API Gateway passes binary ones) are answered exactly like the same bytes in the clear', async () => {
    await fc.assert(fc.asyncProperty(fc.oneof(notAValidSend.map((v) => JSON.stringify(v)), fc.string()), async (raw) => {
      fc.pre(!((): boolean => { try { return isValidSend(JSON.parse(raw)); } catch { return false; } })());
      const clear = await badSend(raw);
      const encoded = await badSend(raw, { isBase64Encoded: true });
      expect({ status: encoded.status, error: encoded.body.error }).toEqual({ status: clear.status, error: clear.body.error });
    }), FEW);
  });

  it('a valid body, base64-encoded, is a normal send', async () => {
    const answer = await stack.send({ phoneNumber: VALID_PHONE }, { isBase64Encoded: true });
    expect(answer.status).toBe(201);
    expect(stack.sandbox.lastCode(VALID_PHONE)).toMatch(/^\d{6}$/);
  });

  it('prototype-pollution keys are extra properties (400 invalid_request) and pollute nothing', async () => {
    const polluting = fc.constantFrom('__proto__', 'constructor', 'prototype');
    const payload = fc.oneof(
      fc.constant({ polluted: 'yes' }),
      fc.constant({ prototype: { polluted: 'yes' } }),
      fc.jsonValue(),
    );
    await fc.assert(fc.asyncProperty(polluting, payload, fc.boolean(), async (key, value, first) => {
      const inner = `${JSON.stringify(key)}:${JSON.stringify(value)}`;
      const phone = `"phoneNumber":${JSON.stringify(VALID_PHONE)}`;
      const raw = `{${first ? `${inner},${phone}` : `${phone},${inner}`}}`;
      const answer = await badSend(raw);
      expect(answer.status).toBe(400);
      expect(answer.body.error).toBe('invalid_request');
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted')).toBe(false);
    }), FEW);
  });

  it('bodies over 4 KiB (in bytes, whatever the characters) are 413, in the clear and base64-encoded', async () => {
    await fc.assert(fc.asyncProperty(fc.constantFrom('a', '9', 'é', '€', '😀', ' '), fc.integer({ min: 4097, max: 12_000 }), fc.boolean(), async (ch, bytes, base64) => {
      const head = '{"phoneNumber":"';
      const fill = ch.repeat(Math.ceil((bytes - head.length - 2) / Buffer.byteLength(ch)));
      const raw = `${head}${fill}"}`;
      expect(Buffer.byteLength(raw)).toBeGreaterThan(4096);
      const answer = await badSend(raw, { isBase64Encoded: base64 });
      expect({ status: answer.status, error: answer.body.error }).toEqual({ status: 413, error: 'payload_too_large' });
    }), FEW);
  });

  it.each([false, true])('the 4 KiB limit is exact (base64: %s): 4096 bytes are read, 4097 are not', async (base64) => {
    // Padded with JSON whitespace, so the size is exact and the body still parses.
    const body = '{"phoneNumber":"x"}';
    const exact = body + ' '.repeat(4096 - body.length);
    const over = exact + ' ';
    const atLimit = await badSend(exact, { isBase64Encoded: base64 });
    expect({ status: atLimit.status, error: atLimit.body.error }).toEqual({ status: 400, error: 'invalid_phone_number' });
    const overLimit = await badSend(over, { isBase64Encoded: base64 });
    expect({ status: overLimit.status, error: overLimit.body.error }).toEqual({ status: 413, error: 'payload_too_large' });
    // Every length of a base64 tail (padding "", "=", "==") around the limit.
    for (const n of [4094, 4095, 4096]) {
      const a = await badSend(body + ' '.repeat(n - body.length), { isBase64Encoded: base64 });
      expect(a.status).toBe(400);
    }
  });

  it('digits from other scripts (Arabic-Indic, Devanagari, fullwidth, …) are not a phone number', async () => {
    const scripts = [0x0660, 0x06f0, 0x0966, 0x09e6, 0xff10, 0x1d7ce, 0x0e50];
    const digit = (script: number, d: number) => String.fromCodePoint(script + d);
    await fc.assert(fc.asyncProperty(fc.constantFrom(...scripts), fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }), fc.constantFrom('+', '＋'), async (script, swap, plus) => {
      fc.pre(swap.some(Boolean) || plus !== '+');
      const digits = VALID_PHONE.slice(1).split('').map((c, i) => (swap[i] ? digit(script, Number(c)) : c));
      const answer = await badSend(JSON.stringify({ phoneNumber: plus + digits.join('') }));
      expect(answer.status).toBe(400);
      expect(['invalid_phone_number', 'invalid_request']).toContain(answer.body.error);
    }), FEW);
  });

  it.each([
    ['a later duplicate that is invalid', `{"phoneNumber":"${VALID_PHONE}","phoneNumber":"+1"}`],
    ['a later duplicate that is valid', `{"phoneNumber":"+1","phoneNumber":"${VALID_PHONE}"}`],
    ['the same value twice', `{"phoneNumber":"${VALID_PHONE}","phoneNumber":"${VALID_PHONE}"}`],
    ['a duplicate spelled with an escape', `{"phoneNumber":"+1","phone\\u004eumber":"${VALID_PHONE}"}`],
    ['a duplicate in a nested object', `{"phoneNumber":"${VALID_PHONE}","x":{"a":1,"a":2}}`],
  ])('duplicate JSON keys (%s): 400, no SMS', async (_, raw) => {
    const answer = await badSend(raw);
    expect(answer.status).toBe(400);
  });

  it('extra properties next to a valid number: 400 invalid_request naming the property', async () => {
    const extraKey = fc.string({ minLength: 1 }).filter((k) => k !== 'phoneNumber' && !k.includes('\u0000'));
    await fc.assert(fc.asyncProperty(extraKey, fc.jsonValue(), async (k, v) => {
      const answer = await badSend(JSON.stringify({ phoneNumber: VALID_PHONE, [k]: v }));
      expect({ status: answer.status, error: answer.body.error }).toEqual({ status: 400, error: 'invalid_request' });
    }), FEW);
  });

  it('a phoneNumber of the wrong type: 400 invalid_request', async () => {
    const wrong = fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.jsonValue()), fc.dictionary(fc.string(), fc.jsonValue()), fc.constant(919876543210));
    await fc.assert(fc.asyncProperty(wrong, async (v) => {
      const answer = await badSend(JSON.stringify({ phoneNumber: v }));
      expect({ status: answer.status, error: answer.body.error }).toEqual({ status: 400, error: 'invalid_request' });
    }), FEW);
  });

  it('arbitrary headers (any Idempotency-Key included) never turn a bad body into anything but a documented 4xx', async () => {
    const headerName = fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/).filter((h) => h !== 'content-type');
    await fc.assert(fc.asyncProperty(fc.dictionary(headerName, fc.string(), { maxKeys: 4 }), fc.option(fc.string()), notAValidSend, async (headers, idem, v) => {
      await badSend(JSON.stringify(v), { headers: { ...headers, ...(idem === null ? {} : { 'idempotency-key': idem }) } });
    }), FEW);
  });
});

describe('POST /auth/verify-otp', () => {
  const goodId = fc.stringMatching(/^[A-Za-z0-9_-]{1,128}$/);
  const goodOtp = fc.stringMatching(/^[0-9]{4,8}$/);
  const foreignDigits = fc.constantFrom(0x0660, 0x06f0, 0x0966, 0xff10).chain((script) =>
    fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 4, maxLength: 8 }).map((ds) => ds.map((d) => String.fromCodePoint(script + d)).join('')),
  );
  const badOtp = fc.oneof(
    fc.string().filter((s) => !/^[0-9]{4,8}$/.test(s)),
    foreignDigits,
    fc.stringMatching(/^[0-9]{1,3}$/),
    fc.stringMatching(/^[0-9]{9,20}$/),
    fc.integer({ min: 1000, max: 99_999_999 }),
    fc.constant(null),
    fc.array(goodOtp),
  );
  const badId = fc.oneof(
    fc.string().filter((s) => !/^[A-Za-z0-9_-]{1,128}$/.test(s)),
    fc.stringMatching(/^[A-Za-z0-9_-]{129,200}$/),
    fc.integer(),
    fc.constant(null),
    fc.dictionary(fc.string(), fc.string()),
  );

  it('a malformed otp: 400 invalid_request', async () => {
    await fc.assert(fc.asyncProperty(goodId, badOtp, async (id, otp) => {
      const answer = await badVerify(JSON.stringify({ otpRequestId: id, otp }));
      expect({ status: answer.status, error: answer.body.error }).toEqual({ status: 400, error: 'invalid_request' });
    }), RUNS);
  });

  it('a malformed otpRequestId: 400 invalid_request', async () => {
    await fc.assert(fc.asyncProperty(badId, goodOtp, async (id, otp) => {
      const answer = await badVerify(JSON.stringify({ otpRequestId: id, otp }));
      expect({ status: answer.status, error: answer.body.error }).toEqual({ status: 400, error: 'invalid_request' });
    }), RUNS);
  });

  it('a well-formed id that was never issued: 410 otp_expired, always the same answer', async () => {
    const bodies = new Set<string>();
    await fc.assert(fc.asyncProperty(goodId, goodOtp, async (id, otp) => {
      const answer = await badVerify(JSON.stringify({ otpRequestId: id, otp }));
      expect({ status: answer.status, error: answer.body.error }).toEqual({ status: 410, error: 'otp_expired' });
      bodies.add(JSON.stringify(answer.body));
    }), RUNS);
    expect(bodies.size).toBe(1);
  });

  it('arbitrary bodies, content types, base64 and extra properties: a documented 4xx', async () => {
    const body = fc.oneof(
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc.string(),
      fc.record({ otpRequestId: goodId, otp: goodOtp, extra: fc.jsonValue() }).map((v) => JSON.stringify(v)),
      fc.tuple(fc.constantFrom('__proto__', 'constructor', 'prototype'), goodId, goodOtp).map(([k, id, otp]) => `{"otpRequestId":"${id}","otp":"${otp}","${k}":{"polluted":1}}`),
      fc.tuple(goodId, goodOtp).map(([id, otp]) => `{"otpRequestId":"${id}","otp":"${otp}","otp":"x"}`),
    );
    await fc.assert(fc.asyncProperty(body, fc.constantFrom(...JSON_TYPES, ...OTHER_TYPES), fc.boolean(), async (raw, type, base64) => {
      const answer = await badVerify(raw, { headers: { 'content-type': type }, isBase64Encoded: base64 });
      if (OTHER_TYPES.includes(type)) expect(answer.status).toBe(415);
    }), RUNS);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('an otp with non-ASCII digits next to a real id: 400 invalid_request, and no attempt is spent', async () => {
    const { otpRequestId, code } = await stack.sendAndRead('+919812345678');
    for (const script of [0x0660, 0x0966, 0xff10]) {
      const lookalike = code.split('').map((d) => String.fromCodePoint(script + Number(d))).join('');
      const answer = await badVerify(JSON.stringify({ otpRequestId, otp: lookalike }));
      expect({ status: answer.status, error: answer.body.error }).toEqual({ status: 400, error: 'invalid_request' });
    }
    expect((await stack.verify({ otpRequestId, otp: code })).status).toBe(200);
  });
});

describe('what bad input leaves in the logs', () => {
  it('refusals are logged with their status and code only, nothing from the request', () => {
    const powertools = new Set(['level', 'message', 'timestamp', 'service', 'cold_start', 'function_arn', 'function_memory_size', 'function_name', 'function_request_id', 'sampling_rate', 'xray_trace_id']);
    const lines = stack.logs.join('').split('\n').filter((l) => l.trim() !== '');
    expect(lines.length).toBeGreaterThan(100);
    for (const line of lines) {
      const entry = JSON.parse(line) as Record<string, unknown>;
      if (entry.message !== 'request refused') continue;
      for (const key of Object.keys(entry)) if (!powertools.has(key)) expect(['status', 'code']).toContain(key);
    }
  });
});
