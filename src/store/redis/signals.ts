/**
 * Wake-ups over Redis pub/sub. Scripts PUBLISH on the prefix's channel (`{prefix}:signal`): `j<queue>` when
 * jobs became claimable in a queue, `c` when an operator asked to cancel active jobs. One dedicated
 * subscriber connection per store serves every listener, so an idle worker blocks on the socket instead of
 * polling and starts a new job within a round trip of the enqueue.
 *
 * After a reconnect, ioredis resubscribes by itself; messages published while the connection was down are
 * lost, so listeners get `{ type: "jobs", queues: null }` and `{ type: "cancel" }` to make workers look once.
 *
 * On Redis Cluster the channel is classic pub/sub, which the cluster bus forwards to every node: a script's
 * PUBLISH on any master reaches the one subscriber connection the Cluster client keeps (to one node).
 */
import type { Logger } from "../../core/logger.js";
import type { StoreSignal } from "../contract.js";
import type { RedisUrl } from "./config.js";
import { createClient, type RedisClient } from "./connection.js";

export type SignalListener = (signal: StoreSignal) => void;

/** Decodes a channel message. */
export function decodeSignal(message: string): StoreSignal {
  if (message === "c") return { type: "cancel" };
  return { type: "jobs", queues: message.length > 1 ? [message.slice(1)] : null };
}

/** How long an expected echo of this store's own enqueue is waited for (see `Subscriber.expectEcho`). */
const ECHO_WINDOW_MS = 1_000;

export class Subscriber {
  private client: RedisClient | null = null;
  private readonly listeners = new Set<SignalListener>();
  private readyOnce = false;
  /**
   * Per queue, when this store's own enqueues (already signalled to its listeners in-process) were sent: the
   * PUBLISH each one makes comes back here and is skipped instead of waking the workers a second time.
   */
  private readonly echoes = new Map<string, number[]>();

  constructor(
    private readonly connection: RedisUrl,
    private readonly location: string,
    private readonly channel: string,
    private readonly logger: Logger,
  ) {}

  /** Adds a listener; the first one opens the subscriber connection. */
  add(listener: SignalListener): () => void {
    this.listeners.add(listener);
    this.start();
    return () => {
      this.listeners.delete(listener);
    };
  }

  private start(): void {
    if (this.client) return;
    const client = createClient(this.connection, this.location, "subscriber", this.logger);
    this.client = client;
    client.on("message", (channel: string, message: string) => {
      if (channel !== this.channel) return;
      const signal = decodeSignal(message);
      if (signal.type === "jobs" && signal.queues?.length === 1 && this.takeEcho(signal.queues[0]!)) return;
      this.emit(signal);
    });
    client.on("ready", () => {
      this.echoes.clear();
      // The first ready is the initial subscribe; later ones follow a reconnect, during which signals may
      // have been missed. ioredis emits "ready" before it resubscribes, so look once the subscription is
      // confirmed (a second SUBSCRIBE to the same channel is harmless): a signal published in between is
      // then covered by the look instead of lost until the safety poll.
      if (this.readyOnce) {
        client.subscribe(this.channel).then(
          () => this.emitMissed(),
          () => this.emitMissed(),
        );
      }
      this.readyOnce = true;
    });
    // Once subscribed, listeners look once: a signal published before the subscription took effect (a worker
    // that registered, claimed and went idle or got a cancel while this connection was still opening) is not
    // lost.
    client.subscribe(this.channel).then(
      () => this.emitMissed(),
      (error: unknown) => {
        this.logger.warn(
          { engine: "redis", err: (error as Error).message },
          "redis subscribe failed; retrying on reconnect",
        );
      },
    );
    client.connect().catch(() => {
      // Logged by the client's error handler; the retry strategy keeps trying.
    });
  }

  /**
   * Signals that may have been missed (this connection was not subscribed, or the command connection was
   * down so a look failed): listeners look for both kinds.
   */
  emitMissed(): void {
    this.emit({ type: "jobs", queues: null });
    this.emit({ type: "cancel" });
  }

  /** Whether anything in this process listens (workers of this store). */
  get listening(): boolean {
    return this.listeners.size > 0;
  }

  /**
   * Notes that an enqueue into `queue` was just sent and signalled in-process: its PUBLISH is an echo. Call
   * `cancelEcho` when it turns out the script published nothing (no job created, or the call failed).
   */
  expectEcho(queue: string): void {
    const sent = this.echoes.get(queue);
    if (sent) sent.push(Date.now());
    else this.echoes.set(queue, [Date.now()]);
  }

  cancelEcho(queue: string): void {
    const sent = this.echoes.get(queue);
    sent?.shift();
    if (sent && sent.length === 0) this.echoes.delete(queue);
  }

  /**
   * Skips one expected echo. A message of another process that arrives first is skipped in its place: that
   * is safe, because the echo then delivered was published later, so the claim it causes sees that job too.
   * Expectations older than a second are dropped (an echo arrives within milliseconds), so a failed call
   * can never silence later signals for long.
   */
  private takeEcho(queue: string): boolean {
    const sent = this.echoes.get(queue);
    if (!sent) return false;
    const stale = Date.now() - ECHO_WINDOW_MS;
    while (sent.length > 0 && sent[0]! < stale) sent.shift();
    const found = sent.length > 0;
    sent.shift();
    if (sent.length === 0) this.echoes.delete(queue);
    return found;
  }

  /** Delivers a signal to this store's own listeners (also used for in-process wake-ups, without Redis). */
  emit(signal: StoreSignal): void {
    if (this.listeners.size === 0) return;
    for (const listener of [...this.listeners]) {
      try {
        listener(signal);
      } catch (error) {
        this.logger.error({ err: error }, "store signal listener threw");
      }
    }
  }

  async close(): Promise<void> {
    this.listeners.clear();
    const client = this.client;
    this.client = null;
    if (client) {
      try {
        await client.quit();
      } catch {
        client.disconnect();
      }
    }
  }
}
