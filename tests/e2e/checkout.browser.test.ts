/**
 * The OTP widget (public/otp-widget.js, .css) and its demo page (public/index.html) in headless Chromium.
 *
 * 1. Against a scripted API (request interception, no server): embedded exactly as the README says, every
 *    error code of the contract gets a human message next to the right field, Indian number entry, the
 *    page traps of issue 14, English and Hindi, the bot challenge (with the stand-in provider script), a
 *    strict CSP, and axe-core in every state (any violation fails). Screenshots go to test-output/mock-*.png.
 * 2. Against `npm start` (local/start.ts: the real handlers, embedded DynamoDB, local secrets, sandbox
 *    SMS): a person's whole flow — send, a wrong code, the right code, an early resend refused — with the
 *    code read from the sandbox's stdout line, axe-clean at each step. Screenshot: test-output/checkout.png,
 *    and docs/checkout.png when the flow passed and UPDATE_DOCS_SCREENSHOT=1.
 *
 * Needs the Debian Chromium (`apt-get install -y chromium`); without it these tests FAIL, they never skip.
 */
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { buildOpenApi } from '../../scripts/build-openapi';
import { axeViolations, contrastRatio, serveAxe } from '../support/browser-axe';
import { launchChromium } from '../support/browser-chromium';
import { groupAlive, missingLocalFiles, portOpen, REPO_ROOT, startLocalStack, type LocalStack } from '../support/browser-local-stack';
import { MOCK_ORIGIN, mockCheckout, watchPageProblems, type MockReply, type ServeOptions } from '../support/browser-mock-api';

const OUT = join(REPO_ROOT, 'test-output');
const PHONE = '+919876543210';
const SHOWN = '+91 98765 43210';
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

