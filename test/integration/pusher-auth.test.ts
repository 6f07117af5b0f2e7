import Pusher from "pusher";
import PusherJsModule from "pusher-js";
import type { ChannelAuthorizationHandler, Options as PusherJsOptions, UserAuthenticationHandler } from "pusher-js";
import { afterAll, describe, expect, it } from "vitest";
import { channelAuthString, userAuthString, verifyAuthToken } from "../../src/adapters/pusher/signatures.js";
import { suiteGateway } from "../support/suite-gateway.js";
import { signToken, uniqueId, type TestGateway } from "../support/test-gateway.js";

const APP = { id: "auth-app", key: "auth-key", secret: "auth-secret-0123456789" };
const SOCKET = "1234.5678";

/** What the tests use of a pusher-js client: its own auth requests. */
interface PusherJs {
  readonly config: { readonly channelAuthorizer: ChannelAuthorizationHandler; readonly userAuthenticator: UserAuthenticationHandler };
  disconnect(): void;
}
/** pusher-js's Node build exports its class as the module itself, which its types (read as CommonJS here) do not say. */
const PusherJs = PusherJsModule as unknown as new (key: string, options: PusherJsOptions) => PusherJs;

type AuthResult = { status: number; data: Record<string, string> | null };

/**
 * A real pusher-js client's own auth requests (its channelAuthorizer and
 * userAuthenticator: the form body, content type and headers it sends), to
 * `path` on the gateway. Its WebSocket is never opened: the Pusher WebSocket
 * endpoint is not what is tested here.
 */
function pusherJs(gateway: TestGateway, token: string | undefined, path: { channel?: string; user?: string } = {}): PusherJs {
  const headers: Record<string, string> = token === undefined ? {} : { Authorization: `Bearer ${token}` };
  const client = new PusherJs(APP.key, {
    cluster: "local",
    wsHost: "127.0.0.1",
    wsPort: 1,
    enabledTransports: ["ws"],
    channelAuthorization: { endpoint: `${gateway.httpUrl}${path.channel ?? "/pusher/auth"}`, transport: "ajax", headers },
    userAuthentication: { endpoint: `${gateway.httpUrl}${path.user ?? "/pusher/user-auth"}`, transport: "ajax", headers },
  });
  client.disconnect();
  return client;
}

function authorize(client: PusherJs, channelName: string): Promise<AuthResult> {
  return new Promise((resolve) => {
    client.config.channelAuthorizer({ socketId: SOCKET, channelName }, (error: unknown, data: unknown) =>
      resolve(error ? { status: (error as { status?: number }).status ?? 0, data: null } : { status: 200, data: data as unknown as Record<string, string> }),
    );
  });
}

function authenticate(client: PusherJs): Promise<AuthResult> {
  return new Promise((resolve) => {
    client.config.userAuthenticator({ socketId: SOCKET }, (error: unknown, data: unknown) =>
      resolve(error ? { status: (error as { status?: number }).status ?? 0, data: null } : { status: 200, data: data as unknown as Record<string, string> }),
    );
  });
}

