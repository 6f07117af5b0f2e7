import type { ConfirmChannel } from "amqplib";
import { BrokerUnavailableError } from "@sobranie/protocol/errors";
import { type PublishTarget } from "../../core/ports/broker.js";
import { systemClock } from "@sobranie/protocol/runtime/clock";
import type { EventsPublisher } from "../../core/ports/outbox.js";
import { ConfirmPublisher } from "@sobranie/publisher/amqp/confirm-publisher";
import type { AmqpConnectionOptions } from "@sobranie/publisher/amqp/reconnect";
import { SessionLoop } from "./session-loop.js";
import { AmqpNames, eventProperties } from "@sobranie/protocol/amqp";
import { assertSharedTopology } from "./topology.js";

export interface AmqpPublishConnectionOptions extends AmqpConnectionOptions {
  /**
   * `confirmed`: each publish resolves on its confirm (timeout included).
   * `routed`: live copies of stored events also resolve once the broker node
   * routed them (ConfirmPublisher.publishRouted).
   */
  readonly mode: "confirmed" | "routed";
  /** `connection_name` in the management UI. */
  readonly connectionName: string;
  /** Names the connection in logs. */
  readonly what: string;
  /** Bound on waiting for confirms and closing at stop. */
  readonly stopTimeoutMs?: number;
}

type OutgoingMessage = {
  readonly routingKey: string;
  readonly body: string;
  readonly messageId: string;
  readonly timestampMs: number;
  /** See PublishRequest.excludeSocket. */
  readonly excludeSocket?: string | undefined;
};

const DEFAULT_STOP_TIMEOUT_MS = 5_000;
const TARGET_EXCHANGES: Record<PublishTarget, string> = {
  events: AmqpNames.eventsExchange,
  live: AmqpNames.liveExchange,
  control: AmqpNames.controlExchange,
};

/**
 * A confirm-channel publisher on a connection of its own, reconnecting with
 * backoff over the broker addresses. While disconnected `publish` rejects at
 * once with the retryable BrokerUnavailableError, and a confirm not in within
 * the confirm timeout with PublishConfirmTimeoutError.
 *
 * Why publishers never share a consumer's connection: RabbitMQ's credit flow
 * stops reading a connection that has routed some 800 messages to a queue on
 * a hung node (measured on 3.10), and a connection that is not read delivers
 * no acks either, so its consumer stalls too. Uses: the gateway's client and
 * HTTP publishes, the outbox relay, and the worker's live relay (`routed`).
 * A routed publisher's probe notices the block: the connection is given up
 * and a new one, with fresh credit, takes over; the caller retries what was
 * stuck.
 */
export class AmqpPublishConnection implements EventsPublisher {
  private readonly publisher: ConfirmPublisher;
  private readonly loop: SessionLoop<ConfirmChannel>;

  constructor(private readonly options: AmqpPublishConnectionOptions) {
    const logger = options.logger.child({ component: "amqp-publish-connection", connection: options.what });
    const clock = options.clock ?? systemClock;
    this.publisher = new ConfirmPublisher({ clock, confirmTimeoutMs: options.confirmTimeoutMs, onUnresponsive: (error) => this.loop.current?.abandon(error) });
    this.loop = new SessionLoop<ConfirmChannel>({
      urls: options.urls,
      nodeId: options.nodeId,
      logger,
      clock,
      reconnect: options.reconnect,
      what: options.what,
      connectionName: options.connectionName,
      setup: async (session) => {
        const channel = await session.createConfirmChannel();
        await assertSharedTopology(channel, []);
        return channel;
      },
      up: (channel) => this.publisher.attach(channel),
      down: (error) => this.publisher.detach(error),
    });
  }

  /** Resolves once connected; retries until stop() (then rejects). */
  start(): Promise<void> {
    return this.loop.start();
  }

  /**
   * True from the moment a connection's setup is done (confirm channel open,
   * topology asserted) until its loss is noticed, so a publish made as soon
   * as it turns true goes out on that channel.
   */
  isReady(): boolean {
    return this.publisher.isAttached();
  }

  /** To `sobranie.events` (persistent, for backends and the worker): the EventsPublisher port of the outbox. */
  publish(message: OutgoingMessage): Promise<void> {
    return this.publishTo("events", message);
  }

  /** `events` messages are persistent; `live` ones are copies for gateways, `control` ones commands to them (node queues are not durable). */
  publishTo(target: PublishTarget, message: OutgoingMessage): Promise<void> {
    const content = Buffer.from(message.body, "utf8");
    const properties = eventProperties({ messageId: message.messageId, timestampMs: message.timestampMs, persistent: target === "events", excludeSocket: message.excludeSocket });
    const exchange = TARGET_EXCHANGES[target];
    return this.options.mode === "routed"
      ? this.publisher.publishRouted(exchange, message.routingKey, content, properties)
      : this.publisher.publish(exchange, message.routingKey, content, properties);
  }

  /** Waits for outstanding confirms (bounded), then closes. Idempotent. */
  async stop(): Promise<void> {
    const timeoutMs = this.options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
    await this.publisher.settle(timeoutMs);
    this.publisher.detach(new BrokerUnavailableError(`${this.options.what} stopped`));
    await this.loop.stop(timeoutMs);
  }
}
