import { HttpRejection } from "@sobranie/protocol/codes";
import { parseBackendPublish } from "../core/backend-publish.js";
import { NamespaceNotFoundError } from "../core/broker-publishes.js";
import type { Gateway } from "../core/gateway.js";
import { EventTooLargeError } from "../core/published-envelope.js";
import { authorizeApiKey, refuseApiKey } from "./api-key-gate.js";
import { registerApiKeyJsonRoute, type ApiKeyJsonRouteDeps } from "./api-key-json-route.js";

/** The contract's event body limit (docs/protocol.md §3); the JSON wrapper adds little. */
const MAX_BODY_BYTES = 65_536;

export interface PublishRoutesDeps extends ApiKeyJsonRouteDeps {
  readonly gateway: Gateway;
}

/**
 * `POST /api/v1/publish` (docs/protocol.md §7): a backend publishes over HTTP.
 * `202 {id}` only after the broker confirmed the event; 401 without a valid
 * API key, 400 for a bad body, 403 when the key's scopes do not cover the
 * channel's namespace (nothing is published), 404 for an unknown namespace, 413 over 64 KiB,
 * 429 over the key's rate or after too many wrong keys from the address, 503 while the broker is away (nothing was published).
 */
export function registerPublishRoutes(deps: PublishRoutesDeps): void {
  registerApiKeyJsonRoute(deps, {
    path: "/api/v1/publish",
    maxBodyBytes: MAX_BODY_BYTES,
    wording: { disabled: "the HTTP publish API is disabled: set API_KEYS", overRate: "too many publishes for this API key" },
    unavailable: "message broker unavailable, retry shortly",
    failureLog: "HTTP publish failed",
    handle: async (json, reply, key) => {
      const parsed = parseBackendPublish(json);
      if (!parsed.ok) return reply.reject(HttpRejection.BadRequest, parsed.message);
      const allowed = authorizeApiKey(key, { kind: "publish", channel: parsed.value.channel });
      if (!allowed.ok) return refuseApiKey(reply, allowed);
      try {
        reply.json(202, { id: await deps.gateway.publishBackendEvent(parsed.value) });
      } catch (error) {
        if (error instanceof NamespaceNotFoundError) return reply.reject(HttpRejection.NotFound, error.message);
        if (error instanceof EventTooLargeError) return reply.reject(HttpRejection.TooLarge, error.message);
        throw error;
      }
    },
  });
}
