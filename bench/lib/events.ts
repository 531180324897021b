/** API Gateway HTTP API (payload 2.0) events and a Lambda context, as the benchmark hands them to a handler. */
import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { SOURCE_IP } from './fixtures';

const apiEvent = (path: string, body: string, headers: Record<string, string>): APIGatewayProxyEventV2 => ({
  version: '2.0',
  routeKey: `POST ${path}`,
  rawPath: path,
  rawQueryString: '',
  headers: {
    accept: 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    'content-type': 'application/json',
    host: 'abcdef1234.execute-api.ap-south-1.amazonaws.com',
    'user-agent': 'otp-bench',
    'x-forwarded-for': SOURCE_IP,
    'x-forwarded-proto': 'https',
    ...headers,
  },
  requestContext: {
    accountId: '123456789012',
    apiId: 'abcdef1234',
    domainName: 'abcdef1234.execute-api.ap-south-1.amazonaws.com',
    domainPrefix: 'abcdef1234',
    http: { method: 'POST', path, protocol: 'HTTP/1.1', sourceIp: SOURCE_IP, userAgent: 'otp-bench' },
    requestId: randomUUID(),
    routeKey: `POST ${path}`,
    stage: '$default',
    time: new Date().toISOString(),
    timeEpoch: Date.now(),
  },
  body,
  isBase64Encoded: false,
});

export const sendEvent = (phoneNumber: string, idempotencyKey?: string): APIGatewayProxyEventV2 =>
  apiEvent('/auth/send-otp', JSON.stringify({ phoneNumber }), idempotencyKey === undefined ? {} : { 'idempotency-key': idempotencyKey });

export const verifyEvent = (otpRequestId: string, otp: string): APIGatewayProxyEventV2 =>
  apiEvent('/auth/verify-otp', JSON.stringify({ otpRequestId, otp }), {});

export const lambdaContext = (functionName: string): Context => ({
  callbackWaitsForEmptyEventLoop: true,
  functionName,
  functionVersion: '$LATEST',
  invokedFunctionArn: `arn:aws:lambda:ap-south-1:000000000000:function:${functionName}`,
  memoryLimitInMB: '512',
  awsRequestId: randomUUID(),
  logGroupName: `/aws/lambda/${functionName}`,
  logStreamName: 'bench',
  getRemainingTimeInMillis: () => 25_000,
  done: () => undefined,
  fail: () => undefined,
  succeed: () => undefined,
});
