import type { Clock, Timer } from "@sobranie/protocol/runtime/clock";

interface Scheduled {
  at: number;
  every: number | undefined;
  callback: () => void;
  cancelled: boolean;
}

/** A clock that moves only when the test says so: no sleeps in tests. */
export class FakeClock implements Clock {
  private nowMs: number;
  private readonly scheduled: Scheduled[] = [];

  constructor(startMs = 1_700_000_000_000) {
    this.nowMs = startMs;
  }

  now(): number {
    return this.nowMs;
  }

  monotonic(): number {
    return this.nowMs;
  }

  setTimeout(callback: () => void, ms: number): Timer {
    return this.schedule(callback, ms, undefined);
  }

  setInterval(callback: () => void, ms: number): Timer {
    return this.schedule(callback, ms, Math.max(1, ms));
  }

  /** Moves time forward, running every timer that falls due, in time order. */
  advance(ms: number): void {
    const target = this.nowMs + ms;
    for (;;) {
      const due = this.scheduled
        .filter((entry) => !entry.cancelled && entry.at <= target)
        .sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.nowMs = due.at;
      if (due.every === undefined) due.cancelled = true;
      else due.at += due.every;
      due.callback();
    }
    this.nowMs = target;
  }

  /**
   * Moves time forward as a stalled event loop sees it: every timer that fell
   * due runs once, late, at the new time (an interval then continues from now).
   */
  stall(ms: number): void {
    this.nowMs += ms;
    const due = this.scheduled.filter((entry) => !entry.cancelled && entry.at <= this.nowMs).sort((a, b) => a.at - b.at);
    for (const entry of due) {
      if (entry.every === undefined) entry.cancelled = true;
      else entry.at = this.nowMs + entry.every;
      entry.callback();
    }
  }

  private schedule(callback: () => void, ms: number, every: number | undefined): Timer {
    const entry: Scheduled = { at: this.nowMs + Math.max(0, ms), every, callback, cancelled: false };
    this.scheduled.push(entry);
    return { cancel: () => void (entry.cancelled = true) };
  }
}
