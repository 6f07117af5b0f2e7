import { createRequire } from "node:module";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestBrowser } from "../support/browser.js";
import { DurableEnv } from "../support/durable-env.js";
import { PUSHER_APP, pusherAppsEnv } from "../support/pusher-clients.js";
import { startTestGateway, uniqueId, type TestGateway } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";

const PUSHER_JS_BUNDLE = createRequire(import.meta.url).resolve("pusher-js/dist/web/pusher.min.js");
const NAMESPACES = JSON.stringify([{ name: "feed", subscribe: "any", durable: true, pusherSeq: true }]);

// A page served by the gateway itself (same origin: the gateway answers no CORS) runs the stock pusher-js browser build.
describe("a browser on stock pusher-js closes a gap with the history endpoint", () => {
  let env: DurableEnv;
  let node: TestGateway;
  let browser: TestBrowser;

  beforeAll(async () => {
    env = await DurableEnv.create("pusherhistbr");
    node = await startTestGateway({ ...env.env, ROLE: "all", PUSHER_APPS: pusherAppsEnv(), NAMESPACES });
    browser = await TestBrowser.launch();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await node?.stop();
    await env?.close();
  });

  it("sees each event's seq in data, and after a disconnect fetches the events it missed by after_seq", async () => {
    const id = uniqueId("b");
    const page = await browser.page();
    await page.goto(`${node.httpUrl}/healthz`);
    await page.addScriptTag({ path: PUSHER_JS_BUNDLE });
    // A string: this file is compiled without the DOM types. The app's code: remember the last seq, fetch after it on reconnect.
    await page.evaluate(`(() => {
      window.received = [];
      window.lastSeq = 0;
      const pusher = new Pusher(${JSON.stringify(PUSHER_APP.key)}, { cluster: "mt1", wsHost: "127.0.0.1", wsPort: ${node.port}, forceTLS: false, enabledTransports: ["ws"] });
      window.pusher = pusher;
      const channel = pusher.subscribe("feed.${id}");
      channel.bind("note", (data) => { window.received.push(data); window.lastSeq = data.__seq; });
      window.catchUp = async () => {
        const response = await fetch("/pusher/history?channel=feed.${id}&after_seq=" + window.lastSeq);
        const page = await response.json();
        for (const event of page.events) { const data = JSON.parse(event.data); window.received.push(data); window.lastSeq = data.__seq; }
        return page.more;
      };
    })()`);
    await waitFor(async () => (await page.evaluate(`window.pusher.channel("feed.${id}").subscribed`)) === true, 15_000, "subscribed");

    await env.publishEvent(`feed:${id}`, uniqueId("e"), { n: 1 }, "note");
    await waitFor(async () => ((await page.evaluate("window.received.length")) as number) === 1, 15_000, "the live event");
    await page.evaluate("window.pusher.disconnect()");
    for (const n of [2, 3]) await env.publishEvent(`feed:${id}`, uniqueId("e"), { n }, "note");
    await waitFor(async () => (await env.rows(`feed:${id}`)).length === 3, 15_000, "3 stored");
    const rows = await env.rows(`feed:${id}`);

    expect(await page.evaluate("window.catchUp()")).toBe(false);
    expect(await page.evaluate("window.received")).toEqual(rows.map((row, index) => ({ n: index + 1, __seq: row.seq })));
  });
});
