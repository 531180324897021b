/**
 * Key material for the secrets of API.md "Keys", for the runbook in docs/keys.md. Reads a token key secret on
 * stdin and writes the next one on stdout, so a key never has to touch the disk:
 *
 *   npm run -s keys:hash                        a new hash key (32 random bytes, base64)
 *   npm run -s keys:token -- new                a first token key secret {"current": …, "previous": []}
 *   npm run -s keys:token -- stage   < secret   adds a "next" key: published in the JWKS, not signing yet
 *   npm run -s keys:token -- promote < secret   next signs; the old current key moves to "previous"
 *   npm run -s keys:token -- prune   < secret   drops previous keys whose tokens have all expired
 *   npm run -s keys:token -- jwks    < secret   the JWKS the service will publish for this secret (public only)
 *
 * promote and prune keep a retired key for TOKEN_TTL_SECONDS + SECRETS_CACHE_SECONDS (from the environment,
 * defaults 600 + 300): a warm function may sign with the old key until its cached secret expires.
 */
import { loadConfig } from '../lib/config';
import { parseTokenKey } from '../lib/otp/token';
import { newHashKey, newTokenKeySecret, promoteTokenKey, pruneTokenKey, stageTokenKey, type TokenKeySecret } from '../local/keys';

const USAGE = 'usage: tsx scripts/keys.ts hash | token <new|stage|promote|prune|jwks>  (token secrets on stdin, results on stdout)';

const readStdin = async (): Promise<string> => {
  if (process.stdin.isTTY) throw new Error('pipe the current token key secret into stdin (docs/keys.md)');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
};

/** The secret on stdin, checked as the service checks it (a mistake stops here, not at the next request). */
const readSecret = async (): Promise<TokenKeySecret> => {
  let value: unknown;
  try {
    value = JSON.parse(await readStdin());
  } catch {
    throw new Error('stdin is not JSON: expected the token key secret {"current": …, "previous": […]}');
  }
  parseTokenKey(value);
  return value as TokenKeySecret;
};

const write = (secret: TokenKeySecret): void => {
  parseTokenKey(secret);
  process.stdout.write(`${JSON.stringify(secret)}\n`);
};

export const run = async (args: string[]): Promise<void> => {
  const [what, step] = args;
  if (what === 'hash' && step === undefined) {
    process.stdout.write(`${newHashKey()}\n`);
    return;
  }
  if (what !== 'token') throw new Error(USAGE);
  const config = loadConfig();
  const timing = () => ({ nowSeconds: Math.floor(Date.now() / 1000), keepSeconds: config.tokenTtlSeconds + config.secretsCacheSeconds });
  switch (step) {
    case 'new':
      return write(await newTokenKeySecret());
    case 'stage':
      return write(await stageTokenKey(await readSecret()));
    case 'promote':
      return write(promoteTokenKey(await readSecret(), timing()));
    case 'prune':
      return write(pruneTokenKey(await readSecret(), timing()));
    case 'jwks':
      process.stdout.write(`${JSON.stringify(parseTokenKey(await readSecret()).jwks, null, 2)}\n`);
      return;
    default:
      throw new Error(USAGE);
  }
};

if (require.main === module) {
  run(process.argv.slice(2)).catch((error: unknown) => {
    // Messages name what is wrong, never a key's value (lib/otp/token.ts, local/keys.ts).
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
