import { describe, expect, it } from "vitest";
import { MemoryPersistBacklog, PersistQueueFullError } from "../../src/adapters/memory/memory-persist-backlog.js";
import { MemoryPersistQueue } from "../../src/adapters/memory/memory-persist-queue.js";
import type { PersistQueue } from "../../src/core/ports/persist-queue.js";
import { type ObservedLive, type PersistQueueFixture, persistQueueContract } from "./persist-queue.contract.js";

const TEST_RETRY = { initialDelayMs: 20, maxDelayMs: 200 };
const encoder = new TextEncoder();

persistQueueContract("MemoryPersistQueue", async (): Promise<PersistQueueFixture> => {
  const durableNamespace = "user";
  // One backlog per fixture: the queue that outlives each consumer instance.
  const backlog = new MemoryPersistBacklog({ durableNamespaces: [durableNamespace] });
  const live: ObservedLive[] = [];
  const queues: PersistQueue[] = [];
  return {
    durableNamespace,
    otherNamespace: "post",
    createQueue(options = {}) {
      const queue = new MemoryPersistQueue({
        durableNamespaces: [durableNamespace],
        backlog,
        deliverLive: (routingKey, body, props) => live.push({ routingKey, body, ...props }),
        retryBackoff: TEST_RETRY,
        ...options,
      });
      queues.push(queue);
      return queue;
    },
    async publishEvent(routingKey, body, props = {}) {
      backlog.accept({ routingKey, body: encoder.encode(body), ...props });
    },
    async liveMessages() {
      return [...live];
    },
    async deadLetters() {
      return backlog.deadLetters.map(({ routingKey, reason, message }) => ({ routingKey, reason, message }));
    },
    async cleanup() {
      await Promise.all(queues.map((queue) => queue.stop()));
    },
  };
});

describe("MemoryPersistBacklog specifics", () => {
  it("refuses a durable event when full (the publish fails, nothing queued is dropped) and accepts again once drained", () => {
    const backlog = new MemoryPersistBacklog({ durableNamespaces: ["user"], maxLength: 2 });
    const event = (n: number) => ({ routingKey: `user.1.m${n}`, body: encoder.encode("{}") });
    backlog.accept(event(0));
    backlog.accept(event(1));
    expect(() => backlog.accept(event(2))).toThrow(PersistQueueFullError);
    // Non-durable events are not the queue's business, full or not.
    expect(() => backlog.accept({ routingKey: "post.1.x", body: encoder.encode("{}") })).not.toThrow();
    expect(backlog.take(10).map((entry) => entry.message.routingKey)).toEqual(["user.1.m0", "user.1.m1"]);
    backlog.accept(event(3));
    expect(backlog.size).toBe(1);
  });
});
