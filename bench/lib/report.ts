/**
 * bench/results.json → BENCHMARKS.md. Every figure in the Markdown comes from the results object; the prose
 * around a missed target is chosen by what was measured (which packages, which files, how many round trips),
 * so a rerun after a change in the service does not leave stale explanations behind.
 */
import { KIND_LABEL, type Results, type TargetResult, type WarmAnalysis } from './analyse';
import type { Kind } from './protocol';
import type { Summary } from './stats';

const ms = (n: number): string => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(3));
const us = (msValue: number): string => `${Math.round(msValue * 1000)} µs`;
const ratio = (n: number): string => `${n.toFixed(2)}×`;
/** Where a figure is held against a limit like 1.10× or 1.15×: enough digits to see which side it falls. */
const ratio3 = (n: number): string => `${n.toFixed(3)}×`;
const kib = (bytes: number): string => `${(bytes / 1024).toFixed(1)} KiB`;
const bytes = (n: number): string => n.toLocaleString('en-US');
const pct = (share: number): string => `${(share * 100).toFixed(1)} %`;
const row = (cells: (string | number)[]): string => `| ${cells.join(' | ')} |`;
const head = (cells: string[]): string => `${row(cells)}\n${row(cells.map((_, i) => (i === 0 ? '---' : '---:')))}`;
const p3 = (s: Summary): string => `${ms(s.p50)} / ${ms(s.p90)} / ${ms(s.p99)}`;
const p2 = (s: Summary): string => `${ms(s.p50)} / ${ms(s.p90)}`;
const r2 = (s: Summary): string => `${ratio(s.p50)} / ${ratio(s.p90)}`;
const hist = (h: Record<string, number>): string => {
  const entries = Object.entries(h);
  return entries.length === 1 ? entries[0]![0] : entries.map(([v, n]) => `${v} (×${n})`).join(', ');
};
const mark = (t: TargetResult | undefined): string => (t === undefined ? '' : t.met ? '**met**' : '**missed**');

const OUR_KINDS: Exclude<Kind, 'baseline'>[] = ['send', 'sendIdem', 'verifyWrong', 'verifyRight'];

const warmTable = (w: WarmAnalysis, targets: TargetResult[]): string => {
  const withTarget = w.seam === 'client';
  const cells = (c: string[], target: string) => (withTarget ? [...c, target] : c);
  const lines = [
    head(cells(['invocation', 'wall p50 / p90 / p99 (ms)', 'CPU p50 / p90 / p99 (ms)', 'ours ÷ baseline, wall p50 / p90', 'ours ÷ baseline, CPU p50', 'ours − baseline, wall p50 / p90 / p99 (ms)', 'provider included, wall p50 / p99 (ms)'], 'p99 < 1 ms')),
    row(cells([KIND_LABEL.baseline, p3(w.kinds.baseline.overheadMs), p3(w.kinds.baseline.cpuOverheadMs), '1', '1', '—', `${ms(w.kinds.baseline.totalMs.p50)} / ${ms(w.kinds.baseline.totalMs.p99)}`], '')),
  ];
  for (const k of OUR_KINDS) {
    const t = targets.find((x) => x.id === `warm-p99-${k}`);
    lines.push(
      row(cells([
        KIND_LABEL[k],
        p3(w.kinds[k].overheadMs),
        p3(w.kinds[k].cpuOverheadMs),
        r2(w.vsBaseline[k].ratio),
        ratio(w.vsBaseline[k].cpuRatio.p50),
        p3(w.vsBaseline[k].deltaMs),
        `${ms(w.kinds[k].totalMs.p50)} / ${ms(w.kinds[k].totalMs.p99)}`,
      ], mark(t))),
    );
  }
  return lines.join('\n');
};

