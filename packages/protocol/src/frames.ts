import * as v from "valibot";
import { USER_ID_PATTERN, USER_ID_RULE } from "./channel.js";
import type { ErrorCode, GapReason, UnsubscribeReason } from "./codes.js";
import { eventDataMessage, eventDataProblem } from "./event-data.js";

/**
 * WebSocket protocol v1 (docs/protocol.md §4). Client frames are validated here with
 * valibot; after `parseClientFrame` the rest of the code trusts the type.
 */
const ref = v.optional(v.pipe(v.number(), v.safeInteger()));
const channel = v.pipe(v.string(), v.maxLength(200));
const seq = v.pipe(v.number(), v.safeInteger(), v.minValue(0));
const token = v.pipe(v.string(), v.minLength(1), v.maxLength(16_384));
/** An event's data: any JSON within MAX_DATA_DEPTH levels whose numbers JSON can carry (shared with the HTTP publish body). */
export const EventDataSchema = v.pipe(
  v.unknown(),
  v.rawCheck(({ dataset, addIssue }) => {
    const problem = dataset.typed ? eventDataProblem(dataset.value) : undefined;
    if (problem) addIssue({ message: eventDataMessage(problem) });
  }),
);

const ClientFrameSchema = v.variant("op", [
  // `token`: the channel's subscription token, for namespaces with subscribe "token" (docs/protocol.md §10).
  v.object({ op: v.literal("subscribe"), ref, channel, since: v.optional(seq), presence: v.optional(v.boolean()), token: v.optional(token) }),
  v.object({ op: v.literal("unsubscribe"), ref, channel }),
  v.object({ op: v.literal("publish"), ref, channel, type: v.pipe(v.string(), v.maxLength(200)), data: EventDataSchema }),
  v.object({ op: v.literal("presence"), ref, channel }),
  v.object({
    op: v.literal("status"),
    ref,
    // A bad entry is named by its position (`at users.3`), never echoed: it may hold any bytes.
    users: v.pipe(v.array(v.pipe(v.string(), v.regex(USER_ID_PATTERN, USER_ID_RULE))), v.maxLength(100)),
  }),
  v.object({ op: v.literal("read"), ref, channel, upTo: seq }),
  v.object({ op: v.literal("ping"), ref }),
  // Without `channel`: a new connection token. With it: a new subscription token for that subscribed channel.
  v.object({ op: v.literal("refresh"), ref, token, channel: v.optional(channel) }),
]);

export type ClientFrame = v.InferOutput<typeof ClientFrameSchema>;
export type ClientOp = ClientFrame["op"];
/** The client frame of one op, as its handler receives it. */
export type ClientFrameOf<Op extends ClientOp> = Extract<ClientFrame, { op: Op }>;

export type ParsedClientFrame =
  | { ok: true; frame: ClientFrame }
  | { ok: false; ref: number | undefined; message: string };

/**
 * A client frame's JSON before validation, with the `ref` its reply echoes
 * (when the frame is a JSON object whose `ref` is a safe integer). What a
 * refusal that comes before validation (a rate limit, a size limit) needs.
 */
export type ReadClientFrame =
  | { ok: true; json: unknown; ref: number | undefined }
  | { ok: false; ref: undefined; message: string };

/** Never throws; JSON.parse is iterative, so no nesting makes it overflow the stack. */
export function readClientFrame(text: string): ReadClientFrame {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, ref: undefined, message: "frame is not valid JSON" };
  }
  const maybeRef = typeof json === "object" && json !== null ? (json as { ref?: unknown }).ref : undefined;
  return { ok: true, json, ref: Number.isSafeInteger(maybeRef) ? (maybeRef as number) : undefined };
}

/** Never throws: an unknown op or a bad field comes back with a message for `error bad_request`. */
export function validateClientFrame(read: { json: unknown; ref: number | undefined }): ParsedClientFrame {
  const parsed = v.safeParse(ClientFrameSchema, read.json);
  if (parsed.success) return { ok: true, frame: parsed.output };
  return { ok: false, ref: read.ref, message: v.summarize(parsed.issues) };
}

/** `readClientFrame` then `validateClientFrame`: invalid JSON, an unknown op or a bad field each come back with a message. */
export function parseClientFrame(text: string): ParsedClientFrame {
  const read = readClientFrame(text);
  return read.ok ? validateClientFrame(read) : read;
}

export interface PresenceMember {
  user: string;
  info?: unknown;
}

export interface UserStatus {
  user: string;
  online: boolean;
  lastSeen?: string | null;
}

export type ServerFrame =
  | { op: "welcome"; session: string; node: string; heartbeatMs: number; ttlMs: number; maxFrameBytes: number }
  | ({ op: "ok"; ref?: number } & Record<string, unknown>)
  | { op: "error"; ref?: number; code: ErrorCode; message: string; retryAfterMs?: number }
  | { op: "event"; channel: string; id: string; seq?: number; type: string; data: unknown; ts: string }
  | { op: "join" | "leave"; channel: string; user: string; info?: unknown }
  /** Membership changed by more users in one flush than the channel names (PRESENCE_FANOUT_PER_SEC, fewer in rooms over PRESENCE_FANOUT_DELIVERIES_PER_SEC): counts, not names (ask `presence` for the list). */
  | { op: "members"; channel: string; count: number; joined: number; left: number }
  | { op: "status"; user: string; online: boolean; lastSeen?: string | null }
  | { op: "read"; channel: string; upTo: number }
  | { op: "pong"; ref?: number }
  | { op: "reconnect"; afterMs: number; reason: string }
  /** Events of `channel` may be missing before this point (see GapReason). */
  | { op: "gap"; channel: string; reason: GapReason }
  /** The server ended this subscription (see UnsubscribeReason); no more events of `channel` follow. */
  | { op: "unsubscribed"; channel: string; reason: UnsubscribeReason };

export type EventFrame = Extract<ServerFrame, { op: "event" }>;

export function encodeServerFrame(frame: ServerFrame): string {
  return JSON.stringify(frame);
}
