import type { PresenceMessage } from "@sobranie/protocol/presence";

/**
 * Presence traffic between the gateway nodes of one deployment (docs/protocol.md §3):
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
