import { CloseCode, ErrorCode, UnsubscribeReason } from "../protocol/codes.js";
import { EVENT_TYPE_PATTERN, parseChannel, routingPrefix, type Channel } from "../protocol/channel.js";
import { encodeServerFrame, readClientFrame, validateClientFrame, type ClientFrame, type ServerFrame } from "../protocol/frames.js";
import { AbuseStreak, TokenBucket } from "./rate-limit.js";
import { BrokerUnavailableError } from "./ports/broker.js";
import { AuthenticationError, type Principal, type SubscriptionGrant } from "./ports/authenticator.js";
import type { SessionSocket } from "./ports/session-socket.js";
import type { Timer } from "./ports/clock.js";
import type { FrameRejectReason } from "./ports/metrics.js";
import type { RecoverySink, SessionContext, UserState } from "./session-context.js";
import type { EventStore, HistoryPage } from "./ports/event-store.js";
import { storedEventFrame } from "./event-frames.js";
import { EventTooLargeError } from "./published-envelope.js";
import { checkSubscriptionToken, type GrantCheck } from "./subscription-grants.js";

type Frame<Op extends ClientFrame["op"]> = Extract<ClientFrame, { op: Op }>;

interface Subscription {
  /** The binding prefix (`namespace.id`). */
  readonly prefix: string;
  /** Set once the binding is confirmed: from then on the entry owns a binding reference. */
  bound: boolean;
  /** Tracked in the channel's presence (`presence: true`); untracked by whoever removes the entry. */
  tracked: boolean;
  /** The subscription token it stands on, in a namespace with subscribe `token`: its right comes from this, not from the connection token. */
  grant: SubscriptionGrant | undefined;
  /** Ends the subscription (`expired`) at the grant's expiry; armed once bound, cancelled by whoever removes the entry. */
  expiry: Timer | undefined;
}

/**
 * One client connection: protocol v1 over any SessionSocket.
 *
 * Guarantees: every client frame gets exactly one reply (`ok`, `pong` or
 * `error`), carrying its `ref`; a bad frame never closes the socket, only the
 * limits in docs/protocol.md §5 do, each with its own close code.
 */
export class Session {
  readonly id: string;
  private principal: Principal;
  private readonly socket: SessionSocket;
  private readonly ctx: SessionContext;
  private readonly user: UserState;
  private readonly bucket: TokenBucket;
  private readonly abuse: AbuseStreak;
  /**
   * Channels subscribed or being subscribed. A subscription owns one binding
   * reference from the moment `bound` is set; whoever removes a bound entry
   * (unsubscribe, close) gives it back, and a subscribe that finds its entry
   * gone before `bound` was set gives back the reference it was acquiring.
   * So each reference is given back exactly once.
   */
  private readonly channels = new Map<string, Subscription>();
  /** Recoveries still forwarding live events by hand, by channel: each ends its own. */
  private readonly recoveries = new Map<string, () => void>();
  private expiryTimer: Timer | undefined;
  private lastHeardMs: number;
  private closed = false;
  /** Counted in the user's online status since `open`. */
  private counted = false;

  constructor(deps: { id: string; principal: Principal; socket: SessionSocket; ctx: SessionContext; user: UserState }) {
    this.id = deps.id;
    this.principal = deps.principal;
    this.socket = deps.socket;
    this.ctx = deps.ctx;
    this.user = deps.user;
    const now = this.ctx.clock.now();
    this.bucket = new TokenBucket(this.ctx.limits.connectionRatePerSec, this.ctx.limits.connectionBurst, now);
    this.abuse = new AbuseStreak(this.ctx.limits.abuseCloseMs);
    this.lastHeardMs = now;
  }

  get userId(): string {
    return this.principal.userId;
  }

  /** The current token's principal (the one of the last successful `refresh`). */
  get credentials(): Principal {
    return this.principal;
  }

