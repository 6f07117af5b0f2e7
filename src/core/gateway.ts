import { CloseCode } from "@sobranie/protocol/codes";
import { decodeControl, type ControlCommand } from "@sobranie/protocol/control";
import { AccessControl } from "./access-control.js";
import type { BackendPublish } from "./backend-publish.js";
import { BrokerLoss, DEFAULT_BROKER_LOSS } from "./broker-loss.js";
import { BrokerPublishes } from "./broker-publishes.js";
import { ChannelBindings } from "./channel-bindings.js";
import { ChannelWires } from "./channel-wires.js";
import { Connections, type Admission, type AdmissionTicket } from "./connections.js";
import { deadLetter } from "./dead-letter.js";
import type { GatewayDeps, GatewayOptions } from "./gateway-options.js";
import { LateTick } from "@sobranie/protocol/runtime/late-tick";
import { LiveRouter } from "./live-router.js";
import type { RevocationLimits } from "./revocations.js";
import type { Session } from "./session.js";
import type { SessionContext } from "./session-context.js";
import type { SessionWire } from "./session-wire.js";
import type { Principal } from "./ports/authenticator.js";
import type { BrokerHandler, DeliveryOutcome, LiveDelivery } from "./ports/broker.js";
import type { Timer } from "@sobranie/protocol/runtime/clock";
import type { SessionSocket } from "./ports/session-socket.js";
import { LoneBus, PresenceTracker, type PresenceHandle } from "./presence/index.js";

const DEFAULT_INSPECT_INTERVAL_MS = 250;
const DEFAULT_REVOCATIONS: RevocationLimits = { maxTokenLifetimeMs: 30 * 24 * 3_600_000, maxEntries: 1_000_000 };
const DEFAULT_PRESENCE = { maxListedMembers: 1_000, fanoutPerSec: 50, fanoutDeliveriesPerSec: 20_000 } as const;

/**
 * The node's core: admits connections (Connections), routes broker
 * deliveries to the local fan-out (LiveRouter), publishes to the broker
 * (BrokerPublishes), moves clients away when the broker stays lost
 * (BrokerLoss), applies control commands (AccessControl), and drains.
 * Runtime-agnostic: transports hand it SessionSockets. This class only
 * composes those parts and writes down the order of start, drain and stop.
 */
export class Gateway implements BrokerHandler {
  private readonly connections: Connections;
  private readonly access: AccessControl;
  private readonly live: LiveRouter;
  private readonly publishes: BrokerPublishes;
  private readonly brokerLoss: BrokerLoss;
  private readonly deps: GatewayDeps;
  private readonly options: GatewayOptions;
  private draining = false;
  private inspector: Timer | undefined;
  private readonly tracker: PresenceTracker;
  private readonly inspectTick: LateTick;
  private readonly bindings: ChannelBindings;
  /** The node's fan-out: channels' frames natively, and in other wire formats where attached (the Pusher adapter attaches its own). */
  readonly wires: ChannelWires;

