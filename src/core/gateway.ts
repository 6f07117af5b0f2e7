import { CloseCode, type GapReason } from "../protocol/codes.js";
import { parseRoutingKey, routingPrefix } from "../protocol/channel.js";
import { decodeEnvelope, encodeEnvelope, type Envelope } from "../protocol/envelope.js";
import { encodeServerFrame, type EventFrame, type ServerFrame } from "../protocol/frames.js";
import { READ_SYNC_TYPE, storedEventFrame } from "./event-frames.js";
import { encodePublishedEnvelope } from "./published-envelope.js";
import { FeedRepair } from "./feed-repair.js";
import type { BackendPublish } from "./backend-publish.js";
import type { EventStore, StoredEvent } from "./ports/event-store.js";
import { ChannelBindings } from "./channel-bindings.js";
import type { IngressLimits } from "./limits.js";
import type { NamespaceRegistry } from "./namespaces.js";
import { TokenBucket } from "./rate-limit.js";
import { Session } from "./session.js";
import type { ClientPublish, RecoverySink, SessionContext, UserState } from "./session-context.js";
import type { Authenticator, Principal } from "./ports/authenticator.js";
import type { Broker, BrokerHandler, DeliveryOutcome, LiveDelivery } from "./ports/broker.js";
import type { Clock, Timer } from "./ports/clock.js";
import type { Logger } from "./ports/logger.js";
import type { Metrics, UpgradeRejectReason } from "./ports/metrics.js";
import type { LocalFanout, SessionSocket } from "./ports/session-socket.js";
import type { PresenceBus } from "./ports/presence-bus.js";
import { LoneBus, PresenceTracker, type PresenceBackendEvent, type PresenceHandle } from "./presence/index.js";
import { BackendEventQueue } from "./presence/backend-event-queue.js";
import { LateTick } from "./late-tick.js";
import { decodeControl, encodeControl, type ControlCommand } from "../protocol/control.js";
import { AccessControl } from "./access-control.js";
import type { RevocationLimits } from "./revocations.js";

export interface GatewayOptions {
  readonly nodeId: string;
  readonly heartbeatMs: number;
  readonly ttlMs: number;
  readonly limits: IngressLimits;
  /** How often every session is checked for heartbeat TTL and send-buffer size. */
  readonly inspectIntervalMs?: number;
  /** Most events one `subscribe` with `since` replays. */
  readonly recoveryLimit: number;
  /** Presence limits (docs/protocol.md §12); defaults: 1,000 listed members, 50 join/leave frames and 20,000 deliveries per channel per second. */
  readonly presence?: { readonly maxListedMembers: number; readonly fanoutPerSec: number; readonly fanoutDeliveriesPerSec: number };
  /**
   * A broker away longer than `graceMs` makes this node refuse new
   * connections and send its clients `reconnect` with `afterMs` spread over
   * `spreadMs`; defaults 3 s and 10 s.
   */
  readonly brokerLoss?: { readonly graceMs: number; readonly spreadMs: number };
  /** Revocation expiry and memory bound (docs/protocol.md §11); defaults: 30 days, 1,000,000 entries. */
  readonly revocations?: RevocationLimits;
  /** DEPLOYMENT_ID, written into every backend presence event's `data.deployment`; absent: no such field. */
  readonly deploymentId?: string | undefined;
}

export interface GatewayDeps {
  readonly broker: Broker;
  readonly fanout: LocalFanout;
  readonly authenticator: Authenticator;
  readonly namespaces: NamespaceRegistry;
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** A new unique, time-ordered id (session ids, event ids). */
  readonly newId: () => string;
  readonly bindLingerMs: number;
  /** Namespaces bound once as a whole instead of per channel (BIND_WHOLE_NAMESPACES); default none. */
  readonly bindWholeNamespaces?: readonly string[] | undefined;
  /** Durable history for recovery and the inbox; absent on a node without a store. */
  readonly store?: EventStore | undefined;
  /** Presence between nodes; absent: this node is alone (no replication). */
  readonly presenceBus?: PresenceBus | undefined;
}

/** A connection slot reserved at upgrade time, before the socket opens. */
export interface AdmissionTicket {
  readonly principal: Principal;
  /** Gives the slot back if the upgrade never completes. Idempotent. */
  cancel(): void;
}

