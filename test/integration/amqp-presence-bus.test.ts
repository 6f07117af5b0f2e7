import amqp from "amqplib";
import { afterEach, describe, expect, it } from "vitest";
import { AmqpPresenceBus, presenceConnectionName } from "../../src/adapters/amqp/amqp-presence-bus.js";
import { AmqpHeaders, AmqpNames } from "@sobranie/protocol/amqp";
import { presenceExchangeName } from "../../src/adapters/amqp/topology.js";
import { silentLogger } from "@sobranie/protocol/runtime/logger";
import type { PresenceDropReason } from "../../src/core/ports/metrics.js";
import type { PresenceBusHandler } from "../../src/core/ports/presence-bus.js";
import { encodePresenceMessage, type PresenceMessage } from "@sobranie/protocol/presence";
import { presenceBusContract } from "../contract/presence-bus.contract.js";
import { closeConnectionsNamed, createRabbitVhost, type RabbitVhost } from "../support/rabbit-vhost.js";
import { uniqueId } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";

const RECONNECT = { initialDelayMs: 50, maxDelayMs: 500 } as const;
const TIMEOUT_MS = 15_000;

for (const deploymentId of [undefined, "contract-deployment"]) {
  presenceBusContract(`AmqpPresenceBus${deploymentId === undefined ? "" : ` with DEPLOYMENT_ID=${deploymentId}`}`, async () => {
    const vhost = await createRabbitVhost("presence-bus");
    const prefix = uniqueId("pb");
    return {
      bus: (node) => new AmqpPresenceBus({ urls: [vhost.url], nodeId: `${prefix}-${node}`, deploymentId, logger: silentLogger, reconnect: RECONNECT }),
      // Both of its connections: the one that publishes (`-publish`) and the one that listens.
      dropConnection: async (_bus, node) => {
        const name = presenceConnectionName(`${prefix}-${node}`);
        await Promise.all([closeConnectionsNamed(`${name}-publish`), closeConnectionsNamed(name)]);
      },
      // It reconnects by itself.
      restore: async () => {},
      cleanup: () => vhost.drop(),
    };
  });
}

class Recorder implements PresenceBusHandler {
  readonly messages: PresenceMessage[] = [];
  readonly dropped: PresenceDropReason[] = [];
  received(message: PresenceMessage): void {
    this.messages.push(message);
  }
  connectionChanged(): void {}
  nodes(): string[] {
    return [...new Set(this.messages.map((message) => message.node))].sort();
  }
  has(node: string, seq: number): boolean {
    return this.messages.some((message) => message.node === node && message.kind === "heartbeat" && message.seq === seq);
  }
}

function heartbeat(node: string, seq: number): PresenceMessage {
  return { kind: "heartbeat", node, incarnation: `${node}-1`, atMs: 1, seq, digest: "0:0:0", synced: true };
}

