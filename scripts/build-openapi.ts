/**
 * OpenAPI 3.1 description of the public contract (shared API.md), generated from the JSON schemas in
 * schemas/ — the single source of truth for request and response bodies. Nothing here restates a body
 * shape: request and response schemas are copied verbatim from the files; this module only adds the
 * routes, statuses, headers and which error codes each status can carry.
 *
 *   import { buildOpenApi } from '../scripts/build-openapi';   // served as GET /openapi.json by `npm start`
 *   tsx scripts/build-openapi.ts [out.json]                    // writes dist/openapi.json by default
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import responsesSchema from '../schemas/responses.json';
import sendOtpSchema from '../schemas/send-otp.json';
import verifyOtpSchema from '../schemas/verify-otp.json';

import type { ErrorCode } from '../lib/errors';

type Json = Record<string, unknown>;

/** API.md, "Errors": status of every code, a sample message and the extra body fields it carries. */
const ERRORS: Record<ErrorCode, { status: number; summary: string; example: Json }> = {
  invalid_request: {
    status: 400,
    summary: 'Body is not JSON, or a property is missing, extra, of the wrong type or malformed (optional `details`).',
    example: { message: 'The request body is not valid.', details: [{ path: '/otp', message: 'must match pattern "^[0-9]+$"' }] },
  },
  invalid_phone_number: {
    status: 400,
    summary: '`phoneNumber` is not E.164 or not a mobile number.',
    example: { message: 'Enter a mobile number in international format, for example +919876543210.' },
  },
  country_not_allowed: {
    status: 403,
    summary: 'A valid number whose calling code is not in ALLOWED_COUNTRY_CODES.',
    example: { message: 'Codes cannot be sent to numbers in this country.' },
  },
  challenge_failed: {
    status: 403,
    summary: 'Bot challenge enforced (CHALLENGE_PROVIDER set, CHALLENGE_MODE=enforce) and `challengeToken` is missing or rejected by the provider. No SMS sent, no limit spent.',
    example: { message: 'Please confirm you are not a robot, then ask for the code again.' },
  },
  payload_too_large: {
    status: 413,
    summary: 'Body over 4 KiB.',
    example: { message: 'The request body is larger than 4 KiB.' },
  },
  unsupported_media_type: {
    status: 415,
    summary: '`Content-Type` is not JSON.',
    example: { message: 'Send the request body as JSON with Content-Type: application/json.' },
  },
  idempotency_conflict: {
    status: 409,
    summary: '`Idempotency-Key` reused with a different body.',
    example: { message: 'This Idempotency-Key was already used with a different request body.' },
  },
  rate_limited: {
    status: 429,
    summary: 'A send limit is reached (the message does not say which); `Retry-After` header and `retryAfterSeconds`.',
    example: { message: 'Too many codes were requested. Please wait before asking for another one.', retryAfterSeconds: 42 },
  },
  invalid_code: {
    status: 400,
    summary: 'Wrong code; `attemptsRemaining` (at least 1).',
    example: { message: 'That code is not correct.', attemptsRemaining: 2 },
  },
  too_many_attempts: {
    status: 429,
    summary:
      "The code's attempt budget is spent (the code is dead), or the client's IP failure budget (VERIFY_MAX_FAILURES_PER_IP_PER_HOUR) is: then with `Retry-After` and `retryAfterSeconds`, and the guess is not judged.",
    example: { message: 'Too many wrong codes. Request a new code.' },
  },
  otp_expired: {
    status: 410,
    summary: 'Unknown, expired, superseded or already used `otpRequestId` (an unknown id answers exactly like an expired one).',
    example: { message: 'This code has expired or was already used. Request a new code.' },
  },
  upstream_error: {
    status: 502,
    summary: 'StartMessaging failed (5xx after retries, 4xx other than 429, unreadable answer).',
    example: { message: 'The SMS provider could not send the code. Please try again.' },
  },
  service_unavailable: {
    status: 503,
    summary: 'DynamoDB or Secrets Manager unreachable, StartMessaging wallet empty, or the daily send budget spent; `Retry-After` where known.',
    example: { message: 'The service is temporarily unavailable. Please try again later.' },
  },
  upstream_timeout: {
    status: 504,
    summary: 'StartMessaging did not answer within STARTMESSAGING_TIMEOUT_MS (after retries).',
    example: { message: 'The SMS provider did not answer in time. Please try again.' },
  },
  internal_error: {
    status: 500,
    summary: 'Anything else.',
    example: { message: 'Something went wrong on our side.' },
  },
  // Only behind the CloudFront edge, for a request that bypassed it (middleware/origin-verify.ts); a caller of
  // the documented public URL never sees it, so no route lists it.
  forbidden: {
    status: 403,
    summary: 'The request did not come through the service\'s public (CloudFront) address.',
    example: { message: 'This endpoint is only served through the service\'s public address.' },
  },
};

