import { uuidv7 } from "uuidv7";
import type { Config } from "../config/index.js";
import { Gateway } from "../core/gateway.js";
import { NamespaceRegistry } from "../core/namespaces.js";
import { systemClock, type Clock } from "@sobranie/protocol/runtime/clock";
import type { EventStore } from "../core/ports/event-store.js";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import { JwtAuthenticator } from "../adapters/jose/jwt-authenticator.js";
import { PostgresEventStore } from "../adapters/postgres/postgres-event-store.js";
import { createPinoLogger } from "../adapters/pino/pino-logger.js";
import { PromMetrics } from "../adapters/prometheus/prom-metrics.js";
import { createEdgeServer } from "./runtime.js";
import { registerEdgeRoutes, type Readiness } from "../http/edge-routes.js";
import { ApiKeys } from "../http/api-keys.js";
import { HttpLimits } from "../http/http-limits.js";
import { CorkedSends } from "../http/corked-sends.js";
import { EdgeFanout } from "../http/websocket-session-socket.js";
import { SseTopics } from "../http/sse-session-socket.js";
import { PusherApps, pusherHttpRoutes } from "../adapters/pusher/index.js";
import { pusherChannelNames } from "./pusher-channel-names.js";
import { registerPusherSockets, type PusherSockets } from "../adapters/pusher/socket-route.js";
import { PusherCacheSource } from "../adapters/pusher/socket-cache.js";
import { PUSHER_SERVER_CLOSE_CODES } from "../adapters/pusher/socket-codes.js";
import { demoAccess, type DemoAccess } from "./demo-access.js";
import { createMessaging } from "./messaging.js";
import { startWorker, type RunningWorker } from "./worker.js";
import { startOutbox, type RunningOutbox } from "./outbox.js";
import { startWebhooks, type RunningWebhooks } from "./webhooks.js";

/** Revocations a gateway holds in memory at most (about 200 MB at the bound); past it the oldest go, logged. */
const MAX_REVOCATIONS_IN_MEMORY = 1_000_000;

export { demoOrigin, formatDemoBanner, type DemoAccess, type DemoUser } from "./demo-access.js";

export interface RunningApp {
  /** The port actually bound (differs from the config with PORT=0). */
  readonly port: number;
  readonly nodeId: string;
  /** Settles once the broker is connected, the topology asserted and bindings restored. */
  readonly ready: Promise<void>;
  /** The demo tokens and API key this process made up (embedded defaults), for the start-up banner. */
  readonly demo: DemoAccess | undefined;
  /** The written shutdown order (see below). Idempotent: later calls return the first call's promise. */
  stop(): Promise<void>;
}

export interface AppOverrides {
  readonly logger?: Logger;
  readonly clock?: Clock;
}

/**
 * Composition root: the only place adapters are constructed.
 *
 * Roles: `gateway` runs the client edge; `worker` persists durable events and
 * relays them live; `all` runs both in one process. The store (PostgreSQL,
 * or embedded PGlite without DATABASE_URL) is opened by the worker and by a
 * gateway that has DATABASE_URL (for recovery and the inbox); a gateway
 * without it cannot recover, and says so in every `ok`.
 */
