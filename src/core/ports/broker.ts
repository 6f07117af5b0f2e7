/**
 * The message broker as the gateway sees it: RabbitMQ in production
 * (`AmqpBroker`), an in-process broker in embedded mode and in tests
 * (`MemoryBroker`). Both pass test/contract/broker.contract.ts.
 *
 * Topology (docs/protocol.md §3): backends publish to the events exchange with the
 * routing key `namespace.id.type`. Non-durable namespaces are forwarded from
 * the events exchange to the live exchange; durable ones reach it through the
 * worker. Each gateway node consumes its own queue, bound on the live exchange
 * with `namespace.id.#` for each channel that has local subscribers.
 */

/** One message taken from this node's queue. `body` is only valid during the handler call. */
export interface LiveDelivery {
  readonly routingKey: string;
  readonly body: Uint8Array;
  /** AMQP `message_id`, when the publisher set it. */
  readonly messageId: string | undefined;
  /** AMQP `timestamp` in ms, when the publisher set it. */
  readonly timestampMs: number | undefined;
  /** The `x-sobranie-exclude-socket` header: the one socket (a Pusher socket_id) this event must not reach. */
  readonly excludeSocket?: string | undefined;
}

/**
 * What the consumer decided for a delivery. `dead-letter` sends the message to
 * `sobranie.dead` with the reason; the broker acks it either way, so a poison
 * message never blocks the queue.
 */
export type DeliveryOutcome = { kind: "delivered" } | { kind: "dead-letter"; reason: string; message: string };

export interface BrokerHandler {
  /** Called for every delivery, in queue order. Must not throw; a throw is treated as dead-letter `internal`. */
  handleDelivery(delivery: LiveDelivery): DeliveryOutcome;
  /**
   * Called for every message of the control exchange (`sobranie.control`),
   * which every node's queue is bound to, in queue order with the rest.
   * Same rules as `handleDelivery`.
   */
  handleControl(delivery: LiveDelivery): DeliveryOutcome;
  /**
   * Called whenever readiness (`Broker.isReady`) changes: connected, topology
   * asserted, bindings restored. False means deliveries may have been missed.
   */
  readinessChanged(ready: boolean): void;
}

/**
 * Where a publish goes. `events` reaches backends (and the worker); `live`
 * reaches gateways directly; `control` reaches every gateway node (its
 * routing key is the command name, for operators; nodes ignore it).
 */
export type PublishTarget = "events" | "live" | "control";

export interface PublishRequest {
  readonly target: PublishTarget;
  readonly routingKey: string;
  readonly body: string;
  readonly messageId: string;
  readonly timestampMs: number;
  /**
   * The socket id of a connection the event must not be delivered to: the
   * publisher's own (Pusher's `socket_id` exclusion). Travels as the AMQP
   * header `x-sobranie-exclude-socket` (docs/protocol.md §3); undefined: none.
   */
  readonly excludeSocket?: string | undefined;
}

/** Namespaces whose events travel events → live directly (no worker in between). */
export interface BrokerTopologyOptions {
  readonly liveNamespaces: readonly string[];
}

export interface Broker {
  /**
   * Connects, asserts the topology and starts consuming this node's queue.
   * Resolves once ready; rejects only if the first connection cannot be made
   * and `start` was asked not to wait (see the adapter options).
   */
  start(handler: BrokerHandler): Promise<void>;
  /** Cancels the consumer, removes this node's bindings, closes. Idempotent. */
  stop(): Promise<void>;
  /**
   * True while deliveries flow: connected with the topology asserted, the
   * node queue consumed and every binding restored (what `readinessChanged`
   * reports). Says nothing about publishing, which may go over a connection
   * of its own: see `canPublish`.
   */
  isReady(): boolean;
  /**
   * True while `publish` would be sent at once rather than rejected with
   * `BrokerUnavailableError`: the connection publishes go over is up with
   * its confirm channel open. It may be false while `isReady` is true (and
   * the other way round) where publishes have a connection of their own.
   */
  canPublish(): boolean;
  /**
   * Binds `prefix.#` on the live exchange to this node's queue. Resolves once
   * the broker confirmed the binding; concurrent calls are pipelined. While
   * disconnected it waits for the reconnect (the binding is restored there).
   */
  bind(prefix: string): Promise<void>;
  /** Removes the binding made by `bind`. */
  unbind(prefix: string): Promise<void>;
  /**
   * Publishes with a publisher confirm: resolves once the broker took
   * responsibility for the message. Rejects with `BrokerUnavailableError`
   * at once while disconnected (callers answer `unavailable`).
   */
  publish(request: PublishRequest): Promise<void>;
}
