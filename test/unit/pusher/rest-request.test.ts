import Pusher from "pusher";
import { describe, expect, it } from "vitest";
import { MAX_CLOCK_SKEW_SEC, parseRestQuery, verifyRestRequest, type SignedRequest } from "../../../src/adapters/pusher/rest-request.js";

/** The real `pusher` server SDK signs; our check must accept exactly what it signs. */
const app = { id: "42", key: "app-key", secret: "0123456789abcdef-secret" };
const sdk = new Pusher({ appId: app.id, key: app.key, secret: app.secret, host: "unused.example" });

function signed(method: "GET" | "POST", path: string, options: { params?: Record<string, string>; body?: string } = {}): SignedRequest {
  const query = sdk.createSignedQueryString({ method, path, params: options.params ?? {}, ...(options.body === undefined ? {} : { body: options.body }) });
  return { method, path, query, body: Buffer.from(options.body ?? "") };
}

describe("Pusher REST request signatures", () => {
  const now = Date.now();

  it("accepts what the SDK signs, with and without a body, and gives the decoded parameters", () => {
    const get = verifyRestRequest(app, signed("GET", "/apps/42/channels", { params: { filter_by_prefix: "presence-", info: "user_count" } }), now);
    expect(get).toMatchObject({ ok: true });
    expect(get.ok && get.params.get("filter_by_prefix")).toBe("presence-");
    expect(verifyRestRequest(app, signed("POST", "/apps/42/events", { body: '{"name":"e","data":"{}","channel":"post.1"}' }), now)).toMatchObject({ ok: true });
  });

  it("refuses a changed method, path, parameter or body, and a wrong key, version or clock", () => {
    const body = '{"name":"e","data":"{}","channel":"post.1"}';
    const good = signed("POST", "/apps/42/events", { body, params: { info: "user_count" } });
    const spoiled: Array<[SignedRequest, string]> = [
      [{ ...good, method: "GET" }, "auth_signature"],
      [{ ...good, path: "/apps/43/events" }, "auth_signature"],
      [{ ...good, query: good.query.replace("info=user_count", "info=subscription_count") }, "auth_signature"],
      [{ ...good, body: Buffer.from(body.replace("post.1", "post.2")) }, "body_md5"],
      [{ ...good, query: good.query.replace(/&?body_md5=[0-9a-f]+/, "") }, "needs body_md5"],
      [{ ...good, query: good.query.replace("auth_key=app-key", "auth_key=other") }, "auth_key"],
      [{ ...good, query: good.query.replace("auth_version=1.0", "auth_version=2.0") }, "auth_version"],
      [{ ...good, query: good.query.replace(/&?auth_signature=[0-9a-f]+/, "") }, "auth_signature missing"],
    ];
    for (const [request, message] of spoiled) {
      expect(verifyRestRequest(app, request, now), message).toMatchObject({ ok: false, badSignature: true, message: expect.stringContaining(message) });
    }
    // From the timestamp the SDK signed, not `now`: on a loaded machine the signing may fall in a later second.
    const signedAtMs = Number(new URLSearchParams(good.query).get("auth_timestamp")) * 1000;
    const skew = (MAX_CLOCK_SKEW_SEC + 1) * 1000;
    for (const at of [signedAtMs + skew, signedAtMs - skew]) expect(verifyRestRequest(app, good, at)).toMatchObject({ ok: false, message: expect.stringContaining("s away") });
    expect(verifyRestRequest(app, good, signedAtMs + (MAX_CLOCK_SKEW_SEC - 1) * 1000)).toMatchObject({ ok: true });
  });

  it("refuses a query that repeats a parameter or is not percent-encoding with 400, not as a bad signature", () => {
    expect(parseRestQuery("a=1&a=2")).toMatchObject({ ok: false, message: expect.stringContaining("twice") });
    const bad = verifyRestRequest(app, { method: "GET", path: "/apps/42/channels", query: "a=%zz", body: Buffer.alloc(0) }, now);
    expect(bad).toMatchObject({ ok: false, badSignature: false, rejection: { status: 400 } });
  });
});
