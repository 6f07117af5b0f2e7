import { describe, expect, it } from "vitest";
import { BUILT_IN_NAMESPACES } from "../../../src/core/namespaces.js";
import { PusherChannelNames } from "../../../src/adapters/pusher/channel-names.js";
import { eventDataOf, MAX_EVENT_DATA_BYTES, parseBatchBody, parseEventsBody } from "../../../src/adapters/pusher/rest-events.js";

const policyOf = new PusherChannelNames((namespace) => BUILT_IN_NAMESPACES.find((policy) => policy.name === namespace));

describe("Pusher REST event bodies", () => {
  it("makes one publish per distinct channel, the event name as the type", () => {
    const parsed = parseEventsBody({ name: "App\\Events\\OrderShipped", data: '{"id":7}', channels: ["post.1", "cache-post.1", "presence-room.2"], socket_id: "1.2" }, policyOf);
    expect(parsed).toMatchObject({
      ok: true,
      info: [],
      publishes: [
        { channel: { name: "post:1" }, pusherName: "post.1", kind: "public", type: "App\\Events\\OrderShipped", data: { id: 7 }, excludeSocket: "1.2" },
        { channel: { name: "room:2" }, pusherName: "presence-room.2", kind: "presence" },
      ],
    });
    expect(parsed.ok && parsed.publishes).toHaveLength(2);
  });

  it("sends #server-to-user-<id> (the SDKs' sendToUser) to the user's own channel user:<id>", () => {
    expect(parseEventsBody({ name: "e", data: "{}", channel: "#server-to-user-ada" }, policyOf)).toMatchObject({
      ok: true,
      publishes: [{ channel: { name: "user:ada", namespace: "user", id: "ada" }, pusherName: "#server-to-user-ada" }],
    });
    for (const channel of ["#server-to-user-", "#server-to-user-a.b", "#server-to-ada"]) {
      expect(parseEventsBody({ name: "e", data: "{}", channel }, policyOf), channel).toMatchObject({ ok: false });
    }
  });

  it("turns JSON objects and arrays into data, keeps every other string as it is", () => {
    expect(eventDataOf('{"a":[1]}')).toEqual({ ok: true, data: { a: [1] } });
    expect(eventDataOf("[1,2]")).toEqual({ ok: true, data: [1, 2] });
    for (const text of ["hello", "42", '"quoted"', "null", "true", "{broken"]) expect(eventDataOf(text)).toEqual({ ok: true, data: text });
    expect(eventDataOf(`${"[".repeat(65)}${"]".repeat(65)}`)).toMatchObject({ ok: false, message: expect.stringContaining("64 levels") });
  });

  it("refuses what Pusher refuses, too large data apart", () => {
    const event = { name: "e", data: "{}", channel: "post.1" };
    expect(parseEventsBody({ ...event, data: "x".repeat(MAX_EVENT_DATA_BYTES + 1) }, policyOf)).toMatchObject({ ok: false, tooLarge: true });
    expect(parseEventsBody({ ...event, data: "é".repeat(MAX_EVENT_DATA_BYTES / 2) }, policyOf)).toMatchObject({ ok: true });
    expect(parseEventsBody({ ...event, data: "é".repeat(MAX_EVENT_DATA_BYTES / 2 + 1) }, policyOf)).toMatchObject({ ok: false, tooLarge: true });
    const refused: unknown[] = [
      { ...event, channel: undefined },
      { ...event, channels: ["post.2"] },
      { ...event, channel: undefined, channels: [] },
      { ...event, name: "a:b" },
      { ...event, name: "x".repeat(201) },
      { ...event, channel: "private-post.1" },
      { ...event, socket_id: "1" },
      { ...event, info: "occupied" },
      { name: "e", channel: "post.1" },
    ];
    for (const body of refused) expect(parseEventsBody(body, policyOf), JSON.stringify(body)).toMatchObject({ ok: false, tooLarge: false });
  });

  it("reads a batch in order, at most 10 events, each refusal named by its position", () => {
    const one = { name: "e", data: "{}", channel: "post.1" };
    expect(parseBatchBody({ batch: [one, { ...one, channel: "status.ada", info: "subscription_count" }] }, policyOf)).toMatchObject({
      ok: true,
      info: ["subscription_count"],
      publishes: [{ channel: { name: "post:1" } }, { channel: { name: "status:ada" } }],
    });
    expect(parseBatchBody({ batch: Array.from({ length: 11 }, () => one) }, policyOf)).toMatchObject({ ok: false, message: expect.stringContaining("at most 10") });
    expect(parseBatchBody({ batch: [one, { ...one, channel: "nope.1" }] }, policyOf)).toMatchObject({ ok: false, message: expect.stringContaining("batch.1") });
  });
});
