/**
 * Nobody deploys from here: the packaged artifact is what gets held to account. `serverless package` runs
 * offline on copies of the project, four times in parallel: prod with the params a real deploy passes, dev as
 * `npm start` uses it, and both again behind the optional CloudFront + WAF edge. The tests read what
 * CloudFormation and Lambda would receive:
 *
 *   - the template (cloudformation-template-update-stack.json), through deployedView(): conditions
 *     evaluated, so "which topic does this alarm notify" is answered as CloudFormation would; and cfn-lint,
 *     AWS's own linter, on every one of them (it must be installed: a missing cfn-lint fails the suite);
 *   - packages that must NOT be built: bad params stop `serverless package` before anything is built, naming
 *     the param (deploy/config-check.cjs runs lib/config.ts on the resolved environment);
 *   - each function's zip: one bundled file, no node_modules, no dev dependency;
 *   - the prod bundles themselves, run in a bare node process against the local stand-ins, and
 *     `serverless invoke local` on the dev stage, with a real send and verify each.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTable, startLocalDynamo, type LocalDynamo } from '../../local/dynamo';
import { startSandboxProvider, type Sandbox } from '../../local/sandbox-provider';
import { localKeySecrets, startSecretsStandIn, type SecretsStandIn } from '../../local/secrets';
import { loadCfnYaml } from '../../local/serverless-yaml';
import { loadConfig } from '../../lib/config';
import { sendRules } from '../../lib/ratelimit/rules';
import { childEnv, copyProject, packageStage, REPO_ROOT, removeDir, runNode, runServerless, tmpFor, type Packaged } from '../support/package-build';
import { deployedView, resourcesOfType, stringsIn, type CfnResource, type CfnTemplate, type Json } from '../support/package-template';
import { listZip, readZipEntry } from '../support/package-zip';

jest.setTimeout(60_000);

const TOPIC = 'arn:aws:sns:ap-south-1:123456789012:otp-alarms';
const ORIGINS = ['https://shop.example', 'https://www.shop.example'];
const WEB_ACL = 'arn:aws:wafv2:us-east-1:123456789012:global/webacl/otp-service-prod-edge/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0';
const EXISTING_KEY = 'arn:aws:kms:ap-south-1:123456789012:key/1f2e3d4c-5b6a-7980-8a9b-0c1d2e3f4a5b';
/** A shell that ran `npm start` or a test: none of it may reach a prod artifact. */
const LEAKED_ENV = {
  STARTMESSAGING_BASE_URL: 'http://127.0.0.1:9',
  SEND_COOLDOWN_SECONDS: '0',
  OTP_TABLE: 'leaked-table',
  CORS_ALLOWED_ORIGINS: 'https://leaked.example',
  POWERTOOLS_LOG_LEVEL: 'DEBUG',
};
/** API.md's configuration table with its defaults (OTP_TABLE and CORS_ALLOWED_ORIGINS are per stage). */
const API_MD_DEFAULTS: Record<string, string> = {
  STARTMESSAGING_BASE_URL: 'https://api.startmessaging.com',
  STARTMESSAGING_TIMEOUT_MS: '5000',
  API_KEY_SECRET_ID: 'sm/api-key',
  HASH_SECRET_ID: 'otp/hash-key',
  TOKEN_KEY_SECRET_ID: 'otp/token-key',
  TOKEN_ISSUER: 'otp-service',
  TOKEN_AUDIENCE: 'checkout',
  ALLOWED_COUNTRY_CODES: '91',
  OTP_LENGTH: '6',
  OTP_TTL_SECONDS: '300',
  VERIFY_MAX_ATTEMPTS: '3',
  VERIFY_MAX_FAILURES_PER_IP_PER_HOUR: '30',
  SEND_COOLDOWN_SECONDS: '60',
  SEND_LIMIT_PER_PHONE_PER_HOUR: '5',
  SEND_LIMIT_PER_PHONE_PER_DAY: '10',
  SEND_LIMIT_PER_IP_PER_HOUR: '20',
  SEND_BUDGET_PER_DAY: '10000',
  SEND_BUDGET_NEW_NUMBERS_PER_DAY: '',
  TRUSTED_NUMBER_DAYS: '90',
  TOKEN_TTL_SECONDS: '600',
  CHALLENGE_PROVIDER: 'none',
  CHALLENGE_MODE: 'enforce',
  CHALLENGE_SECRET_ID: 'otp/challenge-secret',
  TEST_NUMBERS: '',
};
const FUNCTIONS = {
  sendOtp: { logicalId: 'SendOtpLambdaFunction', role: 'SendOtpRole', route: 'POST /auth/send-otp', file: 'handlers/send-otp.mjs', memory: 512, timeout: 25 },
  verifyOtp: { logicalId: 'VerifyOtpLambdaFunction', role: 'VerifyOtpRole', route: 'POST /auth/verify-otp', file: 'handlers/verify-otp.mjs', memory: 512, timeout: 10 },
  jwks: { logicalId: 'JwksLambdaFunction', role: 'JwksRole', route: 'GET /.well-known/jwks.json', file: 'handlers/jwks.mjs', memory: 256, timeout: 6 },
} as const;
type FunctionName = keyof typeof FUNCTIONS;
const FUNCTION_NAMES = Object.keys(FUNCTIONS) as FunctionName[];
/** The functions with a throttles alarm (JWKS answers are cached by the verifiers: a throttle there is no outage). */
const THROTTLE_ALARMED: FunctionName[] = ['sendOtp', 'verifyOtp'];
/** API Gateway's hard limit for an HTTP API integration. */
const API_GATEWAY_LIMIT_S = 30;
/** A bundle that grew past this has swallowed something it should not (typescript alone is ~9 MB). */
const MAX_BUNDLE_BYTES = 1_500_000;
const TSX = join(REPO_ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs');

let prod: Packaged;
let dev: Packaged;
let prodEdge: Packaged;
let devEdge: Packaged;
let prodView: CfnTemplate;
let devView: CfnTemplate;
let prodEdgeView: CfnTemplate;
let devEdgeView: CfnTemplate;
const report: string[] = [];

beforeAll(async () => {
  const started = Date.now();
  // Four copies, four processes: the packages build in parallel.
  [prod, dev, prodEdge, devEdge] = await Promise.all([
    packageStage({ stage: 'prod', params: { alarmTopicArn: TOPIC, corsAllowedOrigins: ORIGINS.join(',') }, env: LEAKED_ENV }),
    packageStage({ stage: 'dev', env: { STARTMESSAGING_BASE_URL: 'http://127.0.0.1:9', SEND_COOLDOWN_SECONDS: '0' } }),
    // The other choices a prod deploy can make: the edge, an e-mail for alarms, no browsers, reserved
    // concurrency, an existing KMS key, the bot challenge.
    packageStage({
      stage: 'prod',
      params: {
        edge: 'cloudfront-waf',
        edgeWebAclArn: WEB_ACL,
        alarmEmail: 'ops@example.com',
        allowNoCors: 'true',
        sendOtpReservedConcurrency: '5',
        verifyOtpReservedConcurrency: '5',
        tableKmsKeyArn: EXISTING_KEY,
        challengeProvider: 'turnstile',
      },
    }),
    packageStage({ stage: 'dev', params: { edge: 'cloudfront-waf', edgeWebAclArn: WEB_ACL } }),
  ]);
  [prodView, devView, prodEdgeView, devEdgeView] = [prod, dev, prodEdge, devEdge].map((p) => deployedView(p.template)) as [CfnTemplate, CfnTemplate, CfnTemplate, CfnTemplate];
  report.push(`packaged prod, dev, prod+edge and dev+edge in ${[prod, dev, prodEdge, devEdge].map((p) => (p.run.ms / 1000).toFixed(1)).join(', ')} s (in parallel: ${((Date.now() - started) / 1000).toFixed(1)} s)`);
}, 300_000);

afterAll(() => {
  for (const p of [prod, dev, prodEdge, devEdge]) removeDir(p?.projectDir);
  if (report.length > 0) console.log(report.join('\n'));
});

// ----------------------------------------------------------------------------------------------- helpers

interface FunctionProps {
  Handler: string;
  Runtime: string;
  Architectures: string[];
  MemorySize: number;
  Timeout: number;
  ReservedConcurrentExecutions?: number;
  Environment: { Variables: Record<string, string> };
  Role: Json;
  Code: { S3Key: string };
  TracingConfig?: { Mode: string };
  Tags?: { Key: string; Value: string }[];
}
interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: Json;
  Condition?: Json;
}
interface MetricDataQuery {
  Id: string;
  Expression?: string;
  ReturnData?: boolean;
  MetricStat?: { Stat: string; Period: number; Metric: MetricSpec };
}
interface MetricSpec {
  Namespace: string;
  MetricName: string;
  Dimensions: { Name: string; Value: Json }[];
}
interface AlarmProps extends Partial<MetricSpec> {
  AlarmName: string;
  AlarmActions: Json[];
  OKActions: Json[];
  ComparisonOperator: string;
  Threshold: number;
  EvaluationPeriods: number;
  Period?: number;
  Statistic?: string;
  Metrics?: MetricDataQuery[];
}

