import { afterAll, afterEach, beforeAll } from "vitest";
import { ClusterEnv } from "./cluster-env.js";
import { NODE_COUNT, RabbitCluster } from "./rabbit-cluster.js";

const CLUSTER_HOOK_TIMEOUT_MS = 240_000;

/** What a broker-fault test uses of its file's shared cluster. */
export interface ClusterFaultSuite {
  /** The file's three-node cluster; only inside a test or hook. */
  readonly cluster: RabbitCluster;
  /** A ClusterEnv on the cluster for the running test, closed after it. */
  createEnv(prefix: string): Promise<ClusterEnv>;
  /** Runs `closers` after the running test, the last deferred first, before its env is closed. */
  defer(...closers: Array<() => void | Promise<void>>): void;
}

/**
 * Registers, in the calling describe block, the lifecycle every broker-fault
 * test file shares: one RabbitCluster started before the first test and
 * stopped after the last, and after each test the cluster as the test found
 * it: a failed test's process logs printed, its closers run, its ClusterEnv
 * closed, every node it killed, stopped or paused running again, and all three
 * nodes seen running. A test faults nodes through `cluster` directly; what to
 * undo is read from the cluster's node states. A paused node is resumed
 * before anything is closed (closing a connection to a hung node waits for
 * it); a killed or stopped node is brought back once the test's processes are
 * gone.
 */
export function clusterFaultSuite(): ClusterFaultSuite {
  let cluster: RabbitCluster | undefined;
  let env: ClusterEnv | undefined;
  const closers: Array<() => void | Promise<void>> = [];
  const nodes = Array.from({ length: NODE_COUNT }, (_, i) => i + 1);

  beforeAll(async () => {
    cluster = await RabbitCluster.start();
  }, CLUSTER_HOOK_TIMEOUT_MS);

  afterAll(async () => {
    await cluster?.stop();
  });

  afterEach(async (context) => {
    if (context.task.result?.state === "fail") console.log(env?.logs());
    const faulted = cluster;
    if (!faulted) return;
    for (const node of nodes) if (faulted.state(node) === "paused") await faulted.resume(node);
    for (const close of closers.splice(0).reverse()) await close();
    await env?.close();
    env = undefined;
    for (const node of nodes) {
      if (faulted.state(node) === "killed") await faulted.revive(node);
      else if (faulted.state(node) === "app-stopped") await faulted.startApp(node);
    }
    await faulted.waitForRunning(NODE_COUNT, 120_000);
  }, CLUSTER_HOOK_TIMEOUT_MS);

  return {
    get cluster() {
      if (!cluster) throw new Error("the cluster runs only inside a test or hook");
      return cluster;
    },
    async createEnv(prefix) {
      env = await ClusterEnv.create(this.cluster, prefix);
      return env;
    },
    defer(...more) {
      closers.push(...more);
    },
  };
}
