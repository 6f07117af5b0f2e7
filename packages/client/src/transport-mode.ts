import type { ConnectionToken } from "./connection-token.js";
import type { Emitter } from "./emitter.js";
import type { ConnectOptions } from "./options.js";
import type { PendingRequests, ReplyFrame } from "./requests.js";
import type { Subscription, Subscriptions } from "./subscriptions.js";
import type { IncomingFrame, Transport, TransportHandlers } from "./transports.js";
import type { ClientRequest, RealtimeError, TransportKind } from "./types.js";

/** What a mode may use of the client: its shared state, and the one way to reconnect. */
export interface ModeHost {
  readonly options: ConnectOptions;
  readonly events: Emitter;
  readonly subscriptions: Subscriptions;
  readonly requests: PendingRequests;
  readonly token: ConnectionToken;
  /** The current connection's transport; undefined between connections. */
  transport(): Transport | undefined;
  /** True from the current connection's `welcome` to its end. */
  isWelcomed(): boolean;
  /** True once the app called `close()`. */
  isClosed(): boolean;
  /** Ends the current connection and opens a new one at once. */
  restart(): void;
}

/**
 * How the client speaks over one transport. WebSocket (websocket-mode.ts):
 * subscribe frames, requests with refs, heartbeats, tokens refreshed in
 * place. SSE (sse-mode.ts): the channels are in the stream's URL (a change
 * reopens it), replies are matched by position, the stream only receives,
 * and reads go over HTTP. The client holds one mode at a time and calls
 * these instead of asking which transport it has.
 */
export interface TransportMode {
  readonly kind: TransportKind;
  /** Opens a connection with `token`; undefined when there is nothing to open yet (SSE without channels), an `unsupported` error when the runtime lacks the transport. */
  open(token: string, handlers: TransportHandlers): Transport | RealtimeError | undefined;
  /** Every frame of the current connection, before the client handles it. */
  received(frame: IncomingFrame, eventId: string | undefined): void;
  /** The current connection's `welcome` (after the state became `connected`). */
  welcomed(heartbeatMs: number): void;
  /** The app subscribed to a channel not in the table before. */
  subscriptionAdded(sub: Subscription): void;
  /** The app's last handler of `channel` unsubscribed. */
  subscriptionRemoved(channel: string): void;
  /** `channel` left the subscription table, for whatever reason. */
  forget(channel: string): void;
  /** An `ok` or `error` that answers a request: `ref` is the frame's. */
  reply(frame: ReplyFrame, ref: number): void;
  /** A request that needs a reply (`publish`, `presence`, `status`); rejects `closed` after `close()`. */
  request(frame: ClientRequest): Promise<Record<string, unknown>>;
  /** Moves the inbox read mark. */
  read(channel: string, upTo: number): Promise<{ upTo: number }>;
  /** The connection token was refreshed to `token`. */
  tokenRefreshed(token: string): Promise<void> | void;
  /** The connection closed before its `welcome`: true when the client should switch to SSE. */
  closedBeforeWelcome(): boolean;
  /** The current connection is being torn down: stop what the mode runs for it. */
  teardown(): void;
}