const props = <T>(r: CfnResource | undefined): T => {
  if (r?.Properties === undefined) throw new Error('resource missing');
  return r.Properties as unknown as T;
};
const fn = (t: CfnTemplate, name: FunctionName) => props<FunctionProps>(t.Resources[FUNCTIONS[name].logicalId]);
const roleStatements = (t: CfnTemplate, name: FunctionName): Statement[] => {
  const role = props<{ Policies: { PolicyDocument: { Statement: Statement[] } }[] }>(t.Resources[FUNCTIONS[name].role]);
  return role.Policies.flatMap((p) => p.PolicyDocument.Statement);
};
const actionsOf = (s: Statement): string[] => (Array.isArray(s.Action) ? s.Action : [s.Action]);
const alarms = (t: CfnTemplate): [string, AlarmProps][] => resourcesOfType(t, 'AWS::CloudWatch::Alarm').map(([id, r]) => [id, props<AlarmProps>(r)]);
/** Every metric an alarm reads, whether it is a plain alarm or a metric-math one. */
const metricsOf = (a: AlarmProps): MetricSpec[] =>
  a.Metrics
    ? a.Metrics.flatMap((q) => (q.MetricStat ? [q.MetricStat.Metric] : []))
    : [{ Namespace: a.Namespace!, MetricName: a.MetricName!, Dimensions: a.Dimensions ?? [] }];
