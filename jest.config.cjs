/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  // Powertools keeps its invocation store on globalThis by design; each handler load shares it.
  testEnvironmentOptions: { globalsCleanup: 'off' },
  roots: ['<rootDir>/tests'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.(t|j|mj)s$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } }],
  },
  // @middy/* (and jose's ESM build) are ESM-only: let swc turn them into CommonJS for jest.
  transformIgnorePatterns: ['/node_modules/(?!(@middy|jose)/)'],
  setupFiles: ['<rootDir>/tests/support/env.ts'],
  testTimeout: 30000,
  maxWorkers: 2,
  reporters: ['default', '<rootDir>/tests/support/summary-reporter.cjs'],
};
