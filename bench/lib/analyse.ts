/**
 * Raw samples → the figures of bench/results.json: summaries per target, ratios and differences taken pair by
 * pair (each pair was measured back to back), request counts, and the targets with met/missed.
 */
import type { BuiltBundle } from './build';
import type { Attribution } from './profile';
import { KINDS, type ColdResult, type FirstResult, type Kind, type Series, type Target, type WarmResult } from './protocol';
import { histogram, pairDiffs, pairRatios, summarize, type Summary } from './stats';

export interface RawRun {
  generatedAt: string;
  durationSeconds: number;
  quick: boolean;
  machine: { cpu: string; cores: number; memoryGiB: number; node: string; platform: string; loadavgAtStart: number[]; loadavgAtEnd: number[] };
  /** The commit the working tree is on, and the tracked files that differ from it when the run started. */
  source: { commit: string; modified: string[] };
  settings: { coldN: number; firstN: number; warmRounds: number; warmup: number; sdkRounds: number; profileRounds: number };
  esbuild: { declared: Record<string, unknown>; options: Record<string, unknown> };
  bundles: Record<Target, BuiltBundle>;
  cold: Record<Target, ColdResult[]>;
  first: Record<Target, FirstResult[]>;
  warm: { client: WarmResult; http: WarmResult };
  profiles: Partial<Record<Kind, Attribution>>;
  initProfiles: Partial<Record<Target, Attribution>>;
  standIns: { providerCalls: number; secretsManagerHttpRequests: number };
}

export const FUNCTION_OF: Record<Target, 'sendOtp' | 'verifyOtp' | 'baseline'> = { send: 'sendOtp', verify: 'verifyOtp', baseline: 'baseline' };
export const KIND_LABEL: Record<Kind, string> = {
  baseline: 'baseline send',
  send: 'send',
  sendIdem: 'send with Idempotency-Key',
  verifyWrong: 'verify, wrong code',
  verifyRight: 'verify, right code',
};
type Fn = 'sendOtp' | 'verifyOtp' | 'baseline';
type OurFn = 'sendOtp' | 'verifyOtp';
type OurKind = Exclude<Kind, 'baseline'>;
const OUR_KINDS = KINDS.filter((k): k is OurKind => k !== 'baseline');

