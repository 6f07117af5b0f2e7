import { describe, expect, it } from "vitest";
import { parseChannel } from "@sobranie/protocol/channel";
import { ApiKeyScopes, isApiKeyScope, type ApiKeyAction, type ApiKeyScope } from "../../src/core/api-key-scopes.js";

function publishTo(channel: string): ApiKeyAction {
  return { kind: "publish", channel: parseChannel(channel)! };
}

const ACTIONS: Record<string, ApiKeyAction> = {
  "publish post": publishTo("post:1"),
  "publish room": publishTo("room:7"),
  control: { kind: "control" },
  read: { kind: "read" },
};

function allowed(scopes: ApiKeyScope[]): string[] {
  const key = new ApiKeyScopes(scopes);
  return Object.entries(ACTIONS)
    .filter(([, action]) => key.allows(action))
    .map(([name]) => name);
}

describe("API key scopes", () => {
  it("allow exactly what one of the key's scopes names", () => {
    expect(allowed(["*"])).toEqual(["publish post", "publish room", "control", "read"]);
    expect(allowed(["publish"])).toEqual(["publish post", "publish room"]);
    expect(allowed(["publish:post"])).toEqual(["publish post"]);
    expect(allowed(["publish:post", "read"])).toEqual(["publish post", "read"]);
    expect(allowed(["control"])).toEqual(["control"]);
    expect(allowed(["read"])).toEqual(["read"]);
  });

  it("say what the key may not do and which scopes it has, never the key", () => {
    expect(new ApiKeyScopes(["publish:post", "read"]).refusal(publishTo("room:7"))).toBe("this API key may not publish to room:7: it has scopes publish:post, read");
    expect(new ApiKeyScopes(["read"]).refusal({ kind: "control" })).toBe("this API key may not send control commands: it has scopes read");
    expect(new ApiKeyScopes(["control"]).refusal({ kind: "read" })).toBe("this API key may not read presence and status: it has scopes control");
  });

  it("are *, publish, publish:<namespace>, control and read, and nothing else", () => {
    for (const scope of ["*", "publish", "publish:post", "publish:my-ns_2", "control", "read"]) expect(isApiKeyScope(scope), scope).toBe(true);
    for (const scope of ["", "publish:", "publish:Room", "publish:room:7", "publish:*", "write", "READ", " read", "control:x"]) expect(isApiKeyScope(scope), scope).toBe(false);
  });
});
