import amqp from "amqplib";
import { loadNativeUws } from "../../src/adapters/uws/load-native-uws.js";
import { bareUwsApp } from "./bare-uws.js";
import { startBrokerFed } from "./broker-fed.js";
import { eventFrame } from "./payload.js";

/**
 * The amqpUws baseline: the bare uWS server of rawUws (bare-uws.ts), fed by
 * RabbitMQ the way the gateway is fed — its own exclusive queue, one binding
 * per channel with subscribers, manual acks with the gateway's prefetch
 * (1,000), acked `multiple` once per event-loop turn — and nothing else: no
 * envelope validation, no dedupe, no metrics, no sessions. Each event becomes
 * a frame by string splicing and one `app.publish`. It is what any
 * RabbitMQ-fed uWS gateway can reach on this machine; the gap between it and
 * rawUws is the broker, not the gateway.
 *
 * Started like the gateway and seedWs (broker-fed.ts).
 */

const PREFETCH = 1_000;

const { uws } = loadNativeUws();
const { port, channel, exchange, queue } = await startBrokerFed();
await channel.prefetch(PREFETCH);

const bound = new Map<string, Promise<void>>();
const app = bareUwsApp(uws, (name) => {
  let binding = bound.get(name);
  if (!binding) {
    binding = channel.bindQueue(queue, exchange, `${name.replace(":", ".")}.#`).then(() => undefined);
    bound.set(name, binding);
  }
  return binding;
});

let lastTag: number | null = null;
const ackLast = (): void => {
  if (lastTag !== null) channel.ack({ fields: { deliveryTag: lastTag } } as amqp.Message, true);
  lastTag = null;
};

await channel.consume(
  queue,
  (message) => {
    if (message === null) return;
    // routing key `post.bench3.bench.tick` → channel `post:bench3`
    const [namespace, id] = message.fields.routingKey.split(".");
    const name = `${namespace}:${id}`;
    app.publish(name, eventFrame(name, message.content.toString("utf8")), false);
    if (lastTag === null) setImmediate(ackLast);
    lastTag = message.fields.deliveryTag;
  },
  { noAck: false },
);

app.listen("127.0.0.1", port, (listenSocket) => {
  if (listenSocket === false) {
    process.stderr.write(`amqpUws: could not listen on 127.0.0.1:${port}\n`);
    process.exit(1);
  }
});
