/**
 * Every alarm that reads one of the service's own metrics can fire: the real handlers (tests/support/stack.ts,
 * against dynalite, the Secrets Manager stand-in and the StartMessaging sandbox) are driven into each cause an
 * alarm watches, the EMF lines they print are collected, and each alarm's metric (namespace, name, dimension
 * set and values) must match one of them exactly, as CloudWatch would match it.
 *
 * The alarms come from `serverless print --stage prod` (the configuration resolved as a deploy resolves it, no
 * build), so a renamed metric, a changed dimension or a new alarm nobody drives fails here.
 */
import { createServer, type Server } from 'node:http';
import { listenOnLoopback } from '../../local/env';
import { childEnv, copyProject, removeDir, runServerless, tmpFor } from '../support/package-build';
import { startStack, type Answer, type Stack } from '../support/stack';

jest.setTimeout(120_000);

interface MetricSpec {
  Namespace: string;
  MetricName: string;
  Dimensions: { Name: string; Value: unknown }[];
}
interface AlarmProps extends Partial<MetricSpec> {
  AlarmName: string;
  Metrics?: { MetricStat?: { Metric: MetricSpec } }[];
}
interface EmfLine {
  _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[] };
  [key: string]: unknown;
}

let stack: Stack;
let siteverify: { url: string; close(): Promise<void> };
let alarmMetrics: { alarm: string; metric: MetricSpec }[] = [];
let emitted: EmfLine[] = [];
const answers: Record<string, number> = {};

/** A bot-challenge provider's siteverify: `challenge-pass` passes, anything else fails; `/down` answers 500. */
const startSiteverify = async () => {
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      if (req.url === '/down') {
        res.writeHead(500).end();
        return;
      }
      const token = new URLSearchParams(body).get('response');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(token === 'challenge-pass' ? { success: true } : { success: false, 'error-codes': ['invalid-input-response'] }));
    });
  });
  const port = await listenOnLoopback(server);
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise<void>((r) => server.close(() => r())) };
};

const printProd = async (): Promise<{ Resources: Record<string, { Type: string; Properties: AlarmProps }> ; namespace: string; service: string }> => {
  const dir = copyProject();
  try {
    const run = await runServerless(
      ['print', '--stage', 'prod', '--format', 'json', '--param', 'alarmTopicArn=arn:aws:sns:ap-south-1:123456789012:x', '--param', 'corsAllowedOrigins=https://shop.example'],
      { cwd: dir, env: childEnv({ TMPDIR: tmpFor(dir) }), timeoutMs: 90_000 },
    );
    if (run.code !== 0) throw new Error(`serverless print failed\n${run.stdout}\n${run.stderr}`);
    const config = JSON.parse(run.stdout.slice(run.stdout.indexOf('{'))) as {
      resources: { Resources: Record<string, { Type: string; Properties: AlarmProps }> };
      provider: { environment: Record<string, string> };
    };
    return { Resources: config.resources.Resources, namespace: config.provider.environment.POWERTOOLS_METRICS_NAMESPACE!, service: config.provider.environment.POWERTOOLS_SERVICE_NAME! };
  } finally {
    removeDir(dir);
  }
};

let n = 0;
/** A fresh number and caller for each cause, so no limit of one cause refuses the next. */
const caller = () => {
  n += 1;
  return { phone: `+9198765${String(43000 + n).padStart(5, '0')}`, ip: `198.51.100.${n}` };
};
const send = async (label: string, extra: Record<string, unknown> = {}, remainingMs?: number): Promise<Answer> => {
  const c = caller();
  const a = await stack.send({ phoneNumber: c.phone, ...extra }, { sourceIp: c.ip, ...(remainingMs ? { remainingMs } : {}) });
  answers[label] = a.status;
  return a;
};