  /** Sends `welcome` and arms the token-expiry close. */
  open(): void {
    this.send({
      op: "welcome",
      session: this.id,
      node: this.ctx.nodeId,
      heartbeatMs: this.ctx.heartbeatMs,
      ttlMs: this.ctx.ttlMs,
      maxFrameBytes: this.ctx.limits.maxFrameBytes,
    });
    this.counted = true;
    this.ctx.presence.userConnected(this.userId);
    this.armExpiry();
  }

  /**
   * A text frame from the client. `byteLength` is the frame's size on the wire.
   * The JSON is read before any limit is applied so that every refusal echoes
   * the frame's `ref`; the transport cuts frames over twice maxFrameBytes, so
   * a refused frame costs one bounded JSON.parse and is not acted on.
   */
  receiveText(text: string, byteLength: number): void {
    if (this.closed) return;
    this.lastHeardMs = this.ctx.clock.now();
    const read = readClientFrame(text);
    if (byteLength > this.ctx.limits.maxFrameBytes) {
      this.ctx.metrics.frameRejected("too_large");
      this.sendError(read.ref, ErrorCode.TooLarge, `frame of ${byteLength} bytes is over ${this.ctx.limits.maxFrameBytes}`);
      this.close(CloseCode.TooLarge, "frame too large");
      return;
    }
    if (!this.admitByRate(read.ref)) return;
    const parsed = read.ok ? validateClientFrame(read) : read;
    if (!parsed.ok) {
      this.reject(parsed.ref, "bad_request", ErrorCode.BadRequest, parsed.message);
      return;
    }
    this.ctx.metrics.frameReceived(parsed.frame.op);
    this.dispatch(parsed.frame);
  }

  /**
   * A request the transport makes on the client's behalf (the `channels` of an
   * SSE stream): answered like a client frame, without the frame rate limit.
   */
  request(frame: ClientFrame): void {
    if (this.closed) return;
    this.ctx.metrics.frameReceived(frame.op);
    this.dispatch(frame);
  }

  /** A binary frame: not part of protocol v1, answered like any bad frame. */
  receiveBinary(byteLength: number): void {
    if (byteLength > this.ctx.limits.maxFrameBytes) return this.receiveText("", byteLength);
    if (this.closed || !this.admitByRate(undefined)) return;
    this.reject(undefined, "bad_request", ErrorCode.BadRequest, "binary frames are not part of protocol v1; send JSON text");
  }

  /** A WebSocket-level ping counts as a heartbeat. */
  heard(): void {
    this.lastHeardMs = this.ctx.clock.now();
  }

  /** Periodic check by the gateway: send-buffer limit, and heartbeat TTL unless `judgeSilence` is off (a late run, see LateTick). */
  inspect(nowMs: number, judgeSilence = true): void {
    if (this.closed) return;
    if (this.socket.bufferedBytes() > this.ctx.limits.sendBufferBytes) {
      this.close(CloseCode.TooSlow, "send buffer over its limit");
    } else if (judgeSilence && nowMs - this.lastHeardMs > this.ctx.ttlMs) {
      this.close(CloseCode.HeartbeatMissed, "no heartbeat within ttlMs");
    }
  }

  send(frame: ServerFrame): void {
    if (!this.closed) this.socket.send(encodeServerFrame(frame));
  }

  close(code: CloseCode, reason: string): void {
    if (this.closed) return;
    this.socket.close(code, reason);
    this.released();
  }

  /** The transport reports the socket gone: give back everything this session held. Idempotent. */
  released(): void {
    if (this.closed) return;
    this.closed = true;
    this.expiryTimer?.cancel();
    for (const stop of [...this.recoveries.values()]) stop();
    for (const [name, subscription] of this.channels) {
      subscription.expiry?.cancel();
      if (subscription.bound) this.ctx.bindings.release(subscription.prefix);
      if (subscription.tracked) this.ctx.presence.untrack(name, this.userId);
    }
    this.channels.clear();
    if (this.counted) this.ctx.presence.userDisconnected(this.userId);
    this.counted = false;
  }

