import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseChannel, parseRoutingKey, routingKey, routingPrefix } from "@sobranie/protocol/channel";
import { anyString, runs } from "./fuzz.js";

/**
 * The channel rule of docs/protocol.md §3.1, written out on its own
 * ("namespace `[a-z][a-z0-9_-]{0,31}`, id `[A-Za-z0-9_-]{1,128}`"), not taken
 * from src: the decoder must accept exactly this language. `client` and `presence` are reserved by the
 * namespace configuration, not by the grammar, so they are not excluded here.
 */
const DOCUMENTED_CHANNEL = /^[a-z][a-z0-9_-]{0,31}:[A-Za-z0-9_-]{1,128}$/;
const namespace = fc.stringMatching(/^[a-z][a-z0-9_-]{0,31}$/);
const channelId = fc.stringMatching(/^[A-Za-z0-9_-]{1,128}$/);
const eventType = fc.stringMatching(/^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,7}$/);

/** Namespaces and ids at their length limits, where an off-by-one would show. */
const longestNamespace = fc.stringMatching(/^[a-z][a-z0-9_-]{31}$/);
const longestChannelId = fc.stringMatching(/^[A-Za-z0-9_-]{128}$/);

/** Near misses: a valid channel with one character inserted, replaced or removed, so the search stays at the grammar's edge. */
const nearMiss = fc
  .tuple(fc.oneof(namespace, longestNamespace), fc.oneof(channelId, longestChannelId), fc.nat(), fc.constantFrom("insert", "replace", "remove"), fc.oneof(anyString, fc.constantFrom(".", "*", "#", " ", ":", "A", "\n", "\0", "é", "x".repeat(140))))
  .map(([ns, id, at, edit, text]) => {
    const valid = `${ns}:${id}`;
    const index = at % (valid.length + 1);
    if (edit === "insert") return valid.slice(0, index) + text + valid.slice(index);
    if (edit === "replace") return valid.slice(0, index) + text + valid.slice(index + 1);
    return valid.slice(0, index) + valid.slice(index + 1);
  });

describe("channel grammar (property)", () => {
  it("parses every channel of the documented grammar and formats it back to the same text", () => {
    fc.assert(
      fc.property(namespace, channelId, (ns, id) => {
        const text = `${ns}:${id}`;
        const channel = parseChannel(text);
        expect(channel).toEqual({ namespace: ns, id, name: text });
        expect(`${channel!.namespace}:${channel!.id}`).toBe(text);
      }),
      runs(1_000),
    );
  });

  it("accepts a string exactly when it matches the documented grammar", () => {
    fc.assert(
      fc.property(fc.oneof(anyString, nearMiss, fc.string({ unit: fc.constantFrom("a", "Z", "0", "_", "-", ":", ".", "*"), maxLength: 40 })), (text) => {
        expect(parseChannel(text) !== undefined).toBe(DOCUMENTED_CHANNEL.test(text));
      }),
      runs(2_000),
    );
  });

  it("never yields a channel whose routing-key prefix holds an AMQP wildcard, a dot beyond the separator, or whitespace", () => {
    fc.assert(
      fc.property(fc.oneof(anyString, nearMiss), (text) => {
        const channel = parseChannel(text);
        if (channel) expect(routingPrefix(channel)).toMatch(/^[^.*#\s]+\.[^.*#\s]+$/);
      }),
      runs(1_000),
    );
  });

  it("reads back the channel and type of every routing key it builds, and never throws on any key", () => {
    fc.assert(
      fc.property(namespace, channelId, eventType, (ns, id, type) => {
        const channel = parseChannel(`${ns}:${id}`)!;
        expect(parseRoutingKey(routingKey(channel, type))).toEqual({ channel, type });
      }),
      runs(1_000),
    );
    fc.assert(
      fc.property(fc.oneof(anyString, nearMiss.map((text) => text.replace(":", "."))), (key) => {
        const route = parseRoutingKey(key);
        if (route) expect(routingKey(route.channel, route.type)).toBe(key);
      }),
      runs(1_000),
    );
  });
});
