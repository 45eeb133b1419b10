/**
 * `sluice serve`: refuses a non-loopback host without a token; on loopback without one it runs open with a
 * warning; with SLUICE_HTTP_TOKENS, or `http.tokens` of sluice.config.json, it enforces them; `--redact`
 * masks the fields it names; `sluice dashboard` is the same command; Ctrl-C stops it.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { call, codeOf } from "../http/helpers.js";
import { exited, runCli, spawnCli, testStore, waitForOutput } from "./helpers.js";
import { open } from "./seed.js";

const store = testStore("sqlite");
afterAll(() => store.dispose());
const TOKEN = "serve-admin-token-0123456789";

describe("sluice serve", () => {
  it("refuses to listen on a non-loopback host without a token (exit 2)", async () => {
    const result = await runCli(["serve", "--host", "0.0.0.0", "--port", "0", "--url", store.url], {
      env: { SLUICE_HTTP_TOKENS: undefined },
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/refusing to serve on 0\.0\.0\.0 without a token/);
  });

  it("runs open on loopback without a token, with a warning, and stops on SIGINT", async () => {
    const child = spawnCli(["dashboard", "--port", "0", "--url", store.url], {
      env: { SLUICE_HTTP_TOKENS: undefined },
    });
    const line = await waitForOutput(child, /listening on http:\/\/127\.0\.0\.1:\d+/);
    const base = line.replace("listening on ", "");
    const answer = await call(base, "GET", "/queues", { token: null });
    expect(answer.status).toBe(200);
    child.kill("SIGINT");
    expect((await exited(child)).code).toBe(0);
  });

  it("enforces the tokens of SLUICE_HTTP_TOKENS", async () => {
    const child = spawnCli(["serve", "--port", "0", "--url", store.url], {
      env: { SLUICE_HTTP_TOKENS: `admin:${TOKEN}` },
    });
    const base = (await waitForOutput(child, /listening on http:\/\/127\.0\.0\.1:\d+/)).replace(
      "listening on ",
      "",
    );
    expect((await call(base, "GET", "/queues", { token: null })).status).toBe(401);
    expect((await call(base, "GET", "/queues", { token: TOKEN })).status).toBe(200);
    child.kill("SIGINT");
    expect((await exited(child)).code).toBe(0);
  });

  it("enforces the tokens of http.tokens in sluice.config.json when no env token is set", async () => {
    const admin = "config-admin-token-0123456789";
    const reader = "config-read-token-0123456789";
    const cwd = mkdtempSync(join(store.dir, "config-tokens-"));
    writeFileSync(
      join(cwd, "sluice.config.json"),
      JSON.stringify({ url: store.url, http: { tokens: `admin:${admin},read:${reader}` } }),
    );
    // No --url either: the store URL comes from the same file.
    const child = spawnCli(["serve", "--port", "0"], { cwd, env: { SLUICE_HTTP_TOKENS: undefined } });
    try {
      const base = (await waitForOutput(child, /listening on http:\/\/127\.0\.0\.1:\d+/)).replace(
        "listening on ",
        "",
      );
      const none = await call(base, "GET", "/queues", { token: null });
      expect(none.status).toBe(401);
      expect(codeOf(none)).toBe("UNAUTHORIZED");
      expect((await call(base, "GET", "/queues", { token: reader })).status).toBe(200);
      const readerPause = await call(base, "POST", "/queues/cfg_q/pause", { token: reader });
      expect(readerPause.status).toBe(403);
      expect(codeOf(readerPause)).toBe("FORBIDDEN");
      const adminPause = await call(base, "POST", "/queues/cfg_q/pause", { token: admin });
      expect(adminPause.status).toBe(200);
      expect(adminPause.body).toEqual({ queue: "cfg_q", paused: true });
      expect((await call(base, "POST", "/queues/cfg_q/resume", { token: admin })).status).toBe(200);
      // A token that is not in the file is refused, whatever its shape.
      expect((await call(base, "GET", "/queues", { token: TOKEN })).status).toBe(401);
    } finally {
      child.kill("SIGINT");
      expect((await exited(child)).code).toBe(0);
    }
  });

  it("masks the fields --redact names, on top of the default secret names", async () => {
    const sluice = open(store.url);
    let id = "";
    try {
      id = (
        await sluice.enqueue(
          "signup",
          {
            user: { name: "ada", ssn: "123-45-6789-cli" },
            card: { pin: "4321-cli-pin", last4: "1111" },
            apiKey: "sk-cli-default-name",
            audit: { ssn: "audit-ssn-not-listed" },
          },
          { queue: "cli_redact" },
        )
      ).id;
    } finally {
      await sluice.close();
    }
    const child = spawnCli(["serve", "--port", "0", "--url", store.url, "--redact", "user.ssn, *.pin"], {
      env: { SLUICE_HTTP_TOKENS: undefined },
    });
    try {
      const base = (await waitForOutput(child, /listening on http:\/\/127\.0\.0\.1:\d+/)).replace(
        "listening on ",
        "",
      );
      const detail = await call(base, "GET", `/jobs/${id}`, { token: null });
      expect(detail.status).toBe(200);
      expect((detail.body as { payload: unknown }).payload).toEqual({
        user: { name: "ada", ssn: "***" },
        card: { pin: "***", last4: "1111" },
        apiKey: "***",
        audit: { ssn: "audit-ssn-not-listed" },
      });
      const listing = await call(base, "GET", "/jobs?queue=cli_redact", { token: null });
      for (const secret of ["123-45-6789-cli", "4321-cli-pin", "sk-cli-default-name"]) {
        expect(detail.text).not.toContain(secret);
        expect(listing.text).not.toContain(secret);
      }
    } finally {
      child.kill("SIGINT");
      expect((await exited(child)).code).toBe(0);
    }
  });
});
