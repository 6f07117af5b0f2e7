import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import type { EdgeServer } from "../core/ports/edge.js";
import { HttpRejection } from "@sobranie/protocol/codes";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import { DEMO_INLINE, DEMO_PAGE } from "./demo/demo-page.js";
import { PUSHER_DEMO_INLINE, PUSHER_DEMO_PAGE } from "./demo/pusher-demo-page.js";
import { PendingReply } from "./http-reply.js";

export interface ClientRoutesDeps {
  readonly server: EdgeServer;
  readonly logger: Logger;
}

/** A script served to browsers: where it may be found, and what a missing one's 404 says. */
interface ScriptAsset {
  readonly path: string;
  /** Where to look, in order (asked on each load until one is found). */
  readonly candidates: () => readonly URL[];
  readonly missing: string;
}

const packageRequire = createRequire(import.meta.url);
/** A file of an installed package (a runtime dependency, so it is there in production images too); none if it is not installed. */
function packageFile(specifier: string): URL[] {
  try {
    return [pathToFileURL(packageRequire.resolve(specifier))];
  } catch (error) {
    if ((error as { code?: unknown }).code === "MODULE_NOT_FOUND") return [];
    throw error;
  }
}

const SCRIPTS: readonly ScriptAsset[] = [
  {
    path: "/client/sobranie-client.js",
    // From the compiled server (`dist/src/http/`) and from the sources (`src/http/`, tests).
    candidates: () => [new URL("../../client/sobranie-client.js", import.meta.url), new URL("../../dist/client/sobranie-client.js", import.meta.url)],
    missing: "SDK bundle not built: run npm run build",
  },
  // The Pusher demo page's libraries, as their packages ship them: pusher-js's browser build and laravel-echo's IIFE build.
  { path: "/client/pusher.min.js", candidates: () => packageFile("pusher-js/dist/web/pusher.min.js"), missing: "pusher-js is not installed" },
  { path: "/client/echo.iife.js", candidates: () => packageFile("laravel-echo/iife"), missing: "laravel-echo is not installed" },
];

/**
 * Static assets for browsers: the SDK bundle (built by `npm run build` into
 * `dist/client/`) at `/client/sobranie-client.js`, pusher-js's and
 * laravel-echo's browser builds at `/client/pusher.min.js` and
 * `/client/echo.iife.js`, the demo page at `/` and `/demo`, and the Pusher
 * demo page at `/pusher/demo`. Each script is read once and kept; a missing
 * one is a 404 saying why, not a failed start.
 *
 * The demo pages read a token (and the demo page an API key) from the URL
 * fragment, so each runs under a Content-Security-Policy that allows its own
 * inline style and script (by hash), scripts and connections of this origin
 * only, and it sends no Referer. Every answer carries
 * `X-Content-Type-Options: nosniff`.
 */
export function registerClientRoutes(deps: ClientRoutesDeps): void {
  for (const script of SCRIPTS) {
    let text: Promise<string | undefined> | undefined;
    const load = (): Promise<string | undefined> =>
      (text ??= firstReadable(script.candidates()).then((found) => {
        if (found === undefined) text = undefined; // built later (tests, development): try again next time
        return found;
      }));
    deps.server.route("get", script.path, (exchange) => {
      const reply = new PendingReply(exchange);
      reply.holdConnection();
      load().then(
        (found) => {
          if (found === undefined) return reply.reject(HttpRejection.NotFound, script.missing);
          reply.text(200, "text/javascript; charset=utf-8", found);
        },
        (error: unknown) => {
          deps.logger.error({ err: error, path: script.path }, "script unreadable");
          reply.reject(HttpRejection.Internal, `${script.path} unreadable`);
        },
      );
    });
  }
  for (const path of ["/", "/demo"]) {
    deps.server.route("get", path, (exchange) => new PendingReply(exchange).text(200, "text/html; charset=utf-8", DEMO_PAGE, pageHeaders(DEMO_PAGE_CSP)));
  }
  deps.server.route("get", "/pusher/demo", (exchange) => new PendingReply(exchange).text(200, "text/html; charset=utf-8", PUSHER_DEMO_PAGE, pageHeaders(PUSHER_DEMO_PAGE_CSP)));
}

function sha256(text: string): string {
  return `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`;
}

/**
 * `'self'` for the scripts, fetch, XHR and EventSource; `ws:`/`wss:` because
 * browsers before CSP level 3 (Safari < 15.4) do not count a same-host
 * WebSocket as `'self'`.
 */
function pageCsp(inline: { readonly script: string; readonly style: string }): string {
  return [
    "default-src 'none'",
    `script-src 'self' ${sha256(inline.script)}`,
    `style-src ${sha256(inline.style)}`,
    "connect-src 'self' ws: wss:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
}

const DEMO_PAGE_CSP = pageCsp(DEMO_INLINE);
const PUSHER_DEMO_PAGE_CSP = pageCsp(PUSHER_DEMO_INLINE);

const pageHeaders = (csp: string) => ({ "content-security-policy": csp, "referrer-policy": "no-referrer", "x-frame-options": "DENY" });

async function firstReadable(paths: readonly URL[]): Promise<string | undefined> {
  for (const path of paths) {
    try {
      return await readFile(path, "utf8");
    } catch (error) {
      if ((error as { code?: unknown }).code !== "ENOENT") throw error;
    }
  }
  return undefined;
}