beforeAll(async () => {
  const printed = await printProd();
  for (const [id, r] of Object.entries(printed.Resources)) {
    if (r.Type !== 'AWS::CloudWatch::Alarm') continue;
    const a = r.Properties;
    const metrics = a.Metrics ? a.Metrics.flatMap((q) => (q.MetricStat ? [q.MetricStat.Metric] : [])) : [{ Namespace: a.Namespace!, MetricName: a.MetricName!, Dimensions: a.Dimensions ?? [] }];
    for (const metric of metrics) if (!metric.Namespace.startsWith('AWS/')) alarmMetrics.push({ alarm: id, metric });
  }

  siteverify = await startSiteverify();
  stack = await startStack({
    POWERTOOLS_METRICS_NAMESPACE: printed.namespace,
    POWERTOOLS_SERVICE_NAME: printed.service,
    SEND_COOLDOWN_SECONDS: '0',
    SEND_LIMIT_PER_IP_PER_HOUR: '1000',
  });
  stack.coldStart();
  try {
    // Delivered, verified, and a wrong code: OtpSent (and NewNumberSent: a number never verified), OtpVerified, OtpVerifyFailed.
    const first = caller();
    const { otpRequestId, code } = await stack.sendAndRead(first.phone, { sourceIp: first.ip });
    const wrong = code === '000000' ? '111111' : '000000';
    answers['wrong code'] = (await stack.verify({ otpRequestId, otp: wrong }, { sourceIp: first.ip })).status;
    answers['right code'] = (await stack.verify({ otpRequestId, otp: code }, { sourceIp: first.ip })).status;

    // Every provider failure the provider-error alarm counts, and the provider's own 429.
    const provider: [string, Parameters<Stack['sandbox']['failNext']>][] = [
      ['server_error', [{ status: 500 }, { status: 500 }, { status: 500 }]],
      ['connection', [{ reset: true }, { reset: true }, { reset: true }]],
      ['bad_response', [{ status: 200, body: 'not json' }]],
      ['rejected', [{ status: 400 }]],
      ['unauthorized', [{ status: 401 }]],
      ['not_found', [{ status: 404 }]],
      ['conflict', [{ status: 409 }]],
      ['wallet', [{ status: 402 }]],
      ['rate_limited', [{ status: 429, headers: { 'retry-after': '1' } }]],
    ];
    for (const [label, faults] of provider) {
      stack.sandbox.failNext(...faults);
      await send(label);
    }
    // A provider that never answers: 1.1 s left before the handler's deadline, one 1 s attempt, then 504.
    stack.sandbox.failNext({ hang: true }, { hang: true });
    await send('timeout', {}, 2600);
    stack.sandbox.reset();

    // The bot challenge: a rejected token, then a siteverify that answers 500.
    stack.secrets.set('otp/challenge-secret', 'local-challenge-secret');
    stack.coldStart({ CHALLENGE_PROVIDER: 'turnstile', CHALLENGE_MODE: 'enforce', CHALLENGE_VERIFY_URL: siteverify.url });
    await send('challenge failed', { challengeToken: 'challenge-fail' });
    stack.coldStart({ CHALLENGE_VERIFY_URL: `${siteverify.url}/down` });
    await send('challenge unavailable', { challengeToken: 'challenge-pass' });
    stack.coldStart({ CHALLENGE_PROVIDER: undefined, CHALLENGE_MODE: undefined, CHALLENGE_VERIFY_URL: undefined });

    // Secrets Manager down at a cold start, then DynamoDB unreachable.
    stack.secrets.failAll(true);
    stack.coldStart();
    await send('secrets down');
    stack.secrets.failAll(false);
    stack.coldStart({ AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:9' });
    await send('store down');
    stack.coldStart({ AWS_ENDPOINT_URL_DYNAMODB: stack.dynamo.endpoint });

    // The day's budget spent (the sends above already used more than 1).
    stack.coldStart({ SEND_BUDGET_PER_DAY: '1' });
    await send('budget spent');
  } finally {
    emitted = stack.logs
      .join('')
      .split('\n')
      .filter((l) => l.startsWith('{"_aws"'))
      .map((l) => JSON.parse(l) as EmfLine);
  }
}, 180_000);

afterAll(async () => {
  await stack?.close();
  await siteverify?.close();
});

/** CloudWatch's match: same namespace, metric, exactly the same dimension names, and the same values. */
const matches = (m: MetricSpec) =>
  emitted.some((line) =>
    line._aws.CloudWatchMetrics.some(
      (d) =>
        d.Namespace === m.Namespace &&
        d.Metrics.some((x) => x.Name === m.MetricName) &&
        d.Dimensions.some((set) => set.length === m.Dimensions.length && m.Dimensions.every((dim) => set.includes(dim.Name) && line[dim.Name] === dim.Value)),
    ),
  );
const describeMetric = ({ alarm, metric }: { alarm: string; metric: MetricSpec }) =>
  `${alarm}: ${metric.MetricName}{${metric.Dimensions.map((d) => `${d.Name}=${String(d.Value)}`).join(',')}}`;

it('drove each cause to the answer API.md gives it', () => {
  expect(answers).toMatchObject({
    'wrong code': 400,
    'right code': 200,
    server_error: 502,
    connection: 502,
    bad_response: 502,
    rejected: 502,
    unauthorized: 502,
    not_found: 502,
    conflict: 502,
    wallet: 503,
    rate_limited: 429,
    timeout: 504,
    'secrets down': 503,
    'store down': 503,
    'budget spent': 503,
  });
});

it('reads every alarm on the service metrics from the stage namespace', () => {
  expect(alarmMetrics.length).toBeGreaterThanOrEqual(20);
});

it('finds, for every alarm on a service metric, an EMF line the handlers printed that CloudWatch would match', () => {
  const missing = alarmMetrics.filter((a) => !matches(a.metric)).map(describeMetric);
  expect(missing).toEqual([]);
});