export type Admission = { ok: true; ticket: AdmissionTicket } | { ok: false; reason: UpgradeRejectReason };

const DEFAULT_INSPECT_INTERVAL_MS = 250;
const DEFAULT_BROKER_LOSS = { graceMs: 3_000, spreadMs: 10_000 } as const;
/** `reason` of the `reconnect` frame sent when this node lost its broker. */
const BROKER_LOST_REASON = "broker_unavailable";
/** Dead-letter reason of a delivery that failed unexpectedly (the broker port's `internal`). */
const HANDLER_FAILED_REASON = "internal";
const DEFAULT_REVOCATIONS: RevocationLimits = { maxTokenLifetimeMs: 30 * 24 * 3_600_000, maxEntries: 1_000_000 };
const DEFAULT_PRESENCE = { maxListedMembers: 1_000, fanoutPerSec: 50, fanoutDeliveriesPerSec: 20_000 } as const;
/** Presence events for backends waiting out a broker outage: about 10 MB at most. */
const PRESENCE_EVENT_QUEUE = { maxWaiting: 50_000, retryMs: 2_000 } as const;

export class NamespaceNotFoundError extends Error {
  override readonly name = "NamespaceNotFoundError";
  readonly code = "not_found";
  readonly retryable = false;
  constructor(namespace: string) {
    super(`namespace ${namespace} does not exist`);
  }
}

/** Settles once: either the socket opened (the slot becomes a session) or the upgrade was abandoned. */
class ReservedSlot implements AdmissionTicket {
  private settled = false;

  constructor(
    readonly principal: Principal,
    private readonly onSettle: (opened: boolean) => void,
  ) {}

  cancel(): void {
    this.settle(false);
  }

  settle(opened: boolean): boolean {
    if (this.settled) return false;
    this.settled = true;
    this.onSettle(opened);
    return true;
  }
}

/**
 * The node's core: admits connections, routes broker deliveries to the local
 * fan-out, and drains. Runtime-agnostic: transports hand it SessionSockets.
 *
 * Delivery path guarantee: an event is decoded once, serialized once, and
 * handed to the runtime's native topic publish; no JavaScript loop over sockets.
 */
export class Gateway implements BrokerHandler {
  private readonly sessions = new Set<Session>();
  /** The same sessions by user: what control commands act on. */
  private readonly sessionsByUser = new Map<string, Set<Session>>();
  private readonly access: AccessControl;
  private readonly users = new Map<string, UserState>();
  /** Highest seq delivered per bound routing prefix: relayed duplicates are dropped here, once per node. */
  private readonly lastSeq = new Map<string, number>();
  /** Sessions recovering a channel get its live frames in a buffer until their history is sent. */
  private readonly recovering = new Map<string, Set<RecoverySink>>();
  private readonly ctx: SessionContext;
  private readonly deps: GatewayDeps;
  private readonly options: GatewayOptions;
  private reservedSlots = 0;
  private brokerReady = false;
  /** The broker has been away past the grace: new connections are refused and clients were asked to move. */
  private brokerLost = false;
  private brokerLossTimer: Timer | undefined;
  private readonly repair: FeedRepair;
  private draining = false;
  private inspector: Timer | undefined;
  private readonly tracker: PresenceTracker;
  private readonly presenceEvents: BackendEventQueue<PresenceBackendEvent>;
  private readonly inspectTick: LateTick;
  private readonly bindings: ChannelBindings;

