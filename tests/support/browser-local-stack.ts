/**
 * `npm start` (local/start.ts) as a child process for browser tests: its own process group, a free
 * port on 127.0.0.1, stdout/stderr captured so a test can read the sandbox SMS lines.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join, resolve } from 'node:path';

export const REPO_ROOT = resolve(__dirname, '..', '..');

export const freePort = (): Promise<number> =>
  new Promise((ok, fail) => {
    const server = createServer();
    server.unref();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? ok(port) : fail(new Error('no free port'))));
    });
  });

/** True while something accepts TCP connections on 127.0.0.1:port. */
export const portOpen = (port: number): Promise<boolean> =>
  new Promise((ok) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      ok(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      ok(false);
    });
    socket.once('error', () => ok(false));
  });

/** True while any process of the group exists. */
export const groupAlive = (pgid: number): boolean => {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// eslint-disable-next-line no-control-regex
const stripAnsi = (s: string) => s.replace(/\u001b\[[0-9;?]*[ -/]*[@-~]/g, '');

export interface SandboxSms {
  masked: string;
  code: string;
  /** Offset of the line in the captured output. */
  at: number;
}

export interface LocalStack {
  url: string;
  port: number;
  pid: number;
  /** Everything the child printed so far (stdout and stderr, ANSI codes removed). */
  output(): string;
  /** Waits for the first `[sandbox-sms] <masked> code <digits>` line printed after offset `since`. */
  waitForSms(since: number, timeoutMs?: number): Promise<SandboxSms>;
  /** Sandbox SMS lines printed after offset `since`. */
  smsSince(since: number): SandboxSms[];
  /** SIGTERM to the group; resolves when every process of the group is gone (SIGKILL after graceMs). */
  stop(graceMs?: number): Promise<{ graceful: boolean }>;
  exited(): boolean;
}

const SMS_LINE = /\[sandbox-sms\]\s+(\S+)\s+code\s+(\d{4,8})/g;
const READY_LINE = /OTP service ready at (http:\/\/127\.0\.0\.1:(\d+))/;

export const requiredLocalFiles = ['handlers/send-otp.ts', 'handlers/verify-otp.ts', 'local/start.ts'];

export const missingLocalFiles = (): string[] => requiredLocalFiles.filter((f) => !existsSync(join(REPO_ROOT, f)));

export const startLocalStack = async (opts: { env?: Record<string, string | undefined>; readyTimeoutMs?: number } = {}): Promise<LocalStack> => {
  const missing = missingLocalFiles();
  if (missing.length) throw new Error(`The local stack cannot start: missing ${missing.join(', ')}.`);

  const port = await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env };
  // Always the embedded stand-ins: never a real DynamoDB, Secrets Manager or StartMessaging.
  delete env.AWS_ENDPOINT_URL_DYNAMODB;
  delete env.AWS_ENDPOINT_URL_SECRETS_MANAGER;
  delete env.STARTMESSAGING_BASE_URL;
  Object.assign(env, {
    PORT: String(port),
    SEND_COOLDOWN_SECONDS: process.env.SEND_COOLDOWN_SECONDS ?? '60',
    AWS_REGION: process.env.AWS_REGION ?? 'ap-south-1',
    AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'test',
    AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'test',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    NO_COLOR: '1',
    FORCE_COLOR: '0',
  });
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }

  const child: ChildProcess = spawn(process.execPath, [join(REPO_ROOT, 'node_modules/tsx/dist/cli.mjs'), 'local/start.ts'], {
    cwd: REPO_ROOT,
    env,
    detached: true, // its own process group: one signal reaches everything it starts
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pid = child.pid;
  if (!pid) throw new Error('could not spawn local/start.ts');

  let out = '';
  let exitInfo: string | undefined;
  const listeners = new Set<() => void>();
  const notify = () => listeners.forEach((l) => l());
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    out += stripAnsi(chunk);
    notify();
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    out += stripAnsi(chunk);
    notify();
  });
  const exitPromise = new Promise<void>((r) =>
    child.once('exit', (code, signal) => {
      exitInfo = `exit code ${code}, signal ${signal}`;
      notify();
      r();
    }),
  );

  const waitFor = <T>(probe: () => T | undefined, timeoutMs: number, what: string): Promise<T> =>
    new Promise((ok, fail) => {
      const check = () => {
        const found = probe();
        if (found !== undefined) return done(() => ok(found));
        if (exitInfo) return done(() => fail(new Error(`local/start.ts ended (${exitInfo}) before ${what}. Output:\n${out.slice(-4000)}`)));
      };
      const timer = setTimeout(
        () => done(() => fail(new Error(`Timed out after ${timeoutMs} ms waiting for ${what}. Output:\n${out.slice(-4000)}`))),
        timeoutMs,
      );
      const done = (f: () => void) => {
        clearTimeout(timer);
        listeners.delete(check);
        f();
      };
      listeners.add(check);
      check();
    });

  const smsSince = (since: number): SandboxSms[] =>
    [...out.slice(since).matchAll(SMS_LINE)].map((m) => ({ masked: m[1]!, code: m[2]!, at: since + (m.index ?? 0) }));

  const stack: LocalStack = {
    url: '',
    port,
    pid,
    output: () => out,
    smsSince,
    waitForSms: (since, timeoutMs = 20_000) => waitFor(() => smsSince(since)[0], timeoutMs, 'a [sandbox-sms] line'),
    exited: () => exitInfo !== undefined,
    stop: async (graceMs = 15_000) => {
      if (groupAlive(pid)) {
        try {
          process.kill(-pid, 'SIGTERM');
        } catch {
          /* already gone */
        }
      }
      const deadline = Date.now() + graceMs;
      while (groupAlive(pid) && Date.now() < deadline) await sleep(100);
      const graceful = !groupAlive(pid);
      if (!graceful) {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          /* gone meanwhile */
        }
        const hard = Date.now() + 5000;
        while (groupAlive(pid) && Date.now() < hard) await sleep(100);
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exitPromise, new Promise((r) => (timer = setTimeout(r, 2000)))]);
      clearTimeout(timer);
      return { graceful };
    },
  };

  try {
    const url = await waitFor(() => {
      const m = READY_LINE.exec(out);
      return m ? m[1]! : undefined;
    }, opts.readyTimeoutMs ?? 90_000, 'the line "OTP service ready at http://127.0.0.1:<PORT>"');
    stack.url = url;
  } catch (error) {
    await stack.stop(5000);
    throw error;
  }
  return stack;
};
