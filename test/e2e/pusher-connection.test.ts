import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeCodes, connected, pusherAppsEnv, pusherClient, PUSHER_APP, rawPusher } from "../support/pusher-clients.js";
import { startTestGateway, type TestGateway } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";

const API_KEY = "pusher-connection-api-key-0123456789";

describe("the Pusher endpoint: handshake, refusals and heartbeats", () => {
  let gateway: TestGateway;

  beforeAll(async () => {
    gateway = await startTestGateway({
      PUSHER_APPS: pusherAppsEnv({}, [
        { id: "app-off", key: "disabled-key", secret: "disabled-secret-0123456789", enabled: false },
        { id: "app-one", key: "one-connection-key", secret: "one-connection-secret-0123", maxConnections: 1 },
      ]),
      MAX_FRAME_BYTES: "4096",
      API_KEYS: API_KEY,
      HEARTBEAT_MS: "1000",
      PRESENCE_TTL_MS: "4000",
    });
  }, 60_000);
  afterAll(async () => {
    await gateway?.stop();
  });

  it("establishes a connection with a socket_id and an activity_timeout as JSON text, and answers pusher:ping", async () => {
    const raw = await rawPusher(gateway.port, `/app/${PUSHER_APP.key}?protocol=7&client=js&version=8.6.0`);
    await waitFor(() => raw.frames.length > 0);
    const established = raw.frames[0]!;
    expect(established.event).toBe("pusher:connection_established");
    expect(typeof established.data).toBe("string");
    const data = JSON.parse(established.data as string) as { socket_id: string; activity_timeout: number };
    expect(data.socket_id).toMatch(/^\d+\.\d+$/);
    // Half of PRESENCE_TTL_MS: the session closes a connection silent for the other half too.
    expect(data.activity_timeout).toBe(2);
    raw.socket.send(JSON.stringify({ event: "pusher:ping", data: {} }));
    await waitFor(() => raw.frames.some((frame) => frame.event === "pusher:pong"));
    raw.socket.close();
  });

  it("counts nobody online for a connection: its user is its own socket until it signs in", async () => {
    const raw = await rawPusher(gateway.port);
    await waitFor(() => raw.frames.length > 0);
    const socketId = (JSON.parse(raw.frames[0]!.data as string) as { socket_id: string }).socket_id;
    const user = `pusher-${socketId.replace(".", "-")}`;
    // A native request after the connection opened: the status it reads is the one the connection left.
    const response = await fetch(`${gateway.httpUrl}/api/v1/status?users=${user}`, { headers: { authorization: `Bearer ${API_KEY}` } });
    expect(await response.json()).toMatchObject({ users: [{ user, online: false }] });
    raw.socket.close();
  });

  it("answers bad input with pusher:error and keeps the socket", async () => {
    const raw = await rawPusher(gateway.port, `/app/${PUSHER_APP.key}?protocol=7`);
    raw.socket.send("not json");
    raw.socket.send(JSON.stringify({ event: "pusher:nonsense", data: {} }));
    raw.socket.send(JSON.stringify({ event: "pusher:subscribe", data: { channel: 7 } }));
    await waitFor(() => raw.frames.filter((frame) => frame.event === "pusher:error").length === 3);
    const messages = raw.frames.filter((frame) => frame.event === "pusher:error").map((frame) => (frame.data as { message: string }).message);
    expect(messages[0]).toBe("frame is not valid JSON");
    expect(messages[1]).toContain('unknown event "pusher:nonsense"');
    expect(messages[2]).toContain("pusher:subscribe");
    raw.socket.send(JSON.stringify({ event: "pusher:ping" }));
    await waitFor(() => raw.frames.some((frame) => frame.event === "pusher:pong"));
    raw.socket.close();
  });

  it("closes an unknown key with 4001, a disabled app with 4003, and a missing, malformed or old protocol with 4008, 4006, 4007", async () => {
    const codeOf = async (path: string): Promise<number> => (await rawPusher(gateway.port, path)).closed;
    expect(await codeOf(`/app/no-such-key?protocol=7`)).toBe(4001);
    expect(await codeOf(`/app/disabled-key?protocol=7`)).toBe(4003);
    expect(await codeOf(`/app/${PUSHER_APP.key}`)).toBe(4008);
    expect(await codeOf(`/app/${PUSHER_APP.key}?protocol=seven`)).toBe(4006);
    expect(await codeOf(`/app/${PUSHER_APP.key}?protocol=4`)).toBe(4007);
  });

  it("answers a frame over MAX_FRAME_BYTES with pusher:error and closes 1009, and a binary frame with pusher:error only", async () => {
    const raw = await rawPusher(gateway.port);
    raw.socket.send(Buffer.from([1, 2, 3]));
    await waitFor(() => raw.frames.some((frame) => frame.event === "pusher:error"));
    expect((raw.frames.find((frame) => frame.event === "pusher:error")!.data as { message: string }).message).toContain("binary");
    raw.send({ event: "client-big", channel: "private-user.x", data: "x".repeat(5_000) });
    expect(await raw.closed).toBe(1009);
    const errors = raw.frames.filter((frame) => frame.event === "pusher:error");
    expect((errors[1]!.data as { message: string }).message).toContain("over 4096");
  });

  it("closes a connection over the app's maxConnections with 4100, which pusher-js retries after a backoff", async () => {
    const first = await rawPusher(gateway.port, "/app/one-connection-key?protocol=7");
    await waitFor(() => first.frames.length > 0);
    const second = await rawPusher(gateway.port, "/app/one-connection-key?protocol=7");
    expect(await second.closed).toBe(4100);
    first.socket.close();
    await first.closed;
    // The slot is free again.
    const third = await rawPusher(gateway.port, "/app/one-connection-key?protocol=7");
    await waitFor(() => third.frames.some((frame) => frame.event === "pusher:connection_established"));
    third.socket.close();
  });

  it("pusher-js connects, and stops for good on an unknown key (4001)", async () => {
    const client = pusherClient(gateway.port);
    await connected(client);
    expect(client.connection.socket_id).toMatch(/^\d+\.\d+$/);
    client.disconnect();
    const unknown = pusherClient(gateway.port, { key: "no-such-key" });
    const codes = closeCodes(unknown);
    await waitFor(() => codes.includes(4001), 10_000, "closed with 4001");
    // 4000–4099 is final to pusher-js: it stays disconnected instead of retrying.
    expect(unknown.connection.state).toBe("disconnected");
    unknown.disconnect();
  });

  it("pings a silent connection (pusher:ping and a WebSocket ping) and closes it with 4201 when no pong comes", async () => {
    const raw = await rawPusher(gateway.port, `/app/${PUSHER_APP.key}?protocol=7`, { autoPong: false });
    // This client answers nothing: after activity_timeout it is pinged both ways, after the TTL closed.
    expect(await raw.closed).toBe(4201);
    expect(raw.frames.map((frame) => frame.event)).toContain("pusher:ping");
    expect(raw.pings.count).toBeGreaterThan(0);
    // Counted by Pusher's code, apart from the native closes (whose 4201 does not exist).
    const closed = async () => /sobranie_pusher_connections_closed_total\{code="4201"[^}]*\} [1-9]/.test(await (await fetch(`${gateway.httpUrl}/metrics`)).text());
    await waitFor(closed, 10_000, "the 4201 close counted");
  });

  it("keeps a connection that answers only the WebSocket pings, as every WebSocket stack does on its own", async () => {
    const raw = await rawPusher(gateway.port, `/app/${PUSHER_APP.key}?protocol=7`);
    let closedWith: number | undefined;
    void raw.closed.then((code) => (closedWith = code));
    // Pinged every activity_timeout (2 s) of silence: three pings span more than PRESENCE_TTL_MS (4 s).
    await waitFor(() => raw.pings.count >= 3 || closedWith !== undefined, 20_000, "three WebSocket pings");
    expect(closedWith).toBeUndefined();
    expect(raw.frames.filter((frame) => frame.event === "pusher:ping").length).toBeGreaterThanOrEqual(3);
    raw.socket.close();
  });
});