  /** Takes a token for one frame; a refusal echoes `ref`, the refused frame's. */
  private admitByRate(ref: number | undefined): boolean {
    const now = this.ctx.clock.now();
    const verdict = this.bucket.take(now);
    const userVerdict = verdict.ok ? this.user.bucket.take(now) : verdict;
    if (userVerdict.ok) return true;
    this.ctx.metrics.frameRejected("rate_limited");
    if (this.abuse.refused(now)) {
      this.close(CloseCode.RateLimitAbused, "rate limit exceeded for too long");
    } else {
      this.sendError(ref, ErrorCode.RateLimited, "too many frames", userVerdict.retryAfterMs);
    }
    return false;
  }

  /**
   * Runs the frame's handler. A handler that throws or rejects is a bug, not
   * a refusal: it is logged and the frame answered `error internal` (unless
   * the connection is gone), so the frame still gets a reply and no
   * rejection escapes to end the process.
   */
  private dispatch(frame: ClientFrame): void {
    const failed = (error: unknown): void => {
      this.ctx.logger.error({ err: error, session: this.id, op: frame.op }, "frame handler failed");
      if (!this.closed) this.reject(frame.ref, "internal", ErrorCode.Internal, "internal error");
    };
    try {
      const handled = this.handle(frame);
      if (handled instanceof Promise) handled.catch(failed);
    } catch (error) {
      failed(error);
    }
  }

  private handle(frame: ClientFrame): void | Promise<void> {
    switch (frame.op) {
      case "subscribe":
        return this.subscribe(frame);
      case "unsubscribe":
        return this.unsubscribe(frame);
      case "publish":
        return this.publish(frame);
      case "ping":
        return this.send(frame.ref === undefined ? { op: "pong" } : { op: "pong", ref: frame.ref });
      case "refresh":
        return frame.channel === undefined ? this.refresh(frame) : this.refreshSubscription(frame, frame.channel);
      case "read":
        return this.read(frame);
      case "presence":
        return this.presence(frame);
      case "status":
        return this.status(frame);
      default: {
        const unreachable: never = frame;
        return unreachable;
      }
    }
  }