  constructor(options: GatewayOptions, deps: GatewayDeps) {
    this.options = options;
    this.deps = deps;
    const presence = options.presence ?? DEFAULT_PRESENCE;
    this.inspectTick = new LateTick(options.inspectIntervalMs ?? DEFAULT_INSPECT_INTERVAL_MS, deps.clock.now());
    this.presenceEvents = new BackendEventQueue((event) => this.publishPresenceEvent(event), PRESENCE_EVENT_QUEUE, {
      clock: deps.clock,
      logger: deps.logger.child({ component: "presence-events" }),
    });
    this.tracker = new PresenceTracker(
      {
        nodeId: options.nodeId,
        incarnation: deps.newId(),
        heartbeatMs: options.heartbeatMs,
        ttlMs: options.ttlMs,
        maxListedMembers: presence.maxListedMembers,
        fanoutPerSec: presence.fanoutPerSec,
        fanoutDeliveriesPerSec: presence.fanoutDeliveriesPerSec,
      },
      {
        clock: deps.clock,
        bus: deps.presenceBus ?? new LoneBus(),
        fanout: deps.fanout,
        metrics: deps.metrics,
        logger: deps.logger.child({ component: "presence" }),
        publishEvent: (event) => this.presenceEvents.push(event),
        lastSeenStore: deps.store,
      },
    );
    const bindings = new ChannelBindings({
      broker: deps.broker,
      clock: deps.clock,
      lingerMs: deps.bindLingerMs,
      onCountChange: (count) => deps.metrics.bindingsActive(count),
      onExpired: (prefix) => this.lastSeq.delete(prefix),
      wholeNamespaces: deps.bindWholeNamespaces,
    });
    this.bindings = bindings;
    this.access = new AccessControl({
      clock: deps.clock,
      logger: deps.logger.child({ component: "access-control" }),
      metrics: deps.metrics,
      store: deps.store,
      limits: options.revocations ?? DEFAULT_REVOCATIONS,
      sessionsOf: (userId) => this.sessionsByUser.get(userId) ?? [],
    });
    this.repair = new FeedRepair({
      store: deps.store,
      clock: deps.clock,
      logger: deps.logger.child({ component: "feed-repair" }),
      metrics: deps.metrics,
      pageSize: options.recoveryLimit,
      subscribedChannels: () => this.subscribedChannels(),
      isSubscribed: (channel) => bindings.has(channel.replace(":", ".")),
      deliverStored: (event) => this.deliverStored(event),
      announceGap: (channel, reason) => this.announceGap(channel, reason),
    });
    this.ctx = {
      nodeId: options.nodeId,
      heartbeatMs: options.heartbeatMs,
      ttlMs: options.ttlMs,
      limits: options.limits,
      namespaces: deps.namespaces,
      bindings,
      authenticator: deps.authenticator,
      clock: deps.clock,
      metrics: deps.metrics,
      logger: deps.logger,
      publishFromClient: (request) => this.publishFromClient(request),
      store: deps.store,
      recoveryLimit: options.recoveryLimit,
      beginRecovery: (channel, sink) => {
        let sinks = this.recovering.get(channel);
        if (!sinks) this.recovering.set(channel, (sinks = new Set()));
        sinks.add(sink);
      },
      endRecovery: (channel, sink) => {
        const sinks = this.recovering.get(channel);
        sinks?.delete(sink);
        if (sinks?.size === 0) this.recovering.delete(channel);
      },
      announceRead: (userId, upTo) => this.announceRead(userId, upTo),
      presence: this.tracker,
      access: this.access,
    };
  }

  /**
   * Call (and await) before the broker starts: whole-namespace bindings are
   * then made while it connects, before it reports ready, and the feed
   * repair has its starting position. Never rejects.
   */
  async start(): Promise<void> {
    if (this.inspector) return;
    const position = this.repair.start();
    this.access.start();
    this.bindings.bindWholeNamespaces();
    this.inspector = this.deps.clock.setInterval(() => this.inspectSessions(), this.options.inspectIntervalMs ?? DEFAULT_INSPECT_INTERVAL_MS);
    this.tracker.start().catch((error: unknown) => this.deps.logger.error({ err: error }, "presence bus did not start"));
    // A node that reaches no broker at all moves nobody's clients yet, but stops taking new ones after the grace.
    if (!this.brokerReady) this.brokerLossTimer ??= this.deps.clock.setTimeout(() => this.moveClientsAway(), this.brokerLossOptions().graceMs);
    await position;
  }

  /** Channel presence and user status, for the HTTP API. */
  get presence(): PresenceHandle {
    return this.tracker;
  }

  /**
   * Ready for traffic: broker connected with bindings restored, presence bus
   * connected, and not draining. A node whose presence bus is away would show
   * its new users offline everywhere else (and others' offline to them), so
   * the load balancer sends new connections to another node meanwhile.
   */
  isReady(): boolean {
    return this.brokerReady && this.tracker.isConnected() && this.access.isLoaded() && !this.draining;
  }

