import { afterEach, describe, expect, it } from "vitest";
import { loadNativeUws } from "../../src/adapters/uws/load-native-uws.js";
import { UwsEdgeServer } from "../../src/adapters/uws/uws-edge.js";
import { edgeContract } from "./edge.contract.js";

// The same suite runs on Bun.serve: test/bun/edge.bun.ts (npm run test:bun).
const { uws } = loadNativeUws();
edgeContract({ describe, it, expect, afterEach }, () => new UwsEdgeServer(uws));
