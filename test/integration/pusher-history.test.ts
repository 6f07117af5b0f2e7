import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { authToken, channelAuthString } from "../../src/adapters/pusher/signatures.js";
import { DurableEnv } from "../support/durable-env.js";
import { appBackend, collect, connected, PUSHER_APP, pusherAppsEnv, pusherClient, subscribed } from "../support/pusher-clients.js";
import { suiteGateway } from "../support/suite-gateway.js";
import { signToken, startTestGateway, uniqueId, type TestGateway } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";

const NAMESPACES = JSON.stringify([
  { name: "orders", subscribe: "claim", durable: true, pusherSeq: true },
  { name: "feed", subscribe: "any", durable: true, pusherSeq: true },
  { name: "lobby", subscribe: "claim", durable: true, presence: true, pusherSeq: true },
]);

interface HistoryAnswer {
  events: Array<{ event: string; channel: string; data: string; user_id?: string }>;
  more: boolean;
  complete: boolean;
}

/** docs/pusher.md "Recovery": `__data` marks a wrapping, otherwise `__seq` is the one added member. */
function readSeqData(data: Record<string, unknown>): { seq: number; data: unknown } {
  const { __seq: seq, ...rest } = data;
  return { seq: seq as number, data: "__data" in data ? data.__data : rest };
}

// ROLE=all on a vhost and database of its own: the worker stores the events and assigns their seqs.
describe("Pusher history: seq inside data, and what a client missed by after_seq", () => {
  let env: DurableEnv;
  let node: TestGateway;

  beforeAll(async () => {
    env = await DurableEnv.create("pusherhist");
    node = await startTestGateway({ ...env.env, ROLE: "all", PUSHER_APPS: pusherAppsEnv(), NAMESPACES });
  }, 120_000);
  afterAll(async () => {
    await node?.stop();
    await env?.close();
  });

  const history = async (query: Record<string, string>, headers: Record<string, string> = {}): Promise<{ status: number; body: unknown }> => {
    const response = await fetch(`${node.httpUrl}/pusher/history?${new URLSearchParams(query)}`, { headers });
    return { status: response.status, body: await response.json() };
  };
  const stored = async (channel: string, count: number): Promise<Array<{ id: string; seq: number }>> => {
    await waitFor(async () => (await env.rows(channel)).length >= count, 15_000, `${count} events stored on ${channel}`);
    return env.rows(channel);
  };

  it("gives a real pusher-js subscriber each event's seq in data, and after a disconnect the events it missed, by after_seq, in pages", async () => {
    const id = uniqueId("o");
    const name = `private-orders.${id}`;
    const client = pusherClient(node.port);
    try {
      await connected(client);
      const { channel } = await subscribed(client, name);
      const received = collect(channel, "order.shipped") as Array<Record<string, unknown>>;
      await env.publishEvent(`orders:${id}`, uniqueId("e"), { n: 1 }, "order.shipped");
      await waitFor(() => received.length === 1, 15_000, "the live event");
      const [first] = await stored(`orders:${id}`, 1);
      expect(received[0]).toEqual({ n: 1, __seq: first!.seq });

      client.disconnect();
      await waitFor(() => client.connection.state === "disconnected");
      for (const n of [2, 3, 4]) await env.publishEvent(`orders:${id}`, uniqueId("e"), { n }, "order.shipped");
      const rows = await stored(`orders:${id}`, 4);

      client.connect();
      await connected(client);
      await waitFor(() => channel.subscribed, 10_000, "resubscribed");
      // What a browser has: its socket id and the auth its app's endpoint signed for it.
      const socketId = client.connection.socket_id;
      const proof = { socket_id: socketId, auth: appBackend.authorizeChannel(socketId, name).auth };
      const lastSeen = readSeqData(received.at(-1)!).seq;

      const page = await history({ channel: name, after_seq: String(lastSeen), limit: "2", ...proof });
      expect(page.status).toBe(200);
      const firstPage = page.body as HistoryAnswer;
      expect(firstPage.more).toBe(true);
      expect(firstPage.complete).toBe(true);
      expect(firstPage.events.map((event) => [event.event, event.channel])).toEqual([
        ["order.shipped", name],
        ["order.shipped", name],
      ]);
      const next = readSeqData(JSON.parse(firstPage.events[1]!.data) as Record<string, unknown>).seq;
      const rest = (await history({ channel: name, after_seq: String(next), ...proof })).body as HistoryAnswer;
      expect(rest.more).toBe(false);
      const missed = [...firstPage.events, ...rest.events].map((event) => readSeqData(JSON.parse(event.data) as Record<string, unknown>));
      expect(missed).toEqual(rows.slice(1).map((row, index) => ({ seq: row.seq, data: { n: index + 2 } })));

      // Our JWT is proof too, judged by the namespace's rule.
      const token = await signToken({ sub: "ada", channels: [`orders:${id}`] });
      const byToken = await history({ channel: name, after_seq: "0" }, { Authorization: `Bearer ${token}` });
      expect(byToken.status).toBe(200);
      expect((byToken.body as HistoryAnswer).events).toHaveLength(4);
    } finally {
      client.disconnect();
    }
  });

  it("serves a public channel without proof, a string's data wrapped, and a presence channel over the signed channel_data", async () => {
    const id = uniqueId("f");
    await env.publishEvent(`feed:${id}`, uniqueId("e"), "plain text", "note");
    const [row] = await stored(`feed:${id}`, 1);
    const feed = await history({ channel: `feed.${id}`, after_seq: "0" });
    expect(feed).toEqual({ status: 200, body: { events: [{ event: "note", channel: `feed.${id}`, data: JSON.stringify({ __seq: row!.seq, __data: "plain text" }) }], more: false, complete: true } });

    await env.publishEvent(`lobby:${id}`, uniqueId("e"), { hello: 1 }, "note");
    await stored(`lobby:${id}`, 1);
    const name = `presence-lobby.${id}`;
    const signed = appBackend.authorizeChannel("1.2", name, { user_id: "ada" });
    const lobby = await history({ channel: name, after_seq: "0", socket_id: "1.2", auth: signed.auth, channel_data: signed.channel_data! });
    expect(lobby.status).toBe(200);
    expect((lobby.body as HistoryAnswer).events).toHaveLength(1);
    const withoutData = await history({ channel: name, after_seq: "0", socket_id: "1.2", auth: signed.auth });
    expect(withoutData.status).toBe(400);
  });

  it.each([
    ["a signature by another secret", () => ({ socket_id: "1.2", auth: `${PUSHER_APP.key}:${"0".repeat(64)}` }), 401],
    ["another socket's signature", () => ({ socket_id: "1.3", auth: appBackend.authorizeChannel("1.2", "private-orders.x1").auth }), 401],
    ["no auth on a private channel", () => ({ socket_id: "1.2" }), 401],
    ["a bad socket_id", () => ({ socket_id: "abc", auth: authToken(PUSHER_APP, channelAuthString("abc", "private-orders.x1")) }), 400],
  ])("refuses %s", async (_case, proof, status) => {
    const answer = await history({ channel: "private-orders.x1", after_seq: "0", ...proof() });
    expect(answer.status).toBe(status);
    expect((answer.body as { error: { message: string } }).error.message).toMatch(/\w/);
  });

  it("refuses what it does not serve, bad numbers, too many at once, and a token the namespace refuses", async () => {
    const proof = { socket_id: "1.2", auth: appBackend.authorizeChannel("1.2", "private-orders.x1").auth };
    const refusal = async (query: Record<string, string>, headers?: Record<string, string>) => {
      const answer = await history(query, headers);
      return { status: answer.status, message: (answer.body as { error: { message: string } }).error.message };
    };
    expect(await refusal({ channel: "private-user.ada", after_seq: "0", socket_id: "1.2", auth: appBackend.authorizeChannel("1.2", "private-user.ada").auth })).toEqual({
      status: 400,
      message: 'private-user.ada: namespace "user" keeps no Pusher history (a durable namespace with pusherSeq: true does)',
    });
    expect((await refusal({ channel: "private-nope.1", after_seq: "0" })).status).toBe(404);
    for (const afterSeq of ["-1", "1.5", "abc", "99999999999999999"]) {
      expect(await refusal({ channel: "private-orders.x1", after_seq: afterSeq, ...proof }), afterSeq).toEqual({
        status: 400,
        message: "after_seq must be a whole number ≥ 0: the last seq the client has (0 for everything kept)",
      });
    }
    expect((await refusal({ channel: "private-orders.x1", ...proof })).status).toBe(400);
    for (const limit of ["101", "0"]) {
      expect(await refusal({ channel: "private-orders.x1", after_seq: "0", limit, ...proof }), limit).toEqual({ status: 400, message: "limit must be a whole number from 1 to 100" });
    }
    const stranger = await signToken({ sub: "eve", channels: ["orders:other"] });
    expect((await refusal({ channel: "private-orders.x1", after_seq: "0" }, { Authorization: `Bearer ${stranger}` })).status).toBe(403);
    expect((await refusal({ channel: "private-orders.x1", after_seq: "0" }, { Authorization: "Bearer not-a-jwt" })).status).toBe(401);
    expect((await refusal({ channel: "private-orders.x1", after_seq: "0", key: "no-such-key" })).status).toBe(404);
  });
});

