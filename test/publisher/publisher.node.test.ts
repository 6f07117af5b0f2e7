import { afterEach, describe, expect, it } from "vitest";
import { publisherCases } from "./publisher-cases.js";

// The same suite runs under Bun: test/publisher/publisher.bun.ts (npm run test:bun).
publisherCases({ describe, it, expect, afterEach });