const newPage = async (colorScheme: 'light' | 'dark' = 'light'): Promise<Page> => {
  if (!browser) throw browserError ?? new Error('Chromium did not start');
  const context = await browser.newContext({
    viewport: { width: 540, height: 720 },
    locale: 'en-IN',
    timezoneId: 'Asia/Kolkata',
    colorScheme,
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

const T = (id: string) => `[data-otp-widget] [data-testid="${id}"]`;

const status = async (page: Page) => {
  const s = page.locator(T('status'));
  return { text: ((await s.textContent()) ?? '').trim(), code: await s.getAttribute('data-error-code'), kind: await s.getAttribute('data-kind') };
};

/** Waits for error `code` (in the status region or next to a field) and returns its text. */
const errorShown = async (page: Page, code: string, timeout = 15_000): Promise<string> => {
  const selector = `[data-otp-widget] [data-kind="error"][data-error-code="${code}"]`;
  try {
    await page.waitForSelector(selector, { timeout });
  } catch (error) {
    const now = await page.locator('[data-otp-widget] [data-kind]').allTextContents().catch(() => []);
    throw new Error(`expected the error "${code}", found ${JSON.stringify(now)} (${(error as Error).message.split('\n')[0]})`);
  }
  return ((await page.locator(selector).textContent()) ?? '').trim();
};

/** The mock API plus axe-core served from the page's origin. */
const mockWithAxe = async (page: Page, opts: ServeOptions = {}) => {
  const api = await mockCheckout(page, opts);
  await serveAxe(page, opts.pageOrigin ?? MOCK_ORIGIN);
  return api;
};

const openPage = async (page: Page, url: string) => {
  await page.goto(url);
  await page.waitForSelector('[data-otp-widget][data-ready="true"]');
};

const sendFor = async (page: Page, phone = PHONE) => {
  await page.fill(T('phone'), phone);
  await page.click(T('send-button'));
};

const verifyWith = async (page: Page, code: string) => {
  await page.fill(T('otp'), code);
  await page.click(T('verify-button'));
};

const shot = async (page: Page, name: string) => {
  await page.screenshot({ path: join(OUT, name), fullPage: true });
};

/** No axe violation in this state (named in the failure). */
const expectAxeClean = async (page: Page, state: string) => {
  expect({ state, violations: await axeViolations(page) }).toEqual({ state, violations: [] });
};

const withAttrs = (attrs: string): ServeOptions['html'] => (html) => html.replace('<div data-otp-widget', `<div data-otp-widget ${attrs}`);

const future = (s: number) => new Date(Date.now() + s * 1000).toISOString();

const errorCodesOfContract = (): string[] =>
  (JSON.parse(readFileSync(join(REPO_ROOT, 'schemas/responses.json'), 'utf8')) as { definitions: { Error: { properties: { error: { enum: string[] } } } } })
    .definitions.Error.properties.error.enum;

/* ------------------------------------------------------------------ */

it('Chromium is installed and starts (apt-get install -y chromium)', () => {
  expect(browserError?.message).toBeUndefined();
  expect(browser?.isConnected()).toBe(true);
});

describe('the widget embedded exactly as the README says', () => {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Add it to your checkout'));
  const block = (lang: string) => {
    const m = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(section);
    if (!m) throw new Error(`README.md, "Add it to your checkout", has no \`\`\`${lang} block`);
    return m[1]!;
  };

  it('two lines of HTML, the README CSP, and the README listener that posts the token to the shop', async () => {
    const snippet = block('html');
    expect(snippet.trim().split('\n')).toHaveLength(2);
    const listener = block('js');
    const csp = /^Content-Security-Policy: (.+)$/m.exec(section)?.[1];
    expect(csp).toBeDefined();
    const apiBase = /data-api-base="([^"]+)"/.exec(snippet)?.[1];
    expect(apiBase).toMatch(/^https:\/\//);

    const shop = 'https://shop.example';
    const page = await newPage();
    const problems = await watchPageProblems(page);
    const api = await mockWithAxe(page, {
      pageOrigin: shop,
      apiOrigin: new URL(apiBase!).origin,
      csp: csp!,
      html: () =>
        `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop · Checkout</title>` +
        `<script src="/shop-checkout.js" defer></script></head><body><main><h1>Checkout</h1>\n${snippet}</main></body></html>`,
    });
    const confirmed: unknown[] = [];
    await page.route(`${shop}/shop-checkout.js`, (route) => route.fulfill({ status: 200, contentType: 'text/javascript', body: listener }));
    await page.route(`${shop}/orders/**`, async (route) => {
      confirmed.push({ path: new URL(route.request().url()).pathname, body: route.request().postDataJSON() });
      await route.fulfill({ status: 204 });
    });

    await openPage(page, `${shop}/`);
    await expectAxeClean(page, 'embedded: phone');
    await sendFor(page, '98765 43210');
    await page.waitForSelector(T('verify-form'), { state: 'visible' });
    expect(api.calls[0]!.url).toBe(`${apiBase}/auth/send-otp`);
    await verifyWith(page, '123456');
    await page.waitForSelector(T('success'), { state: 'visible' });
    for (let i = 0; i < 50 && confirmed.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(confirmed).toHaveLength(1);
    expect(JSON.stringify(confirmed[0])).toContain('eyJhbGciOiJIUzI1NiJ9'); // the token reached the shop's back end
    await expectAxeClean(page, 'embedded: done');
    expect(problems()).toEqual([]);
  });
});

describe('the widget against a scripted API', () => {
  it('has labelled controls, a fixed +91, a live status region, errors tied to their fields', async () => {
    const page = await newPage();
    const problems = await watchPageProblems(page);
    await mockWithAxe(page);
    await openPage(page, `${MOCK_ORIGIN}/`);

    const phone = page.getByLabel('Mobile number', { exact: true });
    expect(await phone.getAttribute('data-testid')).toBe('phone');
    expect(await phone.getAttribute('type')).toBe('tel');
    expect(await phone.getAttribute('autocomplete')).toBe('tel-national');
    expect(await page.locator('[data-otp-widget] .otpw-prefix').textContent()).toBe('+91');
    expect(await page.getByRole('button', { name: 'Send code' }).getAttribute('data-testid')).toBe('send-button');
    const describedBy = (await phone.getAttribute('aria-describedby'))!.split(' ');
    expect(describedBy).toContain(await page.locator(T('phone-error')).getAttribute('id'));

    const otp = page.locator(T('otp'));
    expect(await otp.getAttribute('inputmode')).toBe('numeric');
    expect(await otp.getAttribute('autocomplete')).toBe('one-time-code');
    expect((await otp.getAttribute('aria-describedby'))!.split(' ')).toContain(await page.locator(T('otp-error')).getAttribute('id'));

    const region = page.locator(T('status'));
    expect(await region.getAttribute('role')).toBe('status');
    expect(await region.getAttribute('aria-live')).toBe('polite');
    expect(await page.locator(T('verify-form')).isHidden()).toBe(true);
    expect(await page.locator(T('success')).isHidden()).toBe(true);
    await expectAxeClean(page, 'phone step');
    expect(problems()).toEqual([]);
  });

  it.each([
    ['98765 43210'], ['9876543210'], ['09876543210'], ['+91 98765 43210'], ['+91-98765-43210'], ['0091 98765 43210'], ['91 98765 43210'], [' (+91) 98765-43210 '],
  ])('accepts an Indian number typed as %j', async (typed) => {
    const page = await newPage();
    const api = await mockCheckout(page);
    await openPage(page, `${MOCK_ORIGIN}/`);
    await sendFor(page, typed);
    await page.waitForSelector(T('verify-form'), { state: 'visible' });
    expect(api.calls[0]!.body).toEqual({ phoneNumber: PHONE });
    expect(await page.locator(T('sent-number')).textContent()).toBe(SHOWN);
  });

  it.each([['98765'], ['12345 67890'], ['+44 7700 900123'], ['987654321012']])('refuses %j before calling the API', async (typed) => {
    const page = await newPage();
    const api = await mockWithAxe(page);
    await openPage(page, `${MOCK_ORIGIN}/`);
    await sendFor(page, typed);
    expect(await errorShown(page, 'invalid_phone_number')).toMatch(/10-digit Indian mobile number/);
    expect(await page.locator(T('phone')).getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator(T('status')).textContent()).toBe(''); // the message sits next to its field
    expect(api.calls).toEqual([]);
    await expectAxeClean(page, `phone error ${typed}`);
  });

  it('takes international numbers when more countries are allowed (data-countries)', async () => {
    const page = await newPage();
    const api = await mockCheckout(page, { html: withAttrs('data-countries="91,44"') });
    await openPage(page, `${MOCK_ORIGIN}/`);
    expect(await page.locator('[data-otp-widget] .otpw-prefix').count()).toBe(0);
    await sendFor(page, '+44 7700 900123');
    await page.waitForSelector(T('verify-form'), { state: 'visible' });
    expect(api.calls[0]!.body).toEqual({ phoneNumber: '+447700900123' });
    await page.click(T('change-number'));
    await sendFor(page, '98765 43210'); // still the Indian way
    await page.waitForSelector(T('verify-form'), { state: 'visible' });
    expect(api.calls[1]!.body).toEqual({ phoneNumber: PHONE });
  });

  it('sends with a fresh Idempotency-Key per click, counts down the resend, verifies once and fires otp-verified', async () => {
    const page = await newPage();
    const problems = await watchPageProblems(page);
    const api = await mockWithAxe(page);
    await openPage(page, `${MOCK_ORIGIN}/`);

    api.queue('send-otp', { status: 201, body: { otpRequestId: 'req_first', expiresAt: future(300), resendAfterSeconds: 2 } });
    await sendFor(page, ' 98765-43210 ');
    await page.waitForSelector(T('verify-form'), { state: 'visible' });

    const first = api.calls[0]!;
    expect(first.url).toBe(`${MOCK_ORIGIN}/auth/send-otp`);
    expect(first.body).toEqual({ phoneNumber: PHONE });
    expect(first.headers['content-type']).toMatch(/^application\/json/);
    expect(first.headers['idempotency-key']).toMatch(IDEMPOTENCY_KEY);
    expect(await page.locator(T('sent-number')).textContent()).toBe(SHOWN);
    expect(await page.locator(T('code-expiry')).getAttribute('datetime')).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(await page.evaluate(() => (globalThis as any).document.activeElement?.getAttribute('data-testid'))).toBe('otp');
    await expectAxeClean(page, 'code step, resend counting down');

    const resend = page.locator(T('resend-button'));
    expect(await resend.isDisabled()).toBe(true);
    expect(await resend.textContent()).toMatch(/^Resend code in [12] s$/);
    await page.waitForSelector(`${T('resend-button')}:not([disabled])`, { timeout: 5000 });
    expect(await resend.textContent()).toBe('Resend code');

    await resend.click();
    await page.waitForSelector(`${T('status')}[data-kind="success"]`);
    expect(api.count('send-otp')).toBe(2);
    const second = api.calls[1]!;
    expect(second.headers['idempotency-key']).not.toBe(first.headers['idempotency-key']);
    expect(await resend.textContent()).toMatch(/^Resend code in (60|59) s$/);
    await shot(page, 'mock-code-step.png');
    await expectAxeClean(page, 'code step after a resend');

    await page.evaluate("window.__verified = null; document.addEventListener('otp-verified', function (e) { window.__verified = e.detail; });");
    const tokenExpiresAt = future(600);
    api.queue('verify-otp', { status: 200, body: { verified: true, token: 'hdr.payload.sig', tokenExpiresAt } });
    await verifyWith(page, '123456');
    await page.waitForSelector(T('success'), { state: 'visible' });

    expect(api.calls[2]!.body).toEqual({ otpRequestId: 'req_2_abcdef', otp: '123456' }); // the newest send's id
    expect(await page.evaluate('window.__verified')).toEqual({ phoneNumber: PHONE, token: 'hdr.payload.sig', tokenExpiresAt });
    const text = await page.locator('body').innerText();
    expect(text).not.toContain('hdr.payload.sig'); // the token is never shown
    expect(text.match(/verified/gi)).toHaveLength(1); // success is said once
    expect(text).not.toMatch(/valid until|expires/i); // nor is the token's lifetime
    expect(await page.locator(T('status')).textContent()).toBe('');
    expect(await page.evaluate(() => (globalThis as any).document.activeElement?.getAttribute('data-testid'))).toBe('success');
    await shot(page, 'mock-success.png');
    await expectAxeClean(page, 'done');

    await page.click(T('restart-button'));
    await page.waitForSelector(T('send-form'), { state: 'visible' });
    expect(await page.inputValue(T('phone'))).toBe(SHOWN);
    expect(problems()).toEqual([]);
  });

  it('"Use a different number", then the same number again: back to the code already sent, no new SMS, no 429', async () => {
    const page = await newPage();
    const api = await mockWithAxe(page);
    await openPage(page, `${MOCK_ORIGIN}/`);
    await sendFor(page);
    await page.waitForSelector(T('verify-form'), { state: 'visible' });
    await page.click(T('change-number'));
    await page.waitForSelector(T('send-form'), { state: 'visible' });
    await sendFor(page, '098765 43210');
    await page.waitForSelector(T('verify-form'), { state: 'visible' });
    expect(api.count('send-otp')).toBe(1);
    expect((await status(page)).text).toBe(`Enter the code we already sent to ${SHOWN}.`);
    expect(await page.locator(T('resend-button')).isDisabled()).toBe(true); // its countdown goes on
    await expectAxeClean(page, 'code step again');
    await verifyWith(page, '123456');
    await page.waitForSelector(T('success'), { state: 'visible' });
    expect(api.calls[1]!.body).toEqual({ otpRequestId: 'req_1_abcdef', otp: '123456' });
  });

  it('Enter submits each step, and focus follows the flow', async () => {
    const page = await newPage();
    const api = await mockCheckout(page);
    await openPage(page, `${MOCK_ORIGIN}/`);
    await page.fill(T('phone'), '98765 43210');
    await page.press(T('phone'), 'Enter');
    await page.waitForSelector(T('verify-form'), { state: 'visible' });
    const focused = () => page.evaluate(() => (globalThis as any).document.activeElement?.getAttribute('data-testid'));
    expect(await focused()).toBe('otp');
    await page.keyboard.type('123456');
    await page.keyboard.press('Enter');
    await page.waitForSelector(T('success'), { state: 'visible' });
    expect(await focused()).toBe('success');
    expect(api.calls.map((c) => c.route)).toEqual(['send-otp', 'verify-otp']);
  });

  it('the send countdown belongs to the number it was about', async () => {
    const page = await newPage();
    const api = await mockWithAxe(page);
    await openPage(page, `${MOCK_ORIGIN}/`);
    api.queue('send-otp', { status: 429, body: { error: 'rate_limited', message: 'x', retryAfterSeconds: 42 }, headers: { 'Retry-After': '42' } });
    await sendFor(page);
    expect(await errorShown(page, 'rate_limited')).toMatch(/Try again in 42 s\./);
    const send = page.locator(T('send-button'));
    expect(await send.textContent()).toMatch(/^Send code in (42|41) s$/);
    await shot(page, 'mock-rate-limited.png');
    await expectAxeClean(page, 'rate limited');
    await page.fill(T('phone'), '91234 56789');
    expect(await send.isEnabled()).toBe(true);
    expect(await send.textContent()).toBe('Send code');
    await page.fill(T('phone'), '98765 43210');
    expect(await send.isDisabled()).toBe(true);
    await page.fill(T('phone'), '91234 56789');
    await page.click(T('send-button'));
    await page.waitForSelector(T('verify-form'), { state: 'visible' });
    expect(api.calls[1]!.body).toEqual({ phoneNumber: '+919123456789' });
  });

  type Case = { route: 'send-otp' | 'verify-otp'; reply: MockReply; code: string; message: RegExp; field?: 'phone' | 'otp'; name?: string };
  const err = (status: number, error: string, extra: Record<string, unknown> = {}, headers?: Record<string, string>): MockReply => ({
    status,
    body: { error, message: 'server text', ...extra },
    ...(headers ? { headers } : {}),
  });
  const CASES: Case[] = [
    { route: 'send-otp', reply: err(400, 'invalid_request', { details: [{ path: '/phoneNumber' }] }), code: 'invalid_request', message: /not accepted\. Check the number/ },
    { route: 'send-otp', reply: err(400, 'invalid_phone_number'), code: 'invalid_phone_number', message: /does not look like a mobile number/, field: 'phone' },
    { route: 'send-otp', reply: err(403, 'country_not_allowed'), code: 'country_not_allowed', message: /cannot send codes to numbers in that country/, field: 'phone' },
    { route: 'send-otp', reply: err(403, 'challenge_failed'), code: 'challenge_failed', message: /security check did not pass/ },
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
    { route: 'verify-otp', reply: err(400, 'invalid_request'), code: 'invalid_request', message: /code could not be checked/, field: 'otp' },
    { route: 'verify-otp', reply: err(400, 'invalid_code', { attemptsRemaining: 2 }), code: 'invalid_code', message: /That code is not correct\. 2 attempts remaining\./, field: 'otp' },
    { route: 'verify-otp', reply: err(400, 'invalid_code', { attemptsRemaining: 1 }), code: 'invalid_code', message: /That code is not correct\. 1 attempt remaining\./, field: 'otp', name: 'invalid_code, last attempt' },
    { route: 'verify-otp', reply: err(429, 'too_many_attempts', { retryAfterSeconds: 60 }), code: 'too_many_attempts', message: /Too many wrong codes.*Request a new code/ },
    { route: 'verify-otp', reply: err(410, 'otp_expired'), code: 'otp_expired', message: /expired or was already used\. Request a new code/ },
    { route: 'verify-otp', reply: err(413, 'payload_too_large'), code: 'payload_too_large', message: /too long/ },
    { route: 'verify-otp', reply: err(415, 'unsupported_media_type'), code: 'unsupported_media_type', message: /format the service does not accept/ },
    { route: 'verify-otp', reply: err(503, 'service_unavailable'), code: 'service_unavailable', message: /temporarily unavailable/ },
    { route: 'verify-otp', reply: err(500, 'internal_error'), code: 'internal_error', message: /went wrong on our side/ },
    { route: 'verify-otp', reply: 'network-failure', code: 'network_error', message: /Could not reach the service/ },
  ];

  it('the cases below cover every error code of the contract', () => {
    const covered = new Set(CASES.map((c) => c.code));
    for (const code of [...errorCodesOfContract(), 'challenge_failed']) expect(`${code}: ${covered.has(code)}`).toBe(`${code}: true`);
  });

  it.each(CASES.map((c) => [c.name ?? `${c.code} on ${c.route}`, c] as const))('shows a human message for %s, axe-clean', async (_name, c) => {
    const page = await newPage();
    const problems = await watchPageProblems(page);
    const api = await mockWithAxe(page);
    await openPage(page, `${MOCK_ORIGIN}/`);
    if (c.route === 'send-otp') {
      api.queue('send-otp', c.reply);
      await sendFor(page);
    } else {
      await sendFor(page);
      await page.waitForSelector(T('verify-form'), { state: 'visible' });
      api.queue('verify-otp', c.reply);
      await verifyWith(page, '654321');
    }
    const text = await errorShown(page, c.code);
    expect(text).toMatch(c.message);
    expect(text).not.toContain('server text'); // our own words, not whatever the server said
    if (c.field) {
      expect(await page.locator(T(`${c.field}-error`)).getAttribute('data-error-code')).toBe(c.code);
      expect(await page.locator(T(c.field)).getAttribute('aria-invalid')).toBe('true');
    } else {
      expect((await status(page)).code).toBe(c.code);
    }
    expect(problems()).toEqual([]);

    if (c.route === 'send-otp') {
      expect(await page.locator(T('verify-form')).isHidden()).toBe(true);
      if (c.code === 'rate_limited') expect(await page.locator(T('send-button')).isDisabled()).toBe(true);
      if (c.code === 'network_error') expect(await page.locator(T('send-button')).isEnabled()).toBe(true); // can retry
    } else {
      expect(await page.locator(T('success')).isHidden()).toBe(true);
      if (c.code === 'invalid_code') {
        expect(await page.locator(T('verify-button')).isEnabled()).toBe(true);
        if (!c.name) await shot(page, 'mock-invalid-code.png');
      }
      if (c.code === 'too_many_attempts' || c.code === 'otp_expired') {
        expect(await page.locator(T('verify-button')).isDisabled()).toBe(true); // the code is dead
      }
    }
    await expectAxeClean(page, `error ${c.code}`);
  });

  it('checks the code before calling the API', async () => {
    const page = await newPage();
    const api = await mockCheckout(page);
    await openPage(page, `${MOCK_ORIGIN}/`);
    await sendFor(page);
    await page.waitForSelector(T('verify-form'), { state: 'visible' });
    await verifyWith(page, '12');
    expect(await errorShown(page, 'invalid_request')).toMatch(/4 to 8 digits/);
    expect(await page.locator(T('otp-error')).getAttribute('data-error-code')).toBe('invalid_request');
    expect(api.count('verify-otp')).toBe(0);
  });

  it('a refused resend restarts the countdown from retryAfterSeconds', async () => {
    const page = await newPage();
    const api = await mockCheckout(page);
    await openPage(page, `${MOCK_ORIGIN}/`);
    api.queue('send-otp', { status: 201, body: { otpRequestId: 'r1', expiresAt: future(300), resendAfterSeconds: 0 } });
    await sendFor(page);
    await page.waitForSelector(`${T('resend-button')}:not([disabled])`);
    api.queue('send-otp', err(429, 'rate_limited', { retryAfterSeconds: 17 }, { 'Retry-After': '17' }));
    await page.click(T('resend-button'));
    expect(await errorShown(page, 'rate_limited')).toMatch(/Try again in 17 s\./);
    expect(await page.locator(T('resend-button')).textContent()).toMatch(/^Resend code in (17|16) s$/);
  });

  it('speaks Hindi with data-lang="hi", axe-clean', async () => {
    const page = await newPage();
    const api = await mockWithAxe(page, { html: (h) => h.replace('data-lang="en"', 'data-lang="hi"') });
    await openPage(page, `${MOCK_ORIGIN}/`);
    expect(await page.locator('[data-otp-widget] section').getAttribute('lang')).toBe('hi');
    expect(await page.getByLabel('मोबाइल नंबर', { exact: true }).count()).toBe(1);
    expect(await page.locator(T('send-button')).textContent()).toBe('कोड भेजें');
    await expectAxeClean(page, 'hi: phone');
    await sendFor(page, '12345');
    expect(await errorShown(page, 'invalid_phone_number')).toMatch(/10 अंकों का भारतीय मोबाइल नंबर/);
    await sendFor(page, '98765 43210');
    await page.waitForSelector(T('verify-form'), { state: 'visible' });
    expect(await page.locator(T('sent-info')).textContent()).toContain(`कोड ${SHOWN} पर भेजा गया`);
    api.queue('verify-otp', err(400, 'invalid_code', { attemptsRemaining: 2 }));
    await verifyWith(page, '111111');
    expect(await errorShown(page, 'invalid_code')).toBe('यह कोड सही नहीं है। 2 कोशिशें बाकी हैं।');
    await shot(page, 'mock-hindi.png');
    await expectAxeClean(page, 'hi: invalid code');
  });

  it('meets non-text contrast (3:1): field borders and the focus ring, light and dark', async () => {
    for (const scheme of ['light', 'dark'] as const) {
      const page = await newPage(scheme);
      await mockWithAxe(page);
      await openPage(page, `${MOCK_ORIGIN}/`);
      await page.focus(T('phone'));
      await page.keyboard.press('Tab'); // focus-visible by keyboard: the send button
      const colours = await page.evaluate(() => {
        const doc = (globalThis as any).document;
        const css = (sel: string) => (globalThis as any).getComputedStyle(doc.querySelector(sel));
        return {
          background: css('[data-otp-widget] .otpw').backgroundColor as string,
          border: css('[data-otp-widget] [data-testid="phone"]').borderTopColor as string,
          focus: css('[data-otp-widget] [data-testid="send-button"]').outlineColor as string,
          focusStyle: css('[data-otp-widget] [data-testid="send-button"]').outlineStyle as string,
        };
      });
      expect(colours.focusStyle).toBe('solid');
      expect({ scheme, border: contrastRatio(colours.border, colours.background) >= 3 }).toEqual({ scheme, border: true });
      expect({ scheme, focus: contrastRatio(colours.focus, colours.background) >= 3 }).toEqual({ scheme, focus: true });
      await expectAxeClean(page, `${scheme}: phone step`);
      await sendFor(page);
      await page.waitForSelector(T('verify-form'), { state: 'visible' });
      await expectAxeClean(page, `${scheme}: code step`);
    }
  });

  it('with a bot challenge configured: renders the provider widget, sends challengeToken, handles 403 challenge_failed', async () => {
    const page = await newPage();
    const problems = await watchPageProblems(page);
    const api = await mockWithAxe(page, {
      html: withAttrs('data-challenge-provider="turnstile" data-challenge-site-key="local-site-key" data-challenge-script="/challenge-stand-in.js"'),
    });
    await openPage(page, `${MOCK_ORIGIN}/`);
    const box = page.locator('[data-testid="challenge-checkbox"]');
    await box.waitFor();
    await expectAxeClean(page, 'challenge: phone step');

    await sendFor(page);
    expect(await errorShown(page, 'challenge_required')).toMatch(/complete the security check/);
    expect(api.calls).toEqual([]);

    await box.check();
    expect((await status(page)).text).toBe('');
    api.queue('send-otp', err(403, 'challenge_failed'));
    await page.click(T('send-button'));
    expect(await errorShown(page, 'challenge_failed')).toMatch(/did not pass/);
    expect(api.calls[0]!.body).toEqual({ phoneNumber: PHONE, challengeToken: 'challenge-pass' });
    expect(await box.isChecked()).toBe(false); // a token is single-use: solve it again
    await expectAxeClean(page, 'challenge: failed');

    await box.check();
    await page.click(T('send-button'));
    await page.waitForSelector(T('verify-form'), { state: 'visible' });
    expect(api.calls[1]!.body).toEqual({ phoneNumber: PHONE, challengeToken: 'challenge-pass' });
    expect(await page.locator(T('challenge')).isVisible()).toBe(true); // a resend needs a fresh one too
    await expectAxeClean(page, 'challenge: code step');
    expect(problems()).toEqual([]);
  });

  it('uses data-api-base, takes ?api= only from this machine to this machine, and refuses a non-http one', async () => {
    const local = 'http://localhost:8';
    const byQuery = await newPage();
    const problems = await watchPageProblems(byQuery);
    const api1 = await mockCheckout(byQuery, { apiOrigin: local });
    await openPage(byQuery, `${MOCK_ORIGIN}/?api=${encodeURIComponent(`${local}/prod/`)}`);
    await sendFor(byQuery);
    await byQuery.waitForSelector(T('verify-form'), { state: 'visible' });
    expect(api1.calls[0]!.url).toBe(`${local}/prod/auth/send-otp`);
    expect(problems()).toEqual([]);

    const remote = 'https://api.example.test';
    const byAttribute = await newPage();
    const api2 = await mockCheckout(byAttribute, { apiOrigin: remote, html: (h) => h.replace('data-api-base=""', `data-api-base="${remote}/v1"`) });
    await openPage(byAttribute, `${MOCK_ORIGIN}/`);
    await sendFor(byAttribute);
    await byAttribute.waitForSelector(T('verify-form'), { state: 'visible' });
    expect(api2.calls[0]!.url).toBe(`${remote}/v1/auth/send-otp`);

    // ?api= naming a server elsewhere: refused, even on this machine.
    const elsewhere = await newPage();
    const api5 = await mockCheckout(elsewhere);
    await openPage(elsewhere, `${MOCK_ORIGIN}/?api=${encodeURIComponent('https://evil.example')}`);
    expect(await errorShown(elsewhere, 'configuration')).toMatch(/misconfigured/);
    expect(await elsewhere.locator(T('send-button')).isDisabled()).toBe(true);
    expect(api5.calls).toEqual([]);

    // A hosted copy (not on this machine) ignores ?api= altogether.
    const hosted = await newPage();
    const shop = 'https://shop.example';
    const api4 = await mockCheckout(hosted, { pageOrigin: shop });
    await openPage(hosted, `${shop}/?api=${encodeURIComponent('http://127.0.0.1:9')}`);
    await sendFor(hosted);
    await hosted.waitForSelector(T('verify-form'), { state: 'visible' });
    expect(api4.calls[0]!.url).toBe(`${shop}/auth/send-otp`);

    const bad = await newPage();
    const api3 = await mockCheckout(bad, { html: (h) => h.replace('data-api-base=""', 'data-api-base="javascript:alert(1)"') });
    await openPage(bad, `${MOCK_ORIGIN}/`);
    expect(await errorShown(bad, 'configuration')).toMatch(/misconfigured/);
    expect(api3.calls).toEqual([]);
  });

  it('has no inline script or style and no external resource, and runs under a strict CSP', async () => {
    const html = readFileSync(join(REPO_ROOT, 'public/index.html'), 'utf8');
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/i);
    expect(html).not.toMatch(/<style/i);
    expect(html).not.toMatch(/\sstyle=/i);
    expect(html).not.toMatch(/\son[a-z]+=/i);
    for (const m of html.matchAll(/\s(?:src|href)="([^"]*)"/g)) expect(m[1]).toMatch(/^(?!https?:|\/\/)/);
    for (const file of ['public/otp-widget.css', 'public/demo.css']) expect(readFileSync(join(REPO_ROOT, file), 'utf8')).not.toMatch(/@import|url\(/i);
    const js = readFileSync(join(REPO_ROOT, 'public/otp-widget.js'), 'utf8');
    expect(js).not.toMatch(/\beval\(|new Function|innerHTML|document\.write/);

    const page = await newPage();
    const problems = await watchPageProblems(page);
    const api = await mockCheckout(page, {
      csp: "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    });
    await openPage(page, `${MOCK_ORIGIN}/`);
    await sendFor(page);
    await page.waitForSelector(T('verify-form'), { state: 'visible' });
    await verifyWith(page, '123456');
    await page.waitForSelector(T('success'), { state: 'visible' });
    expect(api.calls.length).toBe(2);
    // The widget's stylesheet applied (not blocked): the card has its max width.
    expect(await page.locator('[data-otp-widget] .otpw').evaluate((el: any) => (globalThis as any).getComputedStyle(el).maxWidth)).toBe('416px');
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
    expect(await page.text()).toMatch(/<div data-otp-widget[^>]*><\/div>\s*<script src="otp-widget.js" defer><\/script>/);
    // Not framed by another site, types never guessed (API.md's local stack = a careful production host).
    expect(page.headers.get('content-security-policy')).toBe("frame-ancestors 'none'");
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    const js = await fetch(`${url}/otp-widget.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    expect(js.headers.get('x-content-type-options')).toBe('nosniff');
    const css = await fetch(`${url}/otp-widget.css`);
    expect(css.headers.get('content-type')).toMatch(/^text\/css/);
    const openapi = await fetch(`${url}/openapi.json`);
    expect(openapi.status).toBe(200);
    expect(await openapi.json()).toEqual(buildOpenApi());
  });

  it('sends, refuses a wrong code with attempts left, verifies the right one, then holds back or refuses an early resend', async () => {
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

    await serveAxe(page, s.url);
    await openPage(page, `${s.url}/`);
    await page.evaluate("window.__verified = null; document.addEventListener('otp-verified', function (e) { window.__verified = e.detail; });");
    await expectAxeClean(page, 'npm start: phone step');

    // 1. Send: the sandbox prints the code for the masked number.
    const mark = s.output().length;
    await sendFor(page);
    await page.waitForSelector(T('verify-form'), { state: 'visible', timeout: 30_000 });
    const sms = await s.waitForSms(mark);
    expect(sms.masked).toMatch(/3210$/);
    expect(sms.masked).not.toContain('98765');
    expect(s.smsSince(mark)).toHaveLength(1);
    expect(await page.locator(T('sent-number')).textContent()).toBe(SHOWN);
    await expectAxeClean(page, 'npm start: code step');

    // The resend button is disabled with a live countdown.
    const resend = page.locator(T('resend-button'));
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
    await expectAxeClean(page, 'npm start: wrong code');

    // 3. The right code.
    const started = Date.now();
    await verifyWith(page, sms.code);
    await page.waitForSelector(T('success'), { state: 'visible', timeout: 20_000 });
    expect(await page.locator(T('verified-number')).textContent()).toBe(`${SHOWN} is verified.`);
    const detail = (await page.evaluate('window.__verified')) as { phoneNumber: string; token: string; tokenExpiresAt: string };
    expect(detail.phoneNumber).toBe(PHONE);
    expect(detail.token.split('.')).toHaveLength(3);
    const expiresAt = Date.parse(detail.tokenExpiresAt);
    expect(expiresAt).toBeGreaterThan(started);
    const ttl = Number(process.env.TOKEN_TTL_SECONDS ?? '600');
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + ttl * 1000 + 5000);
    await expectAxeClean(page, 'npm start: done');
    await shot(page, 'checkout.png');

    // 4. Another send to the same number at once. The widget knows the cooldown and holds the button back
    //    (no request); a fresh page, which does not, meets the service's own 429. No SMS either way.
    const mark2 = s.output().length;
    await page.click(T('restart-button'));
    await page.waitForSelector(T('send-form'), { state: 'visible' });
    expect(await page.inputValue(T('phone'))).toBe(SHOWN);
    if (cooldown > 0) {
      expect(await page.locator(T('send-button')).isDisabled()).toBe(true);
      expect(await page.locator(T('send-button')).textContent()).toMatch(/^Send code in \d+ s$/);
      const fresh = await newPage();
      fresh.on('request', (request) => {
        if (request.url().endsWith('/auth/send-otp') && request.method() === 'POST') sendKeys.push(request.headers()['idempotency-key'] ?? '');
      });
      await serveAxe(fresh, s.url);
      await openPage(fresh, `${s.url}/`);
      await sendFor(fresh, '9876543210');
      const limited = await errorShown(fresh, 'rate_limited');
      expect(limited).toMatch(/Try again in \d+ s\./);
      expect(await fresh.locator(T('send-button')).textContent()).toMatch(/^Send code in \d+ s$/);
      await shot(fresh, 'checkout-rate-limited.png');
      await expectAxeClean(fresh, 'npm start: rate limited');
      await new Promise((r) => setTimeout(r, 500));
      expect(s.smsSince(mark2)).toEqual([]);
    } else {
      await page.click(T('send-button'));
      await page.waitForSelector(T('verify-form'), { state: 'visible' });
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

describe('the widget with a bot challenge against `npm start` (CHALLENGE_PROVIDER=turnstile: local siteverify and stand-in widget)', () => {
  let stack: LocalStack | undefined;
  let stackError: Error | undefined;

  beforeAll(async () => {
    try {
      stack = await startLocalStack({ env: { CHALLENGE_PROVIDER: 'turnstile' }, readyTimeoutMs: 90_000 });
    } catch (error) {
      stackError = error as Error;
    }
  }, 120_000);

  afterAll(async () => {
    if (stack && groupAlive(stack.pid)) await stack.stop(10_000);
  }, 30_000);

  it('renders the check, sends its token, and the service refuses a failing one with 403 challenge_failed', async () => {
    if (!stack) throw stackError ?? new Error('the local stack did not start');
    const s = stack;
    const page = await newPage();
    const problems = await watchPageProblems(page);
    const bodies: unknown[] = [];
    let forceFail = true;
    // The first send carries the documented failing test token instead of the one the check handed over.
    await page.route(`${s.url}/auth/send-otp`, async (route) => {
      const body = route.request().postDataJSON() as Record<string, unknown>;
      bodies.push(body);
      if (!forceFail) return route.continue();
      forceFail = false;
      return route.continue({ postData: JSON.stringify({ ...body, challengeToken: 'challenge-fail' }) });
    });
    await serveAxe(page, s.url);
    await openPage(page, `${s.url}/`);
    const box = page.locator('[data-testid="challenge-checkbox"]');
    await box.waitFor();
    await expectAxeClean(page, 'npm start + challenge: phone step');

    const mark = s.output().length;
    await box.check();
    await sendFor(page);
    expect(await errorShown(page, 'challenge_failed')).toMatch(/security check did not pass/);
    expect(await box.isChecked()).toBe(false);
    expect(s.smsSince(mark)).toEqual([]);

    await box.check();
    await page.click(T('send-button'));
    await page.waitForSelector(T('verify-form'), { state: 'visible', timeout: 30_000 });
    expect(bodies).toEqual([
      { phoneNumber: PHONE, challengeToken: 'challenge-pass' },
      { phoneNumber: PHONE, challengeToken: 'challenge-pass' },
    ]);
    const sms = await s.waitForSms(mark);
    await verifyWith(page, sms.code);
    await page.waitForSelector(T('success'), { state: 'visible', timeout: 20_000 });
    await expectAxeClean(page, 'npm start + challenge: done');
    expect(problems()).toEqual([]);
  }, 120_000);
});
