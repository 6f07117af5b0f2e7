/** Time as a port: core code schedules through a Clock so tests can drive it. */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Monotonic milliseconds, for measuring durations. */
  monotonic(): number;
  setTimeout(callback: () => void, ms: number): Timer;
  setInterval(callback: () => void, ms: number): Timer;
}

/**
 * The longest delay one runtime timer takes: Node and browsers fire a timer
 * of more than 2^31−1 ms (24.8 days) at once. Longer waits are made of steps.
 */
export const MAX_TIMER_MS = 2_147_483_647;

/** Node's and Bun's timer handles can be unref'd; a browser's are plain numbers. */
function unref(handle: unknown): void {
  (handle as { unref?: () => void }).unref?.();
}

/** Timers never keep the process alive (unref); a delay of any length fires after that delay. */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout(callback, ms) {
    let handle: ReturnType<typeof setTimeout>;
    const arm = (remaining: number): void => {
      handle = setTimeout(() => (remaining > MAX_TIMER_MS ? arm(remaining - MAX_TIMER_MS) : callback()), Math.min(remaining, MAX_TIMER_MS));
      unref(handle);
    };
    arm(ms);
    return { cancel: () => clearTimeout(handle) };
  },
  setInterval(callback, ms) {
    const handle = setInterval(callback, ms);
    unref(handle);
    return { cancel: () => clearInterval(handle) };
  },
};
