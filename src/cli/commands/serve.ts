/**
 * `sluice serve` (alias `sluice dashboard`): the HTTP JSON API (docs/http.md) on its own server, until
 * Ctrl-C. The dashboard will be served from the same server.
 *
 * Tokens: `SLUICE_HTTP_TOKENS`, else `http.tokens` of `sluice.config.*`. With none, the server refuses to
 * listen on anything but a loopback address; on loopback it runs open (every caller is admin) and says so.
 */
import type { AddressInfo } from "node:net";
import type { Command } from "commander";
import { Sluice } from "../../index.js";
import { resolveHttpTokens, resolveUrl } from "../config.js";
import { globals, quietLogger } from "../context.js";
import { UsageError } from "../errors.js";
import { durationFlag, wholeNumber } from "../filters.js";

interface ServeFlags {
  port: number;
  host: string;
  allowEnqueue?: boolean;
  redact?: string;
  storeTimeout: string;
}

function port(value: string): number {
  if (value === "0") return 0;
  const n = wholeNumber(value);
  if (n > 65_535) throw new UsageError(`--port must be from 0 to 65535, got ${value}`);
  return n;
}

/** Registers `sluice serve` and its alias `sluice dashboard`. */
export function registerServe(program: Command): void {
  program
    .command("serve")
    .alias("dashboard")
    .description("serve the HTTP JSON API (and later the dashboard) until Ctrl-C")
    .option("-p, --port <n>", "TCP port (0: any free port)", port, 7070)
    .option("--host <address>", "address to listen on", "127.0.0.1")
    .option("--allow-enqueue", "allow POST /jobs (enqueue any task with any payload)")
    .option("--redact <fields>", "extra secret fields to mask, comma separated (ssn,user.email,*.pin)")
    .option("--store-timeout <duration>", "deadline of each store call a request makes", "10s")
    .addHelpText(
      "after",
      "\nTokens come from SLUICE_HTTP_TOKENS (admin:<token>,read:<token>) or http.tokens in sluice.config.json.\n" +
        "Without any, serve listens on loopback only, open to every local caller.\n\n" +
        "Examples:\n  $ SLUICE_HTTP_TOKENS=admin:$(openssl rand -hex 32) sluice serve --host 0.0.0.0 --port 7070\n" +
        "  $ sluice serve            # loopback, no token: for your own machine only",
    )
    .action(async (flags: ServeFlags, cmd: Command) => {
      const { createHttpApi, isLoopbackHost, parseTokens } = await import("../../http/index.js");
      const { serve } = await import("@hono/node-server");
      const storeTimeoutMs = durationFlag(flags.storeTimeout, "--store-timeout");
      const fromEnv = process.env.SLUICE_HTTP_TOKENS;
      const configured =
        fromEnv !== undefined && fromEnv.trim() !== ""
          ? { tokens: fromEnv, source: "SLUICE_HTTP_TOKENS" }
          : await resolveHttpTokens();
      const tokens = configured ? parseTokens(configured.tokens, configured.source) : [];
      if (tokens.length === 0 && !isLoopbackHost(flags.host)) {
        throw new UsageError(
          `refusing to serve on ${flags.host} without a token: set SLUICE_HTTP_TOKENS=admin:<token>,read:<token> ` +
            "(e.g. admin:$(openssl rand -hex 32)), or listen on 127.0.0.1",
        );
      }
      const url = await resolveUrl(globals(cmd).url);
      const sluice = new Sluice({ url: url.url, logger: quietLogger() });
      await sluice.admin.ping();
      const app = createHttpApi(sluice, {
        ...(tokens.length > 0 ? { tokens } : { auth: "none" as const }),
        allowEnqueue: flags.allowEnqueue === true,
        redact: flags.redact
          ? flags.redact
              .split(",")
              .map((f) => f.trim())
              .filter((f) => f !== "")
          : [],
        storeTimeoutMs,
      });
      const server = serve({ fetch: app.fetch, port: flags.port, hostname: flags.host });
      await new Promise<void>((resolve, reject) => {
        server.once("listening", resolve);
        server.once("error", reject);
      });
      const address = server.address() as AddressInfo;
      const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
      if (tokens.length === 0) {
        process.stderr.write(
          "sluice serve: WARNING: no token configured (SLUICE_HTTP_TOKENS): the API is open to every local " +
            "caller, with admin rights; loopback only\n",
        );
      }
      process.stdout.write(
        `sluice serve: listening on http://${host}:${address.port} (store ${sluice.safeUrl})\n`,
      );
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await sluice.close();
    });
}