  /** What `/readyz` reports; `revocations`: the store's revocations are loaded (a node that has not could admit a revoked token). */
  readiness(): { ready: boolean; checks: Record<string, boolean> } {
    return {
      ready: this.isReady(),
      checks: { broker: this.brokerReady, presence: this.tracker.isConnected(), revocations: this.access.isLoaded(), accepting: !this.draining },
    };
  }

  isDraining(): boolean {
    return this.draining;
  }

  connectionCount(): number {
    return this.sessions.size;
  }

  /** Decides an upgrade before it happens (HTTP 429/503 are answered there, not after). */
  admit(principal: Principal): Admission {
    if (this.draining) return { ok: false, reason: "draining" };
    if (this.brokerLost) return { ok: false, reason: "broker_unavailable" };
    if (this.access.isRevoked(principal)) return { ok: false, reason: "revoked" };
    if (this.sessions.size + this.reservedSlots >= this.options.limits.maxConnections) return { ok: false, reason: "capacity" };
    const user = this.userState(principal.userId);
    if (user.connections >= this.options.limits.maxConnectionsPerUser) return { ok: false, reason: "too_many_connections" };
    user.connections += 1;
    this.reservedSlots += 1;
    const ticket = new ReservedSlot(principal, (opened) => {
      this.reservedSlots -= 1;
      if (!opened) this.releaseUser(principal.userId);
    });
    return { ok: true, ticket };
  }

  /** The upgrade completed: the session starts and gets `welcome`. */
  open(ticket: AdmissionTicket, socket: SessionSocket): Session {
    if (!(ticket instanceof ReservedSlot) || !ticket.settle(true)) throw new Error("admission ticket used twice");
    const user = this.userState(ticket.principal.userId);
    const session = new Session({ id: this.deps.newId(), principal: ticket.principal, socket, ctx: this.ctx, user });
    this.sessions.add(session);
    let ofUser = this.sessionsByUser.get(session.userId);
    if (!ofUser) this.sessionsByUser.set(session.userId, (ofUser = new Set()));
    ofUser.add(session);
    session.open();
    return session;
  }

  /** The transport reports a session's socket closed. */
  closed(session: Session): void {
    if (!this.sessions.delete(session)) return;
    const ofUser = this.sessionsByUser.get(session.userId);
    ofUser?.delete(session);
    if (ofUser?.size === 0) this.sessionsByUser.delete(session.userId);
    session.released();
    this.releaseUser(session.userId);
  }

  /**
   * Never throws: an event that cannot be used is dead-lettered with a
   * reason, counted and logged once, and so is any unexpected failure
   * (reason `internal`); the queue and the node go on either way.
   */
  handleDelivery(delivery: LiveDelivery): DeliveryOutcome {
    try {
      return this.route(delivery);
    } catch (error) {
      return this.deadLetter(HANDLER_FAILED_REASON, `delivery failed: ${error instanceof Error ? error.message : String(error)}`, error);
    }
  }

  private route(delivery: LiveDelivery): DeliveryOutcome {
    const route = parseRoutingKey(delivery.routingKey);
    if (!route) return this.deadLetter("bad_routing_key", `routing key ${delivery.routingKey} names no channel and type`);
    const { channel } = route;
    const namespace = this.deps.namespaces.get(channel.namespace) ? channel.namespace : "other";
    const prefix = routingPrefix(channel);
    // A whole-bound namespace brings every event of it here: those of channels
    // nobody here subscribed to are dropped before any decoding (and are not
    // dead-lettered: the node with a subscriber judges them).
    if (this.bindings.isWhole(channel.namespace) && !this.bindings.has(prefix)) {
      this.deps.metrics.unsubscribedDropped(namespace);
      return { kind: "delivered" };
    }
    const decoded = decodeEnvelope(delivery.body, delivery, this.deps.newId);
    if (!decoded.ok) return this.deadLetter(decoded.reason, decoded.message);
    const { envelope, publishedAtMs } = decoded;
    const nowMs = this.deps.clock.now();
    const frame = envelope.type === READ_SYNC_TYPE ? readFrame(channel.name, envelope.data) : eventFrame(channel.name, envelope, publishedAtMs ?? nowMs);
    if (!frame) return this.deadLetter("invalid_envelope", `${READ_SYNC_TYPE} needs data.upTo`);
    const seq = envelope.seq;
    const send = (): void => void this.deliver(channel.name, prefix, namespace, seq, frame, publishedAtMs);
    if (seq === undefined) {
      send();
      return { kind: "delivered" };
    }
    this.repair.received(seq);
    // While the channel is repaired after a broker interruption, its live events wait for the history.
    if (this.repair.holds(channel.name)) this.repair.hold(channel.name, { seq, deliver: send });
    else send();
    return { kind: "delivered" };
  }

