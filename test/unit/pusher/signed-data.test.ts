import { describe, expect, it } from "vitest";
import { readChannelData, readUserData } from "../../../src/adapters/pusher/signed-data.js";

describe("what an app's signature covers: channel_data and user_data", () => {
  it("reads a presence member: user_id as a string or a whole number, user_info up to 1 KiB", () => {
    expect(readChannelData(JSON.stringify({ user_id: "ada", user_info: { name: "Ada" } }))).toEqual({ userId: "ada", info: { name: "Ada" } });
    expect(readChannelData(JSON.stringify({ user_id: 42 }))).toEqual({ userId: "42", info: undefined });
    expect(readChannelData(JSON.stringify({ user_id: 4.5 }))).toMatch(/string or a whole number/);
    expect(readChannelData(JSON.stringify({ user_id: "a b" }))).toMatch(/^channel_data.user_id:/);
    expect(readChannelData(JSON.stringify({ user_id: "ada", user_info: "x".repeat(1_100) }))).toMatch(/over 1024 bytes/);
    expect(readChannelData("[1]")).toMatch(/JSON object/);
    expect(readChannelData("{")).toBe("channel_data is not JSON");
  });

  it("reads a signin's user: its id, and a watchlist of at most 100 user ids with repeats dropped", () => {
    expect(readUserData(JSON.stringify({ id: "ada" }))).toEqual({ id: "ada", watchlist: [] });
    expect(readUserData(JSON.stringify({ id: "ada", watchlist: ["bob", "eve", "bob"] }))).toEqual({ id: "ada", watchlist: ["bob", "eve"] });
    expect(readUserData(JSON.stringify({ id: "ada", watchlist: Array.from({ length: 100 }, (_, i) => `u${i}`) }))).toMatchObject({ id: "ada" });
    expect(readUserData(JSON.stringify({ id: "ada", watchlist: Array.from({ length: 101 }, (_, i) => `u${i}`) }))).toBe("user_data.watchlist has 101 user ids; at most 100");
    expect(readUserData(JSON.stringify({ id: "ada", watchlist: "bob" }))).toBe("user_data.watchlist must be an array of user ids");
    expect(readUserData(JSON.stringify({ id: "ada", watchlist: ["bob", 7] }))).toMatch(/^user_data.watchlist\[1\] must be a string/);
    expect(readUserData(JSON.stringify({ id: 7 }))).toMatch(/^user_data.id must be a string/);
    expect(readUserData("nope")).toBe("user_data is not JSON");
  });
});
