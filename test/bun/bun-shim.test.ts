import { describe, expect, it } from "vitest";
import { BunHttpRequest, BunHttpResponse } from "../../src/adapters/bun/bun-http.js";
import { BunRouter } from "../../src/adapters/bun/bun-router.js";
import type { BunServer } from "../../src/adapters/bun/bun-serve.js";

// The runtime-neutral parts of the Bun shim, on Node under vitest; what needs
// Bun itself (streams, upgrades, Bun.serve) is in gateway.bun.ts.

const noServer = {} as BunServer;

describe("BunRouter", () => {
  it("prefers a static route over a :param one over a wildcard, and a method over any, whatever the order", () => {
    const router = new BunRouter();
    const hit = (name: string) => () => name;
    router.add("any", "/*", hit("fallback"));
    router.add("get", "/api/v1/presence/:channel", hit("presence"));
    router.add("get", "/api/v1/presence/static", hit("static"));
    router.add("any", "/api/v1/presence/:channel", hit("any-presence"));
    router.add("get", "/", hit("root"));
    const name = (method: string, path: string) => (router.match(method, path)?.handler as unknown as () => string)();
    expect(name("get", "/api/v1/presence/static")).toBe("static");
    expect(name("get", "/api/v1/presence/room%3A7")).toBe("presence");
    expect(name("post", "/api/v1/presence/room%3A7")).toBe("any-presence");
    expect(name("get", "/")).toBe("root");
    expect(name("get", "/api/v1/presence")).toBe("fallback");
    expect(name("delete", "/anything/deeper")).toBe("fallback");
    expect(router.match("get", "/api/v1/presence/room%3A7")?.params).toEqual(["room%3A7"]);
  });

  it("matches nothing when no route fits", () => {
    const router = new BunRouter();
    router.add("get", "/healthz", () => undefined);
    expect(router.match("get", "/healthz/x")).toBeUndefined();
    expect(router.match("post", "/healthz")).toBeUndefined();
  });
});

describe("BunHttpRequest", () => {
  it("reads path, query values (percent-decoded, + kept), headers and method as uWS does", () => {
    const req = new BunHttpRequest(
      new Request("http://127.0.0.1:8080/realtime/events?channels=post%3A1,room%3A2&token=a+b&bad=%E0%A4%A&empty", { headers: { "Last-Event-ID": "42" } }),
    );
    expect(req.getUrl()).toBe("/realtime/events");
    expect(req.getMethod()).toBe("get");
    expect(req.getQuery("channels")).toBe("post:1,room:2");
    expect(req.getQuery("token")).toBe("a+b");
    expect(req.getQuery("bad")).toBe("%E0%A4%A");
    expect(req.getQuery("empty")).toBe("");
    expect(req.getQuery("missing")).toBeUndefined();
    expect(req.getHeader("last-event-id")).toBe("42");
    expect(req.getHeader("authorization")).toBe("");
  });
});

describe("BunHttpResponse", () => {
  it("settles with one Response carrying the status, its text and the headers written before end", async () => {
    const res = new BunHttpResponse(new BunHttpRequest(new Request("http://127.0.0.1/x")), noServer);
    res.cork(() => res.writeStatus("401 Unauthorized").writeHeader("content-type", "application/json").end('{"error":{}}'));
    res.end("ignored: already ended");
    const response = (await res.result)!;
    expect(response.status).toBe(401);
    expect(response.statusText).toBe("Unauthorized");
    expect(response.headers.get("content-type")).toBe("application/json");
    expect(await response.text()).toBe('{"error":{}}');
  });

  it("hands the body over in chunks, then an empty last one", async () => {
    const req = new BunHttpRequest(new Request("http://127.0.0.1/api/v1/publish", { method: "POST", body: "x".repeat(100_000) }));
    const res = new BunHttpResponse(req, noServer);
    const received = await new Promise<{ bytes: number; lastEmpty: boolean }>((resolve) => {
      let bytes = 0;
      res.onData((chunk, isLast) => {
        bytes += chunk.byteLength;
        if (isLast) resolve({ bytes, lastEmpty: chunk.byteLength === 0 });
      });
    });
    expect(received).toEqual({ bytes: 100_000, lastEmpty: true });
  });

  it("runs onAborted once when the client leaves before the end, and then ignores writes", async () => {
    const controller = new AbortController();
    const res = new BunHttpResponse(new BunHttpRequest(new Request("http://127.0.0.1/x", { signal: controller.signal })), noServer);
    let aborts = 0;
    res.onAborted(() => (aborts += 1));
    controller.abort();
    expect(aborts).toBe(1);
    expect(res.write("late")).toBe(false);
    res.end("late");
    // Settled for Bun to release the request, with nothing the handler wrote.
    expect((await res.result)?.status).toBe(499);
  });
});
