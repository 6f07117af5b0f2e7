import { BrokerUnavailableError } from "../../core/ports/broker.js";
import { type Clock, systemClock } from "../../core/ports/clock.js";
import type { Logger } from "../../core/ports/logger.js";
import type { EventsPublisher } from "../../core/ports/outbox.js";
import { BrokerAddresses } from "./broker-addresses.js";
import { ConfirmPublisher } from "./publisher.js";
import { type AmqpConnectionOptions, connectUntilReady } from "./reconnect.js";
import { AmqpSession } from "./session.js";
import { AmqpNames, assertSharedTopology, eventProperties, workerConnectionName } from "./topology.js";

export interface AmqpEventsPublisherOptions extends AmqpConnectionOptions {
  /** Bound on waiting for confirms and closing at stop. */
  readonly stopTimeoutMs?: number;
}

const DEFAULT_STOP_TIMEOUT_MS = 5_000;
const ABANDON_CLOSE_TIMEOUT_MS = 1_000;

/**
 * A confirm-channel publisher to `sobranie.events` on a connection of its own
 * (the outbox relay's), persistent messages, reconnecting with backoff.
 * While disconnected `publish` rejects at once with the retryable
 * `BrokerUnavailableError`, and a confirm that does not come within the
 * confirm timeout rejects with `PublishConfirmTimeoutError`: either way the
 * relay keeps its rows and tries again.
 */
export class AmqpEventsPublisher implements EventsPublisher {
  private readonly publisher: ConfirmPublisher;
  private readonly addresses: BrokerAddresses;
  private readonly abort = new AbortController();
  private readonly logger: Logger;
  private readonly clock: Clock;
  private session: AmqpSession | undefined;
  private opening: AmqpSession | undefined;
  private started: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;

  constructor(private readonly options: AmqpEventsPublisherOptions) {
    this.logger = options.logger.child({ component: "amqp-events-publisher" });
    this.clock = options.clock ?? systemClock;
    this.addresses = new BrokerAddresses(options.urls);
    this.publisher = new ConfirmPublisher({ clock: this.clock, confirmTimeoutMs: options.confirmTimeoutMs });
  }

  /** Resolves once connected; retries until stop() (then rejects). */
  start(): Promise<void> {
    this.started ??= this.connectUntilReady(false);
    return this.started;
  }

  isReady(): boolean {
    return this.publisher.isAttached();
  }

  publish(message: { routingKey: string; body: string; messageId: string; timestampMs: number }): Promise<void> {
    return this.publisher.publish(AmqpNames.eventsExchange, message.routingKey, Buffer.from(message.body, "utf8"), eventProperties({ messageId: message.messageId, timestampMs: message.timestampMs, persistent: true }));
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const timeoutMs = this.options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
      this.abort.abort();
      await this.publisher.settle(timeoutMs);
      this.publisher.detach(new BrokerUnavailableError("events publisher stopped"));
      const session = this.session;
      this.session = undefined;
      await Promise.all([session?.close(timeoutMs), this.opening?.close(timeoutMs)]);
    })();
    return this.stopping;
  }

  private connectUntilReady(isReconnect: boolean): Promise<void> {
    const { clock, logger, abort, options, addresses } = this;
    return connectUntilReady({ what: "events publisher", addresses, clock, logger, signal: abort.signal, backoff: options.reconnect, isReconnect, establish: (url) => this.establish(url) });
  }

  private async establish(url: string): Promise<void> {
    const session = await AmqpSession.open(url, `${workerConnectionName(this.options.nodeId)}-outbox`, this.logger, this.clock);
    this.opening = session;
    try {
      const channel = await session.createConfirmChannel();
      await session.guard(assertSharedTopology(channel, []));
      if (session.isLost || this.abort.signal.aborted) throw new BrokerUnavailableError("events publisher connection lost during setup");
      this.publisher.attach(channel);
      this.opening = undefined;
      this.session = session;
      session.onLost((error) => this.onLost(session, error));
    } catch (error) {
      this.opening = undefined;
      await session.close(ABANDON_CLOSE_TIMEOUT_MS);
      throw error;
    }
    this.logger.info({ broker: session.address }, "events publisher connected");
  }

  private onLost(session: AmqpSession, error: Error): void {
    if (session !== this.session) return;
    this.session = undefined;
    this.publisher.detach(error);
    if (this.abort.signal.aborted) return;
    this.logger.warn({ err: error }, "events publisher connection lost; reconnecting");
    this.connectUntilReady(true).catch((reason: unknown) => this.logger.debug({ err: reason }, "reconnect loop ended"));
  }
}
