import { deliverAppFrame } from "./app-frames.js";
import { DEFAULT_BACKOFF } from "./backoff.js";
import { ConnectionToken } from "./connection-token.js";
import { Emitter } from "./emitter.js";
import { resolveWebSocket, type ConnectOptions } from "./options.js";
import { afterClose, ReconnectSchedule } from "./reconnect.js";
import { PendingRequests, type ReplyFrame } from "./requests.js";
import { SseMode } from "./sse-mode.js";
import { Subscriptions } from "./subscriptions.js";
import { Timers } from "./timers.js";
import type { ModeHost, TransportMode } from "./transport-mode.js";
import type { IncomingFrame, Transport, TransportHandlers } from "./transports.js";
import { WebSocketMode } from "./websocket-mode.js";
import { RealtimeError, type ClientEvents, type ConnectionState, type PresenceMember, type RealtimeEvent, type SubscribeResult, type TransportKind, type UserStatus } from "./types.js";

/**
 * A connection to the gateway that stays up: it reconnects with exponential
 * backoff and full jitter (or after a `reconnect` frame's `afterMs`),
 * resubscribes with `since` = the last seq seen on durable channels, drops
 * events it already delivered (by seq, and by id), sends heartbeats, and
 * refreshes the token before `exp`.
 *
 * This file is the connection's life (open, welcome, close, reconnect, the
 * switch from WebSocket to SSE) and the public API; what differs between the
 * transports is in the current `TransportMode`.
 */
export class RealtimeClient {
  private readonly events = new Emitter();
  private readonly timers = new Timers();
  private readonly schedule: ReconnectSchedule;
  private readonly subscriptions: Subscriptions;
  private readonly requests: PendingRequests;
  private readonly token: ConnectionToken;
  private readonly host: ModeHost;
  private mode: TransportMode;
  private transport: Transport | undefined;
  private currentState: ConnectionState = "connecting";
  private welcomed = false;
  private closedByUser = false;
  /** Bumped by every open: a superseded open (awaiting its token) gives up. */
  private generation = 0;

