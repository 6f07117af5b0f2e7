import { afterEach, describe, expect, it } from "bun:test";
import { publisherCases } from "./publisher-cases.js";

// Run with `npx bun test test/publisher/publisher.bun.ts` (npm run test:bun).
// The same suite runs under vitest on Node: test/publisher/publisher.node.test.ts.
publisherCases({ describe, it, expect, afterEach });
