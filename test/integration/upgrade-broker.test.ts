import { execFile, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import amqp from "amqplib";
import { afterEach, describe, expect, it } from "vitest";
import { AmqpNames } from "@sobranie/protocol/amqp";
import { DEAD_QUEUE_MAX_LENGTH } from "../../src/adapters/amqp/topology.js";
import { MOVE_IN_FLIGHT } from "../../src/adapters/amqp/upgrade-dead-queue.js";
import { createRabbitVhost, type RabbitVhost } from "../support/rabbit-vhost.js";
import { waitFor } from "../support/wait-for.js";

const run = promisify(execFile);

/** The compiled CLI (`npm test` builds first), run the way `npm run upgrade-broker` runs it. */
const UPGRADE_JS = fileURLToPath(new URL("../../dist/src/adapters/amqp/upgrade-cli.js", import.meta.url));

/** The arguments earlier versions declared the classic `sobranie.dead` with. */
const OLD_DEAD_QUEUE_ARGUMENTS = { "x-max-length": DEAD_QUEUE_MAX_LENGTH, "x-overflow": "drop-head" };

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI; `onLine` sees each stdout line as it arrives (and may kill the child). */
function runUpgrade(env: Record<string, string>, onLine?: (line: string, kill: () => void) => void): Promise<CliRun> {
  const child = spawn(process.execPath, [UPGRADE_JS], { env: { PATH: process.env.PATH ?? "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  let partial = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
    partial += chunk.toString();
    const lines = partial.split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) onLine?.(line, () => child.kill("SIGKILL"));
  });
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on("exit", (code) => resolve({ code, stdout, stderr })));
}

/** The topology an earlier version left: `sobranie.dlx` → a classic `sobranie.dead`, holding `count` dead letters. */
async function createOldTopology(vhost: RabbitVhost, count: number): Promise<void> {
  const connection = await amqp.connect(vhost.url);
  try {
    const channel = await connection.createConfirmChannel();
    await channel.assertExchange(AmqpNames.deadLetterExchange, "fanout", { durable: true, autoDelete: false });
    await channel.assertQueue(AmqpNames.deadQueue, { durable: true, arguments: OLD_DEAD_QUEUE_ARGUMENTS });
    await channel.bindQueue(AmqpNames.deadQueue, AmqpNames.deadLetterExchange, "");
    for (let index = 0; index < count; index++) publishDeadLetter(channel, `old-${index}`, index);
    await channel.waitForConfirms();
  } finally {
    await connection.close();
  }
}

/** A dead letter as a gateway writes one: routing key of the event, JSON body, its own distinct headers. */
function publishDeadLetter(channel: amqp.ConfirmChannel, id: string, index: number, callback?: (error: unknown) => void): void {
  channel.publish(
    AmqpNames.deadLetterExchange,
    `room.${index}.message`,
    Buffer.from(JSON.stringify({ id, index })),
    {
      mandatory: true,
      persistent: true,
      contentType: "application/json",
      messageId: id,
      timestamp: 1_700_000_000 + index,
      headers: { "x-sobranie-reason": "invalid_event", "x-sobranie-node": `node-${index % 3}`, "x-test-id": id, "x-test-index": index },
    },
    callback,
  );
}

interface QueueRow {
  name: string;
  type: string;
  messages: number;
}