const zipOf = (p: Packaged, name: FunctionName): Buffer => readFileSync(join(p.artifactDir, `${name}.zip`));
const bundleOf = (p: Packaged, name: FunctionName): Buffer => {
  const zip = zipOf(p, name);
  const entry = listZip(zip).find((e) => e.name === FUNCTIONS[name].file);
  if (!entry) throw new Error(`${name}.zip has no ${FUNCTIONS[name].file}`);
  return readZipEntry(zip, entry);
};
const secretArn = (id: string) => ({ 'Fn::Sub': `arn:\${AWS::Partition}:secretsmanager:\${AWS::Region}:\${AWS::AccountId}:secret:${id}-??????` });
const logStatements = (stage: string, name: FunctionName) => [
  {
    Effect: 'Allow',
    Action: ['logs:CreateLogStream', 'logs:CreateLogGroup', 'logs:TagResource'],
    Resource: [{ 'Fn::Sub': `arn:\${AWS::Partition}:logs:\${AWS::Region}:\${AWS::AccountId}:log-group:/aws/lambda/otp-service-${stage}-${name}:*` }],
  },
  { Effect: 'Allow', Action: ['logs:PutLogEvents'], Resource: [{ 'Fn::Sub': `arn:\${AWS::Partition}:logs:\${AWS::Region}:\${AWS::AccountId}:log-group:/aws/lambda/otp-service-${stage}-${name}:*:*` }] },
];
const TABLE_STATEMENT = { Effect: 'Allow', Action: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'], Resource: { 'Fn::GetAtt': ['OtpTable', 'Arn'] } };
const kmsStatement = (key: Json) => ({
  Effect: 'Allow',
  Action: ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey', 'kms:DescribeKey'],
  Resource: key,
  Condition: { StringEquals: { 'kms:ViaService': { 'Fn::Sub': 'dynamodb.${AWS::Region}.amazonaws.com' } } },
});
const XRAY_STATEMENT = { Effect: 'Allow', Action: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'], Resource: '*' };
const secretsStatement = (...ids: string[]) => ({ Effect: 'Allow', Action: ['secretsmanager:GetSecretValue'], Resource: ids.map(secretArn) });

/**
 * The AWS calls in the code, read from the source: every `new XCommand(` under lib/, middleware/, handlers/.
 * A command missing here (a transaction, another service) fails the test: decide its IAM actions first.
 */
const SDK_COMMAND_ACTIONS: Record<string, string> = {
  GetCommand: 'dynamodb:GetItem',
  GetItemCommand: 'dynamodb:GetItem',
  PutCommand: 'dynamodb:PutItem',
  PutItemCommand: 'dynamodb:PutItem',
  UpdateCommand: 'dynamodb:UpdateItem',
  UpdateItemCommand: 'dynamodb:UpdateItem',
  DeleteCommand: 'dynamodb:DeleteItem',
  DeleteItemCommand: 'dynamodb:DeleteItem',
  QueryCommand: 'dynamodb:Query',
  ScanCommand: 'dynamodb:Scan',
  BatchGetCommand: 'dynamodb:BatchGetItem',
  BatchWriteCommand: 'dynamodb:BatchWriteItem',
  GetSecretValueCommand: 'secretsmanager:GetSecretValue',
};
const sourceFiles = (dir: string): string[] =>
  readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
const actionsUsedByCode = (): Set<string> => {
  const used = new Set<string>();
  for (const file of ['lib', 'middleware', 'handlers'].flatMap((d) => sourceFiles(join(REPO_ROOT, d)))) {
    const text = readFileSync(file, 'utf8');
    for (const [, command] of text.matchAll(/new (\w+Command)\(/g)) {
      const action = SDK_COMMAND_ACTIONS[command!];
      if (!action) throw new Error(`${file} sends ${command}: add its IAM action to deploy/stack.cjs and to this map`);
      used.add(action);
    }
    // @middy/secrets-manager calls GetSecretValue on our behalf.
    if (/from '@middy\/secrets-manager'/.test(text)) used.add('secretsmanager:GetSecretValue');
  }
  return used;
};

// ------------------------------------------------------------------------------------------ the templates

describe.each([
  ['prod', () => prodView],
  ['dev', () => devView],
])('the %s template', (stage, view) => {
  it('serves the three routes on one HTTP API (payload 2.0), each to its own function', () => {
    const t = view();
    const [[apiId, api]] = resourcesOfType(t, 'AWS::ApiGatewayV2::Api') as [[string, CfnResource]];
    expect(props<{ ProtocolType: string }>(api).ProtocolType).toBe('HTTP');
    const routes = resourcesOfType(t, 'AWS::ApiGatewayV2::Route').map(([, r]) => props<{ RouteKey: string; ApiId: Json; Target: Json }>(r));
    expect(routes.map((r) => r.RouteKey).sort()).toEqual(FUNCTION_NAMES.map((n) => FUNCTIONS[n].route).sort());
    for (const name of FUNCTION_NAMES) {
      const route = routes.find((r) => r.RouteKey === FUNCTIONS[name].route)!;
      expect(route.ApiId).toEqual({ Ref: apiId });
      const integrationId = JSON.stringify(route.Target).match(/"Ref":"(\w+)"/)?.[1] ?? '';
      const integration = props<{ IntegrationType: string; IntegrationUri: Json; PayloadFormatVersion: string; TimeoutInMillis: number }>(t.Resources[integrationId]);
      expect(integration).toMatchObject({ IntegrationType: 'AWS_PROXY', PayloadFormatVersion: '2.0', IntegrationUri: { 'Fn::GetAtt': [FUNCTIONS[name].logicalId, 'Arn'] } });
      // The function gives up (with our own JSON answer) before the gateway does.
      expect(fn(t, name).Timeout * 1000).toBeLessThan(integration.TimeoutInMillis);
    }
  });

  it('runs nodejs22.x on arm64 with the chosen memory and timeouts, traced by Lambda, tagged', () => {
    const t = view();
    for (const name of FUNCTION_NAMES) {
      const f = fn(t, name);
      expect({ name, runtime: f.Runtime, arch: f.Architectures, memory: f.MemorySize, timeout: f.Timeout, handler: f.Handler, tracing: f.TracingConfig }).toEqual({
        name,
        runtime: 'nodejs22.x',
        arch: ['arm64'],
        memory: FUNCTIONS[name].memory,
        timeout: FUNCTIONS[name].timeout,
        handler: FUNCTIONS[name].file.replace(/\.mjs$/, '.handler'),
        tracing: { Mode: 'Active' },
      });
      expect(f.Timeout).toBeLessThan(API_GATEWAY_LIMIT_S);
      expect(f.Tags).toEqual(expect.arrayContaining([{ Key: 'service', Value: 'otp-service' }, { Key: 'stage', Value: stage }]));
    }
    // API.md: a provider that never answers gets 504 within 3 × STARTMESSAGING_TIMEOUT_MS + 3 s. sendOtp must
    // outlive that plus the 1.5 s the handler keeps back to answer after the provider's deadline.
    const providerWorstCaseS = (3 * Number(fn(t, 'sendOtp').Environment.Variables.STARTMESSAGING_TIMEOUT_MS)) / 1000 + 3;
    expect(fn(t, 'sendOtp').Timeout).toBeGreaterThan(providerWorstCaseS + 1.5);
  });

  it('gives every function every variable of API.md, valid for lib/config, plus the Powertools ones', () => {
    const t = view();
    for (const name of FUNCTION_NAMES) {
      const env = fn(t, name).Environment.Variables;
      for (const key of [...Object.keys(API_MD_DEFAULTS), 'OTP_TABLE', 'CORS_ALLOWED_ORIGINS', 'POWERTOOLS_SERVICE_NAME', 'POWERTOOLS_METRICS_NAMESPACE', 'POWERTOOLS_LOG_LEVEL', 'ORIGIN_VERIFY_SECRET_ID']) {
        expect({ name, key, present: typeof env[key] === 'string' }).toEqual({ name, key, present: true });
      }
      expect(() => loadConfig(env)).not.toThrow();
      expect(env.OTP_TABLE).toBe(`otp-${stage}`);
      expect(env.POWERTOOLS_SERVICE_NAME).toBe('otp-service');
      expect(env.POWERTOOLS_METRICS_NAMESPACE).toBe(`OtpService/${stage}`);
      expect(env.POWERTOOLS_LOG_LEVEL).toBe('INFO');
      // No edge: no origin check.
      expect(env.ORIGIN_VERIFY_SECRET_ID).toBe('');
    }
    expect(fn(t, 'sendOtp').Environment).toEqual(fn(t, 'verifyOtp').Environment);
    expect(fn(t, 'jwks').Environment).toEqual(fn(t, 'verifyOtp').Environment);
  });

  it('keeps the table on demand, keyed by pk, with TTL on ttl, point-in-time recovery and its own KMS key', () => {
    const t = view();
    const [[, table], ...others] = resourcesOfType(t, 'AWS::DynamoDB::Table') as [[string, CfnResource]];
    expect(others).toHaveLength(0);
    expect(props(table)).toMatchObject({
      TableName: `otp-${stage}`,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true },
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: { 'Fn::GetAtt': ['OtpTableKey', 'Arn'] } },
    });
    const key = t.Resources.OtpTableKey!;
    expect(key.Type).toBe('AWS::KMS::Key');
    // The key lives as long as the table: a retained table with a deleted key could never be read again.
    expect({ deletion: key.DeletionPolicy, replace: key.UpdateReplacePolicy }).toEqual({ deletion: table.DeletionPolicy, replace: table.UpdateReplacePolicy });
    expect(props(key)).toEqual({
      Description: `otp-service-${stage}: DynamoDB table encryption`,
      EnableKeyRotation: true,
      PendingWindowInDays: 30,
      KeyPolicy: {
        Version: '2012-10-17',
        Statement: [{ Sid: 'EnableIamPoliciesOfThisAccount', Effect: 'Allow', Principal: { AWS: { 'Fn::Sub': 'arn:${AWS::Partition}:iam::${AWS::AccountId}:root' } }, Action: 'kms:*', Resource: '*' }],
      },
    });
  });

  it('gives each function its own role with exactly what its code calls: table, secrets, its own logs', () => {
    const t = view();
    const key = { 'Fn::GetAtt': ['OtpTableKey', 'Arn'] };
    const expected: Record<FunctionName, unknown[]> = {
      sendOtp: [...logStatements(stage, 'sendOtp'), TABLE_STATEMENT, kmsStatement(key), secretsStatement('sm/api-key', 'otp/hash-key'), XRAY_STATEMENT],
      verifyOtp: [...logStatements(stage, 'verifyOtp'), TABLE_STATEMENT, kmsStatement(key), secretsStatement('otp/hash-key', 'otp/token-key'), XRAY_STATEMENT],
      jwks: [...logStatements(stage, 'jwks'), secretsStatement('otp/token-key'), XRAY_STATEMENT],
    };
    for (const name of FUNCTION_NAMES) {
      expect({ name, statements: roleStatements(t, name) }).toEqual({ name, statements: expected[name] });
      expect(fn(t, name).Role).toEqual({ 'Fn::Sub': `\${${FUNCTIONS[name].role}.Arn}` });
      const role = props<{ AssumeRolePolicyDocument: Json; ManagedPolicyArns?: unknown }>(t.Resources[FUNCTIONS[name].role]);
      expect(role.ManagedPolicyArns).toBeUndefined();
      expect(role.AssumeRolePolicyDocument).toEqual({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: ['lambda.amazonaws.com'] }, Action: ['sts:AssumeRole'] }] });
    }
    // The secret ids in the roles are the ones the functions are told to read.
    const env = fn(t, 'sendOtp').Environment.Variables;
    expect(JSON.stringify(roleStatements(t, 'sendOtp'))).toContain(`secret:${env.API_KEY_SECRET_ID}-??????`);
    expect(JSON.stringify(roleStatements(t, 'verifyOtp'))).toContain(`secret:${env.TOKEN_KEY_SECRET_ID}-??????`);
    // Every action the code uses is granted to some role; no role grants an action the code never calls.
    const granted = new Set(FUNCTION_NAMES.flatMap((n) => roleStatements(t, n)).flatMap(actionsOf).filter((a) => /^(dynamodb|secretsmanager):/.test(a)));
    expect(granted).toEqual(actionsUsedByCode());
    // No shared role, and no wildcard but X-Ray's, which has no resource-level permissions.
    expect(resourcesOfType(t, 'AWS::IAM::Role').map(([id]) => id).sort()).toEqual(['JwksRole', 'SendOtpRole', 'VerifyOtpRole']);
    for (const s of FUNCTION_NAMES.flatMap((n) => roleStatements(t, n)).filter((x) => x !== XRAY_STATEMENT && !actionsOf(x).some((a) => a.startsWith('xray:')))) {
      for (const action of actionsOf(s)) expect(action).not.toContain('*');
      for (const resource of stringsIn(s.Resource)) expect(resource.replace(/:\*(:\*)?$/, '')).not.toContain('*');
    }
  });

  it('retains the log groups in prod (with a retention on each); dev deletes them with the stack', () => {
    const t = view();
    const groups = resourcesOfType(t, 'AWS::Logs::LogGroup');
    expect(groups.map(([, r]) => props<{ LogGroupName: string }>(r).LogGroupName).sort()).toEqual(
      [`/aws/http-api/otp-service-${stage}`, ...FUNCTION_NAMES.map((n) => `/aws/lambda/otp-service-${stage}-${n}`)].sort(),
    );
    for (const [, g] of groups) {
      expect(props<{ RetentionInDays: number }>(g).RetentionInDays).toBe(stage === 'prod' ? 30 : 7);
      const policy = stage === 'prod' ? 'Retain' : 'Delete';
      expect({ deletion: g.DeletionPolicy, replace: g.UpdateReplacePolicy }).toEqual({ deletion: policy, replace: policy });
    }
    expect(resourcesOfType(t, 'AWS::Lambda::Alias')).toHaveLength(0);
    expect(JSON.stringify(t)).not.toContain('ProvisionedConcurrency');
  });

  it('brakes the HTTP API stage at 50 requests/s (burst 100) and logs request id, IP, route, status, latencies, integration error', () => {
    const [[, stageResource]] = resourcesOfType(view(), 'AWS::ApiGatewayV2::Stage') as [[string, CfnResource]];
    const s = props<{ DefaultRouteSettings: unknown; AccessLogSettings: { Format: string; DestinationArn: Json } }>(stageResource);
    expect(s.DefaultRouteSettings).toEqual({ DetailedMetricsEnabled: false, ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 });
    expect(s.AccessLogSettings.DestinationArn).toEqual({ 'Fn::GetAtt': ['HttpApiLogGroup', 'Arn'] });
    expect(JSON.parse(s.AccessLogSettings.Format)).toMatchObject({
      requestId: '$context.requestId',
      ip: '$context.identity.sourceIp',
      routeKey: '$context.routeKey',
      status: '$context.status',
      latencyMs: '$context.responseLatency',
      integrationLatencyMs: '$context.integrationLatency',
      integrationError: '$context.integrationErrorMessage',
    });
  });

  it('has each alarm, all notifying one SNS topic on ALARM and on OK', () => {
    const t = view();
    const names = alarms(t).map(([, a]) => a.AlarmName).sort();
    expect(names).toEqual(
      [
        'budget-exhausted', 'challenge-failures', 'challenge-unavailable', 'daily-budget', 'http-5xx', 'jwks-duration', 'jwks-errors', 'new-number-budget',
        'provider-error-rate', 'provider-throttled', 'secrets-failure', 'sendOtp-duration', 'sendOtp-errors', 'sendOtp-throttles', 'store-failure',
        'table-throttled', 'verify-conversion', 'verify-failures', 'verifyOtp-duration', 'verifyOtp-errors', 'verifyOtp-throttles',
      ]
        .map((n) => `otp-service-${stage}-${n}`)
        .sort(),
    );
    const topic = stage === 'prod' ? TOPIC : { Ref: 'AlarmTopic' };
    for (const [, a] of alarms(t)) {
      expect({ alarm: a.AlarmName, actions: a.AlarmActions, ok: a.OKActions }).toEqual({ alarm: a.AlarmName, actions: [topic], ok: [topic] });
    }
    // prod names its own topic and gets none created; dev, given none, gets one to subscribe to.
    expect(resourcesOfType(t, 'AWS::SNS::Topic').map(([id]) => id)).toEqual(stage === 'prod' ? [] : ['AlarmTopic']);
    expect(resourcesOfType(t, 'AWS::SNS::Subscription')).toEqual([]);
    expect(t.Outputs?.AlarmTopicArn?.Value).toEqual(topic);
  });

  it('writes alarms CloudWatch accepts: well-formed metric math, one period per alarm, at most one day', () => {
    for (const [, a] of alarms(view())) {
      if (!a.Metrics) {
        expect((a.Period ?? 0) * a.EvaluationPeriods).toBeLessThanOrEqual(86400);
        continue;
      }
      const ids = new Set(a.Metrics.map((q) => q.Id));
      expect(ids.size).toBe(a.Metrics.length);
      expect(a.Metrics.filter((q) => q.ReturnData === true)).toHaveLength(1);
      expect(a.Metrics.filter((q) => q.MetricStat).length).toBeLessThanOrEqual(10);
      for (const q of a.Metrics) {
        expect(q.Id).toMatch(/^[a-z][A-Za-z0-9_]*$/);
        for (const ref of q.Expression?.match(/\b[a-z][A-Za-z0-9_]*\b/g) ?? []) expect({ alarm: a.AlarmName, ref, known: ids.has(ref) }).toEqual({ alarm: a.AlarmName, ref, known: true });
      }
      const periods = new Set(a.Metrics.flatMap((q) => (q.MetricStat ? [q.MetricStat.Period] : [])));
      expect(periods.size).toBe(1);
      expect([...periods][0]! * a.EvaluationPeriods).toBeLessThanOrEqual(86400);
    }
  });

  it("reads the service's metrics where Powertools writes them: the stage's namespace, dimension `service`", () => {
    const t = view();
    const env = fn(t, 'sendOtp').Environment.Variables;
    const ruleNames = new Set(sendRules(loadConfig(env)).map((r) => r.name));
    const custom = alarms(t).flatMap(([, a]) => metricsOf(a)).filter((m) => !m.Namespace.startsWith('AWS/'));
    expect(custom.length).toBeGreaterThan(0);
    for (const m of custom) {
      expect(m.Namespace).toBe(env.POWERTOOLS_METRICS_NAMESPACE);
      expect(m.Dimensions[0]).toEqual({ Name: 'service', Value: env.POWERTOOLS_SERVICE_NAME });
      const extra = m.Dimensions.slice(1);
      if (m.MetricName === 'UpstreamError') expect(extra.map((d) => d.Name)).toEqual(['Kind']);
      else if (m.MetricName === 'RateLimited') {
        expect(extra.map((d) => d.Name)).toEqual(['Rule']);
        expect(ruleNames.has(String(extra[0]!.Value))).toBe(true);
      } else {
        expect(['OtpSent', 'OtpVerified', 'OtpVerifyFailed', 'ChallengeFailed', 'ChallengeUnavailable', 'NewNumberSent']).toContain(m.MetricName);
        expect(extra).toEqual([]);
      }
    }
    for (const m of alarms(t).flatMap(([, a]) => metricsOf(a)).filter((x) => x.Namespace === 'AWS/Lambda')) {
      expect(m.Dimensions).toHaveLength(1);
      expect(FUNCTION_NAMES.map((n) => ({ Ref: FUNCTIONS[n].logicalId }))).toContainEqual(m.Dimensions[0]!.Value);
    }
    for (const m of alarms(t).flatMap(([, a]) => metricsOf(a)).filter((x) => x.Namespace === 'AWS/ApiGateway')) {
      expect(m.Dimensions).toEqual([{ Name: 'ApiId', Value: { Ref: 'HttpApi' } }]);
    }
    // DynamoDB publishes ThrottledRequests per table and operation: one per operation the roles grant.
    const dynamo = alarms(t).flatMap(([, a]) => metricsOf(a)).filter((x) => x.Namespace === 'AWS/DynamoDB');
    expect(dynamo.map((m) => m.MetricName)).toEqual(['ThrottledRequests', 'ThrottledRequests', 'ThrottledRequests', 'ThrottledRequests']);
    expect(dynamo.map((m) => `dynamodb:${String(m.Dimensions[1]!.Value)}`).sort()).toEqual([...TABLE_STATEMENT.Action].sort());
    for (const m of dynamo) expect(m.Dimensions.map((d) => d.Name)).toEqual(['TableName', 'Operation']);
    for (const m of dynamo) expect(m.Dimensions[0]!.Value).toEqual({ Ref: 'OtpTable' });
  });

  it('alarms on every provider failure the code counts, the budgets from the same params, conversion, and durations near each timeout', () => {
    const t = view();
    const env = fn(t, 'sendOtp').Environment.Variables;
    const byName = new Map(alarms(t).map(([, a]) => [a.AlarmName.replace(`otp-service-${stage}-`, ''), a]));

    // Every UpstreamError kind of lib/errors.ts, the timeout lib/otp/send.ts counts and the empty wallet.
    const kindsSource = readFileSync(join(REPO_ROOT, 'lib', 'errors.ts'), 'utf8').match(/export type UpstreamErrorKind\s*=([^;]+);/)?.[1] ?? '';
    const kinds = [...kindsSource.matchAll(/'([a-z_]+)'/g)].map((m) => m[1]!);
    expect(kinds.length).toBeGreaterThan(0);
    const provider = byName.get('provider-error-rate')!;
    const watched = metricsOf(provider).filter((m) => m.MetricName === 'UpstreamError').map((m) => String(m.Dimensions[1]!.Value));
    expect(new Set(watched)).toEqual(new Set([...kinds, 'timeout', 'wallet']));
    expect(metricsOf(provider).filter((m) => m.MetricName === 'OtpSent')).toHaveLength(1);
    // Provider throttling, the store and the secrets: any single one alarms.
    for (const [alarm, kind] of [['provider-throttled', 'rate_limited'], ['store-failure', 'store'], ['secrets-failure', 'secrets']] as const) {
      expect(byName.get(alarm)).toMatchObject({ MetricName: 'UpstreamError', Dimensions: [{ Name: 'service', Value: 'otp-service' }, { Name: 'Kind', Value: kind }], Statistic: 'Sum', Period: 300, Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold' });
    }
    expect(byName.get('challenge-unavailable')).toMatchObject({ MetricName: 'ChallengeUnavailable', Threshold: 1 });
    expect(byName.get('challenge-failures')).toMatchObject({ MetricName: 'ChallengeFailed', Threshold: 50, Period: 300 });
    expect(byName.get('verify-failures')).toMatchObject({ MetricName: 'OtpVerifyFailed', Threshold: 100, Period: 300 });

    const budget = byName.get('daily-budget')!;
    expect(budget.Metrics!.find((q) => q.ReturnData)!.Expression).toBe(`100 * FILL(sent, 0) / ${env.SEND_BUDGET_PER_DAY}`);
    expect(budget.Metrics!.find((q) => q.MetricStat)!.MetricStat).toMatchObject({ Stat: 'Sum', Period: 86400, Metric: { MetricName: 'OtpSent' } });
    expect(budget).toMatchObject({ Threshold: 80, ComparisonOperator: 'GreaterThanOrEqualToThreshold' });
    // The new-number pool: lib/config.ts's own default (60 % of the budget, rounded down) when no param sets it.
    const pool = (loadConfig(env) as { sendBudgetNewNumbersPerDay?: number }).sendBudgetNewNumbersPerDay ?? Math.floor(0.6 * Number(env.SEND_BUDGET_PER_DAY));
    const fresh = byName.get('new-number-budget')!;
    expect(fresh.Metrics!.find((q) => q.ReturnData)!.Expression).toBe(`100 * FILL(fresh, 0) / ${pool}`);
    expect(pool).toBe(6000);
    expect(fresh.Metrics!.find((q) => q.MetricStat)!.MetricStat).toMatchObject({ Stat: 'Sum', Period: 86400, Metric: { MetricName: 'NewNumberSent' } });
    expect(fresh).toMatchObject({ Threshold: 80, ComparisonOperator: 'GreaterThanOrEqualToThreshold' });

    const conversion = byName.get('verify-conversion')!;
    expect(conversion).toMatchObject({ Threshold: 40, ComparisonOperator: 'LessThanThreshold' });
    expect(conversion.Metrics!.find((q) => q.ReturnData)!.Expression).toBe('IF(FILL(sent, 0) >= 50, 100 * FILL(verified, 0) / FILL(sent, 0), 100)');
    expect(metricsOf(conversion).map((m) => m.MetricName).sort()).toEqual(['OtpSent', 'OtpVerified']);
    expect(new Set(conversion.Metrics!.flatMap((q) => (q.MetricStat ? [q.MetricStat.Period] : [])))).toEqual(new Set([3600]));

    expect(metricsOf(byName.get('http-5xx')!).map((m) => m.MetricName).sort()).toEqual(['5xx', 'Count']);
    for (const f of FUNCTION_NAMES) {
      expect(metricsOf(byName.get(`${f}-errors`)!)[0]).toMatchObject({ Namespace: 'AWS/Lambda', MetricName: 'Errors' });
      // The slowest invocation in 5 minutes at 80 % of this function's own timeout.
      expect(byName.get(`${f}-duration`)).toMatchObject({ Namespace: 'AWS/Lambda', MetricName: 'Duration', Statistic: 'Maximum', Period: 300, Threshold: fn(t, f).Timeout * 1000 * 0.8 });
    }
    for (const f of THROTTLE_ALARMED) expect(metricsOf(byName.get(`${f}-throttles`)!)[0]).toMatchObject({ Namespace: 'AWS/Lambda', MetricName: 'Throttles' });
  });

  it('is plain HTTP API by default: no CloudFront, no web ACL', () => {
    const t = view();
    expect(Object.values(t.Resources).filter((r) => /CloudFront|WAF/.test(r.Type))).toEqual([]);
    expect(t.Outputs?.EdgeUrl).toBeUndefined();
  });
});

