/**
 * Issue 4: what every answer carries (JSON, no-store, security headers, CORS only for allowed
 * origins) and what the logs hold (JSON lines with the Lambda request id, masked numbers, no secret),
 * through the REAL handlers. Also: no console output anywhere in handlers/ and middleware/.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { API_KEY, startStack, type Answer, type RequestOptions, type Stack } from '../support/stack';

const ROOT = join(__dirname, '..', '..');
const ALLOWED_ORIGIN = 'https://shop.example';

let stack: Stack;
/** Lambda sends stderr to CloudWatch too; Powertools writes ERROR and WARN there. Captured per invocation. */
const stderr: string[] = [];
beforeAll(async () => {
  stack = await startStack({ STARTMESSAGING_TIMEOUT_MS: '200', SEND_COOLDOWN_SECONDS: '60', CORS_ALLOWED_ORIGINS: ALLOWED_ORIGIN });
});
afterAll(async () => {
  await stack.close();
  const text = stderr.join('');
  for (const secret of [API_KEY, stack.hashKey, stack.tokenKey.current.d, ...sent]) expect(text).not.toContain(secret);
});
beforeEach(() => stack.sandbox.reset());

let seq = 0;
const sent: string[] = [];
const phone = (): string => {
  const n = `+9177${String(10_000_000 + ++seq).slice(-8)}`;
  sent.push(n);
  return n;
};

/** Runs one invocation with stderr captured as well, and everything console.* would print counted. */
let consoleCalls: string[] = [];
const withCapture = async (fn: () => Promise<Answer>): Promise<Answer> => {
  const write = process.stderr.write;
  const spies = (['log', 'error', 'warn', 'info', 'debug', 'trace'] as const).map((m) =>
    jest.spyOn(console, m).mockImplementation((...args: unknown[]) => void consoleCalls.push(`${m}: ${args.map(String).join(' ')}`)),
  );
  process.stderr.write = ((chunk: unknown, ...rest: unknown[]) => {
    stderr.push(String(chunk));
    const cb = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
    cb?.();
    return true;
  }) as typeof process.stderr.write;
  try {
    return await fn();
  } finally {
    process.stderr.write = write;
    for (const s of spies) s.mockRestore();
  }
};
const send = (body: unknown, opts: RequestOptions = {}) => withCapture(() => stack.send(body, opts));
const verify = (body: unknown, opts: RequestOptions = {}) => withCapture(() => stack.verify(body, opts));

const expectCommonHeaders = (a: Answer): void => {
  expect(a.headers['content-type']).toBe('application/json');
  expect(a.headers['cache-control']).toBe('no-store');
  expect(a.headers['x-content-type-options']).toBe('nosniff');
  expect(a.headers['strict-transport-security']).toMatch(/^max-age=\d{7,}/);
  expect(a.headers['referrer-policy']).toBe('no-referrer');
  expect(typeof a.body).toBe('object');
};

