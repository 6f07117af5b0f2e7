import { CloseCode, ErrorCode, UnsubscribeReason } from "@sobranie/protocol/codes";
import { readClientFrame, validateClientFrame, type ClientFrame, type ClientFrameOf, type ServerFrame } from "@sobranie/protocol/frames";
import { AbuseStreak, TokenBucket } from "./rate-limit.js";
import { AuthenticationError, type Principal, type SubscriptionGrant } from "./ports/authenticator.js";
import type { SessionSocket } from "./ports/session-socket.js";
import type { Timer } from "@sobranie/protocol/runtime/clock";
import type { SessionContext, UserState } from "./session-context.js";
import { SessionGrants } from "./session-grants.js";
import { SessionReplies } from "./session-replies.js";
import { SessionRequests } from "./session-requests.js";
import { SessionSubscriptions } from "./session-subscriptions.js";
import type { SessionWire } from "./session-wire.js";
import type { SignedGrant } from "./signed-grant.js";

/**
 * One client connection: protocol v1 (or another SessionWire) over any SessionSocket. The session
 * owns its lifecycle (welcome, heartbeat, token expiry, close), the limits
 * on incoming frames and their dispatch, and the connection token; its
 * subscriptions, their subscription tokens and the other requests are
 * handled by the parts it composes (session-*.ts).
 *
 * Guarantees: every client frame gets exactly one reply (`ok`, `pong` or
 * `error`), carrying its `ref`; a bad frame never closes the socket, only the
 * limits in docs/protocol.md §5 do, each with its own close code.
 */
export class Session {
  readonly id: string;
  private principal: Principal;
  private readonly socket: SessionSocket;
  private readonly wire: SessionWire;
  private readonly ctx: SessionContext;
  private readonly user: UserState;
  private readonly bucket: TokenBucket;
  private readonly abuse: AbuseStreak;
  private readonly replies: SessionReplies;
  private readonly grants: SessionGrants;
  private readonly subscriptions: SessionSubscriptions;
  private readonly requests: SessionRequests;
  private expiryTimer: Timer | undefined;
  private lastHeardMs: number;
  private closed = false;
  /** Counted in the user's online status since `open`. */
  private counted = false;
  /** The user the app signed this connection in as (signIn); undefined: none. */
  private signedIn: string | undefined;

  constructor(deps: { id: string; principal: Principal; socket: SessionSocket; wire: SessionWire; ctx: SessionContext; user: UserState }) {
    this.id = deps.id;
    this.principal = deps.principal;
    this.socket = deps.socket;
    this.wire = deps.wire;
    this.ctx = deps.ctx;
    this.user = deps.user;
    const now = this.ctx.clock.now();
    this.bucket = new TokenBucket(this.ctx.limits.connectionRatePerSec, this.ctx.limits.connectionBurst, now);
    this.abuse = new AbuseStreak(this.ctx.limits.abuseCloseMs);
    this.lastHeardMs = now;
    // A refreshed token must be for the same user, so the user id is fixed for the session's life.
    const userId = this.principal.userId;
    const principal = (): Principal => this.principal;
    const isClosed = (): boolean => this.closed;
    const send = (frame: ServerFrame): void => this.send(frame);
    const { ctx, socket } = deps;
    const replies = new SessionReplies({ sessionId: this.id, metrics: ctx.metrics, logger: ctx.logger, send });
    this.replies = replies;
    this.grants = new SessionGrants({
      ctx,
      userId,
      replies,
      isClosed,
      subscription: (channel) => this.subscriptions.get(channel),
      end: (channel, reason) => this.endSubscription(channel, reason),
    });
    this.subscriptions = new SessionSubscriptions({ sessionId: this.id, userId, countsSubscribers: deps.wire.countsSubscribers, ctx, socket, replies, grants: this.grants, principal, isClosed, send });
    this.requests = new SessionRequests({
      userId,
      ctx,
      replies,
      principal,
      grantOn: (channel) => this.subscriptions.get(channel)?.grant,
      signedOn: (channel) => this.subscriptions.get(channel)?.signed,
      excludeId: deps.wire.excludeId,
    });
  }

