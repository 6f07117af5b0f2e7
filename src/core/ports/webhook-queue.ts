/**
 * The worker's durable input of webhook work (docs/pusher.md, "Webhooks"):
 * presence changes and Pusher-side events from `sobranie.events`, and
 * retries coming back from a delay. Each delivery is settled once its
 * handler resolves: the settlements it asked for (retries, dead letters) are
 * published and confirmed first, then the delivery is acked, so a change is
 * never lost between the two. A handler that rejects leaves the delivery
 * unacked for redelivery.
 */
export interface WebhookDelivery {
  /** The routing key it was published with on `sobranie.events` (a retry keeps its first one). */
  readonly routingKey: string;
  readonly body: Uint8Array;
  /** Set on a retry: the attempt it is (1 for the first retry) and when its first attempt failed. */
  readonly retry: WebhookRetryState | undefined;
}

export interface WebhookRetryState {
  readonly attempt: number;
  readonly firstFailureMs: number;
}

export type WebhookSettlement =
  /** Back to the queue after `delayMs` as a delivery with `retry` set and this body. */
  | { readonly kind: "retry"; readonly body: string; readonly retry: WebhookRetryState; readonly delayMs: number }
  /** To `sobranie.dead` with this reason (a short code) and text. */
  | { readonly kind: "dead-letter"; readonly body: string; readonly retry: WebhookRetryState | undefined; readonly reason: string; readonly message: string };

export interface WebhookHandler {
  /** Resolves once the delivery's work is done or handed on in the settlements; then it is acked. */
  handle(delivery: WebhookDelivery): Promise<readonly WebhookSettlement[]>;
}

export interface WebhookQueue {
  /** Resolves once consuming; retries the first connect until stop(). */
  start(handler: WebhookHandler): Promise<void>;
  isReady(): boolean;
  /** Stops taking deliveries; those in flight finish (bounded) or stay unacked for redelivery. Idempotent. */
  stop(): Promise<void>;
}
