import type { Logger } from "@sobranie/protocol/runtime/logger";
import type { PusherApp } from "./apps.js";
import { PUSHER_WEBHOOK_ROUTING_PREFIX, type PusherWebhookEvent, type WebhookEventName } from "./webhook-events.js";

/** Where the entry point publishes: the gateway's publish for workers (Gateway.publishForWorkers). */
export type PublishForWorkers = (routingKey: string, body: string) => Promise<void>;

/**
 * The WebSocket side of the webhook entry point (docs/pusher.md "Webhooks"):
 * the webhook events only this side sees (client events, cache misses) go to
 * `sobranie.events` as `pusher.<appId>.<event name>` with the event itself as
 * the body, where the workers' webhook queue takes them. Only for an app with
 * a webhook that wants the event: nothing is published for nobody.
 *
 * Best effort, as the event it reports: a publish the broker does not confirm
 * (no broker) is logged and dropped; once confirmed, the workers' delivery is
 * durable.
 */
export class PusherWebhookEntry {
  constructor(
    private readonly publish: PublishForWorkers,
    private readonly logger: Logger,
  ) {}

  /** Whether any of `app`'s webhooks wants `name`. */
  wants(app: PusherApp, name: WebhookEventName): boolean {
    return app.webhooks.some((hook) => hook.events.includes(name));
  }

  /** Publishes `event` for `app`'s webhooks, if one wants it. */
  send(app: PusherApp, event: PusherWebhookEvent): void {
    if (!this.wants(app, event.name)) return;
    this.publish(`${PUSHER_WEBHOOK_ROUTING_PREFIX}.${app.id}.${event.name}`, JSON.stringify(event)).catch((error: unknown) =>
      this.logger.warn({ err: error, app: app.id, event: event.name, channel: event.channel }, "webhook event not published: the broker did not take it"),
    );
  }
}