describe('what differs between prod and dev', () => {
  it('prod keeps the table: deletion protection and Retain on delete and on replace; dev stays deletable', () => {
    const table = (t: CfnTemplate) => resourcesOfType(t, 'AWS::DynamoDB::Table')[0]![1];
    expect(table(prodView)).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain', Properties: { DeletionProtectionEnabled: true } });
    expect(table(devView)).toMatchObject({ DeletionPolicy: 'Delete', UpdateReplacePolicy: 'Delete', Properties: { DeletionProtectionEnabled: false } });
  });

  it('reserves no concurrency unless asked (AWS keeps 100 unreserved: docs/deploy.md); asked, exactly that', () => {
    for (const name of FUNCTION_NAMES) {
      expect(fn(prodView, name).ReservedConcurrentExecutions).toBeUndefined();
      expect(fn(devView, name).ReservedConcurrentExecutions).toBeUndefined();
    }
    expect(fn(prodEdgeView, 'sendOtp').ReservedConcurrentExecutions).toBe(5);
    expect(fn(prodEdgeView, 'verifyOtp').ReservedConcurrentExecutions).toBe(5);
    expect(fn(prodEdgeView, 'jwks').ReservedConcurrentExecutions).toBeUndefined();
  });

  it('prod answers browsers from its origins only (CORS from the same list the functions get); dev, with none, has no CORS', () => {
    const api = (t: CfnTemplate) => props<{ CorsConfiguration?: unknown }>(resourcesOfType(t, 'AWS::ApiGatewayV2::Api')[0]![1]);
    expect(api(prodView).CorsConfiguration).toEqual({
      AllowOrigins: ORIGINS,
      AllowHeaders: ['content-type', 'idempotency-key'],
      AllowMethods: ['GET', 'POST', 'OPTIONS'],
      ExposeHeaders: ['retry-after'],
      MaxAge: 600,
    });
    for (const name of FUNCTION_NAMES) expect(fn(prodView, name).Environment.Variables.CORS_ALLOWED_ORIGINS).toBe(ORIGINS.join(','));
    expect(api(devView).CorsConfiguration).toBeUndefined();
    expect(fn(devView, 'sendOtp').Environment.Variables.CORS_ALLOWED_ORIGINS).toBe('');
    // prod without CORS only when asked for explicitly (allowNoCors=true, the edge package).
    expect(api(prodEdgeView).CorsConfiguration).toBeUndefined();
  });

  it("prod is built from serverless.yml and --param alone: the packaging shell's variables do not leak in", () => {
    const env = fn(prodView, 'sendOtp').Environment.Variables;
    expect(env).toMatchObject({ ...API_MD_DEFAULTS, OTP_TABLE: 'otp-prod', POWERTOOLS_LOG_LEVEL: 'INFO' });
    expect(JSON.stringify(prod.template)).not.toContain('leaked');
    expect(JSON.stringify(prod.template)).not.toContain('127.0.0.1');
  });

  it('dev still follows the environment, as `npm start` and `invoke local` need', () => {
    expect(fn(devView, 'sendOtp').Environment.Variables).toMatchObject({ STARTMESSAGING_BASE_URL: 'http://127.0.0.1:9', SEND_COOLDOWN_SECONDS: '0' });
  });

  it('tags the stack: the framework passes service and stage to CloudFormation as stack tags', () => {
    const state = JSON.parse(readFileSync(join(prod.artifactDir, 'serverless-state.json'), 'utf8')) as { service: { provider: { stackTags: unknown } } };
    expect(state.service.provider.stackTags).toEqual({ service: 'otp-service', stage: 'prod' });
  });
});