  private async subscribe(frame: Frame<"subscribe">): Promise<void> {
    const channel = this.channelOf(frame.ref, frame.channel);
    if (!channel) return;
    const policy = this.ctx.namespaces.get(channel.namespace);
    let grant: SubscriptionGrant | undefined;
    if (policy?.subscribe === "token") {
      if (frame.token === undefined) {
        return this.reject(frame.ref, "forbidden", ErrorCode.Forbidden, `namespace ${channel.namespace} requires a subscription token ("token" in subscribe, over WebSocket)`);
      }
      const decided = this.grantFor(frame.ref, channel, frame.token);
      grant = decided instanceof Promise ? await decided : decided;
      if (!grant || this.closed) return;
    } else if (frame.token !== undefined && policy) {
      return this.reject(frame.ref, "bad_request", ErrorCode.BadRequest, `namespace ${channel.namespace} takes no subscription token`);
    }
    const verdict = this.ctx.namespaces.canSubscribe(this.principal, channel, grant);
    if (!verdict.allowed) return this.rejectAuthorization(frame.ref, channel, verdict.reason);
    if (grant === undefined && this.ctx.access.isChannelRevoked(this.principal, channel.name)) return this.rejectAuthorization(frame.ref, channel, "forbidden");
    if (frame.presence === true && !verdict.policy.presence) {
      return this.reject(frame.ref, "bad_request", ErrorCode.BadRequest, `namespace ${channel.namespace} has no presence`);
    }
    const existing = this.channels.get(channel.name);
    if (existing) {
      // A repeated subscribe with a token renews the subscription's token as `refresh` would.
      if (grant) this.renewGrant(channel.name, existing, grant);
      if (frame.presence === true && existing.bound) this.trackIn(channel.name, existing);
      return this.ok(frame.ref, { recovered: false, missed: 0 });
    }
    if (this.channels.size >= this.ctx.limits.maxSubscriptions) {
      return this.reject(frame.ref, "limit_exceeded", ErrorCode.LimitExceeded, `at most ${this.ctx.limits.maxSubscriptions} subscriptions per connection`);
    }
    const prefix = routingPrefix(channel);
    const subscription: Subscription = { prefix, bound: false, tracked: false, grant, expiry: undefined };
    this.channels.set(channel.name, subscription);
    try {
      await this.ctx.bindings.acquire(prefix);
    } catch (error) {
      if (this.channels.get(channel.name) === subscription) this.channels.delete(channel.name);
      return this.rejectFailure(frame.ref, error);
    }
    if (this.closed || this.channels.get(channel.name) !== subscription) {
      // Closed, or the subscription ended (an unsubscribe, a revocation) while the binding was being made:
      // the reference is still ours to give back, and an open connection still gets its one reply.
      this.ctx.bindings.release(prefix);
      if (!this.closed) this.reject(frame.ref, "not_found", ErrorCode.NotFound, `the subscription to ${channel.name} ended before it was made`);
      return;
    }
    subscription.bound = true;
    this.armGrantExpiry(channel.name, subscription);
    if (frame.presence === true) this.trackIn(channel.name, subscription);
    if (frame.since !== undefined && verdict.policy.durable && this.ctx.store) {
      return this.recover(frame.ref, channel, subscription, frame.since, this.ctx.store);
    }
    // Without `since`, or on a node with no store, nothing is recovered and `ok` says so.
    this.socket.subscribe(channel.name);
    this.ok(frame.ref, { recovered: false, missed: 0 });
  }

  /**
   * Subscribe with `since`: live first, history second, merged by seq.
   *
   * Live events of the channel are buffered from before the history read
   * starts, so an event committed after the read is in the buffer and one
   * committed before it is in the history; events in both are dropped by seq.
   * The live copy of an event committed before the read may still be on its
   * way to this node when the history is sent: until the node's live stream
   * has reached the last seq sent (a live event with that seq or a later one
   * arrived), live events keep coming through the sink and those already sent
   * are dropped. Only then is the native subscription made, in the same
   * synchronous step as the last sink call, so no live event slips between.
   */
  private async recover(ref: number | undefined, channel: Channel, subscription: Subscription, since: number, store: EventStore): Promise<void> {
    const buffered: Array<{ seq: number | undefined; text: string }> = [];
    let lastSeq = since;
    let caughtUp = false;
    const deliver = (seq: number | undefined, text: string): void => {
      if (seq !== undefined && seq <= lastSeq) {
        caughtUp ||= seq === lastSeq;
        return;
      }
      this.socket.send(text);
      if (seq === undefined) return;
      lastSeq = seq;
      caughtUp = true;
    };
    let forwarding = false;
    const sink: RecoverySink = (seq, text) => {
      if (!forwarding) return void buffered.push({ seq, text });
      deliver(seq, text);
      if (caughtUp) join();
    };
    // May run twice (unsubscribed while reading, then the read returns): by then
    // a new subscribe of the channel may be recovering, and its entry is not ours.
    const stop = (): void => {
      if (this.recoveries.get(channel.name) === stop) this.recoveries.delete(channel.name);
      this.ctx.endRecovery(channel.name, sink);
    };
    const join = (): void => {
      stop();
      this.socket.subscribe(channel.name);
    };
    this.ctx.beginRecovery(channel.name, sink);
    this.recoveries.set(channel.name, stop);
    let page: HistoryPage | undefined;
    try {
      page = await store.history(channel.name, since, this.ctx.recoveryLimit);
    } catch (error) {
      this.ctx.logger.warn({ err: error, session: this.id }, "history unavailable: subscribing without recovery");
    }
    if (this.closed || this.channels.get(channel.name) !== subscription) {
      // Unsubscribed or closed while reading: that ended the recovery and gave the binding back.
      stop();
      return;
    }
    const history = page?.events ?? [];
    const truncated = history.length >= this.ctx.recoveryLimit;
    this.ok(ref, { recovered: page !== undefined && page.complete && !truncated, missed: history.length });
    for (const event of history) {
      this.socket.send(encodeServerFrame(storedEventFrame(event)));
      lastSeq = event.seq;
    }
    for (const live of buffered) deliver(live.seq, live.text);
    if (caughtUp) return join();
    forwarding = true;
  }

