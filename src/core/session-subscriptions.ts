import { ErrorCode, UnsubscribeReason } from "@sobranie/protocol/codes";
import { parseChannel, routingPrefix } from "@sobranie/protocol/channel";
import type { ClientFrameOf, ServerFrame } from "@sobranie/protocol/frames";
import type { Principal, SubscriptionGrant } from "./ports/authenticator.js";
import type { Timer } from "@sobranie/protocol/runtime/clock";
import type { SessionSocket } from "./ports/session-socket.js";
import type { SessionContext } from "./session-context.js";
import type { SessionGrants } from "./session-grants.js";
import { SessionRecoveries } from "./session-recovery.js";
import type { SessionReplies } from "./session-replies.js";
import type { SignedGrant } from "./signed-grant.js";

/** One channel subscribed or being subscribed by a session. */
export interface Subscription {
  /** The binding prefix (`namespace.id`). */
  readonly prefix: string;
  /** Set once the binding is confirmed: from then on the entry owns a binding reference. */
  bound: boolean;
  /** The user it is tracked as in the channel's presence (`presence: true`); untracked by whoever removes the entry. */
  trackedAs: string | undefined;
  /** Counted among the channel's subscribers cluster-wide (PresenceHandle.countSubscriber); uncounted by whoever removes the entry. */
  counted: boolean;
  /** The app's signature it stands on (SignedGrant): its right comes from this, not from the connection token. */
  readonly signed: SignedGrant | undefined;
  /** The subscription token it stands on, in a namespace with subscribe `token`: its right comes from this, not from the connection token. */
  grant: SubscriptionGrant | undefined;
  /** Ends the subscription (`expired`) at the grant's expiry; armed once bound, cancelled by whoever removes the entry. */
  expiry: Timer | undefined;
}

/**
 * The subscriptions of one session: `subscribe`, `unsubscribe`, and the ends
 * the server decides (a revocation, a refreshed token, an expired grant).
 *
 * A subscription owns one binding reference from the moment `bound` is set;
 * whoever removes a bound entry (unsubscribe, an end, release) gives it
 * back, and a subscribe that finds its entry gone before `bound` was set
 * gives back the reference it was acquiring. So each reference is given back
 * exactly once.
 */
export class SessionSubscriptions {
  private readonly channels = new Map<string, Subscription>();
  private readonly recoveries: SessionRecoveries;

  constructor(
    private readonly deps: {
      readonly sessionId: string;
      readonly userId: string;
      /** Its subscriptions are counted cluster-wide (SessionWire.countsSubscribers). */
      readonly countsSubscribers: boolean;
      readonly ctx: SessionContext;
      readonly socket: SessionSocket;
      readonly replies: SessionReplies;
      readonly grants: SessionGrants;
      /** The current connection token's principal. */
      principal(): Principal;
      isClosed(): boolean;
      /** The session's send: nothing once it is closed. */
      send(frame: ServerFrame): void;
    },
  ) {
    this.recoveries = new SessionRecoveries({ sessionId: deps.sessionId, ctx: deps.ctx, socket: deps.socket, replies: deps.replies });
  }

  /** The channel's entry, while subscribed or being subscribed. */
  get(channel: string): Subscription | undefined {
    return this.channels.get(channel);
  }

  /** `signed`: the app signed this subscription (SignedGrant), in place of the namespace's subscribe rule. */
  async subscribe(frame: ClientFrameOf<"subscribe">, signed?: SignedGrant): Promise<void> {
    const { ctx, replies, grants } = this.deps;
    const channel = replies.channelOf(frame.ref, frame.channel);
    if (!channel) return;
    const policy = ctx.namespaces.get(channel.namespace);
    let grant: SubscriptionGrant | undefined;
    if (policy?.subscribe === "token" && signed === undefined) {
      if (frame.token === undefined) {
        return replies.reject(frame.ref, ErrorCode.Forbidden, `namespace ${channel.namespace} requires a subscription token ("token" in subscribe, over WebSocket)`);
      }
      const decided = grants.decide(frame.ref, channel, frame.token);
      grant = decided instanceof Promise ? await decided : decided;
      if (!grant || this.deps.isClosed()) return;
    } else if (frame.token !== undefined && policy) {
      return replies.reject(frame.ref, ErrorCode.BadRequest, `namespace ${channel.namespace} takes no subscription token`);
    }
    const principal = this.deps.principal();
    const verdict = signed ? ctx.namespaces.canSubscribeSigned(channel) : ctx.namespaces.canSubscribe(principal, channel, grant);
    if (!verdict.allowed) return replies.rejectAuthorization(frame.ref, channel, verdict.reason);
    if (grant === undefined && ctx.access.isChannelRevoked(principal, channel.name)) return replies.rejectAuthorization(frame.ref, channel, "forbidden");
    if (frame.presence === true && !verdict.policy.presence) {
      return replies.reject(frame.ref, ErrorCode.BadRequest, `namespace ${channel.namespace} has no presence`);
    }
    const existing = this.channels.get(channel.name);
    if (existing) {
      // A repeated subscribe with a token renews the subscription's token as `refresh` would.
      if (grant) grants.renew(channel.name, existing, grant);
      if (frame.presence === true && existing.bound) this.trackIn(channel.name, existing);
      return replies.ok(frame.ref, { recovered: false, missed: 0 });
    }
    if (this.channels.size >= ctx.limits.maxSubscriptions) {
      return replies.reject(frame.ref, ErrorCode.LimitExceeded, `at most ${ctx.limits.maxSubscriptions} subscriptions per connection`);
    }
    const prefix = routingPrefix(channel);
    const subscription: Subscription = { prefix, bound: false, trackedAs: undefined, counted: false, signed, grant, expiry: undefined };
    this.channels.set(channel.name, subscription);
    try {
      await ctx.bindings.acquire(prefix);
    } catch (error) {
      if (this.channels.get(channel.name) === subscription) this.channels.delete(channel.name);
      return replies.rejectFailure(frame.ref, error);
    }
    const stands = (): boolean => !this.deps.isClosed() && this.channels.get(channel.name) === subscription;
    if (!stands()) {
      // Closed, or the subscription ended (an unsubscribe, a revocation) while the binding was being made:
      // the reference is still ours to give back, and an open connection still gets its one reply.
      ctx.bindings.release(prefix);
      if (!this.deps.isClosed()) replies.reject(frame.ref, ErrorCode.NotFound, `the subscription to ${channel.name} ended before it was made`);
      return;
    }
    subscription.bound = true;
    grants.armExpiry(channel.name, subscription);
    if (this.deps.countsSubscribers) {
      subscription.counted = true;
      ctx.presence.countSubscriber(channel.name, this.deps.sessionId);
    }
    if (frame.presence === true) this.trackIn(channel.name, subscription);
    if (frame.since !== undefined && verdict.policy.durable && ctx.store) {
      return this.recoveries.recover(frame.ref, channel, frame.since, ctx.store, stands);
    }
    // Without `since`, or on a node with no store, nothing is recovered and `ok` says so.
    this.deps.socket.subscribe(channel.name);
    replies.ok(frame.ref, { recovered: false, missed: 0 });
  }

