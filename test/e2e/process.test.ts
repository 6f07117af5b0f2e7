import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { ENV_VARS } from "../../src/config/index.js";
import { GatewayProcess } from "../support/gateway-process.js";
import { RABBITMQ_URL, signToken, TEST_JWT_SECRET, uniqueId } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";
import { TestClient } from "../support/ws-client.js";

const run = promisify(execFile);

// Embedded mode starts PGlite (seconds on a loaded machine): these tests get a minute each.
describe("the gateway process", { timeout: 60_000 }, () => {
  afterEach(() => GatewayProcess.killAll());

  it("documents every environment variable in --help", async () => {
    const result = await GatewayProcess.start(["--help"], {}).exited;
    expect(result.code).toBe(0);
    for (const variable of ENV_VARS) expect(result.stdout).toContain(variable.name);
  });

  it("refuses to start on bad configuration, naming every bad variable in one message", async () => {
    const result = await GatewayProcess.start([], { PORT: "http", ROLE: "boss", HEARTBEAT_MS: "-1", RABBITMQ_URL: "amqp://127.0.0.1" }).exited;
    expect(result.code).toBe(2);
    for (const name of ["PORT", "ROLE", "HEARTBEAT_MS", "JWT_SECRET"]) expect(result.stderr).toContain(name);
    expect(result.stdout).toBe("");
  });

  it("runs on embedded defaults with nothing configured, prints a working demo token, and stops cleanly on SIGTERM", async () => {
    const gateway = GatewayProcess.start([], { PORT: "0", LOG_LEVEL: "info", DRAIN_GRACE_MS: "300" });
    const port = await gateway.listeningPort();
    const [, token] = await gateway.waitForOutput(/Demo token[^\n]*\n(\S+)\n/);
    const [, apiKey] = await gateway.waitForOutput(/Demo API key[^\n]*\n(\S+)\n/);
    const client = await TestClient.connect(`ws://127.0.0.1:${port}/realtime/ws`, { token: token! });
    expect(await client.request({ op: "subscribe", channel: "room:lobby" })).toMatchObject({ op: "ok" });
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
    // The durable path in one process: HTTP publish → embedded persist queue → PGlite → live, with a seq.
    const published = await fetch(`http://127.0.0.1:${port}/api/v1/publish`, {
      method: "POST",
      headers: { authorization: `Bearer ${apiKey}` },
      body: JSON.stringify({ channel: "room:lobby", type: "message.created", data: { text: "hello" } }),
    });
    expect(published.status).toBe(202);
    expect(await client.next((f) => f.op === "event", 15_000)).toMatchObject({ channel: "room:lobby", seq: 1, data: { text: "hello" } });
    gateway.kill("SIGTERM");
    expect(await client.next((f) => f.op === "reconnect")).toMatchObject({ reason: "drain" });
    expect(await client.closed).toMatchObject({ code: 1012 });
    expect((await gateway.exited).code).toBe(0);
  });

  it("on SIGTERM with RabbitMQ, removes its bindings before exiting", async () => {
    const nodeId = uniqueId("proc");
    const gateway = GatewayProcess.start([], {
      PORT: "0",
      NODE_ID: nodeId,
      ROLE: "gateway",
      RABBITMQ_URL,
      JWT_SECRET: TEST_JWT_SECRET,
      LOG_LEVEL: "info",
      DRAIN_GRACE_MS: "100",
    });
    const port = await gateway.listeningPort();
    await gateway.waitForOutput(/"msg":"ready"/);
    const client = await TestClient.connect(`ws://127.0.0.1:${port}/realtime/ws`, { token: await signToken() });
    await client.request({ op: "subscribe", channel: `post:${nodeId}` });
    const bindings = async () => (await run("rabbitmqctl", ["list_bindings", "destination_name", "routing_key", "--quiet"])).stdout;
    await waitFor(async () => (await bindings()).includes(`post.${nodeId}.#`), 5_000, "binding listed");
    gateway.kill("SIGTERM");
    expect((await gateway.exited).code).toBe(0);
    expect(await bindings()).not.toContain(`post.${nodeId}.#`);
  });

  it("a second signal forces the exit during a long drain", async () => {
    const gateway = GatewayProcess.start([], { PORT: "0", LOG_LEVEL: "info", DRAIN_GRACE_MS: "60000", SHUTDOWN_TIMEOUT_MS: "120000" });
    const port = await gateway.listeningPort();
    const [, token] = await gateway.waitForOutput(/Demo token[^\n]*\n(\S+)\n/);
    const client = await TestClient.connect(`ws://127.0.0.1:${port}/realtime/ws`, { token: token! });
    gateway.kill("SIGTERM");
    await client.next((f) => f.op === "reconnect");
    gateway.kill("SIGTERM");
    expect((await gateway.exited).code).toBe(1);
  });
});
