/**
 * A benchmark child (bundled to bench/.out/bin/seam-child.js and run with plain `node`, no loader):
 *   first  load one bench bundle behind the seam, invoke its handler once, write the timings, exit
 *          (with `profile`: a V8 CPU profile of the loading, for "where the init goes");
 *   warm   load the bundles behind the seam, run the kinds of invocation interleaved round by round
 *          (rotated order), after a warm-up, and write every sample (with `profile`: a V8 CPU profile of
 *          the measured rounds, with each invocation's and each provider exchange's time window).
 * stdout is /dev/null (the handlers' JSON logs and EMF metrics are written, as in Lambda, and thrown
 * away); results go to the file named in the config; anything wrong ends the process with a message.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { createRequire } from 'node:module';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { keysFor } from '../../lib/otp/keys';
import { sealRequestId } from '../../lib/otp/request-id';
import { lambdaContext, sendEvent, verifyEvent } from './events';
import { HASH_KEY, PHONE, RIGHT_CODE, WRONG_CODE } from './fixtures';
import { installClientSeam, installFetchTimer, installHttpSeam, SeamCounter, type SdkModule } from './seam';
import type { ProfileWithWindows } from './profile';
import { KIND_TARGET, KINDS, type ChildConfig, type FirstResult, type Kind, type Sample, type Series, type Target, type WarmResult } from './protocol';
import { rotate } from './stats';

type Handler = (event: APIGatewayProxyEventV2, context: Context) => Promise<{ statusCode?: number; body?: string } | string | void>;
interface BenchBundle {
  sdk: SdkModule;
  load: () => { handler: unknown };
}

const EXPECTED_STATUS: Record<Kind, number> = { baseline: 200, send: 201, sendIdem: 201, verifyWrong: 400, verifyRight: 200 };
const FUNCTION_NAME: Record<Target, string> = { send: 'otp-service-bench-sendOtp', verify: 'otp-service-bench-verifyOtp', baseline: 'baseline-sendOtp' };

const main = async (): Promise<void> => {
  const config = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as ChildConfig;
  const nodeRequire = createRequire(__filename);
  const provider = installFetchTimer();
  const counter = new SeamCounter();
  const otpRequestId = sealRequestId(keysFor(HASH_KEY), PHONE).otpRequestId;

  const handlers: Partial<Record<Target, Handler>> = {};
  const initMs: Partial<Record<Target, number>> = {};
  const requireMs: Partial<Record<Target, number>> = {};
  const load = (target: Target): void => {
    const required = process.hrtime.bigint();
    const bundle = nodeRequire(config.bundles[target]) as BenchBundle;
    requireMs[target] = Number(process.hrtime.bigint() - required) / 1e6;
    if (config.seam === 'client') installClientSeam(bundle.sdk, counter);
    else installHttpSeam(bundle.sdk, counter);
    const started = process.hrtime.bigint();
    handlers[target] = bundle.load().handler as Handler;
    initMs[target] = Number(process.hrtime.bigint() - started) / 1e6;
  };
  const startProfile = async (): Promise<Session> => {
    const s = new Session();
    s.connect();
    await s.post('Profiler.enable');
    await s.post('Profiler.setSamplingInterval', { interval: 100 });
    await s.post('Profiler.start');
    return s;
  };
  const stopProfile = async (s: Session, invocations: [number, number][], providerExchanges: [number, number][]): Promise<void> => {
    const { profile } = await s.post('Profiler.stop');
    const marked: ProfileWithWindows = { ...profile, invocations, providerExchanges };
    writeFileSync(config.profile!, JSON.stringify(marked));
    s.disconnect();
  };

  let idem = 0;
  const eventFor = (kind: Kind): APIGatewayProxyEventV2 => {
    switch (kind) {
      case 'baseline':
      case 'send':
        return sendEvent(PHONE);
      case 'sendIdem':
        return sendEvent(PHONE, `bench-${(idem += 1)}-${randomBytes(6).toString('hex')}`);
      case 'verifyWrong':
        return verifyEvent(otpRequestId, WRONG_CODE);
      case 'verifyRight':
        return verifyEvent(otpRequestId, RIGHT_CODE);
    }
  };

  /** Invocation windows in µs of the monotonic clock, recorded while profiling. */
  let windows: [number, number][] | undefined;

  const invoke = async (kind: Kind): Promise<Sample> => {
    const target = KIND_TARGET[kind];
    const handler = handlers[target]!;
    const event = eventFor(kind);
    const context = lambdaContext(FUNCTION_NAME[target]);
    counter.reset();
    provider.reset();
    const before = process.resourceUsage();
    const started = process.hrtime.bigint();
    const result = await handler(event, context);
    const ended = process.hrtime.bigint();
    const totalMs = Number(ended - started) / 1e6;
    const after = process.resourceUsage();
    windows?.push([Number(started / 1000n), Number(ended / 1000n)]);
    const status = typeof result === 'object' && result !== null ? result.statusCode : undefined;
    if (status !== EXPECTED_STATUS[kind] || counter.unexpected.length > 0) {
      const body = typeof result === 'object' && result !== null ? String(result.body).slice(0, 300) : String(result);
      throw new Error(`${kind}: expected ${EXPECTED_STATUS[kind]}, got ${String(status)} ${body}; unexpected SDK calls: ${counter.unexpected.join(' | ') || 'none'}`);
    }
    return {
      totalMs,
      providerMs: provider.ms,
      cpuMs: (after.userCPUTime + after.systemCPUTime - before.userCPUTime - before.systemCPUTime) / 1000,
      providerCpuMs: provider.cpuMs,
      preemptions: after.involuntaryContextSwitches - before.involuntaryContextSwitches,
      providerCalls: provider.calls,
      ddbRequests: counter.ddbRequests,
      ddbRoundTrips: counter.ddbRoundTrips,
      smRequests: counter.smRequests,
    };
  };

  if (config.mode === 'first') {
    const target = config.target!;
    // With a profile asked for, it covers the init only: require of the bundle, then the handler's modules.
    const session = config.profile === undefined ? undefined : await startProfile();
    const began = process.hrtime.bigint();
    load(target);
    if (session !== undefined) await stopProfile(session, [[Number(began / 1000n), Number(process.hrtime.bigint() / 1000n)]], []);
    const kind: Kind = target === 'verify' ? 'verifyWrong' : target;
    const sample = await invoke(kind);
    const out: FirstResult = { target, kind, requireMs: requireMs[target]!, initMs: initMs[target]!, sample };
    writeFileSync(config.out, JSON.stringify(out));
    return;
  }

  const kindsToRun = config.only ?? KINDS;
  for (const target of new Set(kindsToRun.map((k) => KIND_TARGET[k]))) load(target);
  const rounds = config.rounds ?? 2000;
  const warmup = config.warmup ?? 200;
  const empty = (): Series => ({ totalMs: [], providerMs: [], cpuMs: [], providerCpuMs: [], preemptions: [], providerCalls: [], ddbRequests: [], ddbRoundTrips: [], smRequests: [] });
  const kinds = Object.fromEntries(KINDS.map((k) => [k, empty()])) as Record<Kind, Series>;
  let session: Session | undefined;
  for (let round = -warmup; round < rounds; round++) {
    if (round === 0 && config.profile !== undefined) {
      session = await startProfile();
      windows = [];
      provider.windows = [];
    }
    for (const kind of rotate(kindsToRun, round + warmup)) {
      const sample = await invoke(kind);
      if (round < 0) continue;
      const series = kinds[kind];
      for (const key of Object.keys(series) as (keyof Sample)[]) series[key].push(sample[key]);
    }
  }
  if (session !== undefined) await stopProfile(session, windows ?? [], provider.windows ?? []);
  const out: WarmResult = { seam: config.seam, rounds, warmup, kinds };
  writeFileSync(config.out, JSON.stringify(out));
};

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`seam-child: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
