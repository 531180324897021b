/**
 * middleware/json-body.ts on its own: API.md's 415 / 413 / 400 decisions, base64 bodies, the exact
 * 4 KiB limit and refusal of duplicate property names.
 */
import middy from '@middy/core';
import fc from 'fast-check';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { InvalidRequest, OtpError, PayloadTooLarge, UnsupportedMediaType } from '../../lib/errors';
import { jsonBodyMiddleware, type JsonBodyOptions } from '../../middleware/json-body';

const event = (body: string | undefined, opts: { contentType?: string | null; base64?: boolean } = {}): APIGatewayProxyEventV2 =>
  ({
    headers: opts.contentType === null ? {} : { 'content-type': opts.contentType ?? 'application/json' },
    body: body === undefined ? undefined : opts.base64 ? Buffer.from(body, 'utf8').toString('base64') : body,
    isBase64Encoded: opts.base64 ?? false,
  }) as unknown as APIGatewayProxyEventV2;

const run = async (e: APIGatewayProxyEventV2, opts?: JsonBodyOptions): Promise<unknown> =>
  middy<APIGatewayProxyEventV2, unknown>()
    .use(jsonBodyMiddleware(opts))
    .handler(async (ev) => ev.body)(e, {} as never);

const refusal = async (e: APIGatewayProxyEventV2, opts?: JsonBodyOptions): Promise<OtpError> => {
  try {
    await run(e, opts);
  } catch (error) {
    expect(error).toBeInstanceOf(OtpError);
    return error as OtpError;
  }
  throw new Error('expected a refusal');
};

describe('options', () => {
  it('refuses an unknown option (a typo would otherwise silently keep the default)', () => {
    expect(() => jsonBodyMiddleware({ maxbytes: 10 } as unknown as JsonBodyOptions)).toThrow(TypeError);
  });
});

describe('content type', () => {
  it.each(['application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON', 'application/json;charset=UTF-8', ' application/json '])('%s is JSON', async (type) => {
    await expect(run(event('{"a":1}', { contentType: type }))).resolves.toEqual({ a: 1 });
  });
  it.each([null, '', 'text/plain', 'application/xml', 'application/vnd.api+json', 'application/jsonx', 'text/json', 'application/json-patch+json', 'multipart/form-data'])(
    '%p is 415 unsupported_media_type, even with a JSON body',
    async (type) => {
      const error = await refusal(event('{"a":1}', { contentType: type }));
      expect(error).toBeInstanceOf(UnsupportedMediaType);
      expect({ status: error.statusCode, code: error.code }).toEqual({ status: 415, code: 'unsupported_media_type' });
    },
  );
  it('a non-JSON type wins over a body that is too large (415 before 413)', async () => {
    expect(await refusal(event('x'.repeat(5000), { contentType: 'text/plain' }))).toBeInstanceOf(UnsupportedMediaType);
  });
});

describe('body', () => {
  it.each([undefined, ''])('%p is 400 invalid_request', async (body) => {
    const error = await refusal(event(body));
    expect(error).toBeInstanceOf(InvalidRequest);
    expect(error.statusCode).toBe(400);
  });

  it.each(['{', '{"a":}', 'nul', "{'a':1}", '{"a":1}}', '\uFEFF{"a":1}', '{"a":1,}'])('malformed JSON %p is 400, and the message does not echo it', async (raw) => {
    const error = await refusal(event(raw));
    expect(error).toBeInstanceOf(InvalidRequest);
    expect(error.message).toBe('The request body is not valid JSON.');
  });

  it.each(['null', '[]', '[{"a":1}]', '1', '"a"', 'true'])('JSON that is not an object (%s) is 400', async (raw) => {
    expect(await refusal(event(raw))).toBeInstanceOf(InvalidRequest);
  });

  it('a base64 body is decoded before parsing', async () => {
    await expect(run(event('{"phoneNumber":"+919876543210","é":"😀"}', { base64: true }))).resolves.toEqual({ phoneNumber: '+919876543210', é: '😀' });
  });

  it('property: any JSON object round-trips, in the clear and base64-encoded', async () => {
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 6 }), fc.boolean(), async (obj, base64) => {
        const raw = JSON.stringify(obj);
        fc.pre(Buffer.byteLength(raw) <= 4096);
        await expect(run(event(raw, { base64 }))).resolves.toEqual(JSON.parse(raw));
      }),
      { numRuns: 150 },
    );
  });
});

