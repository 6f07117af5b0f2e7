import * as v from "valibot";
import { EVENT_TYPE_PATTERN } from "./channel.js";
import { eventDataMessage, eventDataProblem } from "./event-data.js";

/** Largest event body the broker path accepts (docs/protocol.md §3). */
export const MAX_ENVELOPE_BYTES = 65_536;

/**
 * `occurredAt` as a string: ISO 8601, and a spelling `Date.parse` reads. The
 * ISO grammar alone lets through forms it does not (`+01`, `… -00:00`), and
 * the stores and the delivery-latency measurement read the instant from it.
 */
export const OccurredAtTextSchema = v.pipe(
  v.string(),
  v.isoTimestamp(),
  v.check((text) => !Number.isNaN(Date.parse(text)), "occurredAt must be an ISO 8601 timestamp that Date.parse reads (offset Z, ±hh:mm or ±hhmm, no space before it)"),
);

/**
 * The JSON body backends publish to `sobranie.events` (docs/protocol.md §3).
 * `type` and `data` are required; `id` is advised (used to drop duplicates).
 * `user` is written by the gateway for client publishes, never by a client.
 * `seq` is written by the worker for durable namespaces.
 */
const EnvelopeSchema = v.object({
  id: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(64))),
  type: v.pipe(v.string(), v.regex(EVENT_TYPE_PATTERN, "type must be dot-separated words of [A-Za-z0-9_-]")),
  data: v.unknown(),
  occurredAt: v.optional(OccurredAtTextSchema),
  user: v.optional(v.pipe(v.string(), v.maxLength(128))),
  seq: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
});

export type Envelope = v.InferOutput<typeof EnvelopeSchema> & { id: string };

/** Also the `reason` label of `sobranie_dead_lettered_total`. `too_deep`: data over MAX_DATA_DEPTH levels. */
export type EnvelopeRejection = "too_large" | "not_json" | "invalid_envelope" | "too_deep";

export type DecodedEnvelope =
  | { ok: true; envelope: Envelope; publishedAtMs: number | undefined }
  | { ok: false; reason: EnvelopeRejection; message: string };

export interface EnvelopeProperties {
  /** AMQP `message_id`: the event id when the body carries none. */
  messageId?: string | undefined;
  /** AMQP `timestamp` in milliseconds, when the publisher set one. */
  timestampMs?: number | undefined;
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Decodes a broker message body. Never throws: a body that cannot be used is
 * reported with a reason, for the consumer to dead-letter and count.
 * An event with no id anywhere gets `fallbackId()` so that clients can still
 * tell events apart (such events cannot be de-duplicated).
 */
export function decodeEnvelope(
  body: Uint8Array,
  properties: EnvelopeProperties,
  fallbackId: () => string,
): DecodedEnvelope {
  if (body.byteLength > MAX_ENVELOPE_BYTES) {
    return { ok: false, reason: "too_large", message: `body of ${body.byteLength} bytes is over ${MAX_ENVELOPE_BYTES}` };
  }
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(body));
  } catch (error) {
    return { ok: false, reason: "not_json", message: `body is not UTF-8 JSON: ${(error as Error).message}` };
  }
  const parsed = v.safeParse(EnvelopeSchema, json);
  if (!parsed.success) {
    return { ok: false, reason: "invalid_envelope", message: v.summarize(parsed.issues) };
  }
  const envelope = parsed.output;
  const problem = eventDataProblem(envelope.data);
  if (problem) return { ok: false, reason: problem === "too_deep" ? "too_deep" : "invalid_envelope", message: eventDataMessage(problem) };
  // An empty message_id is no id: the body schema refuses one, so it could not be re-encoded.
  const id = envelope.id ?? (properties.messageId?.slice(0, 64) || fallbackId());
  const occurredMs = envelope.occurredAt === undefined ? undefined : Date.parse(envelope.occurredAt);
  return { ok: true, envelope: { ...envelope, id }, publishedAtMs: properties.timestampMs ?? occurredMs };
}

export function encodeEnvelope(envelope: Envelope): string {
  return JSON.stringify(envelope);
}
