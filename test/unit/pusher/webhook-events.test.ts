import Pusher from "pusher";
import { describe, expect, it } from "vitest";
import { webhookInputOf } from "../../../src/adapters/pusher/webhook-events.js";
import { PusherChannelNames } from "../../../src/adapters/pusher/channel-names.js";
import { BUILT_IN_NAMESPACES } from "../../../src/core/namespaces.js";

const channelNames = new PusherChannelNames((namespace) => BUILT_IN_NAMESPACES.find((policy) => policy.name === namespace));
const context = (deploymentId: string | undefined) => ({ deploymentId, channelNames });
import { webhookRequest } from "../../../src/adapters/pusher/webhook-request.js";

const utf8 = new TextEncoder();
const json = (value: unknown): Uint8Array => utf8.encode(JSON.stringify(value));
/** A presence event's body as the gateways publish it (docs/protocol.md §12). */
const presence = (type: "join" | "leave", data: Record<string, unknown>) =>
  json({ id: "e1", type: `presence.${type}`, data: { channel: "room:7", user: "ada", ...data }, occurredAt: "2026-01-01T00:00:00.000Z" });
/** A channel's occupancy change as the gateways publish it: its first or last Pusher subscription (docs/protocol.md §12). */
const occupancy = (type: "occupied" | "vacated", channel: string, extra: Record<string, unknown> = {}) =>
  json({ id: "e2", type: `presence.${type}`, data: { channel, ...extra }, occurredAt: "2026-01-01T00:00:00.000Z" });
const clientEvent = { name: "client_event", channel: "private-chat.1", event: "client-typing", data: "{\"on\":true}", socket_id: "123.456" };

