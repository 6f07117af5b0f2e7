import { SobranieError } from "@sobranie/protocol/errors";
import type { PersistOutcome } from "./ports/persist-queue.js";

/**
 * The handler broke the port's promise of one outcome per message. A bug, not
 * a transient fault: logged at error level, and the batch is redelivered
 * (never acked on a guess) until the handler is fixed.
 */
export class PersistOutcomeMismatchError extends SobranieError {
  override readonly name = "PersistOutcomeMismatchError";
  readonly code = "outcome_mismatch";
  readonly retryable = false;
  constructor(expected: number, actual: number) {
    super(`handleBatch returned ${actual} outcomes for ${expected} messages`);
  }
}

/** Returns the outcomes when there is exactly one per message, else throws PersistOutcomeMismatchError. */
export function checkOutcomes(batchSize: number, outcomes: readonly PersistOutcome[]): readonly PersistOutcome[] {
  if (!Array.isArray(outcomes) || outcomes.length !== batchSize) {
    throw new PersistOutcomeMismatchError(batchSize, Array.isArray(outcomes) ? outcomes.length : 0);
  }
  return outcomes;
}
