import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { presenceConnectionName } from "../../src/adapters/amqp/amqp-presence-bus.js";
import { connectionName } from "../../src/adapters/amqp/topology.js";
import { GatewayProcess } from "../support/gateway-process.js";
import {
  ACROSS_NODES_MS,
  BackendPresenceWatch,
  membersOn,
  PRESENCE_HEARTBEAT_MS,
  PRESENCE_TTL_MS,
  type PresenceGateway,
  startPresenceGateway,
  statusOn,
} from "../support/presence-gateways.js";
import { closeConnectionsNamed, createRabbitVhost, type RabbitVhost } from "../support/rabbit-vhost.js";
import { signToken, uniqueId } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";
import { TestClient, type Frame } from "../support/ws-client.js";

// Three gateway processes on a vhost of their own (docs/protocol.md §3 presence).

describe("presence across three gateway processes on RabbitMQ", () => {
  let vhost: RabbitVhost;
  let nodes: PresenceGateway[] = [];
  let backend: BackendPresenceWatch;
  const clients: TestClient[] = [];
  const silent = new Set<TestClient>();
  let pinger: NodeJS.Timeout | undefined;
  const run = uniqueId("pc").slice(3);

  const connect = async (node: PresenceGateway, sub: string, options: { silent?: boolean } = {}): Promise<TestClient> => {
    const client = await TestClient.connect(node.wsUrl, { token: await signToken({ sub, channels: ["room:*"], info: { name: sub } }) });
    clients.push(client);
    if (options.silent) silent.add(client);
    return client;
  };
  const presenceFrames = (client: TestClient, channel: string): Frame[] =>
    client.frames.filter((frame) => (frame.op === "join" || frame.op === "leave") && frame.channel === channel);

  beforeAll(async () => {
    vhost = await createRabbitVhost("presence-cluster");
    // Ids in this order: n1 publishes backend events while it lives.
    nodes = await Promise.all(["n1", "n2", "n3"].map((name) => startPresenceGateway(`${name}-${run}`, vhost.url)));
    backend = await BackendPresenceWatch.open(vhost.url);
    // Every client but the "silent" ones heartbeats with WebSocket pings.
    pinger = setInterval(() => {
      for (const client of clients) if (!silent.has(client) && client.socket.readyState === client.socket.OPEN) client.socket.ping();
    }, PRESENCE_HEARTBEAT_MS);
    // The nodes hear each other before the tests start.
    await waitFor(async () => {
      const probe = await connect(nodes[0]!, "probe");
      const seen = await Promise.all(nodes.map((node) => statusOn(node, "probe")));
      probe.close();
      return seen.every(Boolean);
    }, 30_000, "nodes see each other");
  }, 120_000);

  afterEach(() => {
    for (const client of clients) if (silent.has(client)) client.close();
  });

  afterAll(async () => {
    if (pinger) clearInterval(pinger);
    for (const client of clients) client.close();
    await backend?.close();
    await GatewayProcess.killAll();
    await vhost?.drop();
  });

  it("shows join and leave on every node, a user with tabs on two nodes being one member, each backend event once", async () => {
    const [n1, n2, n3] = nodes as [PresenceGateway, PresenceGateway, PresenceGateway];
    const channel = `room:mt${run}`;
    const key = `presence.room.mt${run}`;
    const watcher = await connect(n3, "watcher");
    await watcher.request({ op: "subscribe", channel });
    const tab1 = await connect(n1, `alice${run}`);
    const tab2 = await connect(n2, `alice${run}`);
    const startedAt = Date.now();
    await tab1.request({ op: "subscribe", channel, presence: true });
    await watcher.next((frame) => frame.op === "join", ACROSS_NODES_MS);
    const joinMs = Date.now() - startedAt;
    await tab2.request({ op: "subscribe", channel, presence: true });
    for (const node of nodes) await waitFor(async () => (await membersOn(node, channel)).join() === `alice${run}`, ACROSS_NODES_MS, `member on ${node.id}`);
    // Nothing visible says n2's hold reached the others (alice was already a
    // member); n2's next heartbeat follows its delta on the same route, so two
    // heartbeats later every node has it. Without this wait, n1's remove could
    // overtake n2's add (different publishers) and the test would see a leave.
    await new Promise((resolve) => setTimeout(resolve, 2 * PRESENCE_HEARTBEAT_MS));
    tab1.close();
    await waitFor(async () => (await tab1.closed) !== undefined, ACROSS_NODES_MS);
    // The other tab still holds alice everywhere.
    for (const node of nodes) expect(await membersOn(node, channel)).toEqual([`alice${run}`]);
    tab2.close();
    await watcher.next((frame) => frame.op === "leave", ACROSS_NODES_MS);
    for (const node of nodes) await waitFor(async () => (await membersOn(node, channel)).length === 0, ACROSS_NODES_MS, `gone on ${node.id}`);
    expect(presenceFrames(watcher, channel).map((frame) => frame.op)).toEqual(["join", "leave"]);
    await waitFor(() => backend.keys(key).length === 2 && backend.keys(`status.alice${run}.`).length === 2, ACROSS_NODES_MS, "backend events");
    expect(backend.keys(key)).toEqual([`${key}.join`, `${key}.leave`]);
    expect(backend.keys(`status.alice${run}.`)).toEqual([`presence.status.alice${run}.online`, `presence.status.alice${run}.offline`]);
    console.info(`presence join across nodes: ${joinMs} ms`);
  });

  it("never routes presence backend events to clients as events", async () => {
    const channel = `room:mt${run}`;
    const watcher = await connect(nodes[1]!, "watcher-ev");
    await watcher.request({ op: "subscribe", channel });
    const joiner = await connect(nodes[0]!, `erin${run}`);
    await joiner.request({ op: "subscribe", channel, presence: true });
    await watcher.next((frame) => frame.op === "join", ACROSS_NODES_MS);
    await waitFor(() => backend.keys(`status.erin${run}.online`).length === 1, ACROSS_NODES_MS, "backend online");
    joiner.close();
    await watcher.next((frame) => frame.op === "leave", ACROSS_NODES_MS);
    expect(watcher.frames.filter((frame) => frame.op === "event")).toEqual([]);
  });

  it("ends a silent client's presence with close 4008 and a leave on the other nodes", async () => {
    const channel = `room:ttl${run}`;
    const watcher = await connect(nodes[0]!, "watcher-ttl");
    await watcher.request({ op: "subscribe", channel });
    const quiet = await connect(nodes[1]!, `bob${run}`, { silent: true });
    await quiet.request({ op: "subscribe", channel, presence: true });
    await watcher.next((frame) => frame.op === "join", ACROSS_NODES_MS);
    expect((await quiet.closed).code).toBe(4008);
    expect(await watcher.next((frame) => frame.op === "leave", ACROSS_NODES_MS)).toMatchObject({ user: `bob${run}` });
    await waitFor(async () => !(await statusOn(nodes[2]!, `bob${run}`)), ACROSS_NODES_MS, "offline on n3");
  });

  it("converges again after a node's broker connections are dropped and restored", async () => {
    const [n1, n2] = nodes as [PresenceGateway, PresenceGateway, PresenceGateway];
    const channel = `room:rc${run}`;
    const before = await connect(n2, `carol${run}`);
    await before.request({ op: "subscribe", channel, presence: true });
    await waitFor(async () => (await membersOn(n1, channel)).length === 1, ACROSS_NODES_MS, "carol seen on n1");
    expect(await closeConnectionsNamed(presenceConnectionName(n2.id))).toBeGreaterThan(0);
    expect(await closeConnectionsNamed(`${presenceConnectionName(n2.id)}-publish`)).toBeGreaterThan(0);
    await closeConnectionsNamed(connectionName(n2.id));
    // Changes on n2 while (or just after) it is cut off: the others learn them through the resync.
    before.close();
    const after = await connect(n2, `frank${run}`);
    await after.request({ op: "subscribe", channel, presence: true }, 30_000);
    for (const node of nodes) await waitFor(async () => (await membersOn(node, channel)).join() === `frank${run}`, 30_000, `converged on ${node.id}`);
  });

  it("removes a SIGKILLed node's members on the survivors within TTL plus a heartbeat, each leave published once", async () => {
    const [n1, n2, n3] = nodes as [PresenceGateway, PresenceGateway, PresenceGateway];
    const channel = `room:kill${run}`;
    const key = `presence.room.kill${run}`;
    const watcher2 = await connect(n2, "watcher-k2");
    const watcher3 = await connect(n3, "watcher-k3");
    await watcher2.request({ op: "subscribe", channel });
    await watcher3.request({ op: "subscribe", channel });
    const users = [`dave${run}`, `gina${run}`];
    for (const user of users) {
      const client = await connect(n1, user);
      await client.request({ op: "subscribe", channel, presence: true });
    }
    for (const node of [n2, n3]) await waitFor(async () => (await membersOn(node, channel)).length === 2, ACROSS_NODES_MS, `members on ${node.id}`);
    await waitFor(() => backend.keys(`${key}.join`).length === 2, ACROSS_NODES_MS, "joins published");
    // n1 is the node publishing backend events: after its death n2 takes over.
    const killedAt = Date.now();
    n1.process.kill("SIGKILL");
    await n1.process.exited;
    for (const watcher of [watcher2, watcher3]) {
      await watcher.next((frame) => frame.op === "leave", PRESENCE_TTL_MS + PRESENCE_HEARTBEAT_MS + ACROSS_NODES_MS);
      await watcher.next((frame) => frame.op === "leave", ACROSS_NODES_MS);
    }
    const goneMs = Date.now() - killedAt;
    for (const node of [n2, n3]) expect(await membersOn(node, channel)).toEqual([]);
    await waitFor(() => backend.keys(`${key}.leave`).length === 2, ACROSS_NODES_MS, "leaves published");
    await waitFor(() => users.every((user) => backend.keys(`status.${user}.offline`).length === 1), ACROSS_NODES_MS, "offlines published");
    // Nothing more arrives for them (each once, not once per survivor).
    await new Promise((resolve) => setTimeout(resolve, 3 * PRESENCE_HEARTBEAT_MS));
    expect(backend.keys(`${key}.leave`).sort()).toEqual([`${key}.leave`, `${key}.leave`]);
    const leaveUsers = backend.events.filter((event) => event.routingKey === `${key}.leave`).map((event) => event.body.data.user).sort();
    expect(leaveUsers).toEqual(users);
    for (const user of users) expect(backend.keys(`status.${user}.offline`)).toHaveLength(1);
    console.info(`presence after SIGKILL: members gone on survivors after ${goneMs} ms (TTL ${PRESENCE_TTL_MS} ms, heartbeat ${PRESENCE_HEARTBEAT_MS} ms)`);
  });
});
