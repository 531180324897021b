/**
 * What every benchmark process agrees on: the secrets the stand-ins hold, the number and codes the
 * invocations use, and the environment a child process (anything that loads the AWS SDK) gets.
 */

export const SECRET_IDS = { apiKey: 'bench/sm-api-key', hashKey: 'bench/otp-hash-key', tokenKey: 'bench/otp-token-key' } as const;
export const API_KEY = 'sm_bench_0123456789abcdef';
/** Fixed so runs are comparable; bench-only values (sha256 of a label; a key pair made for the benchmark). */
export const HASH_KEY = '/tBczEo0Fk6f50xkLz9og3xMmNUFf4UOQ+D3rwfOeKI=';
export const TOKEN_KEY = {
  current: {
    kty: 'EC',
    crv: 'P-256',
    x: 'yNIINLA7X1_DETRBUEDpXJUUmcwunsnloncduhh3s3M',
    y: 'JSMBmrJWgdAygsuXYuEtiXESigUuxH5uxUg0ApIax6g',
    d: '8ZTVsnvRoBc8q926RlM920HNjf0UTKM5zzEEWtn1ZYk',
    kid: '6ypJyQtl2P74Zd7EQiq8CLB35iJEvdKwX2pY9KytVqI',
    alg: 'ES256',
    use: 'sig',
  },
  previous: [],
};
export const SECRETS: Record<string, string> = {
  [SECRET_IDS.apiKey]: API_KEY,
  [SECRET_IDS.hashKey]: HASH_KEY,
  [SECRET_IDS.tokenKey]: JSON.stringify(TOKEN_KEY),
};

export const PHONE = '+919876543210';
export const SOURCE_IP = '203.0.113.10';
/** The stand-ins answer as if every stored code were this one. */
export const RIGHT_CODE = '123456';
export const WRONG_CODE = '000000';
export const TABLE = 'otp-bench';

/** The AWS SDK must never look for real credentials or the instance metadata service. */
export const AWS_ENV = {
  AWS_REGION: 'ap-south-1',
  AWS_ACCESS_KEY_ID: 'bench',
  AWS_SECRET_ACCESS_KEY: 'bench',
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
} as const;

export interface Endpoints {
  provider: string;
  secretsManager: string;
  dynamodb: string;
}

/**
 * A clean environment for a child: no NODE_OPTIONS or AWS profile from the caller's shell, the dummies above,
 * and the service's configuration (serverless.yml's defaults) pointing at local stand-ins only.
 */
export const childEnv = (endpoints: Endpoints): Record<string, string> => {
  const keep: Record<string, string> = {};
  for (const name of ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ']) {
    const v = process.env[name];
    if (v !== undefined) keep[name] = v;
  }
  return {
    ...keep,
    ...AWS_ENV,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: endpoints.secretsManager,
    AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamodb,
    STAGE: 'bench',
    OTP_TABLE: TABLE,
    STARTMESSAGING_BASE_URL: endpoints.provider,
    STARTMESSAGING_TIMEOUT_MS: '5000',
    API_KEY_SECRET_ID: SECRET_IDS.apiKey,
    HASH_SECRET_ID: SECRET_IDS.hashKey,
    TOKEN_KEY_SECRET_ID: SECRET_IDS.tokenKey,
    ALLOWED_COUNTRY_CODES: '91',
    POWERTOOLS_SERVICE_NAME: 'otp-service',
    POWERTOOLS_DEV: 'false',
  };
};
