/**
 * Builds what the benchmark measures, with esbuild and the options serverless-esbuild would use for the
 * deployment: serverless.yml's `custom.esbuild`, over serverless-esbuild's defaults, minus the plugin's own
 * keys (the same list its bundle step strips), with `exclude` turned into `external`.
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { crc32, deflateRawSync } from 'node:zlib';
import { build, type BuildOptions, type Metafile } from 'esbuild';
import { loadCfnYaml as loadServerlessYaml } from '../../local/serverless-yaml';

/** Keys serverless-esbuild consumes itself and deletes before calling esbuild (dist/bundle.js). */
const PLUGIN_ONLY_KEYS = [
  'concurrency', 'zipConcurrency', 'exclude', 'nativeZip', 'packager', 'packagePath', 'watch', 'keepOutputDirectory',
  'packagerOptions', 'installExtraArgs', 'outputFileExtension', 'outputBuildFolder', 'outputWorkFolder', 'nodeExternals',
  'skipBuild', 'skipRebuild', 'skipBuildExcludeFns', 'stripEntryResolveExtensions', 'disposeContext',
];

export interface DeployBuild {
  /** custom.esbuild exactly as serverless.yml has it. */
  declared: Record<string, unknown>;
  /** What is passed to esbuild (besides entry point, outfile and metafile). */
  options: BuildOptions;
  /** function name → source file of its handler, and the exported name. */
  functions: Record<string, { entry: string; exportName: string }>;
}

const asStrings = (v: unknown): string[] => (Array.isArray(v) ? v : v === undefined ? [] : [v]).filter((x): x is string => typeof x === 'string');

export const readDeployBuild = (root: string): DeployBuild => {
  const yml = loadServerlessYaml(join(root, 'serverless.yml')) as {
    provider?: { runtime?: string };
    custom?: { esbuild?: Record<string, unknown> };
    functions?: Record<string, { handler?: string }>;
  };
  const declared = yml.custom?.esbuild ?? {};
  if (declared.plugins !== undefined || declared.config !== undefined) {
    throw new Error('serverless.yml custom.esbuild uses plugins or a config file: bench/lib/build.ts does not replicate those yet');
  }
  // serverless-esbuild's defaults that reach esbuild; target from the runtime unless set (nodejs22.x → node22).
  const runtimeTarget = /^nodejs(\d+)\.x$/.exec(yml.provider?.runtime ?? '')?.[1];
  const merged: Record<string, unknown> = {
    bundle: true,
    platform: 'node',
    ...(runtimeTarget ? { target: `node${runtimeTarget}` } : {}),
    ...declared,
  };
  const options = Object.fromEntries(Object.entries(merged).filter(([k]) => !PLUGIN_ONLY_KEYS.includes(k))) as BuildOptions;
  const exclude = asStrings(declared.exclude);
  options.external = [...asStrings(declared.external), ...(exclude.includes('*') ? [] : exclude)];

  const functions: DeployBuild['functions'] = {};
  for (const [name, fn] of Object.entries(yml.functions ?? {})) {
    if (!fn.handler) continue;
    const dot = fn.handler.lastIndexOf('.');
    const base = fn.handler.slice(0, dot);
    const ext = ['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs'].find((e) => existsSync(join(root, base + e)));
    if (ext === undefined) throw new Error(`serverless.yml: no source file for handler ${fn.handler}`);
    functions[name] = { entry: base + ext, exportName: fn.handler.slice(dot + 1) };
  }
  return { declared, options, functions };
};

export interface BuiltBundle {
  name: string;
  file: string;
  bytes: number;
  zipBytes: number;
  /** Bytes of the output each package (or first-party folder) accounts for, from esbuild's metafile. */
  byPackage: Record<string, number>;
}

/** A one-file zip, as the deployment package would hold the bundle (deflate level 9). */
export const zipBytes = (file: string): number => {
  const data = readFileSync(file);
  const name = Buffer.from(basename(file));
  const compressed = deflateRawSync(data, { level: 9 });
  const crc = crc32(data);
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(20, 4);
  local.writeUInt16LE(8, 8);
  local.writeUInt32LE(crc, 14);
  local.writeUInt32LE(compressed.length, 18);
  local.writeUInt32LE(data.length, 22);
  local.writeUInt16LE(name.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(20, 4);
  central.writeUInt16LE(20, 6);
  central.writeUInt16LE(8, 10);
  central.writeUInt32LE(crc, 16);
  central.writeUInt32LE(compressed.length, 20);
  central.writeUInt32LE(data.length, 24);
  central.writeUInt16LE(name.length, 28);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(central.length + name.length, 12);
  end.writeUInt32LE(local.length + name.length + compressed.length, 16);
  return local.length + name.length + compressed.length + central.length + name.length + end.length;
};

/** `node_modules/@aws-sdk/client-dynamodb/dist-cjs/index.js` → `@aws-sdk/client-dynamodb`; own files → `(ours) lib`. */
export const packageOf = (input: string): string => {
  const i = input.lastIndexOf('node_modules/');
  if (i < 0) {
    const top = input.replace(/^(\.\.\/)+/, '').split('/')[0] ?? input;
    return `(first-party) ${top}`;
  }
  const parts = input.slice(i + 'node_modules/'.length).split('/');
  return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
};

const attribute = (metafile: Metafile, root: string, outfile: string): Record<string, number> => {
  const key = relative(root, outfile);
  const output = metafile.outputs[key];
  if (output === undefined) throw new Error(`esbuild metafile has no output ${key}`);
  const byPackage: Record<string, number> = {};
  let attributed = 0;
  for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
    const pkg = packageOf(input);
    byPackage[pkg] = (byPackage[pkg] ?? 0) + bytesInOutput;
    attributed += bytesInOutput;
  }
  byPackage['(esbuild module wrappers)'] = output.bytes - attributed;
  return byPackage;
};

export const buildBundle = async (root: string, name: string, entry: string, outfile: string, options: BuildOptions): Promise<BuiltBundle> => {
  const result = await build({ ...options, absWorkingDir: root, entryPoints: [join(root, entry)], outfile, metafile: true, logLevel: 'error', write: true });
  return { name, file: outfile, bytes: statSync(outfile).size, zipBytes: zipBytes(outfile), byPackage: attribute(result.metafile, root, outfile) };
};

/** The benchmark's own child scripts: plain CommonJS for the `node` they run in, not minified (readable stacks). */
export const buildTool = async (root: string, entry: string, outfile: string): Promise<void> => {
  await build({ absWorkingDir: root, entryPoints: [join(root, entry)], outfile, bundle: true, platform: 'node', format: 'cjs', target: 'node20', logLevel: 'error' });
};

export const writeJson = (file: string, value: unknown): void => writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
