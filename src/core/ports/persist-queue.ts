/**
 * The worker's input: events of durable namespaces, taken from the events
 * exchange in order (RabbitMQ quorum queue `sobranie.persist`, bound from
 * `sobranie.events` with `<namespace>.#` for each durable namespace; the
 * in-process `MemoryPersistQueue` in embedded mode). Both pass
 * test/contract/persist-queue.contract.ts.
 *
 * Ordering guarantee: one consumer in the whole cluster is active at a time
 * (single active consumer) and it handles one batch at a time, so the seqs the
 * store assigns follow queue order and live publishes leave in seq order.
 */
export interface PersistMessage {
  readonly routingKey: string;
  /** A copy: valid for as long as the handler keeps it. */
  readonly body: Uint8Array;
  readonly messageId: string | undefined;
  /** Publish time in ms, when the publisher set one. */
  readonly timestampMs: number | undefined;
  /** True when the broker delivered this message before (a consumer died holding it). */
  readonly redelivered: boolean;
  /** The `x-sobranie-exclude-socket` header, relayed live with the event (see LiveDelivery). */
  readonly excludeSocket?: string | undefined;
}

/** Per message: done (acked) or dead-lettered to `sobranie.dead` with the reason (then acked). */
export type PersistOutcome = { kind: "done" } | { kind: "dead-letter"; reason: string; message: string };

export interface PersistBatchHandler {
  /**
   * Handles one batch; outcomes in input order. Resolves only when every
   * `done` message is stored and its live publish confirmed: the queue acks
   * after that. A rejection leaves the whole batch unacked (redelivered to the
   * next consumer or after a reconnect); nothing is lost either way.
   */
  handleBatch(batch: readonly PersistMessage[]): Promise<PersistOutcome[]>;
}

export interface LivePublish {
  readonly routingKey: string;
  readonly body: string;
  readonly messageId: string;
  /** The original publish time, carried along so delivery latency covers persistence. */
  readonly timestampMs: number;
  /** The one socket the event must not reach, as it came in (PersistMessage.excludeSocket). */
  readonly excludeSocket?: string | undefined;
}

export interface PersistQueue {
  /** Connects, asserts its part of the topology, starts consuming. Resolves once consuming. */
  start(handler: PersistBatchHandler): Promise<void>;
  /** Stops taking new batches, lets the batch in flight finish (bounded), closes. Idempotent. */
  stop(): Promise<void>;
  isReady(): boolean;
  /** Publishes to the live exchange with a publisher confirm. Rejects with a retryable error while disconnected. */
  publishLive(message: LivePublish): Promise<void>;
}
