import type { Channel } from "@sobranie/protocol/channel";
import type { Principal, SubscriptionGrant } from "./ports/authenticator.js";

/**
 * What a namespace allows (docs/protocol.md §2). Built-ins below; more come from the
 * `NAMESPACES` setting.
 *
 * - subscribe `self`: only the user whose id equals the channel id;
 *   `claim`: users whose JWT `channels` claim matches; `any`: any authenticated user;
 *   `token`: users holding a subscription token for the channel (docs/protocol.md
 *   §10), sent with `subscribe` and refreshed on its own;
 *   the connection token's `channels` claim grants nothing here.
 * - publish `none`: clients may not publish; `backend`: client publishes go to
 *   the events exchange as `client.<ns>.<id>.<type>` for backends to act on;
 *   `broadcast`: straight to the live exchange, to every subscriber (typing indicators).
 * - durable: events go through the worker (stored, `seq`, recovery).
 * - presence: `subscribe` with `presence: true` is honoured.
 * - pusherSeq (durable namespaces only): Pusher subscribers get each event's
 *   `seq` inside its `data` and may fetch what they missed from the history
 *   endpoint (docs/pusher.md, "Recovery"); absent means false.
 */
export interface NamespacePolicy {
  readonly name: string;
  readonly subscribe: "self" | "claim" | "any" | "token";
  readonly publish: "none" | "backend" | "broadcast";
  readonly durable: boolean;
  readonly presence: boolean;
  readonly pusherSeq?: boolean;
}

export const BUILT_IN_NAMESPACES: readonly NamespacePolicy[] = [
  { name: "user", subscribe: "self", publish: "none", durable: true, presence: false },
  { name: "room", subscribe: "claim", publish: "backend", durable: true, presence: true },
  { name: "post", subscribe: "any", publish: "none", durable: false, presence: false },
  { name: "status", subscribe: "any", publish: "none", durable: false, presence: false },
];

export type Authorization = { allowed: true; policy: NamespacePolicy } | { allowed: false; reason: "not_found" | "forbidden" };

export class NamespaceRegistry {
  private readonly byName: ReadonlyMap<string, NamespacePolicy>;

  constructor(policies: readonly NamespacePolicy[]) {
    this.byName = new Map(policies.map((policy) => [policy.name, policy]));
  }

  get(name: string): NamespacePolicy | undefined {
    return this.byName.get(name);
  }

  all(): NamespacePolicy[] {
    return [...this.byName.values()];
  }

  /** Namespaces whose events skip the worker: forwarded events → live by the broker. */
  liveNamespaces(): string[] {
    return this.all()
      .filter((policy) => !policy.durable)
      .map((policy) => policy.name);
  }

  /** `grant`: the verified subscription token of the channel, for a namespace with subscribe `token` (the only one it counts for). */
  canSubscribe(principal: Principal, channel: Channel, grant?: SubscriptionGrant): Authorization {
    const policy = this.byName.get(channel.namespace);
    if (!policy) return { allowed: false, reason: "not_found" };
    const allowed =
      policy.subscribe === "any" ||
      (policy.subscribe === "self" && channel.id === principal.userId) ||
      (policy.subscribe === "claim" && claimMatches(principal.channelPatterns, channel)) ||
      (policy.subscribe === "token" && grant !== undefined && grant.channel === channel.name && grant.userId === principal.userId);
    return allowed ? { allowed: true, policy } : { allowed: false, reason: "forbidden" };
  }

  /** A subscription the app signed (SignedGrant): allowed in every namespace that exists. */
  canSubscribeSigned(channel: Channel): Authorization {
    const policy = this.byName.get(channel.namespace);
    return policy ? { allowed: true, policy } : { allowed: false, reason: "not_found" };
  }

  /** A client publish on a channel subscribed with the app's signature: the namespace must take client publishes. */
  canPublishSigned(channel: Channel): Authorization {
    const subscribe = this.canSubscribeSigned(channel);
    if (!subscribe.allowed) return subscribe;
    return subscribe.policy.publish === "none" ? { allowed: false, reason: "forbidden" } : subscribe;
  }

  /** Client publish needs the namespace to accept publishes and the same right as subscribing. */
  canPublish(principal: Principal, channel: Channel, grant?: SubscriptionGrant): Authorization {
    const subscribe = this.canSubscribe(principal, channel, grant);
    if (!subscribe.allowed) return subscribe;
    return subscribe.policy.publish === "none" ? { allowed: false, reason: "forbidden" } : subscribe;
  }
}

/** `room:7` matches `room:7`; `room:*` matches every room; `*` alone is not a pattern. */
function claimMatches(patterns: readonly string[], channel: Channel): boolean {
  return patterns.some((pattern) => pattern === channel.name || pattern === `${channel.namespace}:*`);
}
