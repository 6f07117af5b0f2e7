import { execFile } from "node:child_process";
import { promisify } from "node:util";
import amqp from "amqplib";
import { AmqpNames } from "@sobranie/protocol/amqp";
import { RABBITMQ_URL } from "./test-gateway.js";

const run = promisify(execFile);

/**
 * The node queue a gateway consumes now (`sobranie.node.<nodeId>.<suffix>`,
 * a new one per broker connection), from the broker itself. Throws unless
 * there is exactly one.
 */
export async function nodeQueueOf(nodeId: string, vhost = "/"): Promise<string> {
  const { stdout } = await run("rabbitmqctl", ["list_queues", "-p", vhost, "-q", "--no-table-headers", "name"]);
  const prefix = `${AmqpNames.nodeQueuePrefix}${nodeId}.`;
  const queues = stdout.split("\n").map((line) => line.trim()).filter((name) => name.startsWith(prefix));
  if (queues.length !== 1) throw new Error(`expected one node queue of ${nodeId}, found ${queues.length}: ${queues.join(", ")}`);
  return queues[0]!;
}

/** A backend publisher for tests: plain amqplib with publisher confirms, as a backend would use it. */
export class TestPublisher {
  private constructor(
    private readonly connection: amqp.ChannelModel,
    readonly channel: amqp.ConfirmChannel,
  ) {}

  /** `url` defaults to the shared broker's default vhost; isolated tests pass their own vhost. */
  static async open(url: string = RABBITMQ_URL): Promise<TestPublisher> {
    const connection = await amqp.connect(url);
    const channel = await connection.createConfirmChannel();
    return new TestPublisher(connection, channel);
  }

  /** Publishes a body (object → JSON) to `sobranie.events` and waits for the confirm. */
  async publish(routingKey: string, body: unknown, options: amqp.Options.Publish = {}): Promise<void> {
    const content = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
    await new Promise<void>((resolve, reject) => {
      this.channel.publish("sobranie.events", routingKey, content, { contentType: "application/json", ...options }, (error) =>
        error ? reject(error) : resolve(),
      );
    });
  }

  async close(): Promise<void> {
    await this.connection.close().catch(() => {});
  }
}
