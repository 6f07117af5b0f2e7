import { baseUrl, resolveFetch, resolveWebSocket } from "./options.js";
import type { ReplyFrame } from "./requests.js";
import { SubscriptionTokens } from "./subscription-tokens.js";
import type { Subscription } from "./subscriptions.js";
import type { ModeHost, TransportMode } from "./transport-mode.js";
import { openWebSocket, type Transport, type TransportHandlers } from "./transports.js";
import { RealtimeError, type ClientRequest } from "./types.js";

/**
 * The client over WebSocket: after `welcome` it subscribes every channel
 * (with `since` = the last seq seen, and the channel's subscription token
 * when `getSubscriptionToken` is given), sends requests with refs, pings at
 * the server's `heartbeatMs` and refreshes tokens in place.
 *
 * Guarantees: a subscribe whose token arrives after its connection ended is
 * not sent (the next `welcome` resubscribes); a connection silent for two
 * heartbeat intervals is replaced even if no close arrived.
 */
export class WebSocketMode implements TransportMode {
  readonly kind = "websocket";
  private readonly subscriptionTokens: SubscriptionTokens | undefined;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private lastFrameAt = 0;
  private failuresBeforeWelcome = 0;
  private everWelcomed = false;

  constructor(private readonly host: ModeHost) {
    const source = host.options.getSubscriptionToken;
    this.subscriptionTokens =
      source === undefined
        ? undefined
        : new SubscriptionTokens({
            source,
            refreshBeforeExpMs: host.options.refreshBeforeExpMs,
            sendRefresh: (channel, token) => host.requests.send({ op: "refresh", channel, token }),
            onError: (error) => host.events.emit("error", error),
          });
  }

  open(token: string, handlers: TransportHandlers): Transport | RealtimeError {
    const factory = resolveWebSocket(this.host.options);
    if (!factory) return new RealtimeError("unsupported", "no WebSocket implementation in this runtime");
    const transport = openWebSocket(factory, `${baseUrl(this.host.options, "ws")}/realtime/ws?token=${encodeURIComponent(token)}`, handlers);
    this.lastFrameAt = Date.now();
    return transport;
  }

  received(): void {
    this.lastFrameAt = Date.now();
  }

  welcomed(heartbeatMs: number): void {
    this.everWelcomed = true;
    this.failuresBeforeWelcome = 0;
    this.startHeartbeat(heartbeatMs);
    for (const sub of this.host.subscriptions.all()) this.sendSubscribe(sub);
    this.host.requests.welcomed();
  }

  subscriptionAdded(sub: Subscription): void {
    if (this.host.isWelcomed()) this.sendSubscribe(sub);
  }

  subscriptionRemoved(channel: string): void {
    if (this.host.isWelcomed()) this.request({ op: "unsubscribe", channel }).catch(() => {});
  }

  forget(channel: string): void {
    this.subscriptionTokens?.forget(channel);
  }

  reply(frame: ReplyFrame, ref: number): void {
    this.host.requests.settle(frame, ref);
  }

  async request(frame: ClientRequest): Promise<Record<string, unknown>> {
    if (this.host.isClosed()) throw new RealtimeError("closed", "client closed");
    if (!this.host.isWelcomed()) await this.host.requests.afterWelcome();
    return this.host.requests.send(frame);
  }

  async read(channel: string, upTo: number): Promise<{ upTo: number }> {
    const ok = await this.request({ op: "read", channel, upTo });
    return { upTo: Number(ok.upTo) };
  }

  async tokenRefreshed(token: string): Promise<void> {
    try {
      await this.host.requests.send({ op: "refresh", token });
      this.host.token.armRefresh();
    } catch (error) {
      if (error instanceof RealtimeError && error.code === "connection_lost") return;
      this.host.events.emit("error", error as RealtimeError);
      this.host.token.markStale();
      this.host.restart();
    }
  }

  closedBeforeWelcome(): boolean {
    this.failuresBeforeWelcome += 1;
    // Only a WebSocket that never worked means a network that breaks WebSockets; a gateway restart does not.
    const options = this.host.options;
    const canFallBack = (options.transport ?? "auto") === "auto" && !this.everWelcomed && resolveFetch(options) !== undefined;
    return canFallBack && this.failuresBeforeWelcome >= (options.fallbackAfterFailures ?? 2);
  }

  teardown(): void {
    this.subscriptionTokens?.clear();
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  /** With `getSubscriptionToken`, the channel's token is asked for first; a reply for a connection since replaced is ignored (its welcome resubscribes). */
  private sendSubscribe(sub: Subscription): void {
    const tokens = this.subscriptionTokens;
    if (tokens === undefined) return this.sendSubscribeFrame(sub, undefined);
    const transport = this.host.transport();
    tokens.forSubscribe(sub.channel).then(
      (token) => {
        if (this.host.transport() === transport && this.host.isWelcomed()) this.sendSubscribeFrame(sub, token);
      },
      (error: unknown) => {
        if (this.host.transport() !== transport) return;
        this.host.subscriptions.refused(sub, new RealtimeError("unauthorized", `the subscription token provider failed for ${sub.channel}`, undefined, { cause: error }));
      },
    );
  }

  private sendSubscribeFrame(sub: Subscription, token: string | undefined): void {
    const subscriptions = this.host.subscriptions;
    if (!subscriptions.isCurrent(sub)) return;
    const since = sub.cursor.lastSeq;
    const frame: ClientRequest = { op: "subscribe", channel: sub.channel };
    if (since !== undefined) frame.since = since;
    if (sub.presence) frame.presence = true;
    if (token !== undefined) frame.token = token;
    const transport = this.host.transport();
    this.host.requests.send(frame).then(
      (ok) => {
        // The reply is read in a later microtask: a connection torn down meanwhile must not arm a refresh.
        if (token !== undefined && this.host.transport() === transport && subscriptions.isCurrent(sub)) this.subscriptionTokens?.accepted(sub.channel, token);
        subscriptions.subscribed(sub, { recovered: ok.recovered === true, missed: Number(ok.missed ?? 0) }, since !== undefined);
      },
      (error: RealtimeError) => subscriptions.refused(sub, error),
    );
  }

  private startHeartbeat(heartbeatMs: number): void {
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => {
      // Silence for two intervals (no pong, no event): the connection is dead even if no close arrived.
      if (Date.now() - this.lastFrameAt > 2 * heartbeatMs) return this.host.restart();
      this.host.transport()?.send({ op: "ping" });
    }, heartbeatMs);
  }
}
