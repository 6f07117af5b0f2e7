import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestPublisher } from "../support/amqp-tools.js";
import { closeCodes, collect, connected, pusherAppsEnv, pusherClient, subscribed } from "../support/pusher-clients.js";
import { TcpProxy } from "../support/tcp-proxy.js";
import { RABBITMQ_URL, startTestGateway, type TestGateway } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";

// Not durable, so no worker is needed for its events to go live.
const NAMESPACES = JSON.stringify([{ name: "note", subscribe: "self", publish: "none", durable: false, presence: false }]);

describe("pusher-js across a drain and a broker loss", () => {
  let draining: TestGateway;
  let staying: TestGateway;
  let proxy: TcpProxy;
  let publisher: TestPublisher;

  beforeAll(async () => {
    [draining, staying] = await Promise.all([startTestGateway({ PUSHER_APPS: pusherAppsEnv(), NAMESPACES }), startTestGateway({ PUSHER_APPS: pusherAppsEnv(), NAMESPACES })]);
    // The clients' one address, as a load balancer would be: new connections go where it points.
    proxy = new TcpProxy("127.0.0.1", draining.port);
    await proxy.start();
    publisher = await TestPublisher.open(RABBITMQ_URL);
  }, 60_000);
  afterAll(async () => {
    await publisher?.close();
    await proxy?.stop();
    await Promise.all([draining?.stop(), staying?.stop()]);
  });

  it("is closed with 4200 by a draining node, reconnects at once to another, and resubscribes", async () => {
    const client = pusherClient(proxy.port);
    const codes = closeCodes(client);
    await connected(client);
    const firstSocket = client.connection.socket_id;
    const { channel } = await subscribed(client, "private-note.ada");
    const received = collect(channel, "note.created");
    proxy.retarget(staying.port);
    await draining.stop();
    expect(codes).toContain(4200);
    await waitFor(() => client.connection.state === "connected" && client.connection.socket_id !== firstSocket, 15_000, "reconnected");
    // pusher-js subscribes again with the new socket's signature; the event is published once that took.
    await waitFor(() => channel.subscribed, 10_000, "resubscribed");
    await publisher.publish("note.ada.note.created", { type: "note.created", data: { n: 1 } });
    await waitFor(() => received.length === 1, 10_000, "event after the reconnect");
    expect(received[0]).toEqual({ n: 1 });
    client.disconnect();
  });

  it("is closed with 4200 when its node stays without its broker, and reconnects", async () => {
    // A gateway whose RabbitMQ connection goes through a proxy the test cuts.
    const amqp = new URL(RABBITMQ_URL);
    const brokerProxy = new TcpProxy(amqp.hostname, Number(amqp.port || 5672));
    await brokerProxy.start();
    amqp.host = `127.0.0.1:${brokerProxy.port}`;
    const cutOff = await startTestGateway({ PUSHER_APPS: pusherAppsEnv(), NAMESPACES, RABBITMQ_URL: amqp.toString(), BROKER_LOSS_GRACE_MS: "500" });
    proxy.retarget(cutOff.port);
    const client = pusherClient(proxy.port);
    const codes = closeCodes(client);
    await connected(client);
    const firstSocket = client.connection.socket_id;
    proxy.retarget(staying.port);
    brokerProxy.cut();
    await waitFor(() => codes.includes(4200), 20_000, "closed 4200 after the broker loss");
    await waitFor(() => client.connection.state === "connected" && client.connection.socket_id !== firstSocket, 15_000, "reconnected");
    client.disconnect();
    await cutOff.stop();
    await brokerProxy.stop();
  });
});
