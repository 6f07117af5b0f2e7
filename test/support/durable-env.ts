import { execFile } from "node:child_process";
import { promisify } from "node:util";
import amqp from "amqplib";
import { expect } from "vitest";
import { TestPublisher } from "./amqp-tools.js";
import { GatewayProcess } from "./gateway-process.js";
import { PgAdmin, TEST_DATABASE_URL, uniqueName, withDatabase } from "./pg-admin.js";
import { RABBITMQ_URL, TEST_JWT_SECRET, uniqueId } from "./test-gateway.js";
import { TestClient, type Frame } from "./ws-client.js";

const run = promisify(execFile);

/** `url` with its vhost replaced (`amqp://…:5672` → `amqp://…:5672/<vhost>`). */
function withVhost(url: string, vhost: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(vhost)}`;
  return parsed.toString();
}

/**
 * A private RabbitMQ vhost and PostgreSQL database for one test file: the
 * durable path (`sobranie.persist`, its single active consumer, the global
 * seq) is shared state, so tests that kill workers or cut PostgreSQL must not
 * meet other files' workers and events.
 */
export class DurableEnv {
  private constructor(
    readonly vhost: string,
    readonly database: string,
    readonly rabbitmqUrl: string,
    readonly databaseUrl: string,
    readonly publisher: TestPublisher,
    /** Connected to this env's database. */
    readonly db: PgAdmin,
    private readonly server: PgAdmin,
  ) {}

  static async create(prefix: string): Promise<DurableEnv> {
    const vhost = uniqueName(prefix);
    const database = uniqueName(prefix);
    await run("rabbitmqctl", ["add_vhost", vhost]);
    await run("rabbitmqctl", ["set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"]);
    const server = await PgAdmin.connect(withDatabase(TEST_DATABASE_URL, "postgres"));
    await server.query(`create database "${database}"`);
    const databaseUrl = withDatabase(TEST_DATABASE_URL, database);
    const rabbitmqUrl = withVhost(RABBITMQ_URL, vhost);
    return new DurableEnv(vhost, database, rabbitmqUrl, databaseUrl, await TestPublisher.open(rabbitmqUrl), await PgAdmin.connect(databaseUrl), server);
  }

  /** What a gateway or worker of this env needs (add ROLE, PORT…). */
  get env(): Record<string, string> {
    return { RABBITMQ_URL: this.rabbitmqUrl, DATABASE_URL: this.databaseUrl };
  }

  /** A backend event on `channel` (`user:42` → routing key `user.42.<type>`), confirmed by the broker. */
  publishEvent(channel: string, id: string, data: unknown = {}, type = "notification.created"): Promise<void> {
    return this.publisher.publish(`${channel.replace(":", ".")}.${type}`, { id, type, data, occurredAt: new Date().toISOString() });
  }

  /** Stored rows of a channel, oldest first. */
  async rows(channel: string): Promise<Array<{ id: string; seq: number }>> {
    const rows = await this.db.query<{ event_id: string; seq: string }>(`select event_id, seq from sobranie_event where channel = ? order by seq`, [channel]);
    return rows.map((row) => ({ id: row.event_id, seq: Number(row.seq) }));
  }

  /** Messages in `sobranie.persist`, ready and unacked together. */
  async persistQueueDepth(): Promise<number> {
    const { stdout } = await run("rabbitmqctl", ["list_queues", "-p", this.vhost, "-q", "--no-table-headers", "name", "messages"]);
    const line = stdout.split("\n").find((row) => row.split("\t")[0] === "sobranie.persist");
    return line ? Number(line.split("\t")[1]) : 0;
  }

  /** Call after every gateway and worker of this env stopped. */
  async close(): Promise<void> {
    await this.publisher.close();
    await this.db.close();
    await this.server.query(`drop database if exists "${this.database}" with (force)`).catch(() => {});
    await this.server.close();
    await run("rabbitmqctl", ["delete_vhost", this.vhost]).catch(() => {});
  }
}

/**
 * Watches `sobranie.dlx` of a vhost through a private queue bound to it, from
 * the moment it is opened: each dead letter's routing key and reason.
 */
export class DeadLetterWatch {
  readonly letters: Array<{ routingKey: string; reason: string; body: string }> = [];

  private constructor(private readonly connection: amqp.ChannelModel) {}

  static async open(url: string): Promise<DeadLetterWatch> {
    const connection = await amqp.connect(url);
    const watch = new DeadLetterWatch(connection);
    const channel = await connection.createChannel();
    const { queue } = await channel.assertQueue("", { exclusive: true, autoDelete: true });
    await channel.bindQueue(queue, "sobranie.dlx", "");
    await channel.consume(
      queue,
      (message) => {
        if (!message) return;
        const reason = String(message.properties.headers?.["x-sobranie-reason"]);
        watch.letters.push({ routingKey: message.fields.routingKey, reason, body: message.content.toString() });
      },
      { noAck: true },
    );
    return watch;
  }

  async close(): Promise<void> {
    await this.connection.close().catch(() => {});
  }
}

/**
 * A gateway or worker as a whole process (so it can be SIGKILLed), with JSON
 * logs at info level: resolves once it logged `ready`, with its port.
 */
export async function startNode(role: "gateway" | "worker", env: Record<string, string>): Promise<{ node: GatewayProcess; port: number; url: string }> {
  const node = GatewayProcess.start([], {
    PORT: "0",
    HOST: "127.0.0.1",
    ROLE: role,
    NODE_ID: uniqueId(role),
    JWT_SECRET: TEST_JWT_SECRET,
    LOG_LEVEL: "info",
    DRAIN_GRACE_MS: "300",
    BIND_LINGER_MS: "200",
    ...env,
  });
  const port = await node.listeningPort();
  await node.waitForOutput(/"msg":"ready"/);
  return { node, port, url: `http://127.0.0.1:${port}` };
}

