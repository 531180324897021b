/**
 * `npm run bench`: every function of serverless.yml against two builds of a naive tutorial handler
 * (bench/baseline/handler.ts), all in one run, written to BENCHMARKS.md and bench/results.json.
 *
 * How each figure is taken (the children are bench/child.ts; the stand-ins, events and seam bench/standins.ts):
 *
 *   bundle     esbuild with serverless.yml's custom.esbuild (what serverless-esbuild passes on), minified
 *              bytes and a one-file deflate-9 zip. Baselines: "tutorial" = the same options but CommonJS with
 *              esbuild's default main-first resolution (how the tutorial builds it); "floor" = exactly our
 *              options (ESM, module-first), i.e. the naive handler built the best way.
 *   cold       a fresh `node` per sample loads one production bundle (import() for .mjs, require() for .js,
 *              as Lambda does), timed inside the child; every bundle once per round, rotated order; ratios are
 *              taken within a round (so load drift cancels) and summarised by their median.
 *   first      a fresh `node` loads one production bundle and invokes it once: SDK client setup, the secrets
 *              prefetch, DynamoDB and Secrets Manager answered by a stateless local HTTP stand-in, the provider
 *              by the local sandbox. Same rounds and ratios as cold. Send: no Idempotency-Key; verify: wrong code.
 *   memory     as first, then 999 more invocations (the function's kinds in turn); max RSS after the load
 *              and at the end (process.resourceUsage().maxRSS). One process per bundle, all at once.
 *   warm       one process holding "seam" bundles (same options, also exporting the bundled SDK classes, the
 *              handler module loaded after the seam is in): `send` of the SDK clients answered on the
 *              microtask queue, the provider exchange timed and taken out, so the figure is the handler's own
 *              code. Every kind of invocation once per round, rotated, after a warm-up; each checked for its
 *              status code; DynamoDB requests, round trips (requests overlapping in time) and Secrets Manager
 *              requests counted per invocation.
 *
 * Knobs: BENCH_COLD_N [20] rounds for cold, BENCH_FIRST_N [12] for first, BENCH_WARM_ROUNDS [1500], BENCH_NODE
 * [this node] the node binary the children run on;
 * BENCH_QUICK=1 for a rough run written to bench/.out/ only. Every server listens on 127.0.0.1 and is closed
 * before exit; every child is waited for, or killed by its pid.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { build, stop as stopEsbuild, type BuildOptions } from 'esbuild';
import { loadCfnYaml } from '../local/serverless-yaml';
import { startSandboxProvider, type Sandbox } from '../local/sandbox-provider';
import type { ChildConfig } from './child';
import { API_KEY, AWS_ENV, childEnv, KINDS, kindsOf, SEAM_SDK_EXPORTS, startAwsStandIn, type AwsStandIn, type Kind } from './standins';

const ROOT = resolve(__dirname, '..');
const OUT = join(ROOT, 'bench', '.out');
const QUICK = process.env.BENCH_QUICK === '1';
const knob = (name: string, fallback: number): number => {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  if (!/^[1-9]\d*$/.test(v)) throw new Error(`${name} must be a whole number ≥ 1, got "${v}"`);
  return Number(v);
};
const SETTINGS = { coldN: knob('BENCH_COLD_N', QUICK ? 4 : 20), firstN: knob('BENCH_FIRST_N', QUICK ? 3 : 12), warmRounds: knob('BENCH_WARM_ROUNDS', QUICK ? 200 : 1500), warmup: QUICK ? 50 : 200 };
/** The node that runs the children: BENCH_NODE=/path/to/node measures on another version (Lambda runs 22). */
const CHILD_NODE = process.env.BENCH_NODE || process.execPath;
Object.assign(process.env, AWS_ENV); // nothing here may ever look for real credentials

// --------------------------------------------------------------------------------------------- statistics

/** Nearest-rank percentile, no interpolation, nothing discarded. */
export const percentile = (values: readonly number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1] ?? Number.NaN;
};
/** A distribution-free ~95 % interval of the median: order statistics at n/2 ∓ 0.98·√n. */
export const medianInterval = (values: readonly number[]): [number, number] => {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  return [sorted[Math.max(1, Math.floor(n / 2 - 0.98 * Math.sqrt(n))) - 1]!, sorted[Math.min(n, Math.ceil(n / 2 + 1 + 0.98 * Math.sqrt(n))) - 1]!];
};
/** ours[i] / base[i], each pair measured in the same round. */
export const pairRatios = (ours: readonly number[], base: readonly number[]): number[] => {
  if (ours.length !== base.length) throw new Error(`pairRatios: ${ours.length} samples against ${base.length}`);
  return ours.map((o, i) => o / base[i]!);
};
export const rotate = <T>(items: readonly T[], i: number): T[] => {
  const k = ((i % items.length) + items.length) % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
};

