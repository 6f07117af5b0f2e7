import type { EventFrame } from "@sobranie/protocol/frames";
import type { StoredEvent } from "./ports/event-store.js";

/**
 * Event type the gateways use among themselves to sync an inbox read mark
 * (`user.<id>.sobranie.read` on the live exchange); turned into a `read` frame.
 */
export const READ_SYNC_TYPE = "sobranie.read";

/** The `event` frame of a stored event: the same shape as the live one, so clients cannot tell them apart. */
export function storedEventFrame(event: StoredEvent): EventFrame {
  return { op: "event", channel: event.channel, id: event.id, seq: event.seq, type: event.type, data: event.data, ts: event.occurredAt };
}