export async function startApp(config: Config, overrides: AppOverrides = {}): Promise<RunningApp> {
  const logger = overrides.logger ?? createPinoLogger({ level: config.logLevel, nodeId: config.nodeId });
  const clock = overrides.clock ?? systemClock;
  const metrics = new PromMetrics({ nodeId: config.nodeId, pusherCloseCodes: PUSHER_SERVER_CLOSE_CODES });
  const namespaces = new NamespaceRegistry(config.namespaces);
  const runsGateway = config.role !== "worker";
  const runsWorker = config.role !== "gateway";

  // First: a runtime without a usable uWS build fails here, not after the store's start-up.
  const { server, build } = createEdgeServer();
  let store: EventStore | undefined;
  if (runsWorker || config.databaseUrl) {
    store = new PostgresEventStore({ databaseUrl: config.databaseUrl, logger: logger.child({ component: "store" }) });
    await store.start();
  } else {
    logger.warn({}, "no DATABASE_URL on a gateway-only node: subscribe with since cannot recover, the inbox API answers 503");
  }

  const messaging = createMessaging({ config, namespaces, logger, clock, metrics });
  const sseTopics = new SseTopics();
  const wsSends = new CorkedSends();
  let gateway: Gateway | undefined;
  const presenceBus = runsGateway ? messaging.presenceBus() : undefined;
  const authenticator = new JwtAuthenticator({
    secret: config.jwt.secret,
    publicKeyPem: config.jwt.publicKeyPem,
    jwksUrl: config.jwt.jwksUrl,
    issuer: config.jwt.issuer,
    audience: config.jwt.audience,
  });
  if (runsGateway) {
    gateway = new Gateway(
      {
        nodeId: config.nodeId,
        deploymentId: config.deploymentId,
        heartbeatMs: config.heartbeatMs,
        ttlMs: config.presenceTtlMs,
        recoveryLimit: config.durable.recoveryMaxEvents,
        presence: config.presence,
        brokerLoss: { graceMs: config.brokerLossGraceMs, spreadMs: config.drainGraceMs },
        revocations: { maxTokenLifetimeMs: config.jwt.maxTokenLifetimeMs, maxEntries: MAX_REVOCATIONS_IN_MEMORY },
        limits: {
          maxFrameBytes: config.limits.maxFrameBytes,
          connectionRatePerSec: config.limits.rateConnectionPerSec,
          connectionBurst: config.limits.rateConnectionBurst,
          userRatePerSec: config.limits.rateUserPerSec,
          userBurst: config.limits.rateUserBurst,
          abuseCloseMs: config.limits.abuseCloseMs,
          maxSubscriptions: config.limits.maxSubscriptions,
          maxConnectionsPerUser: config.limits.maxConnectionsPerUser,
          maxConnections: config.limits.maxConnections,
          sendBufferBytes: config.limits.sendBufferBytes,
        },
      },
      {
        broker: messaging.broker,
        fanout: new EdgeFanout(server, wsSends, sseTopics),
        authenticator,
        namespaces,
        clock,
        metrics,
        logger: logger.child({ component: "gateway" }),
        newId: uuidv7,
        bindLingerMs: config.bindLingerMs,
        bindWholeNamespaces: config.bindWholeNamespaces,
        store,
        presenceBus,
      },
    );
  }

  let worker: RunningWorker | undefined;
  let webhooks: RunningWebhooks | undefined;
  const readiness = (): Readiness => {
    const checks: Record<string, boolean> = {};
    if (gateway) Object.assign(checks, gateway.readiness().checks);
    if (store) checks.store = store.isReady();
    if (worker) checks.persistQueue = worker.isReady();
    if (webhooks) checks.webhookQueue = webhooks.isReady();
    return { ready: Object.values(checks).every(Boolean), checks };
  };
  metrics.observeReadiness(readiness);
  const httpLimits = new HttpLimits({ settings: config.httpLimits, clock, metrics });
  const pusherApps = new PusherApps(config.pusherApps);
  const channelNames = pusherChannelNames(config);
  // The Pusher-protocol endpoint (docs/pusher.md).
  const pusherSockets: PusherSockets | undefined =
    gateway && pusherApps.size > 0
      ? registerPusherSockets({
          server,
          gateway,
          apps: pusherApps,
          channelNames,
          cache: new PusherCacheSource(namespaces, store),
          clock,
          metrics,
          logger: logger.child({ component: "pusher" }),
          maxFrameBytes: config.limits.maxFrameBytes,
          ttlMs: config.presenceTtlMs,
        })
      : undefined;
  registerEdgeRoutes(server, {
    exposition: metrics,
    readiness,
    logger,
    edge: gateway && {
      gateway,
      apiKeys: new ApiKeys(config.apiKeys, config.apiRate),
      httpLimits,
      clock,
      authenticator,
      metrics,
      namespaces,
      store,
      maxFrameBytes: config.limits.maxFrameBytes,
      sseTopics,
      wsSends,
      maxSubscriptions: config.limits.maxSubscriptions,
      sseKeepAliveMs: Math.min(15_000, config.heartbeatMs),
      routes: pusherHttpRoutes({ apps: pusherApps, channelNames, gateway, namespaces, clock, authenticator, limits: httpLimits, rate: config.apiRate, store }),
    },
  });

  const port = await server.listen(config.http.host, config.http.port);
  await gateway?.start();
  const brokerReady = gateway ? messaging.broker.start(gateway) : Promise.resolve();
  if (runsWorker && store) {
    worker = startWorker({ config, store, queue: messaging.persistQueue(), namespaces, clock, metrics, logger: logger.child({ component: "worker" }) });
  }
  if (runsWorker) webhooks = startWebhooks({ config, clock, metrics, logger: logger.child({ component: "webhooks" }) });
  // The PostgreSQL outbox relay runs on workers with a real PostgreSQL (applications write the outbox there).
  const outbox: RunningOutbox | undefined =
    worker && config.databaseUrl
      ? startOutbox({ config, databaseUrl: config.databaseUrl, broker: messaging.broker, after: worker.started, clock, metrics, logger: logger.child({ component: "outbox" }) })
      : undefined;
  const ready = Promise.all([brokerReady, worker?.started, webhooks?.started]).then(() => undefined);
  ready.then(
    () => logger.info({}, "ready"),
    (error: unknown) => logger.error({ err: error }, "failed to become ready"),
  );
  logger.info({ port, role: config.role, uws: build, broker: config.rabbitmqUrls.length > 0 ? "rabbitmq" : "embedded", store: config.databaseUrl ? "postgresql" : "embedded" }, "listening");

  const demo = await demoAccess(config);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      // Shutdown order, written once:
      // 1. drain the edge: /readyz and new upgrades answer 503, clients get
      //    `reconnect`, whoever is left is closed 1012 after the grace period;
      // 2. stop listening; close leftovers and timers; presence says `leaving`
      //    (after the sessions' own leaves), writes waiting lastSeen times, and
      //    its bus closes;
      // 3. outbox relay (its batch in flight finishes or stays unmarked), then
      //    webhooks (stop consuming, requests in flight finish or their
      //    messages are redelivered), then the worker: stop taking batches,
      //    finish the one in flight (or leave it unacked for redelivery), stop
      //    retention;
      // 4. broker: cancel the consumer, remove bindings, finish confirms, close;
      // 5. store; 6. release the edge server.
      if (gateway) {
        logger.info({ graceMs: config.drainGraceMs }, "draining");
        await gateway.drain(config.drainGraceMs);
      }
      server.stopListening();
      pusherSockets?.stop();
      await gateway?.stop();
      await presenceBus?.stop();
      await outbox?.stop();
      await webhooks?.stop();
      await worker?.stop();
      await messaging.broker.stop();
      await store?.stop();
      server.close();
      logger.info({}, "stopped");
    })();
    return stopping;
  };

  return { port, nodeId: config.nodeId, ready, demo, stop };
}
