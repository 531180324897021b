/** Order statistics for the benchmark: nearest-rank percentiles, no interpolation, no outlier removal. */

export const percentile = (values: readonly number[], p: number): number => {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
};

export interface Summary {
  n: number;
  p50: number;
  /** ~95 % confidence interval of the median. */
  p50Interval: [number, number];
  p90: number;
  p99: number;
  min: number;
  max: number;
  mean: number;
}

export const summarize = (values: readonly number[]): Summary => ({
  n: values.length,
  p50: percentile(values, 50),
  p50Interval: medianInterval(values),
  p90: percentile(values, 90),
  p99: percentile(values, 99),
  min: values.length ? Math.min(...values) : Number.NaN,
  max: values.length ? Math.max(...values) : Number.NaN,
  mean: values.length ? values.reduce((a, b) => a + b, 0) / values.length : Number.NaN,
});

/**
 * A distribution-free ~95 % confidence interval for the median: the order statistics at ranks n/2 ∓ 0.98·√n
 * (the normal approximation to the binomial). Says whether a median ratio of 1.11 against a limit of 1.10 is a miss
 * or noise.
 */
export const medianInterval = (values: readonly number[]): [number, number] => {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) return [Number.NaN, Number.NaN];
  const lo = Math.max(1, Math.floor(n / 2 - 0.98 * Math.sqrt(n)));
  const hi = Math.min(n, Math.ceil(n / 2 + 1 + 0.98 * Math.sqrt(n)));
  return [sorted[lo - 1]!, sorted[hi - 1]!];
};

const pairwise = (ours: readonly number[], base: readonly number[], f: (o: number, b: number) => number): number[] => {
  if (ours.length !== base.length) throw new Error(`pairwise: ${ours.length} samples against ${base.length}`);
  return ours.map((o, i) => f(o, base[i]!));
};

/** ours[i] / base[i]: each pair was measured back to back, so drift in the machine's load cancels out. */
export const pairRatios = (ours: readonly number[], base: readonly number[]): number[] => pairwise(ours, base, (o, b) => o / b);
export const pairDiffs = (ours: readonly number[], base: readonly number[]): number[] => pairwise(ours, base, (o, b) => o - b);

/** Counts of each distinct value, e.g. DynamoDB requests per invocation: `{ "6": 2000 }`. */
export const histogram = (values: readonly number[]): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const v of values) out[String(v)] = (out[String(v)] ?? 0) + 1;
  return out;
};

/** The order of the targets in round `i`: rotated, so that no target always runs first (or right after another). */
export const rotate = <T>(items: readonly T[], i: number): T[] => {
  const k = ((i % items.length) + items.length) % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
};