  constructor(options: GatewayOptions, inputDeps: GatewayDeps) {
    this.options = options;
    this.wires = new ChannelWires(inputDeps.fanout);
    const deps: GatewayDeps = { ...inputDeps, fanout: this.wires };
    this.deps = deps;
    const presence = options.presence ?? DEFAULT_PRESENCE;
    this.inspectTick = new LateTick(options.inspectIntervalMs ?? DEFAULT_INSPECT_INTERVAL_MS, deps.clock.now());
    this.publishes = new BrokerPublishes({ ...deps, deploymentId: options.deploymentId });
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
        publishEvent: (event) => this.publishes.presenceEvent(event),
        lastSeenStore: deps.store,
        showSubscriberCount: (channel, count) => this.wires.publishToWires(channel, { op: "subscriber_count", count }),
      },
    );
    const bindings = new ChannelBindings({
      broker: deps.broker,
      clock: deps.clock,
      lingerMs: deps.bindLingerMs,
      onCountChange: (count) => deps.metrics.bindingsActive(count),
      onExpired: (prefix) => this.live.forget(prefix),
      wholeNamespaces: deps.bindWholeNamespaces,
    });
    this.bindings = bindings;
    this.access = new AccessControl({
      clock: deps.clock,
      logger: deps.logger.child({ component: "access-control" }),
      metrics: deps.metrics,
      store: deps.store,
      limits: options.revocations ?? DEFAULT_REVOCATIONS,
      sessionsOf: (userId) => this.connections.ofUser(userId),
    });
    this.live = new LiveRouter({ ...deps, bindings, pageSize: options.recoveryLimit });
    const ctx: SessionContext = {
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
      publishFromClient: (request) => this.publishes.fromClient(request),
      store: deps.store,
      recoveryLimit: options.recoveryLimit,
      beginRecovery: (channel, sink) => this.live.beginRecovery(channel, sink),
      endRecovery: (channel, sink) => this.live.endRecovery(channel, sink),
      announceRead: (userId, upTo) => this.announceRead(userId, upTo),
      presence: this.tracker,
      access: this.access,
    };
    this.connections = new Connections({ limits: options.limits, clock: deps.clock, newId: deps.newId, ctx });
    this.brokerLoss = new BrokerLoss({
      clock: deps.clock,
      logger: deps.logger,
      options: options.brokerLoss ?? DEFAULT_BROKER_LOSS,
      isDraining: () => this.draining,
      sessionCount: () => this.connections.size,
      askToReconnect: (spreadMs, reason) => this.connections.askToReconnect(spreadMs, reason),
    });
  }

  /**
   * Call (and await) before the broker starts: whole-namespace bindings are
   * then made while it connects, before it reports ready, and the feed
   * repair has its starting position. Never rejects.
   */
  async start(): Promise<void> {
    if (this.inspector) return;
    const position = this.live.repair.start();
    this.access.start();
    this.bindings.bindWholeNamespaces();
    this.inspector = this.deps.clock.setInterval(() => this.inspectSessions(), this.options.inspectIntervalMs ?? DEFAULT_INSPECT_INTERVAL_MS);
    this.tracker.start().catch((error: unknown) => this.deps.logger.error({ err: error }, "presence bus did not start"));
    this.brokerLoss.start();
    await position;
  }

  /** Channel presence and user status, for the HTTP API. */
  get presence(): PresenceHandle {
    return this.tracker;
  }

  /**
   * Ready for traffic: broker connected with bindings restored, its publish
   * connection up, presence bus connected, revocations loaded, and not
   * draining. A node whose presence bus is away would show its new users
   * offline everywhere else (and others' offline to them), and one that cannot
   * publish would answer every HTTP publish 503, so the load balancer sends
   * new connections and requests to another node meanwhile.
   */
  isReady(): boolean {
    return this.readiness().ready;
  }

  /**
   * What `/readyz` reports. `broker`: deliveries flow (what BrokerLoss acts
   * on); `brokerPublish`: publishes would go out now (the broker may reconnect
   * that side on its own, later); `revocations`: the store's revocations are
   * loaded (a node that has not could admit a revoked token).
   */
  readiness(): { ready: boolean; checks: Record<string, boolean> } {
    const checks = {
      broker: this.brokerLoss.isReady(),
      brokerPublish: this.deps.broker.canPublish(),
      presence: this.tracker.isConnected(),
      revocations: this.access.isLoaded(),
      accepting: !this.draining,
    };
    return { ready: Object.values(checks).every(Boolean), checks };
  }

  /** Whether a control command revoked this token (checked like an upgrade's). */
  isRevoked(principal: Principal): boolean {
    return this.access.isRevoked(principal);
  }

  /** Whether an `unsubscribe` command removed this token's user from `channel`. */
  isChannelRevoked(principal: Principal, channel: string): boolean {
    return this.access.isChannelRevoked(principal, channel);
  }

  isDraining(): boolean {
    return this.draining;
  }

  connectionCount(): number {
    return this.connections.size;
  }

  /** Decides an upgrade before it happens (HTTP 429/503 are answered there, not after). */
  admit(principal: Principal): Admission {
    if (this.draining) return { ok: false, reason: "draining" };
    if (this.brokerLoss.isLost()) return { ok: false, reason: "broker_unavailable" };
    if (this.access.isRevoked(principal)) return { ok: false, reason: "revoked" };
    return this.connections.reserve(principal);
  }

  /** The upgrade completed: the session starts and gets `welcome`; `wire` writes its frames (protocol v1 unless given). */
  open(ticket: AdmissionTicket, socket: SessionSocket, wire?: SessionWire): Session {
    return this.connections.open(ticket, socket, wire);
  }

  /** The transport reports a session's socket closed. */
  /** See Connections.signIn: the app signed `session` in as `userId`; control commands for the user reach it, and it counts them online. */
  signIn(session: Session, userId: string): void {
    this.connections.signIn(session, userId);
  }

  closed(session: Session): void {
    this.connections.closed(session);
  }

  /** See LiveRouter.handle: never throws, dead-letters what cannot be used. */
  handleDelivery(delivery: LiveDelivery): DeliveryOutcome {
    return this.live.handle(delivery);
  }

  /** A control command (docs/protocol.md §11), applied to this node's sessions at once; a bad one is dead-lettered. */
  handleControl(delivery: LiveDelivery): DeliveryOutcome {
    const decoded = decodeControl(delivery.body);
    if (!decoded.ok) return deadLetter(this.deps, `control_${decoded.reason}`, decoded.message);
    this.access.apply(decoded.command);
    return { kind: "delivered" };
  }

  readinessChanged(ready: boolean): void {
    if (!ready) {
      this.brokerLoss.down();
      this.live.repair.feedLost();
      return;
    }
    const wasReady = this.brokerLoss.up();
    this.publishes.resume();
    this.live.repair.feedBack();
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
      this.connections.askToReconnect(graceMs, "drain");
    }
    await this.connections.waitUntilEmpty(graceMs);
    this.connections.closeAll(CloseCode.ServiceRestart, "server restarting: reconnect");
  }

  /** Closes every session; resolves once presence has said `leaving` and written its waiting lastSeen times. */
  async stop(): Promise<void> {
    this.inspector?.cancel();
    this.inspector = undefined;
    this.brokerLoss.stop();
    this.live.repair.stop();
    this.access.stop();
    this.connections.closeAll(CloseCode.GoingAway, "server stopping");
    // After the sessions: their leaves go out as deltas, then `leaving` clears whatever is left at once.
    await this.tracker.stop();
    this.publishes.close();
  }

  /** See BrokerPublishes.backendEvent: resolves with the id once the broker confirmed. */
  publishBackendEvent(request: BackendPublish): Promise<string> {
    return this.publishes.backendEvent(request);
  }

  /**
   * A control command from the HTTP API: what it revokes is saved to the
   * store first (when this node has one), then it is published to the control
   * exchange, which every node (this one included) applies. Resolves once the
   * broker confirmed.
   */
  async publishControl(command: ControlCommand): Promise<void> {
    await this.access.persist(command);
    await this.publishes.control(command);
  }

  /** See BrokerPublishes.forWorkers: a message for workers under a reserved prefix; resolves once the broker confirmed. */
  publishForWorkers(routingKey: string, body: string): Promise<void> {
    return this.publishes.forWorkers(routingKey, body);
  }

  /** Tells every connection of the user, on every node, where their inbox read mark is. */
  announceRead(userId: string, upTo: number): void {
    this.publishes.readMark(userId, upTo);
  }

  private inspectSessions(): void {
    const nowMs = this.deps.clock.now();
    const judgeSilence = !this.inspectTick.late(nowMs);
    this.connections.inspect(nowMs, judgeSilence);
  }
}
