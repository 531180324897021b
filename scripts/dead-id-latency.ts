/**
 * Issue 10, item 8, measured (reported in docs/rate-limits.md, never asserted): the median latency of
 * POST /auth/verify-otp per class of dead otpRequestId, over N requests each, through `npm start` (the real
 * handlers under serverless offline, dynalite, the sandbox provider), one request at a time.
 *
 *   npx tsx scripts/dead-id-latency.ts [requestsPerClass=200]
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { keysFor } from '../lib/otp/keys';
import { sealRequestId } from '../lib/otp/request-id';
import { newHashKey } from '../local/keys';
import { freePort } from '../local/env';

const N = Number(process.argv[2] ?? 200);
const TTL = 2;

const main = async (): Promise<void> => {
  const port = await freePort();
  const child = spawn(process.execPath, ['node_modules/tsx/dist/cli.mjs', 'local/start.ts'], {
    env: {
      ...process.env,
      PORT: String(port),
      OTP_TTL_SECONDS: String(TTL),
      SEND_COOLDOWN_SECONDS: '0',
      SEND_LIMIT_PER_PHONE_PER_HOUR: '1000',
      SEND_LIMIT_PER_PHONE_PER_DAY: '1000',
      SEND_LIMIT_PER_IP_PER_HOUR: '1000',
      VERIFY_MAX_FAILURES_PER_IP_PER_HOUR: '100000',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const stop = () => {
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch {
      /* already gone */
    }
  };
  try {
    const base = `http://127.0.0.1:${port}`;
    for (let i = 0; !/OTP service ready/.test(out); i++) {
      if (i > 600) throw new Error(`npm start did not get ready:\n${out.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const post = async (path: string, body: unknown) => {
      const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const codeFor = async (phone: string, before: number): Promise<string> => {
      const re = new RegExp(`\\[sandbox-sms\\] \\+91\\*+${phone.slice(-4)} code (\\d+)`, 'g');
      for (let i = 0; i < 100; i++) {
        const all = [...out.slice(before).matchAll(re)];
        if (all.length > 0) return all.at(-1)![1]!;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error('no code printed');
    };
    const send = async (phone: string) => {
      const before = out.length;
      const r = await post('/auth/send-otp', { phoneNumber: phone });
      if (r.status !== 201) throw new Error(`send: ${r.status}`);
      return { id: String(r.body.otpRequestId), code: await codeFor(phone, before) };
    };

    const expired = await send('+919811100001');
    const superseded = await send('+919811100002');
    await send('+919811100002');
    const used = await send('+919811100003');
    if ((await post('/auth/verify-otp', { otpRequestId: used.id, otp: used.code })).status !== 200) throw new Error('verify failed');
    const tampered = Buffer.from((await send('+919811100004')).id, 'base64url');
    tampered[tampered.length - 1] = tampered[tampered.length - 1]! ^ 1;
    const foreign = sealRequestId(keysFor(newHashKey()), '+919811100005').otpRequestId;
    await new Promise((r) => setTimeout(r, TTL * 1000 + 500));

    const ids: Record<string, string> = {
      expired: expired.id,
      superseded: superseded.id,
      used: used.id,
      forged: randomBytes(40).toString('base64url'),
      tampered: tampered.toString('base64url'),
      foreign,
    };
    const times: Record<string, number[]> = Object.fromEntries(Object.keys(ids).map((k) => [k, []]));
    // Interleaved, so drift over the run (GC, the machine's load) falls on every class alike.
    for (let i = 0; i < N; i++) {
      for (const [name, id] of Object.entries(ids)) {
        const t = process.hrtime.bigint();
        const r = await post('/auth/verify-otp', { otpRequestId: id, otp: '123456' });
        times[name]!.push(Number(process.hrtime.bigint() - t) / 1e6);
        if (r.status !== 410) throw new Error(`${name}: ${r.status}`);
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    console.log(`| class | requests | median (ms) |\n| --- | ---: | ---: |`);
    for (const [name, xs] of Object.entries(times)) console.log(`| ${name} | ${xs.length} | ${median(xs).toFixed(2)} |`);
  } finally {
    stop();
  }
};

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
