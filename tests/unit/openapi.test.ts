/**
 * scripts/build-openapi.ts: the OpenAPI 3.1 document must describe exactly the contract of the shared
 * API.md, with bodies taken verbatim from schemas/*.json (one source of truth), and exactly the routes
 * that serverless.yml deploys.
 */
import { loadCfnYaml } from '../../local/serverless-yaml';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { buildOpenApi, IDEMPOTENCY_KEY_PATTERN } from '../../scripts/build-openapi';

type Json = Record<string, any>;

const ROOT = resolve(__dirname, '..', '..');
const readJson = (rel: string): Json => JSON.parse(readFileSync(join(ROOT, rel), 'utf8')) as Json;

/* ------------------------------------------------------------------ API.md's Errors table */

/** The contract as the repository documents it (docs/api.md); API_MD_PATH overrides. */
const API_MD = process.env.API_MD_PATH ?? resolve(ROOT, 'docs', 'api.md');

/** Used only when API.md is not beside the repo (a lone clone): a copy of its Errors table. */
const FALLBACK_ERROR_TABLE: ReadonlyArray<[number, string]> = [
  [400, 'invalid_request'],
  [400, 'invalid_phone_number'],
  [403, 'country_not_allowed'],
  [403, 'challenge_failed'],
  [413, 'payload_too_large'],
  [415, 'unsupported_media_type'],
  [409, 'idempotency_conflict'],
  [429, 'rate_limited'],
  [400, 'invalid_code'],
  [429, 'too_many_attempts'],
  [410, 'otp_expired'],
  [502, 'upstream_error'],
  [503, 'service_unavailable'],
  [504, 'upstream_timeout'],
  [500, 'internal_error'],
];

const parseErrorTable = (markdown: string): Array<[number, string]> => {
  const section = markdown.split(/^## Errors\s*$/m)[1]?.split(/^## /m)[0] ?? '';
  const rows: Array<[number, string]> = [];
  for (const line of section.split('\n')) {
    const m = /^\|\s*(\d{3})\s*\|\s*`([a-z_]+)`\s*\|/.exec(line.trim());
    if (m) rows.push([Number(m[1]), m[2]!]);
  }
  return rows;
};

const apiMdPresent = existsSync(API_MD);
const ERROR_TABLE: ReadonlyArray<[number, string]> = apiMdPresent
  ? parseErrorTable(readFileSync(API_MD, 'utf8'))
  : FALLBACK_ERROR_TABLE;

/* ------------------------------------------------------------------ serverless.yml, CloudFormation tags tolerated */

const serverlessRoutes = (): string[] => {
  const doc = loadCfnYaml(join(ROOT, 'serverless.yml')) as Json;
  const routes: string[] = [];
  for (const fn of Object.values((doc.functions ?? {}) as Record<string, Json>)) {
    for (const event of (fn.events ?? []) as Json[]) {
      const http = event.httpApi ?? event.http;
      if (!http) continue;
      if (typeof http === 'string') {
        const [method, path] = http.split(/\s+/);
        routes.push(`${method!.toUpperCase()} ${path}`);
      } else {
        routes.push(`${String(http.method).toUpperCase()} ${http.path}`);
      }
    }
  }
  return routes.sort();
};

/* ------------------------------------------------------------------ helpers over the document */

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

const operations = (doc: Json): Array<{ method: string; path: string; op: Json }> =>
  Object.entries(doc.paths as Record<string, Json>).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => HTTP_METHODS.includes(method))
      .map(([method, op]) => ({ method, path, op: op as Json })),
  );

const resolveRef = (doc: Json, value: Json): Json => {
  if (typeof value?.$ref !== 'string') return value;
  const ref = value.$ref as string;
  if (!ref.startsWith('#/')) throw new Error(`external $ref ${ref}`);
  let node: any = doc;
  for (const part of ref.slice(2).split('/')) {
    node = node?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
    if (node === undefined) throw new Error(`unresolvable $ref ${ref}`);
  }
  return node as Json;
};

/** Error codes a response allows, from the `enum` on `error` in its allOf narrowing. */
const errorCodesOf = (response: Json): string[] => {
  const schema = response.content?.['application/json']?.schema as Json | undefined;
  const parts = (schema?.allOf ?? [schema]) as Json[];
  return parts.flatMap((p) => (p?.properties?.error?.enum as string[] | undefined) ?? []);
};

