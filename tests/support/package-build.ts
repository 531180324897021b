/**
 * Runs the Serverless Framework (osls) on a copy of the project, offline: `serverless package` and
 * `serverless invoke local`, with nothing from the caller's shell but PATH and HOME.
 *
 * Why a copy: serverless-esbuild builds into `.esbuild/` next to serverless.yml and cleans it up, so a
 * package run in the working tree would pull the floor from under a concurrent `npm start` or
 * `invoke local` (another jest worker, a person). The copy shares node_modules through a symlink.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { CfnTemplate } from './package-template';

export const REPO_ROOT = resolve(__dirname, '..', '..');
export const SERVERLESS_BIN = join(REPO_ROOT, 'node_modules', 'serverless', 'bin', 'serverless.js');

/** Not part of what a function bundles: tooling, tests, docs and every dot-folder (.git, .esbuild, ...). */
const NOT_COPIED = new Set(['node_modules', 'tests', 'bench', 'public', 'docs', 'coverage', 'test-output', 'dist']);

/** What every AWS-SDK-loading child gets (tests/support/env.ts only covers this process). */
export const DUMMY_AWS_ENV = {
  AWS_REGION: 'ap-south-1',
  AWS_ACCESS_KEY_ID: 'test',
  AWS_SECRET_ACCESS_KEY: 'test',
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
} as const;

export const childEnv = (extra: Record<string, string> = {}): Record<string, string> => ({
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: process.env.HOME ?? tmpdir(),
  ...DUMMY_AWS_ENV,
  ...extra,
});

/** The temp folder for a child working in `projectDir`: the zip staging folders osls leaves behind go with it. */
export const tmpFor = (projectDir: string): string => join(projectDir, '.tmp');

/** A fresh copy of the project (sources, serverless.yml, events, deploy/) in a temp folder. */
export const copyProject = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'otp-package-'));
  for (const entry of readdirSync(REPO_ROOT)) {
    if (entry.startsWith('.') || NOT_COPIED.has(entry)) continue;
    cpSync(join(REPO_ROOT, entry), join(dir, entry), { recursive: true });
  }
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  mkdirSync(tmpFor(dir));
  return dir;
};

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface RunOptions {
  cwd: string;
  env: Record<string, string>;
  timeoutMs: number;
}

/**
 * `node <args>` in `cwd`. Its own process group, so a timeout also stops what it spawned (esbuild's
 * service, local stand-ins); settles on exit even when a grandchild still holds the output pipes open.
 */
export const runNode = (args: string[], opts: RunOptions): Promise<RunResult> =>
  new Promise((resolvePromise, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const killGroup = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      killGroup();
      reject(new Error(`node ${args.join(' ')} did not finish within ${opts.timeoutMs} ms\n${stdout}\n${stderr}`));
    }, opts.timeoutMs);
    let settled = false;
    let straggler: NodeJS.Timeout | undefined;
    const settle = (code: number | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(straggler);
      killGroup(); // leftovers of the group, if any
      resolvePromise({ code, stdout, stderr, ms: Date.now() - started });
    };
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => settle(code));
    // 'close' waits for every holder of the pipes; give stragglers a moment, then stop waiting for them.
    child.once('exit', (code) => (straggler = setTimeout(() => settle(code), 2000)));
  });

export const runServerless = (args: string[], opts: RunOptions): Promise<RunResult> => runNode([SERVERLESS_BIN, ...args], opts);

export interface Packaged {
  stage: string;
  projectDir: string;
  artifactDir: string;
  template: CfnTemplate;
  run: RunResult;
}

/** `serverless package --stage <stage> --package <dir>` on a fresh copy; throws with the output if it fails. */
export const packageStage = async (opts: { stage: string; params?: Record<string, string>; env?: Record<string, string>; timeoutMs?: number }): Promise<Packaged> => {
  const projectDir = copyProject();
  const artifactDir = join(projectDir, '.artifact');
  const params = Object.entries(opts.params ?? {}).flatMap(([k, v]) => ['--param', `${k}=${v}`]);
  const run = await runServerless(['package', '--stage', opts.stage, '--package', artifactDir, ...params], {
    cwd: projectDir,
    env: childEnv({ TMPDIR: tmpFor(projectDir), ...opts.env }),
    timeoutMs: opts.timeoutMs ?? 240_000,
  });
  if (run.code !== 0) throw new Error(`serverless package --stage ${opts.stage} exited ${run.code}\n${run.stdout}\n${run.stderr}`);
  const template = JSON.parse(readFileSync(join(artifactDir, 'cloudformation-template-update-stack.json'), 'utf8')) as CfnTemplate;
  return { stage: opts.stage, projectDir, artifactDir, template, run };
};

export const removeDir = (dir: string | undefined): void => {
  if (dir) rmSync(dir, { recursive: true, force: true });
};