  /** `read`: moves the user's inbox read mark; every connection of the user hears of it. */
  private async read(frame: Frame<"read">): Promise<void> {
    const channel = this.channelOf(frame.ref, frame.channel);
    if (!channel) return;
    if (channel.namespace !== "user" || channel.id !== this.userId) {
      return this.reject(frame.ref, "forbidden", ErrorCode.Forbidden, "read marks exist only on your own user channel");
    }
    const store = this.ctx.store;
    if (!store) return this.reject(frame.ref, "unavailable", ErrorCode.Unavailable, "no notification store on this node");
    try {
      const upTo = await store.markRead(this.userId, frame.upTo);
      this.ok(frame.ref, { upTo });
      this.ctx.announceRead(this.userId, upTo);
    } catch (error) {
      this.rejectFailure(frame.ref, error);
    }
  }

  private unsubscribe(frame: Frame<"unsubscribe">): void {
    const channel = this.channelOf(frame.ref, frame.channel);
    if (!channel) return;
    this.drop(channel.name);
    this.ok(frame.ref, {});
  }

  /**
   * The server ends a subscription on its own (a revocation, a refreshed
   * token no longer allowing it, or its subscription token expiring): the client is told with an `unsubscribed`
   * frame, after which no event of the channel reaches this connection. False when the connection was not subscribed.
   */
  endSubscription(channel: string, reason: UnsubscribeReason): boolean {
    if (this.closed || !this.drop(channel)) return false;
    this.send({ op: "unsubscribed", channel, reason });
    return true;
  }

  /** Ends, with `reason`, each subscription standing on a subscription token that `covered` picks (a revocation of it). */
  endTokenSubscriptions(covered: (grant: SubscriptionGrant) => boolean, reason: UnsubscribeReason): void {
    for (const [name, subscription] of [...this.channels]) {
      if (subscription.grant && covered(subscription.grant)) this.endSubscription(name, reason);
    }
  }

  /** Removes a subscription and gives back what it held; false when there was none. */
  private drop(channel: string): boolean {
    const subscription = this.channels.get(channel);
    if (subscription === undefined) return false;
    this.channels.delete(channel);
    subscription.expiry?.cancel();
    this.recoveries.get(channel)?.();
    this.socket.unsubscribe(channel);
    if (subscription.bound) this.ctx.bindings.release(subscription.prefix);
    if (subscription.tracked) this.ctx.presence.untrack(channel, this.userId);
    return true;
  }

  private trackIn(channel: string, subscription: Subscription): void {
    if (subscription.tracked) return;
    subscription.tracked = true;
    this.ctx.presence.track(channel, this.userId, this.principal.info);
  }

  /** `presence`: members of a channel the caller may subscribe to (counts only above the listing limit). */
  private presence(frame: Frame<"presence">): void {
    const channel = this.channelOf(frame.ref, frame.channel);
    if (!channel) return;
    const verdict = this.ctx.namespaces.canSubscribe(this.principal, channel, this.channels.get(channel.name)?.grant);
    if (!verdict.allowed) return this.rejectAuthorization(frame.ref, channel, verdict.reason);
    if (!verdict.policy.presence) return this.reject(frame.ref, "bad_request", ErrorCode.BadRequest, `namespace ${channel.namespace} has no presence`);
    this.ok(frame.ref, { ...this.ctx.presence.members(channel.name) });
  }

