// `npm run mutate [-- <folder-or-file> ...]`: StrykerJS on lib/ and middleware/ (default) or on the given
// folders/files. Passes the scope to stryker.config.mjs through MUTATE. See docs/mutation.md.
// Run through npm, which puts node_modules/.bin on PATH.
import { spawnSync } from 'node:child_process';

const args = process.argv.slice(2);
const env = { ...process.env };
if (args.length > 0) env.MUTATE = args.join(',');
const r = spawnSync('stryker', ['run', 'stryker.config.mjs'], { stdio: 'inherit', env });
if (r.error) throw r.error;
process.exit(r.status ?? 1);
