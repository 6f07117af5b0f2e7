import type { EdgeServer } from "../core/ports/edge.js";
import { HttpRejection } from "@sobranie/protocol/codes";
import { parseChannel, USER_ID_PATTERN, USER_ID_RULE } from "@sobranie/protocol/channel";
import type { Gateway } from "../core/gateway.js";
import type { NamespaceRegistry } from "../core/namespaces.js";
import type { Authenticator } from "../core/ports/authenticator.js";
import type { Clock } from "@sobranie/protocol/runtime/clock";
import type { ApiKeyAction } from "../core/api-key-scopes.js";
import type { ApiKeys } from "./api-keys.js";
import type { HttpLimits } from "./http-limits.js";
import { admitApiKey, authorizeApiKey, refuseApiKey, takeApiKeyRate } from "./api-key-gate.js";
import { PendingReply, presentedBearer, requestToken } from "./http-reply.js";
import { admitUser, refuseUser } from "./user-token-gate.js";

/** Like the `status` op (docs/protocol.md §4). */
const MAX_STATUS_USERS = 100;

export interface PresenceRoutesDeps {
  readonly server: EdgeServer;
  readonly apiKeys: ApiKeys;
  readonly limits: HttpLimits;
  readonly authenticator: Authenticator;
  readonly namespaces: NamespaceRegistry;
  readonly gateway: Gateway;
  readonly clock: Clock;
}

const WORDING = { disabled: "the HTTP API is disabled: set API_KEYS", overRate: "too many requests for this API key" } as const;
const READ = { kind: "read" } as const satisfies ApiKeyAction;

/**
 * Presence and status over HTTP (docs/protocol.md §7), answered from this node's view
 * of the cluster (every node holds all of it):
 * - `GET /api/v1/presence/:channel` (API key) → `{count, members}`, plus
 *   `truncated: true` with no members above PRESENCE_MAX_LISTED;
 * - `GET /api/v1/status?users=1,2` (API key or user JWT) → `{users: [{user, online, lastSeen}]}`.
 * With an API key, the key's rate applies, the key needs the `read` scope
 * (403 without it), and wrong keys count against the address
 * (API_KEY_FAILURES_PER_MIN); with a user token, the address's and then the
 * user's HTTP rate.
 */
export function registerPresenceRoutes(deps: PresenceRoutesDeps): void {
  deps.server.route("get", "/api/v1/presence/:channel", (exchange) => {
    const req = exchange.request;
    const presented = presentedBearer(req);
    const raw = req.param(0) ?? "";
    const source = deps.limits.sourceOf(req);
    const reply = new PendingReply(exchange);
    const caller = admitApiKey(deps, presented, source, WORDING);
    if (!caller.ok) return refuseApiKey(reply, caller);
    const allowed = authorizeApiKey(caller.key, READ);
    if (!allowed.ok) return refuseApiKey(reply, allowed);
    let text: string;
    try {
      text = decodeURIComponent(raw);
    } catch {
      return reply.reject(HttpRejection.BadRequest, "channel is not valid percent-encoding");
    }
    const channel = parseChannel(text);
    if (!channel) return reply.reject(HttpRejection.BadRequest, `"${text.slice(0, 64)}" is not a channel: namespace:id`);
    const policy = deps.namespaces.get(channel.namespace);
    if (!policy) return reply.reject(HttpRejection.NotFound, `namespace ${channel.namespace} does not exist`);
    if (!policy.presence) return reply.reject(HttpRejection.BadRequest, `namespace ${channel.namespace} has no presence`);
    reply.json(200, deps.gateway.presence.members(channel.name));
  });

  deps.server.route("get", "/api/v1/status", (exchange) => {
    const req = exchange.request;
    const presented = presentedBearer(req);
    const token = requestToken(req);
    const source = deps.limits.sourceOf(req);
    const users = req.query("users") ?? "";
    const reply = new PendingReply(exchange);
    reply.holdConnection();
    const answer = async (): Promise<void> => {
      const list = users.split(",").filter((user) => user.length > 0);
      if (list.length === 0) return reply.reject(HttpRejection.BadRequest, "users=<id>,<id>… is required");
      if (list.length > MAX_STATUS_USERS) return reply.reject(HttpRejection.BadRequest, `at most ${MAX_STATUS_USERS} users per request`);
      // Named by position, never echoed: the entry may hold any bytes.
      const bad = list.findIndex((user) => !USER_ID_PATTERN.test(user));
      if (bad >= 0) return reply.reject(HttpRejection.BadRequest, `users.${bad} (counting from 0) is not a user id: ${USER_ID_RULE}`);
      reply.json(200, { users: await deps.gateway.presence.statuses(list) });
    };
    const key = presented === undefined || !deps.apiKeys.enabled ? undefined : deps.apiKeys.identify(presented);
    if (key !== undefined) {
      const admitted = takeApiKeyRate(deps, key, WORDING.overRate);
      if (!admitted.ok) return refuseApiKey(reply, admitted);
      // A key without `read` is refused, not tried as a user token: it was a right key.
      const allowed = authorizeApiKey(key, READ);
      if (!allowed.ok) return refuseApiKey(reply, allowed);
      return void answer();
    }
    // Not an API key: a user's JWT may ask too.
    admitUser(deps, token, { missingToken: "an API key or a user token is required", httpRatesFrom: source }, (verdict) => {
      if (!verdict.ok) return refuseUser(reply, verdict);
      void answer();
    });
  });
}
