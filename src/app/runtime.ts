import { createBunUws } from "../adapters/bun/bun-uws.js";
import { loadNativeUws } from "../adapters/uws/load-native-uws.js";
import type { UwsApi } from "../core/ports/uws-api.js";

/**
 * The uWS API for the runtime this process runs on, or throws. On Bun: the
 * shim over `Bun.serve` (Bun's server is uWebSockets too, with the same topic
 * pub/sub); uWS.js native code does not load in Bun, and the native packages
 * are never required there. On Node: a native uWebSockets.js build, never the
 * slow JS fallback.
 */
export function loadUws(): { uws: UwsApi; build: string } {
  const bun = process.versions.bun;
  if (bun !== undefined) return { uws: createBunUws(), build: `bun-${bun}` };
  return loadNativeUws();
}
