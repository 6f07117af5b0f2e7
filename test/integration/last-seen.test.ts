import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createIsolatedServices, type IsolatedServices } from "../support/isolated-services.js";
import { PgAdmin } from "../support/pg-admin.js";
import { signToken, startTestGateway, type TestGateway } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";
import { TestClient } from "../support/ws-client.js";

const API_KEY = "last-seen-test-api-key-0123456789";

/**
 * lastSeen in PostgreSQL: two gateways on the real RabbitMQ and PostgreSQL (a
 * vhost and database of their own). A user leaves on one node; the time is
 * written once, in a batch, and a node started after every earlier node has
 * stopped still answers it.
 */
describe("lastSeen survives the whole cluster restarting (RabbitMQ + PostgreSQL)", () => {
  let services: IsolatedServices;
  let admin: PgAdmin;
  const gateways: TestGateway[] = [];
  const clients: TestClient[] = [];

  const start = async (): Promise<TestGateway> => {
    const gateway = await startTestGateway({
      RABBITMQ_URL: services.rabbitmqUrl,
      DATABASE_URL: services.databaseUrl,
      API_KEYS: API_KEY,
      HEARTBEAT_MS: "200",
      PRESENCE_TTL_MS: "1500",
    });
    gateways.push(gateway);
    return gateway;
  };
  const connect = async (gateway: TestGateway, sub: string): Promise<TestClient> => {
    const client = await TestClient.connect(gateway.wsUrl, { token: await signToken({ sub }) });
    clients.push(client);
    return client;
  };
  const storedRows = (user: string) =>
    admin.query<{ user_id: string; at: string }>(
      `select "user_id", to_char("last_seen_at" at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as "at" from "sobranie_last_seen" where "user_id" = ?`,
      [user],
    );

  beforeAll(async () => {
    services = await createIsolatedServices("lastseen");
    admin = await PgAdmin.connect(services.databaseUrl);
  }, 60_000);
  afterAll(async () => {
    for (const client of clients) client.close();
    for (const gateway of gateways) await gateway.stop();
    await admin?.close();
    await services?.drop();
  }, 60_000);

  it("writes the offline time to PostgreSQL once and answers it after every node restarted", async () => {
    const a = await start();
    const b = await start();
    const watcher = await connect(b, "watcher");
    expect(await watcher.request({ op: "subscribe", channel: "status:dave" })).toMatchObject({ op: "ok" });
    const dave = await connect(a, "dave");
    expect(await watcher.next((f) => f.op === "status" && f.online === true)).toMatchObject({ user: "dave" });
    dave.close();
    const offline = await watcher.next((f) => f.op === "status" && f.online === false);
    const lastSeen = offline.lastSeen as string;
    expect(lastSeen).toMatch(/^\d{4}-\d\d-\d\dT/);

    // Batched: written within the flush interval, by one node only (one row, the same time).
    await waitFor(async () => (await storedRows("dave")).length === 1, 5_000, "dave's lastSeen row");
    expect(await storedRows("dave")).toEqual([{ user_id: "dave", at: lastSeen }]);

    for (const gateway of gateways.splice(0)) await gateway.stop();
    const c = await start();
    const asker = await connect(c, "asker");
    expect(await asker.request({ op: "status", users: ["dave", "nobody"] })).toMatchObject({
      users: [
        { user: "dave", online: false, lastSeen },
        { user: "nobody", online: false, lastSeen: null },
      ],
    });
    const http = await fetch(`${c.httpUrl}/api/v1/status?users=dave`, { headers: { authorization: `Bearer ${API_KEY}` } });
    expect(await http.json()).toEqual({ users: [{ user: "dave", online: false, lastSeen }] });
  }, 60_000);
});
