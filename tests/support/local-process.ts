/**
 * A local-tooling command (`npm start`, `tsx local/invoke.ts`) as a child process in its own process group,
 * with its output captured, so a test can wait for lines, signal it like a terminal would, and then check
 * that nothing it started is left behind.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';

export const REPO_ROOT = resolve(__dirname, '..', '..');
export const TSX_CLI = resolve(REPO_ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs');

export interface Spawned {
  child: ChildProcess;
  /** Also the process group id: the child leads its own group. */
  pid: number;
  output(): string;
  /** Resolves with the match once the output matches (searching from offset `since`). */
  waitFor(pattern: RegExp, timeoutMs: number, since?: number): Promise<RegExpMatchArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  hasExited(): boolean;
}

/**
 * The environment a local-tooling process gets in tests: the test process's own (dummy AWS credentials from
 * tests/support/env.ts) minus anything that would point it away from its own local pieces.
 */
export const localToolEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of ['AWS_ENDPOINT_URL', 'AWS_ENDPOINT_URL_DYNAMODB', 'AWS_ENDPOINT_URL_SECRETS_MANAGER', 'STARTMESSAGING_BASE_URL',
    'SM_API_KEY', 'OTP_TABLE', 'PORT', 'NODE_OPTIONS', 'JEST_WORKER_ID']) {
    delete env[key];
  }
  return {
    ...env,
    AWS_REGION: 'ap-south-1',
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    FORCE_COLOR: '0',
    ...extra,
  };
};

export const spawnInGroup = (command: string, args: string[], env: NodeJS.ProcessEnv): Spawned => {
  const child = spawn(command, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  let out = '';
  const waiters = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    out += chunk.toString('utf8');
    for (const w of waiters) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.once('exit', (code, signal) => {
      done = true;
      for (const w of waiters) w();
      res({ code, signal });
    }),
  );

  const waitFor = (pattern: RegExp, timeoutMs: number, since = 0) =>
    new Promise<RegExpMatchArray>((res, rej) => {
      const check = () => {
        const m = out.slice(since).match(pattern);
        if (m) {
          finish();
          res(m);
        } else if (done) {
          finish();
          rej(new Error(`exited before printing ${pattern}; output:\n${out}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        rej(new Error(`no ${pattern} within ${timeoutMs} ms; output:\n${out}`));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });

  return { child, pid: child.pid, output: () => out, waitFor, exited, hasExited: () => done };
};

/** Pids of live (non-zombie) processes whose process group is `pgid` (from ps; Linux and macOS). */
export const groupMembers = (pgid: number): number[] =>
  execFileSync('ps', ['-e', '-o', 'pid=,pgid=,stat='], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter(([pid, group, stat]) => pid && Number(group) === pgid && !stat?.startsWith('Z'))
    .map(([pid]) => Number(pid));

/** Waits until the group has no live member; false if it still has one after timeoutMs. */
export const waitGroupGone = async (pgid: number, timeoutMs: number): Promise<boolean> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (groupMembers(pgid).length === 0) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
};

/** Last-resort cleanup for afterAll: SIGKILL to every group given (ignoring groups already gone). */
export const killGroups = (...pgids: (number | undefined)[]): void => {
  for (const pgid of pgids) {
    if (pgid === undefined) continue;
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // gone
    }
  }
};
