/**
 * `npm start` end to end: the real command, the real handlers behind serverless offline, real HTTP from
 * outside, the code read from what the sandbox prints; then the stop, and a check that nothing it started
 * (ports, serverless offline, esbuild) outlives it. Also `tsx local/invoke.ts flow`.
 *
 * Slow by nature (each start bundles the handlers): generous timeouts, one start per describe.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTable, startLocalDynamo } from '../../local/dynamo';
import { freePort, isListening } from '../../local/env';
import { SignJWT, importJWK } from 'jose';
import { jwksFromUrl, verifyOtpToken } from '../../lib/otp/token-verifier';
import { runServerless } from '../support/package-build';
import {
  groupMembers,
  killGroups,
  localToolEnv,
  REPO_ROOT,
  spawnInGroup,
  TSX_CLI,
  waitGroupGone,
  type Spawned,
} from '../support/local-process';

const READY = /OTP service ready at (http:\/\/127\.0\.0\.1:(\d+))/;
const START_TIMEOUT = 150_000;
const PHONE = '+919876543210';
const smsLine = (phone: string) => new RegExp(`\\[sandbox-sms\\] \\${phone.slice(0, 3)}\\*+${phone.slice(-4)} code (\\d{4,8})`);

interface Started {
  app: Spawned;
  url: string;
  /** Every port the ready block names: the public one, the pieces, serverless offline's two. */
  ports: number[];
  offlinePid: number;
  secretsEndpoint: string;
}

const startedFrom = async (app: Spawned): Promise<Started> => {
  const [, url] = await app.waitFor(READY, START_TIMEOUT);
  const block = (await app.waitFor(/OTP service ready[\s\S]*Ctrl-C stops everything\./, 5_000))[0];
  const ports = [...new Set([...block.matchAll(/127\.0\.0\.1:(\d+)/g), ...block.matchAll(/lambda port (\d+)/g)].map((m) => Number(m[1])))];
  const offlinePid = Number(/serverless offline, pid (\d+)/.exec(block)?.[1]);
  const secretsEndpoint = /Secrets Manager\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(block)?.[1];
  if (!url || !offlinePid || !secretsEndpoint) throw new Error(`unexpected ready block:\n${block}`);
  return { app, url, ports, offlinePid, secretsEndpoint };
};

const post = (url: string, body: string, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
  fetch(url, { method: 'POST', headers, body });

/** GET with the path sent exactly as written (fetch would normalise `..` away). */
const rawGet = (base: string, path: string): Promise<{ status: number; contentType: string | undefined; body: string }> =>
  new Promise((res, rej) => {
    const { hostname, port } = new URL(base);
    const req = request({ host: hostname, port, path, method: 'GET' }, (r) => {
      let body = '';
      r.on('data', (c: Buffer) => (body += c.toString('utf8')));
      r.on('end', () => res({ status: r.statusCode ?? 0, contentType: r.headers['content-type'], body }));
    });
    req.on('error', rej);
    req.end();
  });

const getSecret = async (endpoint: string, id: string): Promise<string> => {
  const res = await fetch(endpoint, {
    method: 'POST',
    headers: { 'x-amz-target': 'secretsmanager.GetSecretValue', 'content-type': 'application/x-amz-json-1.1' },
    body: JSON.stringify({ SecretId: id }),
  });
  return ((await res.json()) as { SecretString: string }).SecretString;
};

/** Debian's python3 (PyJWT 2.6 + cryptography; .ci/run installs python3-jwt), never the pyenv one on PATH. */
const SYSTEM_PYTHON = '/usr/bin/python3';
const EXAMPLES = {
  node: [process.execPath, join(REPO_ROOT, 'examples', 'verify-token.mjs')],
  python: [SYSTEM_PYTHON, join(REPO_ROOT, 'examples', 'verify_token.py')],
} as const;

/** Runs an example verifier as a backend would: the token as the argument, the JWKS URL in the environment. */
const runExample = (which: keyof typeof EXAMPLES, token: string, env: Record<string, string>): Promise<{ code: number | null; out: string }> =>
  new Promise((resolve, reject) => {
    const [cmd, script] = EXAMPLES[which];
    const child = spawn(cmd, [script, token], { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out: out.trim() });
    });
  });

