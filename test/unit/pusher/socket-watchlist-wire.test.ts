import { describe, expect, it } from "vitest";
import { pusherWatchlistWire } from "../../../src/adapters/pusher/socket-watchlist-wire.js";

describe("the Pusher watchlist wire of one user", () => {
  const wire = pusherWatchlistWire("ada");

  it("turns the user's status frames into online and offline watchlist events, data as JSON text as pusher-js reads it", () => {
    const online = JSON.parse(wire.encode({ op: "status", user: "ada", online: true, lastSeen: "2026-01-01T00:00:00.000Z" }, undefined)!);
    expect(online).toEqual({ event: "pusher_internal:watchlist_events", data: '{"events":[{"name":"online","user_ids":["ada"]}]}' });
    const offline = JSON.parse(wire.encode({ op: "status", user: "ada", online: false, lastSeen: null }, undefined)!);
    expect(JSON.parse(offline.data as string)).toEqual({ events: [{ name: "offline", user_ids: ["ada"] }] });
  });

  it("sends nothing for the channel's other frames, such as events published to status:<user>", () => {
    const event = { op: "event", channel: "status:ada", id: "e1", type: "said", data: {}, ts: "2026-01-01T00:00:00.000Z" } as const;
    expect(wire.encode(event, undefined)).toBeUndefined();
  });

  it("joins a topic outside Pusher's channel alphabet, so no Pusher channel's topic is the same", () => {
    expect(wire.topic).toBe("pusher/#watchlist-ada");
  });
});
