import { DEFAULT_BACKOFF, backoffDelayMs, type BackoffOptions } from "./backoff.js";
import { ChannelCursor } from "./dedupe.js";
import { tokenExpiryMs, type TokenSource } from "./token.js";
import { ClientCloseCode, CloseCode } from "../protocol/codes.js";
import { SubscriptionTokens, type SubscriptionTokenSource } from "./subscription-tokens.js";
import { openSse, openWebSocket, type FetchLike, type IncomingFrame, type Transport, type WebSocketFactory } from "./transports.js";
import {
  RealtimeError,
  type ClientEvents,
  type ClientRequest,
  type ConnectionState,
  type PresenceMember,
  type RealtimeEvent,
  type SubscribeResult,
  type TransportKind,
  type UserStatus,
} from "./types.js";

/** Runtimes fire a timer of more than 2^31−1 ms (24.8 days) at once; longer waits are made of steps. */
const MAX_TIMER_MS = 2_147_483_647;

export interface ConnectOptions {
  /** The gateway's base URL: `https://host` (or `wss://host`); `/realtime/ws` and `/realtime/events` are appended. */
  readonly url: string;
  /** A token, or a function returning a fresh one: called at connect, before `exp` (refresh) and after close 4001. */
  readonly token: TokenSource;
  /** `auto` (default): WebSocket, falling back to SSE where WebSocket is missing or keeps failing before `welcome`. */
  readonly transport?: "auto" | TransportKind;
  readonly reconnect?: Partial<BackoffOptions>;
  /**
   * For namespaces whose subscribe is "token" (docs/protocol.md §10):
   * when given, it is called for every channel at each subscribe (after a
   * reconnect too) and before the channel's token expires; resolve
   * null/undefined for a channel that needs no token. WebSocket only.
   */
  readonly getSubscriptionToken?: SubscriptionTokenSource;
  /** Refresh this long before `exp` (the connection token's and each subscription token's); default a tenth of the token's lifetime, at most 60 s. */
  readonly refreshBeforeExpMs?: number;
  /** A request without a reply in this time is rejected (default 15 s). */
  readonly requestTimeoutMs?: number;
  /** WebSocket attempts that fail before `welcome` before `auto` switches to SSE (default 2). */
  readonly fallbackAfterFailures?: number;
  /** Implementations to use instead of the globals (React Native, tests). */
  readonly WebSocket?: WebSocketFactory;
  readonly fetch?: FetchLike;
  /** [0, 1): the jitter source. */
  readonly random?: () => number;
}

type Handler = (event: RealtimeEvent<any>) => void;

interface Subscription {
  readonly channel: string;
  readonly handlers: Set<Handler>;
  readonly presence: boolean;
  readonly cursor: ChannelCursor;
  confirmed: SubscribeResult | undefined;
  waiters: Array<{ resolve(result: SubscribeResult): void; reject(error: RealtimeError): void }>;
}

interface Pending {
  resolve(frame: Record<string, unknown>): void;
  reject(error: RealtimeError): void;
  timer: ReturnType<typeof setTimeout>;
}

/** Subscription errors after which the channel is dropped instead of retried on the next connection. */
const PERMANENT_ERRORS = new Set(["bad_request", "forbidden", "not_found", "limit_exceeded"]);

/**
 * A connection to the gateway that stays up: it reconnects with exponential
 * backoff and full jitter (or after a `reconnect` frame's `afterMs`),
 * resubscribes with `since` = the last seq seen on durable channels, drops
 * events it already delivered (by seq, and by id), sends heartbeats, and
 * refreshes the token before `exp`.
 */
export class RealtimeClient {
  private readonly options: ConnectOptions;
  private readonly backoff: BackoffOptions;
  private readonly random: () => number;
  private readonly subs = new Map<string, Subscription>();
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Map<keyof ClientEvents, Set<(value: never) => void>>();
  private connectedWaiters: Array<{ resolve(): void; reject(error: RealtimeError): void }> = [];
  private kind: TransportKind;
  private transport: Transport | undefined;
  private currentState: ConnectionState = "connecting";
  private token: string | undefined;
  private needFreshToken = false;
  private attempt = 0;
  private failuresBeforeWelcome = 0;
  private welcomed = false;
  private everWelcomed = false;
  private closedByUser = false;
  private nextRef = 0;
  private lastFrameAt = 0;
  private lastEventId: string | undefined;
  /** SSE: the channel each subscribe ref (position from 1) of the current stream stands for. */
  private sseChannels: string[] = [];
  private serverReconnectAfterMs: number | undefined;
  private timers: Array<ReturnType<typeof setTimeout>> = [];
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  /** Bumped by every open: a superseded open (awaiting its token) gives up. */
  private generation = 0;
  private readonly subscriptionTokens: SubscriptionTokens | undefined;

