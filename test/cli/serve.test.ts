/**
 * `sluice serve`: refuses a non-loopback host without a token; on loopback without one it runs open with a
 * warning; with SLUICE_HTTP_TOKENS it enforces them; `sluice dashboard` is the same command; Ctrl-C stops it.
 */
import { afterAll, describe, expect, it } from "vitest";
import { call } from "../http/helpers.js";
import { exited, runCli, spawnCli, testStore, waitForOutput } from "./helpers.js";

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
});
