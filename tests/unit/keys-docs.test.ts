/**
 * The shared root secret and the HS256 path are gone from code and docs, and what the docs show is what runs:
 * the README shows the example verifiers verbatim, docs/keys.md's commands exist.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

const files = (dir: string): string[] =>
  readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = join(dir, name);
    // Dependencies, build output and hidden folders (.git, .esbuild, bench/.out, ...) are not ours to check.
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) return [];
    return statSync(join(ROOT, path)).isDirectory() ? files(path) : [path];
  });

it('no file mentions the old shared signing secret or HS256 tokens (this test excepted)', () => {
  const self = relative(ROOT, __filename);
  const texts = files('.').filter((f) => /\.(ts|mjs|cjs|js|py|md|yml|json)$/.test(f) && f !== self && f !== 'package-lock.json');
  expect(texts.length).toBeGreaterThan(50);
  expect(texts.filter((f) => /SIGNING_SECRET_ID|signingSecretId|otp\/signing-key|signingKey\b|signing secret/i.test(read(f)))).toEqual([]);
  // In the code and the docs a reader follows, HS256 appears only where the algorithm-confusion attack is
  // described or tried (and refused).
  const followed = texts.filter((f) => /^(handlers|middleware|lib|local|schemas|scripts|examples|docs|tests)\//.test(f) || f === 'README.md');
  expect(followed.filter((f) => read(f).includes('HS256'))).toEqual(['docs/keys.md', 'lib/otp/token-verifier.ts', 'tests/unit/token.test.ts']);
});

it('the README shows both example verifiers verbatim', () => {
  const readme = read('README.md');
  for (const example of ['examples/verify-token.mjs', 'examples/verify_token.py']) {
    expect({ example, verbatim: readme.includes(read(example).trimEnd()) }).toEqual({ example, verbatim: true });
  }
});

it("docs/keys.md's commands are the scripts package.json runs", () => {
  const doc = read('docs/keys.md');
  const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
  expect(scripts['keys:hash']).toBe('tsx scripts/keys.ts hash');
  expect(scripts['keys:token']).toBe('tsx scripts/keys.ts token');
  const used = [...doc.matchAll(/npm run -s keys:token -- (\w+)/g)].map((m) => m[1]);
  expect(new Set(used)).toEqual(new Set(['new', 'stage', 'promote', 'prune', 'jwks']));
  const script = read('scripts/keys.ts');
  for (const step of used) expect(script).toContain(`case '${step}':`);
});
