import { encodeControl, parseControl, type ControlCommand } from "@sobranie/protocol/control";
import { PublishValidationCode, PublishValidationError } from "./errors.js";
import type { OutgoingEvent } from "./event.js";

/** `disconnectUser` options. */
export interface DisconnectOptions {
  /** `final` (default): close 4003, the client does not reconnect; `reauthenticate`: close 4001, it reconnects with a new token. */
  readonly mode?: "final" | "reauthenticate";
  /** The close reason clients see (at most 123 bytes of UTF-8). */
  readonly reason?: string;
}

/**
 * Validates and encodes a control command for `sobranie.control` (docs/protocol.md
 * §11). Throws `PublishValidationError` with code
 * `invalid_control` (never anything else), so a bad command fails in the
 * caller instead of being dead-lettered by every gateway.
 */
export function buildControl(command: Record<string, unknown>, nowMs: number, newId: () => string): OutgoingEvent {
  const parsed = parseControl(command);
  if (!parsed.ok) throw new PublishValidationError(PublishValidationCode.InvalidControl, parsed.message);
  const valid: ControlCommand = parsed.command;
  return { id: newId(), routingKey: valid.command, body: Buffer.from(encodeControl(valid), "utf8"), timestampMs: nowMs, control: true };
}

/** `issuedBefore` as ms since the epoch: a Date or a number of ms. */
export function epochMs(value: Date | number): number {
  return value instanceof Date ? value.getTime() : value;
}
