import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startApp, type RunningApp } from "../../src/app/index.js";
import { loadConfig } from "../../src/config/index.js";
import { silentLogger } from "@sobranie/protocol/runtime/logger";
import { createIsolatedServices, type IsolatedServices } from "../support/isolated-services.js";
import { createAppTables, insertNotifications } from "../support/outbox-app.js";
import { PgAdmin } from "../support/pg-admin.js";
import { signToken, TEST_JWT_SECRET, uniqueId } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";
import { TestClient, type Frame } from "../support/ws-client.js";

/**
 * The PostgreSQL outbox, in-process (ROLE=all) against the real PostgreSQL
 * and RabbitMQ, each in a database and a vhost of this file's own:
 * application insert → trigger → outbox row + NOTIFY → relay → sobranie.events
 * → worker (persist) → sobranie.live → gateway → WebSocket.
 */
describe("PostgreSQL outbox", { timeout: 60_000 }, () => {
  let services: IsolatedServices;
  let admin: PgAdmin;
  const apps: RunningApp[] = [];
  const clients: TestClient[] = [];

  async function start(): Promise<RunningApp> {
    const config = loadConfig({
      PORT: "0",
      HOST: "127.0.0.1",
      NODE_ID: uniqueId("outbox"),
      ROLE: "all",
      JWT_SECRET: TEST_JWT_SECRET,
      RABBITMQ_URL: services.rabbitmqUrl,
      DATABASE_URL: services.databaseUrl,
      DRAIN_GRACE_MS: "0",
      LOG_LEVEL: "silent",
    });
    const app = await startApp(config, { logger: silentLogger });
    apps.push(app);
    await app.ready;
    return app;
  }

  async function subscriber(app: RunningApp, userId: string, channel: string): Promise<TestClient> {
    const client = await TestClient.connect(`ws://127.0.0.1:${app.port}/realtime/ws`, { token: await signToken({ sub: userId }) });
    clients.push(client);
    expect(await client.request({ op: "subscribe", channel })).toMatchObject({ op: "ok" });
    return client;
  }

  const events = (client: TestClient): Frame[] => client.frames.filter((frame) => frame.op === "event");

  beforeAll(async () => {
    services = await createIsolatedServices("t_outbox");
    admin = await PgAdmin.connect(services.databaseUrl);
    // The first start applies the migrations that create the trigger functions.
    const app = await start();
    await createAppTables(admin);
    await app.stop();
  });

  afterEach(async () => {
    for (const client of clients.splice(0)) client.socket.terminate();
    await Promise.all(apps.splice(0).map((app) => app.stop()));
  });

  afterAll(async () => {
    await admin?.close();
    await services?.drop();
  });

  it("a row inserted into notifications reaches the user's WebSocket, with a seq; a post reaches post:<id>", async () => {
    const app = await start();
    const userId = uniqueId("u");
    const inbox = await subscriber(app, userId, `user:${userId}`);
    await admin.query(`insert into notifications (user_id, type, payload) values (?, 'like', '{"by": "u7"}')`, [userId]);
    const event = await inbox.next((frame) => frame.op === "event", 10_000);
    expect(event).toMatchObject({
      channel: `user:${userId}`,
      type: "notification.created",
      data: { user_id: userId, type: "like", payload: { by: "u7" } },
    });
    expect(event.seq).toEqual(expect.any(Number));

    const [post] = await admin.query<{ id: string }>(`insert into posts (author_id, title) values ('u7', 'hello') returning id`);
    const watcher = await subscriber(app, "u8", `post:${post!.id}`);
    await admin.query(`update posts set title = 'edited' where id = ?`, [post!.id]);
    expect(await watcher.next((frame) => frame.op === "event", 10_000)).toMatchObject({
      channel: `post:${post!.id}`,
      type: "post.updated",
      data: { title: "edited" },
    });
    // Marked only after the confirm, which may come after the client already has the event.
    await waitFor(async () => {
      const [left] = await admin.query<{ count: string }>(`select count(*) from sobranie_outbox where published_at is null`);
      return Number(left!.count) === 0;
    }, 10_000, "every outbox row marked published");
  });

  it("rows inserted while no relay listens are relayed on start", async () => {
    const userId = uniqueId("u");
    await insertNotifications(admin, userId, 1, 20);
    const app = await start();
    await waitFor(async () => {
      const [left] = await admin.query<{ count: string }>(`select count(*) from sobranie_outbox where published_at is null`);
      return Number(left!.count) === 0;
    }, 10_000, "the start sweep relays the rows");
    // Relayed before anyone subscribed: the client reads them back from the store with since=0.
    const client = await TestClient.connect(`ws://127.0.0.1:${app.port}/realtime/ws`, { token: await signToken({ sub: userId }) });
    clients.push(client);
    expect(await client.request({ op: "subscribe", channel: `user:${userId}`, since: 0 })).toMatchObject({ op: "ok", recovered: true });
    await waitFor(() => events(client).length === 20, 10_000, "20 recovered events");
    expect(events(client).map((frame) => (frame.data as { payload: { i: number } }).payload.i)).toEqual(
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
  });

  it("rows inserted while the LISTEN connection is down are relayed after it comes back", async () => {
    const app = await start();
    const userId = uniqueId("u");
    const inbox = await subscriber(app, userId, `user:${userId}`);
    const listeners = async () =>
      admin.query<{ pid: number }>(
        `select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() and query ilike 'listen%'`,
      );
    await waitFor(async () => (await listeners()).length === 1, 10_000, "the relay LISTENs");
    // Terminate the LISTEN backend and insert at once: these NOTIFYs reach nobody.
    await admin.query(`select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and query ilike 'listen%' and pid <> pg_backend_pid()`);
    await insertNotifications(admin, userId, 1, 5);
    await waitFor(() => events(inbox).length === 5, 15_000, "5 events after the re-LISTEN sweep");
    expect(events(inbox).map((frame) => (frame.data as { payload: { i: number } }).payload.i)).toEqual([1, 2, 3, 4, 5]);
    await waitFor(async () => (await listeners()).length === 1, 10_000, "the relay LISTENs again");
  });
});
