import type { Clock, Timer } from "@sobranie/protocol/runtime/clock";

export interface SubscriberCountFanoutDeps {
  readonly clock: Clock;
  /** At most one show per channel per this many ms. */
  readonly intervalMs: number;
  /** The channel's counted subscribers now (cluster-wide). */
  readonly count: (channel: string) => number;
  /** Shows `count` to this node's sockets of `channel` whose wire shows counts (ChannelWires.publishToWires). */
  readonly show: (channel: string, count: number) => void;
}

/**
 * A channel's subscriber count shown to its subscribers at most once per
 * `intervalMs`: the first change after a quiet interval at once, the changes
 * within the interval as one trailing show of the count at its end. So a
 * channel filling up with N subscribers costs each of them about one frame
 * per interval, not N frames (N² in all), and the last count shown is
 * always the count after the last change.
 */
export class SubscriberCountFanout {
  private readonly lastShownAtMs = new Map<string, number>();
  private readonly trailing = new Map<string, Timer>();

  constructor(private readonly deps: SubscriberCountFanoutDeps) {}

  changed(channel: string): void {
    if (this.trailing.has(channel)) return;
    const nowMs = this.deps.clock.now();
    const lastMs = this.lastShownAtMs.get(channel);
    if (lastMs === undefined || nowMs - lastMs >= this.deps.intervalMs) return this.show(channel, nowMs);
    const timer = this.deps.clock.setTimeout(() => {
      this.trailing.delete(channel);
      this.show(channel, this.deps.clock.now());
    }, lastMs + this.deps.intervalMs - nowMs);
    this.trailing.set(channel, timer);
  }

  /** Forgets channels shown more than an interval ago (their next change is shown at once anyway). */
  sweep(): void {
    const quietSinceMs = this.deps.clock.now() - this.deps.intervalMs;
    for (const [channel, shownAtMs] of this.lastShownAtMs) {
      if (shownAtMs <= quietSinceMs && !this.trailing.has(channel)) this.lastShownAtMs.delete(channel);
    }
  }

  /** Cancels the trailing shows: they are not sent. */
  close(): void {
    for (const timer of this.trailing.values()) timer.cancel();
    this.trailing.clear();
  }

  private show(channel: string, nowMs: number): void {
    this.lastShownAtMs.set(channel, nowMs);
    this.deps.show(channel, this.deps.count(channel));
  }
}
