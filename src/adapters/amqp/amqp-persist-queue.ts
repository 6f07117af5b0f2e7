import { BatchPump } from "../../core/batch-pump.js";
import { checkOutcomes, PersistOutcomeMismatchError } from "../../core/persist-outcomes.js";
import { BrokerUnavailableError } from "@sobranie/protocol/errors";
import { type Clock, systemClock } from "@sobranie/protocol/runtime/clock";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import type { LivePublish, PersistBatchHandler, PersistQueue } from "../../core/ports/persist-queue.js";
import { type BackoffOptions, fullJitterDelayMs } from "@sobranie/protocol/runtime/backoff";
import { type HeldDelivery, PersistConsumer, toPersistMessage } from "./persist-consumer.js";
import { AmqpPublishConnection } from "./amqp-publish-connection.js";
import { BrokerAddresses } from "@sobranie/publisher/amqp/broker-addresses";
import { ConfirmPublisher } from "@sobranie/publisher/amqp/confirm-publisher";
import { type AmqpConnectionOptions, connectUntilReady } from "@sobranie/publisher/amqp/reconnect";
import { AmqpSession, type ChannelAttempt } from "@sobranie/publisher/amqp/session";
import { AmqpNames } from "@sobranie/protocol/amqp";
import { assertPersistQueue, assertSharedTopology, ensureDeadQueue, workerConnectionName } from "./topology.js";

export interface AmqpPersistQueueOptions extends AmqpConnectionOptions {
  /** Each is bound `<namespace>.#` from `sobranie.events` to the queue. */
  readonly durableNamespaces: readonly string[];
  /** Default `sobranie.persist`; tests use unique names. */
  readonly queueName?: string;
  readonly maxBatch?: number;
  /** How long the first message of a batch waits for company. */
  readonly maxBatchWaitMs?: number;
  /** Default 2 × maxBatch: the next batch is already here when the current one is acked. */
  readonly prefetch?: number;
  /**
   * `x-delivery-limit` on the queue (see assertPersistQueue); default
   * PERSIST_DELIVERY_LIMIT. It counts broker redeliveries (a worker died or
   * lost its connection while holding the message), not the local retries of
   * a rejected batch.
   */
  readonly deliveryLimit?: number;
  /** Pause after a rejected batch before the next one (full jitter, grows per consecutive failure). */
  readonly retryBackoff?: BackoffOptions;
  /** Bound on each stop() step: the batch in flight, publish confirms, connection close. */
  readonly stopTimeoutMs?: number;
}

const DEFAULT_MAX_BATCH = 200;
const DEFAULT_MAX_BATCH_WAIT_MS = 5;
const PREFETCH_BATCHES = 2;
const DEFAULT_RETRY: BackoffOptions = { initialDelayMs: 200, maxDelayMs: 10_000 };
const DEFAULT_STOP_TIMEOUT_MS = 10_000;
/** Budget for closing a half-set-up connection before retrying. */
const ABANDON_CLOSE_TIMEOUT_MS = 1_000;

type Phase = "idle" | "running" | "stopping" | "stopped";

/**
 * The worker's input from RabbitMQ (docs/protocol.md §3), behind the PersistQueue port.
 *
 * One pump outlives connections: after a loss the batch still running is
 * never acked on the new channel (its tags died with the old one; the broker
 * redelivers it) and the first batch of the new connection waits until that
 * handler call has settled, so two batches never run at once.
 *
 * A rejected batch stays unacked and is retried locally after a backoff
 * (see PersistConsumer for why not nack + requeue).
 *
 * Recovery loop, as in AmqpBroker: lost → not ready → backoff (full jitter) →
 * connect → assert shared topology + persist queue → consume → ready.
 */
export class AmqpPersistQueue implements PersistQueue {
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly queue: string;
  private readonly maxBatch: number;
  /** Dead letters, on the consumer's connection (they must be confirmed before the ack there). */
  private readonly publisher: ConfirmPublisher;
  /** Live copies, on a connection of their own (see AmqpPublishConnection). */
  private readonly relay: AmqpPublishConnection;
  private readonly addresses: BrokerAddresses;
  private readonly abort = new AbortController();
  private readonly pump: BatchPump<HeldDelivery>;
  private phase: Phase = "idle";
  private handler: PersistBatchHandler | undefined;
  private session: AmqpSession | undefined;
  private opening: AmqpSession | undefined;
  private consumer: PersistConsumer | undefined;
  private ready = false;
  private startPromise: Promise<void> | undefined;
  private stopPromise: Promise<void> | undefined;

