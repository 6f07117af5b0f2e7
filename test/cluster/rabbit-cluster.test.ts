import { existsSync } from "node:fs";
import { connect as connectTcp } from "node:net";
import amqp, { type ChannelModel } from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ClusterQueue, RabbitCluster } from "../support/rabbit-cluster.js";
import { waitFor } from "../support/wait-for.js";

/**
 * The cluster tool itself (test/support/rabbitmq-cluster.sh and its wrapper)
 * against three real RabbitMQ 3.10 nodes: a quorum queue keeps its messages
 * through a SIGKILL of its leader's node, a revived node rejoins, a paused node
 * accepts TCP but never completes an AMQP handshake, and stop() leaves nothing.
 * The steps run in order on one cluster; each relies on the one before.
 */

const QUEUE = "cluster-tool.quorum";
const MESSAGE_COUNT = 100;
const STEP_TIMEOUT_MS = 120_000;
const HANDSHAKE_TIMEOUT_MS = 2_000;

async function openConnection(url: string, timeoutMs = 5_000): Promise<ChannelModel> {
  const connection = await amqp.connect(url, { timeout: timeoutMs });
  connection.on("error", () => {});
  return connection;
}

/** Rejects after `ms`: an AMQP RPC has no timeout of its own, and a queue whose leader just died may not answer. */
function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The queue's message count as its (current) leader reports it through `url`'s node. */
async function messageCountVia(url: string): Promise<number> {
  const connection = await openConnection(url);
  try {
    const channel = await connection.createChannel();
    channel.on("error", () => {});
    return (await within(5_000, `checkQueue via ${url}`, channel.checkQueue(QUEUE))).messageCount;
  } finally {
    await connection.close().catch(() => undefined);
  }
}

function tcpRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connectTcp({ port, host: "127.0.0.1" });
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code === "ECONNREFUSED"));
  });
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

