/**
 * The server-side check of a bot challenge token, as Cloudflare Turnstile, hCaptcha and reCAPTCHA
 * all define it: a form-encoded POST of `secret`, `response` and `remoteip` to the provider's
 * siteverify endpoint, answered with JSON `{ "success": true|false, "error-codes": [...] }`.
 *
 * Three outcomes: `passed`, `failed` (the provider judged the token and refused it) and
 * `unavailable` (no judgement: unreachable, slower than `timeoutMs`, not 2xx, not that JSON, or a
 * refusal that is about our secret rather than the token). The caller fails open on the last.
 */
export type SiteverifyOutcome =
  | { outcome: 'passed' }
  | { outcome: 'failed'; errorCodes: string[] }
  | { outcome: 'unavailable'; reason: string };

export interface SiteverifyRequest {
  url: string;
  secret: string;
  token: string;
  remoteIp?: string | undefined;
  timeoutMs: number;
  fetch?: typeof fetch;
}

/** Error codes that mean the provider could not judge the token because of our own configuration. */
const NOT_ABOUT_THE_TOKEN = new Set(['missing-input-secret', 'invalid-input-secret', 'internal-error', 'sitekey-secret-mismatch']);

export const siteverify = async (req: SiteverifyRequest): Promise<SiteverifyOutcome> => {
  const form = new URLSearchParams({ secret: req.secret, response: req.token });
  if (req.remoteIp) form.set('remoteip', req.remoteIp);
  let answer: unknown;
  try {
    const res = await (req.fetch ?? fetch)(req.url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
      signal: AbortSignal.timeout(req.timeoutMs),
    });
    if (!res.ok) {
      await res.body?.cancel().catch(() => undefined);
      return { outcome: 'unavailable', reason: `status ${res.status}` };
    }
    answer = await res.json();
  } catch (error) {
    const name = (error as { name?: string })?.name;
    return { outcome: 'unavailable', reason: name === 'TimeoutError' || name === 'AbortError' ? 'timeout' : name === 'SyntaxError' ? 'not json' : 'connection' };
  }
  const a = answer as { success?: unknown; 'error-codes'?: unknown } | null;
  if (typeof a !== 'object' || a === null || typeof a.success !== 'boolean') return { outcome: 'unavailable', reason: 'unexpected answer' };
  if (a.success) return { outcome: 'passed' };
  const errorCodes = Array.isArray(a['error-codes']) ? a['error-codes'].filter((c): c is string => typeof c === 'string').slice(0, 5) : [];
  if (errorCodes.some((c) => NOT_ABOUT_THE_TOKEN.has(c))) return { outcome: 'unavailable', reason: `provider: ${errorCodes.join(',')}` };
  return { outcome: 'failed', errorCodes };
};
