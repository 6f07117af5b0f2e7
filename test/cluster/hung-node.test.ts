import { describe, expect, it } from "vitest";
import { clusterFaultSuite } from "../support/cluster-fault-suite.js";
import { describeTallies, DurableLoad, StayingClient, tally, Traffic, type TrafficChannels } from "../support/cluster-env.js";
import { signToken, uniqueId } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";
import { TestClient } from "../support/ws-client.js";

// A RabbitMQ node hangs (SIGSTOP): it keeps its TCP connections open and
// answers nothing, and the other nodes take a full net_ticktime (60 s by
// default) to notice. Until then RabbitMQ 3.x (Mnesia) holds every queue
// declare and binding in the whole cluster, so nobody can set up a new node
// queue: what can and must hold is that healthy gateways' durable delivery
// never waits for the hung node (the worker's live relay used to stall on the
// hung gateway queue's confirm), that the hung node's gateway notices within
// seconds (not the 25-28 s of the heartbeat's own check), that presence
// announces no one as leaving, and that once the node is back every client
// has every durable event exactly once.

const SLOW_MS = 60_000;
/** Longer than PRESENCE_TTL_MS below and than the gateway's silence watchdog (5 s heartbeat + 2 s). */
const HANG_MS = 25_000;
const PRESENCE = { HEARTBEAT_MS: "2000", PRESENCE_TTL_MS: "15000" };
/**
 * Durable events/s to a room both gateways subscribe to: over the hang, far
 * more than the ~800 messages after which RabbitMQ's credit flow stops reading
 * a connection that routes to a queue on the hung node (the worker's relay).
 */
const LOAD_PER_SEC = 150;

