import type { Channel, ConsumeMessage } from "amqplib";
import { type Clock, systemClock } from "../../core/ports/clock.js";
import type { Logger } from "../../core/ports/logger.js";
import type { PresenceBus, PresenceBusHandler, PresenceMessage } from "../../core/ports/presence-bus.js";
import { decodePresenceMessage, encodePresenceMessage } from "../../protocol/presence.js";
import { BrokerAddresses } from "./broker-addresses.js";
import { type AmqpConnectionOptions, connectUntilReady } from "./reconnect.js";
import { AmqpSession } from "./session.js";
import { AmqpNames } from "./topology.js";

export interface AmqpPresenceBusOptions extends AmqpConnectionOptions {
  /** Bound on stop(): flushing publishes and closing the connection. */
  readonly stopTimeoutMs?: number;
  /** Called for every message that failed validation (dropped). */
  readonly onInvalid?: () => void;
}

const DEFAULT_STOP_TIMEOUT_MS = 2_000;
/** Presence messages are worthless once a heartbeat or two old; the broker drops them past this. */
const MESSAGE_TTL_MS = 30_000;
const ABANDON_CLOSE_TIMEOUT_MS = 1_000;

/**
 * `connection_name` of a node's presence connection. Not under the gateway's
 * `sobranie-gateway-` prefix: tools that find a node's connection by that
 * name must keep finding only the one carrying its node queue.
 */
export function presenceConnectionName(nodeId: string): string {
  return `sobranie-presence-${nodeId}`;
}

/**
 * The presence bus on `sobranie.presence` (a topic exchange declared with the
 * shared topology). Each node consumes its own server-named, exclusive,
 * auto-delete queue bound with `#`: it exists only while the node is
 * connected, so a dead node leaves nothing behind and a reconnected one starts
 * from the present (missed messages are repaired by heartbeat digests and
 * snapshots, not replayed). "Connected" means this node can publish; it
 * hears others (and itself) once its queue is consumed (see establish). Publishes use a plain channel without confirms:
 * a lost presence message costs one resync, not a wrong answer forever.
 *
 * Its own connection (`sobranie-presence-<node>`), so that a flood
 * of live events on the node queue never delays heartbeats behind it.
 * Reconnects with full-jitter backoff, like AmqpBroker.
 */
export class AmqpPresenceBus implements PresenceBus {
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly abort = new AbortController();
  private readonly addresses: BrokerAddresses;
  private handler: PresenceBusHandler | undefined;
  private session: AmqpSession | undefined;
  private opening: AmqpSession | undefined;
  private channel: Channel | undefined;
  private connected = false;
  private startPromise: Promise<void> | undefined;
  private stopPromise: Promise<void> | undefined;
  /** The current connection's queue setup; settles (never rejects) once it consumes or gave up. */
  private listening: Promise<void> = Promise.resolve();

  constructor(private readonly options: AmqpPresenceBusOptions) {
    this.logger = options.logger.child({ component: "presence-bus" });
    this.clock = options.clock ?? systemClock;
    this.addresses = new BrokerAddresses(options.urls);
  }

  /** Resolves once the first connection publishes and consumes (later reconnects publish before they consume, see establish). */
  start(handler: PresenceBusHandler): Promise<void> {
    this.handler = handler;
    this.startPromise ??= this.connectUntilReady(false).then(() => this.listening);
    return this.startPromise;
  }

  publish(message: PresenceMessage): void {
    const channel = this.channel;
    if (!channel || !this.connected) return;
    try {
      channel.publish(AmqpNames.presenceExchange, `${message.kind}.${message.node}`, Buffer.from(encodePresenceMessage(message), "utf8"), {
        contentType: "application/json",
        expiration: String(MESSAGE_TTL_MS),
      });
    } catch (error) {
      // The channel died under us; the session's loss handler reconnects.
      this.logger.debug({ err: error }, "presence publish dropped");
    }
  }

  isConnected(): boolean {
    return this.connected;
  }

