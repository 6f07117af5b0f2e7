import { BunEdgeServer } from "../adapters/bun/bun-edge.js";
import { loadNativeUws } from "../adapters/uws/load-native-uws.js";
import { UwsEdgeServer } from "../adapters/uws/uws-edge.js";
import type { EdgeServer } from "../core/ports/edge.js";

/**
 * The edge server for the runtime this process runs on, or throws. On Bun:
 * `Bun.serve` (Bun's server is uWebSockets too, with the same topic
 * pub/sub); uWS.js native code does not load in Bun, and the native packages
 * are never required there. On Node: a native uWebSockets.js build, never the
 * slow JS fallback.
 */
export function createEdgeServer(): { server: EdgeServer; build: string } {
  const bun = process.versions.bun;
  if (bun !== undefined) return { server: new BunEdgeServer(), build: `bun-${bun}` };
  const { uws, build } = loadNativeUws();
  return { server: new UwsEdgeServer(uws), build };
}
