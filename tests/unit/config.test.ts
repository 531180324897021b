import { loadConfig } from '../../lib/config';

describe('loadConfig', () => {
  it('applies API.md defaults', () => {
    expect(loadConfig({})).toMatchObject({
      startMessagingBaseUrl: 'https://api.startmessaging.com',
      startMessagingTimeoutMs: 5000,
      apiKeySecretId: 'sm/api-key',
      hashSecretId: 'otp/hash-key',
      tokenKeySecretId: 'otp/token-key',
      tokenIssuer: 'otp-service',
      tokenAudience: 'checkout',
      table: 'otp-dev',
      allowedCountryCodes: ['91'],
      otpLength: 6,
      otpTtlSeconds: 300,
      verifyMaxAttempts: 3,
      verifyMaxFailuresPerIpPerHour: 30,
      sendBudgetNewNumbersPerDay: 6000,
      trustedNumberDays: 90,
      challengeProvider: 'none',
      challengeMode: 'enforce',
      challengeSecretId: 'otp/challenge-secret',
      testNumbers: new Map(),
      sendCooldownSeconds: 60,
      sendLimitPerPhonePerHour: 5,
      sendLimitPerPhonePerDay: 10,
      sendLimitPerIpPerHour: 20,
      sendBudgetPerDay: 10000,
      tokenTtlSeconds: 600,
      corsAllowedOrigins: [],
    });
  });

  it('the new-number pool defaults to 60 % of the daily budget, rounded down, and can be set', () => {
    expect(loadConfig({ SEND_BUDGET_PER_DAY: '41' }).sendBudgetNewNumbersPerDay).toBe(24);
    expect(loadConfig({ SEND_BUDGET_PER_DAY: '1' }).sendBudgetNewNumbersPerDay).toBe(1);
    expect(loadConfig({ SEND_BUDGET_NEW_NUMBERS_PER_DAY: '7' }).sendBudgetNewNumbersPerDay).toBe(7);
    expect(() => loadConfig({ SEND_BUDGET_NEW_NUMBERS_PER_DAY: '0' })).toThrow(/SEND_BUDGET_NEW_NUMBERS_PER_DAY/);
    expect(() => loadConfig({ TRUSTED_NUMBER_DAYS: 'x' })).toThrow(/TRUSTED_NUMBER_DAYS/);
    expect(() => loadConfig({ VERIFY_MAX_FAILURES_PER_IP_PER_HOUR: '0' })).toThrow(/VERIFY_MAX_FAILURES_PER_IP_PER_HOUR/);
  });

  it('the bot challenge: a known provider and mode, its public siteverify URL unless CHALLENGE_VERIFY_URL says otherwise', () => {
    expect(loadConfig({ CHALLENGE_PROVIDER: 'turnstile' }).challengeVerifyUrl).toBe('https://challenges.cloudflare.com/turnstile/v0/siteverify');
    expect(loadConfig({ CHALLENGE_PROVIDER: 'hcaptcha' }).challengeVerifyUrl).toBe('https://api.hcaptcha.com/siteverify');
    expect(loadConfig({ CHALLENGE_PROVIDER: 'recaptcha' }).challengeVerifyUrl).toBe('https://www.google.com/recaptcha/api/siteverify');
    expect(loadConfig({ CHALLENGE_PROVIDER: 'recaptcha', CHALLENGE_VERIFY_URL: 'http://127.0.0.1:9/v' }).challengeVerifyUrl).toBe('http://127.0.0.1:9/v');
    expect(() => loadConfig({ CHALLENGE_PROVIDER: 'captcha' })).toThrow(/CHALLENGE_PROVIDER must be one of none, turnstile, hcaptcha, recaptcha/);
    expect(() => loadConfig({ CHALLENGE_MODE: 'log' })).toThrow(/CHALLENGE_MODE/);
    expect(() => loadConfig({ CHALLENGE_PROVIDER: 'turnstile', CHALLENGE_VERIFY_URL: 'ftp://x' })).toThrow(/CHALLENGE_VERIFY_URL/);
  });

  it('TEST_NUMBERS: number:code pairs with OTP_LENGTH digits, refused in the prod stage without echoing the number', () => {
    expect(loadConfig({ TEST_NUMBERS: '+919000000001:123456, +919000000002:000000' }).testNumbers).toEqual(
      new Map([
        ['+919000000001', '123456'],
        ['+919000000002', '000000'],
      ]),
    );
    expect(() => loadConfig({ TEST_NUMBERS: '+919000000001:1234' })).toThrow(/TEST_NUMBERS .*6-digit/);
    expect(() => loadConfig({ TEST_NUMBERS: '919000000001:123456' })).toThrow(/TEST_NUMBERS/);
    let message = '';
    try {
      loadConfig({ STAGE: 'prod', TEST_NUMBERS: '+919000000001:123456' });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/TEST_NUMBERS must be empty in the prod stage/);
    expect(message).not.toContain('919000000001');
    expect(message).not.toContain('123456');
  });

  it('names the table after the stage unless OTP_TABLE is set', () => {
    expect(loadConfig({ STAGE: 'prod' }).table).toBe('otp-prod');
    expect(loadConfig({ STAGE: 'prod', OTP_TABLE: 'mine' }).table).toBe('mine');
  });

  it('reads lists', () => {
    const c = loadConfig({ ALLOWED_COUNTRY_CODES: '91, 65,1', CORS_ALLOWED_ORIGINS: 'https://shop.example, http://localhost:5173' });
    expect(c.allowedCountryCodes).toEqual(['91', '65', '1']);
    expect(c.corsAllowedOrigins).toEqual(['https://shop.example', 'http://localhost:5173']);
  });

  it('accepts 0 only for the cooldown', () => {
    expect(loadConfig({ SEND_COOLDOWN_SECONDS: '0' }).sendCooldownSeconds).toBe(0);
    expect(() => loadConfig({ SEND_LIMIT_PER_PHONE_PER_HOUR: '0' })).toThrow(/SEND_LIMIT_PER_PHONE_PER_HOUR/);
  });

  it.each([
    ['SEND_COOLDOWN_SECONDS', 'abc'],
    ['SEND_COOLDOWN_SECONDS', '-1'],
    ['VERIFY_MAX_ATTEMPTS', '1.5'],
    ['VERIFY_MAX_ATTEMPTS', '0'],
    ['OTP_LENGTH', '3'],
    ['OTP_LENGTH', '9'],
    ['OTP_TTL_SECONDS', '0'],
    ['OTP_TTL_SECONDS', '601'],
    ['STARTMESSAGING_TIMEOUT_MS', '99'],
    ['STARTMESSAGING_TIMEOUT_MS', '20001'],
    ['SEND_BUDGET_PER_DAY', '1e3'],
    ['TOKEN_TTL_SECONDS', ' '.repeat(0) + 'ten'],
    ['STARTMESSAGING_BASE_URL', 'ftp://x'],
    ['STARTMESSAGING_BASE_URL', 'not a url'],
    ['ALLOWED_COUNTRY_CODES', '+91'],
    ['ALLOWED_COUNTRY_CODES', '0'],
    // Shaped like calling codes, but assigned to no country: a typo must stop the start.
    ['ALLOWED_COUNTRY_CODES', '19'],
    ['ALLOWED_COUNTRY_CODES', '910'],
    ['ALLOWED_COUNTRY_CODES', '91,999'],
    ['ALLOWED_COUNTRY_CODES', '800'],
    ['CORS_ALLOWED_ORIGINS', 'shop.example'],
    ['TOKEN_AUDIENCE', 'two words'],
    ['TOKEN_ISSUER', 'x'.repeat(201)],
  ])('refuses %s=%j with a message naming the variable', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(name));
  });

  it('takes every assigned country calling code, one to three digits long', () => {
    expect(loadConfig({ ALLOWED_COUNTRY_CODES: '1,7,44,91,971,880,383,599' }).allowedCountryCodes).toEqual(['1', '7', '44', '91', '971', '880', '383', '599']);
  });

  it('takes the limits API.md allows at the edges', () => {
    const c = loadConfig({ OTP_LENGTH: '4', OTP_TTL_SECONDS: '600', STARTMESSAGING_TIMEOUT_MS: '100' });
    expect([c.otpLength, c.otpTtlSeconds, c.startMessagingTimeoutMs]).toEqual([4, 600, 100]);
    expect(loadConfig({ OTP_LENGTH: '8', STARTMESSAGING_TIMEOUT_MS: '20000' }).otpLength).toBe(8);
  });
});
