import type { HttpRoute } from "../../core/ports/http-route.js";
import { pusherAuthRoutes } from "./auth-routes.js";
import { pusherHistoryRoute, type PusherHistoryDeps } from "./history-route.js";
import { pusherRestRoutes, type PusherRestDeps } from "./rest-routes.js";

export { PusherApps, type PusherApp, type PusherWebhook } from "./apps.js";
export type { PusherEdgeLimits } from "./edge-limits.js";

/** Every HTTP route of the Pusher protocol (REST API, hosted auth, history), for the edge to attach; none without apps. */
export function pusherHttpRoutes(deps: PusherRestDeps & PusherHistoryDeps): HttpRoute[] {
  if (deps.apps.size === 0) return [];
  return [...pusherRestRoutes(deps), ...pusherAuthRoutes(deps), pusherHistoryRoute(deps)];
}
