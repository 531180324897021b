// Prints a Markdown table of per-file mutation scores from Stryker JSON reports:
//   node scripts/mutation-summary.mjs reports/mutation/*.json
// Score = detected (killed + timed out) / (detected + survived + no coverage), Stryker's definition;
// ignored mutants and runtime/compile errors are not counted. "tests/mutant": tests run per detected mutant
// (with the bail environment) against the tests covering it.
import { readFileSync } from 'node:fs';

const rows = [];
for (const file of process.argv.slice(2)) {
  const report = JSON.parse(readFileSync(file, 'utf8'));
  for (const [name, { mutants }] of Object.entries(report.files)) {
    const n = (s) => mutants.filter((m) => m.status === s).length;
    const killed = n('Killed');
    const timeout = n('Timeout');
    const survived = n('Survived');
    const noCov = n('NoCoverage');
    const errors = n('RuntimeError') + n('CompileError');
    const ignored = n('Ignored');
    const valid = killed + timeout + survived + noCov;
    const detected = mutants.filter((m) => m.status === 'Killed');
    const ran = detected.reduce((s, m) => s + (m.testsCompleted ?? 0), 0);
    const covering = detected.reduce((s, m) => s + (m.coveredBy?.length ?? 0), 0);
    rows.push([name, valid ? ((100 * (killed + timeout)) / valid).toFixed(1) : 'n/a', killed, timeout, survived, noCov, errors, ignored, detected.length ? `${(ran / detected.length).toFixed(1)} / ${(covering / detected.length).toFixed(1)}` : '']);
  }
}
console.log('| file | score % | killed | timeout | survived | no cov | errors | ignored | tests/mutant (ran / covering) |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const r of rows.sort((a, b) => String(a[0]).localeCompare(String(b[0])))) console.log(`| ${r.join(' | ')} |`);