  /** A control command (docs/protocol.md §11), applied to this node's sessions at once; a bad one is dead-lettered. */
  handleControl(delivery: LiveDelivery): DeliveryOutcome {
    const decoded = decodeControl(delivery.body);
    if (!decoded.ok) return this.deadLetter(`control_${decoded.reason}`, decoded.message);
    this.access.apply(decoded.command);
    return { kind: "delivered" };
  }

  readinessChanged(ready: boolean): void {
    const wasReady = this.brokerReady;
    this.brokerReady = ready;
    if (!ready) {
      this.repair.feedLost();
      this.brokerLossTimer ??= this.deps.clock.setTimeout(() => this.moveClientsAway(), this.brokerLossOptions().graceMs);
      return;
    }
    this.brokerLossTimer?.cancel();
    this.brokerLossTimer = undefined;
    if (this.brokerLost) this.deps.logger.info({}, "broker back: accepting connections again");
    this.brokerLost = false;
    this.presenceEvents.resume();
    this.repair.feedBack();
    if (!wasReady) this.access.reload();
  }

  /**
   * Drain: refuse new connections, tell every client to reconnect elsewhere
   * (each after a random delay within `graceMs`, so they do not stampede the
   * other nodes), then close whoever is left with 1012.
   */
  async drain(graceMs: number): Promise<void> {
    if (!this.draining) {
      this.draining = true;
      this.deps.metrics.draining(true);
      for (const session of this.sessions) {
        session.send({ op: "reconnect", afterMs: Math.floor(Math.random() * graceMs), reason: "drain" });
      }
    }
    await this.waitUntilEmpty(graceMs);
    for (const session of [...this.sessions]) session.close(CloseCode.ServiceRestart, "server restarting: reconnect");
  }

  /** Closes every session; resolves once presence has said `leaving` and written its waiting lastSeen times. */
  async stop(): Promise<void> {
    this.inspector?.cancel();
    this.inspector = undefined;
    this.brokerLossTimer?.cancel();
    this.repair.stop();
    this.access.stop();
    for (const session of [...this.sessions]) session.close(CloseCode.GoingAway, "server stopping");
    // After the sessions: their leaves go out as deltas, then `leaving` clears whatever is left at once.
    await this.tracker.stop();
    this.presenceEvents.close();
  }

  /**
   * A backend's event from the HTTP API: to the events exchange as
   * `namespace.id.type`, exactly as if published with AMQP (durable
   * namespaces then go through the worker). Resolves with the id once the
   * broker confirmed; rejects `NamespaceNotFoundError` for an unknown namespace
   * and `EventTooLargeError` for an envelope over MAX_ENVELOPE_BYTES.
   */
  async publishBackendEvent(request: BackendPublish): Promise<string> {
    if (!this.deps.namespaces.get(request.channel.namespace)) throw new NamespaceNotFoundError(request.channel.namespace);
    const id = request.id ?? this.deps.newId();
    const timestampMs = this.deps.clock.now();
    await this.deps.broker.publish({
      target: "events",
      routingKey: `${request.channel.namespace}.${request.channel.id}.${request.type}`,
      body: encodePublishedEnvelope({ id, type: request.type, data: request.data, occurredAt: new Date(timestampMs).toISOString() }),
      messageId: id,
      timestampMs,
    });
    return id;
  }

  /**
   * A control command from the HTTP API: what it revokes is saved to the
   * store first (when this node has one), then it is published to the control
   * exchange, which every node (this one included) applies. Resolves once the
   * broker confirmed.
   */
  async publishControl(command: ControlCommand): Promise<void> {
    await this.access.persist(command);
    const id = this.deps.newId();
    await this.deps.broker.publish({ target: "control", routingKey: command.command, body: encodeControl(command), messageId: id, timestampMs: this.deps.clock.now() });
  }

