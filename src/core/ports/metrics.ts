import type { ControlCommandName } from "@sobranie/protocol/control";
import type { ErrorCode } from "@sobranie/protocol/codes";

/**
 * What the core counts. Labels are bounded by construction: namespaces come
 * from configuration, reasons and ops from closed unions; never a channel id
 * or a user id. The Prometheus adapter maps these onto docs/protocol.md §8 names.
 */
/** `pusher`: a WebSocket of the Pusher endpoint (counted as a WebSocket too, its closes by Pusher's codes). */
export type Transport = "ws" | "sse" | "pusher";

/** A refused client frame is counted by the error code it was answered with. */
export type FrameRejectReason = ErrorCode;

export type UpgradeRejectReason = "unauthorized" | "revoked" | "too_many_connections" | "capacity" | "draining" | "broker_unavailable";

/** Which HTTP limit refused a request with 429: per user, per client address, failed API keys per address, an API key's own rate. */
export type HttpRateLimitScope = "user" | "source" | "api_key_failures" | "api_key";

export type ServerFrameType = "event" | "join" | "leave" | "members" | "status" | "read";

/**
 * Why a presence message from the bus was dropped: it failed validation, or
 * it names another deployment than this node's (DEPLOYMENT_ID) in its header.
 */
export type PresenceDropReason = "invalid" | "foreign";

/**
 * What became of webhook events (docs/pusher.md, "Webhooks"): `delivered`
 * (the receiver answered 2xx), `retried` (put in a delay queue after a 5xx,
 * 408, 429, timeout or connection failure), `gave_up` (still failing after
 * the retry window: dead-lettered), `refused` (any other answer: dead-lettered
 * at once).
 */
export type WebhookOutcome = "delivered" | "retried" | "gave_up" | "refused";

export interface Metrics {
  connectionOpened(transport: Transport): void;
  connectionClosed(transport: Transport, closeCode: number): void;
  upgradeRejected(reason: UpgradeRejectReason): void;
  frameReceived(op: string): void;
  frameRejected(reason: FrameRejectReason): void;
  /** An HTTP request (API, SSE connect) refused with 429 by a rate limit. */
  httpRateLimited(scope: HttpRateLimitScope): void;
  /** One event handed to `recipients` local sockets; latency from publish to socket write, when known. */
  messagesSent(type: ServerFrameType, namespace: string, recipients: number, latencySeconds: number | undefined): void;
  deadLettered(reason: string): void;
  /** The worker stored an event (or found its id stored before: `duplicate`). */
  eventsPersisted(namespace: string, duplicate: boolean): void;
  /** A gateway dropped a relayed event whose seq it had already delivered on the channel. */
  duplicateDropped(namespace: string): void;
  /** After a broker interruption, `count` stored events of the namespace were delivered from the store (feed repair). */
  eventsRepaired(namespace: string, count: number): void;
  /** Subscribers of one channel were sent a `gap` frame. */
  deliveryGap(namespace: string, reason: "interrupted" | "incomplete"): void;
  /** A gateway dropped an event of a whole-bound namespace (BIND_WHOLE_NAMESPACES) for a channel with no local subscriber. */
  unsubscribedDropped(namespace: string): void;
  clientPublished(namespace: string): void;
  brokerConnected(connected: boolean): void;
  brokerReconnected(): void;
  bindingsActive(count: number): void;
  draining(isDraining: boolean): void;
  /** Presence at a heartbeat: members (channel, user) held here and cluster-wide, online users, known nodes, oldest peer heartbeat. */
  presenceState(state: PresenceState): void;
  /** This node asked a peer for a presence snapshot (missed deltas or a digest mismatch). */
  presenceResync(): void;
  /** A message on the presence bus was dropped before the tracker saw it. */
  presenceMessageDropped(reason: PresenceDropReason): void;
  /** A batch of `users` lastSeen times was written to the store (`ok`) or failed and waits for a retry. */
  lastSeenSaved(users: number, ok: boolean): void;
  /** A lastSeen time was dropped unwritten: too many waited while the store was unreachable. */
  lastSeenDropped(): void;
  /** The outbox relay published and marked `rows` outbox rows. */
  outboxRelayed(rows: number): void;
  /** An outbox batch failed (database or broker away); its rows stay unpublished and are retried. */
  outboxRelayFailed(): void;
  /** A control command (disconnect, unsubscribe, revoke) was applied on this node. */
  controlCommandApplied(command: ControlCommandName): void;
  /** `events` webhook events (of one request) had this outcome. */
  webhookEvents(outcome: WebhookOutcome, events: number): void;
}

export interface PresenceState {
  readonly localMembers: number;
  readonly clusterMembers: number;
  readonly onlineUsers: number;
  readonly nodes: number;
  readonly heartbeatAgeSeconds: number;
}

export const noopMetrics: Metrics = {
  connectionOpened() {},
  connectionClosed() {},
  upgradeRejected() {},
  frameReceived() {},
  frameRejected() {},
  httpRateLimited() {},
  messagesSent() {},
  deadLettered() {},
  eventsPersisted() {},
  duplicateDropped() {},
  eventsRepaired() {},
  deliveryGap() {},
  unsubscribedDropped() {},
  clientPublished() {},
  brokerConnected() {},
  brokerReconnected() {},
  bindingsActive() {},
  draining() {},
  presenceState() {},
  presenceResync() {},
  presenceMessageDropped() {},
  lastSeenSaved() {},
  lastSeenDropped() {},
  outboxRelayed() {},
  outboxRelayFailed() {},
  controlCommandApplied() {},
  webhookEvents() {},
};
