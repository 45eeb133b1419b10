/**
 * No secret of a store URL reaches any CLI output: every URL of the CLI credential corpus
 * (test/support/credential-corpus.ts: the shapes of the redactUrl corpus, on a closed port on loopback or
 * unparsable) is passed with `--url` to every command that prints a URL or an error naming the store, in text and JSON
 * modes, with debug logging on; stdout and stderr must hold none of its secrets. The real binary runs.
 */
import { describe, expect, it } from "vitest";
import { redactUrl } from "../../src/index.js";
import { CLI_CORPUS } from "../support/credential-corpus.js";
import { type CliResult, fixture, runCli } from "./helpers.js";

/** Every command that opens the store and prints its location or an error naming it. */
const SURFACES: string[][] = [
  ["info"],
  ["info", "--json"],
  ["jobs", "list"],
  ["jobs", "list", "--json"],
  ["jobs", "show", "01J0NOSUCHJOB"],
  ["jobs", "show", "01J0NOSUCHJOB", "--json"],
  ["doctor", "--connect-timeout", "20s"],
  ["doctor", "--connect-timeout", "20s", "--json"],
  ["migrate"],
  ["migrate", "--json"],
  ["stats", "--json"],
  ["worker", "--tasks", fixture("tasks.mjs")],
];

/** Runs `tasks` with at most `limit` at a time (each run mostly waits for a refused connection). */
async function pooled<T>(tasks: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  const lane = async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await (tasks[i] as () => Promise<T>)();
    }
  };
  await Promise.all(Array.from({ length: limit }, lane));
  return results;
}

describe("no CLI surface prints a secret of the store URL", () => {
  it.each(CLI_CORPUS)("$name", { timeout: 180_000 }, async ({ url, secrets }) => {
    const runs = await pooled(
      SURFACES.map(
        (args) => async (): Promise<[string[], CliResult]> => [
          args,
          await runCli([...args, "--url", url], { env: { SLUICE_LOG_LEVEL: "debug" }, timeoutMs: 60_000 }),
        ],
      ),
      4,
    );
    for (const [args, result] of runs) {
      const label = `sluice ${args.join(" ")}`;
      // Each surface really ran against the URL and failed (so its error path was printed)…
      expect(result.code, `${label}\n${result.stderr}`).not.toBe(0);
      expect(result.stdout + result.stderr, label).not.toBe("");
      // …and said nothing of the secrets.
      for (const secret of secrets) {
        expect(result.stdout, `${label}: stdout`).not.toContain(secret);
        expect(result.stderr, `${label}: stderr`).not.toContain(secret);
      }
    }
    // Where a report was printed, it names the store by its redacted URL.
    const doctorJson = runs.find(([args]) => args[0] === "doctor" && args.includes("--json"))?.[1];
    if (doctorJson?.stdout) {
      const report = JSON.parse(doctorJson.stdout) as { store: { location: string } };
      expect(report.store.location).toBe(redactUrl(url));
    }
  });
});