  private async publishFromClient(request: ClientPublish): Promise<string> {
    const id = this.deps.newId();
    const timestampMs = this.deps.clock.now();
    const envelope: Envelope = {
      id,
      type: request.type,
      data: request.data,
      occurredAt: new Date(timestampMs).toISOString(),
      user: request.userId,
    };
    const key = `${request.channel.namespace}.${request.channel.id}.${request.type}`;
    const broadcast = request.policy.publish === "broadcast";
    await this.deps.broker.publish({
      target: broadcast ? "live" : "events",
      routingKey: broadcast ? key : `client.${key}`,
      body: encodePublishedEnvelope(envelope),
      messageId: id,
      timestampMs,
    });
    this.deps.metrics.clientPublished(request.channel.namespace);
    return id;
  }

  /** Tells every connection of the user, on every node, where their inbox read mark is. */
  announceRead(userId: string, upTo: number): void {
    const id = this.deps.newId();
    const timestampMs = this.deps.clock.now();
    this.deps.broker
      .publish({
        target: "live",
        routingKey: `user.${userId}.${READ_SYNC_TYPE}`,
        body: encodeEnvelope({ id, type: READ_SYNC_TYPE, data: { upTo }, occurredAt: new Date(timestampMs).toISOString() }),
        messageId: id,
        timestampMs,
      })
      .catch((error: unknown) => this.deps.logger.warn({ err: error }, "read mark not announced to other connections"));
  }

  /**
   * A presence change for backends (docs/protocol.md §3), to the events exchange under
   * the reserved `presence` prefix; no namespace is called `presence`, so it is
   * never forwarded to the live exchange and reaches no client. While the
   * broker is away, events wait in order (bounded) and go out on reconnect.
   * With a DEPLOYMENT_ID, `data.deployment` names it: deployments sharing
   * `sobranie.events` each publish their own presence events there.
   */
  private publishPresenceEvent(event: PresenceBackendEvent): Promise<void> {
    const id = this.deps.newId();
    const deployment = this.options.deploymentId;
    const data = deployment === undefined ? event.data : { ...event.data, deployment };
    return this.deps.broker.publish({
      target: "events",
      routingKey: event.routingKey,
      body: encodeEnvelope({ id, type: `presence.${event.type}`, data, occurredAt: new Date(event.atMs).toISOString() }),
      messageId: id,
      timestampMs: event.atMs,
    });
  }

  /**
   * One frame of a channel to its local subscribers and to sessions
   * recovering it. A durable frame whose seq this node already delivered on
   * the channel (a relayed duplicate, or a repaired event that also came
   * live) is dropped here, once per node; returns whether it was sent.
   */
  private deliver(channel: string, prefix: string, namespace: string, seq: number | undefined, frame: ServerFrame & { op: "event" | "read" }, publishedAtMs: number | undefined): boolean {
    if (seq !== undefined) {
      const last = this.lastSeq.get(prefix);
      if (last !== undefined && seq <= last) {
        this.deps.metrics.duplicateDropped(namespace);
        return false;
      }
      this.lastSeq.set(prefix, seq);
    }
    const text = encodeServerFrame(frame);
    const recipients = this.deps.fanout.publish(channel, text);
    for (const sink of this.recovering.get(channel) ?? []) sink(seq, text);
    const nowMs = this.deps.clock.now();
    const latencySeconds = publishedAtMs === undefined ? undefined : Math.max(0, nowMs - publishedAtMs) / 1000;
    this.deps.metrics.messagesSent(frame.op, namespace, recipients, latencySeconds);
    return true;
  }

  /** A stored event found by the feed repair, through the same path as a live one (its latency is not measured). */
  private deliverStored(event: StoredEvent): boolean {
    const colon = event.channel.indexOf(":");
    const namespace = event.channel.slice(0, colon);
    return this.deliver(event.channel, `${namespace}.${event.channel.slice(colon + 1)}`, namespace, event.seq, storedEventFrame(event), undefined);
  }

