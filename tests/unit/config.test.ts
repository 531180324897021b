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
      verifyMaxFailuresPerPhonePerHour: 10,
      sendCooldownSeconds: 60,
      sendLimitPerPhonePerHour: 5,
      sendLimitPerPhonePerDay: 10,
      sendLimitPerIpPerHour: 20,
      sendBudgetPerDay: 10000,
      tokenTtlSeconds: 600,
      corsAllowedOrigins: [],
    });
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
    ['CORS_ALLOWED_ORIGINS', 'shop.example'],
    ['TOKEN_AUDIENCE', 'two words'],
    ['TOKEN_ISSUER', 'x'.repeat(201)],
  ])('refuses %s=%j with a message naming the variable', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(name));
  });

  it('takes the limits API.md allows at the edges', () => {
    const c = loadConfig({ OTP_LENGTH: '4', OTP_TTL_SECONDS: '600', STARTMESSAGING_TIMEOUT_MS: '100' });
    expect([c.otpLength, c.otpTtlSeconds, c.startMessagingTimeoutMs]).toEqual([4, 600, 100]);
    expect(loadConfig({ OTP_LENGTH: '8', STARTMESSAGING_TIMEOUT_MS: '20000' }).otpLength).toBe(8);
  });
});
