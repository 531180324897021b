'use strict';
/**
 * Deploy-time configuration checks, run while serverless.yml is resolved (`${file(./deploy/config-check.cjs)}`),
 * so `serverless package` and `deploy` stop, naming the parameter, before anything is built or uploaded.
 *
 * 1. The functions' own rules: lib/config.ts is compiled in memory with esbuild and its `loadConfig` runs on the
 *    environment each function gets in this stage (provider.environment merged with the function's own). It is
 *    the very code a cold start runs, not a copy, so every rule added there applies here too.
 * 2. Deployment rules that only make sense for a stack (they are not the functions' business): a prod stage
 *    needs CORS origins (or an explicit allowNoCors=true) and somewhere for alarms to go; params that only
 *    shape the stack (edge, KMS key, alarm topic, reserved concurrency) must be well formed.
 */
const { Module } = require('node:module');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');

/** Params (not variables) whose names the stack rules report; API.md's variable → the param that sets it. */
const PARAM_OF_VARIABLE = {
  STARTMESSAGING_BASE_URL: 'startMessagingBaseUrl',
  STARTMESSAGING_TIMEOUT_MS: 'startMessagingTimeoutMs',
  ALLOWED_COUNTRY_CODES: 'allowedCountryCodes',
  OTP_LENGTH: 'otpLength',
  OTP_TTL_SECONDS: 'otpTtlSeconds',
  VERIFY_MAX_ATTEMPTS: 'verifyMaxAttempts',
  VERIFY_MAX_FAILURES_PER_IP_PER_HOUR: 'verifyMaxFailuresPerIpPerHour',
  SEND_COOLDOWN_SECONDS: 'sendCooldownSeconds',
  SEND_LIMIT_PER_PHONE_PER_HOUR: 'sendLimitPerPhonePerHour',
  SEND_LIMIT_PER_PHONE_PER_DAY: 'sendLimitPerPhonePerDay',
  SEND_LIMIT_PER_IP_PER_HOUR: 'sendLimitPerIpPerHour',
  SEND_BUDGET_PER_DAY: 'sendBudgetPerDay',
  SEND_BUDGET_NEW_NUMBERS_PER_DAY: 'sendBudgetNewNumbersPerDay',
  TRUSTED_NUMBER_DAYS: 'trustedNumberDays',
  TOKEN_TTL_SECONDS: 'tokenTtlSeconds',
  CORS_ALLOWED_ORIGINS: 'corsAllowedOrigins',
  CHALLENGE_PROVIDER: 'challengeProvider',
  CHALLENGE_MODE: 'challengeMode',
  CHALLENGE_VERIFY_URL: 'challengeVerifyUrl',
  TEST_NUMBERS: 'testNumbers',
  SECRETS_CACHE_SECONDS: 'secretsCacheSeconds',
};

let compiled;
/** lib/config.ts, bundled by esbuild into one CommonJS module in memory (nothing is written to disk). */
const configModule = () => {
  if (compiled) return compiled;
  const esbuild = require('esbuild');
  const entry = path.join(ROOT, 'lib', 'config.ts');
  const out = esbuild.buildSync({ entryPoints: [entry], bundle: true, write: false, platform: 'node', format: 'cjs', target: 'node20', logLevel: 'silent' });
  const m = new Module(entry);
  m.filename = entry;
  m.paths = Module._nodeModulePaths(path.dirname(entry));
  m._compile(out.outputFiles[0].text, entry);
  compiled = m.exports;
  return compiled;
};

/** An error osls prints as is: the message, no stack (the stack would only point at this file). */
const fail = (message) => {
  const e = new Error(`Deploy-time check failed: ${message}`);
  e.stack = e.message;
  return e;
};

const asEnv = (vars) =>
  Object.fromEntries(Object.entries(vars ?? {}).filter(([, v]) => v !== null && v !== undefined).map(([k, v]) => [k, String(v)]));

const text = (v) => (v === null || v === undefined ? '' : String(v).trim());

const SNS_ARN = /^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$/;
const KMS_KEY_ARN = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[0-9a-f-]{36}$/;
const WEB_ACL_ARN = /^arn:aws[a-z-]*:wafv2:us-east-1:\d{12}:global\/webacl\/[A-Za-z0-9_-]+\/[0-9a-f-]{36}$/;
const EMAIL = /^[^\s@,]+@[^\s@,]+\.[^\s@,]+$/;
const EDGES = ['none', 'cloudfront-waf'];

