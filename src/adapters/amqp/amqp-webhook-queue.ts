import type { Channel, ConsumeMessage } from "amqplib";
import { sleep } from "@sobranie/protocol/runtime/backoff";
import { BrokerUnavailableError } from "@sobranie/protocol/errors";
import { type Clock, systemClock } from "@sobranie/protocol/runtime/clock";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import type { WebhookDelivery, WebhookHandler, WebhookQueue, WebhookRetryState, WebhookSettlement } from "../../core/ports/webhook-queue.js";
import { BrokerAddresses } from "@sobranie/publisher/amqp/broker-addresses";
import { publishDeadLetterOf } from "./dead-letter.js";
import { ConfirmPublisher } from "@sobranie/publisher/amqp/confirm-publisher";
import { type AmqpConnectionOptions, connectUntilReady } from "@sobranie/publisher/amqp/reconnect";
import { AmqpSession } from "@sobranie/publisher/amqp/session";
import { AmqpHeaders } from "@sobranie/protocol/amqp";
import { assertSharedTopology, assertWebhookQueues, ensureDeadQueue, webhookDelayQueueName, workerConnectionName } from "./topology.js";

export interface AmqpWebhookQueueOptions extends AmqpConnectionOptions {
  /** webhookQueueName of the deployment. */
  readonly queueName: string;
  /** Apps with webhooks: their `pusher.<appId>.*` events are bound to the queue. */
  readonly appIds: readonly string[];
  /** The backoff's steps, ascending: one delay queue each (backoffCeilingsMs of the retry policy). */
  readonly delayStepsMs: readonly number[];
  /** Deliveries held at once: enough that one slow receiver's share leaves room for the rest. */
  readonly prefetch?: number;
  /** Bound on stop(): deliveries in flight finish within it or are redelivered. */
  readonly stopTimeoutMs?: number;
}

const DEFAULT_PREFETCH = 1_000;
const DEFAULT_STOP_TIMEOUT_MS = 10_000;
/** Pause before a delivery whose settlements failed (broker trouble) is returned to the queue. */
const REQUEUE_PAUSE_MS = 1_000;
const ABANDON_CLOSE_TIMEOUT_MS = 1_000;

/**
 * The webhook queue on RabbitMQ (docs/pusher.md, "Webhooks"), behind the
 * WebhookQueue port. Every worker consumes it (competing consumers: each
 * message reaches one worker, so each change is sent once), many deliveries
 * at a time, each acked on its own once its handler resolved and every
 * settlement it asked for was confirmed by the broker:
 *
 * - a retry goes to the delay queue of its backoff step with its delay as
 *   `expiration` and its state in headers (attempt, first failure, the
 *   original routing key), and comes back to this queue when it expires;
 * - a dead letter goes to `sobranie.dlx` with the reason headers.
 *
 * A settlement the broker does not confirm returns the delivery to the queue
 * (after a pause) rather than acking it; the channel closing does the same.
 * Delivery is therefore at least once: a worker lost between a receiver's 2xx
 * and the ack sends that group again.
 */
export class AmqpWebhookQueue implements WebhookQueue {
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly queue: string;
  private readonly addresses: BrokerAddresses;
  private readonly publisher: ConfirmPublisher;
  private readonly abort = new AbortController();
  private handler: WebhookHandler | undefined;
  private session: AmqpSession | undefined;
  private channel: Channel | undefined;
  private consumerTag: string | undefined;
  private running = false;
  private ready = false;
  private readonly inFlight = new Set<Promise<void>>();
  private startPromise: Promise<void> | undefined;
  private stopPromise: Promise<void> | undefined;

  constructor(private readonly options: AmqpWebhookQueueOptions) {
    this.queue = options.queueName;
    this.logger = options.logger.child({ component: "amqp-webhook-queue", nodeId: options.nodeId, queue: this.queue });
    this.clock = options.clock ?? systemClock;
    this.addresses = new BrokerAddresses(options.urls);
    this.publisher = new ConfirmPublisher({ clock: this.clock, confirmTimeoutMs: options.confirmTimeoutMs });
  }

