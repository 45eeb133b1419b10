/**
 * The demo pipeline of `sluice dev`, shaped like a RAG ingestion:
 *
 *   ingest-document (rag_ingest) ──batch──► embed-chunk × N (rag_embed) ──all embedded──► index-document (rag_index)
 *
 * Each document's chunks are one batch (`sluice batches list` shows one per document) whose success
 * callback indexes the document: it runs once, only when every chunk is embedded; a chunk that ends dead
 * leaves the document unindexed (the batch shows it) instead of indexing half of it.
 *
 * with the failures a real pipeline meets: a parser that crashes once (retried), an embedding API that
 * answers 503 now and then (retried with backoff) and 429 rarely (the queue pauses), and a corrupt PDF
 * that is discarded straight to dead.
 */

import type { Sluice } from "../../client/sluice.js";
import type { Task } from "../../client/task.js";
import { BatchNotFoundError, RateLimitedError } from "../../core/errors.js";
import type { BatchCallbackPayload } from "../../core/flows.js";

export class BadDocumentError extends Error {
  override name = "BadDocumentError";
}

export interface DemoDocument {
  docId: string;
  file: string;
  pages: number;
}

export const DEMO_QUEUES = ["rag_ingest", "rag_embed", "rag_index"] as const;

/** Sleeps like real I/O would, and stops at once when the job's signal aborts. */
const wait = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });

/** Defines the three demo tasks on `sluice` and returns the entry task. */
export function defineDemoPipeline(
  sluice: Sluice,
  random: () => number = Math.random,
): Task<DemoDocument, { chunks: number; batchId: string }> {
  sluice.task<BatchCallbackPayload<{ docId: string }>>("index-document", {
    queue: "rag_index",
    async run({ data, completed }, ctx) {
      await wait(10 + random() * 20, ctx.signal);
      return { indexed: data.docId, chunks: completed };
    },
  });

  sluice.task<{ docId: string; chunk: number }>("embed-chunk", {
    queue: "rag_embed",
    attempts: 4,
    backoff: { type: "exponential", delayMs: 200, maxDelayMs: 2_000, jitter: true },
    timeoutMs: 5_000,
    async run({ docId, chunk }, ctx) {
      await wait(15 + random() * 60, ctx.signal);
      const roll = random();
      if (roll < 0.005) throw new RateLimitedError(800, "embedding API answered 429 Too Many Requests");
      if (roll < 0.08) throw new Error("embedding API answered 503 Service Unavailable");
      return { docId, chunk, dims: 1536 };
    },
  });

  return sluice.task<DemoDocument, { chunks: number; batchId: string }>("ingest-document", {
    queue: "rag_ingest",
    attempts: 3,
    backoff: { type: "fixed", delayMs: 500 },
    discardOn: [BadDocumentError],
    timeoutMs: 30_000,
    async run(doc, ctx) {
      if (doc.file.startsWith("corrupt"))
        throw new BadDocumentError(`${doc.file}: not a PDF (bad xref table)`);
      if (doc.file.startsWith("flaky") && ctx.attempt === 1)
        throw new Error(`${doc.file}: parser crashed (segfault in pdftotext)`);
      for (let page = 1; page <= doc.pages; page++) {
        await wait(20 + random() * 40, ctx.signal);
        await ctx.progress(Math.round((page / doc.pages) * 100) / 100);
      }
      const chunks = doc.pages * 2;
      // One batch per document, its id derived from this job's, so a retry after a crash finds the batch it
      // already made instead of embedding the document twice.
      const batchId = `${ctx.id}.chunks`;
      const existing = await sluice.admin.batch(batchId).catch((error: unknown) => {
        if (error instanceof BatchNotFoundError) return null;
        throw error;
      });
      if (!existing) {
        await sluice.batch(
          Array.from({ length: chunks }, (_, chunk) => ({
            task: "embed-chunk",
            payload: { docId: doc.docId, chunk },
            options: { jobId: `${batchId}.${chunk}` },
          })),
          {
            id: batchId,
            description: `${doc.docId} (${doc.file}): ${chunks} chunks`,
            data: { docId: doc.docId },
            onSuccess: "index-document",
          },
        );
      }
      await ctx.log(`parsed ${doc.pages} pages into ${chunks} chunks (batch ${batchId})`);
      return { chunks, batchId };
    },
  });
}

/** The n-th demo document: mostly healthy, the 3rd corrupt, every 7th flaky. */
export function demoDocument(n: number, random: () => number = Math.random): DemoDocument {
  const kind = n === 2 ? "corrupt" : n % 7 === 5 ? "flaky" : "report";
  return { docId: `doc-${n}`, file: `${kind}-${n}.pdf`, pages: 3 + Math.floor(random() * 8) };
}
