import type { WebhookRequest } from "./webhook-request.js";

/**
 * What a receiver's answer means for the events sent (docs/pusher.md,
 * "Webhooks"): 2xx delivered; 408, 429, any 5xx, a timeout or a connection
 * failure are worth retrying; any other answer (4xx, a redirect) will not
 * change by retrying and is final.
 */
export type WebhookPostResult =
  | { readonly kind: "delivered" }
  | { readonly kind: "retry"; readonly detail: string }
  | { readonly kind: "refused"; readonly detail: string };

const RETRYABLE_STATUSES = new Set([408, 429]);

/** POSTs `request` to `url`, waiting at most `timeoutMs` for the whole answer. Never rejects. */
export async function postWebhook(url: string, request: WebhookRequest, timeoutMs: number): Promise<WebhookPostResult> {
  let status: number;
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: request.headers,
      body: request.body,
      redirect: "manual",
      signal: AbortSignal.timeout(timeoutMs),
    });
    status = response.status;
    // Read (and drop) the body so the connection is reused; bounded by the same
    // timeout, and the status stands whatever becomes of the body.
    await response.arrayBuffer().catch(() => undefined);
  } catch (error) {
    const timedOut = error instanceof Error && error.name === "TimeoutError";
    return { kind: "retry", detail: timedOut ? `no answer within ${timeoutMs} ms` : `request failed: ${describe(error)}` };
  }
  if (status >= 200 && status < 300) return { kind: "delivered" };
  if (status >= 500 || RETRYABLE_STATUSES.has(status)) return { kind: "retry", detail: `answered ${status}` };
  return { kind: "refused", detail: `answered ${status}` };
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
  return `${error.message}${cause}`;
}
