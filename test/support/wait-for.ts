/** How often `waitFor` re-checks its predicate. */
const POLL_INTERVAL_MS = 10;
const DEFAULT_TIMEOUT_MS = 5_000;

/**
 * Polls `predicate` every 10 ms until it returns true (or a promise of true),
 * instead of sleeping a guessed time. Throws with `description` on timeout.
 * A predicate that throws counts as "not yet"; its last error is the cause.
 */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = DEFAULT_TIMEOUT_MS,
  description = "condition",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      if (await predicate()) return;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      throw new Error(`waitFor: ${description} not met within ${timeoutMs} ms`, { cause: lastError });
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}
