import type { BodyRead, EdgeServer } from "../core/ports/edge.js";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import { HttpRejection } from "@sobranie/protocol/codes";
import { isRetryable } from "@sobranie/protocol/errors";
import { admitApiKey, refuseApiKey, type ApiKeyGateDeps, type ApiKeyWording } from "./api-key-gate.js";
import type { IdentifiedApiKey } from "./api-keys.js";
import { PendingReply, presentedBearer, receiveJson } from "./http-reply.js";

export interface ApiKeyJsonRouteDeps extends ApiKeyGateDeps {
  readonly server: EdgeServer;
  readonly logger: Logger;
}

/** A backend's `POST` with an API key and a JSON body (publish, control). */
export interface ApiKeyJsonRoute {
  readonly path: string;
  /** Bodies over this answer 413 `body over N bytes`. */
  readonly maxBodyBytes: number;
  readonly wording: ApiKeyWording;
  /** Answered 503 when `handle` fails with a retryable error (the broker or store away). */
  readonly unavailable: string;
  /** Names the route in the log when `handle` fails unexpectedly (answered 500). */
  readonly failureLog: string;
  /**
   * Answers an admitted request's parsed body through `reply`, after checking
   * that `key` may do what the body asks (authorizeApiKey) and before doing
   * any of it. A failure it throws instead is answered here: 503
   * `unavailable` when the error says `retryable`, else 500 (logged).
   */
  handle(json: unknown, reply: PendingReply, key: IdentifiedApiKey): Promise<void>;
}

/**
 * The steps every such route takes, in order: the API-key gate (failed
 * attempts per address, the key, the key's rate), the body (at most
 * `maxBodyBytes`), JSON, then the route's own `handle` (the key's scopes,
 * then the work). Headers are read in
 * the handler's own turn, as they must be.
 */
export function registerApiKeyJsonRoute(deps: ApiKeyJsonRouteDeps, route: ApiKeyJsonRoute): void {
  deps.server.route("post", route.path, (exchange) => {
    const presented = presentedBearer(exchange.request);
    const source = deps.limits.sourceOf(exchange.request);
    const reply = new PendingReply(exchange);
    const body = reply.readBody(route.maxBodyBytes);
    void answer(deps, route, reply, { presented, source }, body);
  });
}

async function answer(
  deps: ApiKeyJsonRouteDeps,
  route: ApiKeyJsonRoute,
  reply: PendingReply,
  caller: { presented: string | undefined; source: string },
  body: Promise<BodyRead>,
): Promise<void> {
  const admitted = admitApiKey(deps, caller.presented, caller.source, route.wording);
  if (!admitted.ok) return refuseApiKey(reply, admitted);
  const received = await receiveJson(reply, body, route.maxBodyBytes);
  if (!received) return;
  try {
    await route.handle(received.json, reply, admitted.key);
  } catch (error) {
    if (isRetryable(error)) return reply.reject(HttpRejection.Unavailable, route.unavailable);
    deps.logger.error({ err: error }, route.failureLog);
    reply.reject(HttpRejection.Internal, "internal error");
  }
}