  constructor(options: ConnectOptions) {
    this.options = options;
    this.backoff = { ...DEFAULT_BACKOFF, ...options.reconnect };
    this.random = options.random ?? Math.random;
    const source = options.getSubscriptionToken;
    this.subscriptionTokens =
      source === undefined
        ? undefined
        : new SubscriptionTokens({
            source,
            refreshBeforeExpMs: options.refreshBeforeExpMs,
            sendRefresh: (channel, token) => this.send({ op: "refresh", channel, token }),
            onError: (error) => this.emit("error", error),
          });
    const wsAvailable = this.webSocketFactory() !== undefined;
    this.kind = options.transport === "sse" || (options.transport !== "websocket" && !wsAvailable) ? "sse" : "websocket";
    void this.open();
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  /** The transport in use (or being connected). */
  get transportKind(): TransportKind {
    return this.kind;
  }

  on<K extends keyof ClientEvents>(name: K, listener: (value: ClientEvents[K]) => void): () => void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(listener as (value: never) => void);
    return () => set.delete(listener as (value: never) => void);
  }

  /**
   * Calls `handler` for every event of `channel` (once each, in order).
   * Resolves once the server accepted the subscription; rejects (and forgets
   * the channel) when it refused it.
   */
  subscribe<Data = unknown>(channel: string, handler: (event: RealtimeEvent<Data>) => void, options: { presence?: boolean } = {}): Promise<SubscribeResult> {
    if (this.closedByUser) return Promise.reject(new RealtimeError("closed", "client closed"));
    let sub = this.subs.get(channel);
    const isNew = !sub;
    if (!sub) {
      sub = { channel, handlers: new Set(), presence: options.presence === true, cursor: new ChannelCursor(), confirmed: undefined, waiters: [] };
      this.subs.set(channel, sub);
    }
    sub.handlers.add(handler as Handler);
    if (sub.confirmed) return Promise.resolve(sub.confirmed);
    const subscription = sub;
    const result = new Promise<SubscribeResult>((resolve, reject) => subscription.waiters.push({ resolve, reject }));
    if (isNew) {
      if (this.kind === "sse") this.restart();
      else if (this.welcomed) this.sendSubscribe(subscription);
    }
    return result;
  }

  /** Stops `handler` (or every handler) of `channel`; the server subscription ends with the last one. */
  unsubscribe(channel: string, handler?: (event: RealtimeEvent<any>) => void): void {
    const sub = this.subs.get(channel);
    if (!sub) return;
    if (handler) sub.handlers.delete(handler);
    if (handler && sub.handlers.size > 0) return;
    this.subs.delete(channel);
    this.subscriptionTokens?.forget(channel);
    for (const waiter of sub.waiters) waiter.reject(new RealtimeError("closed", `unsubscribed from ${channel}`));
    if (this.kind === "sse") return this.restart();
    if (this.welcomed) this.request({ op: "unsubscribe", channel }).catch(() => {});
  }

  /**
   * Publishes a client event (namespaces that allow it). WebSocket only: over
   * SSE it rejects with `unsupported`; publish from your backend instead.
   */
  async publish(channel: string, type: string, data: unknown): Promise<{ id: string }> {
    const ok = await this.request({ op: "publish", channel, type, data });
    return { id: String(ok.id) };
  }

  async presence(channel: string): Promise<PresenceMember[]> {
    const ok = await this.request({ op: "presence", channel });
    return (ok.members as PresenceMember[] | undefined) ?? [];
  }

  async status(users: readonly string[]): Promise<UserStatus[]> {
    const ok = await this.request({ op: "status", users: [...users] });
    return (ok.users as UserStatus[] | undefined) ?? [];
  }

