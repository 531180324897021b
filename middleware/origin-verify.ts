import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import secretsManager from '@middy/secrets-manager';
import { clearCache, getCache, getInternal } from '@middy/util';
import type { MiddlewareObj, Request } from '@middy/core';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { Forbidden, ServiceUnavailable } from '../lib/errors';
import { logger } from '../lib/log';

/**
 * Behind the CloudFront edge (`--param edge=cloudfront-waf`, docs/deploy.md "Edge"): CloudFront adds the header
 * `x-origin-verify` with a secret's value to every request it forwards. A request without it went around the
 * edge (and its WAF) straight to the execute-api URL: it gets 403 `forbidden` before its body is even read. A request with it
 * came through CloudFront, so `CloudFront-Viewer-Address` (the viewer's IP and port, set by CloudFront, not the
 * client) becomes `requestContext.http.sourceIp`: the per-IP limits then count callers, not edge servers.
 *
 * Without a secret id (the plain HTTP API, the default) this layer does nothing.
 */
export interface OriginVerifyOptions {
  /** ORIGIN_VERIFY_SECRET_ID; undefined: no edge, no check. */
  secretId: string | undefined;
  cacheSeconds: number;
}

export const ORIGIN_VERIFY_HEADER = 'x-origin-verify';
export const VIEWER_ADDRESS_HEADER = 'cloudfront-viewer-address';
// Stryker disable next-line StringLiteral: equivalent: any key no other middleware uses (the empty one too) keeps this secret's cache apart.
const CACHE_KEY = 'otp-origin-verify';

// A string is hashed as UTF-8 (Node's default for hash.update).
const digest = (s: string): Buffer => createHash('sha256').update(s).digest();
/** Constant-time: the header's value leaks nothing through how fast a wrong one is refused. */
const same = (a: string, b: string): boolean => timingSafeEqual(digest(a), digest(b));

/** `198.51.100.10:46532` or `2001:db8::1:46532` (CloudFront's format; brackets tolerated) → the IP, or undefined. */
export const viewerIp = (value: string | undefined): string | undefined => {
  // Stryker disable next-line StringLiteral: equivalent: only for an absent header, and any text without "ip:port" gives undefined as '' does.
  const v = value?.trim() ?? '';
  const bracketed = /^\[([^\]]+)\]:\d+$/.exec(v);
  const ip = bracketed ? bracketed[1]! : v.slice(0, Math.max(0, v.lastIndexOf(':')));
  return isIP(ip) ? ip : undefined;
};

export const originVerifyMiddleware = (opts: OriginVerifyOptions): MiddlewareObj => {
  const { secretId } = opts;
  // Middy refuses an empty middleware object: a named no-op instead.
  if (!secretId) return { before: function originVerifyMiddlewareOff() {} };
  const maxAgeMs = opts.cacheSeconds * 1000;
  // Fetched at init and cached like the service's other secrets (middleware/secrets.ts explains the expiry).
  const inner = secretsManager({ fetchData: { originVerify: secretId }, cacheKey: CACHE_KEY, cacheExpiry: -1, setToContext: false,
    awsClientOptions: { maxAttempts: 2, requestHandler: { connectionTimeout: 1000, requestTimeout: 2000, throwOnRequestTimeout: true } } });
  for (const pending of Object.values((getCache(CACHE_KEY).value ?? {}) as Record<string, Promise<unknown> | undefined>)) {
    // Stryker disable next-line OptionalChaining: equivalent: right after the prefetch every cached value is its promise (Middy sets undefined only once one fails).
    pending?.catch?.(() => undefined);
  }
  let fetchedAt = Date.now();

  const originVerifyMiddlewareBefore = async (request: Request) => {
    const event = request.event as APIGatewayProxyEventV2;
    const headers = event.headers ?? {};
    const given = headers[ORIGIN_VERIFY_HEADER];
    if (Date.now() - fetchedAt > maxAgeMs) {
      clearCache(CACHE_KEY);
      fetchedAt = Date.now();
    }
    let expected: unknown;
    try {
      await inner.before!(request as never);
      ({ originVerify: expected } = await getInternal({ originVerify: 'originVerify' }, request as never));
    } catch (error) {
      throw new ServiceUnavailable('secrets', undefined, error);
    }
    if (typeof expected !== 'string' || expected.length < 16) {
      throw new ServiceUnavailable('secrets', undefined, new Error('the origin-verify secret is empty or too short'));
    }
    // 403 forbidden through middleware/errors.ts, like every other refusal (headers, log line, ClientError metric).
    if (typeof given !== 'string' || !same(given, expected)) throw new Forbidden();
    // Nothing after this layer needs (or may log) the header.
    delete headers[ORIGIN_VERIFY_HEADER];
    const ip = viewerIp(headers[VIEWER_ADDRESS_HEADER]);
    if (ip !== undefined && event.requestContext?.http) event.requestContext.http.sourceIp = ip;
    else logger.warn('no usable CloudFront-Viewer-Address: per-IP limits count the edge address', { present: headers[VIEWER_ADDRESS_HEADER] !== undefined });
  };
  return { before: originVerifyMiddlewareBefore };
};
