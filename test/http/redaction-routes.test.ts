/**
 * Redaction by path through the API on every engine: a job whose payload, result, progress and JSON log
 * lines carry secrets at several depths is run by a real worker, then read back through `GET /jobs`,
 * `GET /jobs/{id}` and `GET /events`; no secret value may appear in any answer. One API adds path rules to
 * the default names; another has only the path rules, to show that a path masks exactly its place.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Sluice, silentLogger } from "../../src/index.js";
import { ENGINE_NAMES, type IsolatedStore, isolatedStore } from "../support/engines/index.js";
import { connectSse } from "../support/sse.js";
import { until } from "../support/wait.js";
import { type ApiServer, call, READ_TOKEN, startApi } from "./helpers.js";

/** Every secret value the job carries somewhere; none may leave through the API. */
const SECRETS = {
  userSsn: "123-45-6789-ssn",
  userPassword: "user-pw-hunter2",
  profilePassword: "profile-pw-swordfish",
  topPassword: "top-pw-letmein",
  apiKey: "sk-live-api-key-0001",
  resultSsn: "987-65-4321-ssn",
  logApiKey: "sk-log-api-key-0002",
  logPassword: "log-pw-opensesame",
  progressPassword: "progress-pw-xyzzy",
  progressSsn: "555-12-3456-ssn",
};

const payload = {
  user: { name: "ada", ssn: SECRETS.userSsn, password: SECRETS.userPassword },
  profile: { password: SECRETS.profilePassword, email: "ada@example.com" },
  password: SECRETS.topPassword,
  apiKey: SECRETS.apiKey,
  // Not a secret: `user.ssn` is a path from the root, so an `ssn` elsewhere is left alone.
  audit: { ssn: "not-a-secret-audit-ssn" },
};

describe.each(ENGINE_NAMES)("redaction by path over HTTP on %s", (engine) => {
  let store: IsolatedStore;
  let sluice: Sluice;
  let api: ApiServer;
  let pathsOnly: ApiServer;
  let jobId = "";
  let from: string | null = null;
  const queue = `redact_${engine}`;

  beforeAll(async () => {
    store = isolatedStore(engine, "redact_routes");
    sluice = new Sluice({ url: store.url, logger: silentLogger() });
    api = await startApi(sluice, { redact: ["*.password", "user.ssn"] });
    pathsOnly = await startApi(sluice, { redact: ["*.password", "user.ssn"], redactDefaults: false });
    const task = sluice.task("signup", {
      queue,
      async run(p: typeof payload, ctx) {
        await ctx.progress({
          step: 1,
          account: { password: SECRETS.progressPassword },
          user: { ssn: SECRETS.progressSsn },
        });
        await ctx.log(JSON.stringify({ apiKey: SECRETS.logApiKey, user: { password: SECRETS.logPassword } }));
        await ctx.log("plain text line");
        return { user: { ssn: SECRETS.resultSsn, name: p.user.name }, ok: true };
      },
    });
    from = await sluice.eventCursor();
    jobId = (await task.enqueue(payload)).id;
    const worker = sluice.worker({ queues: [queue], pollMs: 50 });
    await worker.start();
    try {
      await until(
        "the job to complete",
        async () => (await sluice.admin.getJob(jobId)).state === "completed",
      );
    } finally {
      await worker.stop();
    }
  });
  afterAll(async () => {
    await api?.close();
    await pathsOnly?.close();
    await sluice?.close();
    await store?.dispose();
  });

  function leaked(text: string): string[] {
    return Object.entries(SECRETS)
      .filter(([, value]) => text.includes(value))
      .map(([name]) => name);
  }

  it("GET /jobs masks every secret of the payload and the result", async () => {
    const answer = await call(api.base, "GET", `/jobs?queue=${queue}`, { token: READ_TOKEN });
    expect(answer.status).toBe(200);
    expect(leaked(answer.text)).toEqual([]);
    const [job] = (answer.body as { jobs: { payload: unknown; result: unknown }[] }).jobs;
    expect(job?.payload).toEqual({
      user: { name: "ada", ssn: "***", password: "***" },
      profile: { password: "***", email: "ada@example.com" },
      password: "***",
      apiKey: "***",
      audit: { ssn: "not-a-secret-audit-ssn" },
    });
    expect(job?.result).toEqual({ user: { ssn: "***", name: "ada" }, ok: true });
  });

  it("GET /jobs/{id} masks the payload, the result, the progress and the JSON log lines", async () => {
    const answer = await call(api.base, "GET", `/jobs/${jobId}`, { token: READ_TOKEN });
    expect(answer.status).toBe(200);
    expect(leaked(answer.text)).toEqual([]);
    const job = answer.body as {
      payload: unknown;
      result: unknown;
      progress: unknown;
      logs: { message: string }[];
    };
    expect(job.progress).toEqual({ step: 1, account: { password: "***" }, user: { ssn: "***" } });
    expect(job.result).toEqual({ user: { ssn: "***", name: "ada" }, ok: true });
    expect(job.logs.map((l) => l.message)).toEqual([
      JSON.stringify({ apiKey: "***", user: { password: "***" } }),
      "plain text line",
    ]);
  });

  it("GET /events masks the progress it streams", async () => {
    const stream = await connectSse(`${api.base}/events?job=${jobId}&after=${from ?? ""}`, {
      authorization: `Bearer ${READ_TOKEN}`,
    });
    try {
      expect(stream.status).toBe(200);
      const seen: string[] = [];
      const types: string[] = [];
      while (types.at(-1) !== "completed") {
        const message = await stream.next();
        types.push(message.event);
        seen.push(message.data);
      }
      expect(types).toEqual(["enqueued", "active", "progress", "completed"]);
      expect(leaked(seen.join("\n"))).toEqual([]);
      const progress = JSON.parse(seen[2] ?? "{}") as { data: { progress: unknown } };
      expect(progress.data.progress).toEqual({ step: 1, account: { password: "***" }, user: { ssn: "***" } });
    } finally {
      stream.close();
    }
  });

  it("with the defaults off, a path masks exactly its place and nothing else", async () => {
    const answer = await call(pathsOnly.base, "GET", `/jobs/${jobId}`, { token: READ_TOKEN });
    const job = answer.body as { payload: Record<string, unknown>; logs: { message: string }[] };
    // `*.password` is any password one level down; `user.ssn` that one field.
    expect(job.payload).toEqual({
      user: { name: "ada", ssn: "***", password: "***" },
      profile: { password: "***", email: "ada@example.com" },
      password: SECRETS.topPassword,
      apiKey: SECRETS.apiKey,
      audit: { ssn: "not-a-secret-audit-ssn" },
    });
    expect(job.logs[0]?.message).toBe(
      JSON.stringify({ apiKey: SECRETS.logApiKey, user: { password: "***" } }),
    );
  });
});
