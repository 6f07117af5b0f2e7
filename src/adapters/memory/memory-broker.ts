import { type Broker, type BrokerHandler, type DeliveryOutcome, type LiveDelivery, type PublishRequest } from "../../core/ports/broker.js";
import { BrokerUnavailableError } from "@sobranie/protocol/errors";

/** A message as the memory broker holds it. */
export interface MemoryMessage {
  readonly routingKey: string;
  readonly body: Uint8Array;
  readonly messageId: string | undefined;
  readonly timestampMs: number | undefined;
  readonly excludeSocket?: string | undefined;
  /** From the control exchange (every node takes it, whatever is bound): handed to `handleControl`. */
  readonly control?: boolean;
}

export interface MemoryDeadLetter extends MemoryMessage {
  readonly reason: string;
  readonly message: string;
}

export interface MemoryMessageProperties {
  readonly messageId?: string;
  readonly timestampMs?: number;
  readonly excludeSocket?: string | undefined;
}

export interface MemoryBrokerOptions {
  /** Non-durable namespaces: events under them go straight to the live exchange. */
  readonly liveNamespaces: readonly string[];
  /** Called for every publish to `events` (the worker and backends would see it). */
  readonly onEventsPublish?: (message: MemoryMessage) => void;
  readonly onBindingCountChange?: (count: number) => void;
  readonly onReconnect?: () => void;
  /** Like the AMQP node queue's `x-max-length` with drop-head. */
  readonly maxQueueLength?: number;
  /** Bound of the inspectable `deadLetters` and `unroutedEvents` arrays (oldest dropped). */
  readonly maxRetained?: number;
}

const DEFAULT_MAX_QUEUE_LENGTH = 100_000;
const DEFAULT_MAX_RETAINED = 1_000;
/** Dead-letter reason for a handler that threw (the port says: treated as `internal`). */
const HANDLER_THREW_REASON = "internal";
const ROUTING_KEY_SEPARATOR = ".";

const encoder = new TextEncoder();

/**
 * The broker inside the process: the embedded single-node mode and the test
 * double, held to the same contract suite as AmqpBroker.
 *
 * Mirrors RabbitMQ where it matters to the core: one node queue bound with
 * `prefix.#`; deliveries asynchronous and in publish order; messages routed
 * during an outage wait in the queue and flow after `restore()`; publishes
 * during an outage reject with BrokerUnavailableError; a bind during an outage
 * resolves once restored. Events under durable namespaces are not forwarded
 * (the worker relays them later through `deliverLive`).
 */
export class MemoryBroker implements Broker {
  /** Dead-lettered deliveries, newest last, bounded by `maxRetained`. */
  readonly deadLetters: MemoryDeadLetter[] = [];
  /** Events published to `events` under no live namespace (waiting for a worker), bounded. */
  readonly unroutedEvents: MemoryMessage[] = [];