describe("Pusher history on a gateway-only node without a store", () => {
  const gateway = suiteGateway({ PUSHER_APPS: pusherAppsEnv(), NAMESPACES, API_KEY_FAILURES_PER_MIN: "2" });

  it("answers 503 for a request it would serve, and 429 after too many bad signatures from the address", async () => {
    const get = async (query: Record<string, string>) => {
      const response = await fetch(`${gateway().httpUrl}/pusher/history?${new URLSearchParams(query)}`);
      return { status: response.status, body: (await response.json()) as { error: { message: string } } };
    };
    expect(await get({ channel: "feed.f1", after_seq: "0" })).toEqual({
      status: 503,
      body: { error: { code: "unavailable", message: "this node has no event store (DATABASE_URL): ask a node that has one" } },
    });
    const forged = { channel: "private-orders.x1", after_seq: "0", socket_id: "1.2", auth: `${PUSHER_APP.key}:${"0".repeat(64)}` };
    expect((await get(forged)).status).toBe(401);
    expect((await get(forged)).status).toBe(401);
    const blocked = await get({ ...forged, auth: appBackend.authorizeChannel("1.2", "private-orders.x1").auth });
    expect(blocked.status).toBe(429);
    expect(blocked.body.error.message).toBe("too many bad signatures from this address");
  });
});
