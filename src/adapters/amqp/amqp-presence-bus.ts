import type { Channel, ConsumeMessage } from "amqplib";
import { systemClock, type Clock } from "@sobranie/protocol/runtime/clock";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import type { PresenceDropReason } from "../../core/ports/metrics.js";
import type { PresenceBus, PresenceBusHandler } from "../../core/ports/presence-bus.js";
import { decodePresenceMessage, encodePresenceMessage, type PresenceMessage } from "@sobranie/protocol/presence";
import type { AmqpConnectionOptions } from "@sobranie/publisher/amqp/reconnect";
import { SessionLoop } from "./session-loop.js";
import { AmqpHeaders } from "@sobranie/protocol/amqp";
import { presenceExchangeName } from "./topology.js";

export interface AmqpPresenceBusOptions extends AmqpConnectionOptions {
  /** Bound on stop(): flushing publishes and closing the connections. */
  readonly stopTimeoutMs?: number;
  /** DEPLOYMENT_ID: picks the exchange (presenceExchangeName) and the `x-sobranie-deployment` header; unset: neither. */
  readonly deploymentId?: string | undefined;
  /** Called for every message dropped before the handler saw it. */
  readonly onDropped?: (reason: PresenceDropReason) => void;
}

const DEFAULT_STOP_TIMEOUT_MS = 2_000;
/** Presence messages are worthless once a heartbeat or two old; the broker drops them past this. */
const MESSAGE_TTL_MS = 30_000;
/** Dropped messages are logged the first time, then at most this often (with the count since), per reason: anyone on the exchange can flood it. */
const DROP_LOG_INTERVAL_MS = 60_000;
/** A foreign header value is logged up to this many characters. */
const LOGGED_HEADER_CHARS = 64;

/**
 * `connection_name` of a node's presence connection that listens; the one
 * that publishes adds `-publish`. Not under the gateway's `sobranie-gateway-`
 * prefix: tools that find a node's connection by that name must keep finding
 * only the one carrying its node queue.
 */
export function presenceConnectionName(nodeId: string): string {
  return `sobranie-presence-${nodeId}`;
}

/**
 * The presence bus on the deployment's presence exchange (a durable topic
 * exchange: `sobranie.presence`, or `sobranie.presence.<DEPLOYMENT_ID>`), on
 * two connections of its own, so that a flood of live events on the node
 * queue never delays heartbeats behind it:
 *
 * - publishing (`sobranie-presence-<node>-publish`): a plain channel without
 *   confirms (a lost presence message costs one resync, not a wrong answer
 *   forever). "Connected" means this one is up. Apart from the listening
 *   side because RabbitMQ's credit flow stops reading a connection that has
 *   routed some 800 messages to a queue on a hung node (every node's
 *   presence queue gets every message), and the listening side would stop
 *   with it; and because its setup needs only the exchange, while a queue
 *   declare waits for as long as a hung node holds the cluster's metadata on
 *   RabbitMQ 3.x (until net_ticktime declares it down).
 * - listening (`sobranie-presence-<node>`): the node's own server-named,
 *   exclusive, auto-delete queue bound with `#`. It exists only while the
 *   node is connected, so a dead node leaves nothing behind and a reconnected
 *   one starts from the present (missed messages are repaired by heartbeat
 *   digests and snapshots, not replayed). While it is away the tracker does
 *   not hear its own heartbeats and judges no peer.
 *
 * Both reconnect with full-jitter backoff over the broker addresses.
 *
 * Deployment scope: every message carries the sender's DEPLOYMENT_ID in
 * `x-sobranie-deployment` (no header without one), and a message whose header
 * is not exactly this node's (another deployment's, or one present or missing
 * where it should not be) is dropped and counted as `foreign`. The exchange
 * name already keeps deployments apart; the header keeps them apart when
 * someone binds one deployment's exchange to another's.
 */
export class AmqpPresenceBus implements PresenceBus {
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly exchange: string;
  private readonly publishHeaders: Record<string, string> | undefined;
  private readonly drops = new Map<PresenceDropReason, { count: number; loggedAtMs: number | undefined }>();
  private readonly publishing: SessionLoop<Channel>;
  private readonly listening: SessionLoop<void>;
  private handler: PresenceBusHandler | undefined;
  private channel: Channel | undefined;
  private connected = false;
  private startPromise: Promise<void> | undefined;
  private stopPromise: Promise<void> | undefined;

