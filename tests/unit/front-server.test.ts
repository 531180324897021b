/**
 * local/front-server.ts on its own (no serverless offline behind it): the demo page with a configured bot
 * challenge, the stand-in provider script, API Gateway's answers for what it has no route for, and the
 * caller's IP.
 */
import type { IncomingMessage, Server } from 'node:http';
import { listenOnLoopback } from '../../local/env';
import { callerIp, corsRulesFor, createFrontServer } from '../../local/front-server';

const servers: Server[] = [];
afterAll(() => servers.forEach((s) => s.close()));

const start = async (challenge?: { provider: string; siteKey: string }) => {
  const server = createFrontServer({ upstreamPort: () => undefined, cors: await corsRulesFor(''), trustForwardedFor: false, ...(challenge ? { challenge } : {}) });
  servers.push(server);
  return `http://127.0.0.1:${await listenOnLoopback(server)}`;
};

describe('the front server', () => {
  it('puts a configured challenge on the demo widget, pointing at the local stand-in script it serves', async () => {
    const url = await start({ provider: 'turnstile', siteKey: 'local-site-key' });
    const html = await (await fetch(`${url}/`)).text();
    expect(html).toMatch(/<div data-otp-widget data-challenge-provider="turnstile" data-challenge-site-key="local-site-key" data-challenge-script="\/challenge-stand-in.js"/);
    const script = await fetch(`${url}/challenge-stand-in.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/javascript/);
    expect(await script.text()).toContain("'challenge-pass'");
  });

  it('leaves the page alone without a challenge', async () => {
    const url = await start();
    expect(await (await fetch(`${url}/`)).text()).not.toContain('data-challenge-provider');
  });

  it('answers as API Gateway does: no OPTIONS route without CORS, 404 for unknown routes, 503 while starting', async () => {
    const url = await start();
    const options = await fetch(`${url}/auth/send-otp`, { method: 'OPTIONS', headers: { origin: 'https://shop.example' } });
    expect(options.status).toBe(404);
    expect([...options.headers.keys()].filter((k) => k.startsWith('access-control-'))).toEqual([]);
    expect((await fetch(`${url}/auth/nothing`, { method: 'POST' })).status).toBe(404);
    const early = await fetch(`${url}/auth/send-otp`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(early.status).toBe(503);
    expect(early.headers.get('retry-after')).toBe('2');
  });

  it('takes the caller IP from the TCP peer, or from the first valid X-Forwarded-For entry when trusted', () => {
    const req = (xff: string | undefined, peer = '::ffff:127.0.0.1') =>
      ({ headers: xff === undefined ? {} : { 'x-forwarded-for': xff }, socket: { remoteAddress: peer } }) as unknown as IncomingMessage;
    expect(callerIp(req('203.0.113.7'), false)).toBe('127.0.0.1');
    expect(callerIp(req('203.0.113.7, 10.0.0.1'), true)).toBe('203.0.113.7');
    expect(callerIp(req(' 2001:db8::1 '), true)).toBe('2001:db8::1');
    expect(callerIp(req('not-an-ip'), true)).toBe('127.0.0.1');
    expect(callerIp(req(undefined, '::1'), true)).toBe('::1');
  });
});