describe('headers on every answer', () => {
  const scenarios: [string, () => Promise<Answer>, number][] = [
    ['send 201', () => send({ phoneNumber: phone() }), 201],
    ['send 400 invalid_request', () => send({ phoneNumber: 1 }), 400],
    ['send 400 invalid_phone_number', () => send({ phoneNumber: '+91123' }), 400],
    ['send 403 country_not_allowed', () => send({ phoneNumber: '+14155550123' }), 403],
    ['send 413 payload_too_large', () => send(undefined, { raw: `{"phoneNumber":"${'9'.repeat(5000)}"}` }), 413],
    ['send 415 unsupported_media_type', () => send({ phoneNumber: phone() }, { headers: { 'content-type': 'text/plain' } }), 415],
    ['send 502 upstream_error', () => (stack.sandbox.failNext({ status: 401 }), send({ phoneNumber: phone() })), 502],
    ['send 503 service_unavailable', () => (stack.sandbox.failNext({ status: 402 }), send({ phoneNumber: phone() })), 503],
    ['send 504 upstream_timeout', () => (stack.sandbox.failNext({ hang: true }), send({ phoneNumber: phone() }, { remainingMs: 1800 })), 504],
    ['verify 400 invalid_request', () => verify({ otpRequestId: '!', otp: '1' }), 400],
    ['verify 410 otp_expired', () => verify({ otpRequestId: 'abcdefgh', otp: '123456' }), 410],
  ];
  it.each(scenarios)('%s', async (_, run, status) => {
    const answer = await run();
    expect(answer.status).toBe(status);
    expectCommonHeaders(answer);
  });

  it('a 429 with its Retry-After, a replay, a 409, a verify 200, a 400 invalid_code and a 429 too_many_attempts', async () => {
    const number = phone();
    const headers = { 'idempotency-key': 'headers-test-0001' };
    const first = await send({ phoneNumber: number }, { headers });
    expect(first.status).toBe(201);
    const limited = await send({ phoneNumber: number });
    expect(limited.status).toBe(429);
    expect(limited.headers['retry-after']).toMatch(/^\d+$/);
    const replay = await send({ phoneNumber: number }, { headers });
    expect(replay.status).toBe(201);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    const conflict = await send({ phoneNumber: phone() }, { headers });
    expect(conflict.status).toBe(409);
    const code = stack.sandbox.lastCode(number)!;
    const wrong = code === '000000' ? '111111' : '000000';
    const invalid = await verify({ otpRequestId: first.body.otpRequestId, otp: wrong });
    expect(invalid.status).toBe(400);
    const ok = await verify({ otpRequestId: first.body.otpRequestId, otp: code });
    expect(ok.status).toBe(200);
    for (const a of [first, limited, replay, conflict, invalid, ok]) expectCommonHeaders(a);

    const other = phone();
    const { otpRequestId } = await withCapture(async () => (await stack.sendAndRead(other)).answer).then((a) => ({ otpRequestId: a.body.otpRequestId }));
    let last: Answer | undefined;
    for (let i = 0; i < 3; i += 1) last = await verify({ otpRequestId, otp: stack.sandbox.lastCode(other) === '000000' ? '111111' : '000000' });
    expect(last!.status).toBe(429);
    expect(last!.body.error).toBe('too_many_attempts');
    expectCommonHeaders(last!);
  });
});

describe('CORS', () => {
  const corsHeaders = (a: Answer) => Object.keys(a.headers).filter((h) => h.startsWith('access-control-'));

  it('the allowed origin gets Access-Control-Allow-Origin on success and on errors, with Retry-After exposed', async () => {
    const number = phone();
    const ok = await send({ phoneNumber: number }, { headers: { origin: ALLOWED_ORIGIN } });
    expect(ok.status).toBe(201);
    expect(ok.headers['access-control-allow-origin']).toBe(ALLOWED_ORIGIN);
    const limited = await send({ phoneNumber: number }, { headers: { Origin: ALLOWED_ORIGIN } });
    expect(limited.status).toBe(429);
    expect(limited.headers['access-control-allow-origin']).toBe(ALLOWED_ORIGIN);
    expect(limited.headers['access-control-expose-headers']?.toLowerCase()).toContain('retry-after');
    const bad = await verify({ otpRequestId: '', otp: '' }, { headers: { origin: ALLOWED_ORIGIN } });
    expect(bad.status).toBe(400);
    expect(bad.headers['access-control-allow-origin']).toBe(ALLOWED_ORIGIN);
  });

  it.each([
    'https://evil.example',
    'http://shop.example',
    'https://shop.example.evil.example',
    'https://evil.shop.example',
    'https://shop.example:8443',
    'null',
  ])('%s gets no Access-Control-* header at all, on success and on errors', async (origin) => {
    const ok = await send({ phoneNumber: phone() }, { headers: { origin } });
    expect(ok.status).toBe(201);
    expect(corsHeaders(ok)).toEqual([]);
    const bad = await send({ phoneNumber: 'x' }, { headers: { origin } });
    expect(bad.status).toBe(400);
    expect(corsHeaders(bad)).toEqual([]);
    const verified = await verify({ otpRequestId: 'abcdefgh', otp: '123456' }, { headers: { origin } });
    expect(corsHeaders(verified)).toEqual([]);
    expectCommonHeaders(ok);
  });

  it('a request without Origin (a server calling) gets no Access-Control-* header', async () => {
    const ok = await send({ phoneNumber: phone() });
    expect(corsHeaders(ok)).toEqual([]);
  });

  it('with no CORS_ALLOWED_ORIGINS, no origin is granted', async () => {
    stack.coldStart({ CORS_ALLOWED_ORIGINS: undefined });
    try {
      const a = await send({ phoneNumber: phone() }, { headers: { origin: ALLOWED_ORIGIN } });
      expect(a.status).toBe(201);
      expect(corsHeaders(a)).toEqual([]);
    } finally {
      stack.coldStart({ CORS_ALLOWED_ORIGINS: ALLOWED_ORIGIN });
    }
  });
});

