/**
 * Seed 002's Solid Queue pipeline, written with Sluice: a PDF is processed, one embedding job runs per
 * question found in it, each embedding updates the knowledge graph, and a batch callback reports how many
 * questions made it (and how many did not) once every one of them is final.
 *
 *   ProcessPdfJob ──batch──► GenerateEmbeddingJob × N ──► UpdateKnowledgeGraphJob (joins the batch)
 *                                       └─ all final ─► ReportMaterialJob { completed, dead, … }
 *
 * Rails vocabulary → Sluice:
 *   ProcessPdfJob.perform_later(id)                    processPdf.enqueue({ materialId })
 *   ProcessPdfJob.perform_now(id)                      processPdf.runNow({ materialId })
 *   .set(wait: 1.hour).perform_later(id)               processPdf.enqueue({ materialId }, { delayMs: "1h" })
 *   .set(wait_until: Date.tomorrow.noon)               processPdf.enqueue({ materialId }, { runAt: tomorrowNoon })
 *   retry_on Timeout, attempts: 3 / exponential 5      attempts: 5, backoff: exponential, retryOn: [TimeoutError]
 *   discard_on DeserializationError                    discardOn: [BadPdfError]
 *   config/solid_queue.yml threads per queue           one worker per queue group, with its concurrency
 *
 *   npx tsx examples/pdf-pipeline/pipeline.ts          # runs it once on an embedded SQLite file
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type BatchCallbackPayload,
  BatchNotFoundError,
  Sluice,
  TimeoutError,
  type Worker,
} from "../../src/index.js";

/** A PDF that cannot be parsed: retrying will not help (Rails' discard_on). */
export class BadPdfError extends Error {
  override name = "BadPdfError";
}

/** What the pipeline calls out to: the PDF parser, the embedding API, the graph database. */
export interface PipelineDeps {
  extractQuestions(materialId: string): Promise<string[]>;
  embed(questionId: string): Promise<number[]>;
  updateGraph(questionId: string, vector: number[]): Promise<void>;
  /** Where the report of each material goes (a database row, a Slack message). */
  report(summary: MaterialReport): void;
}

export interface MaterialReport {
  materialId: string;
  /** Jobs of the material: one embedding per question, one graph update per embedded question. */
  jobs: number;
  completed: number;
  failed: number;
}

/** The queues of seed 002's config/solid_queue.yml, with their thread counts. */
export const QUEUES = {
  pdf_processing: 2,
  embedding_generation: 4,
  graph_update: 3,
  default: 5,
} as const;

/** Defines the four tasks; returns the entry point. */
export function definePipeline(sluice: Sluice, deps: PipelineDeps) {
  sluice.task<BatchCallbackPayload<{ materialId: string }>>("report-material", {
    queue: "default",
    run: ({ data, total, completed, dead, cancelled }) => {
      deps.report({ materialId: data.materialId, jobs: total, completed, failed: dead + cancelled });
    },
  });

  sluice.task<{ questionId: string; vector: number[] }>("update-knowledge-graph", {
    queue: "graph_update",
    attempts: 4,
    backoff: { type: "exponential", delayMs: 1_000 },
    run: ({ questionId, vector }) => deps.updateGraph(questionId, vector),
  });

  sluice.task<{ questionId: string }>("generate-embedding", {
    queue: "embedding_generation",
    attempts: 3,
    backoff: { type: "exponential", delayMs: 500, maxDelayMs: 30_000, jitter: true },
    retryOn: [TimeoutError],
    timeoutMs: "30s",
    async run({ questionId }, ctx) {
      const vector = await deps.embed(questionId);
      // Enqueued from a member of the batch, so it joins the batch: the report waits for it too.
      await ctx.enqueue("update-knowledge-graph", { questionId, vector });
      return { dims: vector.length };
    },
  });

  return sluice.task<{ materialId: string }, { questions: number }>("process-pdf", {
    queue: "pdf_processing",
    attempts: 5,
    backoff: { type: "exponential", delayMs: 2_000 },
    retryOn: [TimeoutError, Error],
    discardOn: [BadPdfError],
    timeoutMs: "10m",
    async run({ materialId }, ctx) {
      const questions = await deps.extractQuestions(materialId);
      // The batch's id comes from this job's: a retry after a crash finds it instead of starting another.
      const batchId = `${ctx.id}.questions`;
      const exists = await sluice.admin.batch(batchId).then(
        () => true,
        (error: unknown) => {
          if (error instanceof BatchNotFoundError) return false;
          throw error;
        },
      );
      if (!exists) {
        await sluice.batch(
          questions.map((questionId) => ({
            task: "generate-embedding",
            payload: { questionId },
            options: { jobId: `${batchId}.${questionId}` },
          })),
          {
            id: batchId,
            description: `material ${materialId}`,
            data: { materialId },
            onComplete: "report-material",
          },
        );
      }
      return { questions: questions.length };
    },
  });
}

/** Starts one worker per queue with its thread count, as Solid Queue's config does. */
export async function startWorkers(sluice: Sluice): Promise<Worker[]> {
  const workers = Object.entries(QUEUES).map(([queue, concurrency]) =>
    sluice.worker({ queues: [queue], concurrency }),
  );
  await Promise.all(workers.map((w) => w.start()));
  return workers;
}

// Run directly: one material through the pipeline on a scratch SQLite file, then print the report.
if (import.meta.url === `file://${process.argv[1]}`) {
  const sluice = new Sluice({ url: `sqlite:${join(tmpdir(), `sluice-pdf-pipeline-${process.pid}.db`)}` });
  const done = new Promise<MaterialReport>((resolve) => {
    const processPdf = definePipeline(sluice, {
      extractQuestions: async () => ["q1", "q2", "q3"],
      embed: async (id) => [id.length, 0.5, 0.25],
      updateGraph: async () => {},
      report: resolve,
    });
    void processPdf.enqueue({ materialId: "study-material-1" });
  });
  await startWorkers(sluice);
  console.log(await done);
  await sluice.close();
}
