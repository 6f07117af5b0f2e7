import { encodeEnvelope, MAX_ENVELOPE_BYTES, type Envelope } from "@sobranie/protocol/envelope";
import { SobranieError } from "@sobranie/protocol/errors";

/**
 * The envelope a publish would put on the broker is over MAX_ENVELOPE_BYTES.
 * The request itself fitted its limit, but the envelope adds fields (id,
 * occurredAt, user) and re-serializing can lengthen data (`1e9` becomes
 * `1000000000`): refused here, since every consumer would dead-letter it.
 */
export class EventTooLargeError extends SobranieError {
  override readonly name = "EventTooLargeError";
  readonly code = "too_large";
  readonly retryable = false;
  constructor(readonly byteLength: number) {
    super(`event of ${byteLength} bytes as published is over ${MAX_ENVELOPE_BYTES}`);
  }
}

const utf8 = new TextEncoder();

/** `encodeEnvelope`, refusing with EventTooLargeError what the broker path would dead-letter as `too_large`. */
export function encodePublishedEnvelope(envelope: Envelope): string {
  const text = encodeEnvelope(envelope);
  // UTF-8 takes at most 3 bytes per UTF-16 unit: short texts need no count.
  if (text.length * 3 <= MAX_ENVELOPE_BYTES) return text;
  const byteLength = utf8.encode(text).byteLength;
  if (byteLength > MAX_ENVELOPE_BYTES) throw new EventTooLargeError(byteLength);
  return text;
}
