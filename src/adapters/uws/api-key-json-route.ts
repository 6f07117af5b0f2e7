import type { UwsApp } from "../../core/ports/uws-api.js";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import { HttpRejection } from "@sobranie/protocol/codes";
import { isRetryable } from "@sobranie/protocol/errors";
import { admitApiKey, presentedBearer, refuseApiKey, type ApiKeyGateDeps, type ApiKeyWording } from "./api-key-gate.js";
import { PendingReply } from "./http-reply.js";

export interface ApiKeyJsonRouteDeps extends ApiKeyGateDeps {
  readonly app: UwsApp;
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
   * Answers an admitted request's parsed body through `reply`. A failure it
   * throws instead is answered here: 503 `unavailable` when the error says
   * `retryable`, else 500 (logged).
   */
  handle(json: unknown, reply: PendingReply): Promise<void>;
}

/**
 * The steps every such route takes, in order: the API-key gate (failed
 * attempts per address, the key, the key's rate), the body (at most
 * `maxBodyBytes`), JSON, then the route's own `handle`. Headers are read in
 * uWS's handler turn, as they must be.
 */
export function registerApiKeyJsonRoute(deps: ApiKeyJsonRouteDeps, route: ApiKeyJsonRoute): void {
  deps.app.post(route.path, (res, req) => {
    const presented = presentedBearer(req);
    const source = deps.limits.sourceOf(res, req);
    const reply = new PendingReply(res);
    const body = reply.readBody(route.maxBodyBytes);
    void answer(deps, route, reply, { presented, source }, body);
  });
}

async function answer(
  deps: ApiKeyJsonRouteDeps,
  route: ApiKeyJsonRoute,
  reply: PendingReply,
  caller: { presented: string | undefined; source: string },
  body: ReturnType<PendingReply["readBody"]>,
): Promise<void> {
  const admitted = admitApiKey(deps, caller.presented, caller.source, route.wording);
  if (!admitted.ok) return refuseApiKey(reply, admitted);
  const received = await body;
  if (!received.ok) {
    if (received.reason === "too_large") reply.reject(HttpRejection.TooLarge, `body over ${route.maxBodyBytes} bytes`);
    return;
  }
  let json: unknown;
  try {
    json = JSON.parse(received.body.toString("utf8"));
  } catch {
    return reply.reject(HttpRejection.BadRequest, "body is not valid JSON");
  }
  try {
    await route.handle(json, reply);
  } catch (error) {
    if (isRetryable(error)) return reply.reject(HttpRejection.Unavailable, route.unavailable);
    deps.logger.error({ err: error }, route.failureLog);
    reply.reject(HttpRejection.Internal, "internal error");
  }
}
