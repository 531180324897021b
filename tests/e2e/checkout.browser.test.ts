/**
 * The checkout page (public/) in headless Chromium.
 *
 * 1. Against a scripted API (request interception, no server): every error code of API.md gets a human
 *    message, headers and bodies are right, the page works under a strict CSP, the API base can be
 *    overridden. Screenshots of a few states go to test-output/mock-*.png.
 * 2. Against `npm start` (local/start.ts: the real handlers, embedded DynamoDB, local secrets, sandbox
 *    SMS): a person's whole flow — send, a wrong code, the right code, an early resend refused — with the
 *    code read from the sandbox's stdout line. Screenshot: test-output/checkout.png, and docs/checkout.png
 *    when the flow passed and UPDATE_DOCS_SCREENSHOT=1.
 *
 * Needs the Debian Chromium (`apt-get install -y chromium`); without it these tests FAIL, they never skip.
 */
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { buildOpenApi } from '../../scripts/build-openapi';
import { launchChromium } from '../support/browser-chromium';
import { groupAlive, missingLocalFiles, portOpen, REPO_ROOT, startLocalStack, type LocalStack } from '../support/browser-local-stack';
import { MOCK_ORIGIN, mockCheckout, watchPageProblems, type MockReply } from '../support/browser-mock-api';

const OUT = join(REPO_ROOT, 'test-output');
const PHONE = '+919876543210';
const IDEMPOTENCY_KEY = /^[A-Za-z0-9_\-:.]{8,128}$/;

let browser: Browser | undefined;
let browserError: Error | undefined;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  mkdirSync(OUT, { recursive: true });
  try {
    browser = await launchChromium();
  } catch (error) {
    browserError = error as Error;
  }
}, 90_000);

afterAll(async () => {
  await browser?.close();
});

const newPage = async (): Promise<Page> => {
  if (!browser) throw browserError ?? new Error('Chromium did not start');
  const context = await browser.newContext({
    viewport: { width: 540, height: 720 },
    locale: 'en-IN',
    timezoneId: 'Asia/Kolkata',
    colorScheme: 'light',
    serviceWorkers: 'block',
  });
  contexts.push(context);
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  return page;
};

afterEach(async () => {
  await Promise.all(contexts.splice(0).map((c) => c.close().catch(() => undefined)));
});

/* ------------------------------------------------------------------ page helpers */

const status = async (page: Page) => {
  const s = page.locator('#status');
  return {
    text: ((await s.textContent()) ?? '').trim(),
    code: await s.getAttribute('data-error-code'),
    kind: await s.getAttribute('data-kind'),
  };
};

/** Waits for the status region to show error `code`, and returns its text. */
const errorShown = async (page: Page, code: string, timeout = 15_000): Promise<string> => {
  try {
    await page.waitForSelector(`#status[data-kind="error"][data-error-code="${code}"]`, { timeout });
  } catch (error) {
    const now = await status(page).catch(() => undefined);
    throw new Error(`expected the error "${code}" in #status, found ${JSON.stringify(now)} (${(error as Error).message.split('\n')[0]})`);
  }
  return (await status(page)).text;
};

const openPage = async (page: Page, url: string) => {
  await page.goto(url);
  await page.waitForSelector('#otp-checkout[data-ready="true"]');
};

const sendFor = async (page: Page, phone = PHONE) => {
  await page.fill('#phone', phone);
  await page.click('#send-button');
};

const verifyWith = async (page: Page, code: string) => {
  await page.fill('#otp', code);
  await page.click('#verify-button');
};

const shot = async (page: Page, name: string) => {
  await page.screenshot({ path: join(OUT, name), fullPage: true });
};

const errorCodesOfContract = (): string[] =>
  (JSON.parse(readFileSync(join(REPO_ROOT, 'schemas/responses.json'), 'utf8')) as { definitions: { Error: { properties: { error: { enum: string[] } } } } })
    .definitions.Error.properties.error.enum;

/* ------------------------------------------------------------------ */

it('Chromium is installed and starts (apt-get install -y chromium)', () => {
  expect(browserError?.message).toBeUndefined();
  expect(browser?.isConnected()).toBe(true);
});

