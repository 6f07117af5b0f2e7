import type { EdgeServer } from "../core/ports/edge.js";
import { HttpRejection } from "@sobranie/protocol/codes";
import { isRetryable } from "@sobranie/protocol/errors";
import { parseInboxQuery, parseReadBody, readInbox } from "../core/inbox.js";
import type { Gateway } from "../core/gateway.js";
import type { Authenticator, Principal } from "../core/ports/authenticator.js";
import type { EventStore } from "../core/ports/event-store.js";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import { PendingReply, receiveJson, requestToken } from "./http-reply.js";
import type { HttpLimits } from "./http-limits.js";
import { admitUser, refuseUser } from "./user-token-gate.js";

const MAX_BODY_BYTES = 65_536;

export interface InboxRoutesDeps {
  readonly server: EdgeServer;
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
  deps.server.route("get", "/api/v1/notifications", (exchange) => {
    const req = exchange.request;
    const query = { after: req.query("after"), limit: req.query("limit") };
    const caller = { token: requestToken(req), source: deps.limits.sourceOf(req) };
    const reply = new PendingReply(exchange);
    reply.holdConnection();
    handle(deps, reply, caller, async (principal, store) => {
      const parsed = parseInboxQuery(query);
      if (!parsed.ok) return reply.reject(HttpRejection.BadRequest, parsed.message);
      reply.json(200, await readInbox(store, principal.userId, parsed.value.after, parsed.value.limit));
    });
  });

  deps.server.route("post", "/api/v1/notifications/read", (exchange) => {
    const caller = { token: requestToken(exchange.request), source: deps.limits.sourceOf(exchange.request) };
    const reply = new PendingReply(exchange);
    const body = reply.readBody(MAX_BODY_BYTES);
    handle(deps, reply, caller, async (principal, store) => {
      const received = await receiveJson(reply, body, MAX_BODY_BYTES);
      if (!received) return;
      const parsed = parseReadBody(received.json);
      if (!parsed.ok) return reply.reject(HttpRejection.BadRequest, parsed.message);
      const upTo = await store.markRead(principal.userId, parsed.value.upTo);
      deps.gateway.announceRead(principal.userId, upTo);
      reply.json(200, { upTo });
    });
  });
}

function handle(
  deps: InboxRoutesDeps,
  reply: PendingReply,
  caller: { token: string | undefined; source: string },
  work: (principal: Principal, store: EventStore) => Promise<void>,
): void {
  admitUser(deps, caller.token, { missingToken: "missing token: Authorization: Bearer <jwt>", httpRatesFrom: caller.source }, (verdict) => {
    if (!verdict.ok) return refuseUser(reply, verdict);
    const store = deps.store;
    if (!store) return reply.reject(HttpRejection.Unavailable, "no notification store on this node");
    work(verdict.principal, store).catch((error: unknown) => {
      const retryable = isRetryable(error);
      if (!retryable) deps.logger.error({ err: error }, "inbox request failed");
      if (retryable) reply.reject(HttpRejection.Unavailable, "notification store unavailable, retry shortly");
      else reply.reject(HttpRejection.Internal, "internal error");
    });
  });
}
