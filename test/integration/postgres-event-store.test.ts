import { MikroORM } from "@mikro-orm/core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { EVENT_STORE_MIGRATIONS, MIGRATIONS_TABLE } from "../../src/adapters/postgres/migrations/index.js";
import { ormOptions } from "../../src/adapters/postgres/orm-config.js";
import { PostgresEventStore, type PostgresEventStoreOptions } from "../../src/adapters/postgres/postgres-event-store.js";
import { StoreUnavailableError } from "../../src/core/ports/event-store.js";
import { silentLogger } from "@sobranie/protocol/runtime/logger";
import { eventStoreContract } from "../contract/event-store.contract.js";
import { ormStoreFixture } from "../support/postgres-store-fixture.js";
import { PgAdmin, TEST_DATABASE_URL, uniqueName } from "../support/pg-admin.js";
import { TcpProxy } from "../support/tcp-proxy.js";
import { waitFor } from "../support/wait-for.js";

let admin: PgAdmin;

beforeAll(async () => {
  admin = await PgAdmin.connect();
});

afterAll(async () => {
  await admin.close();
});

eventStoreContract("PostgresEventStore on PostgreSQL", () =>
  ormStoreFixture({ databaseUrl: TEST_DATABASE_URL }, (schema) => admin.dropSchema(schema)),
);

describe("PostgresEventStore on PostgreSQL: schema, startup and outages", () => {
  const schemas: string[] = [];
  const stores: PostgresEventStore[] = [];

  function storeOn(databaseUrl: string, schema: string, extra: Partial<PostgresEventStoreOptions> = {}): PostgresEventStore {
    const store = new PostgresEventStore({ logger: silentLogger, databaseUrl, schema, ...extra });
    stores.push(store);
    return store;
  }

  afterEach(async () => {
    await Promise.all(stores.splice(0).map((store) => store.stop()));
    for (const schema of schemas.splice(0)) await admin.dropSchema(schema);
  });

  it("the committed migrations create exactly what the entities describe", async () => {
    const diff = async (schema: string): Promise<string> => {
      const options = ormOptions({ databaseUrl: TEST_DATABASE_URL, schema, connectTimeoutMs: 5_000 }, silentLogger);
      const orm = await MikroORM.init(options);
      try {
        return await orm.schema.getUpdateSchemaSQL({ wrap: false, schema });
      } finally {
        await orm.close(true);
      }
    };
    const migrated = uniqueName("t_drift");
    const empty = uniqueName("t_empty");
    schemas.push(migrated, empty);
    await storeOn(TEST_DATABASE_URL, migrated).start();
    await admin.query(`create schema "${empty}"`);
    expect(await diff(migrated)).toBe("");
    // The comparison has teeth: an empty schema differs by every table.
    expect(await diff(empty)).toContain("sobranie_event");
  });

  it("stores starting at once on a fresh schema migrate it exactly once", async () => {
    const schema = uniqueName("t_race");
    schemas.push(schema);
    const racing = [1, 2, 3].map(() => storeOn(TEST_DATABASE_URL, schema));
    await Promise.all(racing.map((store) => store.start()));
    const applied = await admin.query<{ name: string }>(`select name from "${schema}"."${MIGRATIONS_TABLE}"`);
    expect(applied.map((row) => row.name)).toEqual(EVENT_STORE_MIGRATIONS.map((migration) => migration.name));
    expect(racing.every((store) => store.isReady())).toBe(true);
  });

  it("start rejects with StoreUnavailableError, password redacted, when PostgreSQL is unreachable", async () => {
    const store = storeOn("postgres://postgres:s3cret@127.0.0.1:1/test", uniqueName("t_down"));
    const started = Date.now();
    const failure = await store.start().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(StoreUnavailableError);
    expect(failure).toMatchObject({ code: "unavailable", retryable: true });
    expect((failure as Error).message).toContain("127.0.0.1:1");
    expect((failure as Error).message).not.toContain("s3cret");
    expect((failure as Error).cause).toBeDefined();
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(store.isReady()).toBe(false);
  });

  it("a lost connection rejects as unavailable and readiness returns with the database", async () => {
    const target = new URL(TEST_DATABASE_URL);
    const proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
    await proxy.start();
    try {
      const viaProxy = new URL(TEST_DATABASE_URL);
      viaProxy.hostname = "127.0.0.1";
      viaProxy.port = String(proxy.port);
      const schema = uniqueName("t_outage");
      schemas.push(schema);
      const store = storeOn(viaProxy.toString(), schema, { healthCheckIntervalMs: 20, connectTimeoutMs: 1_000 });
      await store.start();
      await store.append([{ id: "before", channel: "room:1", type: "t", data: {}, occurredAt: new Date().toISOString() }]);

      proxy.cut();
      await expect(store.history("room:1", 0, 10)).rejects.toBeInstanceOf(StoreUnavailableError);
      await waitFor(() => !store.isReady(), 5_000, "store reports not ready");

      proxy.restore();
      await waitFor(() => store.isReady(), 10_000, "store ready again");
      expect((await store.history("room:1", 0, 10)).events.map((event) => event.id)).toEqual(["before"]);
    } finally {
      await proxy.stop();
    }
  });
});
