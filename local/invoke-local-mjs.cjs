/**
 * Preloaded (`node --require`) into the `serverless invoke local` process that local/invoke.ts starts.
 *
 * The functions ship as ES module bundles, handlers/<name>.mjs (serverless.yml custom.esbuild). osls 4.3.1's
 * invoke local loads a handler with `require('<build folder>/handlers/<name>')`, then tries `.cjs`, and never
 * `.mjs`, so it cannot find them. This resolves such an extensionless path to its `.mjs` sibling when nothing
 * else matches; Node ≥ 20.19 then loads the ES module through require() (the bundle has no top-level await).
 * Only that one case changes: every other resolution, and every other process, is untouched.
 */
'use strict';
const Module = require('node:module');
const { existsSync } = require('node:fs');
const { isAbsolute } = require('node:path');

const resolveFilename = Module._resolveFilename;
Module._resolveFilename = function resolveToMjsBundle(request, ...rest) {
  try {
    return resolveFilename.call(this, request, ...rest);
  } catch (error) {
    if (error && error.code === 'MODULE_NOT_FOUND' && isAbsolute(request) && existsSync(`${request}.mjs`)) return `${request}.mjs`;
    throw error;
  }
};
