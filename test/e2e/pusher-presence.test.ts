import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayProcess } from "../support/gateway-process.js";
import { membersOn, type PresenceGateway, startPresenceGateway } from "../support/presence-gateways.js";
import { connected, pusherAppsEnv, pusherClient, subscribed, type PresenceChannel } from "../support/pusher-clients.js";
import { createRabbitVhost, type RabbitVhost } from "../support/rabbit-vhost.js";
import { uniqueId } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";

// Two gateway processes on a vhost of their own; pusher-js clients on both.
// PRESENCE_TTL_MS 3000: a node's death is seen within seconds, and pusher-js's
// activity_timeout is 1 s.
const ACROSS_NODES_MS = 15_000;

interface MemberEvent {
  readonly kind: "added" | "removed";
  readonly id: string;
  readonly info: unknown;
}

describe("Pusher presence across two gateway processes", () => {
  let vhost: RabbitVhost;
  let nodes: PresenceGateway[] = [];
  const clients: Array<{ disconnect(): void }> = [];
  const run = uniqueId("pp").slice(3);

  const join = async (node: PresenceGateway, userId: string, channelName: string) => {
    const client = pusherClient(node.port, { member: { user_id: userId, user_info: { name: userId } } });
    clients.push(client);
    await connected(client);
    const { channel, data } = await subscribed<PresenceChannel>(client, channelName);
    const events: MemberEvent[] = [];
    channel.bind("pusher:member_added", (member: { id: string; info: unknown }) => events.push({ kind: "added", id: member.id, info: member.info }));
    channel.bind("pusher:member_removed", (member: { id: string; info: unknown }) => events.push({ kind: "removed", id: member.id, info: member.info }));
    return { client, channel, data, events };
  };

  beforeAll(async () => {
    vhost = await createRabbitVhost("pusher-presence");
    const env = { PUSHER_APPS: pusherAppsEnv(), HEARTBEAT_MS: "300", PRESENCE_TTL_MS: "3000" };
    nodes = await Promise.all(["n1", "n2"].map((name) => startPresenceGateway(`${name}-${run}`, vhost.url, undefined, env)));
  }, 120_000);

  afterAll(async () => {
    for (const client of clients) client.disconnect();
    await GatewayProcess.killAll();
    await vhost?.drop();
  });

  it("lists members from both nodes on subscribe, and adds and removes a user on their first and last connection", async () => {
    const [n1, n2] = nodes as [PresenceGateway, PresenceGateway];
    const name = `presence-room.pp${run}`;
    const channel = `room:pp${run}`;
    const watcher = await join(n2, "watcher", name);
    expect(watcher.channel.members.count).toBe(1);
    expect(watcher.channel.members.me).toMatchObject({ id: "watcher", info: { name: "watcher" } });
    await waitFor(async () => (await membersOn(n1, channel)).includes("watcher"), ACROSS_NODES_MS, "n1 sees the watcher");

    const tab1 = await join(n1, "alice", name);
    expect(tab1.channel.members.count).toBe(2);
    expect(tab1.data).toBe(tab1.channel.members);
    const listed: string[] = [];
    tab1.channel.members.each((member: { id: string }) => listed.push(member.id));
    expect(listed.sort()).toEqual(["alice", "watcher"]);
    await waitFor(() => watcher.events.length === 1, ACROSS_NODES_MS, "member_added on the other node");
    expect(watcher.events[0]).toEqual({ kind: "added", id: "alice", info: { name: "alice" } });

    // A second connection of the same user is no new member; closing one of two removes nobody.
    const tab2 = await join(n2, "alice", name);
    expect(tab2.channel.members.count).toBe(2);
    tab1.client.disconnect();
    await waitFor(async () => (await membersOn(n1, channel)).length === 2 && (await membersOn(n2, channel)).length === 2, ACROSS_NODES_MS);
    tab2.client.disconnect();
    await waitFor(() => watcher.events.length === 2, ACROSS_NODES_MS, "member_removed on the last connection");
    expect(watcher.events[1]).toMatchObject({ kind: "removed", id: "alice" });
    expect(watcher.channel.members.count).toBe(1);
  });

  it("removes the members of a node that dies, leaving no ghost", async () => {
    const [n1, n2] = nodes as [PresenceGateway, PresenceGateway];
    const name = `presence-room.ghost${run}`;
    const channel = `room:ghost${run}`;
    const watcher = await join(n2, "watcher", name);
    await join(n1, "bob", name);
    await waitFor(() => watcher.events.some((event) => event.kind === "added" && event.id === "bob"), ACROSS_NODES_MS, "bob added");
    n1.process.kill("SIGKILL");
    await waitFor(() => watcher.events.some((event) => event.kind === "removed" && event.id === "bob"), ACROSS_NODES_MS, "bob removed after n1 died");
    expect(await membersOn(n2, channel)).toEqual(["watcher"]);
    expect(watcher.channel.members.count).toBe(1);
  });
});
