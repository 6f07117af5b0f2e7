import amqp from "amqplib";
import { RABBITMQ_URL } from "./test-gateway.js";

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
