import type { UwsApp } from "../../core/ports/uws-api.js";
import { HttpRejection } from "../../protocol/codes.js";
import { parseControl, MAX_CONTROL_BYTES } from "../../protocol/control.js";
import type { Gateway } from "../../core/gateway.js";
import type { Clock } from "../../core/ports/clock.js";
import type { Logger } from "../../core/ports/logger.js";
import type { ApiKeys } from "./api-keys.js";
import type { HttpLimits } from "./http-limits.js";
import { admitApiKey, presentedBearer, refuseApiKey } from "./api-key-gate.js";
import { PendingReply } from "./http-reply.js";

export interface ControlRoutesDeps {
  readonly app: UwsApp;
  readonly apiKeys: ApiKeys;
  readonly limits: HttpLimits;
  readonly gateway: Gateway;
  readonly clock: Clock;
  readonly logger: Logger;
}

/**
 * `POST /api/v1/control` (docs/protocol.md §11): a backend disconnects a
 * user, removes them from a channel or revokes their tokens, on every node.
 * The body is the control command itself. `202 {command}` once what it
 * revokes is stored (when this node has a store) and the broker confirmed
 * it; 401 without a valid API key, 400 for a bad body, 413 over 4 KiB, 429
 * over the key's rate (shared with publishes) or after too many wrong keys
 * from the address, 503 while the broker or the
 * store is away (the command may be sent again: every command is idempotent).
 */
export function registerControlRoutes(deps: ControlRoutesDeps): void {
  deps.app.post("/api/v1/control", (res, req) => {
    const presented = presentedBearer(req);
    const source = deps.limits.sourceOf(res, req);
    const reply = new PendingReply(res);
    const body = reply.readBody(MAX_CONTROL_BYTES);
    void control(deps, reply, { presented, source }, body);
  });
}

async function control(
  deps: ControlRoutesDeps,
  reply: PendingReply,
  caller: { presented: string | undefined; source: string },
  body: ReturnType<PendingReply["readBody"]>,
): Promise<void> {
  const admitted = admitApiKey(deps, caller.presented, caller.source, {
    disabled: "the HTTP control API is disabled: set API_KEYS",
    overRate: "too many requests for this API key",
  });
  if (!admitted.ok) return refuseApiKey(reply, admitted);
  const received = await body;
  if (!received.ok) {
    if (received.reason === "too_large") reply.reject(HttpRejection.TooLarge, `body over ${MAX_CONTROL_BYTES} bytes`);
    return;
  }
  let json: unknown;
  try {
    json = JSON.parse(received.body.toString("utf8"));
  } catch {
    return reply.reject(HttpRejection.BadRequest, "body is not valid JSON");
  }
  const parsed = parseControl(json);
  if (!parsed.ok) return reply.reject(HttpRejection.BadRequest, parsed.message);
  try {
    await deps.gateway.publishControl(parsed.command);
    reply.json(202, { command: parsed.command.command });
  } catch (error) {
    if ((error as { retryable?: unknown } | null)?.retryable === true) {
      return reply.reject(HttpRejection.Unavailable, "message broker or store unavailable, retry shortly (commands are idempotent)");
    }
    deps.logger.error({ err: error }, "HTTP control command failed");
    reply.reject(HttpRejection.Internal, "internal error");
  }
}
