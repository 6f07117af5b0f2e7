import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type {
  FrameRejectReason,
  HttpRateLimitScope,
  Metrics,
  PresenceDropReason,
  PresenceState,
  ServerFrameType,
  Transport,
  UpgradeRejectReason,
  WebhookOutcome,
} from "../../core/ports/metrics.js";
import type { ClientOp } from "@sobranie/protocol/frames";
import { CloseCode, ErrorCode } from "@sobranie/protocol/codes";
import { ControlCommandName } from "@sobranie/protocol/control";

/**
 * Client ops as label values. `satisfies` makes the compiler fail when an op
 * is added to the protocol and not here; anything else a client sends is
 * counted as "unknown", so a hostile client cannot grow the series count.
 */
const KNOWN_OPS = new Set(
  Object.keys({
    subscribe: true,
    unsubscribe: true,
    publish: true,
    presence: true,
    status: true,
    read: true,
    ping: true,
    refresh: true,
  } satisfies Record<ClientOp, true>),
);

/** Close codes from our table keep their number; browsers can send any 1000–4999, which become "other". */
const KNOWN_CLOSE_CODES = new Set<number>(Object.values(CloseCode));

const FRAME_REJECT_REASONS: readonly FrameRejectReason[] = Object.values(ErrorCode);
const HTTP_RATE_LIMIT_SCOPES: readonly HttpRateLimitScope[] = ["user", "source", "api_key_failures", "api_key"];
const PRESENCE_DROP_REASONS: readonly PresenceDropReason[] = ["invalid", "foreign"];
/** Every reason, so each series exists at 0 from the start; the `satisfies` makes a reason added to the type and not here a compile error. */
const UPGRADE_REJECT_REASONS = Object.keys({
  unauthorized: true,
  revoked: true,
  too_many_connections: true,
  capacity: true,
  draining: true,
  broker_unavailable: true,
} satisfies Record<UpgradeRejectReason, true>) as UpgradeRejectReason[];

/** Publish-to-socket-write latency: 0.5 ms (same node, idle) up to 5 s (a backed-up queue). */
const DELIVERY_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/**
 * The metrics port on prom-client (docs/protocol.md §8), on a registry of its own so
 * two instances (tests, several apps in one process) never collide. Every
 * series carries the default label `server_id` = the node id. Label values
 * are bounded: ops, close codes and reasons come from closed sets;
 * namespaces from configuration.
 */
export class PromMetrics implements Metrics {
  readonly registry = new Registry();
  readonly contentType: string = this.registry.contentType;

  private readonly wsConnections: Gauge;
  private readonly sseConnections: Gauge;
  private readonly pusherConnections: Gauge;
  private readonly messagesSentTotal: Counter<"type" | "namespace">;
  private readonly deliveryDuration: Histogram;
  private readonly framesReceived: Counter<"op">;
  private readonly framesRejected: Counter<"reason">;
  private readonly rateLimited: Counter;
  private readonly oversizeFrames: Counter;
  private readonly httpRateLimitedTotal: Counter<"scope">;
  private readonly upgradesRejected: Counter<"reason">;
  private readonly connectionsClosed: Counter<"code">;
  private readonly pusherConnectionsClosed: Counter<"code">;
  private readonly deadLetteredTotal: Counter<"reason">;
  private readonly webhookEventsTotal: Counter<"outcome">;
  private readonly clientPublishes: Counter<"namespace">;
  private readonly persisted: Counter<"namespace" | "duplicate">;
  private readonly duplicatesDropped: Counter<"namespace">;
  private readonly repairedEvents: Counter<"namespace">;
  private readonly gaps: Counter<"namespace" | "reason">;
  private readonly unsubscribedDrops: Counter<"namespace">;
  private readonly amqpConnected: Gauge;
  private readonly amqpReconnects: Counter;
  private readonly bindings: Gauge;
  private readonly drainingGauge: Gauge;
  private readonly presenceMembers: Gauge<"scope">;
  private readonly presenceOnline: Gauge;
  private readonly presenceNodes: Gauge;
  private readonly presenceHeartbeatAge: Gauge;
  private readonly presenceResyncs: Counter;
  private readonly presenceDrops: Counter<"reason">;
  private readonly lastSeenWrites: Counter;
  private readonly lastSeenDrops: Counter;
  private readonly outboxRows: Counter;
  private readonly outboxFailures: Counter;
  private readonly controlCommands: Counter;
  private readiness: (() => { ready: boolean; checks: Record<string, boolean> }) | undefined;

  private readonly pusherCloseCodes: ReadonlySet<number>;

