import amqp from "amqplib";
import { describe, expect, it } from "vitest";
import { AmqpHeaders, AmqpNames } from "@sobranie/protocol/amqp";
import type { ClusterNode } from "../support/cluster-env.js";
import { clusterFaultSuite } from "../support/cluster-fault-suite.js";
import { signToken, uniqueId } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";
import { TestClient } from "../support/ws-client.js";

// No single broker node may stop the fleet: `sobranie.dead` is a quorum
// queue, and every process declares it best effort. With the node that leads
// it dead, every process still (re)connects and dead letters are kept; and a
// classic `sobranie.dead` left by an earlier version, whose one node is down,
// no longer keeps any process from connecting (before, every declare of it
// failed with 404 for as long as that node stayed down).

const SLOW_MS = 60_000;

async function ready(node: ClusterNode): Promise<boolean> {
  return (await fetch(`${node.httpUrl}/readyz`).catch(() => undefined))?.status === 200;
}

/** Publishes `body` to sobranie.events through `url`, with a confirm. */
async function publishRaw(url: string, routingKey: string, body: string): Promise<void> {
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createConfirmChannel();
    await new Promise<void>((resolve, reject) => channel.publish(AmqpNames.eventsExchange, routingKey, Buffer.from(body), {}, (error) => (error ? reject(error) : resolve())));
  } finally {
    await connection.close().catch(() => {});
  }
}

/** The dead letters in sobranie.dead, through `url`: routing key and reason, each put back after reading. */
async function deadLetters(url: string): Promise<Array<{ routingKey: string; reason: string }>> {
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createChannel();
    const letters: Array<{ routingKey: string; reason: string }> = [];
    const held: amqp.GetMessage[] = [];
    for (let message = await channel.get(AmqpNames.deadQueue); message !== false; message = await channel.get(AmqpNames.deadQueue)) {
      held.push(message);
      letters.push({ routingKey: message.fields.routingKey, reason: String(message.properties.headers?.[AmqpHeaders.deadReason]) });
    }
    for (const message of held) channel.nack(message, false, true);
    await channel.close();
    return letters;
  } finally {
    await connection.close().catch(() => {});
  }
}

describe("the node holding the dead-letter queue dies", () => {
  const suite = clusterFaultSuite();

  it("with sobranie.dead's leader dead, every process still connects and reconnects, and dead letters are kept", async () => {
    const { cluster } = suite;
    const env = await suite.createEnv("dead_leader");
    const gateway = await env.start("gateway");
    const worker = await env.start("worker");
    const leader = (await cluster.queues(env.vhost)).find((queue) => queue.name === AmqpNames.deadQueue)?.leader;
    const node = [1, 2, 3].find((n) => cluster.nodeName(n) === leader);
    expect(node, `leader ${leader}`).toBeDefined();
    const survivor = [1, 2, 3].find((n) => n !== node)!;
    const post = `post:${uniqueId("p")}`;
    const client = await TestClient.connect(gateway.wsUrl, { token: await signToken({ sub: uniqueId("u") }) });
    expect(await client.request({ op: "subscribe", channel: post })).toMatchObject({ op: "ok" });

    const killedAtMs = Date.now();
    await cluster.kill(node!);
    // Processes started now, and those whose connection was on the dead node, all come up.
    const fresh = [await env.start("gateway"), await env.start("worker")];
    const freshReadyMs = Date.now() - killedAtMs;
    await waitFor(async () => (await Promise.all([gateway, worker, ...fresh].map(ready))).every(Boolean), SLOW_MS, "every process ready").catch(async (error: Error) => {
      const bodies = await Promise.all([gateway, worker, ...fresh].map(async (node) => `${node.port}: ${await (await fetch(`${node.httpUrl}/readyz`)).text()}`));
      throw new Error(`${error.message}; /readyz: ${bodies.join(" | ")}`);
    });
    const allReadyMs = Date.now() - killedAtMs;
    // Dead letters while the node is down: one from the worker (a durable event that is not JSON), one from the gateway.
    const user = uniqueId("bad");
    await publishRaw(env.cluster.url(survivor, env.vhost), `user.${user}.broken`, "not json");
    await publishRaw(env.cluster.url(survivor, env.vhost), `${post.replace(":", ".")}.broken`, "not json either");
    const wanted = [`user.${user}.broken`, `${post.replace(":", ".")}.broken`].sort();
    const found = async () => (await deadLetters(env.cluster.url(survivor, env.vhost))).map((letter) => letter.routingKey).filter((key) => wanted.includes(key)).sort();
    await waitFor(async () => (await found()).length === 2, SLOW_MS, "both dead letters in sobranie.dead");
    console.log(`dead-letter leader's node ${node} killed: two fresh processes ready after ${freshReadyMs} ms, all four ready after ${allReadyMs} ms; both dead letters kept`);
    await cluster.revive(node!);
    await cluster.waitForRunning(3, 120_000);
    expect(await found()).toEqual(wanted);
    client.close();
  });

  it("a classic sobranie.dead of an earlier version, on a node that is down, stops no process from connecting and loses no dead letter", async () => {
    const { cluster } = suite;
    const env = await suite.createEnv("dead_classic");
    const home = 1;
    const others = [2, 3];
    // The topology an earlier version declared: a classic durable queue, which lives on the node it was declared on.
    const connection = await amqp.connect(cluster.url(home, env.vhost));
    const channel = await connection.createChannel();
    await channel.assertExchange(AmqpNames.deadLetterExchange, "fanout", { durable: true });
    await channel.assertQueue(AmqpNames.deadQueue, { durable: true, arguments: { "x-max-length": 100_000, "x-overflow": "drop-head" } });
    await channel.bindQueue(AmqpNames.deadQueue, AmqpNames.deadLetterExchange, "");
    await connection.close();

    await cluster.kill(home);
    const gateway = await env.start("gateway");
    const worker = await env.start("worker");
    // `ready` is logged once the broker connected; /readyz also waits for the presence bus.
    await waitFor(async () => (await ready(gateway)) && (await ready(worker)), SLOW_MS, "gateway and worker ready");
    expect(gateway.process.stdout).toMatch(/sobranie\.dead could not be declared/);

    const post = `post:${uniqueId("p")}`;
    const client = await TestClient.connect(gateway.wsUrl, { token: await signToken({ sub: uniqueId("u") }) });
    expect(await client.request({ op: "subscribe", channel: post })).toMatchObject({ op: "ok" });
    const key = `${post.replace(":", ".")}.broken`;
    await publishRaw(cluster.url(others[0]!, env.vhost), key, "not json");
    // The broker cannot take it while the queue's node is down: the gateway keeps the original and retries.
    await waitFor(() => /dead-letter publish failed; kept unacked and retried/.test(gateway.process.stdout), SLOW_MS, "the gateway keeping the dead letter");
    await cluster.revive(home);
    await cluster.waitForRunning(3, 120_000);
    await waitFor(async () => (await deadLetters(cluster.url(home, env.vhost))).some((letter) => letter.routingKey === key), SLOW_MS, "the dead letter in sobranie.dead once its node is back");
    console.log("classic sobranie.dead on a dead node: gateway and worker ready; the dead letter was retried until the node came back, then stored");
    client.close();
  });
});
