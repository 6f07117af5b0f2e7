import amqp from "amqplib";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../support/child-service.js";
import { GatewayProcess } from "../support/gateway-process.js";
import { createIsolatedServices, type IsolatedServices } from "../support/isolated-services.js";
import { NginxProcess } from "../support/nginx-process.js";
import { PrometheusProcess } from "../support/prometheus-process.js";
import { ReconnectingSubscriber } from "../support/reconnecting-subscriber.js";
import { signToken, TEST_JWT_SECRET, uniqueId } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";
import { TestClient } from "../support/ws-client.js";

/**
 * Several nodes on this machine, end to end (issue 7, items 5 and 6): the
 * Debian nginx with the shipped site config in front of two gateway
 * processes (ROLE=gateway), one worker (ROLE=worker), a private RabbitMQ vhost
 * and PostgreSQL database, and a real Prometheus scraping with the shipped
 * config and alert rules. Clients connect only through nginx and subscribe to
 * durable `user:<id>` channels while a backend publishes continuously.
 *
 * Needs `npm run build` (whole processes from dist/) and the tools of
 * test/support/ensure-tools.sh (nginx, prometheus).
 */

const CLIENTS = 20;
/** Continuous publishing: one event every PUBLISH_GAP_MS plus its confirm, round-robin over the users. */
const PUBLISH_GAP_MS = 20;
const DRAIN_GRACE_MS = 1_000;
/** The shipped SobranieGatewayDown holds `for: 1m`; the test's copy of the rule file holds 15s (only that rule changed). */
const GATEWAY_DOWN_FOR = "15s";
/** Short presence heartbeats, so a dead node's members are dropped within seconds (defaults: 25 s and 60 s). */
const HEARTBEAT_MS = 1_000;
const PRESENCE_TTL_MS = 5_000;
/** Clients ping this often (silence for PRESENCE_TTL_MS closes 4008). */
const PING_EVERY_MS = 1_000;
/** Presence members in one room, spread over both nodes by nginx; they do not reconnect. */
const PRESENCE_MEMBERS = 6;

interface Ports {
  nginx: number;
  gateways: [number, number];
  worker: number;
  prometheus: number;
}

/** Publishes `user.<id>.notification.created` events with confirms, round-robin, until stopped; remembers the order per channel. */
class ContinuousPublisher {
  readonly published = new Map<string, string[]>();
  private running = true;
  private loop: Promise<void> | undefined;
  private failure: unknown;

  private constructor(
    private readonly connection: amqp.ChannelModel,
    private readonly channel: amqp.ConfirmChannel,
    private readonly users: readonly string[],
    private readonly tag: string,
  ) {
    for (const user of users) this.published.set(`user:${user}`, []);
  }

  static async start(url: string, users: readonly string[]): Promise<ContinuousPublisher> {
    const connection = await amqp.connect(url);
    const channel = await connection.createConfirmChannel();
    const publisher = new ContinuousPublisher(connection, channel, users, uniqueId("evt"));
    publisher.loop = publisher.run();
    return publisher;
  }

  get count(): number {
    let total = 0;
    for (const ids of this.published.values()) total += ids.length;
    return total;
  }

  private async run(): Promise<void> {
    try {
      for (let i = 0; this.running; i++) {
        const user = this.users[i % this.users.length]!;
        const id = `${this.tag}-${String(i).padStart(6, "0")}`;
        const now = Date.now();
        const body = Buffer.from(JSON.stringify({ id, type: "notification.created", data: { i }, occurredAt: new Date(now).toISOString() }));
        this.published.get(`user:${user}`)!.push(id);
        await new Promise<void>((resolve, reject) =>
          this.channel.publish(
            "sobranie.events",
            `user.${user}.notification.created`,
            body,
            { persistent: true, contentType: "application/json", messageId: id, timestamp: Math.floor(now / 1000), headers: { "x-sobranie-ts-ms": now } },
            (error) => (error ? reject(error) : resolve()),
          ),
        );
        await new Promise((resolve) => setTimeout(resolve, PUBLISH_GAP_MS));
      }
    } catch (error) {
      this.failure = error;
    }
  }

  /** Stops after the event in flight is confirmed; throws if any publish failed. */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    await this.connection.close().catch(() => {});
    if (this.failure) throw this.failure;
  }
}

