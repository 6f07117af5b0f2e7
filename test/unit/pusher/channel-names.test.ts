import { describe, expect, it } from "vitest";
import { isPusherChannelRefusal, PusherChannelNames, pusherKindOf } from "../../../src/adapters/pusher/channel-names.js";
import { BUILT_IN_NAMESPACES, type NamespacePolicy } from "../../../src/core/namespaces.js";

const policies: NamespacePolicy[] = [
  ...BUILT_IN_NAMESPACES,
  { name: "typing", subscribe: "claim", publish: "broadcast", durable: false, presence: false },
  { name: "orders", subscribe: "claim", publish: "none", durable: true, presence: false, pusherSeq: true },
];
const policyOf = (name: string) => policies.find((policy) => policy.name === name);
const names = new PusherChannelNames(policyOf);
const parsePusherChannel = (name: string, _policyOf: typeof policyOf) => names.parse(name);

function parsed(name: string) {
  const result = parsePusherChannel(name, policyOf);
  if (isPusherChannelRefusal(result)) throw new Error(`refused ${name}: ${result.message}`);
  return result;
}

describe("Pusher channel names", () => {
  it("maps each namespace kind to one prefix", () => {
    expect(parsed("presence-room.7")).toMatchObject({ channel: { name: "room:7", namespace: "room", id: "7" }, kind: "presence", cache: false });
    expect(parsed("post.1")).toMatchObject({ channel: { name: "post:1" }, kind: "public" });
    expect(parsed("private-user.ada")).toMatchObject({ channel: { name: "user:ada" }, kind: "private" });
    expect(parsed("private-encrypted-typing.9")).toMatchObject({ channel: { name: "typing:9" }, kind: "encrypted" });
  });

  it("marks the channels of a durable namespace with pusherSeq, and only those, as carrying seq in data", () => {
    expect(parsed("private-orders.1")).toMatchObject({ seqInData: true });
    expect(parsed("private-user.ada")).toMatchObject({ seqInData: false });
    expect(parsed("private-typing.1")).toMatchObject({ seqInData: false });
  });

  it("reads cache- after the kind prefix", () => {
    expect(parsed("cache-post.1")).toMatchObject({ channel: { name: "post:1" }, kind: "public", cache: true });
    expect(parsed("private-cache-typing.2")).toMatchObject({ kind: "private", cache: true });
    expect(parsed("presence-cache-room.7")).toMatchObject({ kind: "presence", cache: true });
  });

  it("is reversible for every namespace and variant", () => {
    for (const policy of policies) {
      const kind = pusherKindOf(policy);
      for (const cache of [false, true]) {
        const name = names.nameOf(policy.name, "id_-9", kind, cache);
        expect(parsed(name)).toMatchObject({ pusherName: name, channel: { name: `${policy.name}:id_-9` }, kind, cache });
      }
    }
  });

  it("refuses a prefix that does not fit the namespace, naming the right one", () => {
    const refusal = parsePusherChannel("private-room.7", policyOf);
    expect(refusal).toMatchObject({ reason: "wrong_kind" });
    expect(isPusherChannelRefusal(refusal) && refusal.message).toContain("presence-room.7");
    expect(parsePusherChannel("room.7", policyOf)).toMatchObject({ reason: "wrong_kind" });
    expect(parsePusherChannel("presence-post.1", policyOf)).toMatchObject({ reason: "wrong_kind" });
    expect(parsePusherChannel("user.ada", policyOf)).toMatchObject({ reason: "wrong_kind" });
    expect(parsePusherChannel("private-encrypted-room.7", policyOf)).toMatchObject({ reason: "wrong_kind" });
    expect(parsePusherChannel("private-encrypted-post.1", policyOf)).toMatchObject({ reason: "wrong_kind" });
  });

  it("refuses unknown namespaces and names outside either alphabet", () => {
    expect(parsePusherChannel("private-nope.1", policyOf)).toMatchObject({ reason: "unknown_namespace" });
    for (const name of ["", "room", "room.", ".7", "Room.7", "post.a=b", "post.a@b", "post.a,b", "post.a;b", "post:1", "post.1 ", "post.é", `post.${"x".repeat(129)}`, "x".repeat(201), "#server-to-user-ada", "private-", "cache-"]) {
      expect(parsePusherChannel(name, policyOf), name).toMatchObject({ reason: "malformed" });
    }
  });

  it("keeps dots after the first inside the id check (ids have none)", () => {
    expect(parsePusherChannel("post.1.2", policyOf)).toMatchObject({ reason: "malformed" });
  });

  it("names an aliased namespace by its alias only, dots and all", () => {
    const aliased = new PusherChannelNames(policyOf, { "App.Models.User": "user", "Chat.Rooms": "room" });
    expect(aliased.parse("private-App.Models.User.42")).toMatchObject({ channel: { name: "user:42" }, kind: "private", cache: false });
    expect(aliased.parse("presence-cache-Chat.Rooms.7")).toMatchObject({ channel: { name: "room:7" }, kind: "presence", cache: true });
    expect(aliased.nameOf("user", "42", "private", false)).toBe("private-App.Models.User.42");
    expect(aliased.nameOf("post", "1", "public", false)).toBe("post.1");
    const byName = aliased.parse("private-user.42");
    expect(byName).toMatchObject({ reason: "wrong_kind" });
    expect(isPusherChannelRefusal(byName) && byName.message).toContain("private-App.Models.User.42");
    expect(aliased.parse("presence-App.Models.User.42")).toMatchObject({ reason: "wrong_kind" });
    expect(aliased.parse("private-App.Models.Users.42")).toMatchObject({ reason: "malformed" });
    expect(aliased.parse("post.1")).toMatchObject({ channel: { name: "post:1" } });
  });
});
