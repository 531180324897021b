/**
 * The store the domain depends on (port). lib/store/dynamodb.ts is the adapter that
 * alone knows DynamoDB key shapes and expressions; tests may hand the domain a fake.
 * Every `subject` here is already a pseudonym (HMAC), never a phone number or an IP.
 */

/** One fixed window of a counting rule: at most `limit` takes while the window lasts. */
export interface WindowCounter {
  rule: string;
  subject: string;
  /** floor(now / windowSeconds): a new window is a new item, so no read-modify-write on roll-over. */
  window: number;
  limit: number;
  /** epoch seconds after which the item is garbage (DynamoDB TTL). */
  expiresAt: number;
}

/** A gap rule (cooldown): nobody may take it again before `until`. */
export interface Interval {
  rule: string;
  subject: string;
  now: number;
  until: number;
}

export interface OtpRecord {
  codeId: string;
  codeHash: string;
  /** epoch ms */
  expiresAt: number;
  sentAt: number;
}

/** Opaque to the domain: whatever record a new code replaced (undefined if none). */
export type ReplacedOtp = Record<string, unknown> | undefined;

export type AttemptClaim =
  /** `previousClaimAt`: when the attempt before this one was claimed (undefined: this is the first). */
  | { ok: true; codeHash: string; attempts: number; previousClaimAt?: number }
  | { ok: false; reason: 'gone' }
  /** `lastClaimAt`: when the last attempt was claimed (the claimer's clock). */
  | { ok: false; reason: 'exhausted'; lastClaimAt?: number };

export type IdempotencyState =
  /**
   * `charged`: an earlier attempt with this key took the limits and may have reached the phone.
   * `retryCode`: the sealed code the record keeps (the first attempt's, when one existed).
   */
  | { state: 'acquired'; charged: boolean; retryCode: string | undefined }
  | { state: 'done'; fingerprint: string; response: string }
  | { state: 'pending'; fingerprint: string }
  | { state: 'charged'; fingerprint: string };

export interface Store {
  /**
   * The window's count after this take, or undefined when the window is full. `takenAt` (epoch ms, the
   * taker's clock) is kept with the count: how recently a unit was taken tells a refused request whether
   * the window may be full only of units racers hold for a moment (lib/ratelimit/limiter.ts).
   */
  takeWindow(counter: WindowCounter, takenAt: number): Promise<number | undefined>;
  giveBackWindow(counter: WindowCounter): Promise<void>;
  /** The window's count now (0 when nobody took it) and when its last unit was taken (undefined: never). */
  readWindow(counter: WindowCounter): Promise<{ n: number; takenAt: number | undefined }>;
  /** Returns the blocking `until` (epoch ms) when refused, if the store could tell. */
  takeInterval(interval: Interval): Promise<{ ok: true } | { ok: false; until: number | undefined }>;
  giveBackInterval(interval: Interval): Promise<void>;

  /**
   * Replaces the number's current code (the older code no longer verifies) and returns what it
   * replaced, so that `restoreOtp` can undo a send that was refused after all.
   */
  putOtp(subject: string, record: OtpRecord): Promise<ReplacedOtp>;
  /** Puts back what `putOtp` replaced, only if `codeId` is still the current code. */
  restoreOtp(subject: string, codeId: string, replaced: ReplacedOtp): Promise<void>;
  /**
   * Spends one attempt of the current code `codeId`, atomically, if it is alive and has attempts left.
   * `claimedAt` (epoch ms, real time) is kept with the count, as a window keeps `takenAt`.
   */
  claimAttempt(subject: string, codeId: string, maxAttempts: number, now: number, claimedAt: number): Promise<AttemptClaim>;
  /** How many attempts of the current code `codeId` are claimed now (undefined: it is no longer current). */
  attemptsOf(subject: string, codeId: string): Promise<number | undefined>;
  /** Single use: true for exactly one caller. */
  markUsed(subject: string, codeId: string, now: number): Promise<boolean>;
  /** Gives back an attempt `claimAttempt` spent on a guess that was not judged after all. */
  releaseAttempt(subject: string, codeId: string): Promise<void>;

  /** A number that verified: trusted (draws on the whole daily budget) until `until` (epoch ms). */
  trust(subject: string, until: number): Promise<void>;
  isTrusted(subject: string, now: number): Promise<boolean>;

  /**
   * Takes the key (new, or taken over from a dead or charged attempt). `retryCode` is kept in the record
   * unless it already holds one from an earlier attempt, which is then kept and returned instead.
   */
  beginIdempotent(key: string, fingerprint: string, owner: string, now: number, lockMs: number, ttlSeconds: number, retryCode?: string): Promise<IdempotencyState>;
  readIdempotent(key: string): Promise<IdempotencyState | undefined>;
  completeIdempotent(key: string, owner: string, response: string): Promise<void>;
  abandonIdempotent(key: string, owner: string): Promise<void>;
  /** The attempt failed after the provider may have sent: keep the record, so a retry with the key is not charged again. */
  chargeIdempotent(key: string, owner: string): Promise<void>;
}