describe("a hung RabbitMQ node (SIGSTOP)", () => {
  const suite = clusterFaultSuite();

  it("stalls no healthy gateway's durable delivery, its own gateway fails over within seconds, and presence announces no leave", async () => {
    const { cluster } = suite;
    const env = await suite.createEnv("hung");
    const hungGateway = await env.start("gateway", { env: PRESENCE });
    const node = env.brokerOf(hungGateway);
    const others = [1, 2, 3].filter((n) => n !== node);
    const worker = await env.start("worker", { brokers: others });
    const healthyGateway = await env.start("gateway", { brokers: others, env: PRESENCE });

    const user = uniqueId("u");
    const channels: TrafficChannels = { user: `user:${user}`, room: `room:${uniqueId("r")}`, post: `post:${uniqueId("p")}` };
    const onHung = await StayingClient.connect(hungGateway.wsUrl, channels, user);
    const onHealthy = await StayingClient.connect(healthyGateway.wsUrl, channels, user);
    const loadChannel = `room:${uniqueId("load")}`;
    for (const client of [onHung, onHealthy]) expect(await client.client.request({ op: "subscribe", channel: loadChannel }, 20_000)).toMatchObject({ op: "ok" });
    // A member of one room on each gateway, each watching the other's presence.
    const room = `room:${uniqueId("presence")}`;
    const members = await Promise.all(
      [hungGateway, healthyGateway].map(async (gateway, i) => {
        const member = await TestClient.connect(gateway.wsUrl, { token: await signToken({ sub: `member-${i}`, channels: ["room:*"] }) });
        expect(await member.request({ op: "subscribe", channel: room, presence: true }, 20_000)).toMatchObject({ op: "ok" });
        return member;
      }),
    );
    await waitFor(async () => ((await members[1]!.request({ op: "presence", channel: room })).count as number) === 2, SLOW_MS, "both members seen on both nodes");
    const keepAlive = setInterval(() => {
      for (const client of [onHung, onHealthy]) client.ping();
      for (const member of members) if (member.socket.readyState === member.socket.OPEN) member.send({ op: "ping" });
    }, 1_000);
    suite.defer(() => clearInterval(keepAlive), () => onHung.close(), () => onHealthy.close(), () => members.forEach((member) => member.close()));

    // The backend publishes through the healthy nodes: what is measured is the gateways' and the worker's path.
    const traffic = new Traffic(channels, env.urls(others));
    traffic.start();
    suite.defer(() => traffic.stop());
    const load = await DurableLoad.open(cluster.url(others[0]!, env.vhost), loadChannel);
    load.start(LOAD_PER_SEC);
    suite.defer(() => load.stop());
    await waitFor(() => onHealthy.events(channels.user).length >= 10, SLOW_MS, "traffic under way");

    const pausedAtMs = Date.now();
    await cluster.pause(node);
    const detectedAtMs = await env.loggedAt(hungGateway, "broker connection lost; reconnecting", SLOW_MS);
    // Past BROKER_LOSS_GRACE_MS without a broker, its gateway sends clients elsewhere and refuses new ones.
    await waitFor(() => onHung.reconnects().length > 0, SLOW_MS, "a reconnect frame from the hung node's gateway");
    const refused = await TestClient.connect(hungGateway.wsUrl, { token: await signToken({ sub: user }) }).then(
      (client) => {
        client.close();
        return undefined;
      },
      (error: unknown) => error,
    );
    await waitFor(() => Date.now() - pausedAtMs >= HANG_MS, HANG_MS + 5_000, "the hang to last");
    const hangEndMs = Date.now();
    const durableIds = () => [channels.user, channels.room].flatMap((channel) => traffic.published.get(channel)!);
    await cluster.resume(node);
    const resumedAtMs = Date.now();
    await waitFor(() => env.connection(hungGateway).atMs > detectedAtMs, SLOW_MS, "the hung node's gateway consuming again");
    const { broker: consumingOn, atMs: reconnectedAtMs } = env.connection(hungGateway);

    await traffic.stop();
    await load.stop();
    const durable = [channels.user, channels.room];
    await waitFor(
      () =>
        [onHung, onHealthy].every(
          (client) => durable.every((channel) => client.events(channel).length >= traffic.published.get(channel)!.length) && client.events(loadChannel).length >= load.published.length,
        ),
      SLOW_MS,
      "every durable event on both clients",
    );
    for (const client of [onHung, onHealthy]) await client.client.request({ op: "ping" });
    const calledAtMs = new Map([...traffic.calledAtMs, ...load.calledAtMs]);
    const allDurable = [...durableIds(), ...load.published];
    const healthyDeliveryMs = onHealthy.longestDeliveryMs(allDurable, calledAtMs, pausedAtMs, hangEndMs);
    const hungDeliveryMs = onHung.longestDeliveryMs(allDurable, calledAtMs, pausedAtMs, hangEndMs);
    const loadDuringHang = load.published.filter((id) => (load.calledAtMs.get(id) ?? 0) >= pausedAtMs && (load.calledAtMs.get(id) ?? 0) <= hangEndMs).length;
    const report = (client: StayingClient) => [
      ...Object.values(channels).map((channel) => tally(channel, traffic.published.get(channel)!, client.events(channel))),
      tally(loadChannel, load.published, client.events(loadChannel)),
    ];
    const leaves = members.map((member) => member.frames.filter((frame) => frame.op === "leave" || frame.op === "members"));
    console.log(
      [
        `hung node ${node} (SIGSTOP for ${resumedAtMs - pausedAtMs} ms): its gateway noticed after ${detectedAtMs - pausedAtMs} ms, consumed again on node ${consumingOn} ${reconnectedAtMs - resumedAtMs} ms after the resume; durable events published during the hang (${loadDuringHang} of them to the loaded room, ${LOAD_PER_SEC}/s) reached the healthy gateway's client within ${healthyDeliveryMs} ms of the publish call (the hung gateway's within ${hungDeliveryMs} ms)`,
        describeTallies("  client on the hung node's gateway", report(onHung)),
        describeTallies("  client on the healthy gateway", report(onHealthy)),
        `  presence: leave/members frames seen by the member on the hung node's gateway ${leaves[0]!.length}, on the healthy gateway ${leaves[1]!.length}`,
        `  the worker's live relay connection was given up and replaced ${worker.process.stdout.split('"msg":"live relay connection lost; reconnecting"').length - 1} times (credit flow towards the hung node's queue); its persist queue connection ${worker.process.stdout.split('"msg":"persist queue connection lost; reconnecting"').length - 1} times`,
      ].join("\n"),
    );

    for (const result of [...report(onHung), ...report(onHealthy)].filter((t) => !t.channel.startsWith("post:"))) {
      expect(result, result.channel).toMatchObject({ lost: 0, duplicated: 0, inOrder: true });
    }
    // Noticed by the silence watchdog (heartbeat 5 s + 2 s), not by amqplib's 2-3 heartbeats or the cluster's net_ticktime.
    expect(detectedAtMs - pausedAtMs).toBeLessThan(20_000);
    // The healthy gateway's durable stream never waited for the hung node's confirms (the worker's relay
    // probes after 1 s; before, it waited for the cluster to declare the node down, 40 s and more).
    expect(healthyDeliveryMs).toBeLessThan(10_000);
    expect(leaves).toEqual([[], []]);
    expect(onHung.reconnects()[0]).toMatchObject({ op: "reconnect", reason: "broker_unavailable" });
    expect(onHealthy.reconnects()).toEqual([]);
    expect(refused).toMatchObject({ status: 503 });
  });
});
