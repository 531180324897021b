import httpJsonBodyParser from '@middy/http-json-body-parser';
import type { MiddlewareObj, Request } from '@middy/core';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { InvalidRequest, PayloadTooLarge, UnsupportedMediaType } from '../lib/errors';

/**
 * Content type, size and JSON, in API.md's terms: 415 unless `application/json` (a charset
 * parameter is fine), 413 over `maxBytes`, 400 for anything that does not parse to a JSON object.
 * Parsing itself is @middy/http-json-body-parser's; this layer only decides the status codes
 * (Middy 6 answers malformed JSON with 415, API.md wants 400) and adds the size limit.
 * Expects lower-cased headers (API Gateway HTTP APIs send them so).
 */
export interface JsonBodyOptions {
  maxBytes?: number;
}

const JSON_MEDIA_TYPE = /^application\/json\s*(;.*)?$/i;
const defaults: Required<JsonBodyOptions> = { maxBytes: 4096 };

export const jsonBodyMiddleware = (opts: JsonBodyOptions = {}): MiddlewareObj<APIGatewayProxyEventV2> => {
  for (const key of Object.keys(opts)) if (!(key in defaults)) throw new TypeError(`jsonBodyMiddleware: unknown option "${key}"`);
  const { maxBytes } = { ...defaults, ...opts };
  // The parser's own content-type check is replaced by ours (which also refuses `+json` variants with the API's 415).
  const parse = httpJsonBodyParser({ disableContentTypeCheck: true } as Parameters<typeof httpJsonBodyParser>[0]).before!;

  const jsonBodyMiddlewareBefore = async (request: Request<APIGatewayProxyEventV2>): Promise<void> => {
    const { event } = request;
    const contentType = event.headers?.['content-type'];
    if (contentType === undefined || !JSON_MEDIA_TYPE.test(contentType.trim())) throw new UnsupportedMediaType();

    const body = event.body;
    if (body === undefined || body === null || body === '') throw new InvalidRequest('The request body must be a JSON object.');
    // Measured on the bytes the client sent; a base64 body is 4/3 of them.
    const size = event.isBase64Encoded ? Math.floor((body.length * 3) / 4) : Buffer.byteLength(body, 'utf8');
    if (size > maxBytes) throw new PayloadTooLarge();

    try {
      await parse(request as never);
    } catch {
      throw new InvalidRequest('The request body is not valid JSON.');
    }
    const parsed: unknown = event.body;
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new InvalidRequest('The request body must be a JSON object.');
    }
  };
  return { before: jsonBodyMiddlewareBefore };
};