  constructor(private readonly options: AmqpPersistQueueOptions) {
    this.queue = options.queueName ?? AmqpNames.persistQueue;
    this.logger = options.logger.child({ component: "amqp-persist-queue", nodeId: options.nodeId, queue: this.queue });
    this.clock = options.clock ?? systemClock;
    this.addresses = new BrokerAddresses(options.urls);
    this.publisher = new ConfirmPublisher({ clock: this.clock, confirmTimeoutMs: options.confirmTimeoutMs });
    const { urls, nodeId, logger, reconnect, confirmTimeoutMs } = options;
    this.relay = new AmqpPublishConnection({ urls, nodeId, logger, clock: this.clock, reconnect, confirmTimeoutMs, mode: "routed", what: "live relay", connectionName: `${workerConnectionName(nodeId)}-relay` });
    this.maxBatch = options.maxBatch ?? DEFAULT_MAX_BATCH;
    const retry = options.retryBackoff ?? DEFAULT_RETRY;
    const self = this;
    this.pump = new BatchPump<HeldDelivery>({
      clock: this.clock,
      maxBatch: this.maxBatch,
      maxBatchWaitMs: options.maxBatchWaitMs ?? DEFAULT_MAX_BATCH_WAIT_MS,
      // At least a tenth of the ceiling: full jitter alone could retry at once.
      retryDelayMs: (attempt) => Math.max(retry.initialDelayMs / 10, fullJitterDelayMs(retry, attempt)),
      source: {
        get size() {
          return self.consumer?.size ?? 0;
        },
        get firstArrivalMs() {
          return self.consumer?.firstArrivalMs;
        },
        take: (max) => this.consumer?.take(max) ?? [],
      },
      run: (batch) => this.runBatch(batch),
    });
  }

  /** Resolves once consuming (as the active consumer or a standby) and the live relay is connected. Retries the first connect until stop(). */
  start(handler: PersistBatchHandler): Promise<void> {
    if (this.startPromise) return this.startPromise;
    if (this.phase !== "idle") return Promise.reject(new BrokerUnavailableError("persist queue already stopped"));
    this.handler = handler;
    this.phase = "running";
    this.pump.start();
    this.startPromise = Promise.all([this.relay.start(), this.connectUntilReady(false)]).then(() => undefined);
    return this.startPromise;
  }

  isReady(): boolean {
    return this.ready && this.relay.isReady();
  }

  /**
   * Live messages are not persistent: they are copies of what the store
   * already holds. Resolves on the confirm, or on proof that this broker node
   * routed the message when a destination queue is slow to confirm (see
   * ConfirmPublisher.publishRouted): a gateway whose queue is on a hung node
   * repairs from the store, and the healthy ones must not wait for it.
   */
  publishLive(message: LivePublish): Promise<void> {
    // Allowed while stopping: the batch in flight publishes before it resolves.
    if (this.phase === "idle" || this.phase === "stopped") return Promise.reject(new BrokerUnavailableError());
    return this.relay.publishTo("live", message);
  }

  /**
   * Shutdown order: stop dispatching, let the batch in flight finish and be
   * acked (bounded), wait for publish confirms, close the consumer channel
   * (so the ack is applied), close the connection. No basic.cancel first,
   * on purpose: with single active consumer a cancel hands the queue to the
   * next worker while we still hold prefetched messages, which would reach it
   * after newer ones. Closing the channel returns them to the head of the
   * queue and then activates the next consumer, so order survives a handover.
   */
  stop(): Promise<void> {
    this.stopPromise ??= this.shutdown();
    return this.stopPromise;
  }

  private async shutdown(): Promise<void> {
    const timeoutMs = this.options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
    this.phase = "stopping";
    this.abort.abort();
    if (!(await this.pump.halt(timeoutMs))) {
      this.logger.warn({ timeoutMs }, "batch still running at stop; it is not acked and will be redelivered");
    }
    await this.publisher.settle(timeoutMs);
    await this.relay.stop();
    const session = this.session;
    if (session && this.consumer) await session.guard(withTimeout(this.consumer.close(), timeoutMs)).catch(() => {});
    this.session = undefined;
    this.consumer = undefined;
    this.ready = false;
    this.publisher.detach(new BrokerUnavailableError("persist queue stopped"));
    await Promise.all([session?.close(timeoutMs), this.opening?.close(timeoutMs)]);
    this.phase = "stopped";
  }

