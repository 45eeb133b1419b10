/**
 * A private Redis Cluster for tests and benchmarks: `masters` redis-server processes started with
 * `--cluster-enabled yes` on free loopback ports, each with its own data directory under one temporary
 * directory, joined by `redis-cli --cluster create … --cluster-replicas 0 --cluster-yes`. `stop()` kills only
 * the pids started here and removes the directory. Nothing else (the shared Redis on 6379) is touched.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./free-port.js";
import { until } from "./wait.js";

/** Servers started here and not yet seen to exit: killed if the process exits early. */
const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

/** Runs a command to its end; rejects with its output when it fails. */
function run(command: string, args: string[], timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      out += d.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${command} ${args.join(" ")} exited ${code ?? signal}:\n${out}`));
    });
  });
}

export class PrivateRedisCluster {
  private constructor(
    readonly ports: number[],
    readonly dir: string,
    private readonly children: ChildProcess[],
  ) {}

  /** Starts `masters` (≥ 3) cluster nodes and creates the cluster; resolves once cluster_state is ok everywhere. */
  static async start(masters = 3): Promise<PrivateRedisCluster> {
    const dir = mkdtempSync(join(tmpdir(), "sluice-redis-cluster-"));
    const ports: number[] = [];
    const children: ChildProcess[] = [];
    const cluster = new PrivateRedisCluster(ports, dir, children);
    try {
      for (let i = 0; i < masters; i++) {
        // Free ports one by one (and the cluster bus port, +10000, must be free too).
        let port = await freePort();
        while (port > 55_000 || ports.includes(port)) port = await freePort();
        ports.push(port);
        const nodeDir = join(dir, String(port));
        mkdirSync(nodeDir);
        const child = spawn(
          "redis-server",
          [
            "--port",
            String(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            nodeDir,
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "5000",
            "--save",
            "",
            "--appendonly",
            "no",
            "--maxmemory-policy",
            "noeviction",
          ],
          { stdio: "ignore" },
        );
        children.push(child);
        live.add(child);
        child.once("exit", () => live.delete(child));
      }
      for (const port of ports) {
        await until(`cluster node on port ${port} to answer`, () => cluster.ping(port), 30_000, 20);
      }
      await run("redis-cli", [
        "--cluster",
        "create",
        ...ports.map((p) => `127.0.0.1:${p}`),
        "--cluster-replicas",
        "0",
        "--cluster-yes",
      ]);
      for (const port of ports) {
        await until(
          `cluster_state:ok on port ${port}`,
          async () =>
            (await run("redis-cli", ["-p", String(port), "cluster", "info"])).includes("cluster_state:ok"),
          30_000,
          50,
        );
      }
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  private async ping(port: number): Promise<boolean> {
    try {
      return (await run("redis-cli", ["-p", String(port), "ping"], 5_000)).trim() === "PONG";
    } catch {
      return false;
    }
  }

  /** `redis+cluster://127.0.0.1:<p1>,127.0.0.1:<p2>,…` (every master as a seed). */
  get url(): string {
    return `redis+cluster://${this.ports.map((p) => `127.0.0.1:${p}`).join(",")}`;
  }

  /** The pids of the servers started here. */
  get pids(): number[] {
    return this.children.map((c) => c.pid).filter((p): p is number => p !== undefined);
  }

  /** Runs `redis-cli -p <port> …` against one node (inspection in tests). */
  cli(port: number, ...args: string[]): Promise<string> {
    return run("redis-cli", ["-p", String(port), ...args]);
  }

  /** Resolves once every node reports an uptime of at least `ms` (INFO server), polled up to `ms` + 30 s. */
  async olderThan(ms: number): Promise<void> {
    await until(
      `cluster nodes up for ${ms} ms`,
      async () => {
        for (const port of this.ports) {
          const info = await this.cli(port, "info", "server");
          const up = Number(/uptime_in_seconds:(\d+)/.exec(info)?.[1] ?? 0);
          if (up * 1000 < ms) return false;
        }
        return true;
      },
      ms + 30_000,
      250,
    );
  }

  /** Deletes every key of a Sluice prefix: SCAN runs per node, so on every master. */
  async deletePrefix(prefix: string): Promise<void> {
    for (const port of this.ports) {
      for (const pattern of [`{${prefix}}:*`, `{${prefix}:q:*`]) {
        let cursor = "0";
        do {
          const out = (await this.cli(port, "--raw", "scan", cursor, "MATCH", pattern, "COUNT", "1000"))
            .trim()
            .split("\n");
          cursor = out[0] ?? "0";
          const keys = out.slice(1).filter((k) => k !== "");
          if (keys.length > 0) await this.cli(port, "unlink", ...keys);
        } while (cursor !== "0");
      }
    }
  }

  /** Kills the servers started here (by their pids) and removes their data. */
  async stop(): Promise<void> {
    await Promise.all(
      this.children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once("exit", () => resolve());
            child.kill("SIGKILL");
          }),
      ),
    );
    rmSync(this.dir, { recursive: true, force: true });
  }
}