  /** Moves the inbox read mark of `user:<you>`; over SSE through `POST /api/v1/notifications/read`. */
  async read(channel: string, upTo: number): Promise<{ upTo: number }> {
    if (this.kind === "sse") return this.readOverHttp(upTo);
    const ok = await this.request({ op: "read", channel, upTo });
    return { upTo: Number(ok.upTo) };
  }

  /** Closes for good: no reconnect; pending requests reject with `closed`. */
  close(): void {
    if (this.closedByUser) return;
    this.closedByUser = true;
    this.teardown(new RealtimeError("closed", "client closed"));
    for (const waiter of this.connectedWaiters) waiter.reject(new RealtimeError("closed", "client closed"));
    this.connectedWaiters = [];
    for (const sub of this.subs.values()) for (const waiter of sub.waiters) waiter.reject(new RealtimeError("closed", "client closed"));
    this.subs.clear();
    this.setState("closed");
  }

  // ---- connection lifecycle ----

  private async open(): Promise<void> {
    if (this.closedByUser) return;
    const generation = ++this.generation;
    this.setState(this.attempt === 0 && !this.welcomed && this.token === undefined ? "connecting" : "reconnecting");
    this.welcomed = false;
    let token: string;
    try {
      token = await this.currentToken();
    } catch (error) {
      this.emit("error", new RealtimeError("unauthorized", "the token provider failed", undefined, { cause: error }));
      return this.scheduleReconnect(undefined);
    }
    if (this.closedByUser || generation !== this.generation) return;
    const handlers = {
      frame: (frame: IncomingFrame, eventId: string | undefined) => {
        if (this.transport === transport) this.handleFrame(frame, eventId);
      },
      closed: (code: number, reason: string) => {
        if (this.transport === transport) this.handleClosed(code, reason);
      },
    };
    let transport: Transport;
    if (this.kind === "websocket") {
      const factory = this.webSocketFactory();
      if (!factory) return this.fail(new RealtimeError("unsupported", "no WebSocket implementation in this runtime"));
      transport = openWebSocket(factory, `${this.baseUrl("ws")}/realtime/ws?token=${encodeURIComponent(token)}`, handlers);
    } else {
      this.sseChannels = [...this.subs.keys()];
      // A stream needs channels: with none there is nothing to receive until the first subscribe.
      if (this.sseChannels.length === 0) return;
      const fetcher = this.options.fetch ?? (globalThis as { fetch?: FetchLike }).fetch;
      if (!fetcher) return this.fail(new RealtimeError("unsupported", "neither WebSocket nor fetch exists in this runtime"));
      const url = `${this.baseUrl("http")}/realtime/events?channels=${encodeURIComponent(this.sseChannels.join(","))}`;
      transport = openSse(fetcher.bind(globalThis), url, token, this.lastEventId, handlers);
    }
    this.transport = transport;
    this.lastFrameAt = Date.now();
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
    this.lastFrameAt = Date.now();
    switch (frame.op) {
      case "welcome":
        return this.welcome(frame.heartbeatMs);
      case "ok":
      case "error":
        return this.reply(frame);
      case "event": {
        if (eventId !== undefined) this.lastEventId = eventId;
        const sub = this.subs.get(frame.channel);
        if (!sub || !sub.cursor.accept(frame.id, frame.seq)) return;
        const event: RealtimeEvent = { channel: frame.channel, id: frame.id, type: frame.type, data: frame.data, ts: frame.ts, ...(frame.seq === undefined ? {} : { seq: frame.seq }) };
        for (const handler of sub.handlers) handler(event);
        return this.emit("event", event);
      }
      case "join":
        return this.emit(frame.op, { channel: frame.channel, user: frame.user, info: frame.info });
      case "leave":
        return this.emit("leave", { channel: frame.channel, user: frame.user });
      case "members":
        return this.emit("members", { channel: frame.channel, count: frame.count, joined: frame.joined, left: frame.left });
      case "status":
        return this.emit("status", { user: frame.user, online: frame.online, ...(frame.lastSeen === undefined ? {} : { lastSeen: frame.lastSeen }) });
      case "read":
        return this.emit("read", { channel: frame.channel, upTo: frame.upTo });
      case "gap":
        if (this.subs.has(frame.channel)) this.emit("gap", { channel: frame.channel, reason: frame.reason });
        return;
      case "unsubscribed":
        return this.droppedByServer(frame.channel, frame.reason);
      case "reconnect":
        this.serverReconnectAfterMs = frame.afterMs;
        // Leave at the server's chosen moment (spread across clients) rather than all at the drain's close.
        return this.later(() => this.restart(), frame.afterMs);
      case "pong":
      case "close":
        return;
      default: {
        const unreachable: never = frame;
        return unreachable;
      }
    }
  }