  get userId(): string {
    return this.principal.userId;
  }

  /** The user the app signed this connection in as (Pusher's `pusher:signin`); undefined until then. */
  get signedInUser(): string | undefined {
    return this.signedIn;
  }

  /**
   * The app vouched that this connection is `userId`'s (Pusher's signed
   * `pusher:signin`): from now on it counts the user online (status) as one
   * of their connections, until it closes. Its own user id, rate bucket and
   * grants stay its principal's. Once per session; Connections.signIn also
   * makes control commands for the user reach it.
   */
  signIn(userId: string): void {
    if (this.closed || this.signedIn !== undefined) return;
    this.signedIn = userId;
    this.ctx.presence.userConnected(userId);
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
    if (this.wire.countsUserOnline) {
      this.counted = true;
      this.ctx.presence.userConnected(this.userId);
    }
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
    const read = readClientFrame(text);
    if (!this.admit(read.ref, byteLength)) return;
    const parsed = read.ok ? validateClientFrame(read) : read;
    if (!parsed.ok) {
      this.replies.reject(parsed.ref, ErrorCode.BadRequest, parsed.message);
      return;
    }
    this.ctx.metrics.frameReceived(parsed.frame.op);
    this.dispatch(parsed.frame);
  }

  /**
   * A frame of another wire protocol, read by its transport (the Pusher
   * adapter): heard, and held to the frame-size and rate limits exactly as
   * `receiveText` holds a protocol v1 frame; `handle` runs only when the
   * frame is admitted, and then makes its requests with `request`.
   */
  receiveTranslated(byteLength: number, handle: () => void): void {
    if (this.closed || !this.admit(undefined, byteLength)) return;
    handle();
  }

  /**
   * A request the transport makes on the client's behalf (the `channels` of an
   * SSE stream, a translated Pusher frame): answered like a client frame,
   * without the frame rate limit. `signed`: the app signed this subscribe
   * (SignedGrant), in place of the namespace's subscribe rule.
   */
  request(frame: ClientFrame, signed?: SignedGrant): void {
    if (this.closed) return;
    this.ctx.metrics.frameReceived(frame.op);
    this.dispatch(frame, signed);
  }

  /** A binary frame: not part of protocol v1, answered like any bad frame. */
  receiveBinary(byteLength: number): void {
    if (byteLength > this.ctx.limits.maxFrameBytes) return this.receiveText("", byteLength);
    if (this.closed || !this.admitByRate(undefined)) return;
    this.replies.reject(undefined, ErrorCode.BadRequest, "binary frames are not part of protocol v1; send JSON text");
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
    if (this.closed) return;
    const text = this.wire.encode(frame);
    if (text !== undefined) this.socket.send(text);
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
    this.subscriptions.releaseAll();
    if (this.counted) this.ctx.presence.userDisconnected(this.userId);
    this.counted = false;
    if (this.signedIn !== undefined) this.ctx.presence.userDisconnected(this.signedIn);
  }

  /**
   * The server ends a subscription on its own (a revocation, a refreshed
   * token no longer allowing it, or its subscription token expiring): the client is told with an `unsubscribed`
   * frame, after which no event of the channel reaches this connection. False when the connection was not subscribed.
   */
  endSubscription(channel: string, reason: UnsubscribeReason): boolean {
    return this.subscriptions.end(channel, reason);
  }

  /** Ends, with `reason`, each subscription standing on a subscription token that `covered` picks (a revocation of it). */
  endTokenSubscriptions(covered: (grant: SubscriptionGrant) => boolean, reason: UnsubscribeReason): void {
    this.subscriptions.endTokenSubscriptions(covered, reason);
  }

