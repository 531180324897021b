/**
 * One benchmark process (bundled to bench/.out/child.mjs, run with plain `node`, no loader, stdout to
 * /dev/null so the handlers' log lines and EMF are written and dropped, as in Lambda). The config file named
 * on the command line says what to measure; the result goes to the file it names. Bundles load as Lambda's
 * nodejs22.x runtime loads them: `.mjs` with import(), `.js` (the CommonJS baseline) with require().
 *
 *   cold    time the load of one production bundle, then exit (the secrets prefetch it queued is dropped)
 *   first   load one production bundle and invoke it once, the AWS stand-in and the provider over HTTP
 *   memory  like first, then 1,000 invocations; max RSS after the load and at the end
 *   warm    load the seam bundles, put the client seam in, run every kind of invocation round by round
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import type { Context } from 'aws-lambda';
import { keysFor } from '../lib/otp/keys';
import { sealRequestId } from '../lib/otp/request-id';
import { Counter, installClientSeam, KINDS, kindsOf, lambdaContext, PHONE, HASH_KEY, type Kind, type SeamSdk } from './standins';

export interface ChildConfig {
  mode: 'cold' | 'first' | 'memory' | 'warm';
  /** fn name → bundle file (cold/first/memory: one; warm: the seam bundles, baseline included). */
  bundles: Record<string, string>;
  awsEndpoint: string;
  rounds?: number;
  warmup?: number;
  out: string;
}
type Handler = (event: unknown, context: Context) => Promise<{ statusCode?: number } | undefined>;

const config = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as ChildConfig;
const ms = (since: bigint) => Number(process.hrtime.bigint() - since) / 1e6;
const cpuMs = (since: NodeJS.CpuUsage) => {
  const { user, system } = process.cpuUsage(since);
  return (user + system) / 1000;
};
const load = async (file: string): Promise<Record<string, unknown>> =>
  file.endsWith('.mjs') ? ((await import(pathToFileURL(file).href)) as Record<string, unknown>) : (createRequire(import.meta.url)(file) as Record<string, unknown>);

// Each provider exchange (request to last byte) timed, so warm figures can leave the provider out.
const provider = { ms: 0, cpuMs: 0 };
const realFetch = globalThis.fetch;
globalThis.fetch = async function timedFetch(input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) {
  const started = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  try {
    const res = await realFetch(input, init);
    const body = await res.arrayBuffer();
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  } finally {
    provider.cpuMs += cpuMs(cpu);
    provider.ms += ms(started);
  }
};

let otpRequestId: string | undefined; // sealed on first use: a cold child does nothing but the load
const invoke = async (fn: string, handler: Handler, kind: Kind): Promise<void> => {
  otpRequestId ??= sealRequestId(keysFor(HASH_KEY), PHONE).otpRequestId;
  const result = await handler(KINDS[kind].event(otpRequestId), lambdaContext(`otp-service-bench-${fn}`));
  if (result?.statusCode !== KINDS[kind].status) throw new Error(`${kind}: answered ${JSON.stringify(result).slice(0, 300)}, expected ${KINDS[kind].status}`);
};
/** What the HTTP stand-in counted since the last ask. */
const counts = async () => (await (await realFetch(`${config.awsEndpoint}/counts`)).json()) as { ddbRequests: number; smRequests: number; unexpected: string[] };

const main = async (): Promise<unknown> => {
  if (config.mode === 'cold') {
    const [file] = Object.values(config.bundles);
    const cpu = process.cpuUsage();
    const started = process.hrtime.bigint();
    await load(file!);
    return { loadMs: ms(started), loadCpuMs: cpuMs(cpu) };
  }

  if (config.mode === 'first' || config.mode === 'memory') {
    const [[fn, file]] = Object.entries(config.bundles) as [[string, string]];
    const kinds = kindsOf(fn);
    const cpu = process.cpuUsage();
    const started = process.hrtime.bigint();
    const { handler } = (await load(file)) as { handler: Handler };
    const loadMs = ms(started);
    const rssAfterLoad = process.resourceUsage().maxRSS;
    const invoked = process.hrtime.bigint();
    await invoke(fn, handler, kinds[0]!);
    const first = { loadMs, invokeMs: ms(invoked), totalMs: ms(started), totalCpuMs: cpuMs(cpu), providerMs: provider.ms, ...(await counts()) };
    if (config.mode === 'first') return first;
    for (let i = 1; i < 1000; i++) await invoke(fn, handler, kinds[i % kinds.length]!);
    return { maxRssAfterLoadKiB: rssAfterLoad, maxRssAfter1000KiB: process.resourceUsage().maxRSS, unexpected: (await counts()).unexpected };
  }

  // warm: every seam bundle in this one process, every kind once per round, in rotated order.
  const counter = new Counter();
  const handlers: Record<string, Handler> = {};
  for (const [fn, file] of Object.entries(config.bundles)) {
    const bundle = (await load(file)) as unknown as SeamSdk & { load: () => Promise<{ handler: Handler }> };
    installClientSeam(bundle, counter);
    handlers[fn] = (await bundle.load()).handler;
  }
  const kinds = (Object.keys(KINDS) as Kind[]).filter((k) => handlers[KINDS[k].fn] !== undefined);
  const samples = Object.fromEntries(kinds.map((k) => [k, { overheadMs: [] as number[], cpuMs: [] as number[], preempted: [] as number[], ddbRequests: [] as number[], ddbRoundTrips: [] as number[], smRequests: [] as number[] }]));
  const rounds = config.rounds!;
  for (let round = -config.warmup!; round < rounds; round++) {
    const shift = ((round % kinds.length) + kinds.length) % kinds.length;
    for (const kind of [...kinds.slice(shift), ...kinds.slice(0, shift)]) {
      counter.reset();
      provider.ms = provider.cpuMs = 0;
      const switches = process.resourceUsage().involuntaryContextSwitches;
      const cpu = process.cpuUsage();
      const started = process.hrtime.bigint();
      await invoke(KINDS[kind].fn, handlers[KINDS[kind].fn]!, kind);
      const wall = ms(started);
      const cpuUsed = cpuMs(cpu);
      // The OS took the core away during the invocation (7 engineers on 2 cores): its wall time is the machine's.
      const preempted = process.resourceUsage().involuntaryContextSwitches - switches;
      if (counter.unexpected.length > 0) throw new Error(`unexpected SDK calls: ${counter.unexpected.join('; ')}`);
      if (round < 0) continue;
      const s = samples[kind]!;
      s.overheadMs.push(wall - provider.ms);
      s.cpuMs.push(cpuUsed - provider.cpuMs);
      s.preempted.push(preempted);
      s.ddbRequests.push(counter.ddbRequests);
      s.ddbRoundTrips.push(counter.ddbRoundTrips);
      s.smRequests.push(counter.smRequests);
    }
  }
  return samples;
};

main().then(
  (result) => {
    writeFileSync(config.out, JSON.stringify(result));
    process.exit(0);
  },
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
