import * as v from "valibot";
import { EVENT_TYPE_PATTERN, parseChannel, RESERVED_NAMESPACES, routingKey } from "@sobranie/protocol/channel";
import { encodeEnvelope, MAX_ENVELOPE_BYTES, OccurredAtTextSchema } from "@sobranie/protocol/envelope";
import { eventDataMessage, eventDataProblem } from "@sobranie/protocol/event-data";
import { PublishValidationCode, PublishValidationError } from "./errors.js";

/** Per-event options of `publish`. */
export interface PublishOptions {
  /** Event id (≤ 64 chars), used downstream to drop duplicates. Default: a fresh UUIDv7 (time-ordered). */
  readonly id?: string;
  /** When the fact happened (Date or ISO 8601 string). Default: the publish time. */
  readonly occurredAt?: Date | string;
}

/** An event checked against docs/protocol.md §3 and encoded, ready for the wire. */
export interface OutgoingEvent {
  readonly id: string;
  /** `namespace.id.event-type` on `sobranie.events`. */
  readonly routingKey: string;
  /** The JSON envelope `{id, type, data, occurredAt}`, at most MAX_ENVELOPE_BYTES. */
  readonly body: Buffer;
  /** Publish time in ms; goes into the AMQP timestamp (seconds) and the ms header. */
  readonly timestampMs: number;
  /** A control command for `sobranie.control` (routing key = the command), not an event. */
  readonly control?: boolean;
}

const ChannelSchema = v.pipe(
  v.string("channel must be a string"),
  v.check((text) => parseChannel(text) !== undefined, "channel must be namespace:id (namespace [a-z][a-z0-9_-]{0,31}, id [A-Za-z0-9_-]{1,128})"),
);
const TypeSchema = v.pipe(
  v.string("type must be a string"),
  v.regex(EVENT_TYPE_PATTERN, "type must be 1–8 dot-separated words of [A-Za-z0-9_-], no wildcards"),
);
const IdSchema = v.pipe(v.string("id must be a string"), v.minLength(1, "id must not be empty"), v.maxLength(64, "id must be at most 64 characters"));
const OccurredAtSchema = v.union(
  [
    v.pipe(v.date(), v.transform((date) => date.toISOString())),
    OccurredAtTextSchema,
  ],
  "occurredAt must be a valid Date or an ISO 8601 timestamp",
);

function validate<TSchema extends v.GenericSchema>(
  schema: TSchema,
  value: unknown,
  code: PublishValidationCode,
): v.InferOutput<TSchema> {
  const parsed = v.safeParse(schema, value);
  if (parsed.success) return parsed.output;
  throw new PublishValidationError(code, v.summarize(parsed.issues), { cause: new v.ValiError(parsed.issues) });
}

/**
 * Validates and encodes one event. Throws `PublishValidationError` (never
 * anything else) for input that the gateway would dead-letter or that could
 * not be routed, so a bad event fails in the caller, not in `sobranie.dead`.
 */
export function buildEvent(
  channelName: string,
  type: string,
  data: unknown,
  options: PublishOptions,
  nowMs: number,
  newId: () => string,
): OutgoingEvent {
  const channel = parseChannel(validate(ChannelSchema, channelName, PublishValidationCode.InvalidChannel))!;
  if (RESERVED_NAMESPACES.includes(channel.namespace)) {
    throw new PublishValidationError(
      PublishValidationCode.ReservedNamespace,
      `namespace "${channel.namespace}" is reserved for the gateway (${RESERVED_NAMESPACES.join(", ")})`,
    );
  }
  const validType = validate(TypeSchema, type, PublishValidationCode.InvalidType);
  const id = options.id === undefined ? newId() : validate(IdSchema, options.id, PublishValidationCode.InvalidId);
  const occurredAt =
    options.occurredAt === undefined
      ? new Date(nowMs).toISOString()
      : validate(OccurredAtSchema, options.occurredAt, PublishValidationCode.InvalidOccurredAt);
  if (data === undefined) {
    throw new PublishValidationError(PublishValidationCode.MissingData, "data is required (use null for an event without data)");
  }
  if (typeof data === "function" || typeof data === "symbol") {
    throw new PublishValidationError(PublishValidationCode.NotSerializable, `data of type ${typeof data} cannot be sent as JSON`);
  }
  let json: string;
  try {
    json = encodeEnvelope({ id, type: validType, data, occurredAt });
  } catch (error) {
    // Serializing recurses per level: data nested thousands deep overflows the stack before any other check.
    if (error instanceof RangeError && eventDataProblem(data) === "too_deep") throw tooDeep();
    throw new PublishValidationError(PublishValidationCode.NotSerializable, `data cannot be sent as JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const body = Buffer.from(json, "utf8");
  if (body.byteLength > MAX_ENVELOPE_BYTES) {
    throw new PublishValidationError(
      PublishValidationCode.TooLarge,
      `event body of ${body.byteLength} bytes is over the ${MAX_ENVELOPE_BYTES}-byte limit`,
    );
  }
  // Checked on the JSON as sent (toJSON may change the shape), exactly as the gateway will; at most MAX_ENVELOPE_BYTES to read.
  if (eventDataProblem((JSON.parse(json) as { data: unknown }).data) === "too_deep") throw tooDeep();
  return { id, routingKey: routingKey(channel, validType), body, timestampMs: nowMs };
}

function tooDeep(): PublishValidationError {
  return new PublishValidationError(PublishValidationCode.TooDeep, eventDataMessage("too_deep"));
}
