// A checkout backend's check of the token from POST /auth/verify-otp, in plain JavaScript (Node 18+).
// Needs only the service's public keys: `npm install jose`, no secret.
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { pathToFileURL } from 'node:url';

const JWKS_URL = process.env.OTP_JWKS_URL ?? 'https://otp.example.com/.well-known/jwks.json';
const ISSUER = process.env.OTP_TOKEN_ISSUER ?? 'otp-service'; // the service's TOKEN_ISSUER
const AUDIENCE = process.env.OTP_TOKEN_AUDIENCE ?? 'checkout'; // the service's TOKEN_AUDIENCE

// Once per process: it caches the keys, and fetches them again when a token names a kid it has not seen
// (after the service rotated its key).
const jwks = createRemoteJWKSet(new URL(JWKS_URL));

/** The verified phone number (E.164) in the token, or an exception if the token must not be trusted. */
export async function verifiedPhoneNumber(token) {
  const { payload } = await jwtVerify(token, jwks, {
    algorithms: ['ES256'], // only ES256: `alg: none` and HMAC tricks with the public key are refused
    typ: 'JWT',
    issuer: ISSUER,
    audience: AUDIENCE,
    maxTokenAge: '10m', // the service's TOKEN_TTL_SECONDS
    requiredClaims: ['sub', 'jti', 'iat', 'exp'],
  });
  return payload.sub;
}

// `node verify-token.mjs <token>` prints the number, or why the token was refused (exit code 1).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  verifiedPhoneNumber(process.argv[2] ?? '').then(
    (phone) => console.log(phone),
    (error) => {
      console.error(`refused: ${error.code ?? error.name}`);
      process.exitCode = 1;
    },
  );
}
