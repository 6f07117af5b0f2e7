import { CHANNEL_ID_PATTERN, NAMESPACE_PATTERN, USER_ID_PATTERN, type Channel } from "@sobranie/protocol/channel";
import type { NamespacePolicy } from "../../core/namespaces.js";

/**
 * The mapping between Pusher channel names and our `namespace:id` channels
 * (docs/pusher.md, "Channel names"). It is reversible: every channel has
 * exactly one Pusher name per variant, fixed by its namespace's policy, so
 * an event of `room:7` reaches the Pusher subscribers of `presence-room.7`
 * (and of `presence-cache-room.7`) and nothing else.
 *
 * - a presence namespace's channels are `presence-<ns>.<id>`;
 * - a namespace anyone may subscribe to (`subscribe: "any"`) has public
 *   channels, `<ns>.<id>`;
 * - every other namespace has private channels, `private-<ns>.<id>`, or
 *   `private-encrypted-<ns>.<id>` for end-to-end encrypted payloads;
 * - `cache-` after the kind prefix (`cache-post.1`, `private-cache-…`,
 *   `presence-cache-…`) asks for the channel's last event on subscribe.
 *
 * Everything else maps to nothing: a name whose prefix does not fit its
 * namespace, an unknown namespace, an id outside our alphabet. A namespace
 * may be given another Pusher prefix (PusherChannelNames).
 */

export type PusherChannelKind = "public" | "private" | "encrypted" | "presence";

export interface PusherChannel {
  /** The name as the Pusher SDK spells it. */
  readonly pusherName: string;
  readonly channel: Channel;
  readonly kind: PusherChannelKind;
  /** A `cache-` channel: its last event is replayed on subscribe (or `pusher:cache_miss`). */
  readonly cache: boolean;
  /** Its events carry their `seq` inside `data` and its history is served (a durable namespace with `pusherSeq`; seq-data.ts). */
  readonly seqInData: boolean;
}

/** Why a Pusher name maps to no channel; the text is what `pusher:subscription_error` reports. */
export type PusherChannelRefusal =
  | { readonly reason: "malformed"; readonly message: string }
  | { readonly reason: "unknown_namespace"; readonly message: string }
  | { readonly reason: "wrong_kind"; readonly message: string };

/** Pusher's own channel-name alphabet and length limit. */
export const PUSHER_CHANNEL_NAME_PATTERN = /^[A-Za-z0-9_\-=@,.;]{1,200}$/;

const KIND_PREFIXES: readonly { prefix: string; kind: PusherChannelKind }[] = [
  { prefix: "private-encrypted-", kind: "encrypted" },
  { prefix: "private-", kind: "private" },
  { prefix: "presence-", kind: "presence" },
];

/** The one kind a namespace's channels have on the Pusher side. */
export function pusherKindOf(policy: NamespacePolicy): "public" | "private" | "presence" {
  if (policy.presence) return "presence";
  return policy.subscribe === "any" ? "public" : "private";
}

/**
 * Pusher channel names over the namespaces. A namespace's Pusher prefix is
 * its name, or the alias `PUSHER_CHANNEL_PREFIXES` gives it
 * (`App.Models.User` for `user`, Laravel's default notification channel);
 * a namespace with an alias is named only by it, so each channel keeps one
 * Pusher name per variant. The id is what follows the last dot (ids have
 * none), so an alias may hold dots.
 */
export class PusherChannelNames {
  private readonly namespaceByPrefix = new Map<string, string>();
  private readonly prefixByNamespace = new Map<string, string>();

  /** `prefixes`: Pusher prefix → namespace, each namespace at most once (the configuration checks it). */
  constructor(
    private readonly policyOf: (namespace: string) => NamespacePolicy | undefined,
    prefixes: Readonly<Record<string, string>> = {},
  ) {
    for (const [prefix, namespace] of Object.entries(prefixes)) {
      this.namespaceByPrefix.set(prefix, namespace);
      this.prefixByNamespace.set(namespace, prefix);
    }
  }