describe('logs', () => {
  type Entry = Record<string, unknown>;
  const linesOf = (chunks: string[]): string[] => chunks.join('').split('\n').filter((l) => l.trim() !== '');

  it('are JSON lines carrying the Lambda request id, one id per invocation; numbers are masked', async () => {
    const number = '+919876543210';
    sent.push(number);
    const from = [stack.logs.length, stderr.length];
    const ids: string[] = [];
    const invocations: (() => Promise<Answer>)[] = [
      () => send({ phoneNumber: number }), // 201: "code sent"
      () => send({ phoneNumber: number }), // 429: "send refused by rate limit", "request refused"
      () => (stack.sandbox.failNext({ status: 500 }, { status: 500 }, { status: 500 }), send({ phoneNumber: phone() })), // 502: ERROR on stderr
      () => verify({ otpRequestId: 'abcdefgh', otp: '123456' }), // 410
    ];
    for (const invoke of invocations) {
      const at = [stack.logs.length, stderr.length];
      await invoke();
      const lines = [...linesOf(stack.logs.slice(at[0])), ...linesOf(stderr.slice(at[1]))];
      expect(lines.length).toBeGreaterThan(0);
      const entries = lines.map((l) => {
        try {
          return JSON.parse(l) as Entry;
        } catch {
          throw new Error(`not a JSON line: ${l.slice(0, 200)}`);
        }
      });
      const logEntries = entries.filter((e) => 'level' in e);
      expect(logEntries.length).toBeGreaterThan(0);
      const requestIds = new Set(logEntries.map((e) => e.function_request_id));
      expect(requestIds.size).toBe(1);
      const [id] = [...requestIds];
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      ids.push(String(id));
      // Everything else is an EMF metrics document.
      for (const e of entries.filter((x) => !('level' in x))) expect(e).toHaveProperty('_aws.CloudWatchMetrics');
    }
    expect(new Set(ids).size).toBe(invocations.length);

    const all = [...linesOf(stack.logs.slice(from[0])), ...linesOf(stderr.slice(from[1]))].map((l) => JSON.parse(l) as Entry);
    const sentLine = all.find((e) => e.message === 'code sent');
    expect(sentLine?.phone).toBe('+91******3210');
    expect(all.find((e) => e.message === 'request failed')).toMatchObject({ level: 'ERROR', status: 502 });
    const text = JSON.stringify(all);
    expect(text).not.toContain(number);
    expect(text).not.toContain(API_KEY);
    expect(text).not.toContain(stack.hashKey);
    expect(text).not.toContain(stack.tokenKey.current.d);
  });

  it('nothing is printed through console.* (http-error-handler has logger: false; everything goes through the logger)', () => {
    expect(consoleCalls).toEqual([]);
  });
});

describe('source hygiene', () => {
  const sources = ['handlers', 'middleware'].flatMap((dir) =>
    readdirSync(join(ROOT, dir))
      .filter((f) => f.endsWith('.ts'))
      .map((f) => ({ file: `${dir}/${f}`, text: readFileSync(join(ROOT, dir, f), 'utf8') })),
  );
  const code = (text: string): string => text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');

  it('finds the sources', () => {
    expect(sources.map((s) => s.file)).toEqual(expect.arrayContaining(['handlers/send-otp.ts', 'handlers/verify-otp.ts', 'middleware/errors.ts']));
  });

  it('no console.* or process.stdout/stderr writes in handlers/ or middleware/', () => {
    for (const { file, text } of sources) {
      expect({ file, found: code(text).match(/\bconsole\s*\.\s*\w+|process\.(stdout|stderr)\.write/g) }).toEqual({ file, found: null });
    }
  });

  it('every handler takes its outer layers from middleware/http-api.ts, whose http-error-handler has logger: false (its default is console.error)', () => {
    const handlers = sources.filter((s) => s.file.startsWith('handlers/'));
    expect(handlers.map((h) => h.file)).toEqual(expect.arrayContaining(['handlers/send-otp.ts', 'handlers/verify-otp.ts', 'handlers/jwks.ts']));
    for (const { file, text } of handlers) {
      expect({ file, httpApi: (code(text).match(/\bhttpApi\s*\(/g) ?? []).length, own: /httpErrorHandler|middy\s*[<(]/.test(code(text)) }).toEqual({ file, httpApi: 1, own: false });
    }
    const uses = sources.flatMap(({ text }) => code(text).match(/httpErrorHandler\s*\(([^)]*)\)/g) ?? []);
    expect(uses).toHaveLength(1);
    expect(uses[0]).toMatch(/logger\s*:\s*false/);
  });
});
