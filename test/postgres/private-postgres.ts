/**
 * A PRIVATE PostgreSQL server for the connection-fault tests: its own free port, its own temporary data
 * directory, stopped and started by the pid in its own `postmaster.pid` (never by name, never the shared
 * server on 5432). When the tests run as root the server runs as the `postgres` OS user (PostgreSQL
 * refuses root); root may still signal it by pid.
 */
import { execFile } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "../support/free-port.js";
import { until } from "../support/wait.js";

const run = promisify(execFile);
const BIN = process.env.SLUICE_TEST_PG_BIN ?? "/usr/lib/postgresql/15/bin";

/** Every postmaster pid started here and not yet seen to exit: killed if the test process exits early. */
const live = new Set<number>();
process.once("exit", () => {
  for (const pid of live) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
});

/** True while `pid` is a live (not zombie) process. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // "pid (comm) S ..." — a zombie ('Z') has exited; only its parent can reap it.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

export class PrivatePostgres {
  /** Pid of the running postmaster, or null while stopped. */
  pid: number | null = null;
  private readonly asPostgres = userInfo().uid === 0;

  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  /** initdb in a fresh temporary directory, then start on a free port. */
  static async create(): Promise<PrivatePostgres> {
    const dir = mkdtempSync(join(tmpdir(), "sluice-fault-pg-"));
    const server = new PrivatePostgres(dir, await freePort());
    try {
      if (server.asPostgres) {
        const { stdout: uid } = await run("id", ["-u", "postgres"]);
        const { stdout: gid } = await run("id", ["-g", "postgres"]);
        chownSync(dir, Number(uid.trim()), Number(gid.trim()));
      }
      await server.exec("initdb", ["-D", server.dataDir, "-U", "postgres", "--auth=trust", "--no-sync"]);
      await server.start();
    } catch (error) {
      await server.destroy();
      throw error;
    }
    return server;
  }

  get dataDir(): string {
    return join(this.dir, "data");
  }

  /** Database `postgres` on this server (trust auth: any password is accepted and ignored). */
  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  /** Starts the server on its port and data directory; resolves once it accepts connections. */
  async start(): Promise<void> {
    if (this.pid !== null) throw new Error(`private postgres (pid ${this.pid}) is already running`);
    await this.exec("pg_ctl", [
      "-D",
      this.dataDir,
      "-l",
      join(this.dir, "server.log"),
      "-o",
      `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off`,
      "-w",
      "-t",
      "60",
      "start",
    ]);
    const pid = Number(readFileSync(join(this.dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
    if (!Number.isInteger(pid) || pid <= 0) throw new Error("private postgres wrote no pid");
    this.pid = pid;
    live.add(pid);
  }

  /**
   * Stops the server by its pid: SIGINT is PostgreSQL's "fast" shutdown (open sessions are terminated, as
   * in a restart or a failover); SIGQUIT is "immediate" (`pg_ctl -m immediate`: no checkpoint, crash
   * recovery at the next start). Resolves once the process has exited.
   */
  async stop(signal: "SIGINT" | "SIGQUIT" | "SIGKILL" = "SIGINT", timeoutMs = 30_000): Promise<void> {
    const pid = this.pid;
    if (pid === null) return;
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
    await until(`private postgres (pid ${pid}) to exit`, () => !alive(pid), timeoutMs, 20);
    live.delete(pid);
    this.pid = null;
  }

  /** Stops the server if it runs (fast, then SIGKILL) and deletes its directory. */
  async destroy(): Promise<void> {
    if (this.pid !== null) {
      await this.stop("SIGINT").catch(() => this.stop("SIGKILL"));
    } else if (existsSync(join(this.dataDir, "postmaster.pid"))) {
      // Started but never recorded (start failed after pg_ctl returned): stop it by the pid it wrote.
      const pid = Number(readFileSync(join(this.dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
      if (Number.isInteger(pid) && pid > 0) {
        this.pid = pid;
        await this.stop("SIGKILL").catch(() => undefined);
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async exec(tool: string, args: string[]): Promise<void> {
    const binary = join(BIN, tool);
    if (this.asPostgres) await run("runuser", ["-u", "postgres", "--", binary, ...args], { cwd: this.dir });
    else await run(binary, args, { cwd: this.dir });
  }
}
