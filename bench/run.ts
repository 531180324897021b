/**
 * `npm run bench`: cold start, bundle size and warm overhead of our two handlers, side by side with a naive
 * single-file handler (bench/baseline/handler.ts), in one run. Writes bench/results.json and BENCHMARKS.md.
 *
 *   1. builds the production bundles of sendOtp, verifyOtp and the baseline with serverless.yml's esbuild
 *      options, plus "seam" variants (same code, same options, also exporting the bundled SDK classes) and
 *      the two child scripts, all under bench/.out/;
 *   2. cold init: `require()` of each production bundle in fresh `node` processes, baseline/send/verify
 *      interleaved round by round;
 *   3. first invocation: fresh processes again, each loading one seam bundle and invoking it once;
 *   4. warm: one process holding all three, every kind of invocation interleaved round by round, with
 *      DynamoDB and Secrets Manager answered at the SDK client seam, then again at the HTTP handler seam;
 *   5. profile: one process per kind of invocation, a V8 CPU profile of its warm rounds, charged to packages
 *      and to our files through the seam bundles' source maps.
 *
 * Environment knobs (defaults in brackets): BENCH_COLD_N [30] processes per bundle for 2, BENCH_FIRST_N [20]
 * for 3, BENCH_WARM_ROUNDS [2000], BENCH_SDK_ROUNDS [300], BENCH_PROFILE_ROUNDS [300] (0 skips step 5),
 * BENCH_QUICK=1 for a fast, rough run (written to bench/.out/ instead).
 * Every server is on 127.0.0.1 and stopped before exit; every child is waited for (or killed) by id.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { stop as stopEsbuild } from 'esbuild';
import { startSandboxProvider, type Sandbox } from '../local/sandbox-provider';
import { buildBundle, buildTool, readDeployBuild, type BuiltBundle } from './lib/build';
import { API_KEY, AWS_ENV, childEnv } from './lib/fixtures';
import { closedPort, startSecretsStandIn, type SecretsStandIn } from './lib/secrets-standin';
import { analyse, type RawRun } from './lib/analyse';
import { renderMarkdown } from './lib/report';
import { attribute, LOADING, type Attribution } from './lib/profile';
import { KINDS, KIND_TARGET, type ChildConfig, type ColdResult, type FirstResult, type Kind, type Target, type WarmResult } from './lib/protocol';
import { rotate } from './lib/stats';

const ROOT = resolve(__dirname, '..');
const OUT = join(ROOT, 'bench', '.out');
const QUICK = process.env.BENCH_QUICK === '1';
const whole = (name: string, fallback: number, min = 1): number => {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  if (!/^\d+$/.test(v) || Number(v) < min) throw new Error(`${name} must be a whole number ≥ ${min}, got "${v}"`);
  return Number(v);
};
const SETTINGS = {
  coldN: whole('BENCH_COLD_N', QUICK ? 5 : 30),
  firstN: whole('BENCH_FIRST_N', QUICK ? 5 : 20),
  warmRounds: whole('BENCH_WARM_ROUNDS', QUICK ? 200 : 2000),
  warmup: QUICK ? 50 : 200,
  sdkRounds: whole('BENCH_SDK_ROUNDS', QUICK ? 100 : 300),
  profileRounds: whole('BENCH_PROFILE_ROUNDS', QUICK ? 100 : 300, 0),
};
const TARGETS: readonly Target[] = ['baseline', 'send', 'verify'];

// This process loads no SDK, but set the dummies anyway: nothing here may ever look for real credentials.
Object.assign(process.env, AWS_ENV);

const started = Date.now();
const log = (line: string): void => void process.stdout.write(`[bench ${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${line}\n`);

const children = new Set<ChildProcess>();
const runChild = (script: string, args: string[], env: Record<string, string>, timeoutMs: number): Promise<void> =>
  new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [script, ...args], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
    children.add(child);
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => void (stderr = (stderr + chunk.toString('utf8')).slice(-4000)));
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      children.delete(child);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      if (code === 0) resolveRun();
      else reject(new Error(`${script} ${args.join(' ')} ended with ${signal ?? `exit code ${code}`}${signal === 'SIGKILL' ? ` (over ${timeoutMs} ms)` : ''}\n${stderr.trim()}`));
    });
  });
const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, 'utf8')) as T;

let sandbox: Sandbox | undefined;
let secrets: SecretsStandIn | undefined;
const cleanUp = async (): Promise<void> => {
  for (const child of children) if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
  await Promise.all([sandbox?.close(), secrets?.close()]);
  await stopEsbuild();
};
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping`);
    void cleanUp().finally(() => process.exit(130));
  });
}

const main = async (): Promise<void> => {
  const machine = {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    loadavgAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
  };
  log(`${machine.cpu}, ${machine.cores} cores, node ${machine.node}, load ${machine.loadavgAtStart.join(' ')}${QUICK ? ' (BENCH_QUICK: rough figures)' : ''}`);
  // What was measured: the working tree, so say which commit and which tracked files differ from it (read-only git).
  const git = (args: string[]) => spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' }).stdout ?? '';
  const source = {
    commit: git(['rev-parse', '--short', 'HEAD']).trim() || 'unknown',
    // Porcelain lines are "XY path": two status columns and a space (the first column may be a space).
    modified: git(['status', '--porcelain', '--untracked-files=no']).split('\n').filter((l) => l.length > 3).map((l) => l.slice(3)),
  };

  rmSync(OUT, { recursive: true, force: true });
  for (const dir of ['prod', 'seam', 'bin', 'tmp', 'profiles']) mkdirSync(join(OUT, dir), { recursive: true });

  // 1. Builds.
  const deploy = readDeployBuild(ROOT);
  if (deploy.options.format !== undefined && deploy.options.format !== 'cjs') {
    throw new Error(`serverless.yml builds format "${deploy.options.format}": the cold-start children require() CommonJS bundles; teach bench/lib/cold-child.ts to import() first`);
  }
  const fn = (name: string) => {
    const f = deploy.functions[name];
    if (f === undefined) throw new Error(`serverless.yml has no function ${name}`);
    return f.entry;
  };
  const prodEntries: Record<Target, [string, string]> = {
    send: ['sendOtp', fn('sendOtp')],
    verify: ['verifyOtp', fn('verifyOtp')],
    baseline: ['baseline', 'bench/baseline/handler.ts'],
  };
  const prod = {} as Record<Target, BuiltBundle>;
  const seamBundles = {} as Record<Target, string>;
  for (const target of TARGETS) {
    const [name, entry] = prodEntries[target];
    prod[target] = await buildBundle(ROOT, name, entry, join(OUT, 'prod', `${name}.js`), deploy.options);
    seamBundles[target] = join(OUT, 'seam', `${name}.js`);
    const seamEntry = { send: 'bench/lib/entries/send-otp.ts', verify: 'bench/lib/entries/verify-otp.ts', baseline: 'bench/lib/entries/baseline.ts' }[target];
    // The same options plus an external source map (a trailing comment in the code, the map beside it), read
    // only by the profile step to charge samples to source files.
    await buildBundle(ROOT, `${name} (seam)`, seamEntry, seamBundles[target], { ...deploy.options, sourcemap: 'external' });
  }
  const coldChild = join(OUT, 'bin', 'cold-child.js');
  const seamChild = join(OUT, 'bin', 'seam-child.js');
  await buildTool(ROOT, 'bench/lib/cold-child.ts', coldChild);
  await buildTool(ROOT, 'bench/lib/seam-child.ts', seamChild);
  log(`built with ${JSON.stringify(deploy.options)}: ${TARGETS.map((t) => `${prod[t].name} ${prod[t].bytes} B (zip ${prod[t].zipBytes} B)`).join(', ')}`);

  // Stand-ins: the provider (sandbox) and Secrets Manager over HTTP on 127.0.0.1; DynamoDB at a port nobody
  // listens on (it is answered at the seam; a request that ever got past the seam fails at once, locally).
  sandbox = await startSandboxProvider({ apiKey: API_KEY, quiet: true });
  secrets = await startSecretsStandIn();
  const env = childEnv({ provider: sandbox.url, secretsManager: secrets.endpoint, dynamodb: `http://127.0.0.1:${await closedPort()}` });

  // 2. Cold init, production bundles.
  const cold: Record<Target, ColdResult[]> = { baseline: [], send: [], verify: [] };
  for (let i = 0; i < SETTINGS.coldN; i++) {
    for (const target of rotate(TARGETS, i)) {
      const out = join(OUT, 'tmp', `cold-${target}-${i}.json`);
      await runChild(coldChild, [prod[target].file, out], env, 30_000);
      cold[target].push(readJson<ColdResult>(out));
    }
  }
  log(`cold init: ${SETTINGS.coldN} fresh processes per bundle`);

  // 3. First invocation after init, seam bundles.
  const first: Record<Target, FirstResult[]> = { baseline: [], send: [], verify: [] };
  for (let i = 0; i < SETTINGS.firstN; i++) {
    for (const target of rotate(TARGETS, i)) {
      const out = join(OUT, 'tmp', `first-${target}-${i}.json`);
      const config: ChildConfig = { mode: 'first', seam: 'client', bundles: seamBundles, target, out };
      const configFile = `${out}.config.json`;
      writeFileSync(configFile, JSON.stringify(config));
      await runChild(seamChild, [configFile], env, 30_000);
      first[target].push(readJson<FirstResult>(out));
    }
  }
  log(`first invocation: ${SETTINGS.firstN} fresh processes per handler`);

  // 3b. Where the init goes: one more fresh process per bundle, its init profiled (not timed: the profiler slows it).
  const initProfiles: Partial<Record<Target, Attribution>> = {};
  if (SETTINGS.profileRounds > 0) {
    for (const target of TARGETS) {
      const out = join(OUT, 'tmp', `init-profile-${target}.json`);
      const profile = join(OUT, 'profiles', `init-${target}.cpuprofile`);
      const config: ChildConfig = { mode: 'first', seam: 'client', bundles: seamBundles, target, profile, out };
      writeFileSync(`${out}.config.json`, JSON.stringify(config));
      await runChild(seamChild, [`${out}.config.json`], env, 60_000);
      initProfiles[target] = attribute(profile, seamBundles[target], ROOT, LOADING);
    }
  }

  // 4. Warm, at the client seam (our code only), then at the HTTP seam (the SDK's client-side work included).
  const warm = async (seam: ChildConfig['seam'], rounds: number): Promise<WarmResult> => {
    const out = join(OUT, 'tmp', `warm-${seam}.json`);
    const config: ChildConfig = { mode: 'warm', seam, bundles: seamBundles, rounds, warmup: SETTINGS.warmup, out };
    writeFileSync(`${out}.config.json`, JSON.stringify(config));
    await runChild(seamChild, [`${out}.config.json`], env, 240_000);
    return readJson<WarmResult>(out);
  };
  const warmClient = await warm('client', SETTINGS.warmRounds);
  log(`warm (client seam): ${SETTINGS.warmRounds} rounds × 5 kinds after ${SETTINGS.warmup} warm-up rounds`);
  const warmHttp = await warm('http', SETTINGS.sdkRounds);
  log(`warm (HTTP seam, SDK included): ${SETTINGS.sdkRounds} rounds × 5 kinds`);

  // 5. Profiles, one kind per process (so garbage collection is charged to the right kind).
  const profiles: Partial<Record<Kind, Attribution>> = {};
  if (SETTINGS.profileRounds > 0) {
    for (const kind of KINDS) {
      const out = join(OUT, 'tmp', `profile-${kind}.json`);
      const profile = join(OUT, 'profiles', `${kind}.cpuprofile`);
      const config: ChildConfig = { mode: 'warm', seam: 'client', bundles: seamBundles, rounds: SETTINGS.profileRounds, warmup: 100, only: [kind], profile, out };
      writeFileSync(`${out}.config.json`, JSON.stringify(config));
      await runChild(seamChild, [`${out}.config.json`], env, 240_000);
      profiles[kind] = attribute(profile, seamBundles[KIND_TARGET[kind]], ROOT);
    }
    log(`profiles: ${SETTINGS.profileRounds} warm invocations per kind, in bench/.out/profiles/`);
  }

  const providerCalls = sandbox.calls.length;
  const secretsRequests = secrets.requests;
  await cleanUp();
  rmSync(join(OUT, 'tmp'), { recursive: true, force: true });

  const raw: RawRun = {
    generatedAt: new Date().toISOString(),
    durationSeconds: Math.round((Date.now() - started) / 1000),
    quick: QUICK,
    machine: { ...machine, loadavgAtEnd: loadavg().map((l) => Math.round(l * 100) / 100) },
    source,
    settings: SETTINGS,
    esbuild: { declared: deploy.declared, options: deploy.options as Record<string, unknown> },
    bundles: prod,
    cold,
    first,
    warm: { client: warmClient, http: warmHttp },
    profiles,
    initProfiles,
    standIns: { providerCalls, secretsManagerHttpRequests: secretsRequests },
  };
  const results = analyse(raw);
  // A quick run's rough figures must not replace the real ones: they stay in bench/.out/.
  const [jsonFile, mdFile] = QUICK ? [join(OUT, 'results.json'), join(OUT, 'BENCHMARKS.md')] : [join(ROOT, 'bench', 'results.json'), join(ROOT, 'BENCHMARKS.md')];
  writeFileSync(jsonFile, `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(mdFile, renderMarkdown(results));
  log(`wrote ${relative(ROOT, jsonFile)} and ${relative(ROOT, mdFile)} in ${raw.durationSeconds} s`);
  for (const t of results.targets) log(`${t.met ? 'met   ' : 'MISSED'} ${t.label}: ${t.measured}`);
};

main().catch(async (error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  await cleanUp().catch(() => undefined);
  process.exit(1);
});
