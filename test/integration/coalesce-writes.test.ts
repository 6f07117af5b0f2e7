import amqp from "amqplib";
import { describe, expect, it } from "vitest";
import { coalesceMuxWrites } from "@sobranie/publisher/amqp/coalesce-writes";
import { RABBITMQ_URL } from "../support/test-gateway.js";

describe("coalesceMuxWrites on the real RabbitMQ", () => {
  it("applies to the installed amqplib and leaves every frame intact and in order", async () => {
    const model = await amqp.connect(RABBITMQ_URL);
    try {
      expect(coalesceMuxWrites(model)).toBe(true);
      const channel = await model.createConfirmChannel();
      const { queue } = await channel.assertQueue("", { exclusive: true });
      // Sizes around amqplib's single-chunk threshold and the frame size, so rounds mix small and split frames.
      const bodies = Array.from({ length: 300 }, (_, i) => Buffer.alloc([10, 2_000, 5_000, 140_000][i % 4]!, String.fromCharCode(97 + (i % 26))));
      for (const body of bodies) channel.publish("", queue, body);
      await channel.waitForConfirms();
      const received: Buffer[] = [];
      await new Promise<void>((resolve) => {
        void channel.consume(queue, (message) => {
          if (message === null) return;
          received.push(message.content);
          if (received.length === bodies.length) resolve();
        }, { noAck: true });
      });
      expect(received.map((body) => body.length)).toEqual(bodies.map((body) => body.length));
      expect(received.every((body, i) => body.equals(bodies[i]!))).toBe(true);
    } finally {
      await model.close();
    }
  });
});