// ------------------------------------------------------------------------------------------------- builds

/** Keys serverless-esbuild consumes itself and deletes before it calls esbuild (dist/bundle.js). */
const PLUGIN_ONLY_KEYS = new Set([
  'concurrency', 'zipConcurrency', 'exclude', 'nativeZip', 'packager', 'packagePath', 'watch', 'keepOutputDirectory', 'packagerOptions',
  'installExtraArgs', 'outputFileExtension', 'outputBuildFolder', 'outputWorkFolder', 'nodeExternals', 'skipBuild', 'skipRebuild',
  'skipBuildExcludeFns', 'stripEntryResolveExtensions', 'disposeContext',
]);

/** serverless.yml's functions (name → handler source) and the esbuild options serverless-esbuild would use. */
export const readDeployBuild = (root: string) => {
  const yml = loadCfnYaml(join(root, 'serverless.yml')) as { custom?: { esbuild?: Record<string, unknown> }; functions?: Record<string, { handler?: string }> };
  const declared = yml.custom?.esbuild ?? {};
  if (declared.plugins !== undefined || declared.config !== undefined) throw new Error('custom.esbuild uses plugins or a config file: bench/run.ts does not replicate those');
  const options = Object.fromEntries(Object.entries({ bundle: true, platform: 'node', ...declared }).filter(([k]) => !PLUGIN_ONLY_KEYS.has(k))) as BuildOptions;
  const exclude = Array.isArray(declared.exclude) ? (declared.exclude as string[]) : [];
  options.external = [...((declared.external as string[] | undefined) ?? []), ...exclude.filter((x) => x !== '*')];
  const extension = String(declared.outputFileExtension ?? '.js');
  const functions: Record<string, string> = {};
  for (const [name, fn] of Object.entries(yml.functions ?? {})) {
    const base = String(fn.handler).slice(0, String(fn.handler).lastIndexOf('.'));
    const ext = ['.ts', '.mts', '.js', '.mjs'].find((e) => existsSync(join(root, base + e)));
    if (ext === undefined) throw new Error(`serverless.yml: no source file for handler ${fn.handler}`);
    functions[name] = base + ext;
  }
  return { declared, options, extension, functions };
};

/** The tutorial's build: our options, but CommonJS, esbuild's default resolution and no ESM banner. */
export const tutorialOptions = (deploy: BuildOptions): BuildOptions => {
  const { format: _format, mainFields: _mainFields, banner: _banner, ...rest } = deploy;
  return { ...rest, format: 'cjs' };
};

interface Bundle {
  file: string;
  bytes: number;
  zipBytes: number;
  /** Output bytes by package family, from esbuild's metafile. */
  families: Record<string, number>;
}
const FAMILIES: [RegExp, string][] = [
  [/node_modules\/(@aws-sdk|@smithy|@aws-crypto|@aws\/|bowser|fast-xml-parser|strnum|tslib|uuid)/, 'AWS SDK'],
  [/node_modules\/@aws-lambda-powertools/, 'Powertools'],
  [/node_modules\/@middy/, 'Middy'],
  [/node_modules\/jose/, 'jose'],
  [/node_modules\//, 'other packages'],
  [/.*/, 'first-party code'],
];
const buildBundle = async (outfile: string, options: BuildOptions, entry: { file: string } | { contents: string }): Promise<Bundle> => {
  const result = await build({
    ...options,
    absWorkingDir: ROOT,
    ...('file' in entry ? { entryPoints: [join(ROOT, entry.file)] } : { stdin: { contents: entry.contents, resolveDir: ROOT, sourcefile: 'seam-entry.ts', loader: 'ts' } }),
    outfile,
    metafile: true,
    logLevel: 'error',
  });
  const output = result.metafile.outputs[relative(ROOT, outfile)]!;
  const families: Record<string, number> = {};
  let attributed = 0;
  for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
    const family = FAMILIES.find(([re]) => re.test(input))![1];
    families[family] = (families[family] ?? 0) + bytesInOutput;
    attributed += bytesInOutput;
  }
  families['esbuild runtime and wrappers'] = output.bytes - attributed;
  // A one-file zip as the deployment package holds it: deflate level 9 plus the zip's fixed headers.
  const zipBytes = deflateRawSync(readFileSync(outfile), { level: 9 }).length + 30 + 46 + 22 + 2 * (outfile.length - outfile.lastIndexOf('/') - 1);
  return { file: outfile, bytes: statSync(outfile).size, zipBytes, families };
};

