import { describe, expect, it } from "vitest";
import { clusterFaultSuite } from "../support/cluster-fault-suite.js";
import { describeTallies, StayingClient, tally, Traffic, type TrafficChannels } from "../support/cluster-env.js";
import { RecoveringSubscriber } from "../support/durable-env.js";
import { signToken, uniqueId } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";

// A gateway's RabbitMQ node dies (SIGKILL) or is stopped (stop_app) under
// running traffic. The gateway has all three nodes in RABBITMQ_URL; a second
// gateway and the worker are on the other two. Clients that stay connected to
// the failing-over gateway must get every durable event exactly once and in
// order, and a gap frame for the non-durable channel; clients that reconnect
// elsewhere with `since` must too. Each test prints its recovery time and
// what was lost or duplicated per namespace kind.

const SLOW_MS = 60_000;
/** Events each client must have seen before the fault, and the published count after it at which traffic stops. */
const WARMUP_EVENTS = 30;
const EVENTS_AFTER_FAULT = 150;

describe("a gateway whose RabbitMQ node dies fails over, and its connected clients miss nothing durable", () => {
  const suite = clusterFaultSuite();

  for (const kind of ["kill", "stop_app"] as const) {
    it(`${kind === "kill" ? "SIGKILL" : "stop_app"} of the gateway's node: consuming again from another node within seconds, durable channels whole`, async () => {
      const { cluster } = suite;
      const env = await suite.createEnv(`failover_${kind}`);
      const failing = await env.start("gateway");
      const node = env.brokerOf(failing);
      const others = [1, 2, 3].filter((n) => n !== node);
      await env.start("worker", { brokers: others });
      const healthy = await env.start("gateway", { brokers: others });

      const user = uniqueId("u");
      const channels: TrafficChannels = { user: `user:${user}`, room: `room:${uniqueId("r")}`, post: `post:${uniqueId("p")}` };
      const stayingOnFailing = await StayingClient.connect(failing.wsUrl, channels, user);
      const stayingOnHealthy = await StayingClient.connect(healthy.wsUrl, channels, user);
      const token = await signToken({ sub: user, channels: ["room:*"] });
      const movers = [new RecoveringSubscriber(channels.user, token), new RecoveringSubscriber(channels.room, token)];
      for (const mover of movers) await mover.attach(failing.wsUrl);
      const keepAlive = setInterval(() => [stayingOnFailing, stayingOnHealthy].forEach((client) => client.ping()), 10_000);
      suite.defer(() => clearInterval(keepAlive), () => stayingOnFailing.close(), () => stayingOnHealthy.close(), () => movers.forEach((mover) => mover.close()));

      const traffic = new Traffic(channels, env.urls());
      traffic.start();
      suite.defer(() => traffic.stop());
      await waitFor(() => stayingOnFailing.events(channels.user).length >= WARMUP_EVENTS / 3, SLOW_MS, "traffic under way");

      const faultAtMs = Date.now();
      if (kind === "kill") await cluster.kill(node);
      else await cluster.stopApp(node);
      // Clients that reconnect (to the other gateway, with since) as the SDK does after a drop.
      // Each resubscribes with since = the last seq its closed session saw (so that session must be closed first:
      // the failed-over gateway may still deliver repaired events to it until then).
      for (const mover of movers) {
        mover.current!.close();
        await mover.current!.closed;
        await mover.attach(healthy.wsUrl);
      }
      const { broker: movedTo, atMs: reconnectedAtMs } = await env.movedOff(failing, node, SLOW_MS);
      await waitFor(() => stayingOnFailing.firstEventAfter(reconnectedAtMs) !== undefined, SLOW_MS, "an event on the failed-over gateway");
      const servedAgainMs = stayingOnFailing.firstEventAfter(reconnectedAtMs)! - faultAtMs;

      const publishedAtFault = traffic.count();
      await waitFor(() => traffic.count() >= publishedAtFault + EVENTS_AFTER_FAULT, SLOW_MS, "traffic after the fault");
      await traffic.stop();
      const durable = [channels.user, channels.room];
      const complete = (events: (channel: string) => unknown[]) => durable.every((channel) => events(channel).length >= traffic.published.get(channel)!.length);
      await waitFor(() => complete((c) => stayingOnFailing.events(c)) && complete((c) => stayingOnHealthy.events(c)), SLOW_MS, "every durable event on both staying clients");
      await waitFor(() => movers.every((mover) => mover.events.length >= traffic.published.get(mover.channel)!.length), SLOW_MS, "every durable event on the moved clients");
      // A ping round trip: anything still in flight to the clients has arrived.
      for (const client of [stayingOnFailing, stayingOnHealthy]) await client.client.request({ op: "ping" });

      const repaired = /sobranie_feed_repaired_events_total\{[^}]*\} (\d+)/g;
      const metrics = await (await fetch(`${failing.httpUrl}/metrics`)).text();
      const repairedCount = [...metrics.matchAll(repaired)].reduce((sum, match) => sum + Number(match[1]), 0);
      const report = (client: StayingClient) => Object.values(channels).map((channel) => tally(channel, traffic.published.get(channel)!, client.events(channel)));
      const onFailing = report(stayingOnFailing);
      const onHealthy = report(stayingOnHealthy);
      const moved = movers.map((mover) => tally(mover.channel, traffic.published.get(mover.channel)!, mover.events));
      console.log(
        [
          `gateway failover (${kind} of broker node ${node}): consuming again on node ${movedTo} ${reconnectedAtMs - faultAtMs} ms after the fault; first event to its connected client after that at ${servedAgainMs} ms; ${repairedCount} durable events repaired from the store`,
          describeTallies("  client staying on the failed-over gateway", onFailing),
          describeTallies("  client on the other gateway", onHealthy),
          describeTallies("  clients that reconnected elsewhere with since", moved),
          `  gap frames: failed-over gateway ${stayingOnFailing.gaps(channels.post).length} (post), ${stayingOnFailing.gaps(channels.user).length + stayingOnFailing.gaps(channels.room).length} (durable); other gateway ${stayingOnHealthy.gaps(channels.post).length}`,
        ].join("\n"),
      );

      for (const result of [...onFailing, ...onHealthy, ...moved].filter((t) => !t.channel.startsWith("post:"))) {
        expect(result, result.channel).toMatchObject({ lost: 0, duplicated: 0, inOrder: true });
      }
      // The non-durable channel cannot be repaired: its subscribers on the interrupted gateway are told, once.
      expect(stayingOnFailing.gaps(channels.post)).toEqual([{ op: "gap", channel: channels.post, reason: "interrupted" }]);
      expect(stayingOnFailing.gaps(channels.user)).toEqual([]);
      expect(stayingOnHealthy.gaps(channels.post)).toEqual([]);
      // Back within the grace: nobody was asked to move.
      expect(stayingOnFailing.reconnects()).toEqual([]);
      expect(movedTo).not.toBe(node);
      expect(await (await fetch(`${failing.httpUrl}/readyz`)).json()).toMatchObject({ ready: true });
    });
  }
});
