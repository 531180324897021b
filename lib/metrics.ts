import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { MiddlewareObj, Request } from '@middy/core';

/**
 * CloudWatch metrics in EMF (written to the log, no API call). Dimensions never carry a phone
 * number: only rule names and error kinds, both from closed sets.
 */
export const metrics = new Metrics({ namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'OtpService', serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'otp-service' });

export type CountMetric =
  | 'OtpSent'
  | 'OtpVerified'
  | 'OtpVerifyFailed'
  | 'NewNumberSent'
  | 'ChallengePassed'
  | 'ChallengeFailed'
  | 'ChallengeUnavailable';
export const count = (name: CountMetric): void => {
  metrics.addMetric(name, MetricUnit.Count, 1);
};

const single = (name: string, dimension: string, value: string): void => {
  const m = metrics.singleMetric();
  m.addDimension(dimension, value);
  m.addMetric(name, MetricUnit.Count, 1);
};

export const countRateLimited = (rule: string): void => single('RateLimited', 'Rule', rule);
export const countUpstreamError = (kind: string): void => single('UpstreamError', 'Kind', kind);
export const recordLatency = (name: 'SendLatency' | 'VerifyLatency' | 'ProviderLatency', ms: number): void => {
  metrics.addMetric(name, MetricUnit.Milliseconds, ms);
};

/**
 * SendLatency / VerifyLatency: from the start of the pipeline to a successful answer (errors have their own
 * metrics; API Gateway's Latency covers every answer). Use it right after logMetrics, so its `after` runs
 * before the flush.
 */
export const latencyMiddleware = (name: 'SendLatency' | 'VerifyLatency'): MiddlewareObj => {
  const started = new WeakMap<object, number>();
  const latencyMiddlewareBefore = (request: Request): void => {
    started.set(request, Date.now());
  };
  const latencyMiddlewareAfter = (request: Request): void => {
    const at = started.get(request);
    if (at !== undefined) recordLatency(name, Date.now() - at);
  };
  return { before: latencyMiddlewareBefore, after: latencyMiddlewareAfter };
};

/** Every answered error counts once (client or server side), so each invocation publishes a metric. */
export const countErrorResponse = (status: number): void => {
  metrics.addMetric(status >= 500 ? 'ServerError' : 'ClientError', MetricUnit.Count, 1);
};
