import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestPublisher } from "../support/amqp-tools.js";
import PusherServer from "pusher";
import { appBackend, closeCodes, connected, PUSHER_APP, pusherAppsEnv, pusherClient, rawPusher, type RawPusher } from "../support/pusher-clients.js";
import { RABBITMQ_URL, startTestGateway, type TestGateway } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";

/** A raw socket's socket_id (from its connection_established). */
async function socketIdOf(raw: RawPusher): Promise<string> {
  await waitFor(() => raw.frames.length > 0);
  return (JSON.parse(raw.frames[0]!.data as string) as { socket_id: string }).socket_id;
}

const API_KEY = "pusher-signin-api-key-0123456789";
/** An app with Pusher's "authorized connections": a connection must sign in within a second. */
const AUTHORIZED_APP = { id: "app-authorized", key: "authorized-key", secret: "authorized-secret-0123456789", signinTimeoutMs: 1000 };

const lastOf = (raw: RawPusher, event: string) => raw.frames.filter((frame) => frame.event === event).at(-1);

// ROLE=all: `user:` is durable, so its events go through this process's worker.
describe("pusher:signin and #server-to-user-", () => {
  let gateway: TestGateway;
  let publisher: TestPublisher;
  const sockets: RawPusher[] = [];

  beforeAll(async () => {
    gateway = await startTestGateway({ PUSHER_APPS: pusherAppsEnv({}, [AUTHORIZED_APP]), API_KEYS: API_KEY, ROLE: "all", ...(process.env.DATABASE_URL ? { DATABASE_URL: process.env.DATABASE_URL } : {}) });
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

  it("closes a connection of an app with signinTimeoutMs that has not signed in by then with 4009, and keeps one that has", async () => {
    const signer = new PusherServer({ appId: AUTHORIZED_APP.id, key: AUTHORIZED_APP.key, secret: AUTHORIZED_APP.secret, host: "127.0.0.1", useTLS: false });
    const path = `/app/${AUTHORIZED_APP.key}?protocol=7`;
    const signed = await rawPusher(gateway.port, path);
    sockets.push(signed);
    signed.send({ event: "pusher:signin", data: signer.authenticateUser(await socketIdOf(signed), { id: "ada" }) });
    await waitFor(() => lastOf(signed, "pusher:signin_success") !== undefined);
    // Opened after the signed one: its deadline comes later, so once it is closed the signed one's has passed too.
    const unsigned = await rawPusher(gateway.port, path);
    sockets.push(unsigned);
    expect(await unsigned.closed).toBe(4009);
    expect(unsigned.frames.map((frame) => frame.event)).toEqual(["pusher:connection_established"]);
    expect(signed.socket.readyState).toBe(signed.socket.OPEN);
    // The signed-in connection still works.
    signed.send({ event: "pusher:ping", data: {} });
    await waitFor(() => lastOf(signed, "pusher:pong") !== undefined);
  });

  it("makes the signed-in connection its user's: online in their status while open, and closed by terminate_connections (4009)", async () => {
    const online = async (user: string): Promise<boolean> => {
      const response = await fetch(`${gateway.httpUrl}/api/v1/status?users=${user}`, { headers: { authorization: `Bearer ${API_KEY}` } });
      return ((await response.json()) as { users: Array<{ online: boolean }> }).users[0]!.online;
    };
    const grace = pusherClient(gateway.port, { user: { id: "grace" } });
    const hopper = pusherClient(gateway.port, { user: { id: "hopper" } });
    const graceCodes = closeCodes(grace);
    await Promise.all([connected(grace), connected(hopper)]);
    expect(await online("grace")).toBe(false);
    grace.signin();
    hopper.signin();
    await waitFor(() => grace.user.user_data !== null && hopper.user.user_data !== null, 10_000, "both signed in");
    await waitFor(() => online("grace"), 10_000, "grace online");

    // The backend's own SDK asks the gateway to terminate grace's connections.
    const backend = new PusherServer({ appId: PUSHER_APP.id, key: PUSHER_APP.key, secret: PUSHER_APP.secret, host: "127.0.0.1", port: String(gateway.port), useTLS: false });
    expect((await backend.terminateUserConnections("grace")).status).toBe(200);
    await waitFor(() => graceCodes.includes(4009), 15_000, "grace's connection closed with 4009");
    await waitFor(async () => !(await online("grace")), 10_000, "grace offline");
    // Only grace's: hopper, signed in on the same app, stays.
    expect(hopper.connection.state).toBe("connected");
    expect(await online("hopper")).toBe(true);
    hopper.disconnect();
    grace.disconnect();
  });
});