  start(handler: WebhookHandler): Promise<void> {
    if (this.startPromise) return this.startPromise;
    if (this.stopPromise) return Promise.reject(new BrokerUnavailableError("webhook queue already stopped"));
    this.handler = handler;
    this.running = true;
    this.startPromise = this.connectUntilReady(false);
    return this.startPromise;
  }

  isReady(): boolean {
    return this.ready;
  }

  /** Stops consuming, lets deliveries in flight settle (bounded), then closes; unacked ones are redelivered to another worker. */
  stop(): Promise<void> {
    this.stopPromise ??= this.shutdown();
    return this.stopPromise;
  }

  private async shutdown(): Promise<void> {
    const timeoutMs = this.options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
    this.running = false;
    this.abort.abort();
    const session = this.session;
    const channel = this.channel;
    // Cancel first, close after: deliveries in flight can still be acked on the open channel.
    if (channel && this.consumerTag) await channel.cancel(this.consumerTag).catch(() => {});
    const settled = Promise.all([...this.inFlight]).then(() => true);
    const giveUp = new AbortController();
    const waited = await Promise.race([settled, sleep(this.clock, timeoutMs, giveUp.signal).then(() => false)]);
    giveUp.abort();
    if (!waited) this.logger.warn({ timeoutMs, inFlight: this.inFlight.size }, "webhook deliveries still in flight at stop; they will be redelivered");
    await this.publisher.settle(timeoutMs);
    // A graceful channel close lets the quorum queue apply the last acks before the connection goes (see PersistConsumer.close).
    if (channel) await channel.close().catch(() => {});
    this.ready = false;
    this.session = undefined;
    this.channel = undefined;
    this.publisher.detach(new BrokerUnavailableError("webhook queue stopped"));
    await session?.close(timeoutMs);
  }

  private connectUntilReady(isReconnect: boolean): Promise<void> {
    const { clock, logger, abort, options, addresses } = this;
    return connectUntilReady({ what: "webhook queue", addresses, clock, logger, signal: abort.signal, backoff: options.reconnect, isReconnect, establish: (url) => this.establish(url) });
  }

  private async establish(url: string): Promise<void> {
    const { options } = this;
    const session = await AmqpSession.open(url, `${workerConnectionName(options.nodeId)}-webhooks`, this.logger, this.clock);
    try {
      if (this.abort.signal.aborted) throw new BrokerUnavailableError("webhook queue stopped");
      const channel = await session.createChannel();
      await session.guard(assertSharedTopology(channel, []));
      const dead = await ensureDeadQueue((step, timeoutMs) => session.attempt(step, timeoutMs));
      if (!dead.ok) this.logger.warn({ err: dead.error }, dead.hint);
      await session.guard(assertWebhookQueues(channel, { queue: this.queue, appIds: options.appIds, delayStepsMs: options.delayStepsMs }));
      this.publisher.attach(await session.createConfirmChannel());
      await session.guard(channel.prefetch(options.prefetch ?? DEFAULT_PREFETCH));
      this.channel = channel;
      const { consumerTag } = await session.guard(channel.consume(this.queue, (message) => this.onMessage(channel, message), { noAck: false }));
      this.consumerTag = consumerTag;
      if (session.isLost) throw new BrokerUnavailableError("connection lost during setup");
      if (this.abort.signal.aborted) throw new BrokerUnavailableError("webhook queue stopped");
      this.session = session;
      session.onLost((error) => this.onSessionLost(session, error));
    } catch (error) {
      this.channel = undefined;
      this.publisher.detach(error);
      await session.close(ABANDON_CLOSE_TIMEOUT_MS);
      throw error;
    }
    this.ready = true;
    this.logger.info({ broker: session.address }, "webhook queue consuming");
  }

  private onSessionLost(session: AmqpSession, error: Error): void {
    if (session !== this.session || !this.running) return;
    this.logger.warn({ err: error }, "webhook queue connection lost; reconnecting");
    this.session = undefined;
    this.channel = undefined;
    this.ready = false;
    this.publisher.detach(error);
    this.connectUntilReady(true).catch((reason: unknown) => this.logger.debug({ err: reason }, "reconnect loop ended"));
  }

