import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestPublisher } from "../support/amqp-tools.js";
import { pusherAppsEnv, rawSubscribed, type RawPusher } from "../support/pusher-clients.js";
import { RABBITMQ_URL, startTestGateway, type TestGateway } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";

const NAMESPACES = JSON.stringify([{ name: "typing", subscribe: "claim", publish: "broadcast", durable: false, presence: false }]);
const events = (raw: RawPusher, event: string) => raw.frames.filter((frame) => frame.event === event);

// ROLE=all: durable events go through this process's worker (PostgreSQL: DATABASE_URL, else embedded).
describe("the x-sobranie-exclude-socket header", () => {
  let gateway: TestGateway;
  let publisher: TestPublisher;
  const sockets: RawPusher[] = [];

  beforeAll(async () => {
    gateway = await startTestGateway({ PUSHER_APPS: pusherAppsEnv(), NAMESPACES, ROLE: "all", ...(process.env.DATABASE_URL ? { DATABASE_URL: process.env.DATABASE_URL } : {}) });
    publisher = await TestPublisher.open(RABBITMQ_URL);
  }, 120_000);
  afterAll(async () => {
    for (const raw of sockets) raw.socket.close();
    await publisher?.close();
    await gateway?.stop();
  });

  it.each([
    ["a live namespace", "private-typing.t5", "typing.t5"],
    ["a durable namespace, through the worker", "private-user.ex1", "user.ex1"],
  ])("keeps an event from that socket only, in %s", async (_kind, channel, prefix) => {
    const excluded = await rawSubscribed(gateway.port, channel);
    const other = await rawSubscribed(gateway.port, channel);
    sockets.push(excluded, other);
    await publisher.publish(`${prefix}.note`, { type: "note", data: { n: 1 } }, { headers: { "x-sobranie-exclude-socket": excluded.socketId } });
    await waitFor(() => events(other, "note").length === 1, 15_000);
    // The next event, without the header, reaches both: the first one is not merely late.
    await publisher.publish(`${prefix}.note`, { type: "note", data: { n: 2 } });
    await waitFor(() => events(excluded, "note").length === 1 && events(other, "note").length === 2, 15_000);
    expect(events(excluded, "note")[0]!.data).toBe('{"n":2}');
  });
});