// ------------------------------------------------------------------------------------------------ children

const children = new Set<ChildProcess>();
let standIns: { aws: AwsStandIn; sandbox: Sandbox } | undefined;
const cleanUp = async () => {
  for (const child of children) if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
  await Promise.all([standIns?.aws.close(), standIns?.sandbox.close()]);
  await stopEsbuild();
};
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void cleanUp().finally(() => process.exit(130)));

let childCount = 0;
const runChild = <T>(config: Omit<ChildConfig, 'out' | 'awsEndpoint'>, env: Record<string, string>, timeoutMs = 60_000): Promise<T> =>
  new Promise((resolveRun, reject) => {
    const out = join(OUT, 'tmp', `${(childCount += 1)}.json`);
    const configFile = `${out}.config.json`;
    writeFileSync(configFile, JSON.stringify({ ...config, awsEndpoint: standIns!.aws.endpoint, out }));
    const child = spawn(CHILD_NODE, [join(OUT, 'child.mjs'), configFile], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
    children.add(child);
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => void (stderr = (stderr + c.toString('utf8')).slice(-4000)));
    const timer = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      if (code === 0) resolveRun(JSON.parse(readFileSync(out, 'utf8')) as T);
      else reject(new Error(`bench child (${config.mode} ${Object.keys(config.bundles).join(',')}) ended with ${signal ?? `exit code ${code}`}\n${stderr.trim()}`));
    });
  });

// ------------------------------------------------------------------------------------------------- the run

const started = Date.now();
const log = (line: string) => void process.stdout.write(`[bench ${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${line}\n`);
const BASELINES = ['tutorial', 'floor'] as const;

