/**
 * A TCP proxy on 127.0.0.1 that can freeze the connections it carries: no byte passes either way and no
 * FIN or RST is sent, as when a peer vanishes behind a NAT or a firewall (a half-open connection).
 * Connections opened after a freeze pass normally, so a client that reconnects gets through.
 */
import { createConnection, createServer, type Server, type Socket } from "node:net";

type Pair = [downstream: Socket, upstream: Socket];

export class FreezingProxy {
  /** Connections carried now. */
  private readonly live = new Set<Pair>();
  /** Connections frozen: open and silent until close(). */
  private readonly frozen: Pair[] = [];
  private server!: Server;
  port = 0;

  /** Listens on a free port and forwards every connection to `targetPort` on 127.0.0.1. */
  static async start(targetPort: number): Promise<FreezingProxy> {
    const proxy = new FreezingProxy();
    proxy.server = createServer((downstream) => proxy.carry(downstream, targetPort));
    proxy.port = await new Promise<number>((resolve, reject) => {
      proxy.server.once("error", reject);
      proxy.server.listen(0, "127.0.0.1", () => {
        const address = proxy.server.address();
        if (typeof address === "object" && address) resolve(address.port);
        else reject(new Error("proxy has no port"));
      });
    });
    return proxy;
  }

  /** How many connections it carries now. */
  get carried(): number {
    return this.live.size;
  }

  /** Freezes every connection carried now. Returns how many were frozen. */
  freeze(): number {
    for (const pair of this.live) {
      const [downstream, upstream] = pair;
      downstream.unpipe(upstream);
      upstream.unpipe(downstream);
      downstream.pause();
      upstream.pause();
      this.frozen.push(pair);
    }
    const count = this.live.size;
    this.live.clear();
    return count;
  }

  async close(): Promise<void> {
    for (const [a, b] of [...this.live, ...this.frozen]) {
      a.destroy();
      b.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private carry(downstream: Socket, targetPort: number): void {
    const upstream = createConnection({ host: "127.0.0.1", port: targetPort });
    const pair: Pair = [downstream, upstream];
    this.live.add(pair);
    downstream.pipe(upstream);
    upstream.pipe(downstream);
    const drop = () => {
      this.live.delete(pair);
      downstream.destroy();
      upstream.destroy();
    };
    downstream.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
  }
}
