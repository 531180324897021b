/**
 * The jest configuration Stryker runs (stryker.config.mjs), not the everyday one.
 * - roots: the whole project, so that --findRelatedTests (which Stryker uses per mutated file) sees
 *   tests/support/ and the handlers; with roots = tests/ only, every integration test is dropped as
 *   "unrelated" to the file under mutation.
 * - testMatch: unit and integration tests only (the e2e, browser and package tests need a Chromium,
 *   serverless packaging or a free port range, take minutes, and add no kills on lib/ or middleware/).
 * - absolute paths (from __dirname, i.e. Stryker's sandbox copy of the project).
 * - testEnvironment: stops a mutant's run at its first failing test (see the environment's comment).
 * - MUTATE_TESTS (comma-separated test files): only those run. For a scope that every integration test
 *   reaches (the provider client: every send calls it), each mutant otherwise runs minutes of related
 *   tests, and one that hangs waits out a timeout sized on all of them (docs/mutation.md).
 */
const path = require('node:path');
const base = require('./jest.config.cjs');

const root = __dirname;
const abs = (p) => path.join(root, p);

/** @type {import('jest').Config} */
module.exports = {
  ...base,
  rootDir: root,
  roots: [root],
  testMatch: process.env.MUTATE_TESTS
    ? process.env.MUTATE_TESTS.split(',').map((t) => abs(t.trim()))
    : [abs('tests/unit/**/*.test.ts'), abs('tests/integration/**/*.test.ts')],
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/\\.stryker-tmp/', '<rootDir>/reports/'],
  modulePathIgnorePatterns: ['<rootDir>/\\.stryker-tmp/', '<rootDir>/reports/', '<rootDir>/bench/', '<rootDir>/\\.serverless/', '<rootDir>/\\.esbuild/'],
  setupFiles: [abs('tests/support/env.ts')],
  testEnvironment: abs('tests/support/stryker-bail-environment.cjs'),
  reporters: [],
};