const main = async () => {
  const childNode = spawnSync(CHILD_NODE, ['--version'], { encoding: 'utf8' }).stdout.trim();
  const machine = { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: childNode, loadavgAtStart: loadavg().map((l) => +l.toFixed(2)) };
  const git = (args: string[]) => spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' }).stdout?.trim() ?? '';
  const source = { commit: git(['rev-parse', '--short', 'HEAD']) || 'unknown', dirty: git(['status', '--porcelain', '--untracked-files=no']) !== '' };
  log(`${machine.cpu}, ${machine.cores} cores, node ${machine.node}, load ${machine.loadavgAtStart.join(' ')}${QUICK ? ' (BENCH_QUICK)' : ''}`);
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(join(OUT, 'tmp'), { recursive: true });

  // Builds: production bundles (functions and both baselines), seam bundles (functions and the floor).
  const deploy = readDeployBuild(ROOT);
  const fns = Object.keys(deploy.functions);
  for (const fn of fns) if (kindsOf(fn).length === 0) throw new Error(`bench/standins.ts KINDS has no invocation for function ${fn}`);
  const prodExt = deploy.options.format === 'esm' ? '.mjs' : '.js';
  const bundles: Record<string, Bundle> = {};
  for (const fn of fns) bundles[fn] = await buildBundle(join(OUT, 'prod', `${fn}${prodExt}`), deploy.options, { file: deploy.functions[fn]! });
  bundles.tutorial = await buildBundle(join(OUT, 'prod', 'tutorial.js'), tutorialOptions(deploy.options), { file: 'bench/baseline/handler.ts' });
  bundles.floor = await buildBundle(join(OUT, 'prod', `floor${prodExt}`), deploy.options, { file: 'bench/baseline/handler.ts' });
  const seam: Record<string, string> = {};
  for (const [fn, entry] of [...fns.map((f) => [f, deploy.functions[f]!]), ['baseline', 'bench/baseline/handler.ts']] as [string, string][]) {
    seam[fn] = join(OUT, 'seam', `${fn}${prodExt}`);
    await buildBundle(seam[fn], deploy.options, { contents: `${SEAM_SDK_EXPORTS}\nexport const load = () => import(${JSON.stringify(`./${entry}`)});` });
  }
  await build({ absWorkingDir: ROOT, entryPoints: [join(ROOT, 'bench', 'child.ts')], outfile: join(OUT, 'child.mjs'), bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'error' });
  log(`built ${Object.entries(bundles).map(([n, b]) => `${n} ${b.bytes} B`).join(', ')}`);

  standIns = { aws: await startAwsStandIn(), sandbox: await startSandboxProvider({ apiKey: API_KEY, quiet: true }) };
  const env = childEnv(standIns.aws.endpoint, standIns.sandbox.url);
  const targets = [...fns, ...BASELINES];
  const loadTarget = (t: string) => ({ [BASELINES.includes(t as never) ? 'baseline' : t]: bundles[t]!.file });

  type Cold = { loadMs: number; loadCpuMs: number };
  type First = { loadMs: number; invokeMs: number; totalMs: number; totalCpuMs: number; providerMs: number; ddbRequests: number; smRequests: number };
  const cold = Object.fromEntries(targets.map((t) => [t, [] as Cold[]]));
  for (let i = 0; i < SETTINGS.coldN; i++) for (const t of rotate(targets, i)) cold[t]!.push(await runChild<Cold>({ mode: 'cold', bundles: loadTarget(t) }, env));
  log(`cold: ${SETTINGS.coldN} rounds of ${targets.length} fresh processes`);
  const first = Object.fromEntries(targets.map((t) => [t, [] as First[]]));
  for (let i = 0; i < SETTINGS.firstN; i++) for (const t of rotate(targets, i)) first[t]!.push(await runChild<First>({ mode: 'first', bundles: loadTarget(t) }, env));
  log(`first invocation: ${SETTINGS.firstN} rounds`);
  const memory: Record<string, { maxRssAfterLoadKiB: number; maxRssAfter1000KiB: number }> = {};
  // All at once: RSS is not a timing figure, and the step is the run's longest when taken one by one.
  await Promise.all(targets.map(async (t) => (memory[t] = await runChild({ mode: 'memory', bundles: loadTarget(t) }, env, 300_000))));
  log('memory: 1,000 invocations per bundle, the bundles side by side');
  type WarmSeries = Record<Kind, { overheadMs: number[]; cpuMs: number[]; preempted: number[]; ddbRequests: number[]; ddbRoundTrips: number[]; smRequests: number[] }>;
  const warm = await runChild<WarmSeries>({ mode: 'warm', bundles: seam, rounds: SETTINGS.warmRounds, warmup: SETTINGS.warmup }, env, 300_000);
  log(`warm: ${SETTINGS.warmRounds} rounds after ${SETTINGS.warmup} warm-up rounds`);
  await cleanUp();
  rmSync(join(OUT, 'tmp'), { recursive: true, force: true });

  const results = analyse({ fns, bundles, cold, first, memory, warm });
  const run = { generatedAt: new Date().toISOString(), seconds: Math.round((Date.now() - started) / 1000), quick: QUICK, machine: { ...machine, loadavgAtEnd: loadavg().map((l) => +l.toFixed(2)) }, source, settings: SETTINGS, esbuild: deploy.declared };
  const [jsonFile, mdFile] = QUICK ? [join(OUT, 'results.json'), join(OUT, 'BENCHMARKS.md')] : [join(ROOT, 'bench', 'results.json'), join(ROOT, 'BENCHMARKS.md')];
  writeFileSync(jsonFile, `${JSON.stringify({ run, ...results, raw: { cold, first, memory } }, null, 1)}\n`);
  writeFileSync(mdFile, render(run, results));
  log(`wrote ${relative(ROOT, jsonFile)} and ${relative(ROOT, mdFile)} in ${run.seconds} s`);
  for (const t of results.targets) log(`${t.met ? 'met   ' : 'MISSED'} ${t.what}: ${t.measured}`);
};

// ------------------------------------------------------------------------------------------------ analysis

interface TargetRow {
  what: string;
  limit: string;
  measured: string;
  met: boolean;
  missedBy?: string;
}
type Analysed = ReturnType<typeof analyse>;

