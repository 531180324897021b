/**
 * `tsx local/invoke.ts <sendOtp|verifyOtp|flow>`: `serverless invoke local` against the same local pieces
 * `npm start` uses (no API Gateway emulation: the events in events/ are handed straight to the handler).
 *
 *   sendOtp    invokes sendOtp with events/send-otp.json
 *   verifyOtp  invokes verifyOtp with events/verify-otp.json (its placeholder id answers 410: expected)
 *   flow       sends, reads the code from the sandbox, verifies with the real otpRequestId and code
 *
 * Everything started here is stopped before it exits.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { privateBuildFolder, REPO_ROOT } from './env';
import { SERVERLESS_BIN, startLocalPieces, type LocalPieces } from './start';

const MJS_PRELOAD = join(REPO_ROOT, 'local', 'invoke-local-mjs.cjs');
const EVENTS = { sendOtp: join(REPO_ROOT, 'events', 'send-otp.json'), verifyOtp: join(REPO_ROOT, 'events', 'verify-otp.json') };

interface LambdaResult {
  statusCode?: number;
  headers?: Record<string, string>;
  /** `invoke local` prints a JSON body already parsed when the handler said `Content-Type: application/json`. */
  body?: unknown;
}

interface Invocation {
  exitCode: number;
  result: LambdaResult | undefined;
}

/**
 * `invoke local` prints the handler's logs, then the result as indented JSON starting on a line of its own:
 * the result is the last top-level `{` from which the rest of the output parses.
 */
export const parseInvokeOutput = (stdout: string): LambdaResult | undefined => {
  const lines = stdout.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    if (!lines[i]!.startsWith('{')) continue;
    try {
      const parsed: unknown = JSON.parse(lines.slice(i).join('\n'));
      if (typeof parsed === 'object' && parsed !== null && 'statusCode' in parsed) return parsed as LambdaResult;
    } catch {
      // a log line, or the start of a different block: keep looking upwards
    }
  }
  return undefined;
};

// Well above the function's 25 s timeout plus a cold bundle on a slow machine: past this, something hangs.
const INVOKE_TIMEOUT_MS = 180_000;

let running: ReturnType<typeof spawn> | undefined;
const build = privateBuildFolder();

const killRunning = (signal: NodeJS.Signals) => {
  if (running?.pid === undefined) return;
  try {
    process.kill(-running.pid, signal);
  } catch {
    // already gone
  }
};

const invoke = (fn: 'sendOtp' | 'verifyOtp', eventPath: string, env: Record<string, string>): Promise<Invocation> =>
  new Promise((resolve, reject) => {
    // The preload lets osls's invoke local find the handler's ES module bundle (handlers/<name>.mjs).
    const args = ['--require', MJS_PRELOAD, SERVERLESS_BIN, 'invoke', 'local', '-f', fn, '--path', eventPath, '--stage', 'dev'];
    const child = spawn(process.execPath, args, {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env, ...build.env },
      stdio: ['ignore', 'pipe', 'inherit'],
      detached: true, // its own group, so stopping it stops esbuild's service process too
    });
    running = child;
    const timer = setTimeout(() => {
      console.error(`invoke local -f ${fn} did not finish within ${INVOKE_TIMEOUT_MS / 1000} s; stopping it`);
      killRunning('SIGKILL');
    }, INVOKE_TIMEOUT_MS);
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      process.stdout.write(chunk);
    });
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      running = undefined;
      resolve({ exitCode: code ?? (signal ? 1 : 0), result: parseInvokeOutput(out) });
    });
  });

const bodyOf = (r: LambdaResult | undefined): Record<string, unknown> => {
  if (typeof r?.body === 'object' && r.body !== null) return r.body as Record<string, unknown>;
  try {
    return JSON.parse(typeof r?.body === 'string' ? r.body : '') as Record<string, unknown>;
  } catch {
    return {};
  }
};

/** A 429 here usually means the number just got a code through `npm start` (same DynamoDB): say what to do. */
const hintFor = (inv: Invocation): string =>
  inv.result?.statusCode === 429
    ? '\n  (429: this number was sent a code moments ago, e.g. through npm start against the same DynamoDB. Wait for' +
      ' Retry-After, use another number in the event, or start with SEND_COOLDOWN_SECONDS=0 or TEST_NUMBERS.)'
    : '';

const summary = (name: string, inv: Invocation): string =>
  `${name} → ${inv.result?.statusCode ?? `no result (exit ${inv.exitCode})`} ${JSON.stringify(bodyOf(inv.result))}${hintFor(inv)}`;

/** A copy of the verify event carrying the real id and code (content-length kept true to the body). */
const verifyEventFor = (otpRequestId: string, otp: string): Record<string, unknown> => {
  const event = JSON.parse(readFileSync(EVENTS.verifyOtp, 'utf8')) as { body: string; headers: Record<string, string> };
  event.body = JSON.stringify({ otpRequestId, otp });
  event.headers['content-length'] = String(Buffer.byteLength(event.body));
  return event;
};

const flow = async (pieces: LocalPieces): Promise<number> => {
  const sendEvent = JSON.parse(readFileSync(EVENTS.sendOtp, 'utf8')) as { body: string };
  const phone = (JSON.parse(sendEvent.body) as { phoneNumber: string }).phoneNumber;

  const sent = await invoke('sendOtp', EVENTS.sendOtp, pieces.env);
  const otpRequestId = bodyOf(sent.result).otpRequestId;
  const code = pieces.sandbox?.lastCode(phone);
  if (sent.result?.statusCode !== 201 || typeof otpRequestId !== 'string') {
    console.error(`\n${summary('sendOtp', sent)}`);
    return 1;
  }
  if (code === undefined) {
    console.error(pieces.sandbox ? 'the sandbox received no code' : 'STARTMESSAGING_BASE_URL is set: no local sandbox to read the code from');
    return 1;
  }

  const dir = mkdtempSync(join(tmpdir(), 'otp-invoke-'));
  try {
    const eventPath = join(dir, 'verify-otp.json');
    writeFileSync(eventPath, JSON.stringify(verifyEventFor(otpRequestId, code), null, 2));
    const verified = await invoke('verifyOtp', eventPath, pieces.env);
    console.log(`\n${summary('sendOtp  ', sent)}`);
    console.log(summary('verifyOtp', verified));
    return verified.result?.statusCode === 200 ? 0 : 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};

const main = async (): Promise<number> => {
  const what = process.argv[2];
  if (what !== 'sendOtp' && what !== 'verifyOtp' && what !== 'flow') {
    console.error('usage: tsx local/invoke.ts <sendOtp|verifyOtp|flow>');
    return 2;
  }
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
  const pieces = await startLocalPieces(process.env);
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return; // tsx relays a signal the group already received
    stopping = true;
    killRunning('SIGTERM');
    await pieces.close();
    build.remove();
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(130));
  process.on('SIGTERM', () => void stop(143));
  try {
    if (what === 'flow') return await flow(pieces);
    const single = await invoke(what, EVENTS[what], pieces.env);
    const hint = hintFor(single);
    if (hint) console.error(hint.trim());
    return single.exitCode;
  } finally {
    await pieces.close();
    // invoke local leaves its bundle behind; this run's folder is ours alone to remove.
    build.remove();
  }
};

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : String(err));
      process.exit(1);
    },
  );
}
