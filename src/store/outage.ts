/**
 * When a networked engine's connection last came back after an outage, and the rule recovery applies after
 * a store restart (item 7 of the reliability issue): a lease that ran out while the store was down or
 * unreachable most likely belongs to a live worker that holds a finished outcome it could not write. So the
 * automatic recovery pass treats leases as expired only once both the server (its own start time) and this
 * process's connection have been up for one lease period; by then every live worker has reconnected,
 * extended its leases and written its outcomes, and what is still expired really is orphaned.
 */
import type { Logger } from "../core/logger.js";

/** Tracks this process's connection to the store: lost at the first unreachable error, back at the next success. */
export class ConnectionWatch {
  private lostAt: number | null = null;
  private restoredAt: number | null = null;

  /** The store could not be reached (a driver error, a dropped idle connection, a reconnect attempt). */
  lost(): void {
    this.lostAt ??= Date.now();
  }

  /** A call reached the store. Cheap enough for every call. */
  reached(): void {
    if (this.lostAt === null) return;
    this.lostAt = null;
    this.restoredAt = Date.now();
  }

  /** Milliseconds since the connection came back after its last outage; Infinity when it never broke. */
  backForMs(now = Date.now()): number {
    if (this.lostAt !== null) return 0;
    return this.restoredAt === null ? Number.POSITIVE_INFINITY : now - this.restoredAt;
  }
}

/**
 * The recovery gate of one store: its connection watch, and the decision (logged once per outage) whether
 * expired leases may be recovered now.
 */
export class RecoveryGate {
  readonly connection = new ConnectionWatch();
  private deferring = false;

  constructor(
    private readonly logger: Logger,
    private readonly fields: Record<string, unknown>,
  ) {}

  /**
   * True when expired leases must not be recovered yet: the server has been up (`serverUpMs`, by its own
   * clock) or this process's connection back for less than `waitMs`.
   */
  defer(waitMs: number | undefined, serverUpMs: number): boolean {
    if (waitMs === undefined || waitMs <= 0) return false;
    const connectionBackMs = this.connection.backForMs();
    const upMs = Math.min(serverUpMs, connectionBackMs);
    const defer = upMs < waitMs;
    if (defer && !this.deferring) {
      this.logger.info(
        {
          ...this.fields,
          serverUpMs: Math.round(serverUpMs),
          connectionBackMs: Number.isFinite(connectionBackMs) ? Math.round(connectionBackMs) : null,
          waitMs,
        },
        "store restarted or connection restored recently: expired leases are recovered once it has been up one lease period, so live workers write their outcomes first",
      );
    }
    this.deferring = defer;
    return defer;
  }
}
