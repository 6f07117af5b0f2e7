import { defineConfig } from "vitest/config";
import { packageSources } from "./test/support/package-sources.js";

/**
 * The broker-cluster tests (test/cluster): each file starts a private
 * three-node RabbitMQ cluster on loopback (test/support/rabbitmq-cluster.sh)
 * and kills, stops and pauses its nodes under running gateways and workers.
 * One file at a time: they measure recovery times, which a second cluster
 * booting on the same two cores would distort.
 */
export default defineConfig({
  resolve: { alias: [...packageSources] },
  test: {
    include: ["test/cluster/**/*.test.ts"],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: "forks",
    fileParallelism: false,
  },
});
