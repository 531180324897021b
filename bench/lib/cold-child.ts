/**
 * A cold-start child (bundled to bench/.out/bin/cold-child.js and run with plain `node`): times `require()`
 * of one production bundle in this fresh process, writes the figure to the file named on the command line,
 * and exits at once. Exiting also drops our handlers' secrets prefetch, which has only been queued by then;
 * AWS_ENDPOINT_URL_SECRETS_MANAGER points at a local stand-in in case it ever gets further.
 */
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { ColdResult } from './protocol';

const [bundle, out] = process.argv.slice(2);
const nodeRequire = createRequire(__filename);
const bootMs = performance.now();
const cpu = process.cpuUsage();
const started = process.hrtime.bigint();
nodeRequire(bundle!);
const initMs = Number(process.hrtime.bigint() - started) / 1e6;
const { user, system } = process.cpuUsage(cpu);
const result: ColdResult = { initMs, initCpuMs: (user + system) / 1000, bootMs };
writeFileSync(out!, JSON.stringify(result));
process.exit(0);
