import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import Pusher from "pusher";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  authToken,
  channelAuthString,
  hmacHex,
  md5Hex,
  restSigningString,
  userAuthString,
  verifyAuthToken,
} from "../../../src/adapters/pusher/signatures.js";

/** The real `pusher` server SDK is the reference: what it signs, we verify; what we sign, matches it. */
const app = { id: "42", key: "app-key", secret: "0123456789abcdef-secret" };
const sdk = new Pusher({ appId: app.id, key: app.key, secret: app.secret, cluster: "mt1" });

describe("Pusher auth signatures", () => {
  it("verifies the SDK's private channel auth and makes the same token", () => {
    const { auth } = sdk.authorizeChannel("123.456", "private-room.7");
    expect(verifyAuthToken(app, channelAuthString("123.456", "private-room.7"), auth)).toBe(true);
    expect(authToken(app, channelAuthString("123.456", "private-room.7"))).toBe(auth);
  });

  it("verifies the SDK's presence auth over the exact channel_data string", () => {
    const { auth, channel_data } = sdk.authorizeChannel("1.2", "presence-room.7", { user_id: "ada", user_info: { name: "Ada" } });
    expect(channel_data).toBeDefined();
    expect(verifyAuthToken(app, channelAuthString("1.2", "presence-room.7", channel_data), auth)).toBe(true);
    // The same data re-serialized differently is another string: refused.
    const reordered = JSON.stringify({ user_info: { name: "Ada" }, user_id: "ada" });
    expect(verifyAuthToken(app, channelAuthString("1.2", "presence-room.7", reordered), auth)).toBe(false);
  });

  it("verifies the SDK's user authentication for pusher:signin", () => {
    const { auth, user_data } = sdk.authenticateUser("9.9", { id: "ada", watchlist: ["grace"] });
    expect(verifyAuthToken(app, userAuthString("9.9", user_data), auth)).toBe(true);
    expect(verifyAuthToken(app, userAuthString("9.8", user_data), auth)).toBe(false);
  });

  it("refuses another socket, channel, key, secret and every malformed auth", () => {
    const { auth } = sdk.authorizeChannel("1.2", "private-room.7");
    const signed = channelAuthString("1.2", "private-room.7");
    expect(verifyAuthToken(app, channelAuthString("1.3", "private-room.7"), auth)).toBe(false);
    expect(verifyAuthToken(app, channelAuthString("1.2", "private-room.8"), auth)).toBe(false);
    expect(verifyAuthToken({ ...app, key: "other" }, signed, auth)).toBe(false);
    expect(verifyAuthToken({ ...app, secret: "another-secret-16+" }, signed, auth)).toBe(false);
    const signature = auth.slice(auth.indexOf(":") + 1);
    for (const bad of [undefined, null, 7, {}, "", ":", "app-key", "app-key:", `app-key:${signature.toUpperCase()}`, `app-key:${signature}0`, `app-key:${signature.slice(1)}`, `:${signature}`, `app-key:${signature} `]) {
      expect(verifyAuthToken(app, signed, bad)).toBe(false);
    }
  });
});

describe("Pusher REST request signatures", () => {
  let received: { method: string; path: string; query: Map<string, string>; body: string }[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://localhost");
      received.push({ method: req.method ?? "", path: url.pathname, query: new Map(url.searchParams), body });
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  let rest: Pusher;

  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    rest = new Pusher({ appId: app.id, key: app.key, secret: app.secret, host: "127.0.0.1", port: String(port), useTLS: false });
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  function expectSignedBySdk(request: (typeof received)[number]): void {
    const signature = request.query.get("auth_signature");
    expect(signature).toMatch(/^[0-9a-f]{64}$/);
    expect(hmacHex(app.secret, restSigningString(request.method, request.path, request.query))).toBe(signature);
  }

  it("reproduces the signature of a POST with a body (body_md5 included)", async () => {
    received = [];
    await rest.trigger(["presence-room.7", "post.1"], "message.created", { text: "héllo & = ?" });
    const [request] = received;
    expect(request).toBeDefined();
    expect(request!.query.get("body_md5")).toBe(md5Hex(request!.body));
    expectSignedBySdk(request!);
  });

  it("reproduces the signature of a GET whose parameters need URL encoding", async () => {
    received = [];
    await rest.get({ path: "/channels", params: { filter_by_prefix: "presence-", info: "user_count,subscription_count" } });
    const [request] = received;
    expect(request!.path).toBe("/apps/42/channels");
    expect(request!.query.get("info")).toBe("user_count,subscription_count");
    expectSignedBySdk(request!);
  });

  it("changes with every signed part", () => {
    const query = new Map([["auth_key", app.key], ["auth_timestamp", "1700000000"], ["auth_version", "1.0"]]);
    const base = restSigningString("GET", "/apps/42/channels", query);
    expect(base).toBe("GET\n/apps/42/channels\nauth_key=app-key&auth_timestamp=1700000000&auth_version=1.0");
    expect(restSigningString("get", "/apps/42/channels", query)).toBe(base);
    expect(restSigningString("GET", "/apps/42/channels", new Map([...query, ["auth_signature", "x"]]))).toBe(base);
    expect(restSigningString("GET", "/apps/43/channels", query)).not.toBe(base);
    expect(restSigningString("GET", "/apps/42/channels", new Map([...query, ["info", "user_count"]]))).not.toBe(base);
  });
});