const analyse = (d: {
  fns: string[];
  bundles: Record<string, Bundle>;
  cold: Record<string, { loadMs: number; loadCpuMs: number }[]>;
  first: Record<string, { loadMs: number; invokeMs: number; totalMs: number; totalCpuMs: number; providerMs: number; ddbRequests: number; smRequests: number }[]>;
  memory: Record<string, { maxRssAfterLoadKiB: number; maxRssAfter1000KiB: number }>;
  warm: Record<Kind, { overheadMs: number[]; cpuMs: number[]; preempted: number[]; ddbRequests: number[]; ddbRoundTrips: number[]; smRequests: number[] }>;
}) => {
  const targets: TargetRow[] = [];
  const ratioRow = (what: string, ratios: number[], limit: number, against: string, extra: string) => {
    const [lo, hi] = medianInterval(ratios);
    const r = percentile(ratios, 50);
    targets.push({
      what,
      limit: `≤ ${limit}× ${against}`,
      measured: `${r.toFixed(3)}× CPU time (95 % interval ${lo.toFixed(2)}–${hi.toFixed(2)}; ${extra})`,
      met: r <= limit,
      ...(r > limit ? { missedBy: `${(r - limit).toFixed(3)}× over (${((r / limit - 1) * 100).toFixed(1)} % above the limit)` } : {}),
    });
    return r;
  };
  const cold: Record<string, { p50: number; p90: number; cpuP50: number; vsTutorial?: number; vsFloor?: number }> = {};
  const first: Record<string, { p50: number; p90: number; loadP50: number; invokeP50: number; cpuP50: number; ddbRequests: number; smRequests: number; vsTutorial?: number; vsFloor?: number }> = {};
  for (const [t, xs] of Object.entries(d.cold)) {
    cold[t] = { p50: percentile(xs.map((x) => x.loadMs), 50), p90: percentile(xs.map((x) => x.loadMs), 90), cpuP50: percentile(xs.map((x) => x.loadCpuMs), 50) };
  }
  for (const [t, xs] of Object.entries(d.first)) {
    const total = xs.map((x) => x.totalMs);
    first[t] = {
      p50: percentile(total, 50),
      p90: percentile(total, 90),
      loadP50: percentile(xs.map((x) => x.loadMs), 50),
      invokeP50: percentile(xs.map((x) => x.invokeMs), 50),
      cpuP50: percentile(xs.map((x) => x.totalCpuMs), 50),
      ddbRequests: Math.max(...xs.map((x) => x.ddbRequests)),
      smRequests: Math.max(...xs.map((x) => x.smRequests)),
    };
  }
  const wall = (t: string) => d.cold[t]!.map((x) => x.loadMs);
  const firstTotal = (t: string) => d.first[t]!.map((x) => x.totalCpuMs); // CPU, as for cold (see below)
  const cpu = (t: string) => d.cold[t]!.map((x) => x.loadCpuMs);
  for (const fn of d.fns) {
    // Judged on CPU time: on the shared 2-core machine a load's wall time is mostly waiting for a core (which
    // Lambda, giving each instance its own CPU share, does not do); wall-time ratios are shown beside it.
    const wallRatio = (b: string) => `wall time ${percentile(pairRatios(wall(fn), wall(b)), 50).toFixed(3)}×`;
    cold[fn]!.vsTutorial = ratioRow(`cold init, ${fn}, vs tutorial build`, pairRatios(cpu(fn), cpu('tutorial')), 0.55, 'tutorial', wallRatio('tutorial'));
    cold[fn]!.vsFloor = ratioRow(`cold init, ${fn}, vs floor`, pairRatios(cpu(fn), cpu('floor')), 1.25, 'floor', wallRatio('floor'));
    first[fn]!.vsTutorial = percentile(pairRatios(firstTotal(fn), firstTotal('tutorial')), 50);
    first[fn]!.vsFloor = percentile(pairRatios(firstTotal(fn), firstTotal('floor')), 50);
  }
  cold.floor!.vsTutorial = percentile(pairRatios(cpu('floor'), cpu('tutorial')), 50);
  first.floor!.vsTutorial = percentile(pairRatios(firstTotal('floor'), firstTotal('tutorial')), 50);
  for (const fn of d.fns) {
    const r = d.bundles[fn]!.bytes / d.bundles.tutorial!.bytes;
    targets.push({ what: `bundle, ${fn}, minified`, limit: '≤ 0.85× tutorial', measured: `${r.toFixed(3)}× (${d.bundles[fn]!.bytes} B vs ${d.bundles.tutorial!.bytes} B)`, met: r <= 0.85, ...(r > 0.85 ? { missedBy: `${d.bundles[fn]!.bytes - Math.floor(0.85 * d.bundles.tutorial!.bytes)} B over` } : {}) });
  }
  const warm: Record<string, { p50: number; p90: number; p99: number; max: number; cpuP50: number; cpuP99: number; quietN: number; quietP99: number; ddbRequests: number; ddbRoundTrips: number; smRequests: number }> = {};
  for (const [kind, s] of Object.entries(d.warm) as [Kind, (typeof d.warm)[Kind]][]) {
    const quiet = s.overheadMs.filter((_, i) => s.preempted[i] === 0);
    warm[kind] = {
      p50: percentile(s.overheadMs, 50), p90: percentile(s.overheadMs, 90), p99: percentile(s.overheadMs, 99), max: Math.max(...s.overheadMs),
      cpuP50: percentile(s.cpuMs, 50), cpuP99: percentile(s.cpuMs, 99), quietN: quiet.length / s.overheadMs.length, quietP99: percentile(quiet, 99), ddbRequests: Math.max(...s.ddbRequests), ddbRoundTrips: Math.max(...s.ddbRoundTrips), smRequests: Math.max(...s.smRequests) };
    if (kind === 'baseline') continue;
    // Judged on the invocations the OS did not preempt: on this shared machine a lost core adds milliseconds that
    // are not ours (all invocations' p99 and the CPU-time p99, which a lost core does not inflate, are shown too).
    const w = warm[kind]!;
    const p99 = w.quietP99;
    targets.push({ what: `warm overhead p99, ${KINDS[kind].label}`, limit: '< 1 ms', measured: `${p99.toFixed(3)} ms over the ${(w.quietN * 100).toFixed(0)} % not preempted (all: ${w.p99.toFixed(3)} ms; CPU time ${w.cpuP99.toFixed(3)} ms; p50 ${w.p50.toFixed(3)} ms)`, met: p99 < 1, ...(p99 >= 1 ? { missedBy: `${(p99 - 1).toFixed(3)} ms over` } : {}) });
  }
  const sm = Math.max(...(Object.keys(d.warm) as Kind[]).filter((k) => k !== 'baseline').map((k) => warm[k]!.smRequests));
  targets.push({ what: 'Secrets Manager requests on a warm invocation', limit: '0', measured: `${sm} at most, over every warm invocation of every function`, met: sm === 0, ...(sm > 0 ? { missedBy: `${sm} request(s)` } : {}) });
  for (const [kind, limit] of [['send', 2], ['sendIdem', 2], ['verifyWrong', 1]] as const) {
    if (warm[kind] === undefined) continue;
    const rt = warm[kind]!.ddbRoundTrips;
    targets.push({ what: `DynamoDB round trips, ${KINDS[kind].label}`, limit: `≤ ${limit}`, measured: `${rt} round trip(s), ${warm[kind]!.ddbRequests} request(s)`, met: rt <= limit, ...(rt > limit ? { missedBy: `${rt - limit} round trip(s) more` } : {}) });
  }
  const memory: Record<string, { afterLoadMiB: number; after1000MiB: number; vsTutorial: number; vsFloor: number }> = {};
  for (const [t, m] of Object.entries(d.memory)) {
    memory[t] = { afterLoadMiB: m.maxRssAfterLoadKiB / 1024, after1000MiB: m.maxRssAfter1000KiB / 1024, vsTutorial: m.maxRssAfter1000KiB / d.memory.tutorial!.maxRssAfter1000KiB, vsFloor: m.maxRssAfter1000KiB / d.memory.floor!.maxRssAfter1000KiB };
  }
  for (const fn of d.fns) {
    const r = memory[fn]!.vsTutorial;
    targets.push({ what: `max RSS after 1,000 invocations, ${fn}`, limit: '≤ 1.5× tutorial', measured: `${r.toFixed(2)}× (${memory[fn]!.after1000MiB.toFixed(1)} MiB vs ${memory.tutorial!.after1000MiB.toFixed(1)} MiB)`, met: r <= 1.5, ...(r > 1.5 ? { missedBy: `${(r - 1.5).toFixed(2)}× over` } : {}) });
  }
  return { fns: d.fns, bundles: d.bundles, cold, first, memory, warm, targets };
};

