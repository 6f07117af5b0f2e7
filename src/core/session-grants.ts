import { ErrorCode, UnsubscribeReason } from "@sobranie/protocol/codes";
import type { Channel } from "@sobranie/protocol/channel";
import type { ClientFrameOf } from "@sobranie/protocol/frames";
import type { SubscriptionGrant } from "./ports/authenticator.js";
import type { SessionContext } from "./session-context.js";
import type { SessionReplies } from "./session-replies.js";
import type { Subscription } from "./session-subscriptions.js";
import { checkSubscriptionToken, type GrantCheck } from "./subscription-grants.js";

/**
 * The subscription tokens one session's subscriptions stand on (README
 * "Subscription tokens"): checked when a `subscribe` or a `refresh` with
 * `channel` brings one, a refusal answered here. A subscription on one ends
 * with `unsubscribed` reason `expired` at the token's expiry, unless a newer
 * token renewed it first; the expiry is armed only once the subscription is
 * bound and cancelled by whoever removes its entry.
 */
export class SessionGrants {
  constructor(
    private readonly deps: {
      readonly ctx: SessionContext;
      readonly userId: string;
      readonly replies: SessionReplies;
      isClosed(): boolean;
      /** The channel's entry, while subscribed or being subscribed. */
      subscription(channel: string): Subscription | undefined;
      /** Ends the channel's subscription with `unsubscribed` (see Session.endSubscription). */
      end(channel: string, reason: UnsubscribeReason): void;
    },
  ) {}

  /**
   * The subscription token checked (see checkSubscriptionToken); undefined
   * after a refusal, which is replied here. Not a promise where the token
   * was decided synchronously: callers await only a promise.
   */
  decide(ref: number | undefined, channel: Channel, token: string): SubscriptionGrant | undefined | Promise<SubscriptionGrant | undefined> {
    const checked = checkSubscriptionToken(this.deps.ctx, token, this.deps.userId, channel);
    return checked instanceof Promise ? checked.then((result) => this.grantOf(ref, result)) : this.grantOf(ref, checked);
  }

  /**
   * `refresh` with `channel`: a new subscription token for a channel
   * subscribed with one, checked as `subscribe` checks it; the subscription
   * then lasts until the new token's expiry.
   */
  async refresh(frame: ClientFrameOf<"refresh">, name: string): Promise<void> {
    const { replies } = this.deps;
    const channel = replies.channelOf(frame.ref, name);
    if (!channel) return;
    const subscription = this.deps.subscription(channel.name);
    if (!subscription?.grant) {
      return replies.reject(frame.ref, ErrorCode.BadRequest, `not subscribed to ${channel.name} with a subscription token`);
    }
    const decided = this.decide(frame.ref, channel, frame.token);
    const grant = decided instanceof Promise ? await decided : decided;
    if (!grant || this.deps.isClosed()) return;
    // It may have expired or been ended while the token was verified: a late refresh does not bring it back.
    if (this.deps.subscription(channel.name) !== subscription) {
      return replies.reject(frame.ref, ErrorCode.BadRequest, `not subscribed to ${channel.name} with a subscription token`);
    }
    this.renew(channel.name, subscription, grant);
    replies.ok(frame.ref, {});
  }

  /** The subscription stands on `grant` from now on, and ends at its expiry once bound. */
  renew(name: string, subscription: Subscription, grant: SubscriptionGrant): void {
    subscription.grant = grant;
    if (subscription.bound) this.armExpiry(name, subscription);
  }

  /** Ends the subscription with `unsubscribed` reason `expired` at its grant's expiry (nothing without a grant). */
  armExpiry(name: string, subscription: Subscription): void {
    subscription.expiry?.cancel();
    const grant = subscription.grant;
    if (grant === undefined) return;
    const { clock } = this.deps.ctx;
    const remainingMs = Math.max(0, grant.expiresAtMs - clock.now());
    subscription.expiry = clock.setTimeout(() => {
      if (this.deps.subscription(name) === subscription) this.deps.end(name, UnsubscribeReason.Expired);
    }, remainingMs);
  }

  private grantOf(ref: number | undefined, checked: GrantCheck): SubscriptionGrant | undefined {
    if (checked.ok) return checked.grant;
    const { code, message } = checked.refusal;
    this.deps.replies.reject(ref, code, message);
    return undefined;
  }
}