/** What the profile's biggest buckets are, and what would make them smaller. Keyed by bucket name. */
const REMEDY: [RegExp, string][] = [
  [/^jose$/, 'token signing through jose and WebCrypto: `crypto.subtle.sign` runs as an asynchronous job on libuv\'s thread pool (a hand-off each way, and the wait for a pool thread lands in the tail), plus jose\'s encoding and promise hops. An ES256 JWS is `base64url(header).base64url(claims)` plus an ECDSA P-256 signature of that: node:crypto\'s synchronous `sign` (with `dsaEncoding: \'ieee-p1363\'`) gives a valid token in about 30 µs without the thread-pool hop, and would keep jose out of the Lambda bundle (checkout backends keep verifying with any JWT library).'],
  [/^@aws-lambda-powertools\/logger$/, 'the Powertools Logger formats and writes JSON lines on every invocation (`injectLambdaContext` resets and re-adds the context keys, then the happy path logs an info line). Log the happy path at debug level (and run with `POWERTOOLS_LOG_LEVEL=WARN`), or keep one line per invocation built with a single `JSON.stringify`.'],
  [/^@aws-lambda-powertools\/metrics$/, '`logMetrics` serialises and writes one EMF document per invocation; counting in memory and flushing one document every N invocations, or only the error counters, removes most of it.'],
  [/^@aws-lambda-powertools\/commons$/, 'Powertools\' shared helpers, mostly environment reads (`process.env` lookups are native calls) repeated per log line: read them once at init.'],
  [/^lib\/otp\/request-id\.ts$/, 'sealing or opening the otpRequestId with AES-256-GCM: a cipher object is created per call (`createCipheriv`/`createDecipheriv`).'],
  [/^lib\/otp\/keys\.ts$/, 'HMAC pseudonyms (a `createHmac` per identifier: the number for each rule and the code record, the IP, the budget); the number\'s pseudonyms could be computed once per request instead of once per rule.'],
  [/^lib\/provider\/startmessaging\.ts$/, 'the provider client around `fetch`: an `AbortController` and a timer per attempt, three idempotency headers, reading and classifying the answer (the baseline does none of this, only `r.json()`).'],
  [/^@middy\//, 'the Middy pipeline itself (a dozen layers: each `before`/`after` is an awaited call, plus the early-timeout timer Middy arms per invocation).'],
  [/^garbage collection$/, 'allocation per invocation (event copies, headers objects, log attributes, promises): young-generation collections land on some invocations and make the tail.'],
  [/__name/, '`keepNames: true` (serverless.yml) makes esbuild rename every function through its `__name` helper, an `Object.defineProperty`, at the moment the function is created; every closure our code creates per invocation pays it. Hoisting those closures to module scope, or dropping `keepNames` (minified names in stack traces; a source map restores them), removes it.'],
  [/^esbuild module wrappers/, "esbuild's module wrappers: each module's body is compiled and run the first time it is required, and every use of a CommonJS export (the SDK's) from our ES modules goes through a getter of the namespace object esbuild builds."],
];
const remedyFor = (bucket: string): string | undefined => REMEDY.find(([re]) => re.test(bucket))?.[1];

const profileTable = (r: Results, kind: Kind, top = 10): string[] => {
  const a = r.profiles[kind];
  if (a === undefined) return [];
  const median = r.warm.client.kinds[kind].overheadMs.p50;
  return [
    head(['where (package, or file of ours)', 'share of CPU samples', `≈ at the median (${ms(median)} ms)`]),
    ...a.buckets.slice(0, top).map((b) => row([b.name.startsWith('(') || b.name.includes(' ') ? b.name : `\`${b.name}\``, pct(b.share), us(b.share * median)])),
  ];
};

const targetLine = (r: Results, id: string): TargetResult | undefined => r.targets.find((t) => t.id === id);

const INIT_FNS = ['sendOtp', 'verifyOtp', 'baseline'] as const;
const initProfileSection = (r: Results): string[] => {
  const fns = INIT_FNS.filter((fn) => r.coldInit.profiles[fn] !== undefined);
  if (fns.length === 0) return [];
  const out = [
    '### Where the init goes',
    '',
    'One more fresh process per bundle with its init (require and handler modules) under the V8 sampling profiler, charged as in "Where the warm time goes" below: ' +
      'to the package or file of ours whose code was running, the rest to reading and compiling the file. "≈ at the median" spreads the median cold init by the shares. One process each, so the small shares are rough.',
    '',
  ];
  for (const fn of fns) {
    const a = r.coldInit.profiles[fn]!;
    const median = r.coldInit.ms[fn].p50;
    out.push(`#### ${fn}`, '', head(['where', 'share of samples', `≈ at the median (${ms(median)} ms)`]));
    for (const b of a.buckets.slice(0, 10)) out.push(row([b.name.includes(' ') || b.name.startsWith('(') ? b.name : `\`${b.name}\``, pct(b.share), `${ms(b.share * median)} ms`]));
    out.push('');
  }
  return out;
};

/** Why a target is missed and what would close it, from the measured figures. */
const explanations = (r: Results): string[] => {
  const out: string[] = [];
  const missed = (prefix: string) => r.targets.filter((t) => t.id.startsWith(prefix) && !t.met);
  const pf = r.bundles.perFunction;
  const fam = r.bundles.families.filter((f) => f.sendOtp - f.baseline !== 0 || f.verifyOtp - f.baseline !== 0);
  const extraFamilies = fam.filter((f) => f.baseline === 0 && f.family !== 'esbuild module wrappers');

  if (missed('bundle-').length > 0) {
    const limitBytes = pf.baseline.bytes * 1.15;
    const limitZip = pf.baseline.zipBytes * 1.15;
    const over = (fn: 'sendOtp' | 'verifyOtp') =>
      `${fn} ${kib(pf[fn].bytes)} minified (${pf[fn].bytes > limitBytes ? `${kib(pf[fn].bytes - limitBytes)} over` : `${kib(limitBytes - pf[fn].bytes)} under`}), ` +
      `${kib(pf[fn].zipBytes)} zipped (${pf[fn].zipBytes > limitZip ? `${kib(pf[fn].zipBytes - limitZip)} over` : `${kib(limitZip - pf[fn].zipBytes)} under`})`;
    const extra = r.bundles.packages.filter((p) => Math.max(p.sendOtp, p.verifyOtp) - p.baseline > 512).slice(0, 14);
    out.push(
      [
        '### Bundle size',
        '',
        `The baseline is the AWS SDK (client-dynamodb, lib-dynamodb, client-secrets-manager and their @smithy/@aws-sdk dependencies) and one page of code: ` +
          `${kib(pf.baseline.bytes)} minified, ${kib(pf.baseline.zipBytes)} zipped. 1.15× of that allows ${kib(limitBytes)} and ${kib(limitZip)}; ` +
          `${over('sendOtp')}; ${over('verifyOtp')}. Minified bytes by package family (esbuild metafile, \`bytesInOutput\`):`,
        '',
        head(['family', 'sendOtp', 'verifyOtp', 'baseline', 'sendOtp − baseline', 'verifyOtp − baseline']),
        ...fam.map((f) => row([f.family, kib(f.sendOtp), kib(f.verifyOtp), kib(f.baseline), kib(f.sendOtp - f.baseline), kib(f.verifyOtp - f.baseline)])),
        '',
        'Packages that add more than 0.5 KiB:',
        '',
        head(['package', 'family', 'sendOtp', 'verifyOtp', 'baseline']),
        ...extra.map((p) => row([`\`${p.package}\``, p.family, kib(p.sendOtp), kib(p.verifyOtp), kib(p.baseline)])),
        '',
        '**What would close it.** The SDK is common to both sides, so the ratio is decided by what we add on top ' +
          `(${extraFamilies.map((f) => `${f.family} ${kib(Math.max(f.sendOtp, f.verifyOtp))}`).join(', ')}). ` +
          'Each of these can be cut independently: sign tokens with node:crypto (`createHmac`) and keep jose out of the handler bundles (it is only needed by checkout backends that verify tokens); ' +
          'replace the Powertools Logger and Metrics with a small JSON line writer and an EMF object (both are a `JSON.stringify` and a `console.log`); ' +
          'drop the Middy layers whose behaviour we re-implement around them anyway (our json-body and response-headers layers wrap http-json-body-parser, http-cors and http-security-headers). ' +
          'Zipped size falls roughly in proportion to minified size.',
        '',
      ].join('\n'),
    );
  }

  if (missed('init-').length > 0) {
    const c = r.coldInit;
    const sdk = /^@(aws-sdk|smithy|aws-crypto|aws)\/|^(tslib|fast-xml-parser|strnum|bowser|uuid|mnemonist|obliterator)$/;
    const noisy = (['sendOtp', 'verifyOtp'] as const).filter((fn) => c.ratio[fn].p50 > 1.1 && c.ratio[fn].p50Interval[0] <= 1.1);
    const noise =
      noisy.length === 0
        ? ''
        : ` For ${noisy.join(' and ')} the miss is within this run's noise: the 95 % interval of the median ratio reaches below 1.10 (${noisy
            .map((fn) => `${ratio3(c.ratio[fn].p50Interval[0])}–${ratio3(c.ratio[fn].p50Interval[1])}`)
            .join(', ')}); more processes (\`BENCH_COLD_N\`) on an idle machine would settle it.`;
    // Packages and files of ours (names without spaces), not the SDK's, not loading, wrappers or GC.
    const ownInit = (c.profiles.sendOtp?.buckets ?? []).filter((b) => !b.name.includes(' ') && !sdk.test(b.name) && b.share >= 0.005).slice(0, 8);
    out.push(
      [
        '### Cold init',
        '',
        `\`require()\` of the baseline bundle takes ${ms(c.ms.baseline.p50)} ms (median); sendOtp ${ms(c.ms.sendOtp.p50)} ms, verifyOtp ${ms(c.ms.verifyOtp.p50)} ms ` +
          `(pairwise ratios ${ratio3(c.ratio.sendOtp.p50)} and ${ratio3(c.ratio.verifyOtp.p50)}; CPU time ${ratio3(c.cpuRatio.sendOtp.p50)} and ${ratio3(c.cpuRatio.verifyOtp.p50)}).${noise} ` +
          'Init is reading and compiling the bundle and running its top level. The first part follows the bytes: our bundles carry ' +
          `${ratio(r.bundles.vsBaseline.sendOtp.bytesRatio)} and ${ratio(r.bundles.vsBaseline.verifyOtp.bytesRatio)} the baseline's (see the bundle table). ` +
          'The second is what runs at module scope: every module of Middy, Powertools, jose and our lib is evaluated, the configuration is read and checked, ' +
          'the Powertools Logger and Metrics instances are built (they read and parse their environment), every middleware factory runs, ' +
          'the DynamoDB and Secrets Manager clients are constructed and the secrets prefetch is queued. The baseline builds two SDK clients and nothing else.',
        '',
        `Split: the handler's own modules take ${ms(c.split.sendOtp.handlerModulesMs.p50)} ms (sendOtp) and ${ms(c.split.verifyOtp.handlerModulesMs.p50)} ms (verifyOtp) against ${ms(c.split.baseline.handlerModulesMs.p50)} ms for the baseline's; ` +
          `the rest is the file itself and the SDK (require of the seam bundles: ${ms(c.split.sendOtp.requireMs.p50)}, ${ms(c.split.verifyOtp.requireMs.p50)} and ${ms(c.split.baseline.requireMs.p50)} ms).` +
          (ownInit.length > 0
            ? ` In the init profile of sendOtp, the packages and files that are neither the SDK nor the loading of the file: ${ownInit.map((b) => `\`${b.name}\` ${pct(b.share)} (≈ ${ms(b.share * c.ms.sendOtp.p50)} ms)`).join(', ')}.`
            : ''),
        '',
        '**What would close it.** The byte cuts listed under bundle size (fewer modules to compile and evaluate; `keepNames`, if set, also adds a `__name` call per function at load), and loading what only some paths need on first use ' +
          '(token signing only on a right code: a `require` inside the function keeps jose out of init).',
        '',
      ].join('\n'),
    );
  }

  const p99Missed = missed('warm-p99-');
  if (p99Missed.length > 0) {
    const w = r.warm.client;
    const lines = [
      '### Warm overhead p99',
      '',
      ...p99Missed.map((t) => `- ${t.label}: ${t.measured}; the median is ${ms(w.kinds[t.id.replace('warm-p99-', '') as Kind].overheadMs.p50)} ms (baseline ${ms(w.kinds.baseline.overheadMs.p50)} ms).`),
      '',
      'The tail is the median plus whatever lands on an unlucky invocation: a young-generation garbage collection, a timer or socket callback, or, on a busy machine, ' +
        'the process losing its core (the CPU-time columns are not inflated by that, and show how much of the tail is our own work). ' +
        'The median is what our code costs; cutting it moves the tail down with it. From the profiles above, the biggest items, and what would shrink them:',
      '',
    ];
    const seen = new Set<string>();
    for (const t of p99Missed) {
      const kind = t.id.replace('warm-p99-', '') as Kind;
      const a = r.profiles[kind];
      if (a === undefined) continue;
      for (const b of a.buckets.slice(0, 6)) {
        const remedy = remedyFor(b.name);
        if (remedy === undefined || seen.has(b.name)) continue;
        seen.add(b.name);
        const shares = p99Missed
          .map((x) => x.id.replace('warm-p99-', '') as Kind)
          .map((k) => ({ k, s: r.profiles[k]?.buckets.find((y) => y.name === b.name)?.share ?? 0 }))
          .filter((x) => x.s >= 0.03)
          .map((x) => `${pct(x.s)} of ${KIND_LABEL[x.k]} ≈ ${us(x.s * w.kinds[x.k].overheadMs.p50)}`)
          .join('; ');
        lines.push(`- ${b.name.includes(' ') ? b.name : `\`${b.name}\``} (${shares}): ${remedy}`);
      }
    }
    lines.push('');
    out.push(lines.join('\n'));
  }

  const rtMissed = missed('round-trips-');
  if (rtMissed.length > 0) {
    const lines = ['### DynamoDB round trips', ''];
    for (const t of rtMissed) lines.push(`- ${t.label}: ${t.measured}.`);
    if (rtMissed.some((t) => t.id === 'round-trips-send')) {
      lines.push(
        '',
        `Send without Idempotency-Key issues ${hist(r.requests.send.ddbRequests)} DynamoDB requests in ${hist(r.requests.send.ddbRoundTrips)} round trips: ` +
          'the rate-limit rules\' conditional writes go out in parallel (one round trip), and the new code\'s PutItem is issued only once they are all granted ' +
          '(`afterTaken` in middleware/rate-limit.ts, whose comment gives the reason: written in the same round trip, a refused send in a burst would replace ' +
          'the code that was delivered, and the undos could land in any order). In Lambda that second round trip is one more DynamoDB latency (single-digit ms) on every send.',
        '',
        '**What would close it.** Make the rule writes and the code\'s PutItem one `TransactWriteItems`: all-or-nothing, so a refused send writes nothing and cannot replace ' +
          'the delivered code, and the cancellation reasons say which rule refused (with the cooldown\'s `until` through `ReturnValuesOnConditionCheckFailure`). Costs: ' +
          'transactional writes use twice the write capacity; items written by concurrent transactions conflict (`TransactionConflict`), so the shared daily budget ' +
          'counter, which every send touches, should stay a plain UpdateItem issued in parallel with the transaction (a refusal there is rare and can still be undone); ' +
          'and dynalite, used by `npm start` and the tests, has no transactions, so the store needs a fallback there (or DynamoDB Local).',
      );
    }
    if (rtMissed.some((t) => t.id === 'round-trips-verifyWrong')) {
      lines.push('', 'A wrong-code verify should need only the attempt claim and the failure-budget take, issued in parallel.');
    }
    lines.push('');
    out.push(lines.join('\n'));
  }

  if (missed('warm-no-secrets').length > 0) {
    out.push(['### Secrets Manager on a warm invocation', '', `- ${targetLine(r, 'warm-no-secrets-manager')?.measured ?? ''}. The secrets should be served from the cache fetched at init.`, ''].join('\n'));
  }
  return out;
};

export const renderMarkdown = (r: Results): string => {
  const b = r.bundles;
  const c = r.coldInit;
  const f = r.firstInvocation;
  const w = r.warm.client;
  const t = (id: string) => targetLine(r, id);
  // The run itself keeps about one core busy; more than that at the start means someone else's work.
  const busy = (r.machine.loadavgAtStart[0] ?? 0) > r.machine.cores * 0.75;
  const lines: string[] = [
    '# Benchmarks',
    '',
    'Cold start, bundle size and warm overhead of `sendOtp` and `verifyOtp`, side by side with a naive single-file',
    "handler written the way StartMessaging's Lambda tutorial does it ([bench/baseline/handler.ts](bench/baseline/handler.ts):",
    'the API key cached in a module variable, one DynamoDB UpdateItem counter per number, one `fetch` to the provider,',
    'no validation). Both are built in the same run with the same esbuild options (serverless.yml `custom.esbuild`) and the',
    'same SDK versions, measured interleaved pair by pair, and compared pair by pair.',
    '',
    `Generated by \`npm run bench\` on ${r.generatedAt.slice(0, 10)} (${r.generatedAt}) in ${r.durationSeconds} s${r.quick ? ' — **BENCH_QUICK run: rough figures, few samples**' : ''}.`,
    `Code measured: the working tree at commit ${r.source.commit}` +
      (r.source.modified.length === 0 ? ' (no uncommitted changes to tracked files).' : `, with uncommitted changes to ${r.source.modified.map((m) => `\`${m}\``).join(', ')}.`),
    `Machine: ${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.memoryGiB} GiB, Node ${r.machine.node} (${r.machine.platform}).`,
    `Load average at start ${r.machine.loadavgAtStart.join(' / ')}, at end ${r.machine.loadavgAtEnd.join(' / ')}` +
      (busy
        ? ': **the machine had other work running**, so wall times are inflated and their tails are noisy. The ratios, taken within interleaved pairs, and the CPU-time columns, which waiting for a core does not inflate, are the figures to read.'
        : '.'),
    '',
    '## Summary',
    '',
    head(['figure', 'sendOtp', 'verifyOtp', 'baseline', 'ours ÷ baseline (sendOtp / verifyOtp)', 'target', 'met?']),
    row(['bundle, minified (bytes)', bytes(b.perFunction.sendOtp.bytes), bytes(b.perFunction.verifyOtp.bytes), bytes(b.perFunction.baseline.bytes), `${ratio3(b.vsBaseline.sendOtp.bytesRatio)} / ${ratio3(b.vsBaseline.verifyOtp.bytesRatio)}`, '≤ 1.15×', `${mark(t('bundle-min-sendOtp'))} / ${mark(t('bundle-min-verifyOtp'))}`]),
    row(['bundle, zipped (bytes)', bytes(b.perFunction.sendOtp.zipBytes), bytes(b.perFunction.verifyOtp.zipBytes), bytes(b.perFunction.baseline.zipBytes), `${ratio3(b.vsBaseline.sendOtp.zipRatio)} / ${ratio3(b.vsBaseline.verifyOtp.zipRatio)}`, '≤ 1.15×', `${mark(t('bundle-zip-sendOtp'))} / ${mark(t('bundle-zip-verifyOtp'))}`]),
    row(['cold init, `require()` median (ms)', ms(c.ms.sendOtp.p50), ms(c.ms.verifyOtp.p50), ms(c.ms.baseline.p50), `${ratio3(c.ratio.sendOtp.p50)} / ${ratio3(c.ratio.verifyOtp.p50)} (CPU ${ratio3(c.cpuRatio.sendOtp.p50)} / ${ratio3(c.cpuRatio.verifyOtp.p50)})`, '≤ 1.10×', `${mark(t('init-sendOtp'))} / ${mark(t('init-verifyOtp'))}`]),
    row(['first invocation after init, median (ms, provider excluded)', ms(f.overheadMs.sendOtp.p50), ms(f.overheadMs.verifyOtp.p50), ms(f.overheadMs.baseline.p50), `${ratio(f.ratio.sendOtp.p50)} / ${ratio(f.ratio.verifyOtp.p50)}`, '—', '']),
    row(['warm overhead p50 (ms; verify: wrong code)', ms(w.kinds.send.overheadMs.p50), ms(w.kinds.verifyWrong.overheadMs.p50), ms(w.kinds.baseline.overheadMs.p50), `${ratio(w.vsBaseline.send.ratio.p50)} / ${ratio(w.vsBaseline.verifyWrong.ratio.p50)}`, '—', '']),
    row(['warm overhead p99 (ms; verify: wrong code)', ms(w.kinds.send.overheadMs.p99), ms(w.kinds.verifyWrong.overheadMs.p99), ms(w.kinds.baseline.overheadMs.p99), '—', '< 1 ms', `${mark(t('warm-p99-send'))} / ${mark(t('warm-p99-verifyWrong'))}`]),
    row(['warm overhead p99, CPU time (ms)', ms(w.kinds.send.cpuOverheadMs.p99), ms(w.kinds.verifyWrong.cpuOverheadMs.p99), ms(w.kinds.baseline.cpuOverheadMs.p99), '—', '', '']),
    row(['DynamoDB requests / round trips, warm (verify: wrong code)', `${hist(r.requests.send.ddbRequests)} / ${hist(r.requests.send.ddbRoundTrips)}`, `${hist(r.requests.verifyWrong.ddbRequests)} / ${hist(r.requests.verifyWrong.ddbRoundTrips)}`, `${hist(r.requests.baseline.ddbRequests)} / ${hist(r.requests.baseline.ddbRoundTrips)}`, '—', '1 round trip', `${mark(t('round-trips-send'))} / ${mark(t('round-trips-verifyWrong'))}`]),
    row(['Secrets Manager requests, warm', hist(r.requests.send.smRequests), hist(r.requests.verifyWrong.smRequests), hist(r.requests.baseline.smRequests), '—', '0', mark(t('warm-no-secrets-manager'))]),
    '',
    'Ratios are ours ÷ baseline, taken pair by pair (each pair measured back to back) and then summarised. The baseline has',
    'no verify route: verify is compared with the baseline send, the naive cost of one invocation that reads a cached',
    'secret and makes one DynamoDB write. Warm figures for every kind of invocation (send with Idempotency-Key, verify',
    'with the right code) are in the tables below.',
    '',
    '## Targets',
    '',
    'Reported, never asserted.',
    '',
    head(['target', 'limit', 'measured', 'result', 'missed by']),
    ...r.targets.map((x) => row([x.label, x.target, x.measured, mark(x), x.missedBy ?? ''])),
    '',
    '## Bundle size per function',
    '',
    head(['function', 'minified bytes', 'zipped bytes', 'minified ÷ baseline', 'zipped ÷ baseline']),
    row(['sendOtp', bytes(b.perFunction.sendOtp.bytes), bytes(b.perFunction.sendOtp.zipBytes), ratio3(b.vsBaseline.sendOtp.bytesRatio), ratio3(b.vsBaseline.sendOtp.zipRatio)]),
    row(['verifyOtp', bytes(b.perFunction.verifyOtp.bytes), bytes(b.perFunction.verifyOtp.zipBytes), ratio3(b.vsBaseline.verifyOtp.bytesRatio), ratio3(b.vsBaseline.verifyOtp.zipRatio)]),
    row(['baseline', bytes(b.perFunction.baseline.bytes), bytes(b.perFunction.baseline.zipBytes), '1', '1']),
    '',
    'Zipped: a one-file zip of the bundle, deflate level 9, as the deployment package holds it. Bytes per package family:',
    '',
    head(['family', 'sendOtp', 'verifyOtp', 'baseline']),
    ...b.families.map((x) => row([x.family, kib(x.sendOtp), kib(x.verifyOtp), kib(x.baseline)])),
    '',
    '## Cold init',
    '',
    `\`require()\` of the production bundle in a fresh \`node\` process, timed inside the child (\`process.hrtime\`, and \`process.cpuUsage\` for CPU time); ${r.settings.coldN} processes per bundle, the three bundles interleaved and rotated round by round.`,
    '',
    head(['bundle', 'wall p50 / p90 / p99 (ms)', 'CPU p50 / p90 / p99 (ms)', 'ours ÷ baseline, wall p50 / p90', 'ours ÷ baseline, CPU p50 / p90']),
    row(['sendOtp', p3(c.ms.sendOtp), p3(c.cpuMs.sendOtp), r2(c.ratio.sendOtp), r2(c.cpuRatio.sendOtp)]),
    row(['verifyOtp', p3(c.ms.verifyOtp), p3(c.cpuMs.verifyOtp), r2(c.ratio.verifyOtp), r2(c.cpuRatio.verifyOtp)]),
    row(['baseline', p3(c.ms.baseline), p3(c.cpuMs.baseline), '1', '1']),
    '',
    `Node's own boot before the \`require\` (the same for every bundle, not included above): ${p2(c.nodeBootMs)} ms (p50 / p90).`,
    '',
    'The same init in two parts, from the first-invocation children (seam bundles, whose entry evaluates the SDK first and the handler\'s modules only when asked):',
    '',
    head(['bundle', 'require(): read and compile the whole file, evaluate the SDK, p50 / p90 (ms)', "then the handler's own modules, p50 / p90 (ms)"]),
    ...(['sendOtp', 'verifyOtp', 'baseline'] as const).map((fn) => row([fn, p2(c.split[fn].requireMs), p2(c.split[fn].handlerModulesMs)])),
    '',
    ...initProfileSection(r),
    '## First invocation after init',
    '',
    `One invocation right after init, in a fresh process (${r.settings.firstN} per handler, interleaved), DynamoDB and Secrets Manager answered at the SDK client seam, the provider by the local sandbox. Send without Idempotency-Key, verify with a wrong code.`,
    '',
    head(['handler', 'provider excluded, wall p50 / p90 / p99 (ms)', 'CPU p50 / p90 (ms)', 'provider included p50 / p90 (ms)', 'ours ÷ baseline p50 / p90', 'ours − baseline p50 / p90 (ms)', 'DynamoDB requests / round trips', 'Secrets Manager requests']),
    ...(['sendOtp', 'verifyOtp', 'baseline'] as const).map((fn) =>
      row([
        fn,
        p3(f.overheadMs[fn]),
        p2(f.cpuOverheadMs[fn]),
        p2(f.totalMs[fn]),
        fn === 'baseline' ? '1' : r2(f.ratio[fn]),
        fn === 'baseline' ? '—' : p2(f.deltaMs[fn]),
        `${hist(f.requests[fn].ddbRequests)} / ${hist(f.requests[fn].ddbRoundTrips)}`,
        hist(f.requests[fn].smRequests),
      ]),
    ),
    '',
    'The first invocation pays for what V8 compiles lazily on first use (every function of the path runs for the first',
    'time) and, in the Secrets Manager column, for the secrets: ours are prefetched while the module loads and awaited by',
    'the first request (two secrets), the baseline fetches its one secret during the first invocation.',
    '',
    '## Warm overhead per invocation',
    '',
    `${w.rounds} rounds after ${w.warmup} warm-up rounds, in one process holding the three bundles; each round runs the five kinds of invocation once, in rotated order. ` +
      'DynamoDB and Secrets Manager are answered at the SDK client seam (no SDK code runs), the provider by the local sandbox over HTTP. ' +
      'The provider exchange (request to last byte of the answer) is timed and subtracted per invocation, so "overhead" is the time spent in the handler\'s own code. ' +
      'CPU time is the process\'s (all threads, so V8\'s background compiler and GC threads count too), not inflated by waiting for a core.',
    '',
    warmTable(w, r.targets),
    '',
    "### Warm, the SDK's client-side work included",
    '',
    `The same, ${r.warm.http.rounds} rounds, with DynamoDB and Secrets Manager answered one layer down, at the SDK's HTTP handler: every request is marshalled, serialised, signed (SigV4), and its answer parsed and unmarshalled, as in Lambda; only the network is missing (each answer arrives on the next turn of the event loop). The difference from the table above is what the SDK costs per invocation, which grows with the number of requests.`,
    '',
    warmTable(r.warm.http, r.targets),
    '',
    '## DynamoDB and Secrets Manager requests per warm invocation',
    '',
    'Counted at the seam. A request issued while another is in flight belongs to the same round trip (the handler issued them in parallel).',
    '',
    head(['invocation', 'DynamoDB requests', 'DynamoDB round trips', 'Secrets Manager requests', 'provider calls', 'same at the HTTP seam: DynamoDB / Secrets Manager requests']),
    ...(['baseline', ...OUR_KINDS] as Kind[]).map((k) =>
      row([KIND_LABEL[k], hist(r.requests[k].ddbRequests), hist(r.requests[k].ddbRoundTrips), hist(r.requests[k].smRequests), hist(r.requests[k].providerCalls), `${hist(r.requests[k].httpSeam.ddbRequests)} / ${hist(r.requests[k].httpSeam.smRequests)}`]),
    ),
    '',
  ];

  const profiled = (['baseline', ...OUR_KINDS] as Kind[]).filter((k) => r.profiles[k] !== undefined);
  if (profiled.length > 0) {
    lines.push(
      '## Where the warm time goes',
      '',
      `A V8 CPU profile (a sample every 100 µs; shares are counts of samples) of ${r.settings.profileRounds} warm invocations, one kind of invocation per process, at the client seam. ` +
        'Only samples taken inside a measured invocation and outside its provider exchange count, so the shares split exactly the "overhead" of the tables above. ' +
        "Each sample is charged to the innermost frame on its stack that belongs to the handler's bundle (mapped to its source file through the bundle's source map) or to the harness, so time spent in node:crypto, undici or JSON is charged to the package or file of ours that called it. " +
        '"The seam and the event loop" is what runs inside the invocation without a frame of the handler: the stand-in answers, promise and timer bookkeeping, and undici finishing the provider\'s connection after the answer was read (the same for both sides of a send). ' +
        '"≈ at the median" spreads the measured median overhead by the shares (the profiler slows the code down, so shares carry over, sampled times do not).',
      '',
    );
    for (const k of profiled) lines.push(`### ${KIND_LABEL[k]}`, '', ...profileTable(r, k), '');
  }

  const why = explanations(r);
  if (why.length > 0) lines.push('## Where a target is missed', '', ...why);

  lines.push(
    '## Method',
    '',
    "- **Builds.** `bench/run.ts` reads `custom.esbuild` from serverless.yml (js-yaml, CloudFormation tags tolerated), applies serverless-esbuild's defaults and drops its plugin-only keys exactly as its bundle step does, and builds each handler and the baseline with the result:",
    `  \`${JSON.stringify(r.esbuild.options)}\`. Everything goes to \`bench/.out/\` (rebuilt on every run).`,
    '- **Same SDK.** The baseline imports the same `@aws-sdk/*` packages from the same node_modules, so the SDK bytes and its init are common to both sides and the ratios show what our code and its libraries add.',
    '- **Cold init** is `require()` of the production bundle, timed inside a fresh `node` process (no loader, a clean environment with dummy AWS credentials and every endpoint on 127.0.0.1). Our handlers queue their secrets prefetch at init: `AWS_ENDPOINT_URL_SECRETS_MANAGER` points at a local stand-in (bench/lib/secrets-standin.ts), and the child exits as soon as it has measured.',
    '- **The seam.** First-invocation, warm and profile figures use "seam" bundles: the same entry code and esbuild options (plus an external source map), and an export of the SDK classes *from the same bundle*, so patching their prototypes replaces exactly the `send` the handler calls (`DynamoDBDocumentClient`, `DynamoDBClient`, `SecretsManagerClient`; any other client reaching the Smithy base `send` fails the run, and the SDK endpoints point at a closed local port). The handler module is loaded only after the patch (a lazy `require` inside the bundle), so even the init-time prefetch is answered there. Answers are stateless and immediate (settled on the microtask queue): every condition holds, and the code record returned on verify carries the hash of a known code, so "wrong code" and "right code" are real paths through our code. Every invocation\'s status code is checked (201, 400, 200), or the run fails. The second warm table patches `NodeHttpHandler.handle` instead, to include the SDK\'s own work per request.',
    '- **Provider.** Both sides call the local sandbox (local/sandbox-provider.ts) with the real global `fetch`. A wrapper around `fetch` times each exchange, body included, and that time (and its CPU time) is subtracted per invocation; the "provider included" columns show the totals.',
    '- **Interleaving.** Cold and first-invocation children run baseline, sendOtp and verifyOtp in rotated order, one triple per round; the warm loop runs the five kinds in rotated order each round. Ratios and differences are taken within a round, then summarised (nearest-rank percentiles; nothing is discarded but the warm-up).',
    "- **Logs.** Our handlers write their JSON log lines and EMF metrics to stdout as in Lambda; the children's stdout is /dev/null, so the write is paid and the output dropped. The baseline logs nothing.",
    "- **Not measured:** network latency to DynamoDB, Secrets Manager and the provider (all answered locally), Lambda's own runtime bootstrap and arm64 (the run uses this machine's CPU).",
    '',
    '## Rerun',
    '',
    '```sh',
    'npm run bench                     # writes BENCHMARKS.md and bench/results.json; about 2–3 minutes on an idle 2-core machine',
    'BENCH_QUICK=1 npm run bench       # rough figures in about a minute, written to bench/.out/ only',
    'BENCH_COLD_N=50 BENCH_FIRST_N=30 BENCH_WARM_ROUNDS=5000 BENCH_SDK_ROUNDS=1000 BENCH_PROFILE_ROUNDS=0 npm run bench',
    '```',
    '',
    'Nothing here is asserted by tests; `tests/unit/bench-smoke.test.ts` only checks that the baseline handler behaves.',
    '',
  );
  return lines.join('\n');
};