/** Replace local component refs by the schemas themselves, so Ajv can compile a response schema alone. */
const inline = (doc: Json, node: unknown): unknown => {
  if (Array.isArray(node)) return node.map((n) => inline(doc, n));
  if (node && typeof node === 'object') {
    const obj = node as Json;
    if (typeof obj.$ref === 'string') return inline(doc, structuredClone(resolveRef(doc, obj)));
    return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, inline(doc, v)]));
  }
  return node;
};

const newAjv = () => {
  const ajv = new Ajv2020({ strict: true, strictTypes: false, allErrors: true });
  addFormats(ajv);
  return ajv;
};

/* ------------------------------------------------------------------ tests */

describe('buildOpenApi()', () => {
  const doc = buildOpenApi() as Json;

  it('is an OpenAPI 3.1 document with info, paths and components', () => {
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
    expect(typeof doc.info.title).toBe('string');
    expect(typeof doc.info.version).toBe('string');
    expect(Object.keys(doc.paths).length).toBeGreaterThan(0);
    expect(Object.keys(doc.components.schemas).length).toBeGreaterThan(0);
    for (const { op } of operations(doc)) {
      expect(typeof op.operationId).toBe('string');
      expect(Object.keys(op.responses).length).toBeGreaterThan(0);
      for (const [status, response] of Object.entries(op.responses as Record<string, Json>)) {
        expect(status).toMatch(/^[1-5]\d\d$/);
        expect(typeof resolveRef(doc, response).description).toBe('string');
      }
    }
  });

  it('is plain JSON, and every call returns a fresh copy', () => {
    expect(JSON.parse(JSON.stringify(doc))).toEqual(doc);
    const a = buildOpenApi() as Json;
    a.components.schemas.SendOtpRequest.properties.phoneNumber.maxLength = 1;
    a.paths['/auth/send-otp'].post.responses = {};
    const b = buildOpenApi() as Json;
    expect(b).toEqual(doc);
    expect(readJson('schemas/send-otp.json').properties.phoneNumber.maxLength).not.toBe(1);
  });

  it('every $ref resolves inside the document', () => {
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) return node.forEach(walk);
      if (node && typeof node === 'object') {
        const obj = node as Json;
        if (typeof obj.$ref === 'string') expect(() => resolveRef(doc, obj)).not.toThrow();
        Object.values(obj).forEach(walk);
      }
    };
    walk(doc);
  });

  it('request and response bodies are exactly the files in schemas/ (one source of truth)', () => {
    const responses = readJson('schemas/responses.json').definitions as Json;
    expect(doc.components.schemas.SendOtpRequest).toEqual(readJson('schemas/send-otp.json'));
    // API.md v2: the optional bot challenge token, 1 to 2048 characters.
    expect(doc.components.schemas.SendOtpRequest.properties.challengeToken).toMatchObject({ type: 'string', minLength: 1, maxLength: 2048 });
    expect(doc.components.schemas.SendOtpRequest.required).toEqual(['phoneNumber']);
    expect(doc.components.schemas.VerifyOtpRequest).toEqual(readJson('schemas/verify-otp.json'));
    expect(doc.components.schemas.SendOtpResponse).toEqual(responses.SendOtpResponse);
    expect(doc.components.schemas.VerifyOtpResponse).toEqual(responses.VerifyOtpResponse);
    expect(doc.components.schemas.Error).toEqual(responses.Error);

    const send = doc.paths['/auth/send-otp'].post as Json;
    const verify = doc.paths['/auth/verify-otp'].post as Json;
    const bodySchema = (op: Json) => resolveRef(doc, op.requestBody.content['application/json'].schema);
    const okSchema = (op: Json, status: string) => resolveRef(doc, op.responses[status].content['application/json'].schema);

    expect(send.requestBody.required).toBe(true);
    expect(verify.requestBody.required).toBe(true);
    expect(bodySchema(send)).toEqual(readJson('schemas/send-otp.json'));
    expect(bodySchema(verify)).toEqual(readJson('schemas/verify-otp.json'));
    expect(okSchema(send, '201')).toEqual(responses.SendOtpResponse);
    expect(okSchema(verify, '200')).toEqual(responses.VerifyOtpResponse);
    expect(send.responses['200']).toBeUndefined();
    expect(verify.responses['201']).toBeUndefined();
  });

  it(`documents every status and error code of API.md's Errors table (${apiMdPresent ? API_MD : 'fallback copy: API.md not found'})`, () => {
    expect(ERROR_TABLE.length).toBeGreaterThanOrEqual(15);
    const documented = new Map<string, number>(); // code -> status
    for (const { op } of operations(doc)) {
      for (const [status, response] of Object.entries(op.responses as Record<string, Json>)) {
        for (const code of errorCodesOf(resolveRef(doc, response))) {
          const previous = documented.get(code);
          if (previous !== undefined) expect(`${code} ${previous}`).toBe(`${code} ${status}`);
          documented.set(code, Number(status));
        }
      }
    }
    for (const [status, code] of ERROR_TABLE) {
      expect(`${code} -> ${documented.get(code)}`).toBe(`${code} -> ${status}`);
    }
    // ...and nothing the table does not have.
    expect([...documented.keys()].sort()).toEqual(ERROR_TABLE.map(([, c]) => c).sort());
    // The shared Error schema's enum is the same closed set.
    expect([...(doc.components.schemas.Error.properties.error.enum as string[])].sort()).toEqual(
      ERROR_TABLE.map(([, c]) => c).sort(),
    );
  });

  it('lists, per route, the error codes that route can answer', () => {
    const codes = (path: string): string[] =>
      Object.values(doc.paths[path].post.responses as Record<string, Json>).flatMap((r) => errorCodesOf(resolveRef(doc, r))).sort();
    const common = ['invalid_request', 'payload_too_large', 'unsupported_media_type', 'service_unavailable', 'internal_error'];
    expect(codes('/auth/send-otp')).toEqual(
      [...common, 'invalid_phone_number', 'country_not_allowed', 'challenge_failed', 'idempotency_conflict', 'rate_limited', 'upstream_error', 'upstream_timeout'].sort(),
    );
    expect(codes('/auth/verify-otp')).toEqual([...common, 'invalid_code', 'too_many_attempts', 'otp_expired'].sort());
  });

  it('every error response schema compiles, requires the per-code fields, and its examples validate', () => {
    for (const { path, op } of operations(doc)) {
      for (const [status, raw] of Object.entries(op.responses as Record<string, Json>)) {
        const response = resolveRef(doc, raw);
        const media = response.content['application/json'] as Json;
        const validate = newAjv().compile(inline(doc, media.schema) as object);
        const examples = Object.values((media.examples ?? {}) as Record<string, Json>).map((e) => e.value);
        if (media.example) examples.push(media.example);
        expect(examples.length).toBeGreaterThan(0);
        for (const example of examples) {
          const ok = validate(example);
          expect({ path, status, example, errors: ok ? null : validate.errors }).toEqual({ path, status, example, errors: null });
        }
        const codes = errorCodesOf(response);
        if (codes.length === 0) continue;
        // A code of another status is refused by this response's schema.
        const foreign = ERROR_TABLE.find(([s, c]) => String(s) !== status && !codes.includes(c))!;
        expect(validate({ error: foreign[1], message: 'x' })).toBe(false);
        if (codes.includes('rate_limited')) expect(validate({ error: 'rate_limited', message: 'x' })).toBe(false);
        if (codes.includes('invalid_code')) {
          expect(validate({ error: 'invalid_code', message: 'x' })).toBe(false);
          expect(validate({ error: 'invalid_code', message: 'x', attemptsRemaining: 0 })).toBe(false);
        }
      }
    }
  });

  it('request schemas compile with Ajv (JSON Schema 2020-12) and behave as API.md says', () => {
    const send = newAjv().compile(doc.components.schemas.SendOtpRequest);
    const verify = newAjv().compile(doc.components.schemas.VerifyOtpRequest);
    expect(send({ phoneNumber: '+919876543210' })).toBe(true);
    expect(send({ phoneNumber: '+919876543210', extra: 1 })).toBe(false);
    expect(send({})).toBe(false);
    expect(verify({ otpRequestId: 'abc_DEF-123', otp: '123456' })).toBe(true);
    expect(verify({ otpRequestId: 'abc', otp: '12a456' })).toBe(false);
    expect(verify({ otpRequestId: 'abc', otp: '123' })).toBe(false);
    expect(verify({ otpRequestId: 'a/b', otp: '1234' })).toBe(false);
  });

  it('documents the Idempotency-Key header on send, with the pattern of API.md', () => {
    const params = (doc.paths['/auth/send-otp'].post.parameters as Json[]).map((p) => resolveRef(doc, p));
    const key = params.find((p) => p.in === 'header' && String(p.name).toLowerCase() === 'idempotency-key');
    expect(key).toBeDefined();
    expect(key!.required).toBe(false);
    expect(key!.schema.pattern).toBe('^[A-Za-z0-9_\\-:.]{8,128}$');
    expect(IDEMPOTENCY_KEY_PATTERN).toBe(key!.schema.pattern);
    const re = new RegExp(key!.schema.pattern as string);
    expect(re.test(crypto.randomUUID())).toBe(true);
    expect(re.test('abc:DEF.1_2-3')).toBe(true);
    expect(re.test('short')).toBe(false);
    expect(re.test('has space 123')).toBe(false);
    expect(re.test('x'.repeat(128))).toBe(true);
    expect(re.test('x'.repeat(129))).toBe(false);
    const verifyParams = (doc.paths['/auth/verify-otp'].post.parameters ?? []) as Json[];
    expect(verifyParams.map((p) => resolveRef(doc, p).name)).not.toContain('Idempotency-Key');
  });

  it('documents Retry-After on 429 rate_limited (required) and on every 503 (where known)', () => {
    const header = (path: string, status: string): Json | undefined => {
      const response = resolveRef(doc, doc.paths[path].post.responses[status]);
      const h = response.headers?.['Retry-After'];
      return h ? resolveRef(doc, h) : undefined;
    };
    const send429 = header('/auth/send-otp', '429');
    expect(send429).toMatchObject({ required: true, schema: { type: 'integer', minimum: 1 } });
    for (const path of ['/auth/send-otp', '/auth/verify-otp']) {
      expect(header(path, '503')).toMatchObject({ schema: { type: 'integer', minimum: 1 } });
    }
    // Every response that can carry rate_limited or service_unavailable has the header.
    for (const { op } of operations(doc)) {
      for (const response of Object.values(op.responses as Record<string, Json>)) {
        const r = resolveRef(doc, response);
        const codes = errorCodesOf(r);
        if (codes.includes('rate_limited') || codes.includes('service_unavailable')) {
          expect(r.headers?.['Retry-After']).toBeDefined();
        }
      }
    }
  });

  it('documents exactly the routes serverless.yml deploys, with the same methods and paths', () => {
    const deployed = serverlessRoutes();
    expect(deployed).toEqual(['GET /.well-known/jwks.json', 'POST /auth/send-otp', 'POST /auth/verify-otp']);
    const documented = operations(doc)
      .map(({ method, path }) => `${method.toUpperCase()} ${path}`)
      .sort();
    expect(documented).toEqual(deployed);
  });

  it('`tsx scripts/build-openapi.ts <out>` writes the same document', () => {
    const dir = mkdtempSync(join(tmpdir(), 'openapi-'));
    try {
      const out = join(dir, 'nested', 'openapi.json');
      const run = spawnSync(process.execPath, [join(ROOT, 'node_modules/tsx/dist/cli.mjs'), 'scripts/build-openapi.ts', out], {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
      expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual(doc);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("API.md's Errors table parser", () => {
  it('reads the table (or the fallback) into 15 distinct codes with their statuses', () => {
    expect(new Set(ERROR_TABLE.map(([, c]) => c)).size).toBe(ERROR_TABLE.length);
    expect(ERROR_TABLE).toEqual(expect.arrayContaining([[429, 'rate_limited'], [400, 'invalid_code'], [504, 'upstream_timeout']]));
    if (apiMdPresent) expect([...ERROR_TABLE].sort()).toEqual([...FALLBACK_ERROR_TABLE].sort());
  });
});