describe('size', () => {
  const sized = (bytes: number): string => {
    const head = '{"a":"';
    return head + 'x'.repeat(bytes - head.length - 2) + '"}';
  };

  it.each([false, true])('exactly maxBytes is read, one byte more is 413 (base64: %s), for every base64 padding', async (base64) => {
    for (const limit of [4096, 4097, 4098, 30, 31, 32]) {
      await expect(run(event(sized(limit), { base64 }), { maxBytes: limit })).resolves.toEqual({ a: expect.any(String) });
      const error = await refusal(event(sized(limit + 1), { base64 }), { maxBytes: limit });
      expect(error).toBeInstanceOf(PayloadTooLarge);
      expect({ status: error.statusCode, code: error.code }).toEqual({ status: 413, code: 'payload_too_large' });
    }
  });

  it('counts bytes, not characters', async () => {
    const threeByte = `{"a":"${'€'.repeat(1400)}"}`; // 1408 characters, 4208 bytes
    expect(threeByte.length).toBeLessThan(4096);
    expect(await refusal(event(threeByte))).toBeInstanceOf(PayloadTooLarge);
    expect(await refusal(event(threeByte, { base64: true }))).toBeInstanceOf(PayloadTooLarge);
  });

  it('defaults to 4 KiB', async () => {
    await expect(run(event(sized(4096)))).resolves.toBeDefined();
    expect(await refusal(event(sized(4097)))).toBeInstanceOf(PayloadTooLarge);
  });
});

describe('duplicate property names', () => {
  it.each([
    '{"phoneNumber":"+919876543210","phoneNumber":"+1"}',
    '{"phoneNumber":"+1","phoneNumber":"+919876543210"}',
    '{"a":1,"a":1}',
    '{"a":1,"\\u0061":2}',
    '{ "a" : 1 ,\n "a"\t: 2 }',
    '{"x":{"b":1,"b":2}}',
    '{"x":[{"b":1},{"c":1,"c":2}]}',
    '{"__proto__":1,"__proto__":2}',
  ])('%s is 400 invalid_request', async (raw) => {
    const error = await refusal(event(raw));
    expect(error).toBeInstanceOf(InvalidRequest);
    expect(error.code).toBe('invalid_request');
    expect(await refusal(event(raw, { base64: true }))).toBeInstanceOf(InvalidRequest);
  });

  it.each([
    '{"a":{"a":{"a":1}}}',
    '{"x":[{"a":1},{"a":2}],"a":3}',
    '{"a":"b:","b":"a"}',
    '{"a":"\\"b\\":1","b":2}',
    '{"a":["a","a"],"b":"a"}',
    '{"a\\\\":1,"a":2}',
    '{"":1,"x":{"":2}}',
  ])('%s has no duplicate: accepted', async (raw) => {
    await expect(run(event(raw))).resolves.toEqual(JSON.parse(raw));
  });

  it('property: a repeated name anywhere is refused; the same text without it is accepted', async () => {
    const key = fc.string({ maxLength: 6 });
    await fc.assert(
      fc.asyncProperty(fc.dictionary(key, fc.jsonValue({ maxDepth: 2 }), { minKeys: 1, maxKeys: 5 }), fc.jsonValue({ maxDepth: 1 }), fc.nat(), async (obj, extra, pick) => {
        const raw = JSON.stringify(obj);
        await expect(run(event(raw))).resolves.toEqual(JSON.parse(raw));
        const names = Object.keys(obj);
        const repeated = names[pick % names.length]!;
        const withDuplicate = `${raw.slice(0, -1)},${JSON.stringify(repeated)}:${JSON.stringify(extra)}}`;
        expect(await refusal(event(withDuplicate))).toBeInstanceOf(InvalidRequest);
      }),
      { numRuns: 150 },
    );
  });
});
