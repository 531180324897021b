/**
 * Headless Chromium for browser tests: the Debian package (`apt-get install -y chromium`), driven by
 * playwright-core. Never downloads a browser. A missing browser is a failure, not a skip.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];

/** CHROMIUM_PATH overrides; else the Debian binary. */
export const chromiumPath = (): string | undefined => {
  const fromEnv = process.env.CHROMIUM_PATH;
  if (fromEnv) return existsSync(fromEnv) ? fromEnv : undefined;
  return CANDIDATES.find((p) => existsSync(p));
};

export const missingChromiumMessage = (): string => {
  const where = process.env.CHROMIUM_PATH ? `CHROMIUM_PATH=${process.env.CHROMIUM_PATH}` : CANDIDATES.join(' or ');
  return process.env.CI === 'true'
    ? `Chromium not found at ${where}: the CI image must install it (apt-get install -y chromium) before running the browser tests.`
    : `Chromium not found at ${where}. Install it with: sudo apt-get update && sudo apt-get install -y chromium ` +
        '(or set CHROMIUM_PATH). Do not use `npx playwright install`; these tests do not skip without a browser.';
};

export const launchChromium = async (): Promise<Browser> => {
  const executablePath = chromiumPath();
  if (!executablePath) throw new Error(missingChromiumMessage());
  return chromium.launch({ executablePath, args: CHROMIUM_ARGS, timeout: 60_000 });
};
