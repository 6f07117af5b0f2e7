import * as v from "valibot";
import { USER_ID_PATTERN, USER_ID_RULE } from "./channel.js";

/** One (key, user) entry a node holds: key is a channel name, or "" for "the user is online". */
export interface PresenceEntry {
  readonly key: string;
  readonly user: string;
  readonly info?: unknown;
}

export interface PresenceChange extends PresenceEntry {
  readonly op: "add" | "remove";
}

/** Fields every message carries: who sent it, which incarnation of that node, and its position in the node's stream. */
interface FromNode {
  readonly node: string;
  /** Changes when a node restarts under the same id: receivers drop what they held for the old one. */
  readonly incarnation: string;
  /** Sender's time in ms, for lastSeen and the heartbeat-age gauge. */
  readonly atMs: number;
}

export type PresenceMessage =
  /** Local changes of the sender; `seq` counts deltas per incarnation, from 1, without gaps. */
  | (FromNode & { readonly kind: "delta"; readonly seq: number; readonly changes: readonly PresenceChange[] })
  /** Liveness plus what the sender holds: the last delta seq and an order-free digest of its entries. */
  | (FromNode & {
      readonly kind: "heartbeat";
      readonly seq: number;
      readonly digest: string;
      /** The sender has a settled view of the cluster (informational: publisher election uses ids only). */
      readonly synced: boolean;
    })
  /** Asks `target` (or every node, "*") to send a snapshot. */
  | (FromNode & { readonly kind: "sync"; readonly target: string })
  /** Everything the sender holds, as of delta `seq`. */
  | (FromNode & { readonly kind: "snapshot"; readonly seq: number; readonly entries: readonly PresenceEntry[] })
  /** Graceful stop: remove everything the sender held, now. */
  | (FromNode & { readonly kind: "leaving" });

/**
 * Presence messages between nodes on the presence exchange (JSON). Anyone with
 * access to the exchange can publish there, so every message is validated
 * before the tracker sees it; a bad one is dropped and counted by the caller.
 */
const word = v.pipe(v.string(), v.minLength(1), v.maxLength(256));
const key = v.pipe(v.string(), v.maxLength(256));
const seq = v.pipe(v.number(), v.safeInteger(), v.minValue(0));
const from = { node: word, incarnation: word, atMs: v.pipe(v.number(), v.finite()) };
/** A user id reaches the lastSeen store and `presence.status.<user>` routing keys: the user-id grammar, like the JWT `sub`. */
const user = v.pipe(v.string(), v.regex(USER_ID_PATTERN, USER_ID_RULE));
const entry = { key, user, info: v.optional(v.unknown()) };

const PresenceMessageSchema = v.variant("kind", [
  v.object({
    kind: v.literal("delta"),
    ...from,
    seq,
    changes: v.array(v.object({ op: v.picklist(["add", "remove"]), ...entry })),
  }),
  v.object({ kind: v.literal("heartbeat"), ...from, seq, digest: v.pipe(v.string(), v.maxLength(64)), synced: v.boolean() }),
  v.object({ kind: v.literal("sync"), ...from, target: word }),
  v.object({ kind: v.literal("snapshot"), ...from, seq, entries: v.array(v.object(entry)) }),
  v.object({ kind: v.literal("leaving"), ...from }),
]);

export function encodePresenceMessage(message: PresenceMessage): string {
  return JSON.stringify(message);
}

/** Never throws: undefined for anything that is not a valid presence message. */
export function decodePresenceMessage(text: string): PresenceMessage | undefined {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  const parsed = v.safeParse(PresenceMessageSchema, json);
  return parsed.success ? (parsed.output as PresenceMessage) : undefined;
}
