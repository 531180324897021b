'use strict';
/**
 * Loaded into serverless offline by `npm start` (node --require). serverless offline takes
 * requestContext.http.sourceIp from the socket it accepted (hapi's request.info.remoteAddress), which is always
 * the front server's loopback connection. The front server (local/front-server.ts) names the caller's IP in
 * a header of its own on a connection of its own (agent: false); this sets it as that socket's remote address
 * and removes the header before anything else sees the request. Only for connections from this machine:
 * nothing else can reach serverless offline's loopback port anyway.
 */
const http = require('node:http');

const HEADER = 'x-otp-local-source-ip';
const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

const emit = http.Server.prototype.emit;
http.Server.prototype.emit = function emitWithSourceIp(event, req, ...rest) {
  if (event === 'request' && req && req.headers && typeof req.headers[HEADER] === 'string') {
    const ip = req.headers[HEADER];
    delete req.headers[HEADER];
    const raw = req.rawHeaders;
    for (let i = raw.length - 2; i >= 0; i -= 2) if (raw[i].toLowerCase() === HEADER) raw.splice(i, 2);
    if (req.socket && LOOPBACK.has(req.socket.remoteAddress)) {
      Object.defineProperty(req.socket, 'remoteAddress', { value: ip, configurable: true });
    }
  }
  return emit.call(this, event, req, ...rest);
};
