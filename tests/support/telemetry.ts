import { logger } from '../../lib/log';
import { metrics } from '../../lib/metrics';

export interface LoggedLine {
  level: string;
  message: string;
  extra: unknown;
}
export interface AddedMetric {
  name: string;
  value: number;
  /** `Name=value`, for the alarm metrics that go out as single metrics with one dimension. */
  dimension?: string;
}

/**
 * Records, per test, the lines the Powertools logger writes (error, warn, info) and the metrics added, instead
 * of printing or flushing them. The arrays are the same for the whole file and emptied before each test;
 * `clear()` empties them mid-test, to look only at what follows.
 */
export const useTelemetry = (): { logged: LoggedLine[]; metricsAdded: AddedMetric[]; clear: () => void } => {
  const logged: LoggedLine[] = [];
  const metricsAdded: AddedMetric[] = [];
  const clear = () => {
    logged.length = 0;
    metricsAdded.length = 0;
  };
  beforeEach(() => {
    clear();
    for (const level of ['error', 'warn', 'info'] as const) {
      jest.spyOn(logger, level).mockImplementation(((message: string, extra: unknown) => void logged.push({ level, message, extra })) as never);
    }
    jest.spyOn(metrics, 'addMetric').mockImplementation(((name: string, _unit: unknown, value: number) => void metricsAdded.push({ name, value })) as never);
    jest.spyOn(metrics, 'singleMetric').mockImplementation((() => {
      let dimension: string | undefined;
      return {
        addDimension: (k: string, v: string) => void (dimension = `${k}=${v}`),
        addMetric: (name: string, _unit: unknown, value: number) => void metricsAdded.push({ name, value, dimension }),
      };
    }) as never);
  });
  afterEach(() => jest.restoreAllMocks());
  return { logged, metricsAdded, clear };
};
