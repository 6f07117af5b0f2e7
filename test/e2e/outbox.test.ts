import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNode as startDurableNode } from "../support/durable-env.js";
import { GatewayProcess } from "../support/gateway-process.js";
import { createIsolatedServices, type IsolatedServices } from "../support/isolated-services.js";
import { createAppTables, insertNotifications } from "../support/outbox-app.js";
import { PgAdmin } from "../support/pg-admin.js";
import { signToken, uniqueId } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";
import { TestClient, type Frame } from "../support/ws-client.js";

/**
 * The outbox across whole processes (from dist/: `npm test` builds first):
 * a gateway and a worker on a private vhost and database; rows go in through
 * the application's `notifications` trigger, out to a WebSocket client.
 */
describe("PostgreSQL outbox, whole processes", { timeout: 180_000 }, () => {
  let services: IsolatedServices;
  let admin: PgAdmin;
  let gatewayPort: number;

  /** A gateway or worker on this file's vhost and database. */
  const startNode = (role: "gateway" | "worker", extra: Record<string, string> = {}) =>
    startDurableNode(role, {
      RABBITMQ_URL: services.rabbitmqUrl,
      DATABASE_URL: services.databaseUrl,
      DRAIN_GRACE_MS: "0",
      SEND_BUFFER_BYTES: String(64 * 1024 * 1024),
      ...extra,
    });

  async function subscriber(userId: string): Promise<TestClient> {
    const client = await TestClient.connect(`ws://127.0.0.1:${gatewayPort}/realtime/ws`, { token: await signToken({ sub: userId }) });
    expect(await client.request({ op: "subscribe", channel: `user:${userId}` })).toMatchObject({ op: "ok" });
    return client;
  }

  const events = (client: TestClient): Frame[] => client.frames.filter((frame) => frame.op === "event");

  /** Every row exactly once, in insertion order, with strictly increasing seqs. */
  function expectExactlyOnceInOrder(client: TestClient, count: number): void {
    const received = events(client);
    expect(received.map((frame) => (frame.data as { payload: { i: number } }).payload.i)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
    const seqs = received.map((frame) => frame.seq as number);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]!).toBeGreaterThan(seqs[i - 1]!);
  }

  async function unpublished(): Promise<number> {
    const [row] = await admin.query<{ count: string }>(`select count(*) from sobranie_outbox where published_at is null`);
    return Number(row!.count);
  }

  beforeAll(async () => {
    services = await createIsolatedServices("t_outbox_e2e");
    admin = await PgAdmin.connect(services.databaseUrl);
    // A gateway with DATABASE_URL migrates at start: the trigger functions exist once it is ready.
    gatewayPort = (await startNode("gateway")).port;
    await createAppTables(admin);
  });

  afterAll(async () => {
    await GatewayProcess.killAll();
    await admin?.close();
    await services?.drop();
  });

  it("a worker SIGKILLed in the middle of a burst and restarted: every row delivered once, in order", async () => {
    const worker = await startNode("worker", { OUTBOX_BATCH: "50" });
    const userId = uniqueId("u");
    const client = await subscriber(userId);
    const transactions = 60;
    const perTransaction = 50;
    let restarted: Promise<{ node: GatewayProcess; port: number }> | undefined;
    for (let tx = 0; tx < transactions; tx++) {
      if (tx === 20) {
        worker.node.kill("SIGKILL");
        await worker.node.exited;
      }
      if (tx === 40) restarted = startNode("worker", { OUTBOX_BATCH: "50" });
      await insertNotifications(admin, userId, tx * perTransaction + 1, perTransaction);
    }
    await restarted;
    const total = transactions * perTransaction;
    await waitFor(() => events(client).length >= total, 60_000, `${total} events`);
    await waitFor(async () => (await unpublished()) === 0, 30_000, "every outbox row marked published");
    expectExactlyOnceInOrder(client, total);
    client.socket.terminate();
  });

  it("a 10,000-row burst reaches the client without loss; prints rows/s end to end", async () => {
    await startNode("worker");
    const userId = uniqueId("u");
    const client = await subscriber(userId);
    const total = 10_000;
    const startedMs = performance.now();
    await insertNotifications(admin, userId, 1, total);
    const committedMs = performance.now();
    let relayedMs = 0;
    await waitFor(
      async () => {
        if (relayedMs === 0 && (await unpublished()) === 0) relayedMs = performance.now() - startedMs;
        return events(client).length >= total;
      },
      120_000,
      `${total} events`,
    );
    const elapsedMs = performance.now() - startedMs;
    const rate = Math.round(total / (elapsedMs / 1000));
    console.log(
      `outbox burst: ${total} rows in one INSERT (commit ${Math.round(committedMs - startedMs)} ms), ` +
        `all relayed to RabbitMQ after ${Math.round(relayedMs)} ms, ` +
        `last event at the client after ${Math.round(elapsedMs)} ms: ${rate} rows/s end to end`,
    );
    expectExactlyOnceInOrder(client, total);
    client.socket.terminate();
  });
});
