'use strict';
/**
 * The parts of the stack that depend on params in ways serverless variables cannot express without
 * CloudFormation Conditions that are fixed at package time (cfn-lint's W8003, and E3033 for the `''` branch
 * of an `!If`): the choice is made here, once, and the template holds only what is deployed.
 *
 * Used from serverless.yml as `${file(./deploy/stack.cjs):<export>}`; every export is a resolver function.
 */

const FUNCTIONS = {
  // What each function's code calls (tests/package holds these lists to the code):
  //  - table: lib/store/dynamodb.ts (Get/Put/Update/DeleteItem);
  //  - secrets: the ids middleware/secrets.ts fetches for that function (each handler names its own; docs/keys.md);
  //  - challenge: sendOtp fetches the challenge secret only when CHALLENGE_PROVIDER is not `none`.
  sendOtp: { role: 'SendOtpRole', table: true, secrets: ['apiKeySecretId', 'hashSecretId'], challenge: true },
  verifyOtp: { role: 'VerifyOtpRole', table: true, secrets: ['hashSecretId', 'tokenKeySecretId'], challenge: false },
  jwks: { role: 'JwksRole', table: false, secrets: ['tokenKeySecretId'], challenge: false },
};
const TABLE_ACTIONS = ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'];
// What DynamoDB asks KMS for on the caller's behalf when a table uses a customer-managed key.
const KMS_ACTIONS = ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey', 'kms:DescribeKey'];

const text = (v) => (v === null || v === undefined ? '' : String(v).trim());
const params = (resolveVariable) => async (name) => text(await resolveVariable(`param:${name}`));

const secretArn = (id) => ({ 'Fn::Sub': `arn:\${AWS::Partition}:secretsmanager:\${AWS::Region}:\${AWS::AccountId}:secret:${id}-??????` });
const logGroupArn = (group, suffix) => ({ 'Fn::Sub': `arn:\${AWS::Partition}:logs:\${AWS::Region}:\${AWS::AccountId}:log-group:${group}${suffix}` });
const tableKey = (kmsKeyArn) => (kmsKeyArn === '' ? { 'Fn::GetAtt': ['OtpTableKey', 'Arn'] } : kmsKeyArn);

