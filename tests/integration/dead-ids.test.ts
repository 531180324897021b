/**
 * API.md (v2): "A well-formed but unknown, tampered or foreign id answers exactly like an expired one, and costs
 * the same store work (the same DynamoDB requests)". Issue 10, item 8: every class of dead otpRequestId is sent
 * through the real verify use case and the real DynamoDB adapter on dynalite, and the requests are counted at
 * the SDK client (the DynamoDBDocumentClient's `send`, which every store call goes through).
 */
import { randomBytes } from 'node:crypto';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { loadConfig } from '../../lib/config';
import { OtpExpired } from '../../lib/errors';
import { sendOtp } from '../../lib/otp/send';
import { verifyOtp } from '../../lib/otp/verify';
import type { StartMessagingClient } from '../../lib/provider/startmessaging';
import { createDynamoStore } from '../../lib/store/dynamodb';
import { newHashKey, newTokenKeySecret } from '../../local/keys';
import { useDynalite } from '../support/dynalite';

const db = useDynalite('dead');
const config = loadConfig({ SEND_COOLDOWN_SECONDS: '0' });
const hashKey = newHashKey();
const PHONE = '+919876512345';
const IP = '198.51.100.9';

/** A store whose SDK client records the command of every request it sends. */
const countingStore = () => {
  const sent: string[] = [];
  const client = {
    send: (command: { constructor: { name: string } }) => {
      sent.push(command.constructor.name);
      return db.client.send(command as never);
    },
  } as unknown as DynamoDBDocumentClient;
  return { store: createDynamoStore({ table: db.table, client }), sent };
};

let lastCode = '';
const provider: StartMessagingClient = {
  sendOtp: async (req: { otp: string }) => {
    lastCode = req.otp;
    return { providerOtpId: 'p', traceId: 't', attempts: 1 };
  },
} as unknown as StartMessagingClient;

const send = async (now = Date.now(), key = hashKey) => {
  const { body } = await sendOtp({ config, store: db.store, provider, now: () => now }, { phoneNumber: PHONE, apiKey: 'k', hashKey: key });
  return { otpRequestId: body.otpRequestId, code: lastCode };
};

/** Each class: how to make such an id, and the clock to verify it at. */
const classes: Record<string, () => Promise<{ otpRequestId: string; now?: number }>> = {
  expired: async () => ({ ...(await send(Date.now() - 301_000)) }),
  superseded: async () => {
    const first = await send();
    await send();
    return first;
  },
  used: async () => {
    const sent = await send();
    const tokenKey = await newTokenKeySecret();
    await verifyOtp({ config, store: db.store }, { otpRequestId: sent.otpRequestId, otp: sent.code, hashKey, tokenKey, sourceIp: IP });
    return sent;
  },
  forged: async () => ({ otpRequestId: randomBytes(40).toString('base64url') }),
  tampered: async () => {
    const { otpRequestId } = await send();
    const raw = Buffer.from(otpRequestId, 'base64url');
    raw[raw.length - 1] = raw[raw.length - 1]! ^ 1;
    return { otpRequestId: raw.toString('base64url') };
  },
  foreign: async () => send(Date.now(), newHashKey()),
};

it.each(Object.keys(classes))('a %s id is 410 otp_expired', async (name) => {
  const dead = await classes[name]!();
  const { store } = countingStore();
  await expect(verifyOtp({ config, store }, { otpRequestId: dead.otpRequestId, otp: '123456', hashKey, tokenKey: undefined, sourceIp: IP })).rejects.toBeInstanceOf(OtpExpired);
});

it('every class of dead id costs the same DynamoDB requests, counted at the SDK client', async () => {
  const work: Record<string, string[]> = {};
  for (const [name, make] of Object.entries(classes)) {
    const dead = await make();
    const { store, sent } = countingStore();
    await verifyOtp({ config, store }, { otpRequestId: dead.otpRequestId, otp: '123456', hashKey, tokenKey: undefined, sourceIp: IP }).catch(() => undefined);
    work[name] = [...sent].sort();
  }
  // The claim and the IP failure unit in one round trip, the record read, the unit given back.
  const expected = ['GetCommand', 'UpdateCommand', 'UpdateCommand', 'UpdateCommand'];
  expect(work).toEqual(Object.fromEntries(Object.keys(classes).map((name) => [name, expected])));
});

it('a wrong code on a live id costs one round trip: the claim and the IP failure unit, in parallel', async () => {
  const live = await send();
  const { store, sent } = countingStore();
  let inFlight = 0;
  let maxInFlight = 0;
  const watched = new Proxy(store, {
    get: (target, prop) => {
      const fn = target[prop as keyof typeof target];
      if (typeof fn !== 'function') return fn;
      return async (...args: unknown[]) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        try {
          return await (fn as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        } finally {
          inFlight--;
        }
      };
    },
  });
  await verifyOtp({ config, store: watched }, { otpRequestId: live.otpRequestId, otp: live.code === '000000' ? '111111' : '000000', hashKey, tokenKey: undefined, sourceIp: IP }).catch(() => undefined);
  expect(sent).toEqual(['UpdateCommand', 'UpdateCommand']);
  expect(maxInFlight).toBe(2);
});
