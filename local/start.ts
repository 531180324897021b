/**
 * `npm start`: the whole service on http://127.0.0.1:${PORT:-3000} through the real handler code
 * (API.md, "Local stack: npm start").
 *
 *   browser / curl ──► front server on PORT ──► serverless offline (internal port) ──► handlers
 *                       │ GET /, /<file> from public/         │ AWS_ENDPOINT_URL_DYNAMODB ──► dynalite
 *                       │ GET /openapi.json                   │ AWS_ENDPOINT_URL_SECRETS_MANAGER ──► secrets stand-in
 *                                                             │ STARTMESSAGING_BASE_URL ──► sandbox provider
 *
 * The front server exists because serverless-offline serves only the Lambda routes; putting the page and the
 * OpenAPI document on the same origin spares the page any CORS setup.
 *
 * Each local piece is started only when the matching variable is not set, so the same command can run
 * against DynamoDB Local, a real provider sandbox, etc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, resolve, sep } from 'node:path';
import { createInterface } from 'node:readline';
import { ConfigError, loadConfig } from '../lib/config';
import { createTable, startLocalDynamo } from './dynamo';
import { awsEnvFor, dummyAwsEnv, freePort, LOCALHOST, privateBuildFolder, REPO_ROOT, waitForPort } from './env';
import { startSandboxProvider, type Sandbox } from './sandbox-provider';
import { checkKeySecrets, localKeySecrets, startSecretsStandIn } from './secrets';

export const SERVERLESS_BIN = join(REPO_ROOT, 'node_modules', 'serverless', 'bin', 'serverless.js');
const STAGE = 'dev';

export interface LocalPieces {
  /** Variables that point a service process (serverless offline, invoke local) at the pieces. */
  env: Record<string, string>;
  /** One line per piece, for a person. */
  describe: string[];
  /** Present when this process started the sandbox provider. */
  sandbox: Sandbox | undefined;
  tableName: string;
  close(): Promise<void>;
}

/**
 * Starts whatever `base` does not already point elsewhere: dynalite (+ table), the secrets stand-in,
 * the sandbox provider. Used by start.ts and invoke.ts alike.
 */
export const startLocalPieces = async (
  base: NodeJS.ProcessEnv,
  opts: { printSandbox?: (line: string) => void } = {},
): Promise<LocalPieces> => {
  const closers: (() => Promise<void>)[] = [];
  const close = async () => {
    // Reverse order; one failing close must not leave the others running.
    for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
  };
  const describe: string[] = [];
  const tableName = base.OTP_TABLE?.trim() || `otp-${STAGE}`;
  const apiKeySecretId = base.API_KEY_SECRET_ID?.trim() || 'sm/api-key';
  const hashSecretId = base.HASH_SECRET_ID?.trim() || 'otp/hash-key';
  const tokenKeySecretId = base.TOKEN_KEY_SECRET_ID?.trim() || 'otp/token-key';
  const env: Record<string, string> = {};
  let sandbox: Sandbox | undefined;

  try {
    if (base.AWS_ENDPOINT_URL_DYNAMODB) {
      env.AWS_ENDPOINT_URL_DYNAMODB = base.AWS_ENDPOINT_URL_DYNAMODB;
      describe.push(`DynamoDB         ${base.AWS_ENDPOINT_URL_DYNAMODB} (from AWS_ENDPOINT_URL_DYNAMODB; table ${tableName} must exist)`);
    } else {
      const dynamo = await startLocalDynamo();
      closers.push(() => dynamo.close());
      await createTable(dynamo.endpoint, tableName);
      env.AWS_ENDPOINT_URL_DYNAMODB = dynamo.endpoint;
      describe.push(`DynamoDB         ${dynamo.endpoint} (dynalite, in memory, table ${tableName}, empty at every start)`);
    }

    if (base.AWS_ENDPOINT_URL_SECRETS_MANAGER) {
      await checkKeySecrets(base.AWS_ENDPOINT_URL_SECRETS_MANAGER, { hashSecretId, tokenKeySecretId }, base);
      env.AWS_ENDPOINT_URL_SECRETS_MANAGER = base.AWS_ENDPOINT_URL_SECRETS_MANAGER;
      describe.push(`Secrets Manager  ${base.AWS_ENDPOINT_URL_SECRETS_MANAGER} (from AWS_ENDPOINT_URL_SECRETS_MANAGER)`);
    } else {
      const secrets = await startSecretsStandIn({
        secrets: {
          [apiKeySecretId]: base.SM_API_KEY || 'sm_test_local',
          // Fresh keys per start: codes and tokens from an earlier run stop verifying, like after a rotation.
          ...(await localKeySecrets({ hashSecretId, tokenKeySecretId })),
        },
      });
      closers.push(() => secrets.close());
      env.AWS_ENDPOINT_URL_SECRETS_MANAGER = secrets.endpoint;
      describe.push(`Secrets Manager  ${secrets.endpoint} (stand-in: ${apiKeySecretId} from SM_API_KEY; ${hashSecretId}, ${tokenKeySecretId} generated, not shown)`);
    }

    if (base.STARTMESSAGING_BASE_URL) {
      env.STARTMESSAGING_BASE_URL = base.STARTMESSAGING_BASE_URL;
      describe.push(`StartMessaging   ${base.STARTMESSAGING_BASE_URL} (from STARTMESSAGING_BASE_URL)`);
    } else {
      const apiKey = base.SM_API_KEY || 'sm_test_local';
      // The sandbox checks the key, so a service that reads the wrong secret fails here as it would live.
      const started = await startSandboxProvider({ apiKey, ...(opts.printSandbox ? { print: opts.printSandbox } : {}) });
      sandbox = started;
      closers.push(() => started.close());
      env.STARTMESSAGING_BASE_URL = started.url;
      describe.push(`StartMessaging   ${started.url} (sandbox, API key ${apiKey}; each code is printed as a [sandbox-sms] line)`);
    }
  } catch (err) {
    await close();
    throw err;
  }

  // Our stand-ins accept any credentials: dummies then, so a mistyped endpoint can never reach AWS with a real
  // key. Someone pointing an AWS endpoint at their own server keeps their credentials (DynamoDB Local, for one,
  // keeps a separate database per access key and region).
  const allOurs = !base.AWS_ENDPOINT_URL_DYNAMODB && !base.AWS_ENDPOINT_URL_SECRETS_MANAGER;
  Object.assign(env, allOurs ? { ...dummyAwsEnv } : awsEnvFor(base), {
    OTP_TABLE: tableName,
    API_KEY_SECRET_ID: apiKeySecretId,
    HASH_SECRET_ID: hashSecretId,
    TOKEN_KEY_SECRET_ID: tokenKeySecretId,
  });
  return { env, describe, sandbox, tableName, close };
};