  constructor(private readonly options: AmqpPresenceBusOptions) {
    this.logger = options.logger.child({ component: "presence-bus" });
    this.clock = options.clock ?? systemClock;
    this.exchange = presenceExchangeName(options.deploymentId);
    this.publishHeaders = options.deploymentId === undefined ? undefined : { [AmqpHeaders.deployment]: options.deploymentId };
    const loop = { urls: options.urls, nodeId: options.nodeId, logger: this.logger, clock: options.clock, reconnect: options.reconnect };
    this.publishing = new SessionLoop<Channel>({
      ...loop,
      what: "presence bus",
      connectionName: `${presenceConnectionName(options.nodeId)}-publish`,
      setup: async (session) => {
        const channel = await session.createChannel();
        await channel.assertExchange(this.exchange, "topic", { durable: true, autoDelete: false });
        return channel;
      },
      up: (channel) => {
        this.channel = channel;
        this.setConnected(true);
      },
      down: () => {
        this.channel = undefined;
        this.setConnected(false);
      },
    });
    this.listening = new SessionLoop<void>({
      ...loop,
      what: "presence bus listener",
      connectionName: presenceConnectionName(options.nodeId),
      setup: async (session) => {
        const channel = await session.createChannel();
        await channel.assertExchange(this.exchange, "topic", { durable: true, autoDelete: false });
        const { queue } = await channel.assertQueue("", { exclusive: true, autoDelete: true, durable: false });
        await channel.bindQueue(queue, this.exchange, "#");
        await channel.consume(queue, (message) => this.deliver(message), { noAck: true });
      },
      up: () => {},
      down: () => {},
    });
  }

  /** Resolves once this node publishes and hears the bus the first time (retries with backoff until then). */
  start(handler: PresenceBusHandler): Promise<void> {
    this.handler = handler;
    this.startPromise ??= Promise.all([this.publishing.start(), this.listening.start()]).then(
      () => undefined,
      () => undefined,
    );
    return this.startPromise;
  }

  publish(message: PresenceMessage): void {
    const channel = this.channel;
    if (!channel || !this.connected) return;
    try {
      channel.publish(this.exchange, `${message.kind}.${message.node}`, Buffer.from(encodePresenceMessage(message), "utf8"), {
        contentType: "application/json",
        expiration: String(MESSAGE_TTL_MS),
        ...(this.publishHeaders === undefined ? {} : { headers: this.publishHeaders }),
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
      const timeoutMs = this.options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
      this.channel = undefined;
      this.setConnected(false);
      await Promise.all([this.publishing.stop(timeoutMs), this.listening.stop(timeoutMs)]);
    })();
    return this.stopPromise;
  }

  private deliver(message: ConsumeMessage | null): void {
    if (!message) return;
    const deployment: unknown = message.properties.headers?.[AmqpHeaders.deployment];
    if (deployment !== this.options.deploymentId) {
      const named = typeof deployment === "string" ? deployment.slice(0, LOGGED_HEADER_CHARS) : deployment === undefined ? null : typeof deployment;
      this.drop("foreign", { routingKey: message.fields.routingKey, deployment: named, expected: this.options.deploymentId ?? null });
      return;
    }
    const decoded = decodePresenceMessage(message.content.toString("utf8"));
    if (!decoded) {
      this.drop("invalid", { routingKey: message.fields.routingKey });
      return;
    }
    try {
      this.handler?.received(decoded);
    } catch (error) {
      this.logger.error({ err: error }, "presence handler threw");
    }
  }

  /** Counts every drop; logs the first of each reason, then at most once per DROP_LOG_INTERVAL_MS with the number since. */
  private drop(reason: PresenceDropReason, details: Record<string, unknown>): void {
    this.options.onDropped?.(reason);
    const nowMs = this.clock.monotonic();
    const state = this.drops.get(reason) ?? { count: 0, loggedAtMs: undefined };
    this.drops.set(reason, state);
    state.count++;
    if (state.loggedAtMs !== undefined && nowMs - state.loggedAtMs < DROP_LOG_INTERVAL_MS) return;
    this.logger.warn({ ...details, dropped: state.count }, reason === "foreign" ? "presence message of another deployment dropped" : "invalid presence message dropped");
    state.count = 0;
    state.loggedAtMs = nowMs;
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
