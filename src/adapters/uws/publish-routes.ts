import type { UwsApp } from "../../core/ports/uws-api.js";
import { HttpRejection } from "../../protocol/codes.js";
import { parseBackendPublish } from "../../core/backend-publish.js";
import { NamespaceNotFoundError } from "../../core/broker-publishes.js";
import type { Gateway } from "../../core/gateway.js";
import { EventTooLargeError } from "../../core/published-envelope.js";
import type { Clock } from "../../core/ports/clock.js";
import type { Logger } from "../../core/ports/logger.js";
import type { ApiKeys } from "./api-keys.js";
import type { HttpLimits } from "./http-limits.js";
import { admitApiKey, presentedBearer, refuseApiKey } from "./api-key-gate.js";
import { PendingReply } from "./http-reply.js";

/** The contract's event body limit (CONTRACT §3); the JSON wrapper adds little. */
const MAX_BODY_BYTES = 65_536;

export interface PublishRoutesDeps {
  readonly app: UwsApp;
  readonly apiKeys: ApiKeys;
  readonly limits: HttpLimits;
  readonly gateway: Gateway;
  readonly clock: Clock;
  readonly logger: Logger;
}

/**
 * `POST /api/v1/publish` (CONTRACT §7): a backend publishes over HTTP.
 * `202 {id}` only after the broker confirmed the event; 401 without a valid
 * API key, 400 for a bad body, 404 for an unknown namespace, 413 over 64 KiB,
 * 429 over the key's rate or after too many wrong keys from the address, 503 while the broker is away (nothing was published).
 */
export function registerPublishRoutes(deps: PublishRoutesDeps): void {
  deps.app.post("/api/v1/publish", (res, req) => {
    const presented = presentedBearer(req);
    const source = deps.limits.sourceOf(res, req);
    const reply = new PendingReply(res);
    const body = reply.readBody(MAX_BODY_BYTES);
    void publish(deps, reply, { presented, source }, body);
  });
}

async function publish(
  deps: PublishRoutesDeps,
  reply: PendingReply,
  caller: { presented: string | undefined; source: string },
  body: ReturnType<PendingReply["readBody"]>,
): Promise<void> {
  const admitted = admitApiKey(deps, caller.presented, caller.source, {
    disabled: "the HTTP publish API is disabled: set API_KEYS",
    overRate: "too many publishes for this API key",
  });
  if (!admitted.ok) return refuseApiKey(reply, admitted);
  const received = await body;
  if (!received.ok) {
    if (received.reason === "too_large") reply.reject(HttpRejection.TooLarge, `body over ${MAX_BODY_BYTES} bytes`);
    return;
  }
  let json: unknown;
  try {
    json = JSON.parse(received.body.toString("utf8"));
  } catch {
    return reply.reject(HttpRejection.BadRequest, "body is not valid JSON");
  }
  const parsed = parseBackendPublish(json);
  if (!parsed.ok) return reply.reject(HttpRejection.BadRequest, parsed.message);
  try {
    const id = await deps.gateway.publishBackendEvent(parsed.value);
    reply.json(202, { id });
  } catch (error) {
    if (error instanceof NamespaceNotFoundError) return reply.reject(HttpRejection.NotFound, error.message);
    if (error instanceof EventTooLargeError) return reply.reject(HttpRejection.TooLarge, error.message);
    const retryable = (error as { retryable?: unknown } | null)?.retryable === true;
    if (retryable) return reply.reject(HttpRejection.Unavailable, "message broker unavailable, retry shortly");
    deps.logger.error({ err: error }, "HTTP publish failed");
    reply.reject(HttpRejection.Internal, "internal error");
  }
}
