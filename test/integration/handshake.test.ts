import WebSocket from "ws";
import { describe, expect, it } from "vitest";
import { suiteGateway } from "../support/suite-gateway.js";
import { signToken } from "../support/test-gateway.js";

/** The WebSocket handshake details a generic client may exercise (RabbitMQ, ROLE=gateway). */
describe("WebSocket handshake", () => {
  const gateway = suiteGateway();

  it("answers a client offering several subprotocols with one of them, so the handshake succeeds", async () => {
    const socket = new WebSocket(`${gateway().wsUrl}?token=${await signToken({ sub: "proto" })}`, ["sobranie.v1", "other"]);
    const welcome = await new Promise<unknown>((resolve, reject) => {
      socket.once("message", (data: Buffer) => resolve(JSON.parse(data.toString("utf8"))));
      socket.once("error", reject);
    });
    expect(welcome).toMatchObject({ op: "welcome" });
    expect(socket.protocol).toBe("sobranie.v1");
    socket.close();
  });
});