  private readonly liveNamespaces: ReadonlySet<string>;
  private readonly bound = new Set<string>();
  /** This node's queue; entries before `head` are consumed (or dropped by the length limit). */
  private readonly queue: MemoryMessage[] = [];
  private head = 0;
  private handler: BrokerHandler | undefined;
  private phase: "idle" | "running" | "stopped" = "idle";
  private outage = false;
  private drainScheduled = false;
  private restoreWaiters: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];

  constructor(private readonly options: MemoryBrokerOptions) {
    this.liveNamespaces = new Set(options.liveNamespaces);
  }

  async start(handler: BrokerHandler): Promise<void> {
    if (this.phase === "stopped") throw new BrokerUnavailableError("broker already stopped");
    if (this.phase === "running") return;
    this.handler = handler;
    this.phase = "running";
    if (!this.outage) this.becameReady();
  }

  async stop(): Promise<void> {
    if (this.phase === "stopped") return;
    const wasReady = this.isReady();
    this.phase = "stopped";
    if (this.bound.size > 0) {
      this.bound.clear();
      this.options.onBindingCountChange?.(0);
    }
    this.queue.length = 0;
    this.head = 0;
    this.rejectWaiters(new BrokerUnavailableError("broker stopped"));
    if (wasReady) this.handler?.readinessChanged(false);
  }

  isReady(): boolean {
    return this.phase === "running" && !this.outage;
  }

  /** One in-process "connection" carries both ways: publishes are refused exactly while not ready. */
  canPublish(): boolean {
    return this.isReady();
  }

  async bind(prefix: string): Promise<void> {
    if (this.phase === "stopped") throw new BrokerUnavailableError("broker stopped");
    if (!this.bound.has(prefix)) {
      this.bound.add(prefix);
      this.options.onBindingCountChange?.(this.bound.size);
    }
    if (!this.isReady()) await this.waitForRestore();
  }

  async unbind(prefix: string): Promise<void> {
    if (this.bound.delete(prefix)) this.options.onBindingCountChange?.(this.bound.size);
  }

  async publish(request: PublishRequest): Promise<void> {
    if (!this.isReady()) throw new BrokerUnavailableError();
    const message: MemoryMessage = {
      routingKey: request.routingKey,
      body: encoder.encode(request.body),
      messageId: request.messageId,
      timestampMs: request.timestampMs,
      excludeSocket: request.excludeSocket,
    };
    if (request.target === "live") this.route(message);
    else if (request.target === "control") this.enqueue({ ...message, control: true });
    else this.routeEvent(message);
  }

  /** The control exchange as backends use it: reaches this node's queue whatever is bound. */
  deliverControl(body: Uint8Array | string, properties: MemoryMessageProperties = {}): void {
    if (this.phase === "stopped") return;
    this.enqueue({ ...toMessage("control", body, properties), control: true });
  }

  /**
   * The events exchange as backends use it, independent of this node's
   * connection: forwarded to live for live namespaces, else kept in
   * `unroutedEvents` for the (future) worker and for tests.
   */
  deliverEvent(routingKey: string, body: Uint8Array | string, properties: MemoryMessageProperties = {}): void {
    if (this.phase === "stopped") return;
    this.routeEvent(toMessage(routingKey, body, properties));
  }

  /**
   * The live exchange itself: routes a message to this node's queue if a
   * binding matches. For the embedded worker, which relays durable events
   * after storing them. Works during an outage (the message waits in the queue).
   */
  deliverLive(routingKey: string, body: Uint8Array | string, properties: MemoryMessageProperties = {}): void {
    if (this.phase === "stopped") return;
    this.route(toMessage(routingKey, body, properties));
  }

  /** Test hook: the connection is gone. Readiness drops, publishes reject, deliveries pause. */
  simulateOutage(): void {
    if (this.outage) return;
    const wasReady = this.isReady();
    this.outage = true;
    if (wasReady) this.handler?.readinessChanged(false);
  }

  /** Test hook: the connection is back; bindings are (trivially) restored, then ready. */
  restore(): void {
    if (!this.outage) return;
    this.outage = false;
    if (this.phase !== "running") return;
    this.becameReady();
    this.options.onReconnect?.();
  }

  /** Prefixes bound right now (what the server would list). */
  boundPrefixes(): string[] {
    return [...this.bound];
  }

  /** Binds that waited for a connection resolve, readiness is reported, queued messages flow. */
  private becameReady(): void {
    const waiters = this.restoreWaiters;
    this.restoreWaiters = [];
    for (const waiter of waiters) waiter.resolve();
    this.handler?.readinessChanged(true);
    this.scheduleDrain();
  }

  private routeEvent(message: MemoryMessage): void {
    this.options.onEventsPublish?.(message);
    const namespace = message.routingKey.split(ROUTING_KEY_SEPARATOR, 1)[0] ?? "";
    if (this.liveNamespaces.has(namespace)) this.route(message);
    else retain(this.unroutedEvents, message, this.maxRetained());
  }

  private route(message: MemoryMessage): void {
    if (this.matches(message.routingKey)) this.enqueue(message);
  }

  private enqueue(message: MemoryMessage): void {
    this.queue.push(message);
    const maxLength = this.options.maxQueueLength ?? DEFAULT_MAX_QUEUE_LENGTH;
    if (this.queuedCount() > maxLength) this.head += 1;
    this.scheduleDrain();
  }

  private queuedCount(): number {
    return this.queue.length - this.head;
  }

  /** Topic semantics of `prefix.#`: the key equals the prefix or continues it after a dot. */
  private matches(routingKey: string): boolean {
    if (this.bound.has(routingKey)) return true;
    let dot = routingKey.indexOf(ROUTING_KEY_SEPARATOR);
    while (dot >= 0) {
      if (this.bound.has(routingKey.slice(0, dot))) return true;
      dot = routingKey.indexOf(ROUTING_KEY_SEPARATOR, dot + 1);
    }
    return false;
  }

  private scheduleDrain(): void {
    if (this.drainScheduled || !this.isReady() || this.queuedCount() === 0) return;
    this.drainScheduled = true;
    // A macrotask, like a socket read: publishers never see their own delivery synchronously.
    setImmediate(() => {
      this.drainScheduled = false;
      this.drain();
    });
  }

  private drain(): void {
    const handler = this.handler;
    // Index-based so a long queue drains in O(n); a handler may route more messages meanwhile.
    while (handler && this.isReady() && this.head < this.queue.length) {
      const message = this.queue[this.head];
      this.head += 1;
      if (message) this.deliver(handler, message);
    }
    this.queue.splice(0, this.head);
    this.head = 0;
  }

  private deliver(handler: BrokerHandler, message: MemoryMessage): void {
    const delivery: LiveDelivery = message;
    let outcome: DeliveryOutcome;
    try {
      outcome = message.control === true ? handler.handleControl(delivery) : handler.handleDelivery(delivery);
    } catch (error) {
      outcome = { kind: "dead-letter", reason: HANDLER_THREW_REASON, message: error instanceof Error ? error.message : String(error) };
    }
    if (outcome.kind === "dead-letter") {
      retain(this.deadLetters, { ...message, reason: outcome.reason, message: outcome.message }, this.maxRetained());
    }
  }

  private waitForRestore(): Promise<void> {
    return new Promise((resolve, reject) => this.restoreWaiters.push({ resolve, reject }));
  }

  private rejectWaiters(error: Error): void {
    const waiters = this.restoreWaiters;
    this.restoreWaiters = [];
    for (const waiter of waiters) waiter.reject(error);
  }

  private maxRetained(): number {
    return this.options.maxRetained ?? DEFAULT_MAX_RETAINED;
  }
}

function toMessage(routingKey: string, body: Uint8Array | string, properties: MemoryMessageProperties): MemoryMessage {
  return {
    routingKey,
    body: typeof body === "string" ? encoder.encode(body) : body,
    messageId: properties.messageId,
    timestampMs: properties.timestampMs,
    excludeSocket: properties.excludeSocket,
  };
}

function retain<T>(list: T[], item: T, max: number): void {
  list.push(item);
  if (list.length > max) list.splice(0, list.length - max);
}
