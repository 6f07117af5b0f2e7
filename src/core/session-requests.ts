import { ErrorCode } from "@sobranie/protocol/codes";
import { EVENT_TYPE_PATTERN, EVENT_TYPE_RULE } from "@sobranie/protocol/channel";
import type { ClientFrameOf } from "@sobranie/protocol/frames";
import type { Principal, SubscriptionGrant } from "./ports/authenticator.js";
import type { SessionContext } from "./session-context.js";
import type { SessionReplies } from "./session-replies.js";
import type { SignedGrant } from "./signed-grant.js";

/**
 * The requests a session answers without changing its own state: `publish`,
 * `read`, `presence` and `status`. Each is authorized by the current
 * connection token, or by the subscription token or app signature of the
 * channel's subscription where it has one, and gets exactly one reply.
 */
export class SessionRequests {
  constructor(
    private readonly deps: {
      readonly userId: string;
      readonly ctx: SessionContext;
      readonly replies: SessionReplies;
      /** The current connection token's principal. */
      principal(): Principal;
      /** The subscription token the session's subscription of `channel` stands on, if any. */
      grantOn(channel: string): SubscriptionGrant | undefined;
      /** The app's signature the session's subscription of `channel` stands on, if any. */
      signedOn(channel: string): SignedGrant | undefined;
      /** See SessionWire.excludeId. */
      readonly excludeId: string | undefined;
    },
  ) {}

  async publish(frame: ClientFrameOf<"publish">): Promise<void> {
    const { ctx, replies } = this.deps;
    const channel = replies.channelOf(frame.ref, frame.channel);
    if (!channel) return;
    if (!EVENT_TYPE_PATTERN.test(frame.type)) {
      return replies.reject(frame.ref, ErrorCode.BadRequest, EVENT_TYPE_RULE);
    }
    const signed = this.deps.signedOn(channel.name);
    const verdict = signed ? ctx.namespaces.canPublishSigned(channel) : ctx.namespaces.canPublish(this.deps.principal(), channel, this.deps.grantOn(channel.name));
    if (!verdict.allowed) return replies.rejectAuthorization(frame.ref, channel, verdict.reason);
    const userId = signed?.member?.userId ?? this.deps.userId;
    try {
      const id = await ctx.publishFromClient({ channel, policy: verdict.policy, type: frame.type, data: frame.data, userId, excludeSocket: this.deps.excludeId });
      replies.ok(frame.ref, { id });
    } catch (error) {
      replies.rejectFailure(frame.ref, error);
    }
  }

  /** `read`: moves the user's inbox read mark; every connection of the user hears of it. */
  async read(frame: ClientFrameOf<"read">): Promise<void> {
    const { ctx, replies, userId } = this.deps;
    const channel = replies.channelOf(frame.ref, frame.channel);
    if (!channel) return;
    if (channel.namespace !== "user" || channel.id !== userId) {
      return replies.reject(frame.ref, ErrorCode.Forbidden, "read marks exist only on your own user channel");
    }
    const store = ctx.store;
    if (!store) return replies.reject(frame.ref, ErrorCode.Unavailable, "no notification store on this node");
    try {
      const upTo = await store.markRead(userId, frame.upTo);
      replies.ok(frame.ref, { upTo });
      ctx.announceRead(userId, upTo);
    } catch (error) {
      replies.rejectFailure(frame.ref, error);
    }
  }

  /** `presence`: members of a channel the caller may subscribe to (counts only above the listing limit). */
  presence(frame: ClientFrameOf<"presence">): void {
    const { ctx, replies } = this.deps;
    const channel = replies.channelOf(frame.ref, frame.channel);
    if (!channel) return;
    const verdict = ctx.namespaces.canSubscribe(this.deps.principal(), channel, this.deps.grantOn(channel.name));
    if (!verdict.allowed) return replies.rejectAuthorization(frame.ref, channel, verdict.reason);
    if (!verdict.policy.presence) return replies.reject(frame.ref, ErrorCode.BadRequest, `namespace ${channel.namespace} has no presence`);
    replies.ok(frame.ref, { ...ctx.presence.members(channel.name) });
  }

  /** `status`: the online status of the users asked about, cluster-wide. */
  async status(frame: ClientFrameOf<"status">): Promise<void> {
    this.deps.replies.ok(frame.ref, { users: await this.deps.ctx.presence.statuses(frame.users) });
  }
}