  private async status(frame: Frame<"status">): Promise<void> {
    this.ok(frame.ref, { users: await this.ctx.presence.statuses(frame.users) });
  }

  private async publish(frame: Frame<"publish">): Promise<void> {
    const channel = this.channelOf(frame.ref, frame.channel);
    if (!channel) return;
    if (!EVENT_TYPE_PATTERN.test(frame.type)) {
      return this.reject(frame.ref, "bad_request", ErrorCode.BadRequest, "type must be dot-separated words of [A-Za-z0-9_-]");
    }
    const verdict = this.ctx.namespaces.canPublish(this.principal, channel, this.channels.get(channel.name)?.grant);
    if (!verdict.allowed) return this.rejectAuthorization(frame.ref, channel, verdict.reason);
    try {
      const id = await this.ctx.publishFromClient({ channel, policy: verdict.policy, type: frame.type, data: frame.data, userId: this.userId });
      this.ok(frame.ref, { id });
    } catch (error) {
      this.rejectFailure(frame.ref, error);
    }
  }

  private async refresh(frame: Frame<"refresh">): Promise<void> {
    let principal: Principal;
    try {
      principal = await this.ctx.authenticator.verify(frame.token);
    } catch (error) {
      const message = error instanceof AuthenticationError ? error.message : "token could not be verified";
      return this.reject(frame.ref, "unauthorized", ErrorCode.Unauthorized, message);
    }
    if (principal.userId !== this.userId) {
      return this.reject(frame.ref, "forbidden", ErrorCode.Forbidden, "a refreshed token must be for the same user");
    }
    if (this.ctx.access.isRevoked(principal)) return this.reject(frame.ref, "unauthorized", ErrorCode.Unauthorized, "token revoked");
    this.principal = principal;
    this.armExpiry();
    this.reauthorize();
    this.ok(frame.ref, {});
  }

  /**
   * After a refresh: every subscription is checked against the new token as
   * a new `subscribe` would be, and those it no longer allows end with
   * `unsubscribed` reason `forbidden` (sent before the refresh's `ok`). A
   * subscription on a subscription token is left alone: the connection
   * token never granted it.
   */
  private reauthorize(): void {
    for (const [name, subscription] of [...this.channels]) {
      if (subscription.grant) continue;
      const channel = parseChannel(name);
      const allowed = channel !== undefined && this.ctx.namespaces.canSubscribe(this.principal, channel).allowed && !this.ctx.access.isChannelRevoked(this.principal, name);
      if (!allowed) this.endSubscription(name, UnsubscribeReason.Forbidden);
    }
  }

  /**
   * `refresh` with `channel`: a new subscription token for a channel
   * subscribed with one, checked as `subscribe` checks it; the subscription
   * then lasts until the new token's expiry.
   */
  private async refreshSubscription(frame: Frame<"refresh">, name: string): Promise<void> {
    const channel = this.channelOf(frame.ref, name);
    if (!channel) return;
    const subscription = this.channels.get(channel.name);
    if (!subscription?.grant) {
      return this.reject(frame.ref, "bad_request", ErrorCode.BadRequest, `not subscribed to ${channel.name} with a subscription token`);
    }
    const decided = this.grantFor(frame.ref, channel, frame.token);
    const grant = decided instanceof Promise ? await decided : decided;
    if (!grant || this.closed) return;
    // It may have expired or been ended while the token was verified: a late refresh does not bring it back.
    if (this.channels.get(channel.name) !== subscription) {
      return this.reject(frame.ref, "bad_request", ErrorCode.BadRequest, `not subscribed to ${channel.name} with a subscription token`);
    }
    this.renewGrant(channel.name, subscription, grant);
    this.ok(frame.ref, {});
  }

