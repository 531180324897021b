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
import { existsSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ConfigError, loadConfig } from '../lib/config';
import { createTable, startLocalDynamo } from './dynamo';
import { corsRulesFor, createFrontServer, type CorsRules } from './front-server';
import { awsEnvFor, dummyAwsEnv, freePort, LOCALHOST, privateBuildFolder, REPO_ROOT, waitForPort } from './env';
import { startSandboxProvider, type Sandbox } from './sandbox-provider';
import { checkKeySecrets, localKeySecrets, startSecretsStandIn } from './secrets';
import { DEFAULT_CHALLENGE_SECRET, startSiteverifyStandIn } from './siteverify';

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
          [base.CHALLENGE_SECRET_ID?.trim() || 'otp/challenge-secret']: base.CHALLENGE_SECRET || DEFAULT_CHALLENGE_SECRET,
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
      describe.push(`StartMessaging   ${started.url} (sandbox; expects the API key ${base.SM_API_KEY ? 'from SM_API_KEY' : 'sm_test_local (SM_API_KEY)'}; each code is printed as a [sandbox-sms] line)`);
    }

    // A bot challenge provider configured without its endpoint: a local siteverify with documented test tokens.
    const provider = base.CHALLENGE_PROVIDER?.trim();
    if (provider && provider !== 'none' && !base.CHALLENGE_VERIFY_URL) {
      const siteverify = await startSiteverifyStandIn({ secret: base.CHALLENGE_SECRET || DEFAULT_CHALLENGE_SECRET });
      closers.push(() => siteverify.close());
      env.CHALLENGE_VERIFY_URL = siteverify.url;
      describe.push(`Bot challenge    ${siteverify.url} (${provider} siteverify stand-in: token challenge-pass passes, challenge-fail fails)`);
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

/** Never printed: a credential from the person's shell is named, not shown. */
const CREDENTIALS = new Set(['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'SM_API_KEY']);

/** The lines a person exports to run `serverless invoke local` against the same pieces. */
export const invokeLocalHint = (env: Record<string, string>): string[] => {
  const kept = Object.keys(env).filter((k) => CREDENTIALS.has(k) && env[k] !== dummyAwsEnv[k as keyof typeof dummyAwsEnv]);
  return [
    ...Object.entries(env)
      .filter(([k]) => !kept.includes(k))
      .map(([k, v]) => `  export ${k}=${/^[\w@%+=:,./-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`}`),
    ...(kept.length ? [`  # ${kept.join(', ')}: keep your shell's own (not printed)`] : []),
    '  node --require ./local/invoke-local-mjs.cjs node_modules/serverless/bin/serverless.js invoke local -f sendOtp --path events/send-otp.json',
  ];
};

// ---------------------------------------------------------------------------------------------------------
// serverless offline as a child process.

const SOURCE_IP_PRELOAD = join(REPO_ROOT, 'local', 'source-ip-preload.cjs');

const spawnOffline = (env: NodeJS.ProcessEnv, httpPort: number, lambdaPort: number): ChildProcess =>
  spawn(
    process.execPath,
    // The preload gives the handlers the caller's IP as the front server saw it (local/front-server.ts).
    ['--require', SOURCE_IP_PRELOAD, SERVERLESS_BIN, 'offline', 'start', '--stage', STAGE, '--host', LOCALHOST, '--httpPort', String(httpPort),
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
 * `npm start` runs `sh -c "node --import tsx local/start.ts"` (tsx as a loader in this process, not its CLI: the
 * CLI relays a signal to its child and, when the child has not acknowledged it within 30 ms, as on a loaded
 * machine, kills it with SIGKILL and exits 143, so nothing would be cleaned up). sh does not pass on a SIGTERM
 * sent to npm (as `docker stop` or a process manager does): npm exits and we would keep running, orphaned,
 * holding the ports. So we also stop when npm (or our direct parent) is gone. A Ctrl-C reaches the whole process group
 * directly and needs none of this.
 */
const watchForOrphaning = (onOrphaned: () => void): NodeJS.Timeout => {
  const parent = process.ppid;
  const npm = process.env.npm_lifecycle_event ? npmAncestor() : undefined;
  return setInterval(() => {
    if (process.ppid !== parent || (npm !== undefined && !isAlive(npm))) onOrphaned();
  }, 500).unref();
};

const OPENAPI_SCRIPT = join(REPO_ROOT, 'scripts', 'build-openapi.ts');

const corsLine = (cors: CorsRules | false): string =>
  cors
    ? `${cors.allowedOrigins.join(', ')} (CORS_ALLOWED_ORIGINS), as the HTTP API answers: any other origin gets no Access-Control-* header`
    : 'none (CORS_ALLOWED_ORIGINS is empty): only same-origin pages, like the one above, can call from a browser';

/** The provider the demo page renders a (stand-in) check for, or undefined when no challenge is configured. */
const pageChallenge = (raw: string | undefined): { provider: string; siteKey: string } | undefined => {
  const provider = (raw ?? '').trim();
  return ['turnstile', 'hcaptcha', 'recaptcha'].includes(provider) ? { provider, siteKey: 'local-site-key' } : undefined;
};

/**
 * The sandbox's code line, framed (and bold yellow on a terminal) so it stands out from the JSON log lines;
 * the line itself stays `[sandbox-sms] <masked> code <digits>` for anyone grepping for it.
 */
const sandboxPrinter = (): ((line: string) => void) => {
  const color = process.stdout.isTTY && !process.env.NO_COLOR;
  return (line) => {
    const bar = '═'.repeat(line.length + 4);
    const framed = [``, `╔${bar}╗`, `║  ${line}  ║`, `╚${bar}╝`, ``];
    process.stdout.write(`${framed.map((l) => (color && l ? `\u001b[1;33m${l}\u001b[0m` : l)).join('\n')}\n`);
  };
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

  const cors = await corsRulesFor(process.env.CORS_ALLOWED_ORIGINS);
  const trustForwardedFor = process.env.LOCAL_FORWARDED_FOR === '1';
  const challenge = pageChallenge(process.env.CHALLENGE_PROVIDER);
  let offlinePort: number | undefined;
  const front = createFrontServer({ upstreamPort: () => offlinePort, cors, trustForwardedFor, ...(challenge ? { challenge } : {}) });
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
    pieces = await startLocalPieces(process.env, { printSandbox: sandboxPrinter() });
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
    log(`  CORS             ${corsLine(cors)}`);
    log(`  Caller IP        ${trustForwardedFor ? 'first X-Forwarded-For entry (LOCAL_FORWARDED_FOR=1; local only)' : 'the TCP peer (LOCAL_FORWARDED_FOR=1 takes the first X-Forwarded-For entry)'}`);
    if (challenge) log(`  Bot challenge    ${challenge.provider}: the page shows a local stand-in check that hands it the token challenge-pass`);
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