  /** The server ended a subscription: forget it (no resubscribe, not even after a reconnect) and say why. */
  private droppedByServer(channel: string, reason: "revoked" | "forbidden" | "expired"): void {
    const sub = this.subs.get(channel);
    if (!sub) return;
    this.subs.delete(channel);
    this.subscriptionTokens?.forget(channel);
    for (const waiter of sub.waiters) waiter.reject(new RealtimeError(reason, `the server ended the subscription to ${channel} (${reason})`));
    this.emit("unsubscribed", { channel, reason });
  }

  private welcome(heartbeatMs: number): void {
    this.welcomed = true;
    this.everWelcomed = true;
    this.attempt = 0;
    this.failuresBeforeWelcome = 0;
    this.serverReconnectAfterMs = undefined;
    this.setState("connected");
    this.armRefresh();
    if (this.kind === "websocket") {
      this.startHeartbeat(heartbeatMs);
      for (const sub of this.subs.values()) this.sendSubscribe(sub);
      const waiters = this.connectedWaiters;
      this.connectedWaiters = [];
      for (const waiter of waiters) waiter.resolve();
    }
  }

  private handleClosed(code: number, reason: string): void {
    const hadWelcome = this.welcomed;
    this.transport = undefined;
    this.teardown(new RealtimeError("connection_lost", `connection closed (${code} ${reason})`));
    if (this.closedByUser) return;
    if (code === ClientCloseCode.Refused) return this.fail(new RealtimeError("bad_request", reason));
    if (code === CloseCode.Revoked) return this.fail(new RealtimeError("revoked", `the server ended this user's access: ${reason}`));
    if (code === CloseCode.TokenExpired) {
      if (typeof this.options.token === "string") return this.fail(new RealtimeError("unauthorized", "token expired or rejected, and no token provider to get a new one"));
      this.needFreshToken = true;
    }
    if (this.kind === "websocket" && !hadWelcome) {
      this.failuresBeforeWelcome += 1;
      // Only a WebSocket that never worked means a network that breaks WebSockets; a gateway restart does not.
      const canFallBack =
        (this.options.transport ?? "auto") === "auto" && !this.everWelcomed && (this.options.fetch ?? (globalThis as { fetch?: unknown }).fetch) !== undefined;
      if (canFallBack && this.failuresBeforeWelcome >= (this.options.fallbackAfterFailures ?? 2)) {
        this.kind = "sse";
        this.attempt = 0;
        this.unconfirmAll();
        return void this.open();
      }
    }
    this.scheduleReconnect(code === CloseCode.RateLimitAbused ? this.backoff.maxDelayMs : undefined);
  }

  private scheduleReconnect(atLeastMs: number | undefined): void {
    if (this.closedByUser) return;
    this.setState("reconnecting");
    const delay = Math.max(this.serverReconnectAfterMs ?? backoffDelayMs(this.attempt, this.backoff, this.random), atLeastMs ?? 0);
    this.serverReconnectAfterMs = undefined;
    this.attempt += 1;
    this.later(() => void this.open(), delay);
  }

