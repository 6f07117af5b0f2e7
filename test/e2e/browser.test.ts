import { TcpProxy } from "../support/tcp-proxy.js";
import amqp from "amqplib";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Page } from "playwright-core";
import { GatewayProcess } from "../support/gateway-process.js";
import { createIsolatedServices, type IsolatedServices } from "../support/isolated-services.js";
import { TEST_JWT_SECRET, signToken, uniqueId } from "../support/test-gateway.js";
import { TestBrowser, keepScreenshots } from "../support/browser.js";
import { waitFor } from "../support/wait-for.js";

const API_KEY = "browser-e2e-api-key-0123456789";

interface PageEvent {
  id: string;
  seq?: number;
  type: string;
  data: unknown;
}

/** A `join` or `leave` as the SDK's `on("join")` / `on("leave")` delivered it on a page. */
interface PresenceChange {
  op: "join" | "leave";
  channel: string;
  user: string;
  info?: unknown;
}

/** What the tests read from the demo page (`window.sobranieDemo`), plus the presence log `recordPresence` adds. */
interface DemoGlobals {
  sobranieDemo: {
    states: string[];
    client: {
      on(name: "join" | "leave", listener: (change: Omit<PresenceChange, "op">) => void): () => void;
      subscribe(channel: string, handler: () => void, options: { presence: boolean }): Promise<unknown>;
      presence(channel: string): Promise<Array<{ user: string; info?: unknown }>>;
    };
    presenceLog?: PresenceChange[];
  };
}

