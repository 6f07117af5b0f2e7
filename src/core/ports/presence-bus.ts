/**
 * Presence traffic between the gateway nodes of one deployment (CONTRACT §3):
 * the `sobranie.presence` (or `sobranie.presence.<DEPLOYMENT_ID>`) topic
 * exchange in production (`AmqpPresenceBus`), an in-process network of
 * buses in embedded mode and in tests (`MemoryPresenceBus`). Both pass
 * test/contract/presence-bus.contract.ts.
 *
 * Guarantees the tracker relies on: messages of one node reach every other
 * connected node in the order that node published them; a node receives its
 * own messages too (it ignores them); while disconnected nothing is received
 * and publishes are dropped, never queued (the tracker resynchronises through
 * heartbeat digests and snapshots instead). No delivery guarantee beyond that.
 */

/** One (key, user) entry a node holds: key is a channel name, or "" for "the user is online". */
export interface PresenceEntry {
  readonly key: string;
  readonly user: string;
  readonly info?: unknown;
}

export interface PresenceChange extends PresenceEntry {
  readonly op: "add" | "remove";
}

/** Fields every message carries: who sent it, which incarnation of that node, and its position in the node's stream. */
interface FromNode {
  readonly node: string;
  /** Changes when a node restarts under the same id: receivers drop what they held for the old one. */
  readonly incarnation: string;
  /** Sender's time in ms, for lastSeen and the heartbeat-age gauge. */
  readonly atMs: number;
}

export type PresenceMessage =
  /** Local changes of the sender; `seq` counts deltas per incarnation, from 1, without gaps. */
  | (FromNode & { readonly kind: "delta"; readonly seq: number; readonly changes: readonly PresenceChange[] })
  /** Liveness plus what the sender holds: the last delta seq and an order-free digest of its entries. */
  | (FromNode & {
      readonly kind: "heartbeat";
      readonly seq: number;
      readonly digest: string;
      /** The sender has a settled view of the cluster (informational: publisher election uses ids only). */
      readonly synced: boolean;
    })
  /** Asks `target` (or every node, "*") to send a snapshot. */
  | (FromNode & { readonly kind: "sync"; readonly target: string })
  /** Everything the sender holds, as of delta `seq`. */
  | (FromNode & { readonly kind: "snapshot"; readonly seq: number; readonly entries: readonly PresenceEntry[] })
  /** Graceful stop: remove everything the sender held, now. */
  | (FromNode & { readonly kind: "leaving" });

export interface PresenceBusHandler {
  /** Called for every received message, in arrival order. Must not throw. */
  received(message: PresenceMessage): void;
  /**
   * Connected (publishing) or not; after a reconnect the tracker asks for
   * snapshots. Receiving may start a little later (see PresenceBus.start):
   * the tracker tells by hearing its own heartbeats.
   */
  connectionChanged(connected: boolean): void;
}

export interface PresenceBus {
  /**
   * Connects and starts consuming; resolves once the first connection
   * publishes and consumes (retries with backoff until then). After a
   * reconnect a bus may publish before it consumes again: messages sent to it
   * in between are missed, and repaired like any lost message (digests,
   * snapshots).
   */
  start(handler: PresenceBusHandler): Promise<void>;
  /** Fire and forget; dropped while disconnected. */
  publish(message: PresenceMessage): void;
  /** True while publishing works. */
  isConnected(): boolean;
  /** Idempotent. Messages published just before are flushed (bounded wait). */
  stop(): Promise<void>;
}
