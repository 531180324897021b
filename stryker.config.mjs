// Mutation testing (docs/mutation.md). Not part of CI: hours on 2 cores for lib/ and middleware/.
// Scope: MUTATE="lib/otp,middleware/errors.ts" (folders or files, comma-separated); `npm run mutate -- lib/otp`
// sets it. Default: all of lib/ and middleware/.
import { existsSync, statSync } from 'node:fs';

const scope = (process.env.MUTATE ?? 'lib,middleware')
  .split(',')
  .map((s) => s.trim().replace(/\/+$/, ''))
  .filter((s) => s !== '');
for (const s of scope) if (!existsSync(s)) throw new Error(`MUTATE: no such file or folder "${s}"`);
const mutate = scope.flatMap((s) => (statSync(s).isDirectory() ? [`${s}/**/*.ts`, `!${s}/**/*.d.ts`] : [s]));
const name = scope.join('+').replace(/[^A-Za-z0-9+._-]/g, '_');

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: 'npm',
  testRunner: 'jest',
  jest: { configFile: 'jest.stryker.config.cjs', enableFindRelatedTests: true },
  // Only the covering tests run per mutant (and our jest environment stops at the first failure).
  coverageAnalysis: 'perTest',
  mutate,
  // Stryker's inserted `// @ts-nocheck` would make the schemas test ("generated validators are current") fail.
  disableTypeChecks: false,
  // Module-level mutants (constants evaluated at load) would re-run every test for each: reported as ignored.
  ignoreStatic: true,
  // The machine is shared: one jest process (the tests themselves start dynalite and HTTP stand-ins).
  concurrency: Number(process.env.MUTATE_CONCURRENCY ?? 1),
  timeoutMS: 10000,
  // The initial run of every related test takes 5+ minutes on a loaded machine (Stryker's default limit: 5).
  dryRunTimeoutMinutes: 40,
  reporters: ['clear-text', 'progress-append-only', 'html', 'json'],
  htmlReporter: { fileName: `reports/mutation/${name}.html` },
  jsonReporter: { fileName: `reports/mutation/${name}.json` },
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
  ignorePatterns: ['reports', 'coverage', 'test-output', 'bench/.out', '.serverless', '.esbuild', 'dist'],
  thresholds: { high: 90, low: 85, break: null },
};
