import amqp from "amqplib";
import { boundLifetime, type PublisherCommand, type PublisherSetup, sendToParent } from "./ipc.js";
import { eventBody, routingKey } from "./payload.js";
import { PublishLoop } from "./publish-loop.js";

/**
 * The backend publisher for the broker-fed scenarios (gateway, seedWs): a
 * separate process, so its CPU shows up apart from the runner's and the
 * clients'. Publishes to the events exchange as a backend would (docs/protocol.md §3)
 * on a plain channel; when amqplib's write buffer is full (`publish` returns
 * false) the loop waits for `drain` — flow control instead of an unbounded
 * buffer. No publisher confirms: they would add a broker round trip to every
 * event and measure the publisher, not the fan-out.
 */

interface AmqpPublisherSetup extends PublisherSetup {
  rabbitUrl: string;
  exchange: string;
}

const setup = JSON.parse(process.argv[2] ?? "{}") as AmqpPublisherSetup;
boundLifetime(setup.hardTimeoutMs, "publisher-amqp");

try {
  const connection = await amqp.connect(setup.rabbitUrl);
  const channel = await connection.createChannel();
  await channel.checkExchange(setup.exchange);
  const keys = Array.from({ length: setup.channelCount }, (_, index) => routingKey(index));
  const properties = { contentType: "application/json" };
  const loop = new PublishLoop({
    channelCount: setup.channelCount,
    report: sendToParent,
    sink: {
      emit: (index, phase, seq, sendMs) =>
        channel.publish(setup.exchange, keys[index]!, Buffer.from(eventBody(setup.runId, index, phase, seq, sendMs, setup.bodyBytes)), properties),
      drained: () => new Promise((resolve) => channel.once("drain", () => resolve())),
    },
  });
  channel.on("error", (error: Error) => sendToParent({ type: "error", message: `amqp channel: ${error.message}` }, () => process.exit(1)));
  process.on("message", (command: PublisherCommand) => {
    if (command.type === "exit") void connection.close().finally(() => process.exit(0));
    else loop.handle(command);
  });
  sendToParent({ type: "ready", exchange: setup.exchange });
} catch (error) {
  sendToParent({ type: "error", message: `publisher: ${error instanceof Error ? error.message : String(error)}` }, () => process.exit(1));
}