// ------------------------------------------------------------------------------------------------- report

const f = (x: number, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : '—');
const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
const table = (head: string[], rows: (string | number)[][]) =>
  [`| ${head.join(' | ')} |`, `| ${head.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');

const render = (run: { generatedAt: string; seconds: number; machine: Record<string, unknown> & { loadavgAtStart: number[]; loadavgAtEnd: number[] }; source: { commit: string; dirty: boolean }; settings: typeof SETTINGS; esbuild: unknown }, r: Analysed): string => {
  const all = [...r.fns, 'floor', 'tutorial'];
  const name = (t: string) => (t === 'tutorial' ? 'baseline, tutorial build (CJS)' : t === 'floor' ? 'baseline, floor (ESM, module-first)' : t);
  const vs = (x: { vsTutorial?: number; vsFloor?: number }) => [x.vsTutorial === undefined ? '1' : `${f(x.vsTutorial, 3)}×`, x.vsFloor === undefined ? (x.vsTutorial === undefined ? '—' : '1') : `${f(x.vsFloor, 3)}×`];
  const missed = r.targets.filter((t) => !t.met);
  return `# Benchmarks

Every function of serverless.yml (${r.fns.join(', ')}) against a naive single-file send handler written the way
StartMessaging's Lambda tutorial does it ([bench/baseline/handler.ts](bench/baseline/handler.ts): the API key cached in a
module variable, one DynamoDB counter, one \`fetch\`, no validation), built twice in the same run:

- **tutorial build**: our esbuild options (serverless.yml \`custom.esbuild\`) but CommonJS with esbuild's default
  main-first resolution: what a user following the tutorial deploys;
- **floor**: exactly our options (ESM, \`mainFields: module,main\`, the createRequire banner): the naive handler built the
  best way. Our functions cannot get below it by bundling alone; what is left is what our code and libraries add.

Generated by \`npm run bench\` (bench/run.ts says in one place how each figure is taken) on ${run.generatedAt.slice(0, 10)} in ${run.seconds} s,
from commit ${run.source.commit}${run.source.dirty ? ' with uncommitted changes' : ''}. Machine: ${String(run.machine.cpu)}, ${String(run.machine.cores)} cores, Node ${String(run.machine.node)};
load average ${run.machine.loadavgAtStart.join(' / ')} at the start, ${run.machine.loadavgAtEnd.join(' / ')} at the end.
**The machine is shared and was busy: absolute milliseconds depend on its load and vary run to run; the ratios, taken
pair by pair within a round so that load drift cancels, are what to read.**

## Targets

Reported, never asserted. ${missed.length === 0 ? 'All met.' : `${missed.length} of ${r.targets.length} missed; why, below the tables.`}

${table(['target', 'limit', 'measured', 'result', 'missed by'], r.targets.map((t) => [t.what, t.limit, t.measured, t.met ? '**met**' : '**missed**', t.missedBy ?? '']))}

## Bundle size

${table(['bundle', 'minified bytes', 'zipped bytes', '÷ tutorial', '÷ floor', ...Object.keys(r.bundles.tutorial!.families).concat(Object.keys(r.bundles[r.fns[0]!]!.families)).filter((k, i, a) => a.indexOf(k) === i)], all.map((t) => {
    const b = r.bundles[t]!;
    const fams = Object.keys(r.bundles.tutorial!.families).concat(Object.keys(r.bundles[r.fns[0]!]!.families)).filter((k, i, a) => a.indexOf(k) === i);
    return [name(t), b.bytes.toLocaleString('en'), b.zipBytes.toLocaleString('en'), `${f(b.bytes / r.bundles.tutorial!.bytes, 3)}×`, `${f(b.bytes / r.bundles.floor!.bytes, 3)}×`, ...fams.map((k) => kib(b.families[k] ?? 0))];
  }))}

Package families from esbuild's metafile (\`bytesInOutput\`); zipped: one file, deflate level 9, as the deployment zip holds it.

## Cold init

A fresh \`node\` process loads the production bundle (\`import()\` of the .mjs, \`require()\` of the tutorial's .js, as the
Lambda runtime does), timed inside the process (wall clock, and CPU time: \`process.cpuUsage\`, which waiting for a core
does not inflate; the targets are judged on it); ${run.settings.coldN} rounds, every bundle once per round in rotated order.

${table(['bundle', 'wall p50 / p90 (ms)', 'CPU p50 (ms)', 'CPU ratio to tutorial (median of pairs)', 'CPU ratio to floor'], all.map((t) => [name(t), `${f(r.cold[t]!.p50)} / ${f(r.cold[t]!.p90)}`, f(r.cold[t]!.cpuP50), ...vs(r.cold[t]!)]))}

## First invocation

A fresh process loads the production bundle and invokes it once: the SDK clients are set up, the secrets fetched
(ours prefetch at load and the first request awaits it; the baseline fetches in the handler), DynamoDB and Secrets
Manager answered by a local HTTP stand-in, the provider by the local sandbox. Send without Idempotency-Key, verify with a
wrong code. ${run.settings.firstN} rounds, rotated.

${table(['bundle', 'load + first invocation p50 / p90 (ms)', 'load p50 (ms)', 'first invocation p50 (ms)', 'CPU p50 (ms)', 'CPU ratio to tutorial', 'CPU ratio to floor', 'DynamoDB / Secrets Manager requests'], all.map((t) => [name(t), `${f(r.first[t]!.p50)} / ${f(r.first[t]!.p90)}`, f(r.first[t]!.loadP50), f(r.first[t]!.invokeP50), f(r.first[t]!.cpuP50), ...vs(r.first[t]!), `${r.first[t]!.ddbRequests} / ${r.first[t]!.smRequests}`]))}

## Memory

One process per bundle (side by side): max RSS (\`process.resourceUsage().maxRSS\`) after the load, and after 1,000 invocations against
the same stand-ins (the function's kinds of invocation in turn). A leak would show as growth between the two.

${table(['bundle', 'max RSS after load (MiB)', 'after 1,000 invocations (MiB)', 'ratio to tutorial', 'ratio to floor'], all.map((t) => [name(t), f(r.memory[t]!.afterLoadMiB), f(r.memory[t]!.after1000MiB), `${f(r.memory[t]!.vsTutorial, 2)}×`, `${f(r.memory[t]!.vsFloor, 2)}×`]))}

## Warm overhead

One process holding seam bundles of every function and of the floor; ${run.settings.warmRounds} rounds after ${run.settings.warmup} warm-up rounds, every
kind once per round in rotated order. DynamoDB and Secrets Manager answered at the SDK client seam (no SDK code runs),
the provider exchange timed and subtracted: what is left is the handler's own code. On the shared machine a lost
core lands in the tail: an invocation during which the process was involuntarily switched out is "preempted", and
the targets are judged on the p99 of the others. CPU time is the process's (GC and compiler threads included).

${table(['invocation', 'wall p50 / p90 / p99 / max (ms)', 'p99 not preempted (share)', 'CPU p50 / p99 (ms)', 'DynamoDB requests / round trips', 'Secrets Manager requests'], (Object.keys(r.warm) as Kind[]).map((k) => [KINDS[k].label + (k === 'baseline' ? ' (floor)' : ''), `${f(r.warm[k]!.p50, 3)} / ${f(r.warm[k]!.p90, 3)} / ${f(r.warm[k]!.p99, 3)} / ${f(r.warm[k]!.max, 3)}`, `${f(r.warm[k]!.quietP99, 3)} (${f(r.warm[k]!.quietN * 100, 0)} %)`, `${f(r.warm[k]!.cpuP50, 3)} / ${f(r.warm[k]!.cpuP99, 3)}`, `${r.warm[k]!.ddbRequests} / ${r.warm[k]!.ddbRoundTrips}`, String(r.warm[k]!.smRequests)]))}
${missed.length === 0 ? '' : `\n## Why a target is missed\n\n${readNotes(missed)}\n`}
## Rerun

\`\`\`sh
npm run bench                  # writes BENCHMARKS.md and bench/results.json; a few minutes on 2 busy cores
BENCH_QUICK=1 npm run bench    # rough figures in about a minute, to bench/.out/ only
\`\`\`

esbuild options as declared in serverless.yml: \`${JSON.stringify(run.esbuild)}\`.
`;
};

/**
 * The reasons for a missed target are written by a person who looked (bench/NOTES.md, one "## <target prefix>"
 * section each); a miss without a note says so instead of guessing.
 */
const readNotes = (missed: TargetRow[]): string => {
  const file = join(ROOT, 'bench', 'NOTES.md');
  const sections = existsSync(file) ? readFileSync(file, 'utf8').split(/^## /m).slice(1) : [];
  const used = new Set<string>();
  const lines: string[] = [];
  for (const t of missed) {
    const section = sections.find((s) => t.what.startsWith(s.split('\n')[0]!.trim()));
    if (section === undefined) lines.push(`- **${t.what}** (${t.missedBy}): no note in bench/NOTES.md yet.`);
    else if (!used.has(section)) {
      used.add(section);
      lines.push(`### ${section.trim()}\n`);
    }
  }
  return lines.join('\n');
};

if (require.main === module) {
  main().catch(async (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    await cleanUp().catch(() => undefined);
    process.exit(1);
  });
}
