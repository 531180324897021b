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

/**
 * Whether an object in `text` (valid JSON: it parsed) names a property twice. JSON.parse silently
 * keeps the last one, so `{"phoneNumber":"+1…","phoneNumber":"+91…"}` would be read differently
 * here and by anything in front that keeps the first: refused instead (400 invalid_request).
 */
const hasDuplicateKeys = (text: string): boolean => {
  // Stryker disable next-line ArrayDeclaration: equivalent: text is a JSON object, so every string lies inside its outer {} and a stray bottom entry is never the innermost
  const open: (Set<string> | null)[] = []; // innermost last; null for an array
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (c === '{') open.push(new Set());
    else if (c === '[') open.push(null);
    else if (c === '}' || c === ']') open.pop();
    else if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') {
        if (end >= text.length) break;
        end += text[end] === '\\' ? 2 : 1;
      }
      const object = open.at(-1);
      let next = end + 1;
      while (text[next] === ' ' || text[next] === '\t' || text[next] === '\n' || text[next] === '\r') next += 1;
      // In valid JSON a string followed by ':' is a property name of the innermost object.
      if (object && text[next] === ':') {
        const name = JSON.parse(text.slice(i, end + 1)) as string;
        if (object.has(name)) return true;
        object.add(name);
      }
      i = end;
    }
  }
  return false;
};

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
    // Measured on the bytes the client sent (a base64 body decoded, its padding not counted).
    const size = event.isBase64Encoded ? Buffer.byteLength(body, 'base64') : Buffer.byteLength(body);
    if (size > maxBytes) throw new PayloadTooLarge();
    const text = event.isBase64Encoded ? Buffer.from(body, 'base64').toString('utf8') : body;

    try {
      await parse(request as never);
    } catch {
      throw new InvalidRequest('The request body is not valid JSON.');
    }
    const parsed: unknown = event.body;
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new InvalidRequest('The request body must be a JSON object.');
    }
    if (hasDuplicateKeys(text)) throw new InvalidRequest('The request body names a property more than once.');
  };
  return { before: jsonBodyMiddlewareBefore };
};