describe('checkout page against a scripted API', () => {
  it('has labelled controls, a live status region and the stable ids', async () => {
    const page = await newPage();
    const problems = await watchPageProblems(page);
    await mockCheckout(page);
    await openPage(page, `${MOCK_ORIGIN}/`);

    const phone = page.getByLabel('Mobile number', { exact: true });
    expect(await phone.getAttribute('id')).toBe('phone');
    expect(await phone.getAttribute('type')).toBe('tel');
    expect(await phone.getAttribute('placeholder')).toBe(PHONE);
    expect(await page.getByRole('button', { name: 'Send code' }).getAttribute('id')).toBe('send-button');

    const otp = page.locator('#otp');
    expect(await otp.getAttribute('inputmode')).toBe('numeric');
    expect(await otp.getAttribute('autocomplete')).toBe('one-time-code');
    expect(await page.locator('label[for="otp"]').count()).toBe(1);

    const region = page.locator('#status');
    expect(await region.getAttribute('role')).toBe('status');
    expect(await region.getAttribute('aria-live')).toBe('polite');

    expect(await page.locator('#verify-form').isHidden()).toBe(true);
    expect(await page.locator('#success').isHidden()).toBe(true);
    expect(await page.locator('html').getAttribute('lang')).toBe('en');
    expect(problems()).toEqual([]);
  });

  it('sends with a fresh Idempotency-Key per click, counts down the resend, verifies and shows the number and expiry', async () => {
    const page = await newPage();
    const problems = await watchPageProblems(page);
    const api = await mockCheckout(page);
    await openPage(page, `${MOCK_ORIGIN}/`);

    api.queue('send-otp', { status: 201, body: { otpRequestId: 'req_first', expiresAt: new Date(Date.now() + 300_000).toISOString(), resendAfterSeconds: 2 } });
    await sendFor(page, ' +91 98765-43210 ');
    await page.waitForSelector('#verify-form', { state: 'visible' });

    const first = api.calls[0]!;
    expect(first.url).toBe(`${MOCK_ORIGIN}/auth/send-otp`);
    expect(first.body).toEqual({ phoneNumber: PHONE });
    expect(first.headers['content-type']).toMatch(/^application\/json/);
    expect(first.headers['idempotency-key']).toMatch(IDEMPOTENCY_KEY);
    expect(await page.locator('#sent-number').textContent()).toBe(PHONE);
    expect(await page.locator('#code-expiry').getAttribute('datetime')).toMatch(/^\d{4}-\d\d-\d\dT/);

    // Live countdown on the resend button, then it enables itself.
    const resend = page.locator('#resend-button');
    expect(await resend.isDisabled()).toBe(true);
    expect(await resend.textContent()).toMatch(/^Resend code in [12] s$/);
    await page.waitForSelector('#resend-button:not([disabled])', { timeout: 5000 });
    expect(await resend.textContent()).toBe('Resend code');

    await resend.click();
    await page.waitForSelector('#status[data-kind="success"]');
    expect(api.count('send-otp')).toBe(2);
    const second = api.calls[1]!;
    expect(second.body).toEqual({ phoneNumber: PHONE });
    expect(second.headers['idempotency-key']).toMatch(IDEMPOTENCY_KEY);
    expect(second.headers['idempotency-key']).not.toBe(first.headers['idempotency-key']);
    expect(await resend.isDisabled()).toBe(true);
    expect(await resend.textContent()).toMatch(/^Resend code in (60|59) s$/);
    await shot(page, 'mock-code-step.png');

    await page.evaluate("window.__verified = null; document.addEventListener('otp-verified', function (e) { window.__verified = e.detail; });");
    const tokenExpiresAt = new Date(Date.now() + 600_000).toISOString();
    api.queue('verify-otp', { status: 200, body: { verified: true, token: 'hdr.payload.sig', tokenExpiresAt } });
    await verifyWith(page, '123456');
    await page.waitForSelector('#success', { state: 'visible' });

    const verify = api.calls[2]!;
    expect(verify.url).toBe(`${MOCK_ORIGIN}/auth/verify-otp`);
    expect(verify.body).toEqual({ otpRequestId: 'req_2_abcdef', otp: '123456' }); // the newest send's id
    expect(verify.headers['content-type']).toMatch(/^application\/json/);
    expect(await page.locator('#verified-number').textContent()).toBe(PHONE);
    expect(await page.locator('#token-expiry').getAttribute('datetime')).toBe(tokenExpiresAt);
    expect(await page.locator('#token-expiry').textContent()).toMatch(/\(in 10 min\)/);
    expect(await page.locator('#verify-form').isHidden()).toBe(true);
    expect(await page.evaluate('window.__verified')).toEqual({ phoneNumber: PHONE, token: 'hdr.payload.sig', tokenExpiresAt });
    expect(await page.locator('body').innerText()).not.toContain('hdr.payload.sig'); // the token is never shown
    await shot(page, 'mock-success.png');

    await page.click('#restart-button');
    await page.waitForSelector('#send-form', { state: 'visible' });
    expect(await page.inputValue('#phone')).toBe(PHONE);
    expect(problems()).toEqual([]);
  });

  type Case = { route: 'send-otp' | 'verify-otp'; reply: MockReply; code: string; message: RegExp; name?: string };
  const err = (status: number, error: string, extra: Record<string, unknown> = {}, headers?: Record<string, string>): MockReply => ({
    status,
    body: { error, message: 'server text', ...extra },
    ...(headers ? { headers } : {}),
  });
  const CASES: Case[] = [
    { route: 'send-otp', reply: err(400, 'invalid_request', { details: [{ path: '/phoneNumber' }] }), code: 'invalid_request', message: /not accepted\. Check the number/ },
    { route: 'send-otp', reply: err(400, 'invalid_phone_number'), code: 'invalid_phone_number', message: /does not look like a mobile number.*\+919876543210/ },
    { route: 'send-otp', reply: err(403, 'country_not_allowed'), code: 'country_not_allowed', message: /cannot send codes to numbers in that country/ },
    { route: 'send-otp', reply: err(403, 'challenge_failed'), code: 'challenge_failed', message: /confirm you are not a robot/ },
    { route: 'send-otp', reply: err(413, 'payload_too_large'), code: 'payload_too_large', message: /too long/ },
    { route: 'send-otp', reply: err(415, 'unsupported_media_type'), code: 'unsupported_media_type', message: /format the service does not accept/ },
    { route: 'send-otp', reply: err(409, 'idempotency_conflict'), code: 'idempotency_conflict', message: /clashed with an earlier one/ },
    { route: 'send-otp', reply: err(429, 'rate_limited', { retryAfterSeconds: 42 }, { 'Retry-After': '42' }), code: 'rate_limited', message: /Too many codes were requested\. Try again in 42 s\./ },
    { route: 'send-otp', reply: err(502, 'upstream_error'), code: 'upstream_error', message: /could not send the SMS/ },
    { route: 'send-otp', reply: err(503, 'service_unavailable', { retryAfterSeconds: 30 }, { 'Retry-After': '30' }), code: 'service_unavailable', message: /temporarily unavailable\. Try again in 30 s\./ },
    { route: 'send-otp', reply: err(503, 'service_unavailable'), code: 'service_unavailable', message: /temporarily unavailable\. Please try again in a few minutes/, name: 'service_unavailable without Retry-After' },
    { route: 'send-otp', reply: err(504, 'upstream_timeout'), code: 'upstream_timeout', message: /took too long to answer/ },
    { route: 'send-otp', reply: err(500, 'internal_error'), code: 'internal_error', message: /went wrong on our side/ },
    { route: 'send-otp', reply: 'network-failure', code: 'network_error', message: /Could not reach the service/ },
    { route: 'send-otp', reply: { status: 502, rawBody: '<html>Bad Gateway</html>', headers: { 'Content-Type': 'text/html' } }, code: 'http_502', message: /Unexpected answer from the service \(HTTP 502\)/, name: 'a non-JSON 502' },
    { route: 'verify-otp', reply: err(400, 'invalid_request'), code: 'invalid_request', message: /code could not be checked/ },
    { route: 'verify-otp', reply: err(400, 'invalid_code', { attemptsRemaining: 2 }), code: 'invalid_code', message: /That code is not correct\. 2 attempts remaining\./ },
    { route: 'verify-otp', reply: err(400, 'invalid_code', { attemptsRemaining: 1 }), code: 'invalid_code', message: /That code is not correct\. 1 attempt remaining\./, name: 'invalid_code, last attempt' },
    { route: 'verify-otp', reply: err(429, 'too_many_attempts'), code: 'too_many_attempts', message: /Too many wrong codes.*Request a new code/ },
    { route: 'verify-otp', reply: err(410, 'otp_expired'), code: 'otp_expired', message: /expired or was already used\. Request a new code/ },
    { route: 'verify-otp', reply: err(413, 'payload_too_large'), code: 'payload_too_large', message: /too long/ },
    { route: 'verify-otp', reply: err(415, 'unsupported_media_type'), code: 'unsupported_media_type', message: /format the service does not accept/ },
    { route: 'verify-otp', reply: err(503, 'service_unavailable'), code: 'service_unavailable', message: /temporarily unavailable/ },
    { route: 'verify-otp', reply: err(500, 'internal_error'), code: 'internal_error', message: /went wrong on our side/ },
    { route: 'verify-otp', reply: 'network-failure', code: 'network_error', message: /Could not reach the service/ },
  ];

  it('the cases below cover every error code of the contract', () => {
    const covered = new Set(CASES.map((c) => c.code));
    for (const code of errorCodesOfContract()) expect(`${code}: ${covered.has(code)}`).toBe(`${code}: true`);
  });

  it.each(CASES.map((c) => [c.name ?? `${c.code} on ${c.route}`, c] as const))('shows a human message for %s', async (_name, c) => {
    const page = await newPage();
    const problems = await watchPageProblems(page);
    const api = await mockCheckout(page);
    await openPage(page, `${MOCK_ORIGIN}/`);
    if (c.route === 'send-otp') {
      api.queue('send-otp', c.reply);
      await sendFor(page);
    } else {
      await sendFor(page);
      await page.waitForSelector('#verify-form', { state: 'visible' });
      api.queue('verify-otp', c.reply);
      await verifyWith(page, '654321');
    }
    const text = await errorShown(page, c.code);
    expect(text).toMatch(c.message);
    expect(text).not.toContain('server text'); // our own words, not whatever the server said
    expect(problems()).toEqual([]);

    if (c.route === 'send-otp') {
      expect(await page.locator('#verify-form').isHidden()).toBe(true);
      if (c.code === 'rate_limited') {
        expect(await page.locator('#send-button').isDisabled()).toBe(true);
        expect(await page.locator('#send-button').textContent()).toMatch(/^Send code in (42|41) s$/);
        await shot(page, 'mock-rate-limited.png');
      } else if (c.code === 'invalid_phone_number' || c.code === 'country_not_allowed') {
        expect(await page.locator('#phone').getAttribute('aria-invalid')).toBe('true');
      }
      if (c.code === 'network_error') expect(await page.locator('#send-button').isEnabled()).toBe(true); // can retry
    } else {
      expect(await page.locator('#success').isHidden()).toBe(true);
      if (c.code === 'invalid_code') {
        expect(await page.locator('#otp').getAttribute('aria-invalid')).toBe('true');
        expect(await page.locator('#verify-button').isEnabled()).toBe(true);
        if (!c.name) await shot(page, 'mock-invalid-code.png');
      }
      if (c.code === 'too_many_attempts' || c.code === 'otp_expired') {
        expect(await page.locator('#verify-button').isDisabled()).toBe(true); // the code is dead
      }
    }
  });

  it('checks input before calling the API', async () => {
    const page = await newPage();
    const api = await mockCheckout(page);
    await openPage(page, `${MOCK_ORIGIN}/`);
    await sendFor(page, '98765');
    expect(await errorShown(page, 'invalid_phone_number')).toMatch(/international format/);
    expect(api.calls).toEqual([]);
    await sendFor(page);
    await page.waitForSelector('#verify-form', { state: 'visible' });
    await verifyWith(page, '12');
    expect(await errorShown(page, 'invalid_request')).toMatch(/4 to 8 digits/);
    expect(api.count('verify-otp')).toBe(0);
  });

  it('a refused resend restarts the countdown from retryAfterSeconds', async () => {
    const page = await newPage();
    const api = await mockCheckout(page);
    await openPage(page, `${MOCK_ORIGIN}/`);
    api.queue('send-otp', { status: 201, body: { otpRequestId: 'r1', expiresAt: new Date(Date.now() + 300_000).toISOString(), resendAfterSeconds: 0 } });
    await sendFor(page);
    await page.waitForSelector('#resend-button:not([disabled])');
    api.queue('send-otp', err(429, 'rate_limited', { retryAfterSeconds: 17 }, { 'Retry-After': '17' }));
    await page.click('#resend-button');
    expect(await errorShown(page, 'rate_limited')).toMatch(/Try again in 17 s\./);
    expect(await page.locator('#resend-button').isDisabled()).toBe(true);
    expect(await page.locator('#resend-button').textContent()).toMatch(/^Resend code in (17|16) s$/);
  });

  it('uses ?api= or data-api-base as the API base URL, and refuses a non-http one', async () => {
    const apiOrigin = 'https://api.example.test';

    const byQuery = await newPage();
    const problems = await watchPageProblems(byQuery);
    const api1 = await mockCheckout(byQuery, { apiOrigin });
    await openPage(byQuery, `${MOCK_ORIGIN}/?api=${encodeURIComponent(`${apiOrigin}/prod/`)}`);
    await sendFor(byQuery);
    await byQuery.waitForSelector('#verify-form', { state: 'visible' });
    expect(api1.calls[0]!.url).toBe(`${apiOrigin}/prod/auth/send-otp`);
    expect(problems()).toEqual([]);

    const byAttribute = await newPage();
    const api2 = await mockCheckout(byAttribute, {
      apiOrigin,
      html: (html) => html.replace('id="otp-checkout"', `id="otp-checkout" data-api-base="${apiOrigin}/v1"`),
    });
    await openPage(byAttribute, `${MOCK_ORIGIN}/`);
    await sendFor(byAttribute);
    await byAttribute.waitForSelector('#verify-form', { state: 'visible' });
    expect(api2.calls[0]!.url).toBe(`${apiOrigin}/v1/auth/send-otp`);

    // A hosted copy (not on this machine) ignores ?api=: a link cannot point it at someone else's server.
    const hosted = await newPage();
    const shop = 'https://shop.example';
    const api4 = await mockCheckout(hosted, { pageOrigin: shop });
    await openPage(hosted, `${shop}/?api=${encodeURIComponent('https://evil.example')}`);
    await sendFor(hosted);
    await hosted.waitForSelector('#verify-form', { state: 'visible' });
    expect(api4.calls[0]!.url).toBe(`${shop}/auth/send-otp`);

    const bad = await newPage();
    const api3 = await mockCheckout(bad);
    await openPage(bad, `${MOCK_ORIGIN}/?api=${encodeURIComponent('javascript:alert(1)')}`);
    expect(await errorShown(bad, 'configuration')).toMatch(/misconfigured/);
    expect(await bad.locator('#send-button').isDisabled()).toBe(true);
    expect(api3.calls).toEqual([]);
  });

  it('has no inline script or style and no external resource, and runs under a strict CSP', async () => {
    const html = readFileSync(join(REPO_ROOT, 'public/index.html'), 'utf8');
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/i);
    expect(html).not.toMatch(/<style/i);
    expect(html).not.toMatch(/\sstyle=/i);
    expect(html).not.toMatch(/\son[a-z]+=/i);
    for (const m of html.matchAll(/\s(?:src|href)="([^"]*)"/g)) expect(m[1]).toMatch(/^(?!https?:|\/\/)/);
    const css = readFileSync(join(REPO_ROOT, 'public/checkout.css'), 'utf8');
    expect(css).not.toMatch(/@import|url\(/i);
    const js = readFileSync(join(REPO_ROOT, 'public/checkout.js'), 'utf8');
    expect(js).not.toMatch(/\beval\(|new Function|innerHTML|document\.write/);

    const page = await newPage();
    const problems = await watchPageProblems(page);
    const api = await mockCheckout(page, {
      csp: "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    });
    await openPage(page, `${MOCK_ORIGIN}/`);
    await sendFor(page);
    await page.waitForSelector('#verify-form', { state: 'visible' });
    await verifyWith(page, '123456');
    await page.waitForSelector('#success', { state: 'visible' });
    expect(api.calls.length).toBe(2);
    // The stylesheet applied (not blocked): the card has its max width.
    // (A function, not a string: the page's CSP forbids string evaluation; `any`: no DOM lib in the tests.)
    expect(await page.locator('#otp-checkout').evaluate((el: any) => (globalThis as any).getComputedStyle(el).maxWidth)).toBe('416px');
    expect(problems()).toEqual([]);
  });
});

/* ------------------------------------------------------------------ the real thing */

describe('checkout page against `npm start` (real handlers, sandbox SMS)', () => {
  let stack: LocalStack | undefined;
  let stackError: Error | undefined;

  beforeAll(async () => {
    const missing = missingLocalFiles();
    if (missing.length) {
      stackError = new Error(`The local stack is not there yet: missing ${missing.join(', ')}.`);
      return;
    }
    try {
      stack = await startLocalStack({ readyTimeoutMs: 90_000 });
    } catch (error) {
      stackError = error as Error;
    }
  }, 120_000);

  afterAll(async () => {
    if (!stack) return;
    if (groupAlive(stack.pid)) await stack.stop(10_000);
    if (groupAlive(stack.pid)) throw new Error(`process group ${stack.pid} of npm start is still alive`);
  }, 30_000);

  const need = (): LocalStack => {
    if (!stack) throw stackError ?? new Error('the local stack did not start');
    return stack;
  };

  it('starts and prints "OTP service ready at http://127.0.0.1:<PORT>"', () => {
    expect(stackError?.message).toBeUndefined();
    expect(need().url).toBe(`http://127.0.0.1:${need().port}`);
  });

  it('serves the page at / and the generated OpenAPI document at /openapi.json', async () => {
    const { url } = need();
    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await page.text()).toContain('id="otp-checkout"');
    const js = await fetch(`${url}/checkout.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    const css = await fetch(`${url}/checkout.css`);
    expect(css.headers.get('content-type')).toMatch(/^text\/css/);
    const openapi = await fetch(`${url}/openapi.json`);
    expect(openapi.status).toBe(200);
    expect(await openapi.json()).toEqual(buildOpenApi());
  });

  it('sends, refuses a wrong code with attempts left, verifies the right one, then refuses an early resend', async () => {
    const s = need();
    const page = await newPage();
    const exchanges: string[] = [];
    page.on('response', (response) => {
      if (!/\/auth\//.test(response.url())) return;
      response.text().then(
        (body) => exchanges.push(`${response.request().method()} ${new URL(response.url()).pathname} -> ${response.status()} ${body.slice(0, 300)}`),
        () => exchanges.push(`${response.url()} -> ${response.status()} (no body)`),
      );
    });
    try {
      await realFlow(s, page);
    } catch (error) {
      // Enough context to tell a page bug from a handler bug.
      throw new Error(
        `${(error as Error).message}\n--- /auth exchanges ---\n${exchanges.join('\n')}\n--- npm start output (tail) ---\n${s.output().slice(-3000)}`,
        { cause: error },
      );
    }
  }, 120_000);

  const realFlow = async (s: LocalStack, page: Page) => {
    const problems = await watchPageProblems(page);
    const sendKeys: string[] = [];
    page.on('request', (request) => {
      if (request.url().endsWith('/auth/send-otp') && request.method() === 'POST') sendKeys.push(request.headers()['idempotency-key'] ?? '');
    });

    await openPage(page, `${s.url}/`);

    // 1. Send: the sandbox prints the code for the masked number.
    const mark = s.output().length;
    await sendFor(page);
    await page.waitForSelector('#verify-form', { state: 'visible', timeout: 30_000 });
    const sms = await s.waitForSms(mark);
    expect(sms.masked).toMatch(/3210$/);
    expect(sms.masked).not.toContain('98765');
    expect(s.smsSince(mark)).toHaveLength(1);
    expect(await page.locator('#sent-number').textContent()).toBe(PHONE);

    // The resend button is disabled with a live countdown.
    const resend = page.locator('#resend-button');
    const cooldown = Number(process.env.SEND_COOLDOWN_SECONDS ?? '60');
    if (cooldown > 0) {
      expect(await resend.isDisabled()).toBe(true);
      const before = Number(/in (\d+) s$/.exec((await resend.textContent()) ?? '')?.[1]);
      expect(before).toBeGreaterThan(0);
      expect(before).toBeLessThanOrEqual(cooldown);
      const until = Date.now() + 5000;
      let now = before;
      while (now >= before && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 200));
        now = Number(/in (\d+) s$/.exec((await resend.textContent()) ?? '')?.[1]);
      }
      expect(now).toBeLessThan(before); // it counts down by itself
    }

    // 2. A wrong code.
    const wrong = sms.code.slice(0, -1) + String((Number(sms.code.slice(-1)) + 1) % 10);
    await verifyWith(page, wrong);
    const invalid = await errorShown(page, 'invalid_code');
    expect(invalid).toMatch(/That code is not correct\. \d+ attempts? remaining\./);
    if (!process.env.VERIFY_MAX_ATTEMPTS) expect(invalid).toContain('2 attempts remaining');

    // 3. The right code.
    const started = Date.now();
    await verifyWith(page, sms.code);
    await page.waitForSelector('#success', { state: 'visible', timeout: 20_000 });
    expect(await page.locator('#verified-number').textContent()).toBe(PHONE);
    const expiresAt = Date.parse((await page.locator('#token-expiry').getAttribute('datetime')) ?? '');
    expect(expiresAt).toBeGreaterThan(started);
    const ttl = Number(process.env.TOKEN_TTL_SECONDS ?? '600');
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + ttl * 1000 + 5000);
    expect(((await page.locator('#token-expiry').textContent()) ?? '').length).toBeGreaterThan(4);
    await shot(page, 'checkout.png');

    // 4. Another send to the same number at once: refused by the cooldown, no SMS.
    const mark2 = s.output().length;
    await page.click('#restart-button');
    await page.waitForSelector('#send-form', { state: 'visible' });
    expect(await page.inputValue('#phone')).toBe(PHONE);
    await page.click('#send-button');
    if (cooldown > 0) {
      const limited = await errorShown(page, 'rate_limited');
      expect(limited).toMatch(/Try again in \d+ s\./);
      expect(await page.locator('#send-button').isDisabled()).toBe(true);
      expect(await page.locator('#send-button').textContent()).toMatch(/^Send code in \d+ s$/);
      await shot(page, 'checkout-rate-limited.png');
      await new Promise((r) => setTimeout(r, 500));
      expect(s.smsSince(mark2)).toEqual([]);
    } else {
      await page.waitForSelector('#verify-form', { state: 'visible' });
      await s.waitForSms(mark2);
    }

    // Each click had its own Idempotency-Key.
    expect(sendKeys).toHaveLength(2);
    for (const key of sendKeys) expect(key).toMatch(IDEMPOTENCY_KEY);
    expect(new Set(sendKeys).size).toBe(2);
    expect(problems()).toEqual([]);

    // Passed: the README's picture, refreshed only on request so a test run leaves the tree clean.
    if (process.env.UPDATE_DOCS_SCREENSHOT === '1') {
      mkdirSync(join(REPO_ROOT, 'docs'), { recursive: true });
      copyFileSync(join(OUT, 'checkout.png'), join(REPO_ROOT, 'docs', 'checkout.png'));
    }
  };

  it('stops on SIGTERM and leaves no process and no listener behind', async () => {
    const s = need();
    // Whatever else the banner says it started (its own ports, a serverless-offline pid in another group).
    const banner = s.output().split(/\[sandbox-sms\]/)[0]!;
    const ports = [...new Set([...banner.matchAll(/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1])))];
    const pids = [...new Set([...banner.matchAll(/\bpid (\d+)/g)].map((m) => Number(m[1])))];
    const { graceful } = await s.stop(15_000);
    expect(groupAlive(s.pid)).toBe(false);
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      } catch {
        return false;
      }
    };
    expect(pids.filter(alive)).toEqual([]);
    const open: number[] = [];
    for (const port of [s.port, ...ports]) if (await portOpen(port)) open.push(port);
    expect(open).toEqual([]);
    expect(graceful).toBe(true);
  }, 40_000);
});