  constructor(options: ConnectOptions) {
    this.schedule = new ReconnectSchedule({ ...DEFAULT_BACKOFF, ...options.reconnect }, options.random ?? Math.random);
    this.subscriptions = new Subscriptions({ events: this.events, forgotten: (channel) => this.mode.forget(channel) });
    this.requests = new PendingRequests({ transport: () => this.transport, timeoutMs: options.requestTimeoutMs ?? 15_000 });
    this.token = new ConnectionToken({
      source: options.token,
      refreshBeforeExpMs: options.refreshBeforeExpMs,
      timers: this.timers,
      refreshed: (token) => this.mode.tokenRefreshed(token),
      onError: (error) => this.events.emit("error", error),
    });
    this.host = {
      options,
      events: this.events,
      subscriptions: this.subscriptions,
      requests: this.requests,
      token: this.token,
      transport: () => this.transport,
      isWelcomed: () => this.welcomed,
      isClosed: () => this.closedByUser,
      restart: () => this.restart(),
    };
    const wsAvailable = resolveWebSocket(options) !== undefined;
    const sse = options.transport === "sse" || (options.transport !== "websocket" && !wsAvailable);
    this.mode = sse ? new SseMode(this.host) : new WebSocketMode(this.host);
    void this.open();
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  /** The transport in use (or being connected). */
  get transportKind(): TransportKind {
    return this.mode.kind;
  }

  on<K extends keyof ClientEvents>(name: K, listener: (value: ClientEvents[K]) => void): () => void {
    return this.events.on(name, listener);
  }

  /**
   * Calls `handler` for every event of `channel` (once each, in order).
   * Resolves once the server accepted the subscription; rejects (and forgets
   * the channel) when it refused it.
   */
  subscribe<Data = unknown>(channel: string, handler: (event: RealtimeEvent<Data>) => void, options: { presence?: boolean } = {}): Promise<SubscribeResult> {
    if (this.closedByUser) return Promise.reject(new RealtimeError("closed", "client closed"));
    const { sub, isNew, result } = this.subscriptions.add(channel, handler as (event: RealtimeEvent<any>) => void, options.presence === true);
    if (isNew) this.mode.subscriptionAdded(sub);
    return result;
  }

  /** Stops `handler` (or every handler) of `channel`; the server subscription ends with the last one. */
  unsubscribe(channel: string, handler?: (event: RealtimeEvent<any>) => void): void {
    if (this.subscriptions.remove(channel, handler)) this.mode.subscriptionRemoved(channel);
  }

  /**
   * Publishes a client event (namespaces that allow it). WebSocket only: over
   * SSE it rejects with `unsupported`; publish from your backend instead.
   */
  async publish(channel: string, type: string, data: unknown): Promise<{ id: string }> {
    const ok = await this.mode.request({ op: "publish", channel, type, data });
    return { id: String(ok.id) };
  }

  async presence(channel: string): Promise<PresenceMember[]> {
    const ok = await this.mode.request({ op: "presence", channel });
    return (ok.members as PresenceMember[] | undefined) ?? [];
  }

  async status(users: readonly string[]): Promise<UserStatus[]> {
    const ok = await this.mode.request({ op: "status", users: [...users] });
    return (ok.users as UserStatus[] | undefined) ?? [];
  }

  /** Moves the inbox read mark of `user:<you>`; over SSE through `POST /api/v1/notifications/read`. */
  read(channel: string, upTo: number): Promise<{ upTo: number }> {
    return this.mode.read(channel, upTo);
  }

  /** Closes for good: no reconnect; pending requests reject with `closed`. */
  close(): void {
    if (this.closedByUser) return;
    this.closedByUser = true;
    this.teardown(new RealtimeError("closed", "client closed"));
    this.requests.failWaiting();
    this.subscriptions.closeAll();
    this.setState("closed");
  }

  // ---- connection lifecycle ----

  private async open(): Promise<void> {
    if (this.closedByUser) return;
    const generation = ++this.generation;
    this.setState(this.schedule.firstAttempt && !this.welcomed && !this.token.fetched ? "connecting" : "reconnecting");
    this.welcomed = false;
    let token: string;
    try {
      token = await this.token.current();
    } catch (error) {
      this.events.emit("error", new RealtimeError("unauthorized", "the token provider failed", undefined, { cause: error }));
      return this.scheduleReconnect(false);
    }
    if (this.closedByUser || generation !== this.generation) return;
    let transport: Transport | undefined;
    const handlers: TransportHandlers = {
      frame: (frame, eventId) => {
        if (this.transport === transport) this.handleFrame(frame, eventId);
      },
      closed: (code, reason) => {
        if (this.transport === transport) this.handleClosed(code, reason);
      },
    };
    const opened = this.mode.open(token, handlers);
    if (opened instanceof RealtimeError) return this.fail(opened);
    if (opened === undefined) return;
    this.transport = transport = opened;
  }

  /** Ends the current connection and opens a new one at once (new SSE channel list, new token, server's `reconnect`). */
  private restart(): void {
    if (this.closedByUser) return;
    const old = this.transport;
    this.teardown(new RealtimeError("connection_lost", "reconnecting"));
    old?.close();
    void this.open();
  }

  private handleFrame(frame: IncomingFrame, eventId: string | undefined): void {
    this.mode.received(frame, eventId);
    switch (frame.op) {
      case "welcome":
        return this.welcome(frame.heartbeatMs);
      case "ok":
      case "error":
        return this.reply(frame);
      case "reconnect":
        this.schedule.serverAsked(frame.afterMs);
        // Leave at the server's chosen moment (spread across clients) rather than all at the drain's close.
        return this.timers.later(() => this.restart(), frame.afterMs);
      case "pong":
      case "close":
        return;
      default:
        return deliverAppFrame(frame, this.subscriptions, this.events);
    }
  }

  private reply(frame: ReplyFrame): void {
    if (frame.ref === undefined) {
      if (frame.op === "error") this.events.emit("error", new RealtimeError(frame.code, frame.message, frame.retryAfterMs));
      return;
    }
    this.mode.reply(frame, frame.ref);
  }

  private welcome(heartbeatMs: number): void {
    this.welcomed = true;
    this.schedule.connected();
    this.setState("connected");
    this.token.armRefresh();
    this.mode.welcomed(heartbeatMs);
  }

  private handleClosed(code: number, reason: string): void {
    const hadWelcome = this.welcomed;
    this.transport = undefined;
    this.teardown(new RealtimeError("connection_lost", `connection closed (${code} ${reason})`));
    if (this.closedByUser) return;
    const next = afterClose(code, reason, this.token.renewable);
    if (next.kind === "final") return this.fail(next.error);
    if (next.freshToken) this.token.markStale();
    if (!hadWelcome && this.mode.closedBeforeWelcome()) {
      this.mode = new SseMode(this.host);
      this.schedule.restart();
      this.subscriptions.unconfirmAll();
      return void this.open();
    }
    this.scheduleReconnect(next.slowest);
  }

  private scheduleReconnect(slowest: boolean): void {
    if (this.closedByUser) return;
    this.setState("reconnecting");
    this.timers.later(() => void this.open(), this.schedule.nextDelayMs(slowest));
  }

  /** Cancels timers, rejects requests in flight, and marks subscriptions for resubscription. */
  private teardown(error: RealtimeError): void {
    this.timers.cancelAll();
    this.mode.teardown();
    this.requests.failInFlight(error);
    this.welcomed = false;
    this.subscriptions.unconfirmAll();
    const transport = this.transport;
    this.transport = undefined;
    if (transport && this.closedByUser) transport.close();
  }

  private fail(error: RealtimeError): void {
    this.events.emit("error", error);
    this.close();
  }

  private setState(state: ConnectionState): void {
    if (this.currentState === state) return;
    this.currentState = state;
    this.events.emit("state", { state, transport: this.mode.kind });
  }
}