describe("hosted Pusher auth endpoints with pusher-js's own requests", () => {
  const gateway = suiteGateway({ PUSHER_APPS: JSON.stringify([APP]) });
  const server = new Pusher({ appId: APP.id, key: APP.key, secret: APP.secret, host: "unused.example" });
  const clients: PusherJs[] = [];
  const client = (token: string | undefined, path?: { channel?: string; user?: string }): PusherJs => {
    const made = pusherJs(gateway(), token, path);
    clients.push(made);
    return made;
  };
  afterAll(() => clients.forEach((made) => made.disconnect()));

  it("signs a private channel the JWT's user may subscribe to, exactly as the pusher SDK would", async () => {
    const result = await authorize(client(await signToken({ sub: "ada" })), "private-user.ada");
    expect(result).toEqual({ status: 200, data: { auth: server.authorizeChannel(SOCKET, "private-user.ada").auth } });
    expect(verifyAuthToken(APP, channelAuthString(SOCKET, "private-user.ada"), result.data?.auth)).toBe(true);
  });

  it("signs a presence channel with channel_data from the JWT's sub and info, on Echo's /broadcasting/auth too", async () => {
    const room = uniqueId("r");
    const token = await signToken({ sub: "ada", channels: [`room:${room}`], info: { name: "Ada" } });
    for (const path of ["/pusher/auth", "/broadcasting/auth"]) {
      const result = await authorize(client(token, { channel: path }), `presence-room.${room}`);
      expect(result, path).toEqual({ status: 200, data: server.authorizeChannel(SOCKET, `presence-room.${room}`, { user_id: "ada", user_info: { name: "Ada" } }) });
      expect(JSON.parse(result.data?.channel_data ?? "")).toEqual({ user_id: "ada", user_info: { name: "Ada" } });
      expect(verifyAuthToken(APP, channelAuthString(SOCKET, `presence-room.${room}`, result.data?.channel_data), result.data?.auth)).toBe(true);
    }
  });

  it("authenticates the user for pusher:signin with user_data from the JWT", async () => {
    const result = await authenticate(client(await signToken({ sub: "ada", info: { name: "Ada" } })));
    expect(result).toEqual({ status: 200, data: server.authenticateUser(SOCKET, { id: "ada", user_info: { name: "Ada" } }) });
    expect(verifyAuthToken(APP, userAuthString(SOCKET, result.data?.user_data ?? ""), result.data?.auth)).toBe(true);
    const bare = await authenticate(client(await signToken({ sub: "bob" }), { user: "/broadcasting/user-auth" }));
    expect(JSON.parse(bare.data?.user_data ?? "")).toEqual({ id: "bob" });
  });

  it("answers 403 when the namespace rule refuses, and 401 without a token or with a bad one", async () => {
    const ada = client(await signToken({ sub: "ada" }));
    expect((await authorize(ada, "private-user.bob")).status).toBe(403);
    expect((await authorize(ada, `presence-room.${uniqueId("r")}`)).status).toBe(403);
    expect((await authorize(client(undefined), "private-user.ada")).status).toBe(401);
    expect((await authorize(client("not-a-jwt"), "private-user.ada")).status).toBe(401);
    expect((await authorize(client(await signToken({ sub: "ada", secret: "another-secret-that-is-long-enough-012" })), "private-user.ada")).status).toBe(401);
    expect((await authenticate(client(undefined))).status).toBe(401);
  });

  it("refuses bad input with 400, an unknown app key or namespace with 404, and takes JSON bodies too", async () => {
    const token = await signToken({ sub: "ada" });
    const post = (path: string, body: string, contentType = "application/x-www-form-urlencoded") =>
      fetch(`${gateway().httpUrl}${path}`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": contentType }, body });
    const cases: Array<[string, string, number, string, string?]> = [
      ["/pusher/auth", "socket_id=abc&channel_name=private-user.ada", 400, "socket_id"],
      ["/pusher/auth", `socket_id=${SOCKET}`, 400, "channel_name is required"],
      ["/pusher/auth", `socket_id=${SOCKET}&channel_name=post.1`, 400, "public channel"],
      ["/pusher/auth", `socket_id=${SOCKET}&channel_name=private-encrypted-user.ada`, 400, "encryption master key"],
      ["/pusher/auth", `socket_id=${SOCKET}&channel_name=user:ada`, 400, "not a Pusher channel name"],
      ["/pusher/auth", `socket_id=${SOCKET}&channel_name=private-nowhere.1`, 404, 'no namespace "nowhere"'],
      ["/pusher/auth?key=no-such-key", `socket_id=${SOCKET}&channel_name=private-user.ada`, 404, "no Pusher app with key"],
      ["/pusher/auth", "{not json", 400, "not valid JSON", "application/json"],
    ];
    for (const [path, body, status, message, contentType] of cases) {
      const response = await post(path, body, contentType);
      expect({ status: response.status, body: await response.json() }, `${path} ${body}`).toMatchObject({ status, body: { error: { message: expect.stringContaining(message) } } });
    }
    const json = await post(`/pusher/auth?key=${APP.key}`, JSON.stringify({ socket_id: SOCKET, channel_name: "private-user.ada" }), "application/json");
    expect(await json.json()).toEqual({ auth: server.authorizeChannel(SOCKET, "private-user.ada").auth });
  });
});

describe("hosted Pusher auth with several apps", () => {
  const second = { id: "second-app", key: "second-key", secret: "second-secret-0123456789" };
  const gateway = suiteGateway({ PUSHER_APPS: JSON.stringify([APP, second, { id: "off-app", key: "off-key", secret: "off-secret-0123456789", enabled: false }]) });

  it("signs with the app ?key= names, refuses to guess without it, and refuses a disabled app with 403", async () => {
    const token = await signToken({ sub: "ada" });
    const post = (query: string) =>
      fetch(`${gateway().httpUrl}/pusher/auth${query}`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/x-www-form-urlencoded" },
        body: `socket_id=${SOCKET}&channel_name=private-user.ada`,
      });
    const signed = (await (await post(`?key=${second.key}`)).json()) as { auth: string };
    expect(signed.auth).toBe(new Pusher({ appId: second.id, key: second.key, secret: second.secret, host: "unused.example" }).authorizeChannel(SOCKET, "private-user.ada").auth);
    const unnamed = await post("");
    expect({ status: unnamed.status, body: await unnamed.json() }).toMatchObject({ status: 400, body: { error: { message: expect.stringContaining("?key=") } } });
    expect((await post("?key=off-key")).status).toBe(403);
  });
});