  /** Cancels timers, rejects requests in flight, and marks subscriptions for resubscription. */
  private teardown(error: RealtimeError): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers = [];
    this.subscriptionTokens?.clear();
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const request of pending) {
      clearTimeout(request.timer);
      request.reject(error);
    }
    this.welcomed = false;
    this.unconfirmAll();
    const transport = this.transport;
    this.transport = undefined;
    if (transport && this.closedByUser) transport.close();
  }

  private unconfirmAll(): void {
    for (const sub of this.subs.values()) sub.confirmed = undefined;
  }

  private fail(error: RealtimeError): void {
    this.emit("error", error);
    this.close();
  }

  // ---- requests ----

  private async request(frame: ClientRequest): Promise<Record<string, unknown>> {
    if (this.closedByUser) throw new RealtimeError("closed", "client closed");
    if (this.kind === "sse") throw new RealtimeError("unsupported", `${frame.op} needs the WebSocket transport (SSE only receives; publish from a backend through the HTTP API)`);
    if (!this.welcomed) await new Promise<void>((resolve, reject) => this.connectedWaiters.push({ resolve, reject }));
    return this.send(frame);
  }

  private send(frame: ClientRequest): Promise<Record<string, unknown>> {
    const ref = ++this.nextRef;
    return new Promise((resolve, reject) => {
      if (!this.transport?.send({ ...frame, ref })) return reject(new RealtimeError("connection_lost", "not connected"));
      const timer = setTimeout(() => {
        this.pending.delete(ref);
        reject(new RealtimeError("timeout", `no reply to ${frame.op} within the request timeout`));
      }, this.options.requestTimeoutMs ?? 15_000);
      this.pending.set(ref, { resolve, reject, timer });
    });
  }

  private reply(frame: Extract<IncomingFrame, { op: "ok" | "error" }>): void {
    if (frame.ref === undefined) {
      if (frame.op === "error") this.emit("error", new RealtimeError(frame.code, frame.message, frame.retryAfterMs));
      return;
    }
    if (this.kind === "sse") return this.sseSubscribeReply(frame);
    const request = this.pending.get(frame.ref);
    if (!request) return;
    this.pending.delete(frame.ref);
    clearTimeout(request.timer);
    if (frame.op === "ok") request.resolve(frame);
    else request.reject(new RealtimeError(frame.code, frame.message, frame.retryAfterMs));
  }

  /** With `getSubscriptionToken`, the channel's token is asked for first; a reply for a connection since replaced is ignored (its welcome resubscribes). */
  private sendSubscribe(sub: Subscription): void {
    const tokens = this.subscriptionTokens;
    if (tokens === undefined) return this.sendSubscribeFrame(sub, undefined);
    const transport = this.transport;
    tokens.forSubscribe(sub.channel).then(
      (token) => {
        if (this.transport === transport && this.welcomed) this.sendSubscribeFrame(sub, token);
      },
      (error: unknown) => {
        if (this.transport !== transport) return;
        this.subscribeRefused(sub, new RealtimeError("unauthorized", `the subscription token provider failed for ${sub.channel}`, undefined, { cause: error }));
      },
    );
  }

  private sendSubscribeFrame(sub: Subscription, token: string | undefined): void {
    if (this.subs.get(sub.channel) !== sub) return;
    const since = sub.cursor.lastSeq;
    const frame: ClientRequest = { op: "subscribe", channel: sub.channel };
    if (since !== undefined) frame.since = since;
    if (sub.presence) frame.presence = true;
    if (token !== undefined) frame.token = token;
    const transport = this.transport;
    this.send(frame).then(
      (ok) => {
        // The reply is read in a later microtask: a connection torn down meanwhile must not arm a refresh.
        if (token !== undefined && this.transport === transport && this.subs.get(sub.channel) === sub) this.subscriptionTokens?.accepted(sub.channel, token);
        this.subscribed(sub, { recovered: ok.recovered === true, missed: Number(ok.missed ?? 0) }, since !== undefined);
      },
      (error: RealtimeError) => this.subscribeRefused(sub, error),
    );
  }

  private sseSubscribeReply(frame: Extract<IncomingFrame, { op: "ok" | "error" }>): void {
    const channel = this.sseChannels[(frame.ref ?? 0) - 1];
    const sub = channel === undefined ? undefined : this.subs.get(channel);
    if (!sub) return;
    if (frame.op === "ok") this.subscribed(sub, { recovered: frame.recovered === true, missed: Number(frame.missed ?? 0) }, this.lastEventId !== undefined);
    else this.subscribeRefused(sub, new RealtimeError(frame.code, frame.message, frame.retryAfterMs));
  }

  private subscribed(sub: Subscription, result: SubscribeResult, askedToRecover: boolean): void {
    if (this.subs.get(sub.channel) !== sub) return;
    sub.confirmed = result;
    if (askedToRecover && !result.recovered) this.emit("gap", { channel: sub.channel, reason: "incomplete", missed: result.missed });
    const waiters = sub.waiters;
    sub.waiters = [];
    for (const waiter of waiters) waiter.resolve(result);
  }

  private subscribeRefused(sub: Subscription, error: RealtimeError): void {
    if (this.subs.get(sub.channel) !== sub) return;
    if (error.code === "connection_lost") return; // resubscribed on the next connection
    if (PERMANENT_ERRORS.has(error.code)) {
      this.subs.delete(sub.channel);
      this.subscriptionTokens?.forget(sub.channel);
    }
    const waiters = sub.waiters;
    sub.waiters = [];
    for (const waiter of waiters) waiter.reject(error);
    this.emit("error", error);
  }

  private async readOverHttp(upTo: number): Promise<{ upTo: number }> {
    const fetcher = this.options.fetch ?? (globalThis as { fetch?: FetchLike }).fetch;
    if (!fetcher) throw new RealtimeError("unsupported", "no fetch in this runtime");
    const token = await this.currentToken();
    const response = await fetcher.call(globalThis, `${this.baseUrl("http")}/api/v1/notifications/read`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ upTo }),
    });
    const body = JSON.parse(await response.text()) as { upTo?: number; error?: { code: string; message: string } };
    if (!response.ok || body.upTo === undefined) throw new RealtimeError(body.error?.code ?? "internal", body.error?.message ?? `HTTP ${response.status}`);
    return { upTo: body.upTo };
  }

  // ---- token, heartbeat, timers ----

  private async currentToken(): Promise<string> {
    const source = this.options.token;
    if (typeof source === "string") return (this.token = source);
    if (this.token === undefined || this.needFreshToken) {
      this.token = await source();
      this.needFreshToken = false;
    }
    return this.token;
  }

  private armRefresh(): void {
    const source = this.options.token;
    const expiresAt = this.token === undefined ? undefined : tokenExpiryMs(this.token);
    if (typeof source === "string" || expiresAt === undefined) return;
    const remaining = expiresAt - Date.now();
    const margin = this.options.refreshBeforeExpMs ?? Math.min(60_000, remaining / 10);
    this.later(() => void this.refresh(source), Math.max(0, remaining - margin));
  }

  private async refresh(source: () => Promise<string>): Promise<void> {
    let token: string;
    try {
      token = await source();
    } catch (error) {
      // The old token still works until exp; the server's 4001 then makes us try again.
      return this.emit("error", new RealtimeError("unauthorized", "token refresh failed", undefined, { cause: error }));
    }
    this.token = token;
    if (this.kind === "sse") return this.restart(); // a stream's token is fixed: reopen it (Last-Event-ID keeps continuity)
    try {
      await this.send({ op: "refresh", token });
      this.armRefresh();
    } catch (error) {
      if (error instanceof RealtimeError && error.code === "connection_lost") return;
      this.emit("error", error as RealtimeError);
      this.needFreshToken = true;
      this.restart();
    }
  }

  private startHeartbeat(heartbeatMs: number): void {
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => {
      // Silence for two intervals (no pong, no event): the connection is dead even if no close arrived.
      if (Date.now() - this.lastFrameAt > 2 * heartbeatMs) return this.restart();
      this.transport?.send({ op: "ping" });
    }, heartbeatMs);
  }

  /** Runs `callback` after `ms`, however long: a runtime timer fires at once past 2^31−1 ms, so longer waits are made of steps. */
  private later(callback: () => void, ms: number): void {
    const step = Math.min(ms, MAX_TIMER_MS);
    const timer = setTimeout(() => {
      this.timers = this.timers.filter((other) => other !== timer);
      if (ms > MAX_TIMER_MS) this.later(callback, ms - MAX_TIMER_MS);
      else callback();
    }, step);
    this.timers.push(timer);
  }

  private setState(state: ConnectionState): void {
    if (this.currentState === state) return;
    this.currentState = state;
    this.emit("state", { state, transport: this.kind });
  }

  private emit<K extends keyof ClientEvents>(name: K, value: ClientEvents[K]): void {
    for (const listener of this.listeners.get(name) ?? []) {
      try {
        (listener as (value: ClientEvents[K]) => void)(value);
      } catch {
        // A listener's bug must not break the connection.
      }
    }
  }

  private webSocketFactory(): WebSocketFactory | undefined {
    return this.options.WebSocket ?? (globalThis as { WebSocket?: WebSocketFactory }).WebSocket;
  }

  private baseUrl(scheme: "ws" | "http"): string {
    const base = this.options.url.replace(/\/+$/, "");
    return scheme === "ws" ? base.replace(/^http/, "ws") : base.replace(/^ws/, "http");
  }
}
