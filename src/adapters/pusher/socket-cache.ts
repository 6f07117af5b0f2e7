import type { NamespaceRegistry } from "../../core/namespaces.js";
import type { EventStore, StoredEvent } from "../../core/ports/event-store.js";

/** Why a `cache-` channel cannot be subscribed, as `pusher:subscription_error` reports it. */
export interface CacheRefusal {
  readonly message: string;
  /** 400: the channel can never be a cache channel; 503: not on this node now. */
  readonly status: 400 | 503;
}

/**
 * Where `cache-` channels get their last event (docs/pusher.md "Cache
 * channels"): the event store, which holds the events of durable namespaces
 * only. A live namespace keeps no event anywhere, so its channels cannot be
 * cache channels: refused, naming why, rather than answered with a
 * `pusher:cache_miss` that would claim the channel never had an event.
 */
export class PusherCacheSource {
  constructor(
    private readonly namespaces: NamespaceRegistry,
    /** This node's event store; undefined on a gateway without DATABASE_URL. */
    private readonly store: EventStore | undefined,
  ) {}

  /** Why `namespace`'s `cache-` channels cannot be subscribed here; undefined when they can. */
  refusal(namespace: string, pusherName: string): CacheRefusal | undefined {
    if (this.namespaces.get(namespace)?.durable !== true) {
      return { message: `${pusherName}: cache channels replay the last stored event, and namespace "${namespace}" is not durable (its events are not stored): subscribe without "cache-"`, status: 400 };
    }
    if (!this.store) return { message: `${pusherName}: this node has no event store (DATABASE_URL) to replay the last event from`, status: 503 };
    return undefined;
  }

  /** The channel's last stored event; undefined when it has none. Rejects when the store cannot be read. */
  last(channel: string): Promise<StoredEvent | undefined> {
    if (!this.store) return Promise.reject(new Error("no event store on this node"));
    return this.store.lastEvent(channel);
  }
}
