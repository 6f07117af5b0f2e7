import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestPublisher } from "../support/amqp-tools.js";
import { appBackend, connected, pusherAppsEnv, pusherClient, rawPusher, type RawPusher } from "../support/pusher-clients.js";
import { RABBITMQ_URL, startTestGateway, type TestGateway } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";

/** A raw socket's socket_id (from its connection_established). */
async function socketIdOf(raw: RawPusher): Promise<string> {
  await waitFor(() => raw.frames.length > 0);
  return (JSON.parse(raw.frames[0]!.data as string) as { socket_id: string }).socket_id;
}

const lastOf = (raw: RawPusher, event: string) => raw.frames.filter((frame) => frame.event === event).at(-1);

// ROLE=all: `user:` is durable, so its events go through this process's worker.
describe("pusher:signin and #server-to-user-", () => {
  let gateway: TestGateway;
  let publisher: TestPublisher;
  const sockets: RawPusher[] = [];

  beforeAll(async () => {
    gateway = await startTestGateway({ PUSHER_APPS: pusherAppsEnv(), ROLE: "all", ...(process.env.DATABASE_URL ? { DATABASE_URL: process.env.DATABASE_URL } : {}) });
    publisher = await TestPublisher.open(RABBITMQ_URL);
  }, 120_000);
  afterAll(async () => {
    for (const raw of sockets) raw.socket.close();
    await publisher?.close();
    await gateway?.stop();
  });

  it("signs pusher-js in, and the user's events on user:<id> reach it on #server-to-user-<id>", async () => {
    const client = pusherClient(gateway.port, { user: { id: "ada", user_info: { name: "Ada" } } });
    await connected(client);
    client.signin();
    await waitFor(() => client.user.serverToUserChannel?.subscribed === true, 10_000, "signed in and subscribed");
    expect(client.user.user_data).toEqual({ id: "ada", user_info: { name: "Ada" } });
    const received: unknown[] = [];
    client.user.bind("invoice.paid", (data: unknown) => received.push(data));
    await publisher.publish("user.ada.invoice.paid", { type: "invoice.paid", data: { amount: 12 } });
    await waitFor(() => received.length === 1, 15_000, "the user's event");
    expect(received[0]).toEqual({ amount: 12 });
    client.disconnect();
  });

  it("refuses a forged signin, and #server-to-user- of anyone but the signed-in user", async () => {
    const raw = await rawPusher(gateway.port);
    sockets.push(raw);
    const socketId = await socketIdOf(raw);
    raw.send({ event: "pusher:subscribe", data: { channel: "#server-to-user-ada", auth: "" } });
    await waitFor(() => lastOf(raw, "pusher:subscription_error") !== undefined);
    expect(lastOf(raw, "pusher:subscription_error")!.data).toMatchObject({ type: "AuthError", status: 403, error: expect.stringContaining("sign in") });

    const forged = { ...appBackend.authenticateUser(socketId, { id: "ada" }), user_data: JSON.stringify({ id: "root" }) };
    raw.send({ event: "pusher:signin", data: forged });
    await waitFor(() => lastOf(raw, "pusher:error") !== undefined);
    expect((lastOf(raw, "pusher:error")!.data as { message: string }).message).toContain("signature");

    raw.send({ event: "pusher:signin", data: appBackend.authenticateUser(socketId, { id: "ada" }) });
    await waitFor(() => lastOf(raw, "pusher:signin_success") !== undefined);
    expect(JSON.parse(lastOf(raw, "pusher:signin_success")!.data as string)).toEqual({ user_data: JSON.stringify({ id: "ada" }) });
    raw.send({ event: "pusher:subscribe", data: { channel: "#server-to-user-bob", auth: "" } });
    await waitFor(() => raw.frames.filter((frame) => frame.event === "pusher:subscription_error").length === 2);
    expect((lastOf(raw, "pusher:subscription_error")!.data as { error: string }).error).toContain("#server-to-user-ada");
    raw.send({ event: "pusher:subscribe", data: { channel: "#server-to-user-ada", auth: "" } });
    await waitFor(() => lastOf(raw, "pusher_internal:subscription_succeeded")?.channel === "#server-to-user-ada");
  });
});
