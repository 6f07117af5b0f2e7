/**
 * Tells a periodic check that it runs late. After an event-loop stall (a big
 * fan-out, a GC pause) the timers fire before the sockets are read, so pings
 * and peer heartbeats that arrived during the stall are still unread: judging
 * silence in that run would close clients and drop peers that did speak.
 * Such a run skips its silence judgments; the next one, on time, judges with
 * what was read in between.
 */
export class LateTick {
  /** `lastMs`: when the timer was set up (a first run long after it is late too; skipping a judgment is always safe). */
  constructor(
    private readonly intervalMs: number,
    private lastMs: number,
  ) {}

  /** True when this run comes more than twice the interval after the previous one. */
  late(nowMs: number): boolean {
    const late = nowMs - this.lastMs > 2 * this.intervalMs;
    this.lastMs = nowMs;
    return late;
  }
}