const run = async ({ resolveVariable }) => {
  const param = async (name) => resolveVariable(`param:${name}`);
  const stage = String(await resolveVariable('sls:stage'));
  const provider = (await resolveVariable('self:provider.environment')) ?? {};
  const functions = (await resolveVariable('self:functions')) ?? {};
  const { loadConfig, ConfigError } = configModule();

  // 1. lib/config.ts on each function's environment.
  const configs = {};
  for (const [name, fn] of Object.entries(functions)) {
    const env = asEnv({ ...provider, ...(fn && fn.environment) });
    try {
      configs[name] = loadConfig(env);
    } catch (error) {
      if (!(error instanceof ConfigError) && error?.name !== 'ConfigError') throw error;
      const variable = Object.keys(PARAM_OF_VARIABLE).find((v) => error.message.startsWith(v));
      const hint = variable ? ` (param ${PARAM_OF_VARIABLE[variable]})` : '';
      throw fail(`function ${name}, stage ${stage}${hint}: ${error.message}`);
    }
  }

  // 2. The stack's own rules.
  const cors = text(await param('corsAllowedOrigins'));
  const allowNoCors = text(await param('allowNoCors'));
  const topic = text(await param('alarmTopicArn'));
  const email = text(await param('alarmEmail'));
  const edge = text(await param('edge')) || 'none';
  const webAcl = text(await param('edgeWebAclArn'));
  const kmsKey = text(await param('tableKmsKeyArn'));
  if (!['true', 'false'].includes(allowNoCors)) throw fail(`allowNoCors must be true or false, got "${allowNoCors}"`);
  if (topic !== '' && !SNS_ARN.test(topic)) throw fail(`alarmTopicArn must be an SNS topic ARN, got "${topic}"`);
  if (email !== '' && !EMAIL.test(email)) throw fail(`alarmEmail must be one e-mail address, got "${email}"`);
  if (topic !== '' && email !== '') throw fail('set alarmTopicArn or alarmEmail, not both (subscribe the address to your topic instead)');
  if (!EDGES.includes(edge)) throw fail(`edge must be one of ${EDGES.join(', ')}, got "${edge}"`);
  if (edge === 'cloudfront-waf' && !WEB_ACL_ARN.test(webAcl)) {
    throw fail(`edge=cloudfront-waf needs edgeWebAclArn, the ARN of a CLOUDFRONT-scope web ACL in us-east-1 (deploy/edge-waf.yml), got "${webAcl}"`);
  }
  if (edge !== 'cloudfront-waf' && webAcl !== '') throw fail('edgeWebAclArn is set but edge is not cloudfront-waf');
  if (kmsKey !== '' && !KMS_KEY_ARN.test(kmsKey)) throw fail(`tableKmsKeyArn must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>), got "${kmsKey}"`);
  for (const name of Object.keys(functions)) {
    const reserved = await param(`${name}ReservedConcurrency`).catch(() => null);
    if (reserved !== null && reserved !== undefined && !/^[1-9]\d*$/.test(String(reserved))) {
      throw fail(`${name}ReservedConcurrency must be a whole number ≥ 1 or unset, got "${reserved}"`);
    }
  }
  if (stage === 'prod') {
    if (cors === '' && allowNoCors !== 'true') {
      throw fail('corsAllowedOrigins is empty in prod: browsers on the shop could not call the API. Pass --param corsAllowedOrigins=https://shop.example (comma-separated), or --param allowNoCors=true if only servers call it');
    }
    if (topic === '' && email === '') {
      throw fail('prod needs an alarm destination: --param alarmTopicArn=arn:aws:sns:... (an existing topic) or --param alarmEmail=ops@example.com (the stack subscribes it)');
    }
  }

  const send = configs.sendOtp;
  return {
    ok: true,
    // The new-number pool the alarm measures against. lib/config.ts decides it (floor(0.6 × the daily budget)
    // unless set); the fallback only covers a lib/config.ts from before that variable existed.
    newNumberBudgetPerDay: send?.sendBudgetNewNumbersPerDay ?? Math.floor(0.6 * Number(send?.sendBudgetPerDay ?? 10000)),
  };
};

let pending;
/** Resolved once per serverless run, however many variables read it. */
module.exports = async (ctx) => {
  // A failure is not kept: osls retries a resolver whose dependencies were not resolved yet.
  pending ??= run(ctx).catch((error) => {
    pending = undefined;
    throw error;
  });
  return pending;
};