async function listQueues(vhost: RabbitVhost): Promise<QueueRow[]> {
  const { stdout } = await run("rabbitmqctl", ["list_queues", "-p", vhost.name, "-q", "--no-table-headers", "name", "type", "messages"]);
  return stdout
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => {
      const [name = "", type = "", messages = "0"] = line.split("\t");
      return { name, type, messages: Number(messages) };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Where `sobranie.dlx` routes: the destinations of its bindings. */
async function dlxDestinations(vhost: RabbitVhost): Promise<string[]> {
  const { stdout } = await run("rabbitmqctl", ["list_bindings", "-p", vhost.name, "-q", "--no-table-headers", "source_name", "destination_name"]);
  return stdout
    .split("\n")
    .map((line) => line.split("\t"))
    .filter(([source]) => source === AmqpNames.deadLetterExchange)
    .map(([, destination]) => destination ?? "")
    .sort();
}

/** How long no delivery arrives before `drain` asks whether the queue is empty. */
const DRAIN_IDLE_MS = 200;

/** Takes every message of `queue` (the vhost is dropped afterwards). */
async function drain(vhost: RabbitVhost, queue: string): Promise<amqp.ConsumeMessage[]> {
  const connection = await amqp.connect(vhost.url);
  try {
    const channel = await connection.createChannel();
    const messages: amqp.ConsumeMessage[] = [];
    let lastAt = Date.now();
    await channel.consume(
      queue,
      (message) => {
        if (message === null) return;
        messages.push(message);
        lastAt = Date.now();
      },
      { noAck: true },
    );
    await waitFor(async () => Date.now() - lastAt > DRAIN_IDLE_MS && (await channel.checkQueue(queue)).messageCount === 0, 60_000, `${queue} drained`);
    return messages;
  } finally {
    await connection.close();
  }
}

/** What a dead letter carries, less the delivery counter the quorum queue adds when it delivers to the test. */
function storedHeaders(message: amqp.ConsumeMessage): Record<string, unknown> {
  const { "x-delivery-count": _counter, ...headers } = message.properties.headers ?? {};
  return headers;
}

/** `list_queues` counts of quorum queues trail by a stats interval: waits for the expected one. */
async function settledQueues(vhost: RabbitVhost, expected: (rows: QueueRow[]) => boolean): Promise<QueueRow[]> {
  let rows: QueueRow[] = [];
  await waitFor(async () => expected((rows = await listQueues(vhost))), 20_000, "queue counts");
  return rows;
}

describe("npm run upgrade-broker (upgrade-cli)", () => {
  let vhost: RabbitVhost | undefined;

  afterEach(async () => {
    await vhost?.drop();
    vhost = undefined;
  });

  it("moves a classic sobranie.dead with 1,000 dead letters to a quorum queue, headers intact, then has nothing to do", async () => {
    vhost = await createRabbitVhost("sobranie-upgrade");
    const count = 1_000;
    await createOldTopology(vhost, count);
    expect(await listQueues(vhost)).toEqual([{ name: AmqpNames.deadQueue, type: "classic", messages: count }]);

    const first = await runUpgrade({ RABBITMQ_URL: vhost.url });
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`moved ${count} message(s) from ${AmqpNames.deadQueue} to ${AmqpNames.deadQueueUpgrading}`);
    expect(first.stdout).toContain("is a quorum queue");
    expect(first.stdout).not.toContain("guest:guest");

    const rows = await settledQueues(vhost, (current) => current.every((row) => row.messages === count));
    expect(rows).toEqual([{ name: AmqpNames.deadQueue, type: "quorum", messages: count }]);
    expect(await dlxDestinations(vhost)).toEqual([AmqpNames.deadQueue]);

    const second = await runUpgrade({ RABBITMQ_URL: vhost.url });
    expect(second.code).toBe(0);
    expect(second.stdout).toContain("nothing to do");

    const messages = await drain(vhost, AmqpNames.deadQueue);
    expect(messages).toHaveLength(count);
    const byId = new Map(messages.map((message) => [message.properties.messageId as string, message]));
    expect(byId.size).toBe(count);
    for (let index = 0; index < count; index++) {
      const message = byId.get(`old-${index}`);
      expect(message, `old-${index}`).toBeDefined();
      expect(message!.fields.routingKey).toBe(`room.${index}.message`);
      expect(storedHeaders(message!)).toEqual({
        "x-sobranie-reason": "invalid_event",
        "x-sobranie-node": `node-${index % 3}`,
        "x-test-id": `old-${index}`,
        "x-test-index": index,
      });
      expect(message!.properties.contentType).toBe("application/json");
      expect(message!.properties.timestamp).toBe(1_700_000_000 + index);
      expect(message!.properties.deliveryMode).toBe(2);
      expect(JSON.parse(message!.content.toString())).toEqual({ id: `old-${index}`, index });
    }
  }, 60_000);

  it("loses none of the dead letters published to sobranie.dlx while the move runs", async () => {
    vhost = await createRabbitVhost("sobranie-upgrade");
    const initial = 5_000;
    await createOldTopology(vhost, initial);

    const connection = await amqp.connect(vhost.url);
    const channel = await connection.createConfirmChannel();
    let returned = 0;
    channel.on("return", () => (returned += 1));
    const published: string[] = [];
    const publishedAt: number[] = [];
    let running = true;
    const publishing = (async () => {
      for (let index = 0; running || index < 300; index++) {
        const id = `live-${index}`;
        await new Promise<void>((resolve, reject) => publishDeadLetter(channel, id, index, (error) => (error ? reject(error) : resolve())));
        published.push(id);
        publishedAt.push(Date.now());
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    })();

    const lineAt = new Map<string, number>();
    const upgrade = await runUpgrade({ RABBITMQ_URL: vhost.url }, (line) => lineAt.set(line, Date.now()));
    running = false;
    await publishing;
    await connection.close();
    expect(upgrade.stderr).toBe("");
    expect(upgrade.code).toBe(0);
    expect(returned, "dead letters that reached no queue").toBe(0);

    // The publishes overlapped the move: some went out between the first bind change and the last.
    const movedOut = [...lineAt].find(([line]) => line.includes(`routes to ${AmqpNames.deadQueueUpgrading}`))?.[1] ?? 0;
    const finished = [...lineAt].find(([line]) => line.includes(`deleted ${AmqpNames.deadQueueUpgrading}`))?.[1] ?? 0;
    expect(publishedAt.filter((at) => at > movedOut && at < finished).length).toBeGreaterThan(0);

    await settledQueues(vhost, (rows) => rows.length === 1 && rows[0]!.type === "quorum");
    const messages = await drain(vhost, AmqpNames.deadQueue);
    const ids = messages.map((message) => message.properties.messageId as string);
    const expected = [...Array.from({ length: initial }, (_, index) => `old-${index}`), ...published];
    expect(new Set(ids)).toEqual(new Set(expected));
    // At least once: only a dead letter published in a bind/unbind round trip may be kept twice.
    expect(ids.length - new Set(ids).size).toBeLessThanOrEqual(published.length);
    expect(await dlxDestinations(vhost)).toEqual([AmqpNames.deadQueue]);
  }, 90_000);

  it("resumes a run killed while moving: run again, it loses nothing", async () => {
    vhost = await createRabbitVhost("sobranie-upgrade");
    const count = 20_000;
    await createOldTopology(vhost, count);
    const killed = await runUpgrade({ RABBITMQ_URL: vhost.url }, (line, kill) => {
      if (line.includes("moved 2000 message(s)")) kill();
    });
    expect(killed.code).toBeNull();
    const between = await listQueues(vhost);
    expect(between.map((row) => `${row.name} ${row.type}`)).toEqual([`${AmqpNames.deadQueue} classic`, `${AmqpNames.deadQueueUpgrading} quorum`]);

    const resumed = await runUpgrade({ RABBITMQ_URL: vhost.url });
    expect(resumed.stderr).toBe("");
    expect(resumed.code).toBe(0);
    await settledQueues(vhost, (rows) => rows.length === 1 && rows[0]!.type === "quorum");
    const ids = (await drain(vhost, AmqpNames.deadQueue)).map((message) => message.properties.messageId as string);
    expect(new Set(ids).size).toBe(count);
    // Copies confirmed but not acked when the run died are moved again: at most the in-flight bound.
    expect(ids.length - count).toBeLessThanOrEqual(MOVE_IN_FLIGHT);
  }, 120_000);

  it("exits 2 without RABBITMQ_URL and 1 when the broker is unreachable, never printing the password", async () => {
    const missing = await runUpgrade({});
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("RABBITMQ_URL");
    const down = await runUpgrade({ RABBITMQ_URL: "amqp://guest:not-to-be-printed@127.0.0.1:1,amqp://guest:x@127.0.0.2:1" });
    expect(down.code).toBe(1);
    expect(down.stdout + down.stderr).not.toContain("not-to-be-printed");
    expect(down.stdout).toContain("127.0.0.1:1/");
  }, 30_000);
});
