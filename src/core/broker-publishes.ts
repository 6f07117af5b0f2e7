import { RESERVED_NAMESPACES, routingKey } from "@sobranie/protocol/channel";
import { encodeControl, type ControlCommand } from "@sobranie/protocol/control";
import type { Envelope } from "@sobranie/protocol/envelope";
import { SobranieError } from "@sobranie/protocol/errors";
import type { BackendPublish } from "./backend-publish.js";
import { READ_SYNC_TYPE } from "./event-frames.js";
import type { NamespaceRegistry } from "./namespaces.js";
import type { Broker } from "./ports/broker.js";
import type { Clock } from "@sobranie/protocol/runtime/clock";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import type { Metrics } from "./ports/metrics.js";
import type { PresenceBackendEvent } from "./presence/index.js";
import { BackendEventQueue } from "./presence/backend-event-queue.js";
import { encodePublishedEnvelope } from "./published-envelope.js";
import type { ClientPublish } from "./session-context.js";

/**
 * Everything this node publishes to the broker: backends' events from the
 * HTTP API, clients' publishes, inbox read marks, presence events for
 * backends and control commands. Every envelope goes out through
 * `publishEnvelope`, so each carries the same id, `occurredAt` and AMQP
 * properties, and none over MAX_ENVELOPE_BYTES leaves this node
 * (EventTooLargeError instead).
 */

export class NamespaceNotFoundError extends SobranieError {
  override readonly name = "NamespaceNotFoundError";
  readonly code = "not_found";
  readonly retryable = false;
  constructor(namespace: string) {
    super(`namespace ${namespace} does not exist`);
  }
}

export interface BrokerPublishesDeps {
  readonly broker: Broker;
  readonly namespaces: NamespaceRegistry;
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly newId: () => string;
  /** DEPLOYMENT_ID, written into every backend presence event's `data.deployment`; absent: no such field. */
  readonly deploymentId: string | undefined;
}

/** One envelope for the broker; `id` and `atMs` default to a new id and now. */
interface EnvelopePublish {
  readonly target: "events" | "live";
  readonly routingKey: string;
  readonly type: string;
  readonly data: unknown;
  readonly id?: string | undefined;
  /** The publishing client's user id (the envelope's `user`). */
  readonly user?: string | undefined;
  /** When it happened: the envelope's `occurredAt` and the message timestamp. */
  readonly atMs?: number | undefined;
  /** The one socket it must not reach (the `x-sobranie-exclude-socket` header). */
  readonly excludeSocket?: string | undefined;
}

/** Presence events for backends waiting out a broker outage: about 10 MB at most. */
const PRESENCE_EVENT_QUEUE = { maxWaiting: 50_000, retryMs: 2_000 } as const;

export class BrokerPublishes {
  private readonly presenceEvents: BackendEventQueue<PresenceBackendEvent>;

  constructor(private readonly deps: BrokerPublishesDeps) {
    this.presenceEvents = new BackendEventQueue((event) => this.publishPresenceEvent(event), PRESENCE_EVENT_QUEUE, {
      clock: deps.clock,
      logger: deps.logger.child({ component: "presence-events" }),
    });
  }

  /**
   * A backend's event from the HTTP API: to the events exchange as
   * `namespace.id.type`, exactly as if published with AMQP (durable
   * namespaces then go through the worker). Resolves with the id once the
   * broker confirmed; rejects `NamespaceNotFoundError` for an unknown namespace
   * and `EventTooLargeError` for an envelope over MAX_ENVELOPE_BYTES.
   */
  async backendEvent(request: BackendPublish): Promise<string> {
    if (!this.deps.namespaces.get(request.channel.namespace)) throw new NamespaceNotFoundError(request.channel.namespace);
    const key = routingKey(request.channel, request.type);
    return this.publishEnvelope({ target: "events", routingKey: key, id: request.id, type: request.type, data: request.data, excludeSocket: request.excludeSocket });
  }