  private announceGap(channel: string, reason: GapReason): void {
    const text = encodeServerFrame({ op: "gap", channel, reason });
    this.deps.fanout.publish(channel, text);
    for (const sink of this.recovering.get(channel) ?? []) sink(undefined, text);
    this.deps.metrics.deliveryGap(channel.slice(0, channel.indexOf(":")), reason);
  }

  /** Channels with local subscribers (or lingering), by whether the feed repair can replay them. */
  private subscribedChannels(): { durable: string[]; liveOnly: string[] } {
    const durable: string[] = [];
    const liveOnly: string[] = [];
    for (const prefix of this.bindings.prefixes()) {
      const dot = prefix.indexOf(".");
      const channel = `${prefix.slice(0, dot)}:${prefix.slice(dot + 1)}`;
      if (this.deps.namespaces.get(prefix.slice(0, dot))?.durable) durable.push(channel);
      else liveOnly.push(channel);
    }
    return { durable, liveOnly };
  }

  /**
   * The broker stayed away past the grace: refuse new connections (503) and
   * ask every client to reconnect, each after a random delay, so the load
   * balancer moves them to nodes that have a broker. Clients that stay keep
   * their subscriptions and are repaired when the broker comes back.
   */
  private moveClientsAway(): void {
    this.brokerLossTimer = undefined;
    if (this.brokerReady || this.draining) return;
    this.brokerLost = true;
    const { spreadMs } = this.brokerLossOptions();
    this.deps.logger.warn({ sessions: this.sessions.size, spreadMs }, "broker unavailable past the grace: refusing connections and moving clients to other nodes");
    for (const session of this.sessions) {
      session.send({ op: "reconnect", afterMs: Math.floor(Math.random() * spreadMs), reason: BROKER_LOST_REASON });
    }
  }

  private brokerLossOptions(): { graceMs: number; spreadMs: number } {
    return this.options.brokerLoss ?? DEFAULT_BROKER_LOSS;
  }

  /** `error`: an unexpected failure, logged at error level with its stack (once per message, like every dead letter). */
  private deadLetter(reason: string, message: string, error?: unknown): DeliveryOutcome {
    this.deps.metrics.deadLettered(reason);
    if (error === undefined) this.deps.logger.warn({ reason, detail: message }, "event dead-lettered");
    else this.deps.logger.error({ reason, err: error }, "event dead-lettered: delivery failed unexpectedly");
    return { kind: "dead-letter", reason, message };
  }

  private inspectSessions(): void {
    const nowMs = this.deps.clock.now();
    const judgeSilence = !this.inspectTick.late(nowMs);
    for (const session of this.sessions) session.inspect(nowMs, judgeSilence);
  }

  private userState(userId: string): UserState {
    let user = this.users.get(userId);
    if (!user) {
      const { userRatePerSec, userBurst } = this.options.limits;
      user = { connections: 0, bucket: new TokenBucket(userRatePerSec, userBurst, this.deps.clock.now()) };
      this.users.set(userId, user);
    }
    return user;
  }

  private releaseUser(userId: string): void {
    const user = this.users.get(userId);
    if (!user) return;
    user.connections -= 1;
    if (user.connections <= 0) this.users.delete(userId);
  }

  private waitUntilEmpty(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.sessions.size === 0) return resolve();
      const poll = this.deps.clock.setInterval(() => {
        if (this.sessions.size === 0) finish();
      }, 50);
      const deadline = this.deps.clock.setTimeout(() => finish(), timeoutMs);
      const finish = () => {
        poll.cancel();
        deadline.cancel();
        resolve();
      };
    });
  }
}

function eventFrame(channel: string, envelope: Envelope, publishedAtMs: number): EventFrame {
  // Same field order as a stored event's frame (storedEventFrame): seq follows id.
  return {
    op: "event",
    channel,
    id: envelope.id,
    ...(envelope.seq === undefined ? {} : { seq: envelope.seq }),
    type: envelope.type,
    data: envelope.data,
    ts: envelope.occurredAt ?? new Date(publishedAtMs).toISOString(),
  };
}

function readFrame(channel: string, data: unknown): Extract<ServerFrame, { op: "read" }> | undefined {
  const upTo = (data as { upTo?: unknown } | null)?.upTo;
  return Number.isSafeInteger(upTo) ? { op: "read", channel, upTo: upTo as number } : undefined;
}
