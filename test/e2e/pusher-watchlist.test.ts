import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayProcess } from "../support/gateway-process.js";
import { type PresenceGateway, startPresenceGateway, statusOn } from "../support/presence-gateways.js";
import { appBackend, connected, pusherAppsEnv, pusherClient, rawPusher, subscribed, type RawPusher } from "../support/pusher-clients.js";
import { createRabbitVhost, type RabbitVhost } from "../support/rabbit-vhost.js";
import { signToken, uniqueId } from "../support/test-gateway.js";
import { TestClient } from "../support/ws-client.js";
import { waitFor } from "../support/wait-for.js";

// Two gateway processes on a vhost of their own: the watcher on n1, the
// watched users on n2, so every change crosses the presence bus.
// PRESENCE_TTL_MS 3000: pusher-js's activity_timeout is 1 s.
const ACROSS_NODES_MS = 15_000;

interface WatchlistEvent {
  readonly name: string;
  readonly user_ids: string[];
}

describe("Pusher watchlist online/offline events across two gateway processes", () => {
  let vhost: RabbitVhost;
  let nodes: PresenceGateway[] = [];
  const clients: Array<{ disconnect(): void }> = [];
  const sockets: RawPusher[] = [];
  const run = uniqueId("wl").slice(3);

  /** A pusher-js client on `node` signed in as `id`; with `watchlist`, every watchlist event it got, in order. */
  const signedIn = async (node: PresenceGateway, id: string, watchlist?: string[]) => {
    const client = pusherClient(node.port, { user: watchlist === undefined ? { id } : { id, watchlist } });
    clients.push(client);
    const events: WatchlistEvent[] = [];
    for (const name of ["online", "offline"]) client.user.watchlist.bind(name, (event: WatchlistEvent) => events.push(event));
    await connected(client);
    client.signin();
    await waitFor(() => client.user.user_data !== null, 10_000, `${id} signed in`);
    return { client, events };
  };

  beforeAll(async () => {
    vhost = await createRabbitVhost("pusher-watchlist");
    const env = { PUSHER_APPS: pusherAppsEnv(), HEARTBEAT_MS: "300", PRESENCE_TTL_MS: "3000" };
    nodes = await Promise.all(["n1", "n2"].map((name) => startPresenceGateway(`${name}-${run}`, vhost.url, undefined, env)));
  }, 120_000);

  afterAll(async () => {
    for (const client of clients) client.disconnect();
    for (const raw of sockets) raw.socket.close();
    await GatewayProcess.killAll();
    await vhost?.drop();
  });

  it("sends the watched users online at signin, then each one's online and offline as their Pusher connections come and go on another node", async () => {
    const [n1, n2] = nodes as [PresenceGateway, PresenceGateway];
    const [a, b, c] = [`a${run}`, `b${run}`, `c${run}`];
    await signedIn(n2, b);
    await waitFor(() => statusOn(n1, b), ACROSS_NODES_MS, "n1 sees b online");

    const watcher = await signedIn(n1, `watcher${run}`, [a, b, c]);
    await waitFor(() => watcher.events.length === 1, ACROSS_NODES_MS, "the initial online event");
    expect(watcher.events[0]).toEqual({ name: "online", user_ids: [b] });
    // Watching is no subscription: the watcher may still subscribe to b's status channel itself.
    await subscribed(watcher.client, `status.${b}`);

    const tab = await signedIn(n2, a);
    await waitFor(() => watcher.events.length === 2, ACROSS_NODES_MS, "a online");
    expect(watcher.events[1]).toEqual({ name: "online", user_ids: [a] });
    tab.client.disconnect();
    await waitFor(() => watcher.events.length === 3, ACROSS_NODES_MS, "a offline");
    expect(watcher.events[2]).toEqual({ name: "offline", user_ids: [a] });
  });

  it("sees a native protocol connection of a watched user come and go (status is one across protocols)", async () => {
    const [n1, n2] = nodes as [PresenceGateway, PresenceGateway];
    const native = `native${run}`;
    const watcher = await signedIn(n1, `watcher2${run}`, [native, native]);
    const client = await TestClient.connect(n2.wsUrl, { token: await signToken({ sub: native }) });
    await waitFor(() => watcher.events.length === 1, ACROSS_NODES_MS, "the native user online");
    expect(watcher.events[0]).toEqual({ name: "online", user_ids: [native] });
    client.close();
    await waitFor(() => watcher.events.length === 2, ACROSS_NODES_MS, "the native user offline");
    expect(watcher.events[1]).toEqual({ name: "offline", user_ids: [native] });
  });

  it("refuses a signin whose watchlist is not an array, has over 100 ids or an id outside the grammar, and the socket stays", async () => {
    const [n1] = nodes as [PresenceGateway];
    const raw = await rawPusher(n1.port);
    sockets.push(raw);
    await waitFor(() => raw.frames.length > 0);
    const socketId = (JSON.parse(raw.frames[0]!.data as string) as { socket_id: string }).socket_id;
    const errors = () => raw.frames.filter((frame) => frame.event === "pusher:error").map((frame) => (frame.data as { message: string }).message);
    const refusals: Array<[unknown, string]> = [
      ["b", "user_data.watchlist must be an array of user ids"],
      [Array.from({ length: 101 }, (_, index) => `u${index}`), "user_data.watchlist has 101 user ids; at most 100"],
      [["ok", "not.a-user"], "user_data.watchlist[1] must be a string"],
    ];
    for (const [watchlist, message] of refusals) {
      const before = errors().length;
      raw.send({ event: "pusher:signin", data: appBackend.authenticateUser(socketId, { id: "refused", watchlist }) });
      await waitFor(() => errors().length === before + 1, 10_000, `refused: ${message}`);
      expect(errors().at(-1)).toContain(message);
    }
    expect(raw.frames.some((frame) => frame.event === "pusher:signin_success")).toBe(false);
    // Nothing was signed in by the refused ones: a good signin on the same socket is taken.
    raw.send({ event: "pusher:signin", data: appBackend.authenticateUser(socketId, { id: "refused", watchlist: [] }) });
    await waitFor(() => raw.frames.some((frame) => frame.event === "pusher:signin_success"), 10_000, "the good signin");
  });
});
