import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

type IdsModule = typeof import("../../src/core/ids.js");

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const ID_PATTERN = /^[0-9A-HJKMNP-TV-Z]{26}$/;

/** A fresh copy of the module, so the "last id" state of one test does not leak into the next. */
async function freshIds(): Promise<IdsModule> {
  vi.resetModules();
  return import("../../src/core/ids.js");
}

function decode(text: string): bigint {
  let value = 0n;
  for (const char of text) {
    const digit = ALPHABET.indexOf(char);
    if (digit < 0) throw new Error(`not Crockford base32: ${char}`);
    value = value * 32n + BigInt(digit);
  }
  return value;
}

const timeOf = (id: string): number => Number(decode(id.slice(0, 10)));
const randomOf = (id: string): bigint => decode(id.slice(10));

beforeEach(() => {
  vi.restoreAllMocks();
});

afterEach(() => {
  vi.restoreAllMocks();
  vi.doUnmock("node:crypto");
});

describe("newJobId", () => {
  it("is 26 URL-safe Crockford base32 characters led by the creation time", async () => {
    const { newJobId, JOB_ID_LENGTH } = await freshIds();
    const before = Date.now();
    const id = newJobId();
    const after = Date.now();
    expect(JOB_ID_LENGTH).toBe(26);
    expect(id).toMatch(ID_PATTERN);
    expect(encodeURIComponent(id)).toBe(id);
    expect(timeOf(id)).toBeGreaterThanOrEqual(before);
    expect(timeOf(id)).toBeLessThanOrEqual(after);
  });

  it("100k ids are unique and sort in creation order", async () => {
    const { newJobId } = await freshIds();
    const ids: string[] = [];
    for (let i = 0; i < 100_000; i++) ids.push(newJobId());
    expect(new Set(ids).size).toBe(ids.length);
    let increasing = true;
    for (let i = 1; i < ids.length; i++) {
      if (!((ids[i - 1] as string) < (ids[i] as string))) increasing = false;
    }
    expect(increasing).toBe(true);
    expect(ids.every((id) => ID_PATTERN.test(id))).toBe(true);
  });

  it("within one millisecond, each id is the previous one plus one", async () => {
    const { newJobId } = await freshIds();
    vi.spyOn(Date, "now").mockReturnValue(1_700_000_000_000);
    const ids = Array.from({ length: 1_000 }, () => newJobId());
    const first = ids[0] as string;
    expect(ids.every((id) => id.startsWith(first.slice(0, 10)))).toBe(true);
    expect(timeOf(first)).toBe(1_700_000_000_000);
    for (let i = 1; i < ids.length; i++) {
      expect(randomOf(ids[i] as string) - randomOf(ids[i - 1] as string)).toBe(1n);
    }
  });

  it("stays increasing when the clock steps back", async () => {
    const { newJobId } = await freshIds();
    const now = vi.spyOn(Date, "now").mockReturnValue(1_700_000_010_000);
    const late = newJobId();
    now.mockReturnValue(1_700_000_000_000);
    const early = newJobId();
    expect(early > late).toBe(true);
    expect(timeOf(early)).toBe(1_700_000_010_000);
    now.mockReturnValue(1_700_000_020_000);
    const later = newJobId();
    expect(timeOf(later)).toBe(1_700_000_020_000);
    expect(later > early).toBe(true);
  });

  it("draws fresh random bits for each new millisecond", async () => {
    const { newJobId } = await freshIds();
    const now = vi.spyOn(Date, "now");
    const randoms: bigint[] = [];
    // 2 000 milliseconds use 32 000 random bytes: the 4 KiB pool refills several times.
    for (let ms = 0; ms < 2_000; ms++) {
      now.mockReturnValue(1_700_000_000_000 + ms);
      const id = newJobId();
      expect(timeOf(id)).toBe(1_700_000_000_000 + ms);
      randoms.push(randomOf(id));
    }
    expect(new Set(randoms).size).toBe(randoms.length);
    // Not a counter: consecutive milliseconds do not continue from the previous random part.
    const consecutive = randoms.filter(
      (value, i) => i > 0 && value === (randoms[i - 1] as bigint) + 1n,
    ).length;
    expect(consecutive).toBe(0);
    // Every base32 digit value turns up in the first random character.
    const firstChars = new Set(randoms.map((value) => (value >> 75n) & 31n));
    expect(firstChars.size).toBe(32);
  });

  it("borrows the next millisecond rather than repeat when the random part overflows", async () => {
    vi.resetModules();
    vi.doMock("node:crypto", async (importOriginal) => {
      const actual = await importOriginal<typeof import("node:crypto")>();
      return {
        ...actual,
        randomFillSync: <T extends NodeJS.ArrayBufferView>(buffer: T): T => {
          new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength).fill(0xff);
          return buffer;
        },
      };
    });
    const { newJobId } = await import("../../src/core/ids.js");
    vi.spyOn(Date, "now").mockReturnValue(1_700_000_000_000);
    const max = newJobId();
    expect(max.slice(10)).toBe("Z".repeat(16));
    const next = newJobId();
    expect(next > max).toBe(true);
    expect(timeOf(next)).toBe(1_700_000_000_001);
    expect(next.slice(10)).toBe("0".repeat(16));
  });
});

describe("newWorkerTag", () => {
  it("is 6 lower-case Crockford base32 characters", async () => {
    const { newWorkerTag } = await freshIds();
    for (let i = 0; i < 100; i++) expect(newWorkerTag()).toMatch(/^[0-9a-hjkmnp-tv-z]{6}$/);
  });

  it("is random", async () => {
    const { newWorkerTag } = await freshIds();
    const tags = new Set(Array.from({ length: 1_000 }, () => newWorkerTag()));
    // 30 random bits: a collision among 1 000 tags has odds of about 1 in 2 000.
    expect(tags.size).toBeGreaterThanOrEqual(998);
    const chars = new Set([...tags].join(""));
    expect(chars.size).toBe(32);
  });
});