describe("webhook events of a queued message", () => {
  it("makes a channel's first join channel_occupied then member_added, a later join member_added alone", () => {
    expect(webhookInputOf("presence.room.7.join", presence("join", { members: 1 }), context(undefined))).toEqual({
      ok: true,
      appId: undefined,
      events: [
        { name: "channel_occupied", channel: "presence-room.7" },
        { name: "member_added", channel: "presence-room.7", user_id: "ada" },
      ],
    });
    expect(webhookInputOf("presence.room.7.join", presence("join", { members: 2 }), context(undefined))).toMatchObject({ events: [{ name: "member_added" }] });
  });

  it("makes a channel's last leave member_removed then channel_vacated, an earlier leave member_removed alone", () => {
    expect(webhookInputOf("presence.room.7.leave", presence("leave", { members: 0 }), context(undefined))).toMatchObject({
      events: [{ name: "member_removed", channel: "presence-room.7", user_id: "ada" }, { name: "channel_vacated", channel: "presence-room.7" }],
    });
    expect(webhookInputOf("presence.room.7.leave", presence("leave", { members: 3 }), context(undefined))).toMatchObject({ events: [{ name: "member_removed" }] });
  });

  it("gives the member event alone when the count is missing, and nothing for another deployment's change", () => {
    expect(webhookInputOf("presence.room.7.join", presence("join", {}), context(undefined))).toMatchObject({ events: [{ name: "member_added" }] });
    expect(webhookInputOf("presence.room.7.join", presence("join", { members: 1, deployment: "blue" }), context("green"))).toEqual({ ok: true, appId: undefined, events: [] });
    expect(webhookInputOf("presence.room.7.join", presence("join", { members: 1, deployment: "blue" }), context("blue"))).toMatchObject({ events: [{}, {}] });
  });

  it("makes a channel's occupancy channel_occupied and channel_vacated on its plain Pusher name, for every app; nothing on presence channels", () => {
    expect(webhookInputOf("presence.post.1.occupied", occupancy("occupied", "post:1"), context(undefined))).toEqual({
      ok: true,
      appId: undefined,
      events: [{ name: "channel_occupied", channel: "post.1" }],
    });
    expect(webhookInputOf("presence.user.ada.vacated", occupancy("vacated", "user:ada"), context(undefined))).toMatchObject({
      events: [{ name: "channel_vacated", channel: "private-user.ada" }],
    });
    // A presence channel's occupancy is its members' (the join and leave events).
    expect(webhookInputOf("presence.room.7.occupied", occupancy("occupied", "room:7"), context(undefined))).toEqual({ ok: true, appId: undefined, events: [] });
    expect(webhookInputOf("presence.post.1.occupied", occupancy("occupied", "post:1", { deployment: "blue" }), context("green"))).toMatchObject({ events: [] });
  });

  it("takes an entry-point event for its app alone, as Pusher spells it", () => {
    expect(webhookInputOf("pusher.app1.client_event", json(clientEvent), context(undefined))).toEqual({ ok: true, appId: "app1", events: [clientEvent] });
    expect(webhookInputOf("pusher.app1.cache_miss", json({ name: "cache_miss", channel: "cache-post.1" }), context(undefined))).toMatchObject({ ok: true, appId: "app1" });
  });

  it.each([
    ["a name other than the routing key's", "pusher.app1.cache_miss", json(clientEvent), /named client_event under routing key word cache_miss/],
    ["a field Pusher does not send", "pusher.app1.client_event", json({ ...clientEvent, extra: 1 }), /extra/],
    ["a socket id not <digits>.<digits>", "pusher.app1.client_event", json({ ...clientEvent, socket_id: "abc" }), /socket_id must be <digits>.<digits>/],
    ["a channel outside Pusher's alphabet", "pusher.app1.cache_miss", json({ name: "cache_miss", channel: "room:7" }), /channel must be a Pusher channel name/],
    ["an unknown event name", "pusher.app1.subscription_count", json({ name: "subscription_count", channel: "post.1" }), /name/],
    ["a body that is not JSON", "pusher.app1.client_event", utf8.encode("{"), /not UTF-8 JSON/],
    ["a presence event without its user", "presence.room.7.join", json({ type: "presence.join", data: { channel: "room:7" } }), /user/],
    ["a routing key of neither kind", "post.1.created", json({}), /neither presence/],
    ["an occupancy of a namespace not configured", "presence.gone.1.occupied", occupancy("occupied", "gone:1"), /no configured namespace/],
    ["a status event", "presence.status.ada.online", json({ type: "presence.online", data: { user: "ada" } }), /neither presence/],
  ])("refuses %s with a message saying so", (_what, routingKey, body, message) => {
    const input = webhookInputOf(routingKey, body, context(undefined));
    expect(input.ok).toBe(false);
    if (!input.ok) expect(input.message).toMatch(message);
  });
});

describe("a webhook request", () => {
  const app = { id: "42", key: "app-key", secret: "0123456789abcdef-secret" };
  const sdk = new Pusher({ appId: app.id, key: app.key, secret: app.secret, cluster: "mt1" });
  const request = webhookRequest(app, [{ name: "member_added", channel: "presence-room.7", user_id: "ada" }], 1_700_000_000_000);

  it("is what the pusher SDK accepts: its key, its signature, its JSON body", () => {
    const webhook = sdk.webhook({ headers: { ...request.headers }, rawBody: request.body });
    expect(webhook.isValid()).toBe(true);
    expect(webhook.getEvents()).toEqual([{ name: "member_added", channel: "presence-room.7", user_id: "ada" }]);
    expect(webhook.getTime().getTime()).toBe(1_700_000_000_000);
  });

  it("is refused by the SDK with another secret, another body or a content type with a charset", () => {
    const impostor = new Pusher({ appId: app.id, key: app.key, secret: "another-secret-0123456789", cluster: "mt1" });
    expect(impostor.webhook({ headers: { ...request.headers }, rawBody: request.body }).isValid()).toBe(false);
    expect(sdk.webhook({ headers: { ...request.headers }, rawBody: request.body.replace("ada", "eve") }).isValid()).toBe(false);
    expect(sdk.webhook({ headers: { ...request.headers, "content-type": "application/json; charset=utf-8" }, rawBody: request.body }).isValid()).toBe(false);
  });
});
