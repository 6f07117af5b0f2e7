/** Runtimes fire a timer of more than 2^31−1 ms (24.8 days) at once; longer waits are made of steps. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * The timers of one connection (reconnect, token refresh, a server's
 * `reconnect`): `cancelAll` at teardown stops every one still waiting, so
 * nothing scheduled for a connection outlives it.
 */
export class Timers {
  private timers: Array<ReturnType<typeof setTimeout>> = [];

  /** Runs `callback` after `ms`, however long: a runtime timer fires at once past 2^31−1 ms, so longer waits are made of steps. */
  later(callback: () => void, ms: number): void {
    const step = Math.min(ms, MAX_TIMER_MS);
    const timer = setTimeout(() => {
      this.timers = this.timers.filter((other) => other !== timer);
      if (ms > MAX_TIMER_MS) this.later(callback, ms - MAX_TIMER_MS);
      else callback();
    }, step);
    this.timers.push(timer);
  }

  cancelAll(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers = [];
  }
}