  /** A client's publish: a `broadcast` namespace's goes live to subscribers, any other to backends as `client.namespace.id.type`. */
  async fromClient(request: ClientPublish): Promise<string> {
    const key = routingKey(request.channel, request.type);
    const broadcast = request.policy.publish === "broadcast";
    const id = await this.publishEnvelope({
      target: broadcast ? "live" : "events",
      routingKey: broadcast ? key : `client.${key}`,
      type: request.type,
      data: request.data,
      user: request.userId,
      excludeSocket: request.excludeSocket,
    });
    this.deps.metrics.clientPublished(request.channel.namespace);
    return id;
  }

  /**
   * A message for workers alone (the Pusher side's webhook entry point,
   * docs/pusher.md "Webhooks"): to the events exchange with `body` as it is,
   * no envelope, under a reserved routing-key prefix (RESERVED_NAMESPACES),
   * so it is never forwarded to the live exchange and reaches no client.
   * Resolves once the broker confirmed; throws for a key outside the
   * reserved prefixes (a caller's mistake, never a client's input).
   */
  async forWorkers(key: string, body: string): Promise<void> {
    const prefix = key.split(".", 1)[0] ?? "";
    if (!RESERVED_NAMESPACES.includes(prefix)) throw new Error(`routing key ${key} for workers must start with a reserved prefix (${RESERVED_NAMESPACES.join(", ")})`);
    const id = this.deps.newId();
    await this.deps.broker.publish({ target: "events", routingKey: key, body, messageId: id, timestampMs: this.deps.clock.now() });
  }

  /** Tells every connection of the user, on every node, where their inbox read mark is. */
  readMark(userId: string, upTo: number): void {
    const key = routingKey({ namespace: "user", id: userId }, READ_SYNC_TYPE);
    this.publishEnvelope({ target: "live", routingKey: key, type: READ_SYNC_TYPE, data: { upTo } }).catch((error: unknown) =>
      this.deps.logger.warn({ err: error }, "read mark not announced to other connections"),
    );
  }

  /** To the control exchange, which every node (this one included) applies; resolves once the broker confirmed. */
  async control(command: ControlCommand): Promise<void> {
    const id = this.deps.newId();
    await this.deps.broker.publish({ target: "control", routingKey: command.command, body: encodeControl(command), messageId: id, timestampMs: this.deps.clock.now() });
  }

  /** Queues a presence change for backends; see `publishPresenceEvent`. */
  presenceEvent(event: PresenceBackendEvent): void {
    this.presenceEvents.push(event);
  }

  /** The broker is back: presence events waiting for it go out, in order. */
  resume(): void {
    this.presenceEvents.resume();
  }

  close(): void {
    this.presenceEvents.close();
  }

  /**
   * A presence change for backends (docs/protocol.md §3), to the events exchange under
   * the reserved `presence` prefix; no namespace is called `presence`, so it is
   * never forwarded to the live exchange and reaches no client. While the
   * broker is away, events wait in order (bounded) and go out on reconnect.
   * With a DEPLOYMENT_ID, `data.deployment` names it: deployments sharing
   * `sobranie.events` each publish their own presence events there.
   */
  private async publishPresenceEvent(event: PresenceBackendEvent): Promise<void> {
    const deployment = this.deps.deploymentId;
    const data = deployment === undefined ? event.data : { ...event.data, deployment };
    await this.publishEnvelope({ target: "events", routingKey: event.routingKey, type: `presence.${event.type}`, data, atMs: event.atMs });
  }

  /** Encodes (refusing one over MAX_ENVELOPE_BYTES), publishes, and resolves with the id once the broker confirmed. */
  private async publishEnvelope(publish: EnvelopePublish): Promise<string> {
    const id = publish.id ?? this.deps.newId();
    const timestampMs = publish.atMs ?? this.deps.clock.now();
    const envelope: Envelope = { id, type: publish.type, data: publish.data, occurredAt: new Date(timestampMs).toISOString(), user: publish.user };
    await this.deps.broker.publish({
      target: publish.target,
      routingKey: publish.routingKey,
      body: encodePublishedEnvelope(envelope),
      messageId: id,
      timestampMs,
      excludeSocket: publish.excludeSocket,
    });
    return id;
  }
}
