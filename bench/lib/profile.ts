/**
 * Where a warm invocation's CPU time goes, from a V8 sampling profile of the measured rounds (bench/lib/seam-child.ts).
 *
 * Only samples taken inside an invocation (the child records each invocation's start and end on the monotonic
 * clock the profiler also uses) and outside its provider exchange count, so the shares add up to the "overhead"
 * the warm tables report. Each sample is charged to the innermost frame of the handler's bundle on its stack
 * (so node:crypto, undici or JSON work is charged to the file of ours, or the package, that called it), mapped
 * back to its source file with the bundle's source map.
 */
import { readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { dirname, relative, resolve } from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
export interface ProfileWithWindows {
  nodes: ProfileNode[];
  startTime: number;
  samples?: number[];
  timeDeltas?: number[];
  /** [start, end] of every measured invocation, and of every provider exchange, in µs of the monotonic clock. */
  invocations: [number, number][];
  providerExchanges: [number, number][];
}

export interface Attribution {
  /** Samples taken inside invocations, outside provider exchanges (each stands for one sampling interval). */
  samples: number;
  invocations: number;
  /** Largest first: a package, one of our files, garbage collection, or the harness and event loop. */
  buckets: { name: string; share: number }[];
}

export const HARNESS = 'the seam and the event loop (not the handler)';
export const GC = 'garbage collection';
export const KEEP_NAMES = '`__name` (esbuild keepNames)';
export const HELPERS = 'esbuild module wrappers (first evaluation of each module, CommonJS interop)';

/** A package name for code under node_modules, else the file's path from the repository root. */
const sourceOf = (source: string, mapDir: string, root: string): string => {
  const file = relative(root, resolve(mapDir, source));
  const i = file.lastIndexOf('node_modules/');
  if (i < 0) return file;
  const parts = file.slice(i + 'node_modules/'.length).split('/');
  return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
};

/** Is t inside one of the sorted, non-overlapping windows? */
const inside = (windows: [number, number][], t: number): boolean => {
  let lo = 0;
  let hi = windows.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const [s, e] = windows[mid]!;
    if (t < s) hi = mid - 1;
    else if (t > e) lo = mid + 1;
    else return true;
  }
  return false;
};

export const LOADING = 'reading and compiling the bundle (node, V8)';

/**
 * `unowned`: the name for samples with no frame of the bundle on their stack, or only the harness's: the seam and
 * the event loop for a warm profile, loading the file for an init profile (the harness is then only calling require).
 */
export const attribute = (profileFile: string, bundleFile: string, root: string, unowned = HARNESS): Attribution => {
  const profile = JSON.parse(readFileSync(profileFile, 'utf8')) as ProfileWithWindows;
  const map = new SourceMap(JSON.parse(readFileSync(`${bundleFile}.map`, 'utf8')));
  const code = readFileSync(bundleFile, 'utf8').split('\n');
  const bundleName = bundleFile.split('/').pop()!;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const memo = new Map<number, string | null>();
  /** The bucket of a frame of the bundle, 'harness' for a frame of the child script, null for anything else. */
  const frameBucket = (id: number): string | null => {
    let b = memo.get(id);
    if (b !== undefined) return b;
    const cf = byId.get(id)!.callFrame;
    if (cf.url.endsWith(`/${bundleName}`)) {
      const entry = map.findEntry(cf.lineNumber, cf.columnNumber) as { originalSource?: string };
      if (entry.originalSource) b = sourceOf(entry.originalSource, dirname(bundleFile), root);
      else b = /^[^{]{0,40}"name",\{value:/.test(code[cf.lineNumber]?.slice(cf.columnNumber, cf.columnNumber + 60) ?? '') ? KEEP_NAMES : HELPERS;
    } else b = cf.url.endsWith('seam-child.js') ? 'harness' : null;
    memo.set(id, b);
    return b;
  };

  // Samples are counted, not weighted by the gap to the next one: on a busy machine a gap also holds the time
  // the process spent waiting for a core, which belongs to nobody.
  const totals = new Map<string, number>();
  let count = 0;
  let t = profile.startTime;
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    t += deltas[i] ?? 0;
    if (!inside(profile.invocations, t) || inside(profile.providerExchanges, t)) continue;
    const id = samples[i]!;
    const leaf = byId.get(id)!.callFrame.functionName;
    if (leaf === '(idle)') continue;
    // The innermost frame that is ours or the harness's decides (node internals and natives are charged to it).
    let owner: string | null = null;
    for (let cur: number | undefined = id; cur !== undefined && owner === null; cur = parent.get(cur)) owner = frameBucket(cur);
    const name = owner !== null && owner !== 'harness' ? owner : leaf === '(garbage collector)' ? GC : unowned;
    totals.set(name, (totals.get(name) ?? 0) + 1);
    count += 1;
  }
  const sorted = [...totals.entries()].map(([name, n]) => ({ name, share: count > 0 ? n / count : 0 })).sort((a, b) => b.share - a.share);
  const top = sorted.slice(0, 24);
  const rest = sorted.slice(24).reduce((a, b) => a + b.share, 0);
  return { samples: count, invocations: profile.invocations.length, buckets: rest > 0 ? [...top, { name: `${sorted.length - 24} more`, share: rest }] : top };
};