/** Body fields API.md requires for a code (the shared Error schema has them optional). */
const REQUIRED_EXTRA: Partial<Record<ErrorCode, string>> = {
  rate_limited: 'retryAfterSeconds',
  invalid_code: 'attemptsRemaining',
};

/** Which codes each route can answer. Verify never calls StartMessaging, so it has no 502/504. */
const ROUTE_ERRORS: Record<'send' | 'verify' | 'jwks', ErrorCode[]> = {
  jwks: ['service_unavailable', 'internal_error'],
  send: [
    'invalid_request',
    'invalid_phone_number',
    'country_not_allowed',
    'challenge_failed',
    'idempotency_conflict',
    'payload_too_large',
    'unsupported_media_type',
    'rate_limited',
    'internal_error',
    'upstream_error',
    'service_unavailable',
    'upstream_timeout',
  ],
  verify: [
    'invalid_request',
    'invalid_code',
    'otp_expired',
    'payload_too_large',
    'unsupported_media_type',
    'too_many_attempts',
    'internal_error',
    'service_unavailable',
  ],
};

export const IDEMPOTENCY_KEY_PATTERN = '^[A-Za-z0-9_\\-:.]{8,128}$';

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  409: 'Conflict',
  410: 'Gone',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

const clone = <T>(value: T): T => structuredClone(value);
const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });

const errorResponses = (codes: readonly ErrorCode[]): Record<string, Json> => {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) {
    const { status } = ERRORS[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const out: Record<string, Json> = {};
  for (const [status, list] of [...byStatus].sort(([a], [b]) => a - b)) {
    const narrowing: Json = { type: 'object', properties: { error: { enum: [...list] } } };
    const conditions = list
      .filter((code) => REQUIRED_EXTRA[code])
      .map((code) => ({
        if: { properties: { error: { const: code } }, required: ['error'] },
        then: { required: [REQUIRED_EXTRA[code]] },
      }));
    const examples: Record<string, Json> = {};
    for (const code of list) {
      examples[code] = { summary: ERRORS[code].summary, value: { error: code, ...clone(ERRORS[code].example) } };
    }
    const response: Json = {
      description: `${STATUS_TEXT[status] ?? 'Error'}: ${list.map((c) => `\`${c}\``).join(', ')}. ${list
        .map((c) => `\`${c}\`: ${ERRORS[c].summary}`)
        .join(' ')}`,
      content: {
        'application/json': {
          schema: { allOf: [ref('Error'), narrowing, ...conditions] },
          examples,
        },
      },
    };
    if (list.includes('rate_limited')) {
      response.headers = { 'Retry-After': { $ref: '#/components/headers/RetryAfter' } };
    } else if (list.includes('service_unavailable')) {
      response.headers = { 'Retry-After': { $ref: '#/components/headers/RetryAfterWhereKnown' } };
    }
    out[String(status)] = response;
  }
  return out;
};

const JWKS_SCHEMA: Json = {
  type: 'object',
  required: ['keys'],
  additionalProperties: false,
  properties: {
    keys: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['kty', 'crv', 'x', 'y', 'kid', 'alg', 'use'],
        additionalProperties: false,
        properties: {
          kty: { const: 'EC' },
          crv: { const: 'P-256' },
          x: { type: 'string', pattern: '^[A-Za-z0-9_-]{43}$' },
          y: { type: 'string', pattern: '^[A-Za-z0-9_-]{43}$' },
          kid: { type: 'string', minLength: 1, maxLength: 128 },
          alg: { const: 'ES256' },
          use: { const: 'sig' },
        },
      },
    },
  },
};

const jsonBody = (schemaName: string, example: Json): Json => ({
  required: true,
  description: 'JSON, at most 4 KiB. `Content-Type: application/json` (a charset parameter is fine).',
  content: { 'application/json': { schema: ref(schemaName), example } },
});

/** The OpenAPI 3.1 document. A fresh deep copy every call: callers may mutate it. */
export function buildOpenApi(): Record<string, unknown> {
  const definitions = (responsesSchema as { definitions: Record<string, Json> }).definitions;
  const need = (name: string): Json => {
    const schema = definitions[name];
    if (!schema) throw new Error(`schemas/responses.json has no definitions.${name}`);
    return clone(schema);
  };

  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
    info: {
      title: 'OTP service',
      version: '0.1.0',
      summary: 'Send and verify SMS one-time codes; a signed token proves the verified number to a checkout.',
      description:
        'Every response is `application/json`. Errors have the body `{ "error": "<code>", "message": "<text for a person>" }` ' +
        'plus the fields named per code. Request and response schemas are generated verbatim from `schemas/*.json`.',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    // Relative to wherever the document is served from: `npm start` serves it next to the API, and a deployed
    // copy is read against its own stage URL. The variable lets a client name a deployed API.
    servers: [
      { url: '/', description: 'The API that serves this document (npm start: http://127.0.0.1:3000)' },
      {
        url: '{apiBase}',
        description: 'A deployed stage: its HTTP API URL (serverless deploy prints it)',
        variables: { apiBase: { default: 'http://127.0.0.1:3000', description: 'The API base URL, without a trailing slash' } },
      },
    ],
    tags: [{ name: 'auth', description: 'One-time codes over SMS' }],
    paths: {
      '/auth/send-otp': {
        post: {
          operationId: 'sendOtp',
          tags: ['auth'],
          summary: 'Send a one-time code by SMS',
          description:
            'Generates a code, keeps only a keyed hash of it and asks StartMessaging to deliver it. A new send for the same ' +
            'number supersedes the previous code. With an `Idempotency-Key`, a repeat of the same key and body within 24 hours ' +
            'returns the first response again (same `otpRequestId`), sends no SMS and consumes no limit.',
          parameters: [{ $ref: '#/components/parameters/IdempotencyKey' }],
          requestBody: jsonBody('SendOtpRequest', { phoneNumber: '+919876543210' }),
          responses: {
            '201': {
              description: 'Created: the code was handed to the SMS provider.',
              content: {
                'application/json': {
                  schema: ref('SendOtpResponse'),
                  example: { otpRequestId: '3f0c9a1e5b7d4c2a8e6f1b3d5a7c9e0f', expiresAt: '2026-11-29T10:35:00.000Z', resendAfterSeconds: 60 },
                },
              },
            },
            ...errorResponses(ROUTE_ERRORS.send),
          },
        },
      },
      '/auth/verify-otp': {
        post: {
          operationId: 'verifyOtp',
          tags: ['auth'],
          summary: 'Verify a code and get a signed token',
          description:
            'A code verifies at most once, only before it expires, and only within VERIFY_MAX_ATTEMPTS tries. The token is a ' +
            'compact JWS signed ES256 (header `alg`, `typ: JWT`, `kid`) with claims `iss`, `aud`, `sub` (the verified E.164 number), ' +
            '`jti` (the otpRequestId), `iat` and `exp`. Verify it against `GET /.well-known/jwks.json`: no secret is needed.',
          requestBody: jsonBody('VerifyOtpRequest', { otpRequestId: '3f0c9a1e5b7d4c2a8e6f1b3d5a7c9e0f', otp: '123456' }),
          responses: {
            '200': {
              description: 'OK: the code was right.',
              content: {
                'application/json': {
                  schema: ref('VerifyOtpResponse'),
                  example: { verified: true, token: 'eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiIrOTE5ODc2NTQzMjEwIn0.c2lnbmF0dXJl', tokenExpiresAt: '2026-11-29T10:45:00.000Z' },
                },
              },
            },
            ...errorResponses(ROUTE_ERRORS.verify),
          },
        },
      },
      '/.well-known/jwks.json': {
        get: {
          operationId: 'getJwks',
          tags: ['auth'],
          summary: 'The public keys that verify tokens',
          description:
            'One public EC P-256 JWK per key that may have signed a live token: the current key first, then previous ones ' +
            'kept through a rotation. Never a private member. `Cache-Control: public, max-age=300`; a verifier that meets ' +
            'an unknown `kid` fetches it again.',
          responses: {
            '200': {
              description: 'OK: the key set.',
              headers: { 'Cache-Control': { description: '`public, max-age=300`', schema: { type: 'string' } } },
              content: {
                'application/json': {
                  schema: JWKS_SCHEMA,
                  example: {
                    keys: [{ kty: 'EC', crv: 'P-256', x: 'yNIINLA7X1_DETRBUEDpXJUUmcwunsnloncduhh3s3M', y: 'JSMBmrJWgdAygsuXYuEtiXESigUuxH5uxUg0ApIax6g', kid: '6ypJyQtl2P74Zd7EQiq8CLB35iJEvdKwX2pY9KytVqI', alg: 'ES256', use: 'sig' }],
                  },
                },
              },
            },
            ...errorResponses(ROUTE_ERRORS.jwks),
          },
        },
      },
    },
    components: {
      schemas: {
        SendOtpRequest: clone(sendOtpSchema as Json),
        VerifyOtpRequest: clone(verifyOtpSchema as Json),
        SendOtpResponse: need('SendOtpResponse'),
        VerifyOtpResponse: need('VerifyOtpResponse'),
        Error: need('Error'),
      },
      parameters: {
        IdempotencyKey: {
          name: 'Idempotency-Key',
          in: 'header',
          required: false,
          description:
            'Makes a retried send safe: the same key with the same body within 24 hours returns the first response again; ' +
            'the same key with a different body is `409 idempotency_conflict`.',
          schema: { type: 'string', minLength: 8, maxLength: 128, pattern: IDEMPOTENCY_KEY_PATTERN },
          example: '0b5e3c1a-7f2d-4e8b-9a6c-3d1f5e7a9b2c',
        },
      },
      headers: {
        RetryAfter: {
          description: 'Whole seconds to wait before trying again (at least 1); equals `retryAfterSeconds` in the body.',
          required: true,
          schema: { type: 'integer', minimum: 1 },
        },
        RetryAfterWhereKnown: {
          description: 'Whole seconds to wait before trying again (at least 1), when the service knows it.',
          required: false,
          schema: { type: 'integer', minimum: 1 },
        },
      },
    },
  };
}

/** `tsx scripts/build-openapi.ts [out]`: write the document (default dist/openapi.json under the repo root). */
const runAsScript = (): void => {
  const root = typeof __dirname === 'string' ? resolve(__dirname, '..') : process.cwd();
  const out = resolve(process.argv[2] ?? resolve(root, 'dist', 'openapi.json'));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(buildOpenApi(), null, 2)}\n`);
  process.stdout.write(`wrote ${out}\n`);
};

if (/build-openapi\.[cm]?[jt]s$/.test(process.argv[1] ?? '')) runAsScript();
