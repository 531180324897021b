/**
 * axe-core (from npm, the version pinned in package.json) in a Playwright page, for WCAG 2.2 AA checks of
 * every state the widget shows. The script is served from the page's own origin (a route on the page), so
 * it loads under the page's strict Content-Security-Policy without loosening it.
 */
import { readFileSync } from 'node:fs';
import type { Page } from 'playwright-core';

const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const AXE_PATH = '/__axe-core.js';

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: unknown[]; failureSummary?: string }[];
}

/** Lets `axeViolations` load axe-core from `origin` (the page's). Call before the page loads. */
export const serveAxe = async (page: Page, origin: string): Promise<void> => {
  await page.route(`${origin}${AXE_PATH}`, (route) =>
    route.fulfill({ status: 200, headers: { 'Content-Type': 'text/javascript; charset=utf-8' }, body: AXE_SOURCE }),
  );
};

/**
 * Every axe violation on the page now (all rules axe runs by default: WCAG 2.0–2.2 A and AA, and best
 * practices), as short lines a failing test can print.
 */
export const axeViolations = async (page: Page): Promise<string[]> => {
  const loaded = await page.evaluate(() => typeof (globalThis as { axe?: unknown }).axe !== 'undefined');
  if (!loaded) await page.addScriptTag({ url: AXE_PATH });
  // A function, not a string: the page's CSP forbids string evaluation. `any`: the tests have no DOM lib.
  const violations = (await page.evaluate(async () => {
    const axe = (globalThis as any).axe;
    const result = await axe.run((globalThis as any).document, { resultTypes: ['violations'] });
    return result.violations;
  })) as AxeViolation[];
  return violations.flatMap((v) =>
    v.nodes.map((n) => `${v.id} (${v.impact ?? 'n/a'}): ${v.help} at ${JSON.stringify(n.target)}${n.failureSummary ? ` — ${n.failureSummary.replace(/\s+/g, ' ')}` : ''}`),
  );
};

/** WCAG relative luminance contrast of two CSS colours (`rgb(...)`/`rgba(...)`, opaque). */
export const contrastRatio = (a: string, b: string): number => {
  const lum = (css: string) => {
    const m = /rgba?\(\s*([\d.]+)[,\s]+([\d.]+)[,\s]+([\d.]+)/.exec(css);
    if (!m) throw new Error(`not an rgb colour: ${css}`);
    const [r, g, bl] = [m[1], m[2], m[3]].map((c) => {
      const s = Number(c) / 255;
      return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    }) as [number, number, number];
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [l1, l2] = [lum(a), lum(b)].sort((x, y) => y - x) as [number, number];
  return (l1 + 0.05) / (l2 + 0.05);
};
