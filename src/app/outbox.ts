import type { Config } from "../config/index.js";
import type { Broker } from "../core/ports/broker.js";
import type { Clock } from "@sobranie/protocol/runtime/clock";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import type { Metrics } from "../core/ports/metrics.js";
import type { EventsPublisher } from "../core/ports/outbox.js";
import { AmqpPublishConnection } from "../adapters/amqp/amqp-publish-connection.js";
import { workerConnectionName } from "../adapters/amqp/topology.js";
import { PostgresOutbox } from "../adapters/postgres/postgres-outbox.js";
import { OutboxRelay } from "../worker/outbox-relay.js";

export interface RunningOutbox {
  /** Stops the relay (the batch in flight finishes or stays unmarked), then its publisher. Idempotent. */
  stop(): Promise<void>;
}

/**
 * The worker's PostgreSQL outbox relay, with its own connections: a small
 * pool plus a LISTEN connection to DATABASE_URL, and (with RabbitMQ) a
 * confirm channel to `sobranie.events`; on the embedded broker it publishes
 * through the broker itself. Starts after `after` (the persist queue
 * consuming): a durable event published before `sobranie.persist` exists and
 * is bound would be routed nowhere.
 */
export function startOutbox(deps: {
  config: Config;
  databaseUrl: string;
  broker: Broker;
  after: Promise<void>;
  clock: Clock;
  metrics: Metrics;
  logger: Logger;
}): RunningOutbox {
  const { config, clock, logger } = deps;
  const amqp =
    config.rabbitmqUrls.length > 0
      ? new AmqpPublishConnection({
          mode: "confirmed",
          what: "outbox publisher",
          connectionName: `${workerConnectionName(config.nodeId)}-outbox`,
          urls: config.rabbitmqUrls,
          nodeId: config.nodeId,
          logger,
          clock,
          confirmTimeoutMs: config.confirmTimeoutMs,
        })
      : undefined;
  const publisher: EventsPublisher = amqp ?? { publish: (message) => deps.broker.publish({ target: "events", ...message }) };
  const relay = new OutboxRelay({
    outbox: new PostgresOutbox({ databaseUrl: deps.databaseUrl, logger, clock }),
    publisher,
    clock,
    logger,
    metrics: deps.metrics,
    options: { batchSize: config.outbox.batchSize, sweepIntervalMs: config.outbox.sweepIntervalMs, keepPublishedMs: config.outbox.keepPublishedMs },
  });
  let stopped = false;
  const started = (async () => {
    await deps.after;
    // Not awaited: the relay retries while the broker is away; its rows wait in the outbox.
    void amqp?.start().catch(() => undefined);
    if (!stopped) await relay.start();
  })().catch((error: unknown) => {
    if (!stopped) logger.error({ err: error }, "outbox relay failed to start; outbox rows wait until a worker relays them");
  });
  let stopping: Promise<void> | undefined;
  return {
    stop: () =>
      (stopping ??= (async () => {
        stopped = true;
        await started;
        await relay.stop();
        await amqp?.stop();
      })()),
  };
}