describe('the other prod choices: alarm e-mail, existing KMS key, bot challenge', () => {
  it('subscribes alarmEmail to the topic the stack creates, and every alarm notifies that topic', () => {
    const t = prodEdgeView;
    expect(resourcesOfType(t, 'AWS::SNS::Topic').map(([id]) => id)).toEqual(['AlarmTopic']);
    expect(resourcesOfType(t, 'AWS::SNS::Subscription').map(([, r]) => props(r))).toEqual([{ TopicArn: { Ref: 'AlarmTopic' }, Protocol: 'email', Endpoint: 'ops@example.com' }]);
    for (const [, a] of alarms(t)) expect(a.AlarmActions).toEqual([{ Ref: 'AlarmTopic' }]);
  });

  it('encrypts the table with tableKmsKeyArn when given (no key of its own), and the roles use that key', () => {
    const t = prodEdgeView;
    expect(props<{ SSESpecification: unknown }>(t.Resources.OtpTable).SSESpecification).toEqual({ SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: EXISTING_KEY });
    expect(resourcesOfType(t, 'AWS::KMS::Key')).toEqual([]);
    expect(roleStatements(t, 'verifyOtp')).toContainEqual(kmsStatement(EXISTING_KEY));
  });

  it('grants sendOtp (only) the challenge secret when a challenge provider is configured', () => {
    expect(roleStatements(prodEdgeView, 'sendOtp')).toContainEqual(secretsStatement('sm/api-key', 'otp/hash-key', 'otp/challenge-secret', 'otp/origin-verify'));
    expect(roleStatements(prodEdgeView, 'verifyOtp')).toContainEqual(secretsStatement('otp/hash-key', 'otp/token-key', 'otp/origin-verify'));
    expect(roleStatements(prodEdgeView, 'jwks')).toContainEqual(secretsStatement('otp/token-key', 'otp/origin-verify'));
  });
});

// -------------------------------------------------------------------------------------------- the edge

