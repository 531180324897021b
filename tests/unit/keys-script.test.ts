/**
 * scripts/keys.ts, the commands of docs/keys.md, run as the runbook runs them: secret in on stdin, secret out
 * on stdout, checked as the service checks it.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { decodeHashKey } from '../../lib/otp/keys';
import { parseTokenKey } from '../../lib/otp/token';

const ROOT = join(__dirname, '..', '..');
const keys = (args: string[], input = '') => {
  const run = spawnSync(process.execPath, [join(ROOT, 'node_modules/tsx/dist/cli.mjs'), 'scripts/keys.ts', ...args], {
    cwd: ROOT,
    input,
    encoding: 'utf8',
    timeout: 60_000,
    env: { PATH: process.env.PATH ?? '', TOKEN_TTL_SECONDS: '600', SECRETS_CACHE_SECONDS: '300' },
  });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
};

it('hash: 32 random bytes in base64, as HASH_SECRET_ID requires', () => {
  const { status, stdout } = keys(['hash']);
  expect(status).toBe(0);
  expect(decodeHashKey(stdout.trim())).toHaveLength(32);
});

it('token new → stage → promote: the next key is published first, then signs; the old one stays as previous', () => {
  const first = keys(['token', 'new']);
  expect(first.status).toBe(0);
  const initial = JSON.parse(first.stdout) as { current: { kid: string } };
  expect(parseTokenKey(initial).jwks.keys).toHaveLength(1);

  const staged = keys(['token', 'stage'], first.stdout);
  expect(staged.status).toBe(0);
  const next = (JSON.parse(staged.stdout) as { next: { kid: string } }).next.kid;
  expect(parseTokenKey(JSON.parse(staged.stdout)).jwks.keys.map((k) => k.kid)).toEqual([initial.current.kid, next]);

  const promoted = keys(['token', 'promote'], staged.stdout);
  expect(promoted.status).toBe(0);
  const after = JSON.parse(promoted.stdout) as { current: { kid: string }; previous: { kid: string; retiredAt: number; d?: string }[] };
  expect(after.current.kid).toBe(next);
  expect(after.previous).toEqual([expect.objectContaining({ kid: initial.current.kid, retiredAt: expect.any(Number) })]);
  expect(after.previous[0]).not.toHaveProperty('d');

  const jwks = keys(['token', 'jwks'], promoted.stdout);
  expect(JSON.parse(jwks.stdout)).toEqual({ keys: [expect.objectContaining({ kid: next }), expect.objectContaining({ kid: initial.current.kid })] });
  expect(jwks.stdout).not.toMatch(/"d"/);
}, 120_000);

it('refuses a malformed secret on stdin, naming the variable and never a key', () => {
  const bad = keys(['token', 'stage'], '{"current": {"kty": "EC", "crv": "P-256", "d": "secret-ish"}}');
  expect(bad.status).toBe(1);
  expect(bad.stderr).toContain('TOKEN_KEY_SECRET_ID');
  expect(bad.stderr).not.toContain('secret-ish');
  expect(keys(['token', 'promote'], 'not json').stderr).toContain('stdin is not JSON');
  expect(keys(['nope']).status).toBe(1);
}, 60_000);
