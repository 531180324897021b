/**
 * Reads the CloudWatch metrics (EMF documents) out of what the handlers printed (Stack.logs): what an
 * alarm would see, independent of how the code emits them.
 */
export interface EmittedMetric {
  name: string;
  value: unknown;
  dimensions: Record<string, unknown>;
}

interface EmfDocument {
  _aws?: { CloudWatchMetrics?: { Dimensions?: string[][]; Metrics?: { Name: string }[] }[] };
  [field: string]: unknown;
}

export const emittedMetrics = (printed: readonly string[]): EmittedMetric[] =>
  printed
    .join('')
    .split('\n')
    .filter((line) => line.startsWith('{') && line.includes('"_aws"'))
    .flatMap((line) => {
      const doc = JSON.parse(line) as EmfDocument;
      return (doc._aws?.CloudWatchMetrics ?? []).flatMap((directive) =>
        (directive.Metrics ?? []).map((m) => ({
          name: m.Name,
          value: doc[m.Name],
          dimensions: Object.fromEntries((directive.Dimensions ?? []).flat().map((d) => [d, doc[d]])),
        })),
      );
    });

/** The `Kind`s of every UpstreamError metric printed. */
export const upstreamKinds = (printed: readonly string[]): unknown[] =>
  emittedMetrics(printed)
    .filter((m) => m.name === 'UpstreamError')
    .map((m) => m.dimensions.Kind);

/** The JSON log entries (not metrics) printed. */
export const logEntries = (printed: readonly string[]): Record<string, unknown>[] =>
  printed
    .join('')
    .split('\n')
    .filter((line) => line.startsWith('{') && !line.includes('"_aws"'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
