/**
 * The API mounted the four ways docs/http.md shows — node:http, Express (under /sluice), Fastify (under
 * /sluice, raw request handed over before its body parser) and Hono (app.route) — each on a real server on
 * 127.0.0.1, answering a read and an action with a JSON body.
 */

import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getRequestListener } from "@hono/node-server";
import express from "express";
import Fastify from "fastify";
import { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHttpApi } from "../../src/http/index.js";
import { Sluice, silentLogger } from "../../src/index.js";
import { call, listen, TOKENS } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "sluice-http-mount-"));
const sluice = new Sluice({ url: `sqlite:${join(dir, "m.db")}`, logger: silentLogger() });
let jobId = "";
let priority = 0;

beforeAll(async () => {
  jobId = (await sluice.enqueue("mount", { a: 1 }, { queue: "mount_q" })).id;
});
afterAll(async () => {
  await sluice.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Reads the queue list and reprioritizes the job through `base`. */
async function exercise(base: string): Promise<void> {
  const queues = await call(base, "GET", "/queues");
  expect(queues.status).toBe(200);
  expect((queues.body as { queues: { queue: string }[] }).queues.map((q) => q.queue)).toContain("mount_q");
  priority += 1; // a new priority each mounting, so each call changes the job
  const action = await call(base, "POST", `/jobs/${jobId}/reprioritize`, { body: { priority } });
  expect(action.status, action.text).toBe(200);
  expect((await sluice.admin.getJob(jobId)).priority).toBe(priority);
  const missing = await call(base, "GET", "/jobs/nope");
  expect(missing.status).toBe(404);
}

describe("mounting", () => {
  it("node:http", async () => {
    const api = createHttpApi(sluice, { tokens: TOKENS });
    const server = await listen(createServer(getRequestListener(api.fetch)));
    try {
      await exercise(server.base);
    } finally {
      await server.close();
    }
  });

  it("Express, under /sluice", async () => {
    const app = express();
    app.use("/sluice", getRequestListener(createHttpApi(sluice, { tokens: TOKENS }).fetch));
    app.get("/own", (_req, res) => {
      res.json({ own: true });
    });
    const server = await listen(createServer(app));
    try {
      await exercise(`${server.base}/sluice`);
      expect((await call(server.base, "GET", "/own")).body).toEqual({ own: true });
    } finally {
      await server.close();
    }
  });

  it("Fastify, under /sluice", async () => {
    const listener = getRequestListener(createHttpApi(sluice, { tokens: TOKENS }).fetch);
    const fastify = Fastify();
    fastify.addHook("onRequest", async (request, reply) => {
      const url = request.raw.url ?? "/";
      if (url !== "/sluice" && !url.startsWith("/sluice/") && !url.startsWith("/sluice?")) return;
      reply.hijack();
      request.raw.url = url.slice("/sluice".length) || "/";
      await listener(request.raw, reply.raw);
    });
    fastify.get("/own", async () => ({ own: true }));
    await fastify.listen({ port: 0, host: "127.0.0.1" });
    const { port } = fastify.server.address() as AddressInfo;
    try {
      await exercise(`http://127.0.0.1:${port}/sluice`);
      expect((await call(`http://127.0.0.1:${port}`, "GET", "/own")).body).toEqual({ own: true });
    } finally {
      await fastify.close();
    }
  });

  it("Hono, with app.route", async () => {
    const app = new Hono();
    app.route("/sluice", createHttpApi(sluice, { tokens: TOKENS }));
    app.get("/own", (c) => c.json({ own: true }));
    const server = await listen(createServer(getRequestListener(app.fetch)));
    try {
      await exercise(`${server.base}/sluice`);
      expect((await call(server.base, "GET", "/own")).body).toEqual({ own: true });
    } finally {
      await server.close();
    }
  });
});
