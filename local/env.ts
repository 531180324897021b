/**
 * Small helpers shared by the local tooling (start.ts, invoke.ts) and its tests.
 */
import { createServer, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { connect, type AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';

/** Every local piece listens on the loopback interface only. */
export const LOCALHOST = '127.0.0.1';

/** The repository root: local/ sits directly under it. */
export const REPO_ROOT = resolve(__dirname, '..');

/**
 * What any process that loads the AWS SDK gets locally: a region, credentials that only the stand-ins accept,
 * and no reaching out to the instance metadata service (which would hang for seconds off EC2).
 */
export const dummyAwsEnv = {
  AWS_REGION: 'ap-south-1',
  AWS_ACCESS_KEY_ID: 'local',
  AWS_SECRET_ACCESS_KEY: 'local',
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
} as const;

/**
 * The AWS variables for a child process: the caller's region and credentials if set (someone pointing
 * `AWS_ENDPOINT_URL_*` at their own stand-ins may need theirs), the dummies otherwise; the two switches always.
 */
export const awsEnvFor = (env: NodeJS.ProcessEnv): Record<string, string> => ({
  AWS_REGION: env.AWS_REGION || dummyAwsEnv.AWS_REGION,
  AWS_ACCESS_KEY_ID: env.AWS_ACCESS_KEY_ID || dummyAwsEnv.AWS_ACCESS_KEY_ID,
  AWS_SECRET_ACCESS_KEY: env.AWS_SECRET_ACCESS_KEY || dummyAwsEnv.AWS_SECRET_ACCESS_KEY,
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
});

/** A port nobody is listening on right now (the OS picks it; there is a small race, acceptable locally). */
export const freePort = async (): Promise<number> => {
  const server: Server = createServer();
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(0, LOCALHOST, () => res());
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((res) => server.close(() => res()));
  return port;
};

/** True when something accepts TCP connections on 127.0.0.1:port. */
export const isListening = (port: number, host = LOCALHOST): Promise<boolean> =>
  new Promise((res) => {
    const socket = connect({ port, host });
    socket.once('connect', () => {
      socket.destroy();
      res(true);
    });
    socket.once('error', () => {
      socket.destroy();
      res(false);
    });
  });

/**
 * Polls until the port accepts connections. `stillAlive` lets the caller stop waiting as soon as the
 * process that should open the port has died.
 */
export const waitForPort = async (
  port: number,
  { timeoutMs = 60_000, intervalMs = 100, stillAlive = () => true }: { timeoutMs?: number; intervalMs?: number; stillAlive?: () => boolean } = {},
): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await isListening(port)) return;
    if (!stillAlive()) throw new Error(`the process that should listen on port ${port} has exited`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`nothing listened on port ${port} within ${timeoutMs} ms`);
};

/** Listens on 127.0.0.1 (port 0: any free one) and resolves with the port; a failure to bind rejects. */
export const listenOnLoopback = (server: Server, port = 0): Promise<number> =>
  new Promise<number>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(port, LOCALHOST, () => {
      server.off('error', reject);
      resolveListen((server.address() as AddressInfo).port);
    });
  });

/** `+919876543210` → `+91******3210`, the way the service masks numbers in logs. */
export const maskPhone = (phone: string): string =>
  phone.length <= 7 ? '***' : `${phone.slice(0, 3)}${'*'.repeat(phone.length - 7)}${phone.slice(-4)}`;

/**
 * A private serverless-esbuild work folder for one local run (under the git-ignored .esbuild-local/), so that
 * `npm start`, `invoke local` and tests running side by side do not overwrite or delete each other's bundle.
 * Takes effect once serverless.yml reads it: `custom.esbuild.outputWorkFolder: ${env:ESBUILD_WORK_FOLDER, '.esbuild'}`.
 */
export const privateBuildFolder = (): { env: { ESBUILD_WORK_FOLDER: string }; remove(): void } => {
  // Not under .esbuild/: `serverless package` (npm run package) deletes that whole folder when it finishes.
  const folder = join('.esbuild-local', `${process.pid}-${randomBytes(3).toString('hex')}`);
  return {
    env: { ESBUILD_WORK_FOLDER: folder },
    remove: () => rmSync(join(REPO_ROOT, folder), { recursive: true, force: true }),
  };
};
