import { TcpProxy } from "../support/tcp-proxy.js";
import amqp from "amqplib";
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFailed } from "vitest";
import type { Page } from "playwright-core";
import { GatewayProcess } from "../support/gateway-process.js";
import { createIsolatedServices, type IsolatedServices } from "../support/isolated-services.js";
import { TEST_JWT_SECRET, signToken, uniqueId } from "../support/test-gateway.js";
import { TestBrowser, keepScreenshots } from "../support/browser.js";

const API_KEY = "browser-e2e-api-key-0123456789";

interface PageEvent {
  id: string;
  seq?: number;
  type: string;
  data: unknown;
}

/**
 * A real browser (Debian's chromium via playwright-core) on the demo page,
 * which uses nothing but the SDK bundle the gateway serves. The gateway runs
 * as a whole process with ROLE=all on RabbitMQ and PostgreSQL in a vhost and
 * database of its own; events are published to RabbitMQ directly.
 */
describe("browser: the SDK bundle on the demo page", () => {
  let services: IsolatedServices;
  let browser: TestBrowser;
  let connection: amqp.ChannelModel;
  let channel: amqp.ConfirmChannel;

  beforeAll(async () => {
    services = await createIsolatedServices("browser");
    browser = await TestBrowser.launch();
    connection = await amqp.connect(services.rabbitmqUrl);
    channel = await connection.createConfirmChannel();
  }, 60_000);
  afterEach(async () => {
    await GatewayProcess.killAll();
    for (const page of browser.context.pages()) await page.close().catch(() => {});
  });
  afterAll(async () => {
    await connection?.close().catch(() => {});
    await browser?.close();
    await services?.drop();
  });

  function startGateway(): { gateway: GatewayProcess; port: Promise<number> } {
    const gateway = GatewayProcess.start([], {
      PORT: "0",
      HOST: "127.0.0.1",
      ROLE: "all",
      NODE_ID: uniqueId("browser"),
      RABBITMQ_URL: services.rabbitmqUrl,
      DATABASE_URL: services.databaseUrl,
      JWT_SECRET: TEST_JWT_SECRET,
      API_KEYS: API_KEY,
      LOG_LEVEL: "info",
      DRAIN_GRACE_MS: "300",
      BIND_LINGER_MS: "200",
      NODE_QUEUE_EXPIRES_MS: "10000",
    });
    const ready = (async () => {
      const [, bound] = await gateway.waitForOutput(/"port":(\d+)/);
      await gateway.waitForOutput(/"msg":"ready"/);
      return Number(bound);
    })();
    return { gateway, port: ready };
  }

  /** A backend event on RabbitMQ (routing key namespace.id.type), confirmed. */
  async function publish(room: string, id: string, data: unknown): Promise<void> {
    const envelope = { id, type: "message.created", data, occurredAt: new Date().toISOString() };
    channel.publish("sobranie.events", `${room.replace(":", ".")}.message.created`, Buffer.from(JSON.stringify(envelope)), { persistent: true, messageId: id });
    await channel.waitForConfirms();
  }

  async function openDemo(port: number, room: string, transport: "websocket" | "sse"): Promise<Page> {
    const token = await signToken({ sub: uniqueId("viewer"), channels: ["room:*"] });
    const page = await browser.page();
    await page.goto(`http://127.0.0.1:${port}/#token=${token}&room=${room}&transport=${transport}`);
    await page.waitForFunction(() => (globalThis as unknown as { sobranieDemo?: { states: string[] } }).sobranieDemo?.states.includes("connected"), undefined, { timeout: 30_000 });
    // Subscribed once the server answered: the SDK resolves subscribe only then; the page shows a refusal otherwise.
    return page;
  }

  const pageEvents = (page: Page): Promise<PageEvent[]> =>
    page.evaluate(() => (globalThis as unknown as { sobranieDemo: { events: PageEvent[] } }).sobranieDemo.events.map(({ id, seq, type, data }) => ({ id, seq, type, data })));

  async function waitForIds(page: Page, ids: readonly string[], timeoutMs = 60_000): Promise<void> {
    await page.waitForFunction(
      (expected) => {
        const seen = new Set((globalThis as unknown as { sobranieDemo: { events: Array<{ id: string }> } }).sobranieDemo.events.map((e) => e.id));
        return expected.every((id) => seen.has(id));
      },
      ids,
      { timeout: timeoutMs, polling: 50 },
    );
  }

  /** Publishes until the page shows one (the subscription's binding may still be on its way), then returns that id. */
  async function firstDelivered(page: Page, room: string): Promise<string> {
    for (let i = 0; ; i++) {
      const id = uniqueId(`probe${i}`);
      await publish(room, id, { probe: i });
      try {
        await waitForIds(page, [id], 2_000);
        return id;
      } catch (error) {
        if (i >= 20) throw error;
      }
    }
  }

  for (const transport of ["websocket", "sse"] as const) {
    it(`receives events published to RabbitMQ over ${transport}`, async () => {
      onTestFailed(() => keepScreenshots(browser, `browser-${transport}`));
      const { port } = startGateway();
      const room = `room:${uniqueId(transport)}`;
      const page = await openDemo(await port, room, transport);
      await firstDelivered(page, room);
      const ids = [uniqueId("a"), uniqueId("b"), uniqueId("c")];
      for (const [i, id] of ids.entries()) await publish(room, id, { text: `hello ${i}` });
      await waitForIds(page, ids);
      const events = (await pageEvents(page)).filter((event) => ids.includes(event.id));
      expect(events.map((event) => event.id)).toEqual(ids);
      expect(events.every((event) => typeof event.seq === "number" && event.type === "message.created")).toBe(true);
      expect(await page.evaluate(() => (globalThis as unknown as { sobranieDemo: { client: { transportKind: string } } }).sobranieDemo.client.transportKind)).toBe(transport);
      // The page shows them too.
      await expect(page.locator(`#events li[data-id="${ids[2]}"]`).textContent()).resolves.toContain("hello 2");
    }, 120_000);
  }

  it("survives a gateway restart: reconnects, recovers, misses nothing and repeats nothing on a durable channel", async () => {
    onTestFailed(() => keepScreenshots(browser, "browser-restart"));
    // A fixed address in front of whichever gateway runs (nginx in production):
    // the restarted gateway gets a fresh port instead of rebinding the old one,
    // which the browser's own reconnect attempts could be holding.
    const door = new TcpProxy("127.0.0.1", 0);
    await door.start();
    const first = startGateway();
    door.retarget(await first.port);
    const room = `room:${uniqueId("restart")}`;
    const page = await openDemo(door.port, room, "websocket");
    const probe = await firstDelivered(page, room);
    const before = [uniqueId("before1"), uniqueId("before2")];
    for (const id of before) await publish(room, id, { phase: "before" });
    await waitForIds(page, before);

    first.gateway.kill("SIGTERM");
    await first.gateway.exited;
    const during = [uniqueId("during1"), uniqueId("during2"), uniqueId("during3")];
    for (const id of during) await publish(room, id, { phase: "during" });

    const second = startGateway();
    door.retarget(await second.port);
    const after = [uniqueId("after1")];
    await page.waitForFunction(() => (globalThis as unknown as { sobranieDemo: { states: string[] } }).sobranieDemo.states.filter((s) => s === "connected").length >= 2, undefined, {
      timeout: 60_000,
    });
    for (const id of after) await publish(room, id, { phase: "after" });
    const expected = [probe, ...before, ...during, ...after];
    await waitForIds(page, expected);
    const received = (await pageEvents(page)).map((event) => event.id).filter((id) => expected.includes(id));
    expect(received).toEqual(expected);
    const seqs = (await pageEvents(page)).map((event) => event.seq as number);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]!).toBeGreaterThan(seqs[i - 1]!);
    await door.stop();
  }, 180_000);
});
