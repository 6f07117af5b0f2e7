import amqp from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../support/wait-for.js";
import { suiteGatewayBehindProxy } from "../support/suite-gateway.js";
import { RABBITMQ_URL, signToken, startTestGateway, uniqueId, type TestGateway } from "../support/test-gateway.js";
import { TestClient } from "../support/ws-client.js";

const NAMESPACES = JSON.stringify([{ name: "typing", subscribe: "any", publish: "broadcast" }]);

describe("client publish", () => {
  let gateway: TestGateway;
  let backend: amqp.ChannelModel;

  beforeAll(async () => {
    gateway = await startTestGateway({ NAMESPACES });
    backend = await amqp.connect(RABBITMQ_URL);
  });

  afterAll(async () => {
    await gateway?.stop();
    await backend?.close();
  });

  /** A backend's queue on `sobranie.events` for client publishes to one room. */
  async function backendQueue(room: string): Promise<amqp.ConsumeMessage[]> {
    const channel = await backend.createChannel();
    const { queue } = await channel.assertQueue("", { exclusive: true });
    await channel.bindQueue(queue, "sobranie.events", `client.room.${room}.#`);
    const received: amqp.ConsumeMessage[] = [];
    await channel.consume(queue, (message) => message && received.push(message), { noAck: true });
    return received;
  }

  it("publishes to sobranie.events as client.<ns>.<id>.<type>, with the sender set by the gateway, ok only after the confirm", async () => {
    const room = uniqueId("r");
    const received = await backendQueue(room);
    const client = await TestClient.connect(gateway.wsUrl, { token: await signToken({ sub: "alice", channels: [`room:${room}`] }) });
    const reply = await client.request({ op: "publish", channel: `room:${room}`, type: "chat.message", data: { text: "hi" }, user: "mallory" });
    expect(reply).toMatchObject({ op: "ok", id: expect.any(String) });
    await waitFor(() => received.length === 1);
    const message = received[0]!;
    expect(message.fields.routingKey).toBe(`client.room.${room}.chat.message`);
    expect(message.properties.messageId).toBe(reply.id);
    expect(JSON.parse(message.content.toString())).toMatchObject({ id: reply.id, type: "chat.message", data: { text: "hi" }, user: "alice" });
    client.close();
  });

  it("refuses publishes the namespace or the token does not allow, and bad types", async () => {
    const client = await TestClient.connect(gateway.wsUrl, { token: await signToken({ channels: ["room:1"] }) });
    expect(await client.request({ op: "publish", channel: "post:1", type: "t", data: {} })).toMatchObject({ code: "forbidden" });
    expect(await client.request({ op: "publish", channel: "room:2", type: "t", data: {} })).toMatchObject({ code: "forbidden" });
    expect(await client.request({ op: "publish", channel: "room:1", type: "a.*", data: {} })).toMatchObject({ code: "bad_request" });
    expect(await client.request({ op: "publish", channel: "room:1", type: "t" })).toMatchObject({ code: "bad_request" });
    client.close();
  });

  it("refuses data nested over 64 levels with bad_request, publishing nothing, and takes 64", async () => {
    const room = uniqueId("r");
    const received = await backendQueue(room);
    const client = await TestClient.connect(gateway.wsUrl, { token: await signToken({ channels: [`room:${room}`] }) });
    // About 20 KB: far under the frame limit, deep enough to overflow JSON.stringify.
    client.sendRaw(`{"op":"publish","ref":900,"channel":"room:${room}","type":"t","data":${"[".repeat(10_000)}${"]".repeat(10_000)}}`);
    expect(await client.next((f) => f.ref === 900)).toMatchObject({
      op: "error",
      code: "bad_request",
      message: expect.stringContaining("more than 64 levels deep"),
    });
    const atLimit = JSON.parse(`${"[".repeat(64)}${"]".repeat(64)}`) as unknown;
    expect(await client.request({ op: "publish", channel: `room:${room}`, type: "t", data: atLimit })).toMatchObject({ op: "ok" });
    await waitFor(() => received.length === 1);
    expect(JSON.parse(received[0]!.content.toString())).toMatchObject({ type: "t", data: atLimit });
    client.close();
  });

  it("refuses with too_large a frame under the limit whose event would be over 64 KiB as published, publishing nothing", async () => {
    const room = uniqueId("r");
    const received = await backendQueue(room);
    const client = await TestClient.connect(gateway.wsUrl, { token: await signToken({ channels: [`room:${room}`] }) });
    // 16,000 × "1e9" is a 64 KB frame; re-serialized as 1000000000 each, the envelope is about 176 KB.
    const data = `[${Array.from({ length: 16_000 }, () => "1e9").join(",")}]`;
    client.sendRaw(`{"op":"publish","ref":901,"channel":"room:${room}","type":"t","data":${data}}`);
    expect(await client.next((f) => f.ref === 901)).toMatchObject({ op: "error", code: "too_large", message: expect.stringContaining("65536") });
    expect(await client.request({ op: "publish", channel: `room:${room}`, type: "t", data: { small: true } })).toMatchObject({ op: "ok" });
    await waitFor(() => received.length === 1);
    expect(JSON.parse(received[0]!.content.toString())).toMatchObject({ data: { small: true } });
    client.close();
  });

  it("broadcasts straight to subscribers in a broadcast namespace", async () => {
    const id = uniqueId("t");
    const listener = await TestClient.connect(gateway.wsUrl, { token: await signToken({ sub: "bob" }) });
    await listener.request({ op: "subscribe", channel: `typing:${id}` });
    const typist = await TestClient.connect(gateway.wsUrl, { token: await signToken({ sub: "alice" }) });
    const reply = await typist.request({ op: "publish", channel: `typing:${id}`, type: "typing.started", data: {} });
    expect(await listener.next((f) => f.op === "event")).toMatchObject({ channel: `typing:${id}`, id: reply.id, type: "typing.started" });
    listener.close();
    typist.close();
  });
});

describe("while the broker is away", () => {
  const { gateway, proxy } = suiteGatewayBehindProxy({ NAMESPACES });

  it("answers publishes with unavailable and /readyz with 503, then recovers bindings and publishing", async () => {
    const id = uniqueId("t");
    const client = await TestClient.connect(gateway().wsUrl, { token: await signToken() });
    await client.request({ op: "subscribe", channel: `typing:${id}` });
    proxy().cut();
    await waitFor(async () => (await fetch(`${gateway().httpUrl}/readyz`)).status === 503);
    expect(await client.request({ op: "publish", channel: `typing:${id}`, type: "t", data: {} })).toMatchObject({ op: "error", code: "unavailable" });
    proxy().restore();
    await gateway().app.ready;
    await waitFor(async () => (await fetch(`${gateway().httpUrl}/readyz`)).status === 200);
    const reply = await client.request({ op: "publish", channel: `typing:${id}`, type: "t", data: {} });
    expect(reply).toMatchObject({ op: "ok" });
    expect(await client.next((f) => f.op === "event" && f.id === reply.id)).toMatchObject({ channel: `typing:${id}` });
    client.close();
  });
});
