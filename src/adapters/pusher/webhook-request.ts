import { hmacHex } from "./signatures.js";
import type { PusherWebhookEvent } from "./webhook-events.js";

/**
 * One webhook request as Pusher sends it (and its server SDKs verify it:
 * `pusher.webhook({headers, rawBody}).isValid()`): a JSON body
 * `{"time_ms": …, "events": [...]}`, `X-Pusher-Key` the app key and
 * `X-Pusher-Signature` the hex HMAC-SHA256 of the exact body with the app
 * secret. The content type is `application/json` with no parameter: the
 * SDKs compare it whole and refuse `application/json; charset=utf-8`.
 */
export interface WebhookRequest {
  readonly body: string;
  readonly headers: Readonly<Record<string, string>>;
}

export function webhookRequest(app: { key: string; secret: string }, events: readonly PusherWebhookEvent[], timeMs: number): WebhookRequest {
  const body = JSON.stringify({ time_ms: timeMs, events });
  return {
    body,
    headers: {
      "content-type": "application/json",
      "x-pusher-key": app.key,
      "x-pusher-signature": hmacHex(app.secret, body),
    },
  };
}
