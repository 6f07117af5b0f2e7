import { parseControl, MAX_CONTROL_BYTES } from "@sobranie/protocol/control";
import { HttpRejection } from "@sobranie/protocol/codes";
import type { Gateway } from "../core/gateway.js";
import { authorizeApiKey, refuseApiKey } from "./api-key-gate.js";
import { registerApiKeyJsonRoute, type ApiKeyJsonRouteDeps } from "./api-key-json-route.js";

export interface ControlRoutesDeps extends ApiKeyJsonRouteDeps {
  readonly gateway: Gateway;
}

/**
 * `POST /api/v1/control` (docs/protocol.md §11): a backend disconnects a
 * user, removes them from a channel or revokes their tokens, on every node.
 * The body is the control command itself. `202 {command}` once what it
 * revokes is stored (when this node has a store) and the broker confirmed
 * it; 401 without a valid API key, 403 for a key without the `control`
 * scope (whatever the body), 400 for a bad body, 413 over 4 KiB, 429
 * over the key's rate (shared with publishes) or after too many wrong keys
 * from the address, 503 while the broker or the
 * store is away (the command may be sent again: every command is idempotent).
 */
export function registerControlRoutes(deps: ControlRoutesDeps): void {
  registerApiKeyJsonRoute(deps, {
    path: "/api/v1/control",
    maxBodyBytes: MAX_CONTROL_BYTES,
    wording: { disabled: "the HTTP control API is disabled: set API_KEYS", overRate: "too many requests for this API key" },
    unavailable: "message broker or store unavailable, retry shortly (commands are idempotent)",
    failureLog: "HTTP control command failed",
    handle: async (json, reply, key) => {
      const allowed = authorizeApiKey(key, { kind: "control" });
      if (!allowed.ok) return refuseApiKey(reply, allowed);
      const parsed = parseControl(json);
      if (!parsed.ok) return reply.reject(HttpRejection.BadRequest, parsed.message);
      await deps.gateway.publishControl(parsed.command);
      reply.json(202, { command: parsed.command.command });
    },
  });
}