  parse(pusherName: string): PusherChannel | PusherChannelRefusal {
    if (!PUSHER_CHANNEL_NAME_PATTERN.test(pusherName)) {
      return { reason: "malformed", message: `channel name "${clip(pusherName)}" is not a Pusher channel name` };
    }
    const prefixed = KIND_PREFIXES.find(({ prefix }) => pusherName.startsWith(prefix));
    let rest = prefixed ? pusherName.slice(prefixed.prefix.length) : pusherName;
    const kind: PusherChannelKind = prefixed?.kind ?? "public";
    const cache = rest.startsWith("cache-");
    if (cache) rest = rest.slice("cache-".length);
    const dot = rest.lastIndexOf(".");
    const prefix = dot < 0 ? "" : rest.slice(0, dot);
    const id = dot < 0 ? "" : rest.slice(dot + 1);
    const aliased = this.namespaceByPrefix.get(prefix);
    const namespace = aliased ?? prefix;
    if ((aliased === undefined && !NAMESPACE_PATTERN.test(namespace)) || !CHANNEL_ID_PATTERN.test(id)) {
      return { reason: "malformed", message: `channel "${clip(pusherName)}" does not name a channel: expected <namespace>.<id> after the prefix, the id of A-Z, a-z, 0-9, _ or -` };
    }
    const policy = this.policyOf(namespace);
    if (!policy) return { reason: "unknown_namespace", message: `channel "${pusherName}": no namespace "${namespace}"` };
    const expected = pusherKindOf(policy);
    const alias = this.prefixByNamespace.get(namespace);
    if (aliased === undefined && alias !== undefined) {
      return { reason: "wrong_kind", message: `channel "${pusherName}": namespace "${namespace}" is named ${alias} on the Pusher side: ${this.nameOf(namespace, id, expected, cache)}` };
    }
    const fits = kind === expected || (kind === "encrypted" && expected === "private");
    if (!fits) {
      return { reason: "wrong_kind", message: `channel "${pusherName}": namespace "${namespace}" has ${expected} channels, named ${this.nameOf(namespace, id, expected, cache)}` };
    }
    return { pusherName, channel: { namespace, id, name: `${namespace}:${id}` }, kind, cache, seqInData: policy.durable && policy.pusherSeq === true };
  }

  /** `namespace:id` by its plain Pusher name (its namespace's kind, no `cache-`), as channels are listed and reported; undefined for an unknown namespace. */
  plainChannelOf(namespace: string, id: string): Pick<PusherChannel, "pusherName" | "channel" | "kind"> | undefined {
    const policy = this.policyOf(namespace);
    if (!policy) return undefined;
    const kind = pusherKindOf(policy);
    return { pusherName: this.nameOf(namespace, id, kind, false), channel: { namespace, id, name: `${namespace}:${id}` }, kind };
  }

  /** The Pusher name of `namespace:id` in one variant; `parse` reads it back. */
  nameOf(namespace: string, id: string, kind: PusherChannelKind, cache: boolean): string {
    const kindPrefix = KIND_PREFIXES.find((entry) => entry.kind === kind)?.prefix ?? "";
    return `${kindPrefix}${cache ? "cache-" : ""}${this.prefixByNamespace.get(namespace) ?? namespace}.${id}`;
  }
}

/**
 * `#server-to-user-<id>`, where a user signed in with `pusher:signin` gets
 * the events sent to them alone (the SDKs' `sendToUser`). It is backed by
 * `user:<id>`, the user's own channel: undefined for any other name, or an
 * id outside our user-id alphabet.
 */
export const SERVER_TO_USER_PREFIX = "#server-to-user-";

export function serverToUserChannel(pusherName: string): Channel | undefined {
  if (!pusherName.startsWith(SERVER_TO_USER_PREFIX)) return undefined;
  const id = pusherName.slice(SERVER_TO_USER_PREFIX.length);
  return USER_ID_PATTERN.test(id) ? { namespace: "user", id, name: `user:${id}` } : undefined;
}

/**
 * Whether a subscription under this name is shown its channel's subscription
 * count (`pusher_internal:subscription_count`): not on presence channels,
 * whose member count says it, nor on `#server-to-user-`, which is one user's.
 */
export function showsSubscriptionCount(pusher: Pick<PusherChannel, "pusherName" | "kind">): boolean {
  return pusher.kind !== "presence" && !pusher.pusherName.startsWith(SERVER_TO_USER_PREFIX);
}

export function isPusherChannelRefusal(value: PusherChannel | PusherChannelRefusal): value is PusherChannelRefusal {
  return "reason" in value;
}

function clip(text: string): string {
  return text.length > 64 ? `${text.slice(0, 64)}…` : text;
}