describe("RabbitCluster: a private three-node RabbitMQ cluster", () => {
  let cluster: RabbitCluster | undefined;
  const started = () => {
    if (!cluster) throw new Error("cluster did not start");
    return cluster;
  };

  beforeAll(async () => {
    const startedAt = Date.now();
    cluster = await RabbitCluster.start();
    console.log(`rabbit-cluster: 3 nodes started and clustered in ${Date.now() - startedAt} ms (base port ${cluster.basePort})`);
  }, 200_000);

  afterAll(async () => {
    await cluster?.stop();
  }, 60_000);

  it("starts three running nodes with one guest URL each", async () => {
    const c = started();
    expect(c.urls).toHaveLength(3);
    expect(c.urlList()).toBe(c.urls.join(","));
    expect(c.url(2, "tenant a")).toBe(`${c.urls[1]}/tenant%20a`);
    const running = await c.waitForRunning(3);
    expect(running.sort()).toEqual([1, 2, 3].map((node) => c.nodeName(node)));
  }, STEP_TIMEOUT_MS);

  it("places a quorum queue declared through node 1 on all three nodes", async () => {
    const c = started();
    const connection = await openConnection(c.url(1));
    try {
      const channel = await connection.createChannel();
      await channel.assertQueue(QUEUE, { durable: true, arguments: { "x-queue-type": "quorum" } });
    } finally {
      await connection.close();
    }
    const [queue] = (await c.queues("/", 1)).filter((candidate) => candidate.name === QUEUE);
    expect(queue?.type).toBe("quorum");
    expect(queue?.leader).toBe(c.nodeName(1));
    expect([...(queue?.members ?? [])].sort()).toEqual([1, 2, 3].map((node) => c.nodeName(node)));
  }, STEP_TIMEOUT_MS);

  it("takes 100 persistent, confirmed messages through node 2", async () => {
    const c = started();
    const connection = await openConnection(c.url(2));
    try {
      const channel = await connection.createConfirmChannel();
      for (let index = 0; index < MESSAGE_COUNT; index++) {
        channel.sendToQueue(QUEUE, Buffer.from(`message ${index}`), { persistent: true });
      }
      await channel.waitForConfirms();
    } finally {
      await connection.close();
    }
    expect(await messageCountVia(c.url(2))).toBe(MESSAGE_COUNT);
  }, STEP_TIMEOUT_MS);

  it("keeps serving through node 3, with all 100 messages, after SIGKILL of node 1", async () => {
    const c = started();
    const killedAt = Date.now();
    await c.kill(1);
    const killTookMs = Date.now() - killedAt;
    await expect(openConnection(c.url(1), 1_000)).rejects.toThrow(/ECONNREFUSED/);
    const node3 = await openConnection(c.url(3));
    const connectedMs = Date.now() - killedAt;
    await node3.close();
    let count = -1;
    await waitFor(
      async () => (count = await messageCountVia(c.url(3))) === MESSAGE_COUNT,
      30_000,
      "node 3 serving the quorum queue with its messages",
    );
    console.log(
      `rabbit-cluster: kill of node 1 took ${killTookMs} ms; from the kill, a connection to node 3 was open after ${connectedMs} ms, ` +
        `the quorum queue answered there with ${count} messages after ${Date.now() - killedAt} ms`,
    );
    // list_queues reads metrics the new leader publishes every few seconds, so it lags the AMQP answer.
    let queue: ClusterQueue | undefined;
    await waitFor(
      async () => {
        [queue] = (await c.queues("/", 3)).filter((candidate) => candidate.name === QUEUE);
        return queue?.messages === MESSAGE_COUNT;
      },
      30_000,
      "list_queues on node 3 reporting the messages",
    );
    expect(queue?.leader).not.toBe(c.nodeName(1));
    expect(await c.waitForRunning(2, 30_000, 3)).not.toContain(c.nodeName(1));
  }, STEP_TIMEOUT_MS);

  it("revives node 1 into a three-node cluster again", async () => {
    const c = started();
    const revivedAt = Date.now();
    await c.revive(1);
    const reviveTookMs = Date.now() - revivedAt;
    expect(await c.waitForRunning(3, 30_000, 1)).toHaveLength(3);
    console.log(`rabbit-cluster: revive of node 1 took ${reviveTookMs} ms (booted, rejoined), all 3 running after ${Date.now() - revivedAt} ms`);
    expect(await messageCountVia(c.url(1))).toBe(MESSAGE_COUNT);
  }, STEP_TIMEOUT_MS);

  it("leaves a paused node 2 accepting TCP without an AMQP handshake, and serving again once resumed", async () => {
    const c = started();
    await c.pause(2);
    try {
      const attemptedAt = Date.now();
      await expect(openConnection(c.url(2), HANDSHAKE_TIMEOUT_MS)).rejects.toThrow(/ETIMEDOUT/);
      expect(Date.now() - attemptedAt).toBeGreaterThanOrEqual(HANDSHAKE_TIMEOUT_MS - 50);
    } finally {
      await c.resume(2);
    }
    const resumedAt = Date.now();
    const connection = await openConnection(c.url(2), 10_000);
    await connection.close();
    console.log(`rabbit-cluster: node 2 completed a handshake ${Date.now() - resumedAt} ms after SIGCONT`);
    expect(await c.waitForRunning(3, 30_000, 2)).toHaveLength(3);
  }, STEP_TIMEOUT_MS);

  it("stops and starts the application on node 3 while its VM stays up", async () => {
    const c = started();
    await c.stopApp(3);
    expect(await tcpRefused(portOf(c.url(3)))).toBe(true);
    const members = await c.members(1);
    expect(members.get(c.nodeName(3))).toBe(false);
    expect(await c.ctl(3, "-q", "eval", "node().")).toContain(c.nodeName(3));
    await c.startApp(3);
    const connection = await openConnection(c.url(3));
    await connection.close();
    expect(await c.waitForRunning(3, 30_000, 1)).toHaveLength(3);
  }, STEP_TIMEOUT_MS);

  it("adds a vhost that guest can use on every node", async () => {
    const c = started();
    await c.addVhost("cluster-tool vhost");
    const connection = await openConnection(c.url(3, "cluster-tool vhost"));
    try {
      const channel = await connection.createChannel();
      await channel.assertQueue("classic-here", { durable: false });
    } finally {
      await connection.close();
    }
    const [queue] = await c.queues("cluster-tool vhost", 1);
    expect(queue).toMatchObject({ name: "classic-here", type: "classic", leader: c.nodeName(3), members: [c.nodeName(3)], consumers: 0, messages: 0 });
  }, STEP_TIMEOUT_MS);

  it("stop() kills every node and removes the directory", async () => {
    const c = started();
    await c.pause(1);
    await c.stop();
    expect(existsSync(c.directory)).toBe(false);
    for (const url of c.urls) expect(await tcpRefused(portOf(url))).toBe(true);
    await c.stop();
  }, STEP_TIMEOUT_MS);
});
