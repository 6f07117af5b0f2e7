import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { EdgeServer } from "../core/ports/edge.js";
import { HttpRejection } from "@sobranie/protocol/codes";
import type { Logger } from "@sobranie/protocol/runtime/logger";
import { DEMO_INLINE, DEMO_PAGE } from "./demo/demo-page.js";
import { PendingReply } from "./http-reply.js";

export interface ClientRoutesDeps {
  readonly server: EdgeServer;
  readonly logger: Logger;
}

/**
 * Static assets for browsers: the SDK bundle (built by `npm run build` into
 * `dist/client/`) at `/client/sobranie-client.js`, and the demo page at `/`
 * and `/demo`. The bundle is read once and kept; a missing bundle is a 404
 * naming the build command, not a failed start.
 *
 * The demo page reads a token and an API key from the URL fragment, so it
 * runs under a Content-Security-Policy that allows its own inline style and
 * script (by hash), the bundle and connections to this origin only, and it
 * sends no Referer. Both answers (like every answer) carry
 * `X-Content-Type-Options: nosniff`.
 */
export function registerClientRoutes(deps: ClientRoutesDeps): void {
  let bundle: Promise<string | undefined> | undefined;
  const loadBundle = (): Promise<string | undefined> =>
    (bundle ??= firstReadable(BUNDLE_CANDIDATES).then((text) => {
      if (text === undefined) bundle = undefined; // built later (tests, development): try again next time
      return text;
    }));

  deps.server.route("get", "/client/sobranie-client.js", (exchange) => {
    const reply = new PendingReply(exchange);
    reply.holdConnection();
    loadBundle().then(
      (text) => {
        if (text === undefined) return reply.reject(HttpRejection.NotFound, "SDK bundle not built: run npm run build");
        reply.text(200, "text/javascript; charset=utf-8", text);
      },
      (error: unknown) => {
        deps.logger.error({ err: error }, "SDK bundle unreadable");
        reply.reject(HttpRejection.Internal, "SDK bundle unreadable");
      },
    );
  });
  for (const path of ["/", "/demo"]) {
    deps.server.route("get", path, (exchange) => new PendingReply(exchange).text(200, "text/html; charset=utf-8", DEMO_PAGE, DEMO_PAGE_HEADERS));
  }
}

function sha256(text: string): string {
  return `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`;
}

/**
 * `'self'` for the bundle, fetch and EventSource; `ws:`/`wss:` because
 * browsers before CSP level 3 (Safari < 15.4) do not count a same-host
 * WebSocket as `'self'`.
 */
export const DEMO_PAGE_CSP = [
  "default-src 'none'",
  `script-src 'self' ${sha256(DEMO_INLINE.script)}`,
  `style-src ${sha256(DEMO_INLINE.style)}`,
  "connect-src 'self' ws: wss:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const DEMO_PAGE_HEADERS = { "content-security-policy": DEMO_PAGE_CSP, "referrer-policy": "no-referrer", "x-frame-options": "DENY" };

/** From the compiled server (`dist/src/http/`) and from the sources (`src/http/`, tests). */
const BUNDLE_CANDIDATES = [new URL("../../client/sobranie-client.js", import.meta.url), new URL("../../dist/client/sobranie-client.js", import.meta.url)];

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