describe("AmqpPresenceBus deployment scope (DEPLOYMENT_ID) on one shared vhost", () => {
  let vhost: RabbitVhost | undefined;
  const buses: AmqpPresenceBus[] = [];
  const connections: amqp.ChannelModel[] = [];
  const run = uniqueId("dp").slice(3).toLowerCase();

  const start = async (node: string, deploymentId: string | undefined): Promise<{ bus: AmqpPresenceBus; recorder: Recorder }> => {
    vhost ??= await createRabbitVhost("presence-deployments");
    const recorder = new Recorder();
    const bus = new AmqpPresenceBus({
      urls: [vhost.url],
      nodeId: node,
      deploymentId,
      logger: silentLogger,
      reconnect: RECONNECT,
      onDropped: (reason) => recorder.dropped.push(reason),
    });
    buses.push(bus);
    await bus.start(recorder);
    return { bus, recorder };
  };
  /** A raw publisher, as a misconfigured node or a stray binding would deliver. */
  const rawChannel = async (): Promise<amqp.Channel> => {
    const connection = await amqp.connect(vhost!.url);
    connections.push(connection);
    return connection.createChannel();
  };

  afterEach(async () => {
    await Promise.all(buses.splice(0).map((bus) => bus.stop()));
    await Promise.all(connections.splice(0).map((connection) => connection.close().catch(() => {})));
    await vhost?.drop();
    vhost = undefined;
  });

  it("keeps deployments apart: the same id hears each other, another id or none hears nothing of them", async () => {
    const groups = { [`a-${run}`]: ["a1", "a2"], [`b-${run}`]: ["b1", "b2"], unset: ["u1", "u2"] };
    const started = new Map<string, { bus: AmqpPresenceBus; recorder: Recorder }>();
    for (const [group, nodes] of Object.entries(groups)) {
      for (const node of nodes) started.set(node, await start(node, group === "unset" ? undefined : group));
    }
    const recorders = new Map([...started].map(([node, { recorder }]) => [node, recorder]));
    const publish = (node: string, seq: number) => started.get(node)!.bus.publish(heartbeat(node, seq));
    for (const node of recorders.keys()) publish(node, 1);
    // Each bus hearing its whole group means every first heartbeat has been routed, to every queue bound to its exchange.
    for (const nodes of Object.values(groups)) {
      for (const node of nodes) {
        await waitFor(() => nodes.every((peer) => recorders.get(node)!.has(peer, 1)), TIMEOUT_MS, `${node} hears its deployment`);
      }
    }
    // A second round, published only now, reaches each queue behind anything of the first round that could reach it.
    for (const node of recorders.keys()) publish(node, 2);
    for (const [node, recorder] of recorders) await waitFor(() => recorder.has(node, 2), TIMEOUT_MS, `${node} hears its second heartbeat`);
    for (const nodes of Object.values(groups)) {
      for (const node of nodes) {
        expect(recorders.get(node)!.nodes(), node).toEqual([...nodes].sort());
        expect(recorders.get(node)!.dropped, node).toEqual([]);
      }
    }
  });

  it("publishes on sobranie.presence.<id> with its id in x-sobranie-deployment, and nothing of that without an id", async () => {
    const deployment = `c-${run}`;
    const scoped = await start("c1", deployment);
    const unscoped = await start("u1", undefined);
    const channel = await rawChannel();
    const seen: Array<{ exchange: string; header: unknown }> = [];
    for (const exchange of [presenceExchangeName(deployment), AmqpNames.presenceExchange]) {
      const { queue } = await channel.assertQueue("", { exclusive: true, autoDelete: true });
      await channel.bindQueue(queue, exchange, "#");
      await channel.consume(queue, (message) => {
        if (message) seen.push({ exchange: message.fields.exchange, header: message.properties.headers?.[AmqpHeaders.deployment] });
      }, { noAck: true });
    }
    expect(presenceExchangeName(deployment)).toBe(`sobranie.presence.${deployment}`);
    scoped.bus.publish(heartbeat("c1", 1));
    unscoped.bus.publish(heartbeat("u1", 1));
    await waitFor(() => seen.length === 2, TIMEOUT_MS, "both heartbeats");
    expect(seen.sort((a, b) => a.exchange.localeCompare(b.exchange))).toEqual([
      { exchange: AmqpNames.presenceExchange, header: undefined },
      { exchange: `sobranie.presence.${deployment}`, header: deployment },
    ]);
  });

  it("drops and counts a message on its own exchange whose header names another deployment, or is missing or present where it should not be", async () => {
    const deployment = `d-${run}`;
    const { recorder: scoped } = await start("d1", deployment);
    const { recorder: unscoped } = await start("u1", undefined);
    const channel = await rawChannel();
    const send = (exchange: string, message: PresenceMessage | string, header: unknown) =>
      channel.publish(exchange, "heartbeat.raw", Buffer.from(typeof message === "string" ? message : encodePresenceMessage(message)), {
        headers: header === undefined ? {} : { [AmqpHeaders.deployment]: header },
      });
    const own = presenceExchangeName(deployment);
    send(own, heartbeat("foreign-1", 1), `e-${run}`);
    send(own, heartbeat("foreign-2", 1), undefined);
    send(own, heartbeat("foreign-3", 1), Buffer.from(deployment));
    send(own, "not json", deployment);
    send(own, heartbeat("raw", 1), deployment);
    send(AmqpNames.presenceExchange, heartbeat("foreign-4", 1), deployment);
    send(AmqpNames.presenceExchange, heartbeat("raw", 1), undefined);
    // One channel keeps its publishes' order, and each queue is FIFO: the "raw" ones come last to each bus.
    await waitFor(() => scoped.has("raw", 1) && unscoped.has("raw", 1), TIMEOUT_MS, "the well-formed raw heartbeats");
    expect(scoped.nodes()).toEqual(["raw"]);
    expect(scoped.dropped).toEqual(["foreign", "foreign", "foreign", "invalid"]);
    expect(unscoped.nodes()).toEqual(["raw"]);
    expect(unscoped.dropped).toEqual(["foreign"]);
  });
});
