import { defineConfig } from "vitest/config";
import { packageSources } from "./test/support/package-sources.js";

export default defineConfig({
  resolve: { alias: [...packageSources] },
  test: {
    include: ["test/**/*.test.ts"],
    // test/cluster runs on its own (vitest.cluster.config.ts): three RabbitMQ
    // nodes and whole gateway processes need the machine's two cores to themselves.
    exclude: ["test/cluster/**", "**/node_modules/**"],
    testTimeout: 30_000,
    pool: "forks",
  },
});