describe("several nodes behind nginx, end to end", { timeout: 300_000 }, () => {
  let services: IsolatedServices;
  let nginx: NginxProcess;
  let prometheus: PrometheusProcess;
  let ports: Ports;
  const subscribers: ReconnectingSubscriber[] = [];
  let publisher: ContinuousPublisher | undefined;

  function startNode(role: "gateway" | "worker", nodeId: string, port: number): GatewayProcess {
    return GatewayProcess.start([], {
      PORT: String(port),
      HOST: "127.0.0.1",
      ROLE: role,
      NODE_ID: nodeId,
      JWT_SECRET: TEST_JWT_SECRET,
      RABBITMQ_URL: services.rabbitmqUrl,
      DATABASE_URL: services.databaseUrl,
      LOG_LEVEL: "info",
      DRAIN_GRACE_MS: String(DRAIN_GRACE_MS),
      HEARTBEAT_MS: String(HEARTBEAT_MS),
      PRESENCE_TTL_MS: String(PRESENCE_TTL_MS),
    });
  }

  async function ready(node: GatewayProcess): Promise<GatewayProcess> {
    await node.waitForOutput(/"msg":"ready"/, 90_000);
    return node;
  }

  /**
   * Waits until nginx sends new connections to `nodeId` (after a node came
   * back, nginx's passive health check may still skip it for fail_timeout):
   * probes are held open in pairs, so least_conn must pick both nodes when
   * both are in rotation.
   */
  async function waitUntilNginxRoutesTo(nodeId: string): Promise<void> {
    const token = await signToken({ sub: uniqueId("probe") });
    await waitFor(
      async () => {
        const probes: TestClient[] = [];
        try {
          for (let i = 0; i < 2; i++) probes.push(await TestClient.connect(nginx.wsUrl, { token }));
          return probes.some((probe) => probe.frames[0]?.node === nodeId);
        } finally {
          for (const probe of probes) probe.close();
          await Promise.all(probes.map((probe) => probe.closed));
        }
      },
      60_000,
      `nginx routes new connections to ${nodeId}`,
    );
  }

  async function startStack(tag: string): Promise<{ gatewayIds: [string, string]; gateways: [GatewayProcess, GatewayProcess] }> {
    const gatewayIds: [string, string] = [`${tag}-gw-a`, `${tag}-gw-b`];
    await ready(startNode("worker", `${tag}-worker`, ports.worker));
    const gateways = (await Promise.all(gatewayIds.map((id, i) => ready(startNode("gateway", id, ports.gateways[i]!))))) as [GatewayProcess, GatewayProcess];
    for (const id of gatewayIds) await waitUntilNginxRoutesTo(id);
    return { gatewayIds, gateways };
  }

  /** CLIENTS subscribers on user:<id> through nginx, and a publisher feeding all of them. */
  async function connectClientsAndPublish(tag: string): Promise<ReconnectingSubscriber[]> {
    const users = Array.from({ length: CLIENTS }, (_, i) => `${tag}-u${i}`);
    const mine: ReconnectingSubscriber[] = [];
    for (const user of users) {
      const subscriber = new ReconnectingSubscriber(nginx.wsUrl, `user:${user}`, await signToken({ sub: user }), PING_EVERY_MS);
      await subscriber.start();
      mine.push(subscriber);
      subscribers.push(subscriber);
    }
    publisher = await ContinuousPublisher.start(services.rabbitmqUrl, users);
    return mine;
  }

  /** Events replayed from the store by `subscribe` with `since` (the `missed` of every resubscribe's `ok`). */
  const replayed = (clients: readonly ReconnectingSubscriber[]): number =>
    clients.flatMap((client) => client.sessions.slice(1)).reduce((sum, session) => sum + Number(session.ok.missed ?? 0), 0);

  /** Stops publishing, waits until every client holds every id, lets late duplicates surface, then checks exactly-once in order. */
  async function expectEveryEventExactlyOnceInOrder(clients: readonly ReconnectingSubscriber[]): Promise<number> {
    const pub = publisher!;
    publisher = undefined;
    await pub.stop();
    await waitFor(
      () => clients.every((client) => {
        const seen = new Set(client.events.map((frame) => frame.id));
        return pub.published.get(client.channel)!.every((id) => seen.has(id));
      }),
      90_000,
      "every client received every event published to it",
    );
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    for (const client of clients) {
      const events = client.events;
      expect(events.map((frame) => frame.id), client.channel).toEqual(pub.published.get(client.channel));
      const seqs = events.map((frame) => frame.seq as number);
      for (const seq of seqs) expect(Number.isSafeInteger(seq)).toBe(true);
      for (let i = 1; i < seqs.length; i++) expect(seqs[i]!, `${client.channel} seq order`).toBeGreaterThan(seqs[i - 1]!);
      for (const session of client.sessions.slice(1)) expect(session.ok, "recovered after a reconnect").toMatchObject({ op: "ok", recovered: true });
    }
    return pub.count;
  }

  beforeAll(async () => {
    services = await createIsolatedServices("multinode");
    ports = { nginx: await freePort(), gateways: [await freePort(), await freePort()], worker: await freePort(), prometheus: await freePort() };
    nginx = await NginxProcess.start(ports.nginx, ports.gateways);
    prometheus = await PrometheusProcess.start({
      port: ports.prometheus,
      targets: {
        "localhost:9090": `127.0.0.1:${ports.prometheus}`,
        "gateway-1:8080": `127.0.0.1:${ports.gateways[0]}`,
        "gateway-2:8080": `127.0.0.1:${ports.gateways[1]}`,
        "worker:8080": `127.0.0.1:${ports.worker}`,
        // The one local broker stands in for the three cluster nodes (Prometheus scrapes it once).
        "rabbitmq-1:15692": "127.0.0.1:15692",
        "rabbitmq-2:15692": "127.0.0.1:15692",
        "rabbitmq-3:15692": "127.0.0.1:15692",
      },
      ruleFor: { SobranieGatewayDown: GATEWAY_DOWN_FOR },
    });
  }, 120_000);

  const pinged: TestClient[] = [];
  const pinger = setInterval(() => {
    for (const client of pinged) if (client.socket.readyState === client.socket.OPEN) client.send({ op: "ping" });
  }, PING_EVERY_MS);

  /** A plain client through nginx (no reconnect) that keeps its session alive. */
  async function plainClient(sub: string, channels: string[]): Promise<TestClient> {
    const client = await TestClient.connect(nginx.wsUrl, { token: await signToken({ sub, channels, info: { name: sub } }) });
    pinged.push(client);
    return client;
  }

  afterEach(async () => {
    for (const client of pinged.splice(0)) client.close();
    await publisher?.stop().catch(() => {});
    publisher = undefined;
    await Promise.all(subscribers.splice(0).map((subscriber) => subscriber.stop()));
    await GatewayProcess.killAll();
  });

  afterAll(async () => {
    clearInterval(pinger);
    await prometheus?.stop();
    await nginx?.stop();
    await services?.drop();
  });

  it("kill -9 of one gateway: its clients reconnect through nginx to the survivor and miss nothing; presence converges; Prometheus fires SobranieGatewayDown for that node only", async () => {
    const tag = uniqueId("kill");
    const { gatewayIds, gateways } = await startStack(tag);

    // Presence: a watcher and members of one room, all through nginx; the watcher's node will survive.
    const room = `room:${tag}`;
    const watcher = await plainClient(`${tag}-watcher`, [room]);
    expect(await watcher.request({ op: "subscribe", channel: room })).toMatchObject({ op: "ok" });
    const members: Array<{ user: string; node: string; client: TestClient }> = [];
    for (let i = 0; i < PRESENCE_MEMBERS; i++) {
      const user = `${tag}-m${i}`;
      const client = await plainClient(user, [room]);
      expect(await client.request({ op: "subscribe", channel: room, presence: true })).toMatchObject({ op: "ok" });
      members.push({ user, node: String(client.frames[0]!.node), client });
    }
    const survivorIndex = gatewayIds.indexOf(String(watcher.frames[0]!.node));
    expect(survivorIndex).toBeGreaterThanOrEqual(0);
    const victimIndex = 1 - survivorIndex;
    const [victimId, survivorId] = [gatewayIds[victimIndex]!, gatewayIds[survivorIndex]!];
    const [victimTarget, survivorTarget] = [`127.0.0.1:${ports.gateways[victimIndex]}`, `127.0.0.1:${ports.gateways[survivorIndex]}`];
    const deadMembers = members.filter((member) => member.node === victimId).map((member) => member.user).sort();
    const liveMembers = members.filter((member) => member.node === survivorId).map((member) => member.user).sort();
    expect(deadMembers.length).toBeGreaterThanOrEqual(1);
    expect(liveMembers.length).toBeGreaterThanOrEqual(1);
    const presenceOnSurvivor = async (): Promise<string[]> => {
      // Polled: stay well under the per-connection frame rate limit (20/s).
      await new Promise((resolve) => setTimeout(resolve, 250));
      const reply = await watcher.request({ op: "presence", channel: room }, 15_000);
      expect(reply).toMatchObject({ op: "ok" });
      return (reply.members as Array<{ user: string }>).map((member) => member.user).sort();
    };
    // Before the kill the survivor lists the members of both nodes (presence replicates across nodes).
    await waitFor(async () => JSON.stringify(await presenceOnSurvivor()) === JSON.stringify([...members.map((member) => member.user)].sort()), 30_000, "survivor lists every member");

    // Prometheus sees both gateways up (and so no gateway-down alert) before the kill.
    await waitFor(
      async () => {
        const up = await prometheus.query('up{job="sobranie-gateway"}');
        const alerts = (await prometheus.alerts()).filter((alert) => alert.labels.alertname === "SobranieGatewayDown");
        return up.length === 2 && up.every((sample) => sample.value[1] === "1") && alerts.length === 0;
      },
      90_000,
      "Prometheus scraped both gateways up and no SobranieGatewayDown is pending",
    );

    const clients = await connectClientsAndPublish(uniqueId("k"));
    const victims = clients.filter((client) => client.current!.node === victimId);
    const survivors = clients.filter((client) => client.current!.node === survivorId);
    // least_conn spreads the clients over both nodes.
    expect(victims.length).toBeGreaterThanOrEqual(CLIENTS / 4);
    expect(survivors.length).toBeGreaterThanOrEqual(CLIENTS / 4);
    await waitFor(() => clients.every((client) => client.events.length >= 2), 60_000, "events flowing to every client");

    const killedAt = Date.now();
    gateways[victimIndex]!.kill("SIGKILL");
    expect((await gateways[victimIndex]!.exited).signal).toBe("SIGKILL");
    await waitFor(() => victims.every((client) => client.sessions.length >= 2 && client.connected), 60_000, "the dead node's clients reconnected");
    const reconnectedMs = Date.now() - killedAt;
    for (const client of victims) {
      expect(client.sessions[0]!.closed, "the socket dropped").toBeDefined();
      expect(client.sessions[0]!.closed!.code).not.toBe(1000);
      expect(client.current!.node).toBe(survivorId);
      expect(client.sessions[1]!.subscribedWithSince, "resubscribed with since = last seq seen").toBe(client.sessions[0]!.client.events(client.channel).at(-1)?.seq);
    }
    for (const client of survivors) expect(client.sessions).toHaveLength(1);

    // Presence converges on the survivor: the dead node's members leave (node TTL), its own stay.
    await waitFor(async () => JSON.stringify(await presenceOnSurvivor()) === JSON.stringify(liveMembers), 60_000, "presence on the survivor lists only its own members");
    const presenceConvergedMs = Date.now() - killedAt;
    await waitFor(() => deadMembers.every((user) => watcher.frames.some((frame) => frame.op === "leave" && frame.channel === room && frame.user === user)), 30_000, "leave frames for the dead node's members");
    const leaves = watcher.frames.filter((frame) => frame.op === "leave").map((frame) => String(frame.user)).sort();
    expect(leaves).toEqual(deadMembers);
    expect(watcher.socket.readyState).toBe(watcher.socket.OPEN);

    // Keep publishing on the survivor for a while, then check every user's view.
    const reachedPublished = publisher!.count + 100;
    await waitFor(() => publisher!.count >= reachedPublished, 60_000, "100 more events after the reconnects");
    const total = await expectEveryEventExactlyOnceInOrder(clients);

    // Prometheus: up drops to 0 for the dead node only, and the alert fires for it only.
    await waitFor(
      async () => {
        const up = await prometheus.query('up{job="sobranie-gateway"}');
        const byInstance = Object.fromEntries(up.map((sample) => [sample.metric.instance, sample.value[1]]));
        return byInstance[victimTarget!] === "0" && byInstance[survivorTarget!] === "1";
      },
      90_000,
      "up{job=sobranie-gateway} is 0 for the dead node and 1 for the survivor",
    );
    const upZeroMs = Date.now() - killedAt;
    let firing: Array<{ instance?: string; state: string; activeAt: string }> = [];
    await waitFor(
      async () => {
        firing = (await prometheus.alerts()).filter((alert) => alert.labels.alertname === "SobranieGatewayDown").map((alert) => ({ instance: alert.labels.instance, state: alert.state, activeAt: alert.activeAt }));
        return firing.some((alert) => alert.state === "firing");
      },
      150_000,
      "SobranieGatewayDown firing",
    );
    const firingMs = Date.now() - killedAt;
    expect(firing).toHaveLength(1);
    expect(firing[0]).toMatchObject({ instance: victimTarget, state: "firing" });
    expect(Date.parse(firing[0]!.activeAt)).toBeGreaterThanOrEqual(killedAt - 1_000);
    const alert = (await prometheus.alerts()).find((candidate) => candidate.labels.alertname === "SobranieGatewayDown")!;
    expect(alert.labels).toMatchObject({ job: "sobranie-gateway", severity: "critical" });
    expect(alert.annotations.summary).toBe(`Gateway ${victimTarget} is down`);

    console.log(
      `[multi-node] kill -9: ${victims.length} clients on the killed node, ${survivors.length} on the survivor; ` +
        `all reconnected through nginx ${reconnectedMs} ms after the kill; presence on the survivor converged (${deadMembers.length} members of the dead node left, ${liveMembers.length} stayed; PRESENCE_TTL_MS ${PRESENCE_TTL_MS}) ${presenceConvergedMs} ms after the kill; ${total} events, each delivered exactly once in order (${replayed(victims)} of them replayed by since); ` +
        `up=0 seen ${upZeroMs} ms and SobranieGatewayDown (for: ${GATEWAY_DOWN_FOR}) firing ${firingMs} ms after the kill (scrape/evaluation interval 15s as shipped)`,
    );
  });

  it("rolling restart (SIGTERM one of two gateways while events flow, restart it, then the other): clients follow reconnect frames through nginx and miss nothing", async () => {
    const { gatewayIds, gateways } = await startStack(uniqueId("roll"));
    const clients = await connectClientsAndPublish(uniqueId("r"));
    await waitFor(() => clients.every((client) => client.events.length >= 2), 60_000, "events flowing to every client");
    const timings: string[] = [];
    const restarted: GatewayProcess[] = [];

    for (const [index, nodeId] of gatewayIds.entries()) {
      const other = gatewayIds[1 - index]!;
      const onNode = clients.filter((client) => client.current!.node === nodeId);
      expect(onNode.length, `clients on ${nodeId} before its restart`).toBeGreaterThanOrEqual(CLIENTS / 4);
      const sessionsBefore = new Map(onNode.map((client) => [client, client.sessions.length]));

      const termAt = Date.now();
      gateways[index]!.kill("SIGTERM");
      const exit = await gateways[index]!.exited;
      const exitedMs = Date.now() - termAt;
      expect(exit.code, exit.stderr).toBe(0);
      await waitFor(() => onNode.every((client) => client.sessions.length > sessionsBefore.get(client)! && client.connected), 60_000, `clients of ${nodeId} moved`);
      const movedMs = Date.now() - termAt;

      const drained = onNode.map((client) => client.sessions[sessionsBefore.get(client)! - 1]!);
      for (const session of drained) {
        // Every client was told to reconnect, with a delay inside the grace period, and left by itself or on 1012.
        expect(session.reconnect).toMatchObject({ op: "reconnect", reason: "drain" });
        expect(session.reconnect!.afterMs as number).toBeGreaterThanOrEqual(0);
        expect(session.reconnect!.afterMs as number).toBeLessThanOrEqual(DRAIN_GRACE_MS);
        expect([1000, 1005, 1012]).toContain(session.closed!.code);
      }
      // Spread out, not one stampede.
      expect(new Set(drained.map((session) => session.reconnect!.afterMs)).size).toBeGreaterThan(1);
      for (const client of onNode) expect(client.current!.node, "reconnected to the other node").toBe(other);

      const restartAt = Date.now();
      const node = await ready(startNode("gateway", nodeId, ports.gateways[index]!));
      restarted.push(node);
      await waitUntilNginxRoutesTo(nodeId);
      timings.push(
        `${nodeId}: ${onNode.length} clients; exit 0 ${exitedMs} ms after SIGTERM; all moved to ${other} within ${movedMs} ms; ` +
          `1012 closes ${drained.filter((session) => session.closed!.code === 1012).length}; back in nginx rotation ${Date.now() - restartAt} ms after restart`,
      );
      // Events keep flowing between the two restarts.
      const next = publisher!.count + 50;
      await waitFor(() => publisher!.count >= next, 60_000, "events flowing after the restart");
    }

    const total = await expectEveryEventExactlyOnceInOrder(clients);
    console.log(`[multi-node] rolling restart (DRAIN_GRACE_MS ${DRAIN_GRACE_MS}): ${timings.join("; ")}; ${total} events, each delivered exactly once in order (${replayed(clients)} of them replayed by since)`);
  });
});
