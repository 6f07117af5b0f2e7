import type { UwsApp } from "../../core/ports/uws-api.js";
import { HttpRejection } from "@sobranie/protocol/codes";
import { isRetryable } from "@sobranie/protocol/errors";
import { parseInboxQuery, parseReadBody, readInbox } from "../../core/inbox.js";
import type { Gateway } from "../../core/gateway.js";
import { AuthenticationError, type Authenticator, type Principal } from "../../core/ports/authenticator.js";
import type { EventStore } from "../../core/ports/event-store.js";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import { PendingReply, requestToken } from "./http-reply.js";
import type { HttpLimits } from "./http-limits.js";

const MAX_BODY_BYTES = 65_536;

export interface InboxRoutesDeps {
  readonly app: UwsApp;
  readonly authenticator: Authenticator;
  readonly limits: HttpLimits;
  readonly store: EventStore | undefined;
  readonly gateway: Gateway;
  readonly logger: Logger;
}

/**
 * The notification inbox over HTTP (docs/protocol.md §7), for clients without a
 * WebSocket (SSE fallback) and for catching up page by page. Every failure is
 * a 4xx/503 with `{error: {code, message}}`, never a 500 for bad input.
 * Limited per address before the token is verified, per user after (429).
 */
export function registerInboxRoutes(deps: InboxRoutesDeps): void {
  deps.app.get("/api/v1/notifications", (res, req) => {
    const query = { after: req.getQuery("after"), limit: req.getQuery("limit") };
    const caller = { token: requestToken(req), source: deps.limits.sourceOf(res, req) };
    const reply = new PendingReply(res);
    reply.holdConnection();
    void handle(deps, reply, caller, async (principal, store) => {
      const parsed = parseInboxQuery(query);
      if (!parsed.ok) return reply.reject(HttpRejection.BadRequest, parsed.message);
      reply.json(200, await readInbox(store, principal.userId, parsed.value.after, parsed.value.limit));
    });
  });

  deps.app.post("/api/v1/notifications/read", (res, req) => {
    const caller = { token: requestToken(req), source: deps.limits.sourceOf(res, req) };
    const reply = new PendingReply(res);
    const body = reply.readBody(MAX_BODY_BYTES);
    void handle(deps, reply, caller, async (principal, store) => {
      const received = await body;
      if (!received.ok) {
        return received.reason === "too_large" ? reply.reject(HttpRejection.TooLarge, `body over ${MAX_BODY_BYTES} bytes`) : undefined;
      }
      let json: unknown;
      try {
        json = JSON.parse(received.body.toString("utf8"));
      } catch {
        return reply.reject(HttpRejection.BadRequest, "body is not valid JSON");
      }
      const parsed = parseReadBody(json);
      if (!parsed.ok) return reply.reject(HttpRejection.BadRequest, parsed.message);
      const upTo = await store.markRead(principal.userId, parsed.value.upTo);
      deps.gateway.announceRead(principal.userId, upTo);
      reply.json(200, { upTo });
    });
  });
}

async function handle(
  deps: InboxRoutesDeps,
  reply: PendingReply,
  caller: { token: string | undefined; source: string },
  work: (principal: Principal, store: EventStore) => Promise<void>,
): Promise<void> {
  if (!caller.token) return reply.reject(HttpRejection.Unauthorized, "missing token: Authorization: Bearer <jwt>");
  const bySource = deps.limits.takeSource(caller.source);
  if (!bySource.ok) return reply.rateLimited("too many requests from this address", bySource.retryAfterMs);
  let principal: Principal;
  try {
    principal = await deps.authenticator.verify(caller.token);
  } catch (error) {
    return reply.reject(HttpRejection.Unauthorized, error instanceof AuthenticationError ? error.message : "token could not be verified");
  }
  const byUser = deps.limits.takeUser(principal.userId);
  if (!byUser.ok) return reply.rateLimited("too many requests for this user", byUser.retryAfterMs);
  if (!deps.store) return reply.reject(HttpRejection.Unavailable, "no notification store on this node");
  try {
    await work(principal, deps.store);
  } catch (error) {
    const retryable = isRetryable(error);
    if (!retryable) deps.logger.error({ err: error }, "inbox request failed");
    if (retryable) reply.reject(HttpRejection.Unavailable, "notification store unavailable, retry shortly");
    else reply.reject(HttpRejection.Internal, "internal error");
  }
}