  /** A frame heard: false (after its refusal) when it is over the size limit (the connection then closes 1009) or the rate limits. */
  private admit(ref: number | undefined, byteLength: number): boolean {
    this.lastHeardMs = this.ctx.clock.now();
    if (byteLength > this.ctx.limits.maxFrameBytes) {
      this.replies.reject(ref, ErrorCode.TooLarge, `frame of ${byteLength} bytes is over ${this.ctx.limits.maxFrameBytes}`);
      this.close(CloseCode.TooLarge, "frame too large");
      return false;
    }
    return this.admitByRate(ref);
  }

  /** Takes a token for one frame; a refusal echoes `ref`, the refused frame's. */
  private admitByRate(ref: number | undefined): boolean {
    const now = this.ctx.clock.now();
    const verdict = this.bucket.take(now);
    const userVerdict = verdict.ok ? this.user.bucket.take(now) : verdict;
    if (userVerdict.ok) return true;
    if (this.abuse.refused(now)) {
      this.ctx.metrics.frameRejected(ErrorCode.RateLimited);
      this.close(CloseCode.RateLimitAbused, "rate limit exceeded for too long");
    } else {
      this.replies.reject(ref, ErrorCode.RateLimited, "too many frames", userVerdict.retryAfterMs);
    }
    return false;
  }

  /**
   * Runs the frame's handler. A handler that throws or rejects is a bug, not
   * a refusal: it is logged and the frame answered `error internal` (unless
   * the connection is gone), so the frame still gets a reply and no
   * rejection escapes to end the process.
   */
  private dispatch(frame: ClientFrame, signed?: SignedGrant): void {
    const failed = (error: unknown): void => {
      this.ctx.logger.error({ err: error, session: this.id, op: frame.op }, "frame handler failed");
      if (!this.closed) this.replies.reject(frame.ref, ErrorCode.Internal, "internal error");
    };
    try {
      const handled = this.handle(frame, signed);
      if (handled instanceof Promise) handled.catch(failed);
    } catch (error) {
      failed(error);
    }
  }

  private handle(frame: ClientFrame, signed: SignedGrant | undefined): void | Promise<void> {
    switch (frame.op) {
      case "subscribe":
        return this.subscriptions.subscribe(frame, signed);
      case "unsubscribe":
        return this.subscriptions.unsubscribe(frame);
      case "publish":
        return this.requests.publish(frame);
      case "ping":
        return this.send(frame.ref === undefined ? { op: "pong" } : { op: "pong", ref: frame.ref });
      case "refresh":
        return frame.channel === undefined ? this.refresh(frame) : this.grants.refresh(frame, frame.channel);
      case "read":
        return this.requests.read(frame);
      case "presence":
        return this.requests.presence(frame);
      case "status":
        return this.requests.status(frame);
      default: {
        const unreachable: never = frame;
        return unreachable;
      }
    }
  }

  /** `refresh` without `channel`: a new connection token for the same user, after which every subscription is checked again. */
  private async refresh(frame: ClientFrameOf<"refresh">): Promise<void> {
    let principal: Principal;
    try {
      principal = await this.ctx.authenticator.verify(frame.token);
    } catch (error) {
      const message = error instanceof AuthenticationError ? error.message : "token could not be verified";
      return this.replies.reject(frame.ref, ErrorCode.Unauthorized, message);
    }
    if (principal.userId !== this.userId) {
      return this.replies.reject(frame.ref, ErrorCode.Forbidden, "a refreshed token must be for the same user");
    }
    if (this.ctx.access.isRevoked(principal)) return this.replies.reject(frame.ref, ErrorCode.Unauthorized, "token revoked");
    this.principal = principal;
    this.armExpiry();
    this.subscriptions.reauthorize();
    this.replies.ok(frame.ref, {});
  }

  private armExpiry(): void {
    this.expiryTimer?.cancel();
    const remainingMs = Math.max(0, this.principal.expiresAtMs - this.ctx.clock.now());
    this.expiryTimer = this.ctx.clock.setTimeout(() => this.close(CloseCode.TokenExpired, "token expired"), remainingMs);
  }
}