describe.each([
  ['prod', () => prodEdgeView],
  ['dev', () => devEdgeView],
])('the %s template with --param edge=cloudfront-waf', (stage, view) => {
  it('puts CloudFront with the us-east-1 web ACL in front of the HTTP API, adding the origin-verify header from the secret', () => {
    const t = view();
    const [[, dist], ...more] = resourcesOfType(t, 'AWS::CloudFront::Distribution') as [[string, CfnResource]];
    expect(more).toHaveLength(0);
    const config = props<{ DistributionConfig: Record<string, Json> }>(dist).DistributionConfig as Record<string, Json> & {
      Origins: { DomainName: Json; CustomOriginConfig: Json; OriginCustomHeaders: Json }[];
      DefaultCacheBehavior: Record<string, Json>;
    };
    expect(config.WebACLId).toBe(WEB_ACL);
    expect(config.Origins).toHaveLength(1);
    expect(config.Origins[0]!.DomainName).toEqual({ 'Fn::Sub': '${HttpApi}.execute-api.${AWS::Region}.amazonaws.com' });
    expect(config.Origins[0]!.CustomOriginConfig).toMatchObject({ OriginProtocolPolicy: 'https-only' });
    // The value is resolved by CloudFormation at deploy time: never in the template, the artifact or the repo.
    expect(config.Origins[0]!.OriginCustomHeaders).toEqual([{ HeaderName: 'x-origin-verify', HeaderValue: '{{resolve:secretsmanager:otp/origin-verify:SecretString}}' }]);
    expect(config.DefaultCacheBehavior).toMatchObject({ ViewerProtocolPolicy: 'https-only', CachePolicyId: '4135ea2d-6df8-44a3-9df3-4b5a84be39ad', OriginRequestPolicyId: { Ref: 'EdgeOriginRequestPolicy' } });
    expect(config.DefaultCacheBehavior.AllowedMethods).toEqual(expect.arrayContaining(['GET', 'POST', 'OPTIONS']));
    // CloudFront-Viewer-Address reaches the functions (per-IP limits); the viewer's Host does not (API Gateway routes by its own).
    const headers = props<{ OriginRequestPolicyConfig: { HeadersConfig: { HeaderBehavior: string; Headers: string[] } } }>(t.Resources.EdgeOriginRequestPolicy).OriginRequestPolicyConfig.HeadersConfig;
    expect(headers.HeaderBehavior).toBe('whitelist');
    expect(headers.Headers).toEqual(expect.arrayContaining(['CloudFront-Viewer-Address', 'content-type', 'idempotency-key', 'origin']));
    expect(headers.Headers.map((h) => h.toLowerCase())).not.toContain('host');
    expect(t.Outputs?.EdgeUrl?.Value).toEqual({ 'Fn::Sub': 'https://${EdgeDistribution.DomainName}' });
  });

  it('tells every function to check the header (ORIGIN_VERIFY_SECRET_ID) and lets each role read that secret', () => {
    const t = view();
    for (const name of FUNCTION_NAMES) {
      expect(fn(t, name).Environment.Variables.ORIGIN_VERIFY_SECRET_ID).toBe('otp/origin-verify');
      expect(JSON.stringify(roleStatements(t, name))).toContain('secret:otp/origin-verify-??????');
    }
    expect(loadConfig(fn(t, 'sendOtp').Environment.Variables).originVerifySecretId).toBe('otp/origin-verify');
    void stage;
  });
});

describe('deploy/edge-waf.yml, the web ACL (us-east-1)', () => {
  interface WafRule {
    Name: string;
    Priority: number;
    Action?: Json;
    OverrideAction?: Json;
    Statement: Record<string, Json>;
  }
  const waf = loadCfnYaml(join(REPO_ROOT, 'deploy', 'edge-waf.yml')) as { Resources: { WebAcl: { Type: string; Properties: { Scope: string; DefaultAction: Json; Rules: WafRule[] } } }; Rules: Json };

  it('is CLOUDFRONT-scoped, only deployable in us-east-1, with a per-IP rate rule, the allowed countries and AWS common rules', () => {
    const acl = waf.Resources.WebAcl;
    expect(acl.Type).toBe('AWS::WAFv2::WebACL');
    expect(acl.Properties.Scope).toBe('CLOUDFRONT');
    expect(JSON.stringify(waf.Rules)).toContain('us-east-1');
    const byName = Object.fromEntries(acl.Properties.Rules.map((r) => [r.Name, r]));
    expect(byName['rate-per-ip']).toMatchObject({ Action: { Block: {} }, Statement: { RateBasedStatement: { AggregateKeyType: 'IP', EvaluationWindowSec: 300, Limit: { Ref: 'RequestsPerIpPer5Min' } } } });
    expect(byName['allowed-countries-only']).toMatchObject({ Action: { Block: {} }, Statement: { NotStatement: { Statement: { GeoMatchStatement: { CountryCodes: { Ref: 'AllowedCountries' } } } } } });
    expect(byName['aws-common-rule-set']).toMatchObject({ OverrideAction: { None: {} }, Statement: { ManagedRuleGroupStatement: { VendorName: 'AWS', Name: 'AWSManagedRulesCommonRuleSet' } } });
    expect(new Set(acl.Properties.Rules.map((r) => r.Priority)).size).toBe(3);
  });
});

// ------------------------------------------------------------------------------------ AWS's own linter

describe('cfn-lint (AWS CloudFormation Linter)', () => {
  const cfnLint = (args: string[]) => spawnSync('cfn-lint', args, { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000 });

  it('is installed: this suite fails rather than skip without it', () => {
    const version = cfnLint(['--version']);
    expect({ error: version.error?.message, status: version.status }).toEqual({ error: undefined, status: 0 });
    expect(version.stdout).toMatch(/^cfn-lint 1\./);
    report.push(version.stdout.trim());
  });

  it('finds no error and no warning in the four packaged templates and deploy/edge-waf.yml (.cfnlintrc ignores nothing)', () => {
    expect(readFileSync(join(REPO_ROOT, '.cfnlintrc'), 'utf8')).toMatch(/^ignore_checks: \[\]$/m);
    const templates = [prod, dev, prodEdge, devEdge].map((p) => join(p.artifactDir, 'cloudformation-template-update-stack.json'));
    const main = cfnLint(['--regions', 'ap-south-1', '--format', 'parseable', '--', ...templates]);
    expect({ status: main.status, findings: main.stdout.trim(), stderr: main.stderr.trim() }).toEqual({ status: 0, findings: '', stderr: '' });
    const edge = cfnLint(['--regions', 'us-east-1', '--format', 'parseable', '--', 'deploy/edge-waf.yml']);
    expect({ status: edge.status, findings: edge.stdout.trim(), stderr: edge.stderr.trim() }).toEqual({ status: 0, findings: '', stderr: '' });
  });

  it('does find problems (the linter is really looking): a template with the old fixed condition and its "" branch fails', () => {
    const broken = JSON.parse(readFileSync(join(prod.artifactDir, 'cloudformation-template-update-stack.json'), 'utf8')) as CfnTemplate & { Conditions?: Record<string, Json> };
    broken.Conditions = { CreateAlarmTopic: { 'Fn::Equals': ['', 'arn:aws:sns:ap-south-1:123456789012:x'] } };
    (broken.Resources.ProviderThrottledAlarm!.Properties as Record<string, Json>).AlarmActions = [{ 'Fn::If': ['CreateAlarmTopic', 'arn:aws:sns:ap-south-1:123456789012:x', ''] }];
    const file = join(prod.projectDir, '.tmp', 'broken.json');
    writeFileSync(file, JSON.stringify(broken));
    const run = cfnLint(['--regions', 'ap-south-1', '--format', 'parseable', '--', file]);
    expect(run.status).not.toBe(0);
    expect(run.stdout).toMatch(/W8003/);
  });
});

// --------------------------------------------------------------------- bad params stop the package early

