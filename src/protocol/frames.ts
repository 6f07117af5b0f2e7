import * as v from "valibot";
import type { ErrorCode, GapReason, UnsubscribeReason } from "./codes.js";

/**
 * WebSocket protocol v1 (CONTRACT §4). Client frames are validated here with
 * valibot; after `parseClientFrame` the rest of the code trusts the type.
 */
const ref = v.optional(v.pipe(v.number(), v.safeInteger()));
const channel = v.pipe(v.string(), v.maxLength(200));
const seq = v.pipe(v.number(), v.safeInteger(), v.minValue(0));

const ClientFrameSchema = v.variant("op", [
  v.object({ op: v.literal("subscribe"), ref, channel, since: v.optional(seq), presence: v.optional(v.boolean()) }),
  v.object({ op: v.literal("unsubscribe"), ref, channel }),
  v.object({ op: v.literal("publish"), ref, channel, type: v.pipe(v.string(), v.maxLength(200)), data: v.unknown() }),
  v.object({ op: v.literal("presence"), ref, channel }),
  v.object({
    op: v.literal("status"),
    ref,
    users: v.pipe(v.array(v.pipe(v.string(), v.minLength(1), v.maxLength(128))), v.maxLength(100)),
  }),
  v.object({ op: v.literal("read"), ref, channel, upTo: seq }),
  v.object({ op: v.literal("ping"), ref }),
  v.object({ op: v.literal("refresh"), ref, token: v.pipe(v.string(), v.minLength(1), v.maxLength(16_384)) }),
]);

export type ClientFrame = v.InferOutput<typeof ClientFrameSchema>;
export type ClientOp = ClientFrame["op"];

export type ParsedClientFrame =
  | { ok: true; frame: ClientFrame }
  | { ok: false; ref: number | undefined; message: string };

/** Never throws: invalid JSON, an unknown op or a bad field each come back with a message for `error bad_request`. */
export function parseClientFrame(text: string): ParsedClientFrame {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, ref: undefined, message: "frame is not valid JSON" };
  }
  const parsed = v.safeParse(ClientFrameSchema, json);
  if (parsed.success) return { ok: true, frame: parsed.output };
  const maybeRef = typeof json === "object" && json !== null ? (json as { ref?: unknown }).ref : undefined;
  const echoedRef = Number.isSafeInteger(maybeRef) ? (maybeRef as number) : undefined;
  return { ok: false, ref: echoedRef, message: v.summarize(parsed.issues) };
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
