import type { HttpRoute } from "../../core/ports/http-route.js";
import { pusherAuthRoutes, type PusherAuthDeps } from "./auth-routes.js";
import { pusherRestRoutes, type PusherRestDeps } from "./rest-routes.js";

export { PusherApps, type PusherApp, type PusherWebhook } from "./apps.js";
export type { PusherEdgeLimits } from "./edge-limits.js";

/** Every HTTP route of the Pusher protocol (REST API and hosted auth), for the edge to attach; none without apps. */
export function pusherHttpRoutes(deps: PusherRestDeps & PusherAuthDeps): HttpRoute[] {
  if (deps.apps.size === 0) return [];
  return [...pusherRestRoutes(deps), ...pusherAuthRoutes(deps)];
}
