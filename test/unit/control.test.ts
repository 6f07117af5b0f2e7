import { describe, expect, it } from "vitest";
import { decodeControl, encodeControl, MAX_CONTROL_BYTES, parseControl, type ControlCommand } from "@sobranie/protocol/control";

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

describe("control messages", () => {
  it.each<ControlCommand>([
    { command: "disconnect", user: "u1", mode: "final" },
    { command: "disconnect", user: "u1", mode: "reauthenticate", reason: "signed out everywhere" },
    { command: "unsubscribe", user: "u1", channel: "room:7" },
    { command: "revoke", user: "u1", tokenId: "jti-1" },
    { command: "revoke", user: "u1", tokenId: "jti-1", expiresAt: 1_900_000_000_000 },
    { command: "revoke", user: "u1", issuedBefore: 1_800_000_000_000 },
  ])("decodes what encodeControl wrote: %j", (command) => {
    expect(decodeControl(bytes(encodeControl(command)))).toEqual({ ok: true, command });
  });

  it.each([
    ["{nope", "not_json", /not UTF-8 JSON/],
    ["[1]", "invalid", /must be a JSON object/],
    ['{"command":"explode","user":"u1"}', "invalid", /command must be one of disconnect, unsubscribe, revoke/],
    ['{"command":"disconnect","user":"u1"}', "invalid", /^mode is required$/],
    ['{"command":"disconnect","user":"u1","mode":"later"}', "invalid", /mode must be "final" or "reauthenticate"/],
    ['{"command":"disconnect","user":"u.1","mode":"final"}', "invalid", /user must be a JWT sub/],
    ['{"command":"disconnect","user":"u1","mode":"final","extra":1}', "invalid", /disconnect does not take "extra" \(fields: command, user, mode, reason\)/],
    ['{"command":"unsubscribe","user":"u1","channel":"room:*"}', "invalid", /channel must be namespace:id/],
    ['{"command":"revoke","user":"u1"}', "invalid", /exactly one of tokenId and issuedBefore/],
    ['{"command":"revoke","user":"u1","tokenId":"a","issuedBefore":1}', "invalid", /exactly one of tokenId and issuedBefore/],
    ['{"command":"revoke","user":"u1","issuedBefore":"2026-01-01T00:00:00Z"}', "invalid", /issuedBefore must be a number \(ms since the epoch\)/],
    ['{"command":"revoke","user":"u1","issuedBefore":1.5}', "invalid", /whole number of ms/],
    [`{"command":"revoke","user":"u1","tokenId":"${"x".repeat(257)}"}`, "invalid", /at most 256 characters/],
  ])("refuses %s with a reason and a readable message", (text, reason, message) => {
    const decoded = decodeControl(bytes(text));
    expect(decoded).toMatchObject({ ok: false, reason });
    expect(decoded.ok ? "" : decoded.message).toMatch(message);
  });

  it("refuses a body over the limit and invalid UTF-8 before parsing", () => {
    expect(decodeControl(new Uint8Array(MAX_CONTROL_BYTES + 1))).toMatchObject({ ok: false, reason: "too_large" });
    expect(decodeControl(new Uint8Array([0x7b, 0xff, 0x7d]))).toMatchObject({ ok: false, reason: "not_json" });
  });

  it("validates parsed JSON the same way (the HTTP API's bodies)", () => {
    expect(parseControl(null)).toMatchObject({ ok: false, reason: "invalid" });
    expect(parseControl({ command: "unsubscribe", user: "u1", channel: "room:7" })).toMatchObject({ ok: true });
  });
});
