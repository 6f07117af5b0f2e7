import type { DeliveryOutcome } from "./ports/broker.js";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import type { Metrics } from "./ports/metrics.js";

/** Dead-letter reason of a delivery that failed unexpectedly (the broker port's `internal`). */
export const HANDLER_FAILED_REASON = "internal";

/**
 * The outcome for a delivery the node cannot use: counted, and logged once
 * per message (a warning; `error`: an unexpected failure, at error level with
 * its stack).
 */
export function deadLetter(deps: { readonly metrics: Metrics; readonly logger: Logger }, reason: string, message: string, error?: unknown): DeliveryOutcome {
  deps.metrics.deadLettered(reason);
  if (error === undefined) deps.logger.warn({ reason, detail: message }, "event dead-lettered");
  else deps.logger.error({ reason, err: error }, "event dead-lettered: delivery failed unexpectedly");
  return { kind: "dead-letter", reason, message };
}
