import type { APIGatewayProxyResultV2 } from 'aws-lambda';

/**
 * GET /.well-known/jwks.json — PLACEHOLDER so the stack (its route, its own role) can be packaged and tested
 * before the keys branch (helper "k") lands; that branch's handler replaces this file. Until then it answers
 * API.md's 503 body rather than an empty key set a verifier might cache.
 */
export const handler = async (): Promise<APIGatewayProxyResultV2> => ({
  statusCode: 503,
  headers: { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' },
  body: JSON.stringify({ error: 'service_unavailable', message: 'The service is temporarily unavailable. Please try again later.' }),
});
