// Applies, one at a time, each mutant issue 15 found surviving, runs the test written for it, and restores
// the file: every line must say KILLED. Minutes, not hours (a full `npm run mutate` is hours):
//   nice -n 10 node scripts/mutation-gaps-check.mjs [name-filter]
// A line "NOT APPLICABLE" means the code changed shape (a refactor): find the mutant's new form by hand.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const C = 'tests/integration/mutation-gaps-codes.test.ts';
const E = 'tests/integration/mutation-gaps-errors.test.ts';
const I = 'tests/integration/mutation-gaps-idempotency.test.ts';
const U = 'tests/unit/mutation-gaps-middleware.test.ts';
// [name, file, original text, mutated text, test file, test name filter]
const MUTANTS = [
  ['codes.ts: range 10 ** length -> 10 * length (a narrowed code space)', 'lib/otp/codes.ts', 'randomInt(0, 10 ** length)', 'randomInt(0, 10 * length)', C, 'codes'],
  ['codes.ts: padStart "0" -> "" (a lost leading zero)', 'lib/otp/codes.ts', "padStart(length, '0')", "padStart(length, '')", C, 'codes'],
  ['limiter.ts: TTL (window + 1) -> (window - 1)', 'lib/ratelimit/limiter.ts', 'const expiresAt = (window + 1) * rule.windowSeconds + 3600;', 'const expiresAt = (window - 1) * rule.windowSeconds + 3600;', C, 'TTL'],
  ['verify.ts: failure counter TTL (window + 1) -> (window - 1)', 'lib/otp/verify.ts', 'expiresAt: (window + 1) * rule.windowSeconds + 3600 }', 'expiresAt: (window - 1) * rule.windowSeconds + 3600 }', C, 'TTL'],
  ['request-id.ts: canonical spelling check -> false', 'lib/otp/request-id.ts', "if (raw.toString('base64url') !== otpRequestId) return undefined;", 'if (false) return undefined;', C, 'spelling'],
  ['errors.ts: >= 400 -> > 400', 'middleware/errors.ts', 'e.statusCode >= 400 &&', 'e.statusCode > 400 &&', U, 'errors'],
  ['errors.ts: validator guard statusCode === 400 -> true', 'middleware/errors.ts', "=== '@middy/validator' && e.statusCode === 400)", "=== '@middy/validator' && true)", U, 'errors'],
  ['errors.ts: UpstreamError{Kind} for a 503 -> not counted', 'middleware/errors.ts', 'if (mapped instanceof ServiceUnavailable) countUpstreamError', 'if (false) countUpstreamError', E, 'alarm'],
  ['errors.ts: budget branch -> false (logged as ERROR)', 'middleware/errors.ts', "mapped instanceof ServiceUnavailable && mapped.reason === 'budget'", 'false', E, 'budget'],
  ['idempotency.ts: Math.min -> Math.max (wait past the deadline)', 'middleware/idempotency.ts', 'Math.min(o.maxWaitMs, remaining - 1000)', 'Math.max(o.maxWaitMs, remaining - 1000)', I, 'deadline'],
  ['idempotency.ts: charged takeover -> never', 'middleware/idempotency.ts', "if (state.state === 'charged') {", 'if (false) {', I, 'takes over'],
  ['idempotency.ts: complete failure log -> silent', 'middleware/idempotency.ts', ".catch((error: unknown) => logger.warn('could not store the idempotent response', { error }));", '.catch(() => undefined);', U, 'idempotency'],
  ['send.ts: undo failure log -> silent', 'lib/otp/send.ts', ".catch((e: unknown) => logger.warn('could not restore the replaced code', { error: e }));", '.catch(() => undefined);', U, 'send'],
];

const only = process.argv[2];
let failed = 0;
for (const [name, file, original, mutated, test, filter] of MUTANTS) {
  if (only && !name.includes(only)) continue;
  const source = readFileSync(file, 'utf8');
  const matches = source.split(original).length - 1;
  if (matches !== 1) {
    console.log(`NOT APPLICABLE (${matches} matches)  ${name}`);
    failed += 1;
    continue;
  }
  writeFileSync(file, source.replace(original, mutated));
  try {
    const started = Date.now();
    const r = spawnSync('npx', ['jest', test, '-t', filter], { encoding: 'utf8' });
    const killed = r.status !== 0;
    if (!killed) failed += 1;
    console.log(`${killed ? 'KILLED  ' : 'SURVIVED'}  ${name}  [${test} -t "${filter}", ${Math.round((Date.now() - started) / 1000)} s]`);
  } finally {
    writeFileSync(file, source);
  }
}
process.exit(failed === 0 ? 0 : 1);
