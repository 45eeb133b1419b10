/**
 * Wake-ups for the SQLite engine, without a busy poll.
 *
 * Within one process, every store on the same database file shares an in-memory channel: a producer's
 * enqueue wakes the worker in the same process synchronously after the commit.
 *
 * Across processes, SQLite has no notification mechanism, so we use the kernel's: sidecar files next to
 * the database. After a commit that makes work available (enqueue, retry, release, resume) the writer
 * bumps the mtime of `<db>.wake`; after a cancel request, of `<db>.cancel` (one `utimes` syscall, ~µs).
 * Two files, so a busy worker never runs a cancel check because someone enqueued.
 * Every process watches that file with `fs.watch` (inotify on Linux, FSEvents on macOS), which fires
 * within a fraction of a millisecond. The notification carries no data — receivers treat it as
 * "something changed, look" — so lost or coalesced events are harmless, and the runtime's jittered safety
 * poll covers file systems where watching is not supported (network mounts).
 */
import { EventEmitter } from "node:events";
import { closeSync, type FSWatcher, openSync, utimesSync, watch } from "node:fs";
import type { StoreSignal } from "../contract.js";

const channels = new Map<string, { emitter: EventEmitter; users: number }>();

type RemoteListener = (signal: StoreSignal) => void;

/** A subscription point for one database file. */
export class WakeChannel {
  private readonly channel: { emitter: EventEmitter; users: number };
  private readonly files: { jobs: string; cancel: string } | null;
  private watchers: FSWatcher[] = [];
  private readonly remoteListeners = new Set<RemoteListener>();
  private closed = false;

  /** `database` null = in-memory database: in-process wake-ups only. */
  constructor(
    private readonly key: string,
    database: string | null,
  ) {
    let channel = channels.get(key);
    if (!channel) {
      channel = { emitter: new EventEmitter(), users: 0 };
      channel.emitter.setMaxListeners(0);
      channels.set(key, channel);
    }
    channel.users++;
    this.channel = channel;
    this.files = database ? { jobs: `${database}.wake`, cancel: `${database}.cancel` } : null;
    if (this.files) for (const file of Object.values(this.files)) closeSync(openSync(file, "a"));
  }

  /** Tells every subscriber (this process and others) after a commit. */
  notify(signal: StoreSignal): void {
    this.channel.emitter.emit("signal", signal);
    if (!this.files) return;
    const now = new Date();
    try {
      utimesSync(signal.type === "cancel" ? this.files.cancel : this.files.jobs, now, now);
    } catch {
      // The wake files are an optimisation; the safety poll and heartbeats still find the work.
    }
  }

  subscribe(listener: (signal: StoreSignal) => void): () => void {
    const local = (signal: StoreSignal) => listener(signal);
    this.channel.emitter.on("signal", local);
    // A touch from another process (or this one: duplicates are coalesced by the runtime).
    const remote: RemoteListener = (signal) => listener(signal);
    this.remoteListeners.add(remote);
    this.startWatching();
    return () => {
      this.channel.emitter.off("signal", local);
      this.remoteListeners.delete(remote);
      if (this.remoteListeners.size === 0) this.stopWatching();
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopWatching();
    this.channel.users--;
    if (this.channel.users === 0) channels.delete(this.key);
  }

  private startWatching(): void {
    if (this.watchers.length > 0 || !this.files) return;
    const watchFile = (file: string, signal: StoreSignal) => {
      try {
        const watcher = watch(file, { persistent: false }, () => {
          for (const listener of this.remoteListeners) listener(signal);
        });
        watcher.on("error", () => watcher.close());
        this.watchers.push(watcher);
      } catch {
        // Unsupported file system: the safety poll (jobs) and heartbeats (cancels) take over.
      }
    };
    watchFile(this.files.jobs, { type: "jobs", queues: null });
    watchFile(this.files.cancel, { type: "cancel" });
  }

  private stopWatching(): void {
    for (const watcher of this.watchers) watcher.close();
    this.watchers = [];
  }
}
