import { uuidv7 } from "uuidv7";
import type { Config } from "../config/index.js";
import type { NamespaceRegistry } from "../core/namespaces.js";
import type { Clock } from "@sobranie/protocol/runtime/clock";
import type { EventStore } from "../core/ports/event-store.js";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import type { Metrics } from "../core/ports/metrics.js";
import type { PersistQueue } from "../core/ports/persist-queue.js";
import { PersistWorker } from "../worker/persist-worker.js";

export interface RunningWorker {
  /** Settles once the persist queue is consuming. */
  readonly started: Promise<void>;
  isReady(): boolean;
  /** Stops retries and the queue (the batch in flight finishes or stays unacked), and retention. Idempotent. */
  stop(): Promise<void>;
}

/** The worker role: persist-then-relay on the persist queue, and periodic retention. */
export function startWorker(deps: {
  config: Config;
  store: EventStore;
  queue: PersistQueue;
  namespaces: NamespaceRegistry;
  clock: Clock;
  metrics: Metrics;
  logger: Logger;
}): RunningWorker {
  const { config, store, queue, clock, logger } = deps;
  const worker = new PersistWorker({ store, queue, namespaces: deps.namespaces, clock, logger, metrics: deps.metrics, newId: uuidv7 });
  const started = queue.start(worker);
  let pruning = false;
  const retention = clock.setInterval(() => {
    if (pruning) return;
    pruning = true;
    store
      .prune(config.durable.retention, clock.now())
      .then(
        (removed) => removed > 0 && logger.info({ removed }, "retention removed old events"),
        (error: unknown) => logger.warn({ err: error }, "retention failed; retrying next interval"),
      )
      .finally(() => (pruning = false));
  }, config.durable.retentionIntervalMs);
  let stopping: Promise<void> | undefined;
  return {
    started,
    isReady: () => queue.isReady(),
    stop: () =>
      (stopping ??= (async () => {
        retention.cancel();
        worker.stop();
        await queue.stop();
      })()),
  };
}