/** Generous on the shared 2-core machine (docs/performance.md measures a join across nodes in milliseconds). */
const PRESENCE_WAIT_MS = 30_000;

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
  afterEach(async ({ task }) => {
    // Here, not in onTestFailed: vitest runs onTestFailed after afterEach, when these pages are closed.
    // Before the gateways are killed, so the screenshots show the pages as the failure left them.
    if (task.result?.state === "fail") await keepScreenshots(browser, `browser-${task.name}`);
    browser.console.length = 0;
    browser.cspViolations.length = 0;
    await GatewayProcess.killAll();
    for (const page of browser.context.pages()) await page.close().catch(() => {});
  });
  afterAll(async () => {
    await connection?.close().catch(() => {});
    await browser?.close();
    await services?.drop();
  });

  function startGateway(env: Record<string, string> = {}): { gateway: GatewayProcess; port: Promise<number> } {
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
      ...env,
    });
    const ready = (async () => {
      const bound = await gateway.listeningPort();
      await gateway.waitForOutput(/"msg":"ready"/);
      return bound;
    })();
    return { gateway, port: ready };
  }

  /** A backend event on RabbitMQ (routing key namespace.id.type), confirmed. */
  async function publish(room: string, id: string, data: unknown): Promise<void> {
    const envelope = { id, type: "message.created", data, occurredAt: new Date().toISOString() };
    channel.publish("sobranie.events", `${room.replace(":", ".")}.message.created`, Buffer.from(JSON.stringify(envelope)), { persistent: true, messageId: id });
    await channel.waitForConfirms();
  }

  async function openDemo(port: number, room: string, transport: "websocket" | "sse", user: { sub: string; info?: unknown } = { sub: uniqueId("viewer") }): Promise<Page> {
    const token = await signToken({ ...user, channels: ["room:*"] });
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

  /** `sobranie_presence_nodes` of a gateway: the nodes it hears presence heartbeats from, itself included. */
  async function presenceNodes(port: number): Promise<number> {
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    return Number(/^sobranie_presence_nodes(?:\{[^}]*\})? (\d+)$/m.exec(metrics)?.[1] ?? 0);
  }

  /** Waits until the server accepted the page's subscription (the SDK resolves a repeated subscribe only then). */
  async function subscribed(page: Page, room: string, timeoutMs = PRESENCE_WAIT_MS): Promise<void> {
    await page.evaluate(
      ([channel, ms]) =>
        Promise.race([
          (globalThis as unknown as DemoGlobals).sobranieDemo.client.subscribe(channel, () => {}, { presence: true }).then(() => undefined),
          new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`subscribe ${channel} not accepted within ${ms} ms`)), ms)),
        ]),
      [room, timeoutMs] as const,
    );
  }

  /** From now on, keeps every `join` and `leave` the page's SDK emits in `sobranieDemo.presenceLog`. */
  async function recordPresence(page: Page): Promise<void> {
    await page.evaluate(() => {
      const demo = (globalThis as unknown as DemoGlobals).sobranieDemo;
      const log: PresenceChange[] = (demo.presenceLog = []);
      demo.client.on("join", (change) => log.push({ op: "join", ...change }));
      demo.client.on("leave", (change) => log.push({ op: "leave", ...change }));
    });
  }

  /** The first `op` of `user` the page's SDK emitted, once there is one. */
  async function presenceChange(page: Page, op: PresenceChange["op"], user: string): Promise<PresenceChange> {
    const handle = await page.waitForFunction(
      ([op, user]) => (globalThis as unknown as DemoGlobals).sobranieDemo.presenceLog?.find((change) => change.op === op && change.user === user),
      [op, user] as const,
      { timeout: PRESENCE_WAIT_MS, polling: 50 },
    );
    return (await handle.jsonValue()) as PresenceChange;
  }

  /** The members of `room` a gateway lists through the HTTP API. */
  async function membersOn(port: number, room: string): Promise<string[]> {
    const response = await fetch(`http://127.0.0.1:${port}/api/v1/presence/${room}`, { headers: { authorization: `Bearer ${API_KEY}` } });
    return ((await response.json()) as { members: Array<{ user: string }> }).members.map((member) => member.user);
  }

  const presenceOf = (page: Page, room: string): Promise<Array<{ user: string; info?: unknown }>> =>
    page.evaluate((channel) => (globalThis as unknown as DemoGlobals).sobranieDemo.client.presence(channel), room);

  /** The demo page's member list, as a newcomer reads it. */
  const memberItems = (page: Page) => page.locator("#presence li.member");

  it("opens the start-up banner's two links as a newcomer: each tab lists both users, and an event published through the form shows in both", async () => {
    // `npm start` with nothing configured: embedded broker and store, a generated JWT secret and API key.
    const gateway = GatewayProcess.start([], { PORT: "0", LOG_LEVEL: "info" });
    await gateway.waitForOutput(/^Demo page as [^\n]*\n(?:[^\n]*\n)*?Demo page as [^\n]*\n/m);
    const links = [...gateway.stdout.matchAll(/^Demo page as (\S+): (\S+)$/gm)].map(([, user, url]) => ({ user: user!, url: url! }));
    expect(links.map((link) => link.user)).toEqual(["ada", "grace"]);
    const [ada, grace] = await Promise.all(
      links.map(async ({ url }) => {
        const page = await browser.page();
        await page.goto(url);
        return page;
      }),
    );
    // Each tab's member list, as the newcomer reads it: both users with their names, itself included.
    const everyone = ["ada (Ada)", "grace (Grace)"];
    for (const page of [ada!, grace!]) {
      for (const member of everyone) await memberItems(page).filter({ hasText: member }).waitFor({ timeout: PRESENCE_WAIT_MS });
      expect((await memberItems(page).allTextContents()).sort()).toEqual(everyone);
    }
    // The key came in the link too: the form publishes, and both tabs show the event.
    const text = uniqueId("from-the-banner");
    await ada!.fill("#text", text);
    await ada!.click("#publish");
    await ada!.locator("#published", { hasText: /^sent / }).waitFor({ timeout: 30_000 });
    for (const page of [ada!, grace!]) await page.locator("#events li", { hasText: text }).waitFor({ timeout: 30_000 });
    expect(browser.cspViolations).toEqual([]);
  }, 120_000);

  for (const transport of ["websocket", "sse"] as const) {
    it(`receives events published to RabbitMQ over ${transport}`, async () => {
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
      expect(browser.cspViolations).toEqual([]);
    }, 120_000);
  }

  it("runs the demo page under its Content-Security-Policy: the bundle, its style, a WebSocket and a publish through the form, nothing refused", async () => {
    const { port } = startGateway();
    const bound = await port;
    const response = await fetch(`http://127.0.0.1:${bound}/demo`);
    const csp = response.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(response.headers.get("referrer-policy")).toBe("no-referrer");
    expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    const bundle = await fetch(`http://127.0.0.1:${bound}/client/sobranie-client.js`);
    expect(bundle.headers.get("x-content-type-options")).toBe("nosniff");
    const room = `room:${uniqueId("csp")}`;
    const page = await openDemo(bound, room, "websocket");
    // The stylesheet applied (an inline style the CSP refused would leave the default margin).
    expect(await page.evaluate("getComputedStyle(document.body).maxWidth")).not.toBe("none");
    await page.fill("#key", API_KEY);
    await page.fill("#text", "from the form");
    await page.click("#publish");
    // Locators, not string predicates: playwright runs a string predicate through eval, which the page's CSP refuses.
    await page.locator("#published", { hasText: /^sent / }).waitFor({ timeout: 30_000 });
    await page.locator("#events li", { hasText: "from the form" }).waitFor({ timeout: 30_000 });
    expect(browser.cspViolations).toEqual([]);
  }, 120_000);

  it("survives a gateway restart: reconnects, recovers, misses nothing and repeats nothing on a durable channel", async () => {
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

  it("shows a second page's presence on the first, across two gateway processes: join with the JWT info, then leave when it closes", async () => {
    // Two nodes on one vhost, each page on its own: presence replicates over
    // the sobranie.presence exchange. A short heartbeat lets the nodes count
    // each other within a second (the metric is refreshed on each heartbeat).
    const presenceEnv = { ROLE: "gateway", HEARTBEAT_MS: "1000", PRESENCE_TTL_MS: "15000" };
    const nodeA = startGateway(presenceEnv);
    const nodeB = startGateway(presenceEnv);
    const [portA, portB] = await Promise.all([nodeA.port, nodeB.port]);
    // Ready does not wait for the presence bus: a delta sent before the other node listens would only arrive with the next resync.
    await waitFor(async () => (await presenceNodes(portA)) === 2 && (await presenceNodes(portB)) === 2, PRESENCE_WAIT_MS, "both gateways hearing each other on the presence bus");

    const room = `room:${uniqueId("presence")}`;
    const ada = { sub: uniqueId("ada"), info: { name: "Ada Lovelace" } };
    const grace = { sub: uniqueId("grace"), info: { name: "Grace Hopper" } };
    const first = await openDemo(portA, room, "websocket", ada);
    await subscribed(first, room);
    await recordPresence(first);
    // So the newcomer's listing can name the first user (node B hears of it over the presence bus).
    await waitFor(async () => (await membersOn(portB, room)).includes(ada.sub), PRESENCE_WAIT_MS, "node B listing the first page's user");

    const second = await openDemo(portB, room, "websocket", grace);
    await subscribed(second, room);

    // The first page's SDK hears the join, with the info claim of the second page's token.
    expect(await presenceChange(first, "join", grace.sub)).toEqual({ op: "join", channel: room, user: grace.sub, info: grace.info });
    // Its presence() lists both members with their info (cluster-wide, asked of node A).
    expect(await presenceOf(first, room)).toEqual(expect.arrayContaining([{ user: ada.sub, info: ada.info }, { user: grace.sub, info: grace.info }]));
    // And the page shows the second user by name in its member list.
    await memberItems(first).filter({ hasText: grace.info.name }).waitFor({ timeout: PRESENCE_WAIT_MS });
    expect(await memberItems(first).allTextContents()).toContain(`${grace.sub} (${grace.info.name})`);
    // The newcomer sees who was already there (the demo lists the room once its subscribe is confirmed).
    await memberItems(second).filter({ hasText: ada.info.name }).waitFor({ timeout: PRESENCE_WAIT_MS });

    await second.close();
    expect(await presenceChange(first, "leave", grace.sub)).toEqual({ op: "leave", channel: room, user: grace.sub });
    await memberItems(first).filter({ hasText: grace.info.name }).waitFor({ state: "detached", timeout: PRESENCE_WAIT_MS });
    const after = await presenceOf(first, room);
    expect(after.map((member) => member.user)).not.toContain(grace.sub);
    expect(after).toContainEqual({ user: ada.sub, info: ada.info });
    // Exactly one join and one leave of the second user reached the first page.
    const log = await first.evaluate(() => (globalThis as unknown as DemoGlobals).sobranieDemo.presenceLog ?? []);
    expect(log.filter((change) => change.user === grace.sub).map((change) => change.op)).toEqual(["join", "leave"]);
  }, 120_000);
});
