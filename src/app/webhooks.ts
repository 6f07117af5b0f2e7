import type { Config } from "../config/index.js";
import { backoffCeilingsMs } from "@sobranie/protocol/runtime/backoff";
import type { Clock } from "@sobranie/protocol/runtime/clock";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import type { Metrics } from "../core/ports/metrics.js";
import { AmqpWebhookQueue } from "../adapters/amqp/amqp-webhook-queue.js";
import { webhookQueueName } from "../adapters/amqp/topology.js";
import { PusherApps } from "../adapters/pusher/apps.js";
import { pusherChannelNames } from "./pusher-channel-names.js";
import { WebhookBatcher } from "../adapters/pusher/webhook-batcher.js";
import { WebhookDispatcher } from "../adapters/pusher/webhook-dispatcher.js";

export interface RunningWebhooks {
  /** Settles once the webhook queue is consuming. */
  readonly started: Promise<void>;
  isReady(): boolean;
  /** Stops consuming; deliveries in flight finish (bounded) or are redelivered. Idempotent. */
  stop(): Promise<void>;
}

/**
 * The worker's Pusher webhooks (docs/pusher.md, "Webhooks"): the durable
 * webhook queue on RabbitMQ feeding the dispatcher. Started only when some
 * app has a webhook; with the embedded broker (no RABBITMQ_URL) there is no
 * durable queue to retry from, so none are sent, and the start says so.
 */
export function startWebhooks(deps: { config: Config; clock: Clock; metrics: Metrics; logger: Logger }): RunningWebhooks | undefined {
  const { config, clock, metrics, logger } = deps;
  if (!config.pusherApps.some((app) => app.webhooks.length > 0)) return undefined;
  if (config.rabbitmqUrls.length === 0) {
    logger.warn({}, "PUSHER_APPS has webhooks but RABBITMQ_URL is unset: webhooks need RabbitMQ's durable queues and are not sent");
    return undefined;
  }
  const settings = config.webhooks;
  const retry = { initialDelayMs: settings.retryInitialMs, maxDelayMs: settings.retryMaxDelayMs, giveUpAfterMs: settings.giveUpAfterMs };
  const batcher = new WebhookBatcher({ windowMs: settings.batchWaitMs, maxEvents: settings.batchMaxEvents, timeoutMs: settings.timeoutMs }, { clock });
  const dispatcher = new WebhookDispatcher({ apps: new PusherApps(config.pusherApps), batcher, retry, input: { deploymentId: config.deploymentId, channelNames: pusherChannelNames(config) }, clock, metrics, logger });
  const queue = new AmqpWebhookQueue({
    urls: config.rabbitmqUrls,
    nodeId: config.nodeId,
    clock,
    confirmTimeoutMs: config.confirmTimeoutMs,
    logger,
    queueName: webhookQueueName(config.deploymentId),
    appIds: config.pusherApps.filter((app) => app.webhooks.length > 0).map((app) => app.id),
    delayStepsMs: backoffCeilingsMs(retry),
  });
  const started = queue.start(dispatcher);
  let stopping: Promise<void> | undefined;
  return {
    started,
    isReady: () => queue.isReady(),
    stop: () =>
      (stopping ??= (async () => {
        await queue.stop();
        batcher.stop();
      })()),
  };
}