/** The lines a person exports to run `serverless invoke local` against the same pieces. */
export const invokeLocalHint = (env: Record<string, string>): string[] => [
  ...Object.entries(env).map(([k, v]) => `  export ${k}=${/^[\w@%+=:,./-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`}`),
  '  node node_modules/serverless/bin/serverless.js invoke local -f sendOtp --path events/send-otp.json',
];

// ---------------------------------------------------------------------------------------------------------
// The front server: static files, the OpenAPI document, everything else proxied to serverless offline.

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

// Per RFC 9110 §7.6.1 these describe one connection, not the message: a proxy does not forward them.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

const sendJson = (res: ServerResponse, status: number, body: unknown, head = false): void => {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(head ? undefined : text);
};

const notFound = (res: ServerResponse, head: boolean) =>
  sendJson(res, 404, { error: 'not_found', message: 'There is nothing at this path.' }, head);

/** The file under public/ that a GET path names, or undefined (missing, a directory, or outside public/). */
const publicFile = (publicDir: string, pathname: string): string | undefined => {
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return undefined;
  }
  if (decoded.includes('\0')) return undefined;
  const file = resolve(publicDir, `.${decoded === '/' ? '/index.html' : decoded}`);
  if (!file.startsWith(publicDir + sep)) return undefined; // ../ and friends
  try {
    return statSync(file).isFile() ? file : undefined;
  } catch {
    return undefined;
  }
};

const forwardHeaders = (headers: IncomingHttpHeaders | string[]): string[] => {
  const raw = Array.isArray(headers) ? headers : Object.entries(headers).flatMap(([k, v]) => (v === undefined ? [] : [k, String(v)]));
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (!HOP_BY_HOP.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
};

const PUBLIC_DIR = join(REPO_ROOT, 'public');
const OPENAPI_SCRIPT = join(REPO_ROOT, 'scripts', 'build-openapi.ts');

/** `upstreamPort` is undefined until serverless offline answers; API calls get a 503 until then. */
export const createFrontServer = (opts: { upstreamPort: () => number | undefined }): Server => {

  const proxy = (req: IncomingMessage, res: ServerResponse) => {
    const port = opts.upstreamPort();
    if (port === undefined) {
      return sendJson(res, 503, { error: 'service_unavailable', message: 'The API emulation is still starting.' });
    }
    const upstream = request(
      { host: LOCALHOST, port, method: req.method, path: req.url, headers: forwardHeaders(req.rawHeaders) as unknown as IncomingHttpHeaders },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.statusMessage, forwardHeaders(up.rawHeaders));
        up.pipe(res);
        up.on('error', () => res.destroy());
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) sendJson(res, 502, { error: 'upstream_error', message: 'The API emulation did not answer.' });
      else res.destroy();
    });
    req.pipe(upstream);
  };

  return createServer((req, res) => {
    const { pathname } = new URL(req.url ?? '/', 'http://front');
    const isGet = req.method === 'GET' || req.method === 'HEAD';
    if (!isGet || pathname === '/.well-known/jwks.json') return proxy(req, res);
    const head = req.method === 'HEAD';

    if (pathname === '/openapi.json' && existsSync(OPENAPI_SCRIPT)) {
      try {
        // Loaded on first use (tsx compiles it), so a start never fails because that script is broken or absent.
        const mod = require(OPENAPI_SCRIPT) as { buildOpenApi?: () => unknown };
        if (typeof mod.buildOpenApi !== 'function') throw new Error('scripts/build-openapi.ts has no buildOpenApi()');
        return sendJson(res, 200, mod.buildOpenApi(), head);
      } catch (err) {
        process.stderr.write(`openapi.json: ${err instanceof Error ? err.message : String(err)}\n`);
        return sendJson(res, 500, { error: 'internal_error', message: 'The OpenAPI document could not be built.' }, head);
      }
    }
    const file = publicFile(PUBLIC_DIR, pathname);
    if (!file) return notFound(res, head);
    res.writeHead(200, {
      'content-type': CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
      'content-length': statSync(file).size,
      'cache-control': 'no-store', // a person editing the page sees the edit on reload
    });
    if (head) return void res.end();
    createReadStream(file).on('error', () => res.destroy()).pipe(res);
  });
};

// ---------------------------------------------------------------------------------------------------------
// serverless offline as a child process.

const spawnOffline = (env: NodeJS.ProcessEnv, httpPort: number, lambdaPort: number): ChildProcess =>
  spawn(
    process.execPath,
    [SERVERLESS_BIN, 'offline', 'start', '--stage', STAGE, '--host', LOCALHOST, '--httpPort', String(httpPort),
      '--lambdaPort', String(lambdaPort), '--noPrependStageInUrl', '--noSponsor'],
    // Its own process group, so stopping it also stops what it spawned (esbuild's service process).
    { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );

const killGroup = (child: ChildProcess, signal: NodeJS.Signals): void => {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
};

const stopChild = async (child: ChildProcess, graceMs = 5000): Promise<void> => {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    killGroup(child, 'SIGTERM');
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
  // The leader is gone; anything left in its group (a stuck esbuild) goes too.
  killGroup(child, 'SIGKILL');
};

// ---------------------------------------------------------------------------------------------------------
// Noticing that whoever started us is gone.

/** Linux only: state and parent of a process, from /proc (undefined elsewhere or once it is gone). */
const procStat = (pid: number): { state: string; ppid: number } | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) S ppid ...": comm may contain spaces and parentheses, so split after the last ')'.
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return state && ppid ? { state, ppid: Number(ppid) } : undefined;
  } catch {
    return undefined;
  }
};

const isAlive = (pid: number): boolean => {
  const stat = procStat(pid);
  if (stat) return stat.state !== 'Z';
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** The npm process running us (npm → sh -c → tsx → this one), found by walking up /proc; Linux only. */
const npmAncestor = (): number | undefined => {
  let pid = process.ppid;
  for (let hops = 0; hops < 5 && pid > 1; hops++) {
    try {
      // npm retitles itself "npm start"; run by path it shows as ".../npm-cli.js start".
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (/(^|[\s/])npm(-cli\.js)?(\s|$)/.test(cmd)) return pid;
    } catch {
      return undefined;
    }
    pid = procStat(pid)?.ppid ?? 0;
  }
  return undefined;
};

/**
 * `npm start` runs `sh -c "tsx local/start.ts"`, and sh does not pass on a SIGTERM sent to npm (as
 * `docker stop` or a process manager does): npm exits and we would keep running, orphaned, holding the ports.
 * So we also stop when npm (or our direct parent, tsx) is gone. A Ctrl-C reaches the whole process group
 * directly and needs none of this.
 */
const watchForOrphaning = (onOrphaned: () => void): NodeJS.Timeout => {
  const parent = process.ppid;
  const npm = process.env.npm_lifecycle_event ? npmAncestor() : undefined;
  return setInterval(() => {
    if (process.ppid !== parent || (npm !== undefined && !isAlive(npm))) onOrphaned();
  }, 500).unref();
};

const parsePort = (raw: string | undefined): number => {
  const s = (raw ?? '').trim() || '3000';
  if (!/^\d+$/.test(s) || Number(s) > 65535) throw new ConfigError(`PORT must be a port number from 0 to 65535, got "${raw}"`);
  return Number(s);
};

const main = async (): Promise<void> => {
  const log = (line: string) => process.stdout.write(`${line}\n`);
  const port = parsePort(process.env.PORT);
  // This process loads the AWS SDK too (to create the table): keep it off the metadata service and quiet.
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

  // Fail before starting anything when a variable is invalid (API.md: the start stops, naming the variable).
  loadConfig({ ...process.env, STAGE });

  let offlinePort: number | undefined;
  const front = createFrontServer({ upstreamPort: () => offlinePort });
  // Bind the public port first: if it is taken, say so before spending seconds on the rest.
  await new Promise<void>((res, rej) => {
    front.once('error', (err: NodeJS.ErrnoException) =>
      rej(err.code === 'EADDRINUSE' ? new ConfigError(`PORT ${port} is already in use on ${LOCALHOST}; set PORT to another port`) : err));
    front.listen(port, LOCALHOST, () => res());
  });
  const publicUrl = `http://${LOCALHOST}:${(front.address() as AddressInfo).port}`;

  let pieces: LocalPieces | undefined;
  let child: ChildProcess | undefined;
  const build = privateBuildFolder();
  let stopping: Promise<void> | undefined;
  const stop = (code: number) =>
    (stopping ??= (async () => {
      front.close();
      front.closeAllConnections();
      if (child) await stopChild(child);
      await pieces?.close();
      build.remove();
      process.exit(code);
    })());
  // Repeats are ignored: tsx relays a signal the whole group already received, and the stop is bounded anyway
  // (the child gets SIGKILL after a grace period).
  const onSignal = () => {
    if (!stopping) log('Stopping…');
    void stop(0);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal); // the terminal closed
  watchForOrphaning(() => {
    if (stopping) return;
    log('The process that started this one is gone; stopping.');
    void stop(0);
  });

  try {
    pieces = await startLocalPieces(process.env);
    const [httpPort, lambdaPort] = [await freePort(), await freePort()];
    const childEnv: NodeJS.ProcessEnv = { ...process.env, ...pieces.env, ...build.env };
    delete childEnv.PORT; // serverless.yml reads ${env:PORT}; the CLI flags win anyway, but nothing should guess
    child = spawnOffline(childEnv, httpPort, lambdaPort);
    const offline = child;

    // Until it is ready, keep its chatter (it names the internal port) for a failure report; afterwards show
    // the request and handler log lines, with the internal address replaced by the one to use.
    const early: string[] = [];
    let ready = false;
    const internal = `http://${LOCALHOST}:${httpPort}`;
    for (const stream of [offline.stdout!, offline.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        if (!ready) early.push(line);
        else log(line.replaceAll(internal, publicUrl));
      });
    }
    offline.once('exit', (code, signal) => {
      if (stopping) return;
      log(`serverless offline exited (${signal ?? `code ${code}`}); stopping.`);
      if (!ready) log(early.join('\n'));
      void stop(1);
    });

    await waitForPort(httpPort, { timeoutMs: 120_000, stillAlive: () => offline.exitCode === null && offline.signalCode === null });
    offlinePort = httpPort;
    ready = true;

    log(`OTP service ready at ${publicUrl}`);
    log(`  API              POST ${publicUrl}/auth/send-otp, POST ${publicUrl}/auth/verify-otp, GET ${publicUrl}/.well-known/jwks.json`);
    log(`  Page             ${publicUrl}/ (public/)${existsSync(OPENAPI_SCRIPT) ? `, OpenAPI ${publicUrl}/openapi.json` : ''}`);
    for (const line of pieces.describe) log(`  ${line}`);
    log(`  Lambda emulation ${internal} (serverless offline, pid ${offline.pid}, lambda port ${lambdaPort})`);
    log(`Started in ${process.uptime().toFixed(1)} s. To run \`serverless invoke local\` against these same pieces:`);
    for (const line of invokeLocalHint(pieces.env)) log(line);
    log('Ctrl-C stops everything.');
  } catch (err) {
    process.stderr.write(`npm start failed: ${err instanceof Error ? err.message : String(err)}\n`);
    await stop(1);
  }
};

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof ConfigError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
