import { afterEach, describe, expect, it } from "bun:test";
import { BunEdgeServer } from "../../src/adapters/bun/bun-edge.js";
import { edgeContract } from "../contract/edge.contract.js";

// Run with `npm run test:bun`. The same suite runs on uWebSockets.js under
// vitest: test/contract/uws-edge.test.ts.
edgeContract({ describe, it, expect, afterEach }, () => new BunEdgeServer());