const expectAllGone = async (s: Started) => {
  expect(await waitGroupGone(s.app.pid, 15_000)).toBe(true);
  expect(await waitGroupGone(s.offlinePid, 15_000)).toBe(true); // serverless offline leads its own group
  expect(() => process.kill(s.offlinePid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
  for (const port of s.ports) expect({ port, listening: await isListening(port) }).toEqual({ port, listening: false });
};

describe('npm start (local/start.ts through tsx, as the npm script runs it)', () => {
  let s: Started;
  /** A real token from the send → verify flow below, for the example verifiers. */
  let flowToken = '';

  beforeAll(async () => {
    const port = await freePort();
    s = await startedFrom(spawnInGroup(process.execPath, ['--import', 'tsx', 'local/start.ts'], localToolEnv({ PORT: String(port) })));
    expect(s.url).toBe(`http://127.0.0.1:${port}`);
  }, START_TIMEOUT + 10_000);

  afterAll(() => killGroups(s?.app.pid, s?.offlinePid));

  it('names every local piece, all on 127.0.0.1, and never prints a key', async () => {
    const out = s.app.output();
    expect(out).toMatch(/DynamoDB\s+http:\/\/127\.0\.0\.1:\d+ \(dynalite/);
    expect(out).toMatch(/Secrets Manager\s+http:\/\/127\.0\.0\.1:\d+ \(stand-in/);
    expect(out).toMatch(/StartMessaging\s+http:\/\/127\.0\.0\.1:\d+ \(sandbox; expects the API key sm_test_local \(SM_API_KEY\)/);
    expect(out).toMatch(/CORS\s+none \(CORS_ALLOWED_ORIGINS is empty\)/);
    expect(out).toMatch(/export AWS_ENDPOINT_URL_DYNAMODB=http:\/\/127\.0\.0\.1:\d+/);
    const hashKey = await getSecret(s.secretsEndpoint, 'otp/hash-key');
    expect(Buffer.from(hashKey, 'base64')).toHaveLength(32);
    expect(out).not.toContain(hashKey);
    const tokenKey = JSON.parse(await getSecret(s.secretsEndpoint, 'otp/token-key')) as { current: { d: string; kid: string } };
    expect(out).not.toContain(tokenKey.current.d);
    expect(out).toContain(`GET ${s.url}/.well-known/jwks.json`);
  });

  it('sends, prints the code the way a person reads it, and verifies it into a signed token', async () => {
    const since = s.app.output().length;
    const sent = await post(`${s.url}/auth/send-otp`, JSON.stringify({ phoneNumber: PHONE }));
    const sentBody = (await sent.json()) as { otpRequestId: string; expiresAt: string };
    expect({ status: sent.status, body: sentBody }).toMatchObject({ status: 201 });
    expect(sent.headers.get('content-type')).toMatch(/^application\/json/);
    const { otpRequestId, expiresAt } = sentBody;
    expect(typeof otpRequestId).toBe('string');
    expect(Date.parse(expiresAt)).toBeGreaterThan(Date.now());

    const [, code] = await s.app.waitFor(smsLine(PHONE), 10_000, since);
    const verified = await post(`${s.url}/auth/verify-otp`, JSON.stringify({ otpRequestId, otp: code }));
    const body = (await verified.json()) as { verified: boolean; token: string; tokenExpiresAt: string };
    expect({ status: verified.status, body }).toMatchObject({ status: 200 });
    expect(body.verified).toBe(true);

    const payload = JSON.parse(Buffer.from(body.token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
    expect(payload).toMatchObject({ sub: PHONE, jti: otpRequestId, iss: 'otp-service', aud: 'checkout' });
    // The checkout side: only the published public keys.
    const jwks = await fetch(`${s.url}/.well-known/jwks.json`);
    expect(jwks.status).toBe(200);
    expect(jwks.headers.get('cache-control')).toBe('public, max-age=300');
    const doc = (await jwks.json()) as { keys: Record<string, unknown>[] };
    expect(doc.keys).toHaveLength(1);
    expect(doc.keys[0]).not.toHaveProperty('d');
    const claims = await verifyOtpToken(body.token, jwksFromUrl(`${s.url}/.well-known/jwks.json`), { issuer: 'otp-service', audience: 'checkout' });
    expect(claims.sub).toBe(PHONE);
    flowToken = body.token;

    // A used code does not verify twice.
    const again = await post(`${s.url}/auth/verify-otp`, JSON.stringify({ otpRequestId, otp: code }));
    expect(again.status).toBe(410);
  });

  it('the examples outside this codebase (Node with jose, Python with PyJWT) accept the token from the JWKS, and refuse a tampered one and one for another audience', async () => {
    expect(flowToken).toEqual(expect.any(String));
    // Fails (never skips) without PyJWT: CI installs Debian's python3-jwt (.ci/run).
    const pyjwt = await new Promise<number | null>((r) => spawn(SYSTEM_PYTHON, ['-c', 'import jwt, cryptography'], { stdio: 'ignore' }).on('exit', r).on('error', () => r(-1)));
    expect({ python: SYSTEM_PYTHON, importsJwtAndCryptography: pyjwt === 0 }).toEqual({ python: SYSTEM_PYTHON, importsJwtAndCryptography: true });

    const env = { OTP_JWKS_URL: `${s.url}/.well-known/jwks.json`, OTP_TOKEN_ISSUER: 'otp-service', OTP_TOKEN_AUDIENCE: 'checkout' };
    const [header, payload, signature] = flowToken.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
    const tampered = `${header}.${Buffer.from(JSON.stringify({ ...claims, sub: '+919999999999' })).toString('base64url')}.${signature}`;
    // Signed with the service's real key (read from the secrets stand-in), for another audience.
    const tokenKey = JSON.parse(await getSecret(s.secretsEndpoint, 'otp/token-key')) as { current: { kid: string } & Record<string, string> };
    const otherAudience = await new SignJWT({ ...claims, aud: 'another-shop' })
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: tokenKey.current.kid })
      .sign(await importJWK(tokenKey.current, 'ES256'));

    for (const which of ['node', 'python'] as const) {
      expect({ which, ...(await runExample(which, flowToken, env)) }).toEqual({ which, code: 0, out: PHONE });
      for (const [name, token] of [['tampered', tampered], ['another audience', otherAudience]] as const) {
        const refused = await runExample(which, token, env);
        expect({ which, name, code: refused.code, out: refused.out }).toEqual({ which, name, code: 1, out: expect.stringMatching(/^refused: /) });
      }
      // ...and a backend configured for another audience refuses ours.
      expect((await runExample(which, flowToken, { ...env, OTP_TOKEN_AUDIENCE: 'another-shop' })).code).toBe(1);
    }
  }, 60_000);

  it('answers a malformed JSON body with 400 invalid_request', async () => {
    const res = await post(`${s.url}/auth/verify-otp`, '{"otpRequestId": "abc", "otp": ');
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toMatchObject({ error: 'invalid_request' });
  });

  it('proxies headers and bodies unchanged', async () => {
    // A header only the handler reads: the same Idempotency-Key replays the first answer, and sends one SMS.
    const phone = '+919876543219';
    const since = s.app.output().length;
    const headers = { 'content-type': 'application/json', 'idempotency-key': 'npm-start-e2e-0001' };
    const first = await post(`${s.url}/auth/send-otp`, JSON.stringify({ phoneNumber: phone }), headers);
    const second = await post(`${s.url}/auth/send-otp`, JSON.stringify({ phoneNumber: phone }), headers);
    expect([first.status, second.status]).toEqual([201, 201]);
    expect(((await second.json()) as { otpRequestId: string }).otpRequestId).toBe(((await first.json()) as { otpRequestId: string }).otpRequestId);
    await s.app.waitFor(smsLine(phone), 10_000, since);
    expect(s.app.output().slice(since).match(new RegExp(smsLine(phone), 'g'))).toHaveLength(1);

    // The content type reaches the handler as sent.
    const text = await post(`${s.url}/auth/send-otp`, 'phoneNumber=+919876543210', { 'content-type': 'text/plain' });
    expect(text.status).toBe(415);

    // A body over 4 KiB arrives whole and is refused by the service (not by the proxy).
    const big = await post(`${s.url}/auth/send-otp`, JSON.stringify({ phoneNumber: PHONE, pad: 'x'.repeat(5000) }));
    expect(big.status).toBe(413);
    expect(await big.json()).toMatchObject({ error: 'payload_too_large' });
  });

  it('serves the page, the OpenAPI document, and a JSON 404 for anything else (no path traversal)', async () => {
    const page = await fetch(`${s.url}/`);
    if (existsSync(join(REPO_ROOT, 'public', 'index.html'))) {
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    } else {
      expect(page.status).toBe(404);
    }

    const openapi = await fetch(`${s.url}/openapi.json`);
    expect(openapi.status).toBe(200);
    expect(await openapi.json()).toMatchObject({ openapi: expect.stringMatching(/^3\./), paths: expect.any(Object) });

    for (const path of ['/../package.json', '/%2e%2e/package.json', '/..%2fpackage.json', '/nothing-here.txt', '/public/../serverless.yml']) {
      const res = await rawGet(s.url, path);
      expect({ path, status: res.status }).toEqual({ path, status: 404 });
      expect(res.contentType).toMatch(/^application\/json/);
      expect(JSON.parse(res.body)).toMatchObject({ error: 'not_found' });
    }
  });

  it('stops everything on SIGTERM: it exits, no port is still listening, no process is left', async () => {
    expect(groupMembers(s.offlinePid).length).toBeGreaterThan(0);
    process.kill(-s.app.pid, 'SIGTERM'); // what a terminal does on Ctrl-C, with SIGTERM
    const { code, signal } = await s.app.exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    await expectAllGone(s);
  });
});

describe('npm start, stopped by a SIGTERM to npm alone (as docker stop or a process manager does)', () => {
  // npm runs the script through `sh -c`, which does not pass the signal on: start.ts notices it is orphaned.
  const npmCli = process.env.npm_execpath?.endsWith('npm-cli.js') ? process.env.npm_execpath : undefined;
  let s: Started | undefined;

  afterAll(() => killGroups(s?.app.pid, s?.offlinePid));

  it('stops everything within seconds', async () => {
    const port = await freePort();
    const env = localToolEnv({ PORT: String(port) });
    const app = npmCli ? spawnInGroup(process.execPath, [npmCli, 'start'], env) : spawnInGroup('npm', ['start'], env);
    s = await startedFrom(app);
    const ok = await fetch(`${s.url}/openapi.json`);
    expect(ok.status).toBe(200);

    process.kill(app.pid, 'SIGTERM'); // npm only, not its group
    await app.exited;
    await expectAllGone(s);
    expect(app.output()).toContain('The process that started this one is gone; stopping.');
  }, START_TIMEOUT + 40_000);
});

describe('npm start when something is wrong', () => {
  let s: Started | undefined;
  afterAll(() => killGroups(s?.app.pid, s?.offlinePid));

  const startTs = (env: Record<string, string>) => spawnInGroup(process.execPath, ['--import', 'tsx', 'local/start.ts'], localToolEnv(env));

  it('refuses an invalid setting, naming the variable, before starting anything', async () => {
    const app = startTs({ PORT: String(await freePort()), OTP_TTL_SECONDS: '601' });
    expect((await app.exited).code).toBe(1);
    expect(app.output()).toContain('OTP_TTL_SECONDS');
    expect(app.output()).not.toContain('OTP service ready');
  }, 60_000);

  it('refuses a PORT that is taken', async () => {
    const { createServer } = await import('node:net');
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    const { port } = taken.address() as import('node:net').AddressInfo;
    try {
      const app = startTs({ PORT: String(port) });
      expect((await app.exited).code).toBe(1);
      expect(app.output()).toContain(`PORT ${port} is already in use`);
    } finally {
      taken.close();
    }
  }, 60_000);

  it('stops everything else and exits 1 when serverless offline dies', async () => {
    s = await startedFrom(startTs({ PORT: String(await freePort()) }));
    process.kill(-s.offlinePid, 'SIGKILL');
    const { code } = await s.app.exited;
    expect(code).toBe(1);
    expect(s.app.output()).toContain('serverless offline exited (SIGKILL); stopping.');
    await expectAllGone(s);
  }, START_TIMEOUT + 30_000);
});

describe('tsx local/invoke.ts flow', () => {
  let app: Spawned | undefined;
  afterAll(() => killGroups(app?.pid));

  it('sends through invoke local, reads the code from the sandbox, verifies, and stops what it started', async () => {
    app = spawnInGroup(process.execPath, [TSX_CLI, 'local/invoke.ts', 'flow'], localToolEnv());
    const { code } = await app.exited;
    const out = app.output();
    expect({ code, output: code === 0 ? '' : out }).toEqual({ code: 0, output: '' }); // the output, when it failed
    expect(out).toMatch(/sendOtp\s+→ 201 \{"otpRequestId":"[\w-]+"/);
    expect(out).toMatch(/verifyOtp → 200 \{"verified":true,"token":"[\w-]+\.[\w-]+\.[\w-]+"/);
    expect(await waitGroupGone(app.pid, 10_000)).toBe(true);
  }, 240_000);

  it('refuses an unknown command with its usage', async () => {
    const bad = spawnInGroup(process.execPath, [TSX_CLI, 'local/invoke.ts', 'nope'], localToolEnv());
    expect((await bad.exited).code).toBe(2);
    expect(bad.output()).toContain('usage: tsx local/invoke.ts <sendOtp|verifyOtp|flow>');
  }, 60_000);
});

/* ------------------------------------------------------------------------------------------------------
 * The edge, as a browser (or curl) sees it: npm start must answer as the deployed HTTP API does.
 */

/** A raw HTTP exchange: exact headers sent (no Content-Type unless given), all headers received. */
const raw = (
  base: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> =>
  new Promise((res, rej) => {
    const { hostname, port } = new URL(base);
    const req = request({ host: hostname, port, path, method, headers }, (r) => {
      let text = '';
      r.on('data', (c: Buffer) => (text += c.toString('utf8')));
      r.on('end', () => res({ status: r.statusCode ?? 0, headers: r.headers, body: text }));
    });
    req.on('error', rej);
    req.end(body);
  });

const corsHeaders = (h: Record<string, unknown>) => Object.fromEntries(Object.entries(h).filter(([k]) => k.startsWith('access-control-')));

describe('npm start at the edge: CORS, Content-Type, caller IP, page headers, credentials, builds side by side', () => {
  const SHOP = 'https://shop.example';
  const SHELL_KEY = 'AKIASHELLKEYNOTSHOWN1';
  const SHELL_SECRET = 'shell-secret-value-never-printed';
  let s: Started;
  let dynamo: Awaited<ReturnType<typeof startLocalDynamo>> | undefined;
  const json = { 'content-type': 'application/json' };
  const sendBody = (phone: string) => JSON.stringify({ phoneNumber: phone });

  beforeAll(async () => {
    // Our own DynamoDB, so npm start keeps the shell's credentials (as for DynamoDB Local) and must still not print them.
    dynamo = await startLocalDynamo();
    await createTable(dynamo.endpoint, 'otp-edge');
    const port = await freePort();
    s = await startedFrom(
      spawnInGroup(process.execPath, ['--import', 'tsx', 'local/start.ts'], localToolEnv({
        PORT: String(port),
        CORS_ALLOWED_ORIGINS: `${SHOP},http://localhost:8080`,
        LOCAL_FORWARDED_FOR: '1',
        SEND_LIMIT_PER_IP_PER_HOUR: '2',
        SEND_COOLDOWN_SECONDS: '0',
        AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
        OTP_TABLE: 'otp-edge',
        AWS_ACCESS_KEY_ID: SHELL_KEY,
        AWS_SECRET_ACCESS_KEY: SHELL_SECRET,
      })),
    );
  }, START_TIMEOUT + 10_000);

  afterAll(async () => {
    killGroups(s?.app.pid, s?.offlinePid);
    await dynamo?.close();
  });

  it('the banner names variables, never credentials, and states the CORS list and where the caller IP comes from', () => {
    const out = s.app.output();
    expect(out).not.toContain(SHELL_KEY);
    expect(out).not.toContain(SHELL_SECRET);
    expect(out).toContain("# AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: keep your shell's own (not printed)");
    expect(out).toMatch(/CORS\s+https:\/\/shop\.example, http:\/\/localhost:8080 \(CORS_ALLOWED_ORIGINS\)/);
    expect(out).toMatch(/Caller IP\s+first X-Forwarded-For entry \(LOCAL_FORWARDED_FOR=1/);
    expect(out).toContain('(from AWS_ENDPOINT_URL_DYNAMODB; table otp-edge must exist)');
  });

  it('answers a preflight from a listed origin as the HTTP API does, with GET for the JWKS', async () => {
    const res = await raw(s.url, 'OPTIONS', '/auth/send-otp', {
      origin: SHOP, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,idempotency-key',
    });
    expect(res.status).toBe(204);
    expect(corsHeaders(res.headers)).toEqual({
      'access-control-allow-origin': SHOP,
      'access-control-allow-methods': 'GET,POST,OPTIONS',
      'access-control-allow-headers': 'content-type,idempotency-key',
      'access-control-max-age': '600',
    });
  });

  it.each([['null'], ['https://evil.example'], ['https://shop.example.evil.example'], ['http://shop.example']])(
    'gives origin %s no Access-Control-* header, on a preflight and on a plain request alike',
    async (origin) => {
      const pre = await raw(s.url, 'OPTIONS', '/auth/verify-otp', { origin, 'access-control-request-method': 'POST' });
      expect(pre.status).toBe(204);
      expect(corsHeaders(pre.headers)).toEqual({});
      const plain = await raw(s.url, 'POST', '/auth/verify-otp', { origin, ...json }, JSON.stringify({ otpRequestId: 'abcdef', otp: '123456' }));
      expect(plain.status).toBe(410);
      expect(corsHeaders(plain.headers)).toEqual({});
    },
  );

  it('grants a listed origin on plain requests (no reflection, no credentials), errors and the JWKS included', async () => {
    const verify = await raw(s.url, 'POST', '/auth/verify-otp', { origin: SHOP, ...json }, JSON.stringify({ otpRequestId: 'abcdef', otp: '123456' }));
    expect(verify.status).toBe(410);
    expect(corsHeaders(verify.headers)).toEqual({ 'access-control-allow-origin': SHOP, 'access-control-expose-headers': 'retry-after' });
    const jwks = await raw(s.url, 'GET', '/.well-known/jwks.json', { origin: SHOP });
    expect(corsHeaders(jwks.headers)).toEqual({ 'access-control-allow-origin': SHOP, 'access-control-expose-headers': 'retry-after' });
    const none = await raw(s.url, 'POST', '/auth/verify-otp', json, JSON.stringify({ otpRequestId: 'abcdef', otp: '123456' }));
    expect(corsHeaders(none.headers)).toEqual({});
  });

  it('refuses a request without Content-Type with 415, as the deployed service does', async () => {
    const res = await raw(s.url, 'POST', '/auth/send-otp', {}, sendBody('+919812340001'));
    expect(res.status).toBe(415);
    expect(JSON.parse(res.body)).toMatchObject({ error: 'unsupported_media_type' });
  });

  it('serves the page and its files with frame-ancestors none, X-Frame-Options DENY and nosniff', async () => {
    for (const path of ['/', '/otp-widget.js', '/otp-widget.css']) {
      const res = await raw(s.url, 'GET', path, {});
      expect({ path, status: res.status }).toEqual({ path, status: 200 });
      expect(res.headers['content-security-policy']).toBe("frame-ancestors 'none'");
      expect(res.headers['x-frame-options']).toBe('DENY');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
    }
  });

  it('LOCAL_FORWARDED_FOR=1: the per-IP limit counts the first X-Forwarded-For entry, and nothing else', async () => {
    const from = (ip: string, phone: string, extra: Record<string, string> = {}) =>
      raw(s.url, 'POST', '/auth/send-otp', { ...json, 'x-forwarded-for': `${ip}, 10.0.0.1`, ...extra }, sendBody(phone));
    expect((await from('203.0.113.1', '+919812340011')).status).toBe(201);
    expect((await from('203.0.113.1', '+919812340012')).status).toBe(201);
    const third = await from('203.0.113.1', '+919812340013');
    expect(third.status).toBe(429); // SEND_LIMIT_PER_IP_PER_HOUR=2 for that IP
    // The front server's own header cannot be forged by a client.
    expect((await from('203.0.113.1', '+919812340014', { 'x-otp-local-source-ip': '198.51.100.9' })).status).toBe(429);
    expect((await from('203.0.113.2', '+919812340015')).status).toBe(201); // another IP, its own budget
  });

  it('frames the sandbox code line so it stands out from the JSON logs', async () => {
    const since = s.app.output().length;
    expect((await raw(s.url, 'POST', '/auth/send-otp', { ...json, 'x-forwarded-for': '203.0.113.50' }, sendBody('+919812340021'))).status).toBe(201);
    const [line] = await s.app.waitFor(/║ {2}\[sandbox-sms\] \+91\*+0021 code \d{6} {2}║/, 10_000, since);
    expect(s.app.output().slice(since)).toContain(`╔${'═'.repeat(line.length - 2)}╗`);
  });

  it('`npm run package` (serverless package) beside it does not break it', async () => {
    const out = mkdtempSync(join(tmpdir(), 'otp-edge-package-'));
    try {
      // The real command in this very tree, as a person would run it in a second terminal.
      const params = ['--param', `corsAllowedOrigins=${SHOP}`, '--param', 'alarmTopicArn=arn:aws:sns:ap-south-1:123456789012:ops'];
      const run = await runServerless(['package', '--stage', 'prod', '--package', out, ...params], {
        cwd: REPO_ROOT,
        env: { ...localToolEnv(), CORS_ALLOWED_ORIGINS: '' },
        timeoutMs: 240_000,
      });
      expect({ code: run.code, out: run.code === 0 ? '' : `${run.stdout.slice(-1500)}\n${run.stderr.slice(-1500)}` }).toEqual({ code: 0, out: '' });
      const res = await raw(s.url, 'POST', '/auth/send-otp', { ...json, 'x-forwarded-for': '203.0.113.60' }, sendBody('+919812340031'));
      expect({ status: res.status, body: res.status === 201 ? '' : res.body.slice(0, 500) }).toEqual({ status: 201, body: '' });
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 300_000);

  it('stops everything on SIGTERM', async () => {
    process.kill(-s.app.pid, 'SIGTERM');
    expect((await s.app.exited).code).toBe(0);
    const ours = Number(new URL(dynamo!.endpoint).port); // the test's own DynamoDB keeps running until afterAll
    await expectAllGone({ ...s, ports: s.ports.filter((p) => p !== ours) });
  }, 30_000);
});