describe('deploy-time checks: a bad param stops `serverless package` before anything is built, naming it', () => {
  const GOOD = { alarmTopicArn: TOPIC, corsAllowedOrigins: ORIGINS.join(',') };
  const cases: [string, string, Record<string, string>, RegExp][] = [
    ['an OTP length lib/config.ts refuses', 'prod', { ...GOOD, otpLength: '12' }, /otpLength.*OTP_LENGTH must be a whole number from 4 to 8, got "12"/],
    ['a CORS origin without a scheme', 'prod', { ...GOOD, corsAllowedOrigins: 'shop.example' }, /corsAllowedOrigins.*CORS_ALLOWED_ORIGINS must be origins like/],
    ['prod with no CORS origins and no allowNoCors', 'prod', { alarmTopicArn: TOPIC }, /corsAllowedOrigins is empty in prod/],
    ['prod with nowhere for alarms to go', 'prod', { corsAllowedOrigins: ORIGINS.join(',') }, /prod needs an alarm destination: --param alarmTopicArn=.* or --param alarmEmail=/],
    ['an alarm topic that is not an SNS ARN', 'dev', { alarmTopicArn: 'ops-alerts' }, /alarmTopicArn must be an SNS topic ARN/],
    ['the edge without its web ACL', 'dev', { edge: 'cloudfront-waf' }, /edge=cloudfront-waf needs edgeWebAclArn/],
    ['reserved concurrency of 0', 'dev', { sendOtpReservedConcurrency: '0' }, /sendOtpReservedConcurrency must be a whole number/],
    ['a daily budget of zero in dev too', 'dev', { sendBudgetPerDay: '0' }, /sendBudgetPerDay.*SEND_BUDGET_PER_DAY must be a whole number/],
  ];
  let results: { code: number | null; out: string; built: boolean; ms: number }[] = [];

  beforeAll(async () => {
    // One copy is enough: each run fails while serverless.yml is resolved, before it writes anything.
    const dir = copyProject();
    try {
      const refuse = async (i: number) => {
        const [, stage, params] = cases[i]!;
        const artifact = join(dir, `.artifact-${i}`);
        const args = Object.entries(params).flatMap(([k, v]) => ['--param', `${k}=${v}`]);
        const run = await runServerless(['package', '--stage', stage, '--package', artifact, ...args], { cwd: dir, env: childEnv({ TMPDIR: tmpFor(dir) }), timeoutMs: 120_000 });
        results[i] = { code: run.code, out: `${run.stdout}\n${run.stderr}`, built: existsSync(artifact) || existsSync(join(dir, '.esbuild')), ms: run.ms };
      };
      // Three at a time: the machine is shared, and each run is a whole osls start.
      let next = 0;
      await Promise.all([0, 1, 2].map(async () => {
        while (next < cases.length) await refuse(next++);
      }));
      report.push(`deploy-time checks: ${results.length} refused packages, slowest ${(Math.max(...results.map((r) => r.ms)) / 1000).toFixed(1)} s`);
    } finally {
      removeDir(dir);
    }
  }, 180_000);

  it.each(cases.map((c, i) => [c[0], i] as const))('%s', (_, i) => {
    const [, , , message] = cases[i]!;
    const r = results[i]!;
    expect({ code: r.code, built: r.built }).toEqual({ code: 1, built: false });
    expect(r.out).toContain('Deploy-time check failed');
    expect(r.out).toMatch(message);
  });
});

// ------------------------------------------------------------------------------------------ the artifacts

