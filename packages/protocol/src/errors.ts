/**
 * The one shape every failure of the server and the publisher SDK has. A
 * caller decides to retry, answer `unavailable`, alert or drop from `code`
 * and `retryable` alone, never from the class or the message.
 *
 * Guarantees: `code` is a fixed snake_case string per class (or per
 * validation rule), the word a reply, log line or backend matches on;
 * `retryable` is true exactly when the same call may succeed later without
 * any change (a broker or store away, a full buffer), false when it fails
 * again until something is fixed (bad input, a bug, a closed publisher).
 *
 * The browser client's RealtimeError is not one: it reports what the server
 * answered and the client's reconnect policy decides, so it has no
 * `retryable` of its own (@sobranie/client, packages/client/src/types.ts).
 */
export abstract class SobranieError extends Error {
  abstract readonly code: string;
  abstract readonly retryable: boolean;
}

/**
 * Whether `error` says a later retry may succeed. Decided by the `retryable`
 * field, not by `instanceof SobranieError`, so that an error from another
 * copy of this module (an SDK installed beside the server) or a library that
 * follows the same convention is treated alike.
 */
export function isRetryable(error: unknown): boolean {
  return (error as { retryable?: unknown } | null)?.retryable === true;
}

/** The message broker is not connected (or was stopped): retry later; a gateway answers `unavailable`. */
export class BrokerUnavailableError extends SobranieError {
  override readonly name = "BrokerUnavailableError";
  readonly code = "unavailable";
  readonly retryable = true;
  constructor(message = "message broker is not connected", options?: { cause?: unknown }) {
    super(message, options);
  }
}
