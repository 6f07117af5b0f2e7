import type { Clock } from "./clock.js";

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

/**
 * Calls `attempt` until it resolves or `signal` aborts, with a full-jitter
 * backoff between failures. With `waitFirst` (a reconnect after a loss) it
 * also waits one jittered step before the first try, so a fleet dropped by the
 * same broker restart does not come back in lockstep. Resolves true once an
 * attempt succeeded, false when aborted first; never rejects.
 */
export async function retryWithBackoff(options: {
  readonly clock: Clock;
  readonly backoff: BackoffOptions;
  readonly signal: AbortSignal;
  readonly waitFirst: boolean;
  readonly attempt: () => Promise<void>;
  readonly onFailure: (error: unknown, attempt: number) => void;
}): Promise<boolean> {
  const { clock, backoff, signal } = options;
  let attempt = options.waitFirst ? 0 : -1;
  while (!signal.aborted) {
    if (attempt >= 0) await sleep(clock, fullJitterDelayMs(backoff, attempt), signal);
    attempt += 1;
    if (signal.aborted) return false;
    try {
      await options.attempt();
      return true;
    } catch (error) {
      if (signal.aborted) return false;
      options.onFailure(error, attempt);
    }
  }
  return false;
}