describe('the function artifacts', () => {
  it.each(FUNCTION_NAMES)('%s.zip holds one bundled handler and nothing else, for prod and dev alike', (name) => {
    for (const p of [prod, dev]) {
      const entries = listZip(zipOf(p, name));
      expect(entries.map((e) => e.name)).toEqual([FUNCTIONS[name].file]);
      expect(fn(p.template, name).Code.S3Key.endsWith(`/${name}.zip`)).toBe(true);
    }
    const zipBytes = zipOf(prod, name).length;
    const bundle = bundleOf(prod, name);
    report.push(`${name}: ${FUNCTIONS[name].file} ${(bundle.length / 1024).toFixed(0)} KiB, zipped ${(zipBytes / 1024).toFixed(0)} KiB`);
    expect(bundle.length).toBeLessThan(MAX_BUNDLE_BYTES);
  });

  it.each(FUNCTION_NAMES)('%s bundle is an ES module that imports nothing but Node built-ins and carries no dev dependency', (name) => {
    const text = bundleOf(prod, name).toString('utf8');
    // Static imports (`import{x as y}from"node:fs"`, the banner's `from 'node:module'`), dynamic `import("x")`,
    // and real `require("x")` calls; a `require("x")` quoted inside a string (an error message, ajv's code
    // generator) is text, not a call.
    const specifiers = [
      ...[...text.matchAll(/\bfrom\s*["']([^"']+)["']/g)].map((m) => m[1]!),
      ...[...text.matchAll(/(?<![\w$.'"[])import\(\s*"([^"]+)"\s*\)/g)].map((m) => m[1]!),
      ...[...text.matchAll(/(?<![\w$.'"[])require\("([^"]+)"\)/g)].map((m) => m[1]!),
    ];
    const builtins = new Set(builtinModules);
    const foreign = [...new Set(specifiers)].filter((m) => !m.startsWith('node:') && !builtins.has(m));
    expect(foreign).toEqual([]);
    expect(specifiers).toContain('node:module'); // the createRequire banner (serverless.yml custom.esbuild)
    // ESM, not CommonJS: no `module.exports` of the handler, and the banner gives bundled CommonJS code a require.
    expect(text.startsWith("import { createRequire as __createRequire } from 'node:module';")).toBe(true);
    expect(text).toMatch(/export\s*\{[^}]*\bhandler\b[^}]*\}/);
    // Markers of the dev tooling that must never ship: the test DynamoDB, jest, the framework, the compiler.
    for (const marker of ['dynalite', 'jest-circus', 'serverless-offline', 'serverless-esbuild', 'createProgram', 'aws-sdk-client-mock', 'fast-check', 'playwright']) {
      expect({ name, marker, found: text.includes(marker) }).toEqual({ name, marker, found: false });
    }
    // It is minified (no source map shipped) but keeps function names for stack traces (keepNames).
    expect(text).not.toContain('sourceMappingURL');
    expect(text).toContain('"secretsMiddlewareBefore"');
  });
});

// ------------------------------------------------------------------------- running what was packaged

const PHONE = (JSON.parse(JSON.parse(readFileSync(join(REPO_ROOT, 'events', 'send-otp.json'), 'utf8')).body as string) as { phoneNumber: string }).phoneNumber;
const API_KEY = 'sm_test_package_4f1c';

/** events/verify-otp.json with the real id and code (and a content-length true to the body). */
const verifyEvent = (otpRequestId: string, otp: string): string => {
  const event = JSON.parse(readFileSync(join(REPO_ROOT, 'events', 'verify-otp.json'), 'utf8')) as { body: string; headers: Record<string, string> };
  event.body = JSON.stringify({ otpRequestId, otp });
  event.headers['content-length'] = String(Buffer.byteLength(event.body));
  return JSON.stringify(event, null, 2);
};

interface EmfLine {
  _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[] };
  [key: string]: unknown;
}
const emfLines = (stdout: string): EmfLine[] =>
  stdout
    .split('\n')
    .filter((l) => l.startsWith('{"_aws"'))
    .map((l) => JSON.parse(l) as EmfLine);

/**
 * What Lambda does with the artifact, minus Lambda: a bare node process (no node_modules reachable from the
 * extracted folder) imports the .mjs bundle, as the nodejs22.x runtime does, and calls `handler(event,
 * context)` once.
 */
const RUNNER = `
const [file, eventPath, functionName, timeoutMs] = process.argv.slice(1);
import(require('node:url').pathToFileURL(file).href).then(({ handler }) => {
const deadline = Date.now() + Number(timeoutMs);
const context = {
  functionName, functionVersion: '$LATEST', memoryLimitInMB: '512', awsRequestId: require('node:crypto').randomUUID(),
  invokedFunctionArn: 'arn:aws:lambda:ap-south-1:123456789012:function:' + functionName,
  logGroupName: '/aws/lambda/' + functionName, logStreamName: 'local', callbackWaitsForEmptyEventLoop: true,
  getRemainingTimeInMillis: () => deadline - Date.now(),
};
return handler(JSON.parse(require('node:fs').readFileSync(eventPath, 'utf8')), context);
}).then(
  (r) => { process.stdout.write('\\n@@RESULT ' + JSON.stringify(r) + '\\n'); process.exit(0); },
  (e) => { process.stderr.write(String((e && e.stack) || e)); process.exit(1); },
);`;

const runBundle = (file: string, eventPath: string, functionName: string, timeoutS: number, env: Record<string, string>) =>
  new Promise<{ result: { statusCode: number; body: string }; stdout: string }>((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['-e', RUNNER, file, eventPath, functionName, String(timeoutS * 1000)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      const line = stdout.split('\n').find((l) => l.startsWith('@@RESULT '));
      if (code !== 0 || !line) return reject(new Error(`bundle ${file} exited ${code}\n${stdout}\n${stderr}`));
      resolvePromise({ result: JSON.parse(line.slice('@@RESULT '.length)) as { statusCode: number; body: string }, stdout });
    });
  });

describe('the packaged prod bundles, run against the local stand-ins', () => {
  let dynamo: LocalDynamo;
  let secrets: SecretsStandIn;
  let sandbox: Sandbox;
  let work: string;
  const endpoints = () => ({ AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint, AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.endpoint, STARTMESSAGING_BASE_URL: sandbox.url });

  beforeAll(async () => {
    dynamo = await startLocalDynamo();
    await createTable(dynamo.endpoint, 'otp-prod');
    secrets = await startSecretsStandIn({ secrets: { 'sm/api-key': API_KEY, ...(await localKeySecrets({ hashSecretId: 'otp/hash-key', tokenKeySecretId: 'otp/token-key' })) } });
    sandbox = await startSandboxProvider({ apiKey: API_KEY, quiet: true });
    work = mkdtempSync(join(tmpdir(), 'otp-artifact-run-'));
  });
  afterAll(async () => {
    await sandbox?.close();
    await secrets?.close();
    await dynamo?.close();
    removeDir(work);
  });

  it('as extracted from their zips, send a code (201) and verify it (200), writing the metrics the alarms read', async () => {
    const files = {} as Record<FunctionName, string>;
    for (const name of FUNCTION_NAMES) {
      const dir = join(work, name, 'handlers');
      mkdirSync(dir, { recursive: true });
      files[name] = join(work, name, FUNCTIONS[name].file);
      writeFileSync(files[name], bundleOf(prod, name));
    }
    const envFor = (name: FunctionName) => ({
      ...childEnv(),
      ...fn(prodView, name).Environment.Variables,
      ...endpoints(),
      AWS_LAMBDA_FUNCTION_NAME: `otp-service-prod-${name}`,
    });

    const sent = await runBundle(files.sendOtp, join(REPO_ROOT, 'events', 'send-otp.json'), `otp-service-prod-sendOtp`, 25, envFor('sendOtp'));
    expect(sent.result.statusCode).toBe(201);
    const { otpRequestId } = JSON.parse(sent.result.body) as { otpRequestId: string };
    const code = sandbox.lastCode(PHONE);
    expect(code).toMatch(/^\d{6}$/);

    const eventPath = join(work, 'verify-otp.json');
    writeFileSync(eventPath, verifyEvent(otpRequestId, code!));
    const verified = await runBundle(files.verifyOtp, eventPath, `otp-service-prod-verifyOtp`, 10, envFor('verifyOtp'));
    expect(verified.result.statusCode).toBe(200);
    expect(JSON.parse(verified.result.body)).toMatchObject({ verified: true });

    // The EMF each bundle wrote is exactly what the alarms query: namespace, metric, dimension set.
    const namespace = fn(prodView, 'sendOtp').Environment.Variables.POWERTOOLS_METRICS_NAMESPACE;
    const emitted = (stdout: string, metric: string) =>
      emfLines(stdout).flatMap((l) => l._aws.CloudWatchMetrics.filter((d) => d.Metrics.some((m) => m.Name === metric)).map((d) => ({ namespace: d.Namespace, dimensions: d.Dimensions, service: l.service })));
    expect(emitted(sent.stdout, 'OtpSent')).toEqual([{ namespace, dimensions: [['service']], service: 'otp-service' }]);
    expect(emitted(sent.stdout, 'SendLatency')).toHaveLength(1);
    expect(emitted(sent.stdout, 'ProviderLatency')).toHaveLength(1);
    expect(emitted(verified.stdout, 'OtpVerified')).toEqual([{ namespace, dimensions: [['service']], service: 'otp-service' }]);
    expect(emitted(verified.stdout, 'VerifyLatency')).toHaveLength(1);

    // The jwks bundle publishes the token key's public half, cacheable, and writes no empty-metrics warning.
    const jwks = await runBundle(files.jwks, join(REPO_ROOT, 'events', 'jwks.json'), `otp-service-prod-jwks`, 6, envFor('jwks'));
    expect(jwks.result.statusCode).toBe(200);
    expect((jwks.result as { headers?: Record<string, string> }).headers?.['Cache-Control']).toBe('public, max-age=300');
    const doc = JSON.parse(jwks.result.body) as { keys: Record<string, unknown>[] };
    expect(doc.keys.map((k) => Object.keys(k).sort())).toEqual([['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']]);
    expect(jwks.stdout).not.toContain('No application metrics');
  });
});

describe('serverless invoke local', () => {
  it('runs both dev functions with events/*.json (local/invoke.ts flow: send 201, verify 200 with the real id and code)', async () => {
    // The project's own tool, in the packaged dev copy: it starts its own stand-ins, runs `invoke local -f
    // sendOtp --path events/send-otp.json`, reads the code from its sandbox, then verifies with a copy of
    // events/verify-otp.json carrying the real otpRequestId and code. Exit 0 only if both answered as expected.
    const run = await runNode([TSX, 'local/invoke.ts', 'flow'], { cwd: dev.projectDir, env: childEnv({ TMPDIR: tmpFor(dev.projectDir) }), timeoutMs: 240_000 });
    const summary = run.stdout.split('\n').filter((l) => /^(sendOtp|verifyOtp)\s+→/.test(l));
    expect({ exit: run.code, summary: summary.map((l) => l.replace(/\s+/g, ' ').split(' ').slice(0, 3).join(' ')), stderr: run.code === 0 ? '' : run.stderr }).toEqual({
      exit: 0,
      summary: ['sendOtp → 201', 'verifyOtp → 200'],
      stderr: '',
    });
    expect(summary[1]).toContain('"verified":true');
    report.push(`invoke local (local/invoke.ts flow, two esbuild builds): ${(run.ms / 1000).toFixed(1)} s`);
  }, 300_000);
});

// ------------------------------------------------------------------ the metrics the code emits, up close

describe('the dimensions Powertools writes, for the metrics the alarms read', () => {
  it('UpstreamError by Kind (a provider timeout included), RateLimited by Rule, OtpSent: `service` plus their own', async () => {
    const env = fn(prodView, 'sendOtp').Environment.Variables;
    const saved = { ns: process.env.POWERTOOLS_METRICS_NAMESPACE, svc: process.env.POWERTOOLS_SERVICE_NAME };
    process.env.POWERTOOLS_METRICS_NAMESPACE = env.POWERTOOLS_METRICS_NAMESPACE;
    process.env.POWERTOOLS_SERVICE_NAME = env.POWERTOOLS_SERVICE_NAME;
    const out: string[] = [];
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    });
    try {
      let run: () => Promise<void> = async () => undefined;
      jest.isolateModules(() => {
        const m = require('../../lib/metrics') as typeof import('../../lib/metrics');
        const send = require('../../lib/otp/send') as typeof import('../../lib/otp/send');
        const errors = require('../../lib/errors') as typeof import('../../lib/errors');
        run = async () => {
          m.countRateLimited('global-day');
          m.count('OtpSent');
          // A provider that never answers: the send counts it, as the provider-error alarm expects.
          const provider = { sendOtp: async () => Promise.reject(new errors.UpstreamTimeout()) };
          const store = { putOtp: async () => undefined, restoreOtp: async () => undefined } as unknown as import('../../lib/store/types').Store;
          await expect(
            send.sendOtp({ config: loadConfig(env), store, provider }, { phoneNumber: PHONE, apiKey: 'key', hashKey: require('../../local/keys').newHashKey() }),
          ).rejects.toBeInstanceOf(errors.UpstreamTimeout);
          m.metrics.publishStoredMetrics();
        };
      });
      await run();
    } finally {
      spy.mockRestore();
      process.env.POWERTOOLS_METRICS_NAMESPACE = saved.ns;
      process.env.POWERTOOLS_SERVICE_NAME = saved.svc;
      if (saved.ns === undefined) delete process.env.POWERTOOLS_METRICS_NAMESPACE;
      if (saved.svc === undefined) delete process.env.POWERTOOLS_SERVICE_NAME;
    }
    const lines = emfLines(out.join(''));
    const find = (metric: string) => {
      const line = lines.find((l) => l._aws.CloudWatchMetrics.some((d) => d.Metrics.some((x) => x.Name === metric)));
      const d = line?._aws.CloudWatchMetrics[0];
      return d && { namespace: d.Namespace, dimensions: d.Dimensions, values: Object.fromEntries(d.Dimensions[0]!.map((k) => [k, line![k]])) };
    };
    const namespace = env.POWERTOOLS_METRICS_NAMESPACE;
    expect(find('UpstreamError')).toEqual({ namespace, dimensions: [['service', 'Kind']], values: { service: 'otp-service', Kind: 'timeout' } });
    expect(find('RateLimited')).toEqual({ namespace, dimensions: [['service', 'Rule']], values: { service: 'otp-service', Rule: 'global-day' } });
    expect(find('OtpSent')).toEqual({ namespace, dimensions: [['service']], values: { service: 'otp-service' } });
    expect(find('ProviderLatency')).toBeDefined();

    // ...and each of those dimension sets is one the prod alarms query.
    const alarmDimensionSets = new Set(alarms(prodView).flatMap(([, a]) => metricsOf(a)).filter((m) => m.Namespace === namespace).map((m) => `${m.MetricName}:${m.Dimensions.map((d) => d.Name).join(',')}`));
    expect(alarmDimensionSets).toEqual(
      new Set(['UpstreamError:service,Kind', 'RateLimited:service,Rule', 'OtpSent:service', 'OtpVerified:service', 'OtpVerifyFailed:service', 'ChallengeFailed:service', 'ChallengeUnavailable:service', 'NewNumberSent:service']),
    );
  });
});
