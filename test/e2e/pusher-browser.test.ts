import PusherServer from "pusher";
import type { Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { keepScreenshots, TestBrowser } from "../support/browser.js";
import { pusherAppsEnv, PUSHER_APP } from "../support/pusher-clients.js";
import { createRabbitVhost, type RabbitVhost } from "../support/rabbit-vhost.js";
import { signToken, startTestGateway, uniqueId, type TestGateway } from "../support/test-gateway.js";

const API_KEY = "pusher-browser-api-key-0123456789";
const NAMESPACES = JSON.stringify([
  { name: "orders", subscribe: "claim", publish: "none", durable: false, presence: false },
  { name: "huddle", subscribe: "claim", publish: "broadcast", durable: false, presence: true },
]);
/** Generous on the shared 2-core machine; nothing here measures speed. */
const WAIT_MS = 30_000;

interface PageEvent {
  channel: string;
  event: string;
  data: unknown;
}

/** What the tests read from the Pusher demo page (`window.pusherDemo`). */
interface PusherDemoGlobals {
  pusherDemo: {
    states: string[];
    here?: unknown[];
    joined: unknown[];
    left: unknown[];
    events: PageEvent[];
    whispers: unknown[];
    privateSubscribed: boolean;
  };
}
type PusherDemo = PusherDemoGlobals["pusherDemo"];

/**
 * Chromium on the Pusher demo page the gateway serves: the real pusher-js
 * browser build and laravel-echo's IIFE build, authorized by the gateway's
 * hosted auth with a JWT bearer. Two pages (two users) meet on a presence
 * channel and both listen on a private one.
 */
describe("browser: pusher-js and laravel-echo on the Pusher demo page", () => {
  let vhost: RabbitVhost;
  let gateway: TestGateway;
  let browser: TestBrowser;

  beforeAll(async () => {
    vhost = await createRabbitVhost("pusherbrowser");
    gateway = await startTestGateway({ RABBITMQ_URL: vhost.url, PUSHER_APPS: pusherAppsEnv({ clientEvents: true }), API_KEYS: API_KEY, NAMESPACES });
    browser = await TestBrowser.launch();
  }, 60_000);
  afterEach(async ({ task }) => {
    if (task.result?.state === "fail") await keepScreenshots(browser, `pusher-browser-${task.name}`);
    browser.console.length = 0;
    browser.cspViolations.length = 0;
    for (const page of browser.context.pages()) await page.close().catch(() => {});
  });
  afterAll(async () => {
    await browser?.close();
    await gateway?.stop();
    await vhost?.drop();
  });

  async function openPage(user: { sub: string; info: { name: string } }, presence: string, privateName: string): Promise<Page> {
    const token = await signToken({ ...user, channels: ["huddle:*", "orders:*"] });
    const page = await browser.page();
    await page.goto(`http://127.0.0.1:${gateway.port}/pusher/demo#key=${PUSHER_APP.key}&token=${token}&presence=${presence}&private=${privateName}`);
    return page;
  }

  /** The page's record, without the Echo instance and channel it also holds. */
  const readDemo = (page: Page): Promise<PusherDemo> =>
    page.evaluate(() => {
      const { states, here, joined, left, events, whispers, privateSubscribed } = (globalThis as unknown as PusherDemoGlobals).pusherDemo;
      return { states, here, joined, left, events, whispers, privateSubscribed };
    });

  /** Waits until `check` holds of the page's `window.pusherDemo`, then returns it. */
  async function demoWhen(page: Page, check: (demo: PusherDemo) => boolean, what: string): Promise<PusherDemo> {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      // page.evaluate with a function, not waitForFunction with a string: the page's CSP refuses eval.
      const demo = await readDemo(page);
      if (check(demo)) return demo;
      if (Date.now() > deadline) throw new Error(`page never got ${what}: ${JSON.stringify(demo)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  it("serves the page under its CSP and both libraries as scripts", async () => {
    const page = await fetch(`${gateway.httpUrl}/pusher/demo`);
    expect(page.status).toBe(200);
    const csp = page.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).toMatch(/script-src 'self' 'sha256-[^']+'/);
    expect(page.headers.get("referrer-policy")).toBe("no-referrer");
    for (const [path, marker] of [
      ["/client/pusher.min.js", "Pusher"],
      ["/client/echo.iife.js", "var Echo="],
    ] as const) {
      const script = await fetch(`${gateway.httpUrl}${path}`);
      expect(script.status).toBe(200);
      expect(script.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
      expect(script.headers.get("x-content-type-options")).toBe("nosniff");
      expect(await script.text()).toContain(marker);
    }
  });

  it("two pages: presence here/joining/leaving, events from the pusher SDK (private channel) and the HTTP API (presence channel) reaching both, a whisper between them", async () => {
    const room = uniqueId("h").replace("-", "");
    const order = uniqueId("o").replace("-", "");
    const presence = `huddle.${room}`;
    const privateName = `orders.${order}`;
    const ada = { sub: "ada", info: { name: "Ada" } };
    const bob = { sub: "bob", info: { name: "Bob" } };

    const first = await openPage(ada, presence, privateName);
    const alone = await demoWhen(first, (demo) => demo.here !== undefined && demo.privateSubscribed, "here and the private subscription");
    expect(alone.here).toEqual([ada.info]);
    expect(alone.states).toContain("connected");

    const second = await openPage(bob, presence, privateName);
    const together = await demoWhen(second, (demo) => demo.here !== undefined && demo.privateSubscribed, "here and the private subscription");
    expect(together.here).toEqual(expect.arrayContaining([ada.info, bob.info]));
    expect(together.here).toHaveLength(2);
    expect((await demoWhen(first, (demo) => demo.joined.length > 0, "joining")).joined).toEqual([bob.info]);
    await first.locator("#members li.member", { hasText: "Bob" }).waitFor({ timeout: WAIT_MS });

    // An event from the backend through the gateway's REST API, by the real `pusher` server SDK.
    const backend = new PusherServer({ appId: PUSHER_APP.id, key: PUSHER_APP.key, secret: PUSHER_APP.secret, host: "127.0.0.1", port: String(gateway.port), useTLS: false });
    const triggered = await backend.trigger(`private-${privateName}`, "order.shipped", { order: order });
    expect(triggered.status).toBe(200);
    for (const page of [first, second]) {
      const events = (await demoWhen(page, (demo) => demo.events.some((event) => event.event === ".order.shipped"), "the triggered event")).events;
      expect(events.filter((event) => event.event === ".order.shipped")).toEqual([{ channel: `private-${privateName}`, event: ".order.shipped", data: { order } }]);
    }

    // An event from the backend through the native HTTP API, on the presence channel's native name.
    const published = await fetch(`${gateway.httpUrl}/api/v1/publish`, {
      method: "POST",
      headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ channel: `huddle:${room}`, type: "message.created", data: { text: "hello both" } }),
    });
    expect(published.status).toBe(202);
    for (const page of [first, second]) {
      const events = (await demoWhen(page, (demo) => demo.events.some((event) => event.event === ".message.created"), "the published event")).events;
      expect(events.filter((event) => event.event === ".message.created")).toEqual([{ channel: `presence-${presence}`, event: ".message.created", data: { text: "hello both" } }]);
    }

    // A whisper typed on the second page reaches the first, and not its sender.
    await second.fill("#note", "typing…");
    await second.click("#whisper");
    expect((await demoWhen(first, (demo) => demo.whispers.length > 0, "the whisper")).whispers).toEqual([{ text: "typing…" }]);
    await first.locator("#events li", { hasText: "typing…" }).waitFor({ timeout: WAIT_MS });
    expect((await readDemo(second)).whispers).toEqual([]);

    await second.close();
    expect((await demoWhen(first, (demo) => demo.left.length > 0, "leaving")).left).toEqual([bob.info]);
    await first.locator("#members li.member", { hasText: "Bob" }).waitFor({ state: "detached", timeout: WAIT_MS });

    expect(browser.cspViolations).toEqual([]);
    expect(browser.console).toEqual([]);
  }, 120_000);
});
