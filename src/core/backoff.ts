import type { Clock } from "./ports/clock.js";

export interface BackoffOptions {
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
}

const GROWTH_FACTOR = 2;

/**
 * Exponential backoff with full jitter: a uniform draw from
 * [0, min(max, initial · 2^attempt)). Full jitter spreads a fleet of gateways
 * that lost the broker at the same instant (a broker restart) over the whole
 * window instead of having them return in lockstep.
 */
export function fullJitterDelayMs(options: BackoffOptions, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(options.maxDelayMs, options.initialDelayMs * GROWTH_FACTOR ** attempt);
  return Math.floor(random() * ceiling);
}

/** Waits `ms` on the clock; resolves early (never rejects) when `signal` aborts. */
export function sleep(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const onAbort = (): void => {
      timer.cancel();
      resolve();
    };
    const timer = clock.setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
