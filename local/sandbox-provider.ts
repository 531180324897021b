/**
 * A stand-in for StartMessaging's `POST /otp/send` (shared/startmessaging.md), on 127.0.0.1 only.
 *
 * `npm start` uses it so a person can finish the flow by hand: each code it is asked to deliver is printed
 * with the number masked. Tests use it to drive the real client over real HTTP, with programmable faults
 * (status answers, hung requests, reset connections, slow answers, stalled bodies).
 */
import { randomUUID } from 'node:crypto';
import { createServer, STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { listenOnLoopback, LOCALHOST, maskPhone } from './env';

export interface SandboxCall {
  phoneNumber: string;
  otp: string;
  idempotencyKey?: string;
  /** Lower-cased header names, as received. */
  headers: Record<string, string | undefined>;
  body: unknown;
  at: number;
  /** True when this call "sent an SMS"; faulted and refused calls are recorded too, with false. */
  delivered: boolean;
  /** The status answered, undefined for a hang or a reset. */
  status?: number;
}

export type SandboxFault =
  | { status: number; body?: string; headers?: Record<string, string> }
  | { hang: true }
  | { reset: true }
  /** Answers normally, late (the "SMS" is still sent, as a slow provider would). */
  | { delayMs: number }
  /** Sends a 201 status line and half a body, then nothing. */
  | { stallBody: true };

export interface Sandbox {
  url: string;
  port: number;
  /** Every request to POST /otp/send except idempotent replays, oldest first. */
  calls: SandboxCall[];
  /** codes delivered, most recent last, by phone */
  lastCode(phone: string): string | undefined;
  /** queue faults answered to the next requests in order; after the queue empties, normal success (POST /otp/send only) */
  failNext(...faults: SandboxFault[]): void;
  /** fault for every request until cleared */
  failAlways(fault: SandboxFault | undefined): void;
  reset(): void;
  close(): Promise<void>;
}

const IDEMPOTENCY_WINDOW_MS = 24 * 60 * 60 * 1000;
const MAX_BODY = 64 * 1024;

interface Stored {
  phoneNumber: string;
  at: number;
  status: number;
  text: string;
}

const reply = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
};

const readBody = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });

const field = (v: unknown, key: string): unknown =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>)[key] : undefined;
const asString = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

export const startSandboxProvider = async (
  opts: { port?: number; apiKey?: string /* if set, other keys get 401 */; print?: (line: string) => void; quiet?: boolean } = {},
): Promise<Sandbox> => {
  const print = opts.quiet ? () => {} : (opts.print ?? ((line: string) => void process.stdout.write(`${line}\n`)));
  const calls: SandboxCall[] = [];
  const codes = new Map<string, string[]>();
  const idempotent = new Map<string, Stored>();
  let queue: SandboxFault[] = [];
  let always: SandboxFault | undefined;
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();

  const wait = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        timers.delete(t);
        resolve();
      }, ms);
      timers.add(t);
    });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const raw = await readBody(req);
    const path = new URL(req.url ?? '/', 'http://sandbox').pathname;
    if (req.method !== 'POST' || path !== '/otp/send') {
      // What the provider's framework answers for a route it does not have.
      return reply(res, 404, { message: `Cannot ${req.method} ${path}`, error: 'Not Found', statusCode: 404 });
    }

    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      body = undefined;
    }
    const headers: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    const phoneNumber = asString(field(body, 'phoneNumber')) ?? '';
    const otp = asString(field(field(body, 'variables'), 'otp')) ?? '';
    const idempotencyKey = asString(field(body, 'idempotencyKey')) ?? headers['idempotency-key'] ?? headers['x-idempotency-key'];
    const call: SandboxCall = { phoneNumber, otp, idempotencyKey, headers, body, at: Date.now(), delivered: false };
    const answer = (status: number, payload: unknown, extra?: Record<string, string>) => {
      call.status = status;
      calls.push(call);
      reply(res, status, payload, extra);
    };

    const fault = queue.shift() ?? always;
    if (fault && 'status' in fault) {
      return answer(fault.status, fault.body ?? { success: false, statusCode: fault.status, message: STATUS_CODES[fault.status] ?? 'Error' }, fault.headers);
    }
    if (fault && 'hang' in fault) return void calls.push(call); // the socket stays open until the client or close() ends it
    if (fault && 'reset' in fault) {
      calls.push(call);
      return void req.socket.resetAndDestroy();
    }
    if (fault && 'stallBody' in fault) {
      calls.push(call);
      res.writeHead(201, { 'content-type': 'application/json' });
      return void res.write('{"success":true,"statusCode":201,"data":{"otpRe');
    }
    if (fault && 'delayMs' in fault) await wait(fault.delayMs);

    if (opts.apiKey !== undefined && headers['x-api-key'] !== opts.apiKey) {
      return answer(401, { message: 'Invalid API key', error: 'Unauthorized', statusCode: 401 });
    }
    const problems = [
      ...(/^\+\d{8,15}$/.test(phoneNumber) ? [] : ['phoneNumber must be a valid phone number']),
      ...(/^\d{4,8}$/.test(otp) ? [] : ['variables.otp must be a string of 4 to 8 digits']),
    ];
    if (problems.length) return answer(400, { message: problems, error: 'Bad Request', statusCode: 400 });

    if (idempotencyKey !== undefined) {
      const stored = idempotent.get(idempotencyKey);
      if (stored && Date.now() - stored.at < IDEMPOTENCY_WINDOW_MS) {
        if (stored.phoneNumber === phoneNumber) return reply(res, stored.status, stored.text); // a replay: no SMS, no call
        return answer(409, { success: false, statusCode: 409, error: { code: 'IDEMPOTENCY_CONFLICT', message: 'Idempotency key was used with another request' } });
      }
    }

    const payload = {
      success: true,
      statusCode: 201,
      requestId: `req_${randomUUID()}`,
      timestamp: new Date().toISOString(),
      data: { otpRequestId: randomUUID(), messageId: `msg_${randomUUID()}`, status: 'queued' },
    };
    if (idempotencyKey !== undefined) idempotent.set(idempotencyKey, { phoneNumber, at: Date.now(), status: 201, text: JSON.stringify(payload) });
    codes.set(phoneNumber, [...(codes.get(phoneNumber) ?? []), otp]);
    call.delivered = true;
    print(`[sandbox-sms] ${maskPhone(phoneNumber)} code ${otp}`);
    answer(201, payload);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) reply(res, 500, { message: 'sandbox failure', statusCode: 500 });
      else res.destroy();
    });
  });
  // Tracked so close() can end hung and keep-alive connections: otherwise jest (or npm start) would not exit.
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  const port = await listenOnLoopback(server, opts.port);

  let closing: Promise<void> | undefined;
  return {
    url: `http://${LOCALHOST}:${port}`,
    port,
    calls,
    lastCode: (phone) => codes.get(phone)?.at(-1),
    failNext: (...faults) => void queue.push(...faults),
    failAlways: (fault) => void (always = fault),
    reset: () => {
      calls.length = 0;
      codes.clear();
      idempotent.clear();
      queue = [];
      always = undefined;
    },
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
        server.closeAllConnections();
      })),
  };
};
