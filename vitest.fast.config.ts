import { defineConfig } from "vitest/config";
import { packageSources } from "./test/support/package-sources.js";

/**
 * `npm run test:fast`, the inner loop: test/unit and test/contract, on any
 * machine, with no RabbitMQ, no PostgreSQL, no root and no build.
 *
 * The rule for a file in these two folders: it runs in this process on the
 * in-memory adapters (PGlite counts: it is in-process). A contract suite's run
 * on a real adapter (AmqpBroker, PostgresEventStore on PostgreSQL) lives in
 * test/integration, anything spawning dist/ or a tool in test/e2e or
 * test/integration. test/support/refuse-services.ts enforces the rule: a
 * connection to a service port or a child process fails the test, even on a
 * machine where the service runs. `npm test` runs these files too.
 */
export default defineConfig({
  resolve: { alias: [...packageSources] },
  test: {
    include: ["test/unit/**/*.test.ts", "test/contract/**/*.test.ts"],
    setupFiles: ["test/support/refuse-services.ts"],
    testTimeout: 30_000,
    pool: "forks",
  },
});
