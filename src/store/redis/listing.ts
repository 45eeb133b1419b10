/**
 * Cursor pagination across queues. Each queue is listed by its own script (one slot each); pages are
 * merged by (seq, id). A queue whose script stopped early (scan budget) reports a frontier: everything up
 * to the least advanced frontier is complete, so only that part of the merge is returned or used as the
 * next starting point.
 */
import { ValidationError } from "../../core/errors.js";

/** A position in the listing order: seq, then id (seq values of different queues may tie). */
export interface ListPosition {
  s: number;
  i: string;
}

/** What one queue's listing script returned. */
export interface QueuePage {
  queue: string;
  items: { id: string; seq: number }[];
  /** True when nothing matches beyond the returned items. */
  done: boolean;
  /** Last position the script covered when not done. */
  frontier: ListPosition | null;
}

export function encodeCursor(position: ListPosition): string {
  return Buffer.from(JSON.stringify(position)).toString("base64url");
}

export function decodeCursor(cursor: string | null | undefined): ListPosition | null {
  if (!cursor) return null;
  try {
    const value = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as Partial<ListPosition>;
    if (typeof value.s === "number" && Number.isFinite(value.s) && typeof value.i === "string") {
      return { s: value.s, i: value.i };
    }
  } catch {
    // fall through to the error below
  }
  throw new ValidationError(
    "INVALID_OPTION",
    `cursor "${cursor}" is not one this store returned: pass the nextCursor of the previous page, or none for the first`,
    { field: "cursor" },
  );
}

/** Fetches up to `limit` matches of `queue` strictly after `from` in listing order. */
export type PageFetcher = (queue: string, from: ListPosition | null, limit: number) => Promise<QueuePage>;

/** Merges per-queue pages into one page of at most `limit` items and the position to continue from. */
export async function mergePages(
  queues: readonly string[],
  limit: number,
  order: "asc" | "desc",
  cursor: ListPosition | null,
  fetch: PageFetcher,
): Promise<{ items: { queue: string; id: string; seq: number }[]; next: ListPosition | null }> {
  const dir = order === "desc" ? -1 : 1;
  const cmp = (a: ListPosition, b: ListPosition) => (a.s - b.s || (a.i < b.i ? -1 : a.i > b.i ? 1 : 0)) * dir;
  const taken: { queue: string; id: string; seq: number }[] = [];
  if (limit <= 0) return { items: taken, next: null };
  let from = cursor;
  let pending = [...queues];
  while (pending.length > 0) {
    // One more than needed, to know whether another page exists.
    const need = limit - taken.length + 1;
    const pages = await Promise.all(pending.map((q) => fetch(q, from, need)));
    let frontier: ListPosition | null = null;
    for (const page of pages) {
      if (!page.done && page.frontier && (frontier === null || cmp(page.frontier, frontier) < 0))
        frontier = page.frontier;
    }
    const candidates = pages
      .flatMap((p) => p.items.map((item) => ({ queue: p.queue, id: item.id, seq: item.seq })))
      .filter((c) => frontier === null || cmp({ s: c.seq, i: c.id }, frontier) <= 0)
      .sort((a, b) => cmp({ s: a.seq, i: a.id }, { s: b.seq, i: b.id }));
    for (const candidate of candidates) {
      const last = taken[taken.length - 1];
      if (taken.length === limit && last) return { items: taken, next: { s: last.seq, i: last.id } };
      taken.push(candidate);
    }
    if (frontier === null) break;
    from = frontier;
    pending = pages.filter((p) => !p.done).map((p) => p.queue);
  }
  return { items: taken, next: null };
}
