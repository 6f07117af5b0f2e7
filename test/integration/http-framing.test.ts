import { describe, expect, it } from "vitest";
import { RawHttpConnection, rawRequest } from "../support/raw-http.js";
import { suiteGatewayBehindProxy } from "../support/suite-gateway.js";
import { signToken, uniqueId } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";
import { TestClient } from "../support/ws-client.js";

const KEY = "framing-key-0123456789";
const AUTH = ["Authorization", `Bearer ${KEY}`] as const;
const HEALTHZ = rawRequest("GET", "/healthz", []);

function publishBody(channel: string, id: string): string {
  return JSON.stringify({ channel, type: "t", data: {}, id });
}

function publishRequest(channel: string, id: string): string {
  const body = publishBody(channel, id);
  return rawRequest("POST", "/api/v1/publish", [AUTH, ["Content-Length", String(Buffer.byteLength(body))]], body);
}

describe("HTTP request framing and pipelining", () => {
  const { gateway, proxy } = suiteGatewayBehindProxy({ API_KEYS: KEY });

  /** Publishes a marker over fetch and returns the first event `client` got after `before`: the marker unless something else arrived first. */
  async function firstEventAfter(client: TestClient, channel: string): Promise<unknown> {
    const marker = uniqueId("marker");
    const response = await fetch(`${gateway().httpUrl}/api/v1/publish`, { method: "POST", headers: { authorization: `Bearer ${KEY}` }, body: publishBody(channel, marker) });
    expect(response.status).toBe(202);
    return (await client.next((frame) => frame.op === "event")).id;
  }

  it("refuses ambiguous body framing with 400 bad_request and closes, so no byte behind it is read as a request", async () => {
    const channel = `post:${uniqueId("cl")}`;
    const client = await TestClient.connect(gateway().wsUrl, { token: await signToken() });
    await client.request({ op: "subscribe", channel });
    const body = publishBody(channel, uniqueId("smuggled")) + HEALTHZ;
    const first = String(body.length - HEALTHZ.length);
    const cases: Array<Array<readonly [string, string]>> = [
      [AUTH, ["Content-Length", first], ["Content-Length", String(body.length)]],
      [AUTH, ["Content-Length", first], ["Content-Length", first]],
      [AUTH, ["Content-Length", first], ["Transfer-Encoding", "chunked"]],
    ];
    for (const headers of cases) {
      const connection = await RawHttpConnection.open(gateway().port);
      connection.send(rawRequest("POST", "/api/v1/publish", headers, body));
      await connection.waitForClose();
      const label = JSON.stringify(headers.slice(1));
      // uWS closes a Content-Length with Transfer-Encoding itself, before any handler: no answer at all.
      for (const response of connection.responses) {
        expect(response.status, label).toBe(400);
        expect(response.headers.connection, label).toBe("close");
        expect(JSON.parse(response.body), label).toMatchObject({ error: { code: "bad_request", message: expect.any(String) } });
      }
      expect(connection.responses.length, label).toBeLessThanOrEqual(1);
    }
    expect(await firstEventAfter(client, channel)).toMatch(/^marker-/);
    client.close();
  });

  it("acts on nothing when a request is pipelined behind a publish in the same read (uWS closes the connection)", async () => {
    const channel = `post:${uniqueId("pipe")}`;
    const client = await TestClient.connect(gateway().wsUrl, { token: await signToken() });
    await client.request({ op: "subscribe", channel });
    const connection = await RawHttpConnection.open(gateway().port);
    connection.send(publishRequest(channel, uniqueId("pipelined")) + HEALTHZ);
    await connection.waitForClose();
    expect(connection.responses).toEqual([]);
    // The publish did not happen: a retry cannot duplicate it.
    expect(await firstEventAfter(client, channel)).toMatch(/^marker-/);
    client.close();
  });

  it("answers a publish and then a request pipelined while the publish waited for its confirm, in order", async () => {
    const channel = `post:${uniqueId("held")}`;
    const id = uniqueId("held");
    const connection = await RawHttpConnection.open(gateway().port);
    proxy().hold();
    try {
      connection.send(publishRequest(channel, id));
      // The publish has left the gateway (its confirm cannot come back yet): the request is being acted on.
      await waitFor(() => proxy().heldToTarget.includes(id), 5_000, "the publish reaching the broker proxy");
      connection.send(HEALTHZ);
    } finally {
      proxy().release();
    }
    await connection.waitForResponses(2);
    expect(connection.responses.map((response) => response.status)).toEqual([202, 200]);
    expect(JSON.parse(connection.responses[0]!.body)).toEqual({ id });
    expect(connection.closed).toBe(false);
    connection.close();
  });
});
