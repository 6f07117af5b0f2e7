import type Echo from "laravel-echo";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { echoClient } from "../support/echo-clients.js";
import { pusherAppsEnv } from "../support/pusher-clients.js";
import { startTestGateway, type TestGateway } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";

const API_KEY = "pusher-echo-api-key-0123456789";
const NAMESPACES = JSON.stringify([
  { name: "orders", subscribe: "claim", publish: "none", durable: false, presence: false },
  { name: "huddle", subscribe: "claim", publish: "broadcast", durable: false, presence: true },
]);

describe("laravel-echo (broadcasters pusher and reverb) against the gateway", () => {
  let gateway: TestGateway;
  const echos: Array<Echo<"pusher">> = [];

  beforeAll(async () => {
    gateway = await startTestGateway({ PUSHER_APPS: pusherAppsEnv({ clientEvents: true }), API_KEYS: API_KEY, NAMESPACES });
  }, 60_000);
  afterAll(async () => {
    for (const instance of echos) instance.disconnect();
    await gateway?.stop();
  });

  // Reverb's front end (broadcaster reverb) names no cluster; it is otherwise the same set-up, unchanged but for host and key.
  it.each([
    { broadcaster: "pusher", order: 1 },
    { broadcaster: "reverb", order: 2 },
  ] as const)("with broadcaster $broadcaster listens on a private channel for a Laravel event published under its class name", async ({ broadcaster, order }) => {
    const app = echoClient(gateway.port, { user_id: "ada" }, broadcaster);
    echos.push(app);
    const shipped: unknown[] = [];
    let subscribed = false;
    app.private(`orders.o${order}`).subscribed(() => (subscribed = true)).listen("OrderShipped", (event: unknown) => shipped.push(event));
    await waitFor(() => subscribed, 10_000, `private-orders.o${order} subscribed`);
    const response = await fetch(`${gateway.httpUrl}/api/v1/publish`, {
      method: "POST",
      headers: { authorization: `Bearer ${API_KEY}` },
      // What Laravel's broadcaster names the event: its class, under Echo's default namespace App\Events.
      body: JSON.stringify({ channel: `orders:o${order}`, type: "App\\Events\\OrderShipped", data: { order: { id: order } } }),
    });
    expect(response.status).toBe(202);
    await waitFor(() => shipped.length === 1, 10_000, "OrderShipped");
    expect(shipped[0]).toEqual({ order: { id: order } });
  });

  it("joins a presence channel: here, joining, leaving, and whispers between members", async () => {
    const ada = echoClient(gateway.port, { user_id: "ada", user_info: { name: "Ada" } });
    const bob = echoClient(gateway.port, { user_id: "bob", user_info: { name: "Bob" } });
    echos.push(ada, bob);
    let here: unknown[] | undefined;
    const joined: unknown[] = [];
    const left: unknown[] = [];
    const whispers: unknown[] = [];
    ada
      .join("huddle.h1")
      .here((users: unknown[]) => (here = users))
      .joining((user: unknown) => joined.push(user))
      .leaving((user: unknown) => left.push(user))
      .listenForWhisper("typing", (data: unknown) => whispers.push(data));
    await waitFor(() => here !== undefined, 10_000, "here");
    expect(here).toEqual([{ name: "Ada" }]);
    let bobHere: unknown[] | undefined;
    const bobChannel = bob.join("huddle.h1").here((users: unknown[]) => (bobHere = users));
    await waitFor(() => bobHere !== undefined && joined.length === 1, 10_000, "bob joined");
    expect(joined[0]).toEqual({ name: "Bob" });
    expect(bobHere).toHaveLength(2);
    bobChannel.whisper("typing", { typing: true });
    await waitFor(() => whispers.length === 1, 10_000, "whisper");
    expect(whispers[0]).toEqual({ typing: true });
    bob.leave("huddle.h1");
    await waitFor(() => left.length === 1, 10_000, "bob left");
    expect(left[0]).toEqual({ name: "Bob" });
  });
});
