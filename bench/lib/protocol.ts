/** What bench/run.ts and its seam child exchange: the kinds of invocation, the child's config and its results. */

export type Target = 'send' | 'verify' | 'baseline';
export type Kind = 'baseline' | 'send' | 'sendIdem' | 'verifyWrong' | 'verifyRight';
export const KINDS: readonly Kind[] = ['baseline', 'send', 'sendIdem', 'verifyWrong', 'verifyRight'];
export const KIND_TARGET: Record<Kind, Target> = { baseline: 'baseline', send: 'send', sendIdem: 'send', verifyWrong: 'verify', verifyRight: 'verify' };

export interface ChildConfig {
  mode: 'first' | 'warm';
  seam: 'client' | 'http';
  bundles: Record<Target, string>;
  /** first: the one bundle to load and invoke. */
  target?: Target;
  /** warm: measured rounds (each runs every kind once) and unmeasured warm-up rounds before them. */
  rounds?: number;
  warmup?: number;
  /** warm: run only these kinds (the profile step runs one kind per process). */
  only?: Kind[];
  /** warm: write a V8 CPU profile of the measured rounds (not the loading, not the warm-up) to this file;
   *  first: of the init (require and handler modules), not of the invocation. */
  profile?: string;
  out: string;
}

export interface Sample {
  /** Wall time of the invocation, and the part of it spent in the provider exchange (fetch). */
  totalMs: number;
  providerMs: number;
  /** CPU time of this process (all threads) during the invocation, and during the provider exchange. */
  cpuMs: number;
  providerCpuMs: number;
  /** Involuntary context switches of this process during the invocation: > 0 means the OS took a core away. */
  preemptions: number;
  providerCalls: number;
  ddbRequests: number;
  ddbRoundTrips: number;
  smRequests: number;
}

export interface FirstResult {
  target: Target;
  kind: Kind;
  /** require() of the seam bundle: the whole file read and compiled, the SDK's modules evaluated. */
  requireMs: number;
  /** Then the handler's own modules evaluated (lazily, after the seam is in place): ours, Middy, Powertools, jose. */
  initMs: number;
  sample: Sample;
}

export type Series = { [K in keyof Sample]: number[] };
export interface WarmResult {
  seam: ChildConfig['seam'];
  rounds: number;
  warmup: number;
  kinds: Record<Kind, Series>;
}

export interface ColdResult {
  /** require() of the bundle: reading, compiling and running its top level (our init). */
  initMs: number;
  /** CPU time of this process (all threads) during that require(): what a busy machine cannot inflate. */
  initCpuMs: number;
  /** process start → just before require: node's own boot, the same for every bundle. */
  bootMs: number;
}