/** Package families, to say in one line what a bundle carries. */
export const familyOf = (pkg: string): string => {
  if (pkg.startsWith('(first-party)')) return 'first-party code';
  if (pkg.startsWith('(esbuild')) return 'esbuild module wrappers';
  if (/^@(aws-sdk|smithy|aws-crypto|aws)\//.test(pkg) || ['tslib', 'fast-xml-parser', 'strnum', 'bowser', 'uuid', 'mnemonist', 'obliterator'].includes(pkg)) return 'AWS SDK v3';
  if (pkg.startsWith('@middy/')) return 'Middy';
  if (pkg.startsWith('@aws-lambda-powertools/')) return 'Powertools (logger, metrics, commons)';
  if (pkg === 'jose') return 'jose';
  if (['ajv', 'ajv-formats', 'fast-deep-equal', 'json-schema-traverse', 'fast-uri', 'require-from-string', 'uri-js'].includes(pkg)) return 'ajv runtime';
  return 'other';
};

export interface WarmAnalysis {
  seam: 'client' | 'http';
  rounds: number;
  warmup: number;
  /** overhead = the invocation's time minus the provider's (fetch, request to last body byte). */
  kinds: Record<Kind, { overheadMs: Summary; totalMs: Summary; providerMs: Summary; cpuOverheadMs: Summary }>;
  /** Per round, ours / baseline (ratio) and ours − baseline (delta), on the overhead (wall, and CPU). */
  vsBaseline: Record<OurKind, { ratio: Summary; deltaMs: Summary; cpuRatio: Summary; cpuDeltaMs: Summary }>;
}

export interface TargetResult {
  id: string;
  label: string;
  target: string;
  measured: string;
  met: boolean;
  /** For a miss: by how much, in the target's unit. */
  missedBy?: string;
}

export interface Results {
  generatedAt: string;
  durationSeconds: number;
  quick: boolean;
  machine: RawRun['machine'];
  source: RawRun['source'];
  settings: RawRun['settings'];
  esbuild: RawRun['esbuild'];
  bundles: {
    perFunction: Record<Fn, { bytes: number; zipBytes: number }>;
    vsBaseline: Record<OurFn, { bytesRatio: number; zipRatio: number }>;
    families: { family: string; sendOtp: number; verifyOtp: number; baseline: number }[];
    packages: { package: string; family: string; sendOtp: number; verifyOtp: number; baseline: number }[];
  };
  coldInit: {
    ms: Record<Fn, Summary>;
    ratio: Record<OurFn, Summary>;
    cpuMs: Record<Fn, Summary>;
    cpuRatio: Record<OurFn, Summary>;
    nodeBootMs: Summary;
    /** From the seam bundles (first-invocation children): require with the SDK evaluated, then the handler's own modules. */
    split: Record<Fn, { requireMs: Summary; handlerModulesMs: Summary }>;
    /** Share of a profiled init per package or file of ours (one process per bundle). */
    profiles: Partial<Record<Fn, Attribution>>;
  };
  firstInvocation: {
    overheadMs: Record<Fn, Summary>;
    cpuOverheadMs: Record<Fn, Summary>;
    totalMs: Record<Fn, Summary>;
    providerMs: Record<Fn, Summary>;
    ratio: Record<OurFn, Summary>;
    deltaMs: Record<OurFn, Summary>;
    requests: Record<Fn, { ddbRequests: Record<string, number>; ddbRoundTrips: Record<string, number>; smRequests: Record<string, number> }>;
  };
  warm: { client: WarmAnalysis; http: WarmAnalysis };
  /** Share of sampled warm CPU time per package or file of ours, per kind of invocation (provider excluded). */
  profiles: Partial<Record<Kind, Attribution>>;
  requests: Record<Kind, { label: string; ddbRequests: Record<string, number>; ddbRoundTrips: Record<string, number>; smRequests: Record<string, number>; providerCalls: Record<string, number>; httpSeam: { ddbRequests: Record<string, number>; smRequests: Record<string, number> } }>;
  standIns: RawRun['standIns'];
  targets: TargetResult[];
}

const overheads = (s: Series): number[] => s.totalMs.map((t, i) => t - s.providerMs[i]!);
const cpuOverheads = (s: Series): number[] => s.cpuMs.map((t, i) => t - s.providerCpuMs[i]!);

const analyseWarm = (w: WarmResult): WarmAnalysis => {
  const kinds = Object.fromEntries(
    KINDS.map((k) => [
      k,
      {
        overheadMs: summarize(overheads(w.kinds[k])),
        totalMs: summarize(w.kinds[k].totalMs),
        providerMs: summarize(w.kinds[k].providerMs),
        cpuOverheadMs: summarize(cpuOverheads(w.kinds[k])),
      },
    ]),
  ) as WarmAnalysis['kinds'];
  const base = overheads(w.kinds.baseline);
  const baseCpu = cpuOverheads(w.kinds.baseline);
  const vsBaseline = Object.fromEntries(
    OUR_KINDS.map((k) => {
      const ours = overheads(w.kinds[k]);
      const oursCpu = cpuOverheads(w.kinds[k]);
      return [
        k,
        {
          ratio: summarize(pairRatios(ours, base)),
          deltaMs: summarize(pairDiffs(ours, base)),
          cpuRatio: summarize(pairRatios(oursCpu, baseCpu)),
          cpuDeltaMs: summarize(pairDiffs(oursCpu, baseCpu)),
        },
      ];
    }),
  ) as WarmAnalysis['vsBaseline'];
  return { seam: w.seam, rounds: w.rounds, warmup: w.warmup, kinds, vsBaseline };
};

const fixed = (n: number, digits = 2): string => n.toFixed(digits);
const allEqual = (hist: Record<string, number>, value: number): boolean => Object.keys(hist).length === 1 && Object.keys(hist)[0] === String(value);
const describeHist = (hist: Record<string, number>): string =>
  Object.entries(hist)
    .map(([v, n]) => `${v}${Object.keys(hist).length > 1 ? ` (×${n})` : ''}`)
    .join(', ');

export const analyse = (raw: RawRun): Results => {
  const fns: Fn[] = ['sendOtp', 'verifyOtp', 'baseline'];
  const byFn = <T>(f: (t: Target) => T): Record<Fn, T> => ({ sendOtp: f('send'), verifyOtp: f('verify'), baseline: f('baseline') });
  const ours = <T>(f: (t: Exclude<Target, 'baseline'>) => T): Record<OurFn, T> => ({ sendOtp: f('send'), verifyOtp: f('verify') });

  // Bundles.
  const perFunction = byFn((t) => ({ bytes: raw.bundles[t].bytes, zipBytes: raw.bundles[t].zipBytes }));
  const vsBaselineBundles = ours((t) => ({
    bytesRatio: raw.bundles[t].bytes / raw.bundles.baseline.bytes,
    zipRatio: raw.bundles[t].zipBytes / raw.bundles.baseline.zipBytes,
  }));
  const allPackages = new Set(fns.flatMap((f) => Object.keys(raw.bundles[f === 'sendOtp' ? 'send' : f === 'verifyOtp' ? 'verify' : 'baseline'].byPackage)));
  const packages = [...allPackages]
    .map((p) => ({ package: p, family: familyOf(p), ...byFn((t) => raw.bundles[t].byPackage[p] ?? 0) }))
    .sort((a, b) => b.sendOtp - b.baseline - (a.sendOtp - a.baseline));
  const familyNames = [...new Set(packages.map((p) => p.family))];
  const families = familyNames
    .map((family) => {
      const members = packages.filter((p) => p.family === family);
      const sum = (f: Fn) => members.reduce((a, p) => a + p[f], 0);
      return { family, sendOtp: sum('sendOtp'), verifyOtp: sum('verifyOtp'), baseline: sum('baseline') };
    })
    .sort((a, b) => b.sendOtp - a.sendOtp);

  // Cold init.
  const coldMs = (t: Target) => raw.cold[t].map((r) => r.initMs);
  const coldCpu = (t: Target) => raw.cold[t].map((r) => r.initCpuMs);
  const coldInit = {
    ms: byFn((t) => summarize(coldMs(t))),
    ratio: ours((t) => summarize(pairRatios(coldMs(t), coldMs('baseline')))),
    cpuMs: byFn((t) => summarize(coldCpu(t))),
    cpuRatio: ours((t) => summarize(pairRatios(coldCpu(t), coldCpu('baseline')))),
    nodeBootMs: summarize(Object.values(raw.cold).flat().map((r) => r.bootMs)),
    split: byFn((t) => ({ requireMs: summarize(raw.first[t].map((r) => r.requireMs)), handlerModulesMs: summarize(raw.first[t].map((r) => r.initMs)) })),
    profiles: Object.fromEntries(Object.entries(raw.initProfiles).map(([t, a]) => [FUNCTION_OF[t as Target], a])) as Partial<Record<Fn, Attribution>>,
  };

  // First invocation.
  const firstOverhead = (t: Target) => raw.first[t].map((r) => r.sample.totalMs - r.sample.providerMs);
  const firstInvocation = {
    overheadMs: byFn((t) => summarize(firstOverhead(t))),
    cpuOverheadMs: byFn((t) => summarize(raw.first[t].map((r) => r.sample.cpuMs - r.sample.providerCpuMs))),
    totalMs: byFn((t) => summarize(raw.first[t].map((r) => r.sample.totalMs))),
    providerMs: byFn((t) => summarize(raw.first[t].map((r) => r.sample.providerMs))),
    ratio: ours((t) => summarize(pairRatios(firstOverhead(t), firstOverhead('baseline')))),
    deltaMs: ours((t) => summarize(pairDiffs(firstOverhead(t), firstOverhead('baseline')))),
    requests: byFn((t) => ({
      ddbRequests: histogram(raw.first[t].map((r) => r.sample.ddbRequests)),
      ddbRoundTrips: histogram(raw.first[t].map((r) => r.sample.ddbRoundTrips)),
      smRequests: histogram(raw.first[t].map((r) => r.sample.smRequests)),
    })),
  };

  const warm = { client: analyseWarm(raw.warm.client), http: analyseWarm(raw.warm.http) };
  const requests = Object.fromEntries(
    KINDS.map((k) => {
      const s = raw.warm.client.kinds[k];
      const h = raw.warm.http.kinds[k];
      return [
        k,
        {
          label: KIND_LABEL[k],
          ddbRequests: histogram(s.ddbRequests),
          ddbRoundTrips: histogram(s.ddbRoundTrips),
          smRequests: histogram(s.smRequests),
          providerCalls: histogram(s.providerCalls),
          httpSeam: { ddbRequests: histogram(h.ddbRequests), smRequests: histogram(h.smRequests) },
        },
      ];
    }),
  ) as Results['requests'];

  // Targets.
  const targets: TargetResult[] = [];
  const ratioTarget = (id: string, label: string, limit: number, value: number, how: string) =>
    targets.push({
      id,
      label,
      target: `≤ ${fixed(limit)}× baseline`,
      measured: `${fixed(value, 3)}× (${how})`,
      met: value <= limit,
      ...(value > limit ? { missedBy: `${fixed(value - limit, 3)}× over (${fixed(((value - limit) / limit) * 100, 1)} % above the limit)` } : {}),
    });
  for (const f of ['sendOtp', 'verifyOtp'] as const) {
    const [lo, hi] = coldInit.ratio[f].p50Interval;
    ratioTarget(`init-${f}`, `cold init, ${f}`, 1.1, coldInit.ratio[f].p50, `median of ${coldInit.ratio[f].n} pairwise ratios, 95 % interval ${fixed(lo, 3)}–${fixed(hi, 3)}; CPU time ${fixed(coldInit.cpuRatio[f].p50, 3)}×`);
  }
  for (const f of ['sendOtp', 'verifyOtp'] as const) {
    ratioTarget(`bundle-zip-${f}`, `bundle size, ${f}, zipped`, 1.15, vsBaselineBundles[f].zipRatio, `${perFunction[f].zipBytes} B vs ${perFunction.baseline.zipBytes} B`);
    ratioTarget(`bundle-min-${f}`, `bundle size, ${f}, minified`, 1.15, vsBaselineBundles[f].bytesRatio, `${perFunction[f].bytes} B vs ${perFunction.baseline.bytes} B`);
  }
  for (const k of OUR_KINDS) {
    const p99 = warm.client.kinds[k].overheadMs.p99;
    targets.push({
      id: `warm-p99-${k}`,
      label: `warm overhead p99, ${KIND_LABEL[k]}`,
      target: '< 1 ms',
      measured: `${fixed(p99, 3)} ms (CPU time p99 ${fixed(warm.client.kinds[k].cpuOverheadMs.p99, 3)} ms)`,
      met: p99 < 1,
      ...(p99 >= 1 ? { missedBy: `${fixed(p99 - 1, 3)} ms over` } : {}),
    });
  }
  const smWarm = KINDS.filter((k) => k !== 'baseline').flatMap((k) => [...raw.warm.client.kinds[k].smRequests, ...raw.warm.http.kinds[k].smRequests]);
  const smMax = Math.max(...smWarm);
  targets.push({
    id: 'warm-no-secrets-manager',
    label: 'no Secrets Manager request on a warm invocation',
    target: '0',
    measured: `${smMax} at most, over ${smWarm.length} warm invocations of ours`,
    met: smMax === 0,
    ...(smMax > 0 ? { missedBy: `${smMax} request(s)` } : {}),
  });
  const rt = (k: Kind, label: string) => {
    const hist = requests[k].ddbRoundTrips;
    const worst = Math.max(...Object.keys(hist).map(Number));
    targets.push({
      id: `round-trips-${k}`,
      label,
      target: '1 DynamoDB round trip',
      measured: `${describeHist(hist)} round trip(s), ${describeHist(requests[k].ddbRequests)} request(s)`,
      met: allEqual(hist, 1),
      ...(allEqual(hist, 1) ? {} : { missedBy: `${worst - 1} round trip(s) more` }),
    });
  };
  rt('send', 'DynamoDB round trips, send without Idempotency-Key');
  rt('verifyWrong', 'DynamoDB round trips, verify with a wrong code');

  return {
    generatedAt: raw.generatedAt,
    durationSeconds: raw.durationSeconds,
    quick: raw.quick,
    machine: raw.machine,
    source: raw.source,
    settings: raw.settings,
    esbuild: raw.esbuild,
    bundles: { perFunction, vsBaseline: vsBaselineBundles, families, packages },
    coldInit,
    firstInvocation,
    warm,
    profiles: raw.profiles,
    requests,
    standIns: raw.standIns,
    targets,
  };
};