/** One role per function: its own log group, its own table actions and secrets, nothing else. */
const roles = async ({ resolveVariable }) => {
  const param = params(resolveVariable);
  const service = text(await resolveVariable('self:service'));
  const stage = text(await resolveVariable('sls:stage'));
  const challenge = (await param('challengeProvider')) !== 'none';
  const edge = (await param('edge')) === 'cloudfront-waf';
  const tracing = (await param('tracing')) === 'true';
  const kmsKeyArn = await param('tableKmsKeyArn');
  const Resources = {};
  for (const [name, f] of Object.entries(FUNCTIONS)) {
    const group = `/aws/lambda/${service}-${stage}-${name}`;
    const secretIds = [...f.secrets, ...(f.challenge && challenge ? ['challengeSecretId'] : []), ...(edge ? ['originVerifySecretId'] : [])];
    const statement = [
      // What the framework's shared role gave for logs, narrowed to this function's own log group.
      { Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:CreateLogGroup', 'logs:TagResource'], Resource: [logGroupArn(group, ':*')] },
      { Effect: 'Allow', Action: ['logs:PutLogEvents'], Resource: [logGroupArn(group, ':*:*')] },
    ];
    if (f.table) {
      statement.push({ Effect: 'Allow', Action: TABLE_ACTIONS, Resource: { 'Fn::GetAtt': ['OtpTable', 'Arn'] } });
      statement.push({
        Effect: 'Allow',
        Action: KMS_ACTIONS,
        Resource: tableKey(kmsKeyArn),
        // Only through DynamoDB: the role cannot use the table's key for anything else.
        Condition: { StringEquals: { 'kms:ViaService': { 'Fn::Sub': 'dynamodb.${AWS::Region}.amazonaws.com' } } },
      });
    }
    const ids = [];
    for (const p of secretIds) ids.push(await param(p));
    statement.push({ Effect: 'Allow', Action: ['secretsmanager:GetSecretValue'], Resource: ids.map(secretArn) });
    if (tracing) {
      // X-Ray's PutTraceSegments/PutTelemetryRecords support no resource-level permission: '*' is the only form.
      statement.push({ Effect: 'Allow', Action: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'], Resource: '*' });
    }
    Resources[f.role] = {
      Type: 'AWS::IAM::Role',
      Properties: {
        AssumeRolePolicyDocument: {
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Principal: { Service: ['lambda.amazonaws.com'] }, Action: ['sts:AssumeRole'] }],
        },
        Policies: [{ PolicyName: `${service}-${stage}-${name}`, PolicyDocument: { Version: '2012-10-17', Statement: statement } }],
      },
    };
  }
  return Resources;
};

/** Where every alarm notifies: the given topic, or the topic this stack creates (subscribed to alarmEmail if set). */
const alarmActions = async ({ resolveVariable }) => {
  const topic = await params(resolveVariable)('alarmTopicArn');
  return [topic === '' ? { Ref: 'AlarmTopic' } : topic];
};

/** The table's encryption: always a KMS key, the stack's own unless tableKmsKeyArn names one. */
const tableSse = async ({ resolveVariable }) => ({
  SSEEnabled: true,
  SSEType: 'KMS',
  KMSMasterKeyId: tableKey(await params(resolveVariable)('tableKmsKeyArn')),
});

/** Resources that exist only for some params: the alarm topic, the table's key, the CloudFront edge. */
const optional = async ({ resolveVariable }) => {
  const param = params(resolveVariable);
  const service = text(await resolveVariable('self:service'));
  const stage = text(await resolveVariable('sls:stage'));
  const Resources = {};
  const Outputs = {};

  const topic = await param('alarmTopicArn');
  const email = await param('alarmEmail');
  if (topic === '') {
    Resources.AlarmTopic = { Type: 'AWS::SNS::Topic', Properties: { TopicName: `${service}-${stage}-alarms` } };
    if (email !== '') {
      // AWS mails a confirmation link first: nothing is delivered until someone clicks it.
      Resources.AlarmEmailSubscription = { Type: 'AWS::SNS::Subscription', Properties: { TopicArn: { Ref: 'AlarmTopic' }, Protocol: 'email', Endpoint: email } };
    }
  }
  Outputs.AlarmTopicArn = { Description: 'Where the alarms notify', Value: topic === '' ? { Ref: 'AlarmTopic' } : topic };

  if ((await param('tableKmsKeyArn')) === '') {
    // The table's customer-managed key. Its policy only enables IAM in this account (AWS's default key policy):
    // the function roles get their use of it, through DynamoDB only, from their own policies above. Kept with
    // the table (a retained table whose key is deleted could never be read again).
    const retain = await param('tableDeletionPolicy');
    Resources.OtpTableKey = {
      Type: 'AWS::KMS::Key',
      DeletionPolicy: retain,
      UpdateReplacePolicy: retain,
      Properties: {
        Description: `${service}-${stage}: DynamoDB table encryption`,
        EnableKeyRotation: true,
        PendingWindowInDays: 30,
        KeyPolicy: {
          Version: '2012-10-17',
          Statement: [
            {
              Sid: 'EnableIamPoliciesOfThisAccount',
              Effect: 'Allow',
              Principal: { AWS: { 'Fn::Sub': 'arn:${AWS::Partition}:iam::${AWS::AccountId}:root' } },
              Action: 'kms:*',
              Resource: '*',
            },
          ],
        },
      },
    };
    Resources.OtpTableKeyAlias = { Type: 'AWS::KMS::Alias', Properties: { AliasName: `alias/${service}-${stage}-table`, TargetKeyId: { Ref: 'OtpTableKey' } } };
  }

  if ((await param('edge')) === 'cloudfront-waf') Object.assign(Resources, await edgeResources(param, service, stage, Outputs));
  return { Resources, Outputs };
};

/**
 * CloudFront in front of the HTTP API, with the web ACL from deploy/edge-waf.yml (a CLOUDFRONT-scope web ACL
 * must live in us-east-1, so it is its own stack; its ARN comes in as edgeWebAclArn). CloudFront adds the
 * origin-verify header (the secret's value, resolved by CloudFormation at deploy time, never in the template)
 * and forwards CloudFront-Viewer-Address, which middleware/origin-verify.ts turns into the caller's IP.
 */
const edgeResources = async (param, service, stage, Outputs) => {
  const originVerifySecretId = await param('originVerifySecretId');
  Outputs.EdgeUrl = { Description: 'The public URL (CloudFront); the execute-api URL answers 403', Value: { 'Fn::Sub': 'https://${EdgeDistribution.DomainName}' } };
  return {
    EdgeOriginRequestPolicy: {
      Type: 'AWS::CloudFront::OriginRequestPolicy',
      Properties: {
        OriginRequestPolicyConfig: {
          Name: `${service}-${stage}-origin`,
          Comment: 'What the API reads: body headers, CORS preflight headers, the viewer address',
          // Not the viewer's Host: API Gateway routes by its own host name.
          HeadersConfig: {
            HeaderBehavior: 'whitelist',
            Headers: ['content-type', 'idempotency-key', 'origin', 'access-control-request-method', 'access-control-request-headers', 'CloudFront-Viewer-Address'],
          },
          CookiesConfig: { CookieBehavior: 'none' },
          QueryStringsConfig: { QueryStringBehavior: 'none' },
        },
      },
    },
    EdgeDistribution: {
      Type: 'AWS::CloudFront::Distribution',
      Properties: {
        DistributionConfig: {
          Enabled: true,
          Comment: `${service}-${stage}`,
          HttpVersion: 'http2and3',
          IPV6Enabled: true,
          PriceClass: await param('edgePriceClass'),
          WebACLId: await param('edgeWebAclArn'),
          Origins: [
            {
              Id: 'http-api',
              DomainName: { 'Fn::Sub': '${HttpApi}.execute-api.${AWS::Region}.amazonaws.com' },
              CustomOriginConfig: { OriginProtocolPolicy: 'https-only', OriginSSLProtocols: ['TLSv1.2'], HTTPSPort: 443 },
              OriginCustomHeaders: [{ HeaderName: 'x-origin-verify', HeaderValue: `{{resolve:secretsmanager:${originVerifySecretId}:SecretString}}` }],
            },
          ],
          DefaultCacheBehavior: {
            TargetOriginId: 'http-api',
            ViewerProtocolPolicy: 'https-only',
            AllowedMethods: ['GET', 'HEAD', 'OPTIONS', 'PUT', 'PATCH', 'POST', 'DELETE'],
            CachedMethods: ['GET', 'HEAD'],
            Compress: true,
            CachePolicyId: '4135ea2d-6df8-44a3-9df3-4b5a84be39ad', // AWS managed "CachingDisabled": every request reaches the API
            OriginRequestPolicyId: { Ref: 'EdgeOriginRequestPolicy' },
          },
          ViewerCertificate: { CloudFrontDefaultCertificate: true },
        },
      },
    },
  };
};

/** ORIGIN_VERIFY_SECRET_ID for the functions: the secret's id behind the CloudFront edge, empty without it. */
const originVerifySecretId = async ({ resolveVariable }) => {
  const param = params(resolveVariable);
  return (await param('edge')) === 'cloudfront-waf' ? param('originVerifySecretId') : '';
};

/** Each function's duration alarm threshold in ms: durationAlarmPercent of its own timeout. */
const durationThresholds = async ({ resolveVariable }) => {
  const percent = Number(await params(resolveVariable)('durationAlarmPercent'));
  const out = {};
  for (const name of Object.keys(FUNCTIONS)) {
    const fn = (await resolveVariable(`self:functions.${name}`)) ?? {};
    const timeout = Number(fn.timeout ?? (await resolveVariable('self:provider.timeout')));
    out[name] = Math.round((timeout * 1000 * percent) / 100);
  }
  return out;
};

module.exports = { roles, alarmActions, tableSse, optional, originVerifySecretId, durationThresholds, FUNCTIONS };
