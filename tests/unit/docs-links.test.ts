/**
 * The README and docs/ are read from a clone: every link is either a web address or a path that stays
 * inside the repository (nothing points at the shared planning folder beside it).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = resolve(__dirname, '..', '..');
const DOCS = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

const links = (file: string): string[] =>
  [...readFileSync(join(ROOT, file), 'utf8').matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!);

describe.each(DOCS)('%s', (file) => {
  it('links only to the web or to paths inside the repository', () => {
    for (const target of links(file)) {
      if (/^(https?:|mailto:|#)/.test(target)) continue;
      const path = resolve(dirname(join(ROOT, file)), target.split('#')[0]!);
      expect({ target, inside: !relative(ROOT, path).startsWith('..') }).toEqual({ target, inside: true });
      expect(target).not.toMatch(/shared|API\.md|startmessaging\.md/);
    }
  });
});

it('README shows the tested back-end verifiers verbatim', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  for (const file of ['examples/verify-token.mjs', 'examples/verify_token.py']) {
    expect({ file, verbatim: readme.includes(readFileSync(join(ROOT, file), 'utf8')) }).toEqual({ file, verbatim: true });
  }
});

it("README's configuration table names every variable of the contract (docs/api.md)", () => {
  const section = (text: string, heading: string) => text.slice(text.indexOf(heading), text.indexOf('\n## ', text.indexOf(heading) + 1));
  const names = (text: string) => new Set([...text.matchAll(/^\| ([^|]+) \|/gm)].flatMap((m) => [...m[1]!.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((n) => n[1]!)));
  const contract = names(section(readFileSync(join(ROOT, 'docs/api.md'), 'utf8'), '## Configuration'));
  const readme = names(section(readFileSync(join(ROOT, 'README.md'), 'utf8'), '## Configuration'));
  expect(contract.size).toBeGreaterThan(20);
  expect([...contract].filter((n) => !readme.has(n))).toEqual([]);
});