  /**
   * The subscription token checked (see checkSubscriptionToken); undefined
   * after a refusal, which is replied here. Not a promise where the token
   * was decided synchronously: callers await only a promise.
   */
  private grantFor(ref: number | undefined, channel: Channel, token: string): SubscriptionGrant | undefined | Promise<SubscriptionGrant | undefined> {
    const checked = checkSubscriptionToken(this.ctx, token, this.userId, channel);
    return checked instanceof Promise ? checked.then((result) => this.grantOf(ref, result)) : this.grantOf(ref, checked);
  }

  private grantOf(ref: number | undefined, checked: GrantCheck): SubscriptionGrant | undefined {
    if (checked.ok) return checked.grant;
    const { code, message } = checked.refusal;
    this.reject(ref, code === ErrorCode.Unauthorized ? "unauthorized" : "forbidden", code, message);
    return undefined;
  }

  private renewGrant(name: string, subscription: Subscription, grant: SubscriptionGrant): void {
    subscription.grant = grant;
    if (subscription.bound) this.armGrantExpiry(name, subscription);
  }

  /** A subscription on a subscription token ends with `unsubscribed` reason `expired` at the token's expiry, unless refreshed first. */
  private armGrantExpiry(name: string, subscription: Subscription): void {
    subscription.expiry?.cancel();
    const grant = subscription.grant;
    if (grant === undefined) return;
    const remainingMs = Math.max(0, grant.expiresAtMs - this.ctx.clock.now());
    subscription.expiry = this.ctx.clock.setTimeout(() => {
      if (this.channels.get(name) === subscription) this.endSubscription(name, UnsubscribeReason.Expired);
    }, remainingMs);
  }

  private armExpiry(): void {
    this.expiryTimer?.cancel();
    const remainingMs = Math.max(0, this.principal.expiresAtMs - this.ctx.clock.now());
    this.expiryTimer = this.ctx.clock.setTimeout(() => this.close(CloseCode.TokenExpired, "token expired"), remainingMs);
  }

  private channelOf(ref: number | undefined, text: string): Channel | undefined {
    const channel = parseChannel(text);
    if (!channel) {
      this.reject(ref, "bad_request", ErrorCode.BadRequest, `"${text.slice(0, 64)}" is not a channel: namespace:id with [a-z0-9_-] and [A-Za-z0-9_-]`);
    }
    return channel;
  }

  private rejectAuthorization(ref: number | undefined, channel: Channel, reason: "not_found" | "forbidden"): void {
    if (reason === "not_found") {
      this.reject(ref, "not_found", ErrorCode.NotFound, `namespace ${channel.namespace} does not exist`);
    } else {
      this.reject(ref, "forbidden", ErrorCode.Forbidden, `not allowed on ${channel.name}`);
    }
  }

  private rejectFailure(ref: number | undefined, error: unknown): void {
    if (error instanceof EventTooLargeError) return this.reject(ref, "too_large", ErrorCode.TooLarge, error.message);
    if (error instanceof BrokerUnavailableError || (error as { retryable?: unknown } | null)?.retryable === true) {
      this.reject(ref, "unavailable", ErrorCode.Unavailable, "message broker unavailable, retry shortly");
    } else {
      this.ctx.logger.error({ err: error, session: this.id }, "request failed");
      this.reject(ref, "internal", ErrorCode.Internal, "internal error");
    }
  }

  private reject(ref: number | undefined, reason: FrameRejectReason, code: ErrorCode, message: string): void {
    this.ctx.metrics.frameRejected(reason);
    this.sendError(ref, code, message);
  }

  private sendError(ref: number | undefined, code: ErrorCode, message: string, retryAfterMs?: number): void {
    const frame: ServerFrame = { op: "error", code, message };
    if (ref !== undefined) frame.ref = ref;
    if (retryAfterMs !== undefined) frame.retryAfterMs = retryAfterMs;
    this.send(frame);
  }

  private ok(ref: number | undefined, fields: Record<string, unknown>): void {
    this.send(ref === undefined ? { op: "ok", ...fields } : { op: "ok", ref, ...fields });
  }
}
