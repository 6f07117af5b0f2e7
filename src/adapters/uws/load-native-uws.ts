import { createRequire } from "node:module";
import type * as Uws from "@btc-vision/uwebsockets.js";
import type { UwsApi } from "./uws-api.js";

/**
 * A native uWebSockets.js build for Node, or throws. uWS.js is not on npm
 * from its author; two republished builds are pinned:
 * - `@btc-vision/uwebsockets.js` 20.57 (Node 20–25, glibc ≥ 2.38): preferred.
 * - `@trufflesuite/uws-js-unofficial` 20.30 (Node 16–20, glibc ≥ 2.27).
 * The second one's own entry point silently falls back to a slow pure-JS
 * implementation, so its native binary is required directly by path: a
 * gateway on the fallback would be an order of magnitude slower and must
 * refuse to start instead. Native code does not load in Bun: see
 * src/app/runtime.ts for the choice.
 */
export function loadNativeUws(): { uws: UwsApi; build: string } {
  const require = createRequire(import.meta.url);
  const failures: string[] = [];
  try {
    return { uws: native(require("@btc-vision/uwebsockets.js") as typeof Uws), build: "@btc-vision/uwebsockets.js@20.57.0" };
  } catch (error) {
    failures.push(`@btc-vision/uwebsockets.js: ${firstLine(error)}`);
  }
  const binary = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
  try {
    const uws = native(require(`@trufflesuite/uws-js-unofficial/binaries/${binary}`) as typeof Uws);
    return { uws, build: `@trufflesuite/uws-js-unofficial@20.30.0-unofficial.0 (${binary})` };
  } catch (error) {
    failures.push(`@trufflesuite/uws-js-unofficial: ${firstLine(error)}`);
  }
  throw new Error(
    `no native uWebSockets.js build loads on Node ${process.versions.node} (${process.platform}/${process.arch}); ` +
      `refusing the slow JS fallback.\n  ${failures.join("\n  ")}`,
  );
}

/** The compile-time proof that the native module's own types cover the subset the server uses. */
function native(uws: typeof Uws): UwsApi {
  return uws;
}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split("\n").find((line) => line.trim() !== "" && !line.startsWith("This version")) ?? text;
}
