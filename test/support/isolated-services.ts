import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { PgAdmin, TEST_DATABASE_URL, uniqueName, withDatabase } from "./pg-admin.js";
import { RABBITMQ_URL } from "./test-gateway.js";

const run = promisify(execFile);

/**
 * A PostgreSQL database and a RabbitMQ vhost of their own, for tests that
 * run whole worker paths (durable exchanges and quorum queues with fixed
 * names) while other test files use the same services. `drop()` removes both.
 */
export interface IsolatedServices {
  readonly database: string;
  readonly databaseUrl: string;
  readonly vhost: string;
  readonly rabbitmqUrl: string;
  drop(): Promise<void>;
}

export async function createIsolatedServices(prefix: string): Promise<IsolatedServices> {
  const database = uniqueName(prefix);
  const vhost = database;
  const admin = await PgAdmin.connect();
  try {
    await admin.query(`create database "${database}"`);
  } finally {
    await admin.close();
  }
  await run("rabbitmqctl", ["add_vhost", vhost]);
  await run("rabbitmqctl", ["set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"]);
  const amqpUrl = new URL(RABBITMQ_URL);
  amqpUrl.pathname = `/${encodeURIComponent(vhost)}`;
  return {
    database,
    databaseUrl: withDatabase(TEST_DATABASE_URL, database),
    vhost,
    rabbitmqUrl: amqpUrl.toString(),
    drop: async () => {
      await run("rabbitmqctl", ["delete_vhost", vhost]).catch(() => undefined);
      const cleanup = await PgAdmin.connect();
      try {
        await cleanup.query(`drop database if exists "${database}" with (force)`);
      } finally {
        await cleanup.close();
      }
    },
  };
}
