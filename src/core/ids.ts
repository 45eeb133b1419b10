/**
 * Identifiers: job ids and worker tags. No I/O beyond the system random source.
 */
import { randomFillSync } from "node:crypto";

/** Crockford base32, in ASCII order so that encoded strings sort like the numbers they encode. */
const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const LOWER_ALPHABET = ALPHABET.toLowerCase();

const TIME_CHARS = 10; // 50 bits, of which the 48 of a millisecond timestamp are used
const RANDOM_CHARS = 16; // 80 bits

/** Length of every id {@link newJobId} returns. */
export const JOB_ID_LENGTH = TIME_CHARS + RANDOM_CHARS;

const POOL_SIZE = 4096;
const pool = Buffer.allocUnsafe(POOL_SIZE);
let poolOffset = POOL_SIZE;

/** Takes `n` random bytes from the pool, refilling it from the system CSPRNG when it runs out. */
function randomBytesFromPool(n: number): number {
  if (poolOffset + n > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const start = poolOffset;
  poolOffset += n;
  return start;
}

let lastTime = -1;
let lastTimePart = "";
/** The random part of the last id, one base32 digit (0..31) per element. */
const digits = new Uint8Array(RANDOM_CHARS);

function encodeTime(time: number): string {
  let out = "";
  let rest = time;
  for (let index = 0; index < TIME_CHARS; index++) {
    out = ALPHABET[rest % 32] + out;
    rest = Math.floor(rest / 32);
  }
  return out;
}

/** Adds one to the random part; false when it wrapped around (all 80 bits were 1). */
function incrementDigits(): boolean {
  for (let index = RANDOM_CHARS - 1; index >= 0; index--) {
    const digit = digits[index] ?? 0;
    if (digit < 31) {
      digits[index] = digit + 1;
      return true;
    }
    digits[index] = 0;
  }
  return false;
}

/**
 * Returns a new job id in the ULID layout: 26 Crockford base32 characters (`0-9`, `A-Z` without
 * `I`, `L`, `O`, `U`), the first 10 the creation time in epoch ms (48 bits), the other 16 random (80 bits).
 *
 * - Unique across processes and hosts: 80 random bits per millisecond from the system CSPRNG.
 * - Sortable: ids compare as strings in creation order across hosts (to the millisecond, given synced
 *   clocks), and strictly increase within a process: a second id in the same millisecond (or after the
 *   clock stepped back) reuses the last time and adds one to the random part, as ULID's monotonic mode.
 * - URL-safe and case-insensitive to read; not a secret (consecutive ids are predictable).
 *
 * Fast: random bytes come from a pooled buffer filled 4 KiB at a time.
 *
 * @returns the id, e.g. `01JD3K7QX9V2M4R8T6B1C5N0PZ`
 */
export function newJobId(): string {
  const now = Date.now();
  if (now > lastTime) {
    lastTime = now;
    lastTimePart = encodeTime(now);
    const start = randomBytesFromPool(RANDOM_CHARS);
    for (let index = 0; index < RANDOM_CHARS; index++) digits[index] = (pool[start + index] ?? 0) & 31;
  } else if (!incrementDigits()) {
    // 2^80 ids in one millisecond cannot happen; borrow the next millisecond rather than repeat an id.
    lastTime += 1;
    lastTimePart = encodeTime(lastTime);
  }
  let id = lastTimePart;
  for (let index = 0; index < RANDOM_CHARS; index++) id += ALPHABET[digits[index] ?? 0];
  return id;
}

/**
 * Returns 6 random lower-case Crockford base32 characters (30 bits), to tell apart workers that share a
 * host and pid (containers) in worker ids like `host/pid/tag`.
 *
 * @returns the tag, e.g. `k3x9qz`
 */
export function newWorkerTag(): string {
  const start = randomBytesFromPool(6);
  let tag = "";
  for (let index = 0; index < 6; index++) tag += LOWER_ALPHABET[(pool[start + index] ?? 0) & 31];
  return tag;
}