  stop(): Promise<void> {
    this.stopPromise ??= (async () => {
      this.abort.abort();
      const timeoutMs = this.options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
      const session = this.session;
      this.session = undefined;
      this.channel = undefined;
      this.setConnected(false);
      await Promise.all([session?.close(timeoutMs), this.opening?.close(timeoutMs)]);
    })();
    return this.stopPromise;
  }

  /** Resolves once connected, or quietly once stop() aborted the attempts. */
  private connectUntilReady(isReconnect: boolean): Promise<void> {
    const { clock, logger, abort, options, addresses } = this;
    return connectUntilReady({ what: "presence bus", addresses, clock, logger, signal: abort.signal, backoff: options.reconnect, isReconnect, establish: (url) => this.establish(url) }).catch(
      () => undefined,
    );
  }

  /**
   * Publishing first, listening second, on two channels. Publishing needs
   * only the exchange, so this node's presence reaches the others as soon as
   * its channel is open; its own queue comes after, and may take long:
   * RabbitMQ 3.x holds every queue declare and binding in the cluster while a
   * member node is hung, until net_ticktime declares it down (a minute by
   * default), and a channel waiting on a declare handles nothing else, which
   * is why the publishing channel is another one. Peers keep hearing this
   * node meanwhile, and the tracker, not hearing its own heartbeats, judges
   * none of them.
   */
  private async establish(url: string): Promise<void> {
    const session = await AmqpSession.open(url, presenceConnectionName(this.options.nodeId), this.logger, this.clock);
    this.opening = session;
    let channel: Channel;
    try {
      channel = await session.createChannel();
      await session.guard(channel.assertExchange(AmqpNames.presenceExchange, "topic", { durable: true, autoDelete: false }));
      if (session.isLost || this.abort.signal.aborted) throw new Error("presence bus connection lost during setup");
    } catch (error) {
      this.opening = undefined;
      await session.close(ABANDON_CLOSE_TIMEOUT_MS);
      throw error;
    }
    this.opening = undefined;
    this.session = session;
    this.channel = channel;
    session.onLost((error) => this.onLost(session, error));
    this.logger.info({ broker: session.address }, "presence bus connected");
    this.setConnected(true);
    this.listening = this.listen(session);
  }

  /** Declares this node's queue and consumes it on a channel of its own; a failure gives the session up (and the loss handler reconnects). */
  private async listen(session: AmqpSession): Promise<void> {
    try {
      const channel = await session.createChannel();
      const { queue } = await session.guard(channel.assertQueue("", { exclusive: true, autoDelete: true, durable: false }));
      await session.guard(channel.bindQueue(queue, AmqpNames.presenceExchange, "#"));
      await session.guard(channel.consume(queue, (message) => this.deliver(message), { noAck: true }));
      this.logger.info({ broker: session.address }, "presence bus consuming");
    } catch (error) {
      if (!session.isLost) session.abandon(error instanceof Error ? error : new Error(String(error)));
    }
  }

  private deliver(message: ConsumeMessage | null): void {
    if (!message) return;
    const decoded = decodePresenceMessage(message.content.toString("utf8"));
    if (!decoded) {
      this.options.onInvalid?.();
      this.logger.warn({ routingKey: message.fields.routingKey }, "invalid presence message dropped");
      return;
    }
    try {
      this.handler?.received(decoded);
    } catch (error) {
      this.logger.error({ err: error }, "presence handler threw");
    }
  }

  private onLost(session: AmqpSession, error: Error): void {
    if (session !== this.session || this.abort.signal.aborted) return;
    this.logger.warn({ err: error }, "presence bus connection lost; reconnecting");
    this.session = undefined;
    this.channel = undefined;
    this.setConnected(false);
    void this.connectUntilReady(true);
  }

  private setConnected(connected: boolean): void {
    if (this.connected === connected) return;
    this.connected = connected;
    try {
      this.handler?.connectionChanged(connected);
    } catch (error) {
      this.logger.error({ err: error }, "presence handler threw");
    }
  }
}
