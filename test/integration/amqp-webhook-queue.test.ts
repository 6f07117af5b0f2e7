import { PusherChannelNames } from "../../src/adapters/pusher/channel-names.js";
import { BUILT_IN_NAMESPACES } from "../../src/core/namespaces.js";
import amqp from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AmqpWebhookQueue } from "../../src/adapters/amqp/amqp-webhook-queue.js";
import { AmqpHeaders, AmqpNames } from "@sobranie/protocol/amqp";
import { webhookQueueName } from "../../src/adapters/amqp/topology.js";
import { PusherApps } from "../../src/adapters/pusher/apps.js";
import { WebhookBatcher } from "../../src/adapters/pusher/webhook-batcher.js";
import { WebhookDispatcher } from "../../src/adapters/pusher/webhook-dispatcher.js";
import { systemClock } from "@sobranie/protocol/runtime/clock";
import { silentLogger } from "@sobranie/protocol/runtime/logger";
import { noopMetrics } from "../../src/core/ports/metrics.js";
import { createRabbitVhost, type RabbitVhost } from "../support/rabbit-vhost.js";
import { waitFor } from "../support/wait-for.js";
import { WebhookReceiver } from "../support/webhook-receiver.js";

// Two deployments sharing a vhost (docs/operations.md "Deployments sharing a
// vhost"), each with its own webhook queue and its own app: neither takes,
// drops or dead-letters the other's presence events and entry-point events.

const RETRY = { initialDelayMs: 100, maxDelayMs: 400, giveUpAfterMs: 60_000 };

describe("AmqpWebhookQueue of two deployments on one vhost", () => {
  let vhost: RabbitVhost;
  let receiver: WebhookReceiver;
  let connection: amqp.ChannelModel;
  let publisher: amqp.ConfirmChannel;
  const queues: AmqpWebhookQueue[] = [];
  const batchers: WebhookBatcher[] = [];
  const deadLetters: string[] = [];

  const startDeployment = async (deployment: string): Promise<void> => {
    const apps = new PusherApps([
      { id: deployment, key: `${deployment}-key`, secret: `${deployment}-secret-0123456789`, enabled: true, clientEvents: true, maxConnections: undefined, signinTimeoutMs: undefined, webhooks: [{ url: receiver.url(`/${deployment}`), events: ["member_added", "client_event"] }] },
    ]);
    const batcher = new WebhookBatcher({ windowMs: 10, maxEvents: 100, timeoutMs: 2_000 }, { clock: systemClock });
    const dispatcher = new WebhookDispatcher({ apps, batcher, retry: RETRY, input: { deploymentId: deployment, channelNames: new PusherChannelNames((namespace) => BUILT_IN_NAMESPACES.find((policy) => policy.name === namespace)) }, clock: systemClock, metrics: noopMetrics, logger: silentLogger });
    // Two workers per deployment, competing for its queue.
    for (const worker of ["w1", "w2"]) {
      const queue = new AmqpWebhookQueue({ urls: [vhost.url], nodeId: `${deployment}-${worker}`, logger: silentLogger, queueName: webhookQueueName(deployment), appIds: [deployment], delayStepsMs: [100, 200, 400] });
      queues.push(queue);
      await queue.start(dispatcher);
    }
    batchers.push(batcher);
  };

  const join = (deployment: string, user: string): Buffer =>
    Buffer.from(JSON.stringify({ id: `${deployment}-${user}`, type: "presence.join", data: { channel: "room:7", user, members: 2, deployment } }));

  beforeAll(async () => {
    vhost = await createRabbitVhost("pusherhooks-deployments");
    receiver = await WebhookReceiver.start();
    await startDeployment("blue");
    await startDeployment("green");
    connection = await amqp.connect(vhost.url);
    publisher = await connection.createConfirmChannel();
    const dead = await connection.createChannel();
    await dead.consume(AmqpNames.deadQueue, (message) => message && deadLetters.push(String(message.properties.headers?.[AmqpHeaders.deadReason])), { noAck: true });
  }, 60_000);

  afterAll(async () => {
    await Promise.all(queues.map((queue) => queue.stop()));
    for (const batcher of batchers) batcher.stop();
    await connection?.close().catch(() => {});
    await receiver?.down();
    await vhost?.drop();
  });

  it("sends each deployment's presence changes to its own apps only, every one of them", async () => {
    for (let index = 0; index < 10; index++) {
      publisher.publish(AmqpNames.eventsExchange, "presence.room.7.join", join("blue", `u${index}`));
      publisher.publish(AmqpNames.eventsExchange, "presence.room.7.join", join("green", `v${index}`));
    }
    await publisher.waitForConfirms();
    await waitFor(() => receiver.delivered("/blue").length >= 10 && receiver.delivered("/green").length >= 10, 20_000, "both deployments' joins");
    expect(receiver.delivered("/blue").map((event) => event.user_id).sort()).toEqual(Array.from({ length: 10 }, (_, index) => `u${index}`).sort());
    expect(receiver.delivered("/green").map((event) => event.user_id).sort()).toEqual(Array.from({ length: 10 }, (_, index) => `v${index}`).sort());
  });

  it("takes an app's entry-point events into its deployment's queue alone: no other deployment dead-letters them", async () => {
    const event = { name: "client_event", channel: "private-chat.1", event: "client-x", data: "{}", socket_id: "1.2" };
    publisher.publish(AmqpNames.eventsExchange, "pusher.green.client_event", Buffer.from(JSON.stringify(event)));
    publisher.publish(AmqpNames.eventsExchange, "pusher.blue.client_event", Buffer.from(JSON.stringify({ ...event, data: "[]" })));
    await publisher.waitForConfirms();
    await waitFor(() => receiver.delivered("/green").some((delivered) => delivered.name === "client_event") && receiver.delivered("/blue").some((delivered) => delivered.name === "client_event"), 20_000, "entry-point events");
    expect(receiver.delivered("/green").filter((delivered) => delivered.name === "client_event")).toEqual([event]);
    expect(receiver.delivered("/blue").filter((delivered) => delivered.name === "client_event")).toEqual([{ ...event, data: "[]" }]);
    expect(deadLetters).toEqual([]);
  });
});
