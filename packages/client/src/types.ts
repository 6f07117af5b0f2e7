import type { GapReason, UnsubscribeReason } from "@sobranie/protocol/codes";
import type { PresenceMember, ServerFrame, UserStatus } from "@sobranie/protocol/frames";

/** Wire frames (docs/protocol.md §4), shared with the server as types only: nothing of the server is bundled. */
export type { PresenceMember, ServerFrame, UserStatus };
export type ClientRequest = { op: string; ref?: number } & Record<string, unknown>;

/** An event as a subscriber's handler gets it. `seq` is set on durable channels. */
export interface RealtimeEvent<Data = unknown> {
  readonly channel: string;
  readonly id: string;
  readonly seq?: number;
  readonly type: string;
  readonly data: Data;
  readonly ts: string;
}

export type ConnectionState = "connecting" | "connected" | "reconnecting" | "closed";

export type TransportKind = "websocket" | "sse";

/** What `client.on(name, listener)` delivers, by name. */
export interface ClientEvents {
  /** Connection state changes; `transport` is the one in use (or about to be). */
  state: { state: ConnectionState; transport: TransportKind };
  /** Every event of every subscribed channel, after de-duplication. */
  event: RealtimeEvent;
  join: { channel: string; user: string; info?: unknown };
  leave: { channel: string; user: string };
  /** More users joined or left at once than the server itemizes: the member count now, not the names (call `presence()` for them). */
  members: { channel: string; count: number; joined: number; left: number };
  status: UserStatus;
  /** The user's inbox read mark moved (on any of their connections). */
  read: { channel: string; upTo: number };
  /**
   * Events of a channel may be missing; refetch what you show from it.
   * `incomplete`: a durable channel's history could not return everything
   * missed (after a reconnect, `missed` is how many it did return).
   * `interrupted`: the gateway's broker feed was interrupted and the channel
   * is not durable, so nothing can replay it.
   */
  gap: { channel: string; reason: GapReason; missed?: number };
  /**
   * The server ended a subscription: `revoked` (the backend removed you from
   * the channel, or revoked its subscription token), `forbidden` (a refreshed
   * token no longer allows it), `expired` (its subscription token expired
   * without a refresh: `getSubscriptionToken` failed or was refused). The
   * client has dropped the subscription and does not resubscribe; subscribe
   * again only when the app knows access is back.
   */
  unsubscribed: { channel: string; reason: UnsubscribeReason };
  /** Something went wrong that the client handles itself (it reconnects); for logging. */
  error: RealtimeError;
}

/** A refused request or a failed connection. `code` is the server's error code, or `connection_lost`/`unsupported`/`closed`. */
export class RealtimeError extends Error {
  override readonly name = "RealtimeError";
  constructor(
    readonly code: string,
    message: string,
    readonly retryAfterMs?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface SubscribeResult {
  /** False when the server could not return everything missed since the last event seen. */
  readonly recovered: boolean;
  readonly missed: number;
}