  unsubscribe(frame: ClientFrameOf<"unsubscribe">): void {
    const channel = this.deps.replies.channelOf(frame.ref, frame.channel);
    if (!channel) return;
    this.drop(channel.name);
    this.deps.replies.ok(frame.ref, {});
  }

  /** Ends a subscription with an `unsubscribed` frame (see Session.endSubscription); false when there was none. */
  end(channel: string, reason: UnsubscribeReason): boolean {
    if (this.deps.isClosed() || !this.drop(channel)) return false;
    this.deps.send({ op: "unsubscribed", channel, reason });
    return true;
  }

  /** Ends, with `reason`, each subscription standing on a subscription token that `covered` picks. */
  endTokenSubscriptions(covered: (grant: SubscriptionGrant) => boolean, reason: UnsubscribeReason): void {
    for (const [name, subscription] of [...this.channels]) {
      if (subscription.grant && covered(subscription.grant)) this.end(name, reason);
    }
  }

  /**
   * After a refresh: every subscription is checked against the new token as
   * a new `subscribe` would be, and those it no longer allows end with
   * `unsubscribed` reason `forbidden` (sent before the refresh's `ok`). A
   * subscription on a subscription token or an app's signature is left
   * alone: the connection token never granted it.
   */
  reauthorize(): void {
    const { ctx } = this.deps;
    const principal = this.deps.principal();
    for (const [name, subscription] of [...this.channels]) {
      if (subscription.grant || subscription.signed) continue;
      const channel = parseChannel(name);
      const allowed = channel !== undefined && ctx.namespaces.canSubscribe(principal, channel).allowed && !ctx.access.isChannelRevoked(principal, name);
      if (!allowed) this.end(name, UnsubscribeReason.Forbidden);
    }
  }

  /** The session closed: gives back everything its subscriptions held, without telling the client. */
  releaseAll(): void {
    this.recoveries.stopAll();
    for (const [name, subscription] of this.channels) {
      subscription.expiry?.cancel();
      if (subscription.bound) this.deps.ctx.bindings.release(subscription.prefix);
      this.giveBackPresence(name, subscription);
    }
    this.channels.clear();
  }

  /** Removes a subscription and gives back what it held; false when there was none. */
  private drop(channel: string): boolean {
    const subscription = this.channels.get(channel);
    if (subscription === undefined) return false;
    this.channels.delete(channel);
    subscription.expiry?.cancel();
    this.recoveries.stop(channel);
    this.deps.socket.unsubscribe(channel);
    if (subscription.bound) this.deps.ctx.bindings.release(subscription.prefix);
    this.giveBackPresence(channel, subscription);
    return true;
  }

  /** Untracks the subscription's member and uncounts its subscriber, if it has them. */
  private giveBackPresence(channel: string, subscription: Subscription): void {
    if (subscription.trackedAs !== undefined) this.deps.ctx.presence.untrack(channel, subscription.trackedAs);
    if (subscription.counted) this.deps.ctx.presence.uncountSubscriber(channel, this.deps.sessionId);
  }

  private trackIn(channel: string, subscription: Subscription): void {
    if (subscription.trackedAs !== undefined) return;
    const member = subscription.signed?.member ?? { userId: this.deps.userId, info: this.deps.principal().info };
    subscription.trackedAs = member.userId;
    this.deps.ctx.presence.track(channel, member.userId, member.info);
  }
}
