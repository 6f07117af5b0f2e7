import type { UwsHttpHandler } from "../../core/ports/uws-api.js";

type Method = "get" | "post" | "any";

interface Route {
  readonly method: Method;
  readonly segments: readonly string[];
  /** uWS precedence: a static route before one with `:params`, before a `/*` wildcard; a method before `any`. */
  readonly rank: number;
  readonly handler: UwsHttpHandler;
}

export interface RouteMatch {
  readonly handler: UwsHttpHandler;
  readonly params: readonly string[];
}

/** The uWS route patterns the gateway uses: `/a/b`, `/a/:name`, `/prefix/*`. */
export class BunRouter {
  private readonly routes: Route[] = [];

  add(method: Method, pattern: string, handler: UwsHttpHandler): void {
    const segments = pattern.split("/").slice(1);
    const wildcard = segments.at(-1) === "*";
    const params = segments.some((segment) => segment.startsWith(":"));
    const rank = (wildcard ? 4 : params ? 2 : 0) + (method === "any" ? 1 : 0);
    this.routes.push({ method, segments: wildcard ? segments.slice(0, -1) : segments, rank, handler });
    this.routes.sort((a, b) => a.rank - b.rank);
  }

  match(method: string, path: string): RouteMatch | undefined {
    const parts = path.split("/").slice(1);
    for (const route of this.routes) {
      if (route.method !== "any" && route.method !== method) continue;
      const params = matchSegments(route, parts);
      if (params) return { handler: route.handler, params };
    }
    return undefined;
  }
}

function matchSegments(route: Route, parts: readonly string[]): string[] | undefined {
  const wildcard = route.rank >= 4;
  if (wildcard ? parts.length < route.segments.length : parts.length !== route.segments.length) return undefined;
  const params: string[] = [];
  for (let index = 0; index < route.segments.length; index += 1) {
    const segment = route.segments[index]!;
    const part = parts[index]!;
    if (segment.startsWith(":")) params.push(part);
    else if (segment !== part) return undefined;
  }
  return params;
}
