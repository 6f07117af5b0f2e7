import * as v from "valibot";
import { type BackoffOptions, equalJitterDelayMs } from "@sobranie/protocol/runtime/backoff";
import type { Clock } from "@sobranie/protocol/runtime/clock";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import type { Metrics } from "../../core/ports/metrics.js";
import type { WebhookDelivery, WebhookHandler, WebhookRetryState, WebhookSettlement } from "../../core/ports/webhook-queue.js";
import type { PusherApp, PusherApps } from "./apps.js";
import type { WebhookBatcher } from "./webhook-batcher.js";
import { PusherWebhookEventSchema, type PusherWebhookEvent, webhookInputOf, type WebhookInputContext } from "./webhook-events.js";
import type { WebhookPostResult } from "./webhook-post.js";

/** Dead-letter reasons (the `reason` label of `sobranie_dead_lettered_total`). */
export const WebhookDeadReason = {
  /** A message that asks for nothing valid: bad JSON, a bad event, an unknown app or receiver. */
  invalid: "webhook_invalid",
  /** Still failing when the retry window closed. */
  gaveUp: "webhook_gave_up",
  /** Answered with a status that retrying will not change (4xx but 408 and 429, 3xx). */
  refused: "webhook_refused",
} as const;

export interface WebhookRetryPolicy extends BackoffOptions {
  /** A group of events whose first attempt failed this long ago is dead-lettered at its next failure. */
  readonly giveUpAfterMs: number;
}

/** The body of a retry: one group of events for one receiver. */
const WebhookRetryBodySchema = v.strictObject({
  app: v.string(),
  url: v.string(),
  events: v.pipe(v.array(PusherWebhookEventSchema), v.minLength(1)),
});

interface Group {
  readonly app: PusherApp;
  readonly url: string;
  readonly events: readonly PusherWebhookEvent[];
  readonly retry: WebhookRetryState | undefined;
}

const decoder = new TextDecoder();

/**
 * The webhook consumer's logic (docs/pusher.md, "Webhooks"): turns each
 * queued message into groups of webhook events, one per receiver that
 * subscribed to any of them (an app's URL and its `events` list), sends them
 * through the batcher, and settles each group by its result: delivered;
 * retried after an exponential backoff with equal jitter (as a retry message
 * in the durable delay queue, so it survives a worker restart); or
 * dead-lettered, at once when refused and when it keeps failing for
 * `giveUpAfterMs`. Every outcome is counted; nothing is dropped unseen.
 */
export class WebhookDispatcher implements WebhookHandler {
  constructor(
    private readonly deps: {
      readonly apps: PusherApps;
      readonly batcher: WebhookBatcher;
      readonly retry: WebhookRetryPolicy;
      /** This deployment's DEPLOYMENT_ID (presence events of others are not ours to send) and the channels' Pusher names. */
      readonly input: WebhookInputContext;
      readonly clock: Clock;
      readonly metrics: Metrics;
      readonly logger: Logger;
    },
  ) {}

  async handle(delivery: WebhookDelivery): Promise<readonly WebhookSettlement[]> {
    const groups = this.groupsOf(delivery);
    if (!Array.isArray(groups)) return [groups];
    const settled = await Promise.all(
      groups.map(async (group) => this.settle(group, await this.deps.batcher.send(group, group.events, group.retry === undefined))),
    );
    return settled.filter((settlement): settlement is WebhookSettlement => settlement !== undefined);
  }

  private groupsOf(delivery: WebhookDelivery): Group[] | WebhookSettlement {
    const text = decoder.decode(delivery.body);
    const invalid = (message: string): WebhookSettlement => {
      this.deps.metrics.deadLettered(WebhookDeadReason.invalid);
      this.deps.logger.warn({ routingKey: delivery.routingKey, detail: message }, "webhook message dead-lettered");
      return { kind: "dead-letter", body: text, retry: delivery.retry, reason: WebhookDeadReason.invalid, message };
    };
    if (delivery.retry) {
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        return invalid("retry body is not JSON");
      }
      const parsed = v.safeParse(WebhookRetryBodySchema, json);
      if (!parsed.success) return invalid(`retry body: ${v.summarize(parsed.issues)}`);
      const { app: appId, url, events } = parsed.output;
      const app = this.deps.apps.byId(appId);
      if (!app?.webhooks.some((hook) => hook.url === url)) return invalid(`retry for ${url} of app ${appId}: no longer configured`);
      return [{ app, url, events, retry: delivery.retry }];
    }
    const input = webhookInputOf(delivery.routingKey, delivery.body, this.deps.input);
    if (!input.ok) return invalid(input.message);
    let apps: PusherApp[];
    if (input.appId === undefined) apps = [...this.deps.apps.all()];
    else {
      const app = this.deps.apps.byId(input.appId);
      if (!app) return invalid(`no Pusher app ${input.appId}`);
      apps = [app];
    }
    const groups: Group[] = [];
    for (const app of apps) {
      for (const hook of app.webhooks) {
        const events = input.events.filter((event) => hook.events.includes(event.name));
        if (events.length > 0) groups.push({ app, url: hook.url, events, retry: undefined });
      }
    }
    return groups;
  }

  private settle(group: Group, result: WebhookPostResult): WebhookSettlement | undefined {
    const { metrics, logger, clock, retry: policy } = this.deps;
    const count = group.events.length;
    if (result.kind === "delivered") {
      metrics.webhookEvents("delivered", count);
      return undefined;
    }
    const body = JSON.stringify({ app: group.app.id, url: group.url, events: group.events });
    const where = { app: group.app.id, url: group.url, events: count, detail: result.detail };
    if (result.kind === "refused") {
      metrics.webhookEvents("refused", count);
      metrics.deadLettered(WebhookDeadReason.refused);
      logger.warn(where, "webhook refused by its receiver: dead-lettered");
      return { kind: "dead-letter", body, retry: group.retry, reason: WebhookDeadReason.refused, message: `${group.url} ${result.detail}` };
    }
    const now = clock.now();
    const firstFailureMs = group.retry?.firstFailureMs ?? now;
    if (now - firstFailureMs >= policy.giveUpAfterMs) {
      metrics.webhookEvents("gave_up", count);
      metrics.deadLettered(WebhookDeadReason.gaveUp);
      logger.warn({ ...where, failingMs: now - firstFailureMs }, "webhook still failing after the retry window: dead-lettered");
      return {
        kind: "dead-letter",
        body,
        retry: group.retry,
        reason: WebhookDeadReason.gaveUp,
        message: `${group.url} still failing after ${now - firstFailureMs} ms: ${result.detail}`,
      };
    }
    const attempt = (group.retry?.attempt ?? 0) + 1;
    metrics.webhookEvents("retried", count);
    logger.debug({ ...where, attempt }, "webhook failed; retrying after a backoff");
    return { kind: "retry", body, retry: { attempt, firstFailureMs }, delayMs: equalJitterDelayMs(policy, attempt - 1) };
  }
}