  /** `pusherCloseCodes`: the codes the Pusher endpoint closes with, kept as labels (others are "other"; none: every one is). */
  constructor(options: { nodeId: string; pusherCloseCodes?: ReadonlySet<number> }) {
    this.pusherCloseCodes = options.pusherCloseCodes ?? new Set();
    const registers = [this.registry];
    this.registry.setDefaultLabels({ server_id: options.nodeId });
    collectDefaultMetrics({ register: this.registry });
    // prom-client exports these three as gauges named like counters, which
    // `promtool check metrics` rejects; nodejs_active_handles{type} and its
    // two siblings, kept, sum to the same numbers.
    for (const name of ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"]) this.registry.removeSingleMetric(name);

    const metrics = this;
    new Gauge({
      name: "sobranie_ready",
      help: "1 when /readyz answers 200",
      registers,
      collect() {
        if (metrics.readiness) this.set(metrics.readiness().ready ? 1 : 0);
      },
    });
    new Gauge({
      name: "sobranie_readiness_check",
      help: "Each readiness check of /readyz: 1 passing, 0 failing",
      labelNames: ["check"],
      registers,
      collect() {
        for (const [check, passing] of Object.entries(metrics.readiness?.().checks ?? {})) this.set({ check }, passing ? 1 : 0);
      },
    });
    this.wsConnections = new Gauge({ name: "sobranie_ws_connections_active", help: "Open WebSocket connections", registers });
    this.sseConnections = new Gauge({ name: "sobranie_sse_connections_active", help: "Open SSE streams", registers });
    this.pusherConnections = new Gauge({ name: "sobranie_pusher_connections_active", help: "Open WebSockets of the Pusher endpoint (also in sobranie_ws_connections_active)", registers });
    this.messagesSentTotal = new Counter({
      name: "sobranie_messages_sent_total",
      help: "Frames delivered to local sockets, one per recipient",
      labelNames: ["type", "namespace"],
      registers,
    });
    this.deliveryDuration = new Histogram({
      name: "sobranie_message_delivery_duration_seconds",
      help: "Time from publish to socket write, once per delivered event",
      buckets: DELIVERY_BUCKETS_SECONDS,
      registers,
    });
    this.framesReceived = new Counter({
      name: "sobranie_frames_received_total",
      help: "Client frames received, by op (unknown ops as \"unknown\")",
      labelNames: ["op"],
      registers,
    });
    this.framesRejected = new Counter({
      name: "sobranie_frames_rejected_total",
      help: "Client frames answered with an error, by error code",
      labelNames: ["reason"],
      registers,
    });
    this.rateLimited = new Counter({ name: "sobranie_rate_limited_total", help: "Frames refused by a rate limit", registers });
    this.oversizeFrames = new Counter({ name: "sobranie_oversize_frames_total", help: "Frames over the size limit", registers });
    this.httpRateLimitedTotal = new Counter({
      name: "sobranie_http_rate_limited_total",
      help: "HTTP requests (API, SSE connect) refused with 429, by limit: user, source (client address), api_key_failures, api_key",
      labelNames: ["scope"],
      registers,
    });
    this.upgradesRejected = new Counter({
      name: "sobranie_upgrades_rejected_total",
      help: "WebSocket/SSE requests refused before the upgrade",
      labelNames: ["reason"],
      registers,
    });
    this.connectionsClosed = new Counter({
      name: "sobranie_connections_closed_total",
      help: "Closed connections by close code (codes outside the protocol table as \"other\")",
      labelNames: ["code"],
      registers,
    });
    this.pusherConnectionsClosed = new Counter({
      name: "sobranie_pusher_connections_closed_total",
      help: "Closed connections of the Pusher endpoint by Pusher close code (codes the gateway never sends as \"other\")",
      labelNames: ["code"],
      registers,
    });
    this.deadLetteredTotal = new Counter({
      name: "sobranie_dead_lettered_total",
      help: "Broker messages dead-lettered, by reason",
      labelNames: ["reason"],
      registers,
    });
    this.webhookEventsTotal = new Counter({
      name: "sobranie_webhook_events_total",
      help: "Pusher webhook events by outcome: delivered, retried (to a delay queue), gave_up and refused (both dead-lettered)",
      labelNames: ["outcome"],
      registers,
    });
    this.persisted = new Counter({
      name: "sobranie_events_persisted_total",
      help: "Durable events handled by the worker, by namespace; duplicate=true when the id was stored before",
      labelNames: ["namespace", "duplicate"],
      registers,
    });
    this.unsubscribedDrops = new Counter({
      name: "sobranie_unsubscribed_dropped_total",
      help: "Events of a namespace bound as a whole (BIND_WHOLE_NAMESPACES) that reached a gateway with no local subscriber of their channel",
      labelNames: ["namespace"],
      registers,
    });
    this.repairedEvents = new Counter({
      name: "sobranie_feed_repaired_events_total",
      help: "Durable events delivered from the store after this node's broker feed was interrupted (feed repair), by namespace",
      labelNames: ["namespace"],
      registers,
    });
    this.gaps = new Counter({
      name: "sobranie_delivery_gaps_total",
      help: "Channels whose local subscribers were sent a gap frame: interrupted (non-durable channel, broker feed interrupted) or incomplete (durable history could not return everything)",
      labelNames: ["namespace", "reason"],
      registers,
    });
    this.duplicatesDropped = new Counter({
      name: "sobranie_duplicates_dropped_total",
      help: "Relayed events a gateway dropped because it had already delivered their seq on the channel",
      labelNames: ["namespace"],
      registers,
    });
    this.clientPublishes = new Counter({
      name: "sobranie_client_publishes_total",
      help: "Accepted client publishes, by namespace",
      labelNames: ["namespace"],
      registers,
    });
    this.amqpConnected = new Gauge({ name: "sobranie_amqp_connected", help: "1 while connected to the broker", registers });
    this.amqpReconnects = new Counter({ name: "sobranie_amqp_reconnects_total", help: "Broker reconnections", registers });
    this.bindings = new Gauge({ name: "sobranie_bindings_active", help: "Channel bindings on this node's queue", registers });
    this.drainingGauge = new Gauge({ name: "sobranie_draining", help: "1 while this node is draining", registers });
    this.presenceMembers = new Gauge({
      name: "sobranie_presence_members",
      help: "Presence members (channel, user): scope=local tracked on this node, scope=cluster in this node's view of the cluster",
      labelNames: ["scope"],
      registers,
    });
    this.presenceOnline = new Gauge({ name: "sobranie_presence_online_users", help: "Users online on any node, in this node's view", registers });
    this.presenceNodes = new Gauge({ name: "sobranie_presence_nodes", help: "Gateway nodes this node hears presence heartbeats from, itself included", registers });
    this.presenceHeartbeatAge = new Gauge({
      name: "sobranie_presence_heartbeat_age_seconds",
      help: "Age of the oldest peer presence heartbeat (replication lag bound; a node is dead past PRESENCE_TTL_MS)",
      registers,
    });
    this.presenceResyncs = new Counter({ name: "sobranie_presence_resyncs_total", help: "Presence snapshots asked of peers after missed deltas or a digest mismatch", registers });
    this.presenceDrops = new Counter({
      name: "sobranie_presence_messages_dropped_total",
      help: "Presence bus messages dropped unread: invalid, or foreign (another DEPLOYMENT_ID in x-sobranie-deployment)",
      labelNames: ["reason"],
      registers,
    });
    this.lastSeenWrites = new Counter({
      name: "sobranie_presence_last_seen_writes_total",
      help: "Users' lastSeen times written to the store in batches, by outcome (failed ones are retried)",
      labelNames: ["outcome"],
      registers,
    });
    this.lastSeenDrops = new Counter({ name: "sobranie_presence_last_seen_dropped_total", help: "lastSeen times dropped unwritten while the store was unreachable", registers });
    this.outboxRows = new Counter({ name: "sobranie_outbox_relayed_total", help: "PostgreSQL outbox rows published (broker-confirmed) and marked by this worker's relay", registers });
    this.outboxFailures = new Counter({ name: "sobranie_outbox_relay_failures_total", help: "Outbox batches that failed (database or broker away); their rows are retried", registers });
    this.controlCommands = new Counter({
      name: "sobranie_control_commands_total",
      help: "Control commands (disconnect, unsubscribe, revoke) applied on this node; invalid ones count in sobranie_dead_lettered_total{reason=control_*}",
      labelNames: ["command"],
      registers,
    });

    // Start every bounded reason at zero so rate() works from the first scrape.
    for (const reason of FRAME_REJECT_REASONS) this.framesRejected.inc({ reason }, 0);
    for (const reason of UPGRADE_REJECT_REASONS) this.upgradesRejected.inc({ reason }, 0);
    for (const scope of HTTP_RATE_LIMIT_SCOPES) this.httpRateLimitedTotal.inc({ scope }, 0);
    for (const outcome of ["ok", "failed"]) this.lastSeenWrites.inc({ outcome }, 0);
    for (const reason of PRESENCE_DROP_REASONS) this.presenceDrops.inc({ reason }, 0);
    for (const command of Object.values(ControlCommandName)) this.controlCommands.inc({ command }, 0);
  }

  /**
   * Feeds `sobranie_ready` (0/1) and `sobranie_readiness_check{check}` (broker,
   * brokerPublish, presence, revocations, accepting, store, persistQueue,
   * webhookQueue: a closed set), read at scrape time, so
   * alerts see the same verdict as the load balancer, including a failing store.
   */
  observeReadiness(readiness: () => { ready: boolean; checks: Record<string, boolean> }): void {
    this.readiness = readiness;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }

  connectionOpened(transport: Transport): void {
    this.connectionGauge(transport).inc();
    if (transport === "pusher") this.pusherConnections.inc();
  }

  /** Pusher's codes overlap ours with other meanings (4001, 4003, 4008), so its closes are counted apart. */
  connectionClosed(transport: Transport, closeCode: number): void {
    this.connectionGauge(transport).dec();
    if (transport === "pusher") {
      this.pusherConnections.dec();
      this.pusherConnectionsClosed.inc({ code: this.pusherCloseCodes.has(closeCode) ? String(closeCode) : "other" });
      return;
    }
    this.connectionsClosed.inc({ code: KNOWN_CLOSE_CODES.has(closeCode) ? String(closeCode) : "other" });
  }

  upgradeRejected(reason: UpgradeRejectReason): void {
    this.upgradesRejected.inc({ reason });
  }

  frameReceived(op: string): void {
    this.framesReceived.inc({ op: KNOWN_OPS.has(op) ? op : "unknown" });
  }

  /** `rate_limited` and `too_large` also feed their own totals: the port has no separate calls for them. */
  frameRejected(reason: FrameRejectReason): void {
    this.framesRejected.inc({ reason });
    if (reason === "rate_limited") this.rateLimited.inc();
    if (reason === "too_large") this.oversizeFrames.inc();
  }

  httpRateLimited(scope: HttpRateLimitScope): void {
    this.httpRateLimitedTotal.inc({ scope });
  }

  messagesSent(type: ServerFrameType, namespace: string, recipients: number, latencySeconds: number | undefined): void {
    if (recipients <= 0) return;
    this.messagesSentTotal.inc({ type, namespace }, recipients);
    if (latencySeconds !== undefined && latencySeconds >= 0) this.deliveryDuration.observe(latencySeconds);
  }

  deadLettered(reason: string): void {
    this.deadLetteredTotal.inc({ reason });
  }

  eventsPersisted(namespace: string, duplicate: boolean): void {
    this.persisted.inc({ namespace, duplicate: String(duplicate) });
  }

  eventsRepaired(namespace: string, count: number): void {
    this.repairedEvents.inc({ namespace }, count);
  }

  deliveryGap(namespace: string, reason: "interrupted" | "incomplete"): void {
    this.gaps.inc({ namespace, reason });
  }

  duplicateDropped(namespace: string): void {
    this.duplicatesDropped.inc({ namespace });
  }

  unsubscribedDropped(namespace: string): void {
    this.unsubscribedDrops.inc({ namespace });
  }

  clientPublished(namespace: string): void {
    this.clientPublishes.inc({ namespace });
  }

  brokerConnected(connected: boolean): void {
    this.amqpConnected.set(connected ? 1 : 0);
  }

  brokerReconnected(): void {
    this.amqpReconnects.inc();
  }

  bindingsActive(count: number): void {
    this.bindings.set(count);
  }

  draining(isDraining: boolean): void {
    this.drainingGauge.set(isDraining ? 1 : 0);
  }

  presenceState(state: PresenceState): void {
    this.presenceMembers.set({ scope: "local" }, state.localMembers);
    this.presenceMembers.set({ scope: "cluster" }, state.clusterMembers);
    this.presenceOnline.set(state.onlineUsers);
    this.presenceNodes.set(state.nodes);
    this.presenceHeartbeatAge.set(state.heartbeatAgeSeconds);
  }

  presenceResync(): void {
    this.presenceResyncs.inc();
  }

  presenceMessageDropped(reason: PresenceDropReason): void {
    this.presenceDrops.inc({ reason });
  }

  lastSeenSaved(users: number, ok: boolean): void {
    this.lastSeenWrites.inc({ outcome: ok ? "ok" : "failed" }, users);
  }

  lastSeenDropped(): void {
    this.lastSeenDrops.inc();
  }

  outboxRelayed(rows: number): void {
    this.outboxRows.inc(rows);
  }

  outboxRelayFailed(): void {
    this.outboxFailures.inc();
  }

  controlCommandApplied(command: ControlCommandName): void {
    this.controlCommands.inc({ command });
  }

  webhookEvents(outcome: WebhookOutcome, events: number): void {
    this.webhookEventsTotal.inc({ outcome }, events);
  }


  private connectionGauge(transport: Transport): Gauge {
    switch (transport) {
      case "ws":
      case "pusher":
        return this.wsConnections;
      case "sse":
        return this.sseConnections;
    }
  }
}
