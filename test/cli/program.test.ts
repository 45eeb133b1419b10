/** The program itself: every command has help with an example; usage errors exit 2; `dev` still works. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Command } from "commander";
import { afterAll, describe, expect, it } from "vitest";
import { UsageError } from "../../src/cli/errors.js";
import { buildProgram, exitCodeOf } from "../../src/cli/main.js";
import { ValidationError } from "../../src/index.js";
import { runCli } from "./helpers.js";

const COMMANDS = [
  "worker",
  "info",
  "jobs list",
  "jobs show",
  "retry",
  "cancel",
  "delete",
  "purge",
  "pause",
  "resume",
  "move",
  "reprioritize",
  "recover",
  "doctor",
  "stats",
  "migrate",
  "dev",
];
const dir = mkdtempSync(join(tmpdir(), "sluice-program-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function find(program: Command, path: string): Command | undefined {
  let current: Command | undefined = program;
  for (const name of path.split(" ")) current = current?.commands.find((c) => c.name() === name);
  return current;
}

describe("sluice program", () => {
  it("has every command, each with an example in its help", () => {
    const program = buildProgram();
    for (const path of COMMANDS) {
      const command = find(program, path);
      expect(command?.name(), path).toBe(path.split(" ").at(-1));
      let help = "";
      command?.configureOutput({ writeOut: (s) => (help += s) });
      command?.outputHelp();
      expect(help, path).toMatch(/Examples?:\n\s+\$ .*sluice /);
    }
  });

  it("maps errors to exit codes: usage 2, validation 2, anything else 1", () => {
    expect(exitCodeOf(new UsageError("x")).code).toBe(2);
    expect(exitCodeOf(new ValidationError("INVALID_OPTION", "bad")).code).toBe(2);
    expect(exitCodeOf(new Error("boom")).code).toBe(1);
  });

  it("exits 2 on usage errors and when no store URL is configured, 0 for --help", async () => {
    const [unknown, noUrl, badDuration, help] = await Promise.all([
      runCli(["frobnicate"], { cwd: dir }),
      runCli(["info"], { cwd: dir }),
      runCli(["stats", "--since", "yesterday", "--url", "sqlite::memory:"], { cwd: dir }),
      runCli(["move", "--help"], { cwd: dir }),
    ]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command");
    expect(noUrl.code).toBe(2);
    expect(noUrl.stderr).toContain("no store URL: pass --url");
    expect(badDuration.code).toBe(2);
    expect(badDuration.stderr).toContain("--since must be a duration");
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("--where <expr>");
    expect(help.stdout).toContain("--to <queue>");
  });
});