  private onMessage(channel: Channel, message: ConsumeMessage | null): void {
    if (message === null) {
      // Cancelled by the broker (queue deleted): closing the channel makes the loop declare and consume again.
      this.logger.warn({}, "webhook queue consumer cancelled by the broker");
      channel.close().catch(() => {});
      return;
    }
    const work = this.process(channel, message);
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }

  private async process(channel: Channel, message: ConsumeMessage): Promise<void> {
    const handler = this.handler;
    if (!handler) return;
    const delivery = toDelivery(message);
    try {
      const settlements = await handler.handle(delivery);
      await Promise.all(settlements.map((settlement) => this.publishSettlement(delivery, message, settlement)));
    } catch (error) {
      this.logger.warn({ err: error, routingKey: delivery.routingKey }, "webhook delivery not settled; returned to the queue after a pause");
      await sleep(this.clock, REQUEUE_PAUSE_MS, this.abort.signal);
      settleOn(() => channel.nack(message, false, true));
      return;
    }
    settleOn(() => channel.ack(message));
  }

  private publishSettlement(delivery: WebhookDelivery, message: ConsumeMessage, settlement: WebhookSettlement): Promise<void> {
    const body = Buffer.from(settlement.body, "utf8");
    if (settlement.kind === "retry") {
      const queue = webhookDelayQueueName(this.queue, stepFor(this.options.delayStepsMs, settlement.delayMs));
      return this.publisher.publish("", queue, body, {
        mandatory: true,
        persistent: true,
        contentType: "application/json",
        expiration: String(Math.max(1, Math.round(settlement.delayMs))),
        headers: retryHeaders(delivery.routingKey, settlement.retry),
      });
    }
    const headers = { ...(settlement.retry ? retryHeaders(delivery.routingKey, settlement.retry) : {}) };
    return publishDeadLetterOf(
      this.publisher,
      delivery.routingKey,
      body,
      { contentType: "application/json", messageId: message.properties.messageId, timestamp: message.properties.timestamp, headers },
      { reason: settlement.reason, text: settlement.message, nodeId: this.options.nodeId, queue: this.queue },
    );
  }
}

function retryHeaders(routingKey: string, retry: WebhookRetryState): Record<string, unknown> {
  return {
    [AmqpHeaders.webhookAttempt]: retry.attempt,
    [AmqpHeaders.webhookFirstFailureMs]: retry.firstFailureMs,
    [AmqpHeaders.webhookRoutingKey]: routingKey,
  };
}

/** Our view of a delivery; a retry is known by its attempt header (the broker keeps headers through dead-lettering). */
function toDelivery(message: ConsumeMessage): WebhookDelivery {
  const headers = message.properties.headers ?? {};
  const content = message.content;
  const body = new Uint8Array(content.buffer, content.byteOffset, content.byteLength);
  const attempt = headers[AmqpHeaders.webhookAttempt];
  const firstFailureMs = headers[AmqpHeaders.webhookFirstFailureMs];
  const originalKey = headers[AmqpHeaders.webhookRoutingKey];
  const routingKey = typeof originalKey === "string" ? originalKey : message.fields.routingKey;
  if (typeof attempt !== "number" || typeof firstFailureMs !== "number") return { routingKey, body, retry: undefined };
  return { routingKey, body, retry: { attempt, firstFailureMs } };
}

/** The delay queue of `delayMs`: the smallest step at least as long (the last for anything longer). */
function stepFor(stepsMs: readonly number[], delayMs: number): number {
  return stepsMs.find((step) => step >= delayMs) ?? stepsMs.at(-1) ?? 0;
}

/** Acks or nacks unless the channel is gone (the broker then redelivers the message). */
function settleOn(settle: () => void): void {
  try {
    settle();
  } catch {
    // Channel closed meanwhile: the message is redelivered.
  }
}