  private async runBatch(batch: HeldDelivery[]): Promise<void> {
    const handler = this.handler;
    const consumer = batch[0]?.consumer;
    if (!handler || !consumer) return;
    try {
      const outcomes = checkOutcomes(batch.length, await handler.handleBatch(batch.map(toPersistMessage)));
      await consumer.settle(
        batch.map((held) => held.message),
        outcomes,
      );
    } catch (error) {
      const log = error instanceof PersistOutcomeMismatchError ? this.logger.error : this.logger.warn;
      log.call(this.logger, { err: error, size: batch.length }, "persist batch failed; it stays unacked and is retried after a backoff");
      consumer.putBack(batch);
      throw error;
    }
  }

  private connectUntilReady(isReconnect: boolean): Promise<void> {
    const { clock, logger, abort, options, addresses } = this;
    return connectUntilReady({ what: "persist queue", addresses, clock, logger, signal: abort.signal, backoff: options.reconnect, isReconnect, establish: (url) => this.establish(url) });
  }

  private async establish(url: string): Promise<void> {
    const { options } = this;
    const session = await AmqpSession.open(url, workerConnectionName(options.nodeId), this.logger, this.clock);
    this.opening = session;
    try {
      if (this.abort.signal.aborted) throw new BrokerUnavailableError("persist queue stopped");
      const channel = await session.createChannel();
      const attempt: ChannelAttempt = (step, timeoutMs) => session.attempt(step, timeoutMs);
      // No live namespaces here: the gateways own those bindings (and never remove them).
      await session.guard(assertSharedTopology(channel, []));
      const dead = await ensureDeadQueue(attempt);
      if (!dead.ok) this.logger.warn({ err: dead.error }, dead.hint);
      const persist = await session.guard(
        assertPersistQueue(channel, { queue: this.queue, durableNamespaces: options.durableNamespaces, deliveryLimit: options.deliveryLimit }, attempt),
      );
      if (persist === "declared-without-delivery-limit") {
        this.logger.warn(
          { queue: this.queue },
          `${this.queue} was declared by an earlier version without x-delivery-limit: RabbitMQ 3.x treats that as no limit, RabbitMQ 4 as 20 deliveries; before moving to RabbitMQ 4 set the policy in docs/operations.md (Upgrading a broker set up by an earlier version)`,
        );
      }
      this.publisher.attach(await session.createConfirmChannel());
      const consumer = new PersistConsumer(channel, this.queue, this.publisher, options.nodeId, this.clock, this.logger, () =>
        this.pump.wake(),
      );
      // Set before consuming: the first deliveries may arrive before consume() resolves.
      this.consumer = consumer;
      await session.guard(consumer.start(options.prefetch ?? PREFETCH_BATCHES * this.maxBatch));
      if (session.isLost) throw new BrokerUnavailableError("connection lost during setup");
      if (this.abort.signal.aborted) throw new BrokerUnavailableError("persist queue stopped");
      this.opening = undefined;
      this.session = session;
      session.onLost((error) => this.onSessionLost(session, error));
    } catch (error) {
      this.opening = undefined;
      this.consumer = undefined;
      this.publisher.detach(error);
      await session.close(ABANDON_CLOSE_TIMEOUT_MS);
      throw error;
    }
    this.ready = true;
    this.logger.info({ broker: session.address }, "persist queue consuming");
  }

  private onSessionLost(session: AmqpSession, error: Error): void {
    if (session !== this.session || this.phase !== "running") return;
    this.logger.warn({ err: error }, "persist queue connection lost; reconnecting");
    this.session = undefined;
    this.consumer = undefined;
    this.ready = false;
    this.publisher.detach(error);
    this.connectUntilReady(true).catch((reason: unknown) => this.logger.debug({ err: reason }, "reconnect loop ended"));
  }
}

async function withTimeout(promise: Promise<void>, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
  });
  await Promise.race([promise, timeout]);
  clearTimeout(timer);
}
