import { BrokerUnavailableError, type PublishTarget } from "../../core/ports/broker.js";
import { type Clock, systemClock } from "../../core/ports/clock.js";
import type { Logger } from "../../core/ports/logger.js";
import type { EventsPublisher } from "../../core/ports/outbox.js";
import { BrokerAddresses } from "./broker-addresses.js";
import { ConfirmPublisher } from "./publisher.js";
import { type AmqpConnectionOptions, connectUntilReady } from "./reconnect.js";
import { AmqpSession } from "./session.js";
import { AmqpNames, assertSharedTopology, eventProperties } from "./topology.js";

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

type OutgoingMessage = { readonly routingKey: string; readonly body: string; readonly messageId: string; readonly timestampMs: number };

const DEFAULT_STOP_TIMEOUT_MS = 5_000;
const ABANDON_CLOSE_TIMEOUT_MS = 1_000;

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
  private readonly addresses: BrokerAddresses;
  private readonly abort = new AbortController();
  private readonly logger: Logger;
  private readonly clock: Clock;
  private session: AmqpSession | undefined;
  private opening: AmqpSession | undefined;
  private started: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;

  constructor(private readonly options: AmqpPublishConnectionOptions) {
    this.logger = options.logger.child({ component: "amqp-publish-connection", connection: options.what });
    this.clock = options.clock ?? systemClock;
    this.addresses = new BrokerAddresses(options.urls);
    this.publisher = new ConfirmPublisher({
      clock: this.clock,
      confirmTimeoutMs: options.confirmTimeoutMs,
      onUnresponsive: (error) => this.session?.abandon(error),
    });
  }

  /** Resolves once connected; retries until stop() (then rejects). */
  start(): Promise<void> {
    this.started ??= this.connectUntilReady(false);
    return this.started;
  }

  isReady(): boolean {
    return this.publisher.isAttached();
  }

  /** To `sobranie.events` (persistent, for backends and the worker): the EventsPublisher port of the outbox. */
  publish(message: OutgoingMessage): Promise<void> {
    return this.publishTo("events", message);
  }

  /** `events` messages are persistent; `live` ones are copies for gateways. */
  publishTo(target: PublishTarget, message: OutgoingMessage): Promise<void> {
    const content = Buffer.from(message.body, "utf8");
    const properties = eventProperties({ messageId: message.messageId, timestampMs: message.timestampMs, persistent: target === "events" });
    const exchange = target === "events" ? AmqpNames.eventsExchange : AmqpNames.liveExchange;
    return this.options.mode === "routed"
      ? this.publisher.publishRouted(exchange, message.routingKey, content, properties)
      : this.publisher.publish(exchange, message.routingKey, content, properties);
  }

  /** Waits for outstanding confirms (bounded), then closes. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const timeoutMs = this.options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
      this.abort.abort();
      await this.publisher.settle(timeoutMs);
      this.publisher.detach(new BrokerUnavailableError(`${this.options.what} stopped`));
      const session = this.session;
      this.session = undefined;
      await Promise.all([session?.close(timeoutMs), this.opening?.close(timeoutMs)]);
    })();
    return this.stopping;
  }

  private connectUntilReady(isReconnect: boolean): Promise<void> {
    const { clock, logger, abort, options, addresses } = this;
    const what = options.what;
    return connectUntilReady({ what, addresses, clock, logger, signal: abort.signal, backoff: options.reconnect, isReconnect, establish: (url) => this.establish(url) });
  }

  private async establish(url: string): Promise<void> {
    const session = await AmqpSession.open(url, this.options.connectionName, this.logger, this.clock);
    this.opening = session;
    try {
      const channel = await session.createConfirmChannel();
      await session.guard(assertSharedTopology(channel, []));
      if (session.isLost || this.abort.signal.aborted) throw new BrokerUnavailableError(`${this.options.what} connection lost during setup`);
      this.publisher.attach(channel);
      this.opening = undefined;
      this.session = session;
      session.onLost((error) => this.onLost(session, error));
    } catch (error) {
      this.opening = undefined;
      await session.close(ABANDON_CLOSE_TIMEOUT_MS);
      throw error;
    }
    this.logger.info({ broker: session.address }, `${this.options.what} connected`);
  }

  private onLost(session: AmqpSession, error: Error): void {
    if (session !== this.session) return;
    this.session = undefined;
    this.publisher.detach(error);
    if (this.abort.signal.aborted) return;
    this.logger.warn({ err: error }, `${this.options.what} connection lost; reconnecting`);
    this.connectUntilReady(true).catch((reason: unknown) => this.logger.debug({ err: reason }, "reconnect loop ended"));
  }
}