/**
 * The issue-3 guarantee on one client's view of a channel: exactly the
 * expected ids, each once, in order, with strictly increasing seqs.
 */
export function expectExactlyOnceInOrder(events: readonly Frame[], expectedIds: readonly string[]): void {
  const ids = events.map((frame) => frame.id);
  expect(ids).toEqual(expectedIds);
  const seqs = events.map((frame) => frame.seq as number);
  for (const seq of seqs) expect(Number.isSafeInteger(seq)).toBe(true);
  for (let i = 1; i < seqs.length; i++) expect(seqs[i]!).toBeGreaterThan(seqs[i - 1]!);
}

/** `n` ids for one test, in publish order. */
export function eventIds(prefix: string, n: number): string[] {
  const base = uniqueId(prefix);
  return Array.from({ length: n }, (_, i) => `${base}-${String(i).padStart(4, "0")}`);
}

/**
 * One logical client of a channel that may reconnect to other nodes: each
 * session subscribes with `since` = the last seq any earlier session saw, as
 * the client SDK does. `events` is the union of what all sessions received.
 */
export class RecoveringSubscriber {
  readonly sessions: TestClient[] = [];
  readonly oks: Frame[] = [];

  constructor(
    readonly channel: string,
    private readonly token: string,
  ) {}

  get events(): Frame[] {
    return this.sessions.flatMap((session) => session.events(this.channel));
  }

  get current(): TestClient | undefined {
    return this.sessions.at(-1);
  }

  /** Connects to `wsUrl` and subscribes; with `since` once anything was seen (or as given). */
  async attach(wsUrl: string, since = this.events.at(-1)?.seq as number | undefined): Promise<Frame> {
    const session = await TestClient.connect(wsUrl, { token: this.token });
    this.sessions.push(session);
    const ok = await session.request(since === undefined ? { op: "subscribe", channel: this.channel } : { op: "subscribe", channel: this.channel, since }, 15_000);
    expect(ok).toMatchObject({ op: "ok" });
    this.oks.push(ok);
    return ok;
  }

  close(): void {
    for (const session of this.sessions) session.close();
  }
}
