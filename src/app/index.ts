import { uuidv7 } from "uuidv7";
import type { Config } from "../config/index.js";
import { Gateway } from "../core/gateway.js";
import { NamespaceRegistry } from "../core/namespaces.js";
import { systemClock, type Clock } from "../core/ports/clock.js";
import type { Broker } from "../core/ports/broker.js";
import type { Logger } from "../core/ports/logger.js";
import { AmqpBroker } from "../adapters/amqp/amqp-broker.js";
import { JwtAuthenticator, signDemoToken } from "../adapters/jose/jwt-authenticator.js";
import { MemoryBroker } from "../adapters/memory/memory-broker.js";
import { createPinoLogger } from "../adapters/pino/pino-logger.js";
import { PromMetrics } from "../adapters/prometheus/prom-metrics.js";
import { loadUws } from "../adapters/uws/load-uws.js";
import { UwsServer } from "../adapters/uws/uws-server.js";
import { UwsFanout } from "../adapters/uws/uws-session-socket.js";

export interface RunningApp {
  /** The port actually bound (differs from the config with PORT=0). */
  readonly port: number;
  readonly nodeId: string;
  /** Settles once the broker is connected, the topology asserted and bindings restored. */
  readonly ready: Promise<void>;
  /** A token for the demo user, on embedded defaults with no JWT key configured. */
  readonly demoToken: string | undefined;
  /** The written shutdown order (see below). Idempotent: later calls return the first call's promise. */
  stop(): Promise<void>;
}

export interface AppOverrides {
  readonly logger?: Logger;
  readonly clock?: Clock;
}

/**
 * Composition root: the only place adapters are constructed. Roles other
 * than `gateway` add their parts here as they arrive.
 */
export async function startApp(config: Config, overrides: AppOverrides = {}): Promise<RunningApp> {
  const logger = overrides.logger ?? createPinoLogger({ level: config.logLevel, nodeId: config.nodeId });
  const clock = overrides.clock ?? systemClock;
  const metrics = new PromMetrics({ nodeId: config.nodeId });
  const namespaces = new NamespaceRegistry(config.namespaces);
  const authenticator = new JwtAuthenticator({
    secret: config.jwt.secret,
    publicKeyPem: config.jwt.publicKeyPem,
    jwksUrl: config.jwt.jwksUrl,
    issuer: config.jwt.issuer,
    audience: config.jwt.audience,
  });
  const broker: Broker = config.rabbitmqUrl
    ? new AmqpBroker({
        url: config.rabbitmqUrl,
        nodeId: config.nodeId,
        liveNamespaces: namespaces.liveNamespaces(),
        logger: logger.child({ component: "amqp" }),
        clock,
        nodeQueue: config.nodeQueue,
        onConnectionStateChange: (connected) => metrics.brokerConnected(connected),
        onReconnect: () => metrics.brokerReconnected(),
      })
    : new MemoryBroker({ liveNamespaces: namespaces.liveNamespaces() });

  const { uws, build } = loadUws();
  const uwsApp = uws.App();
  const gateway = new Gateway(
    {
      nodeId: config.nodeId,
      heartbeatMs: config.heartbeatMs,
      ttlMs: config.presenceTtlMs,
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
      broker,
      fanout: new UwsFanout(uwsApp),
      authenticator,
      namespaces,
      clock,
      metrics,
      logger: logger.child({ component: "gateway" }),
      newId: uuidv7,
      bindLingerMs: config.bindLingerMs,
    },
  );
  const server = new UwsServer({
    uws,
    app: uwsApp,
    gateway,
    authenticator,
    metrics,
    exposition: metrics,
    readiness: () => gateway.readiness(),
    logger,
    maxFrameBytes: config.limits.maxFrameBytes,
    sendBufferBytes: config.limits.sendBufferBytes,
  });

  const port = await server.listen(config.http.host, config.http.port);
  gateway.start();
  const ready = broker.start(gateway);
  ready.then(
    () => logger.info({}, "broker ready"),
    (error: unknown) => logger.error({ err: error }, "broker failed to start"),
  );
  logger.info({ port, role: config.role, uws: build, broker: config.rabbitmqUrl ? "rabbitmq" : "embedded" }, "gateway listening");

  const demoToken =
    config.jwt.generated && config.jwt.secret
      ? await signDemoToken(config.jwt.secret, { sub: "demo", channels: ["room:*"], info: { name: "Demo" }, ttlSec: 24 * 3600 })
      : undefined;

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      // Shutdown order, written once:
      // 1. drain: /readyz and new upgrades answer 503, clients get `reconnect`,
      //    then whoever is left is closed 1012 after the grace period;
      // 2. stop listening; 3. close leftovers and timers;
      // 4. broker: cancel the consumer, remove bindings, finish confirms, close;
      // 5. release the uWS app.
      logger.info({ graceMs: config.drainGraceMs }, "draining");
      await gateway.drain(config.drainGraceMs);
      server.stopListening();
      gateway.stop();
      await broker.stop();
      server.close();
      logger.info({}, "stopped");
    })();
    return stopping;
  };

  return { port, nodeId: config.nodeId, ready, demoToken, stop };
}
