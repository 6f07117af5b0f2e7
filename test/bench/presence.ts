import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { AmqpPresenceBus } from "../../src/adapters/amqp/amqp-presence-bus.js";
import { systemClock } from "@sobranie/protocol/runtime/clock";
import { silentLogger } from "@sobranie/protocol/runtime/logger";
import { noopMetrics } from "../../src/core/ports/metrics.js";
import { PresenceTracker } from "../../src/core/presence/index.js";

/**
 * Presence benchmark: `npm run build:test && node dist/test/bench/presence.js [10000 50000]`.
 * Two trackers on the real RabbitMQ (a vhost of their own) with the default
 * HEARTBEAT_MS: node A tracks N connections (each: online + member of one of
 * N/100 rooms); measured: time until node B's view holds all of them
 * (deltas), time for a third node C, started afterwards, to converge from a
 * snapshot, and the CPU both idle nodes spend on heartbeats over 10 s.
 * Prints numbers; asserts nothing.
 */
const run = promisify(execFile);
const RABBITMQ_URL = process.env.RABBITMQ_URL ?? "amqp://guest:guest@127.0.0.1:5672";
const HEARTBEAT_MS = 1_000;
const TTL_MS = 60_000;
const IDLE_WINDOW_MS = 10_000;

const fanout = { publish: () => 0, subscribers: () => 0 };

function tracker(node: string, url: string): PresenceTracker {
  return new PresenceTracker(
    { nodeId: node, incarnation: randomBytes(4).toString("hex"), heartbeatMs: HEARTBEAT_MS, ttlMs: TTL_MS, maxListedMembers: 1_000, fanoutPerSec: 50, fanoutDeliveriesPerSec: 20_000 },
    { clock: systemClock, bus: new AmqpPresenceBus({ urls: [url], nodeId: node, logger: silentLogger }), fanout, metrics: noopMetrics, logger: silentLogger, publishEvent: () => {} },
  );
}

async function until(predicate: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error("did not converge");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Online among `users`, in t's view (no store: answered from memory). */
async function onlineCount(t: PresenceTracker, users: readonly string[]): Promise<number> {
  return (await t.statuses(users)).filter((status) => status.online).length;
}

async function measure(n: number): Promise<void> {
  const vhost = `bench-presence-${randomBytes(4).toString("hex")}`;
  await run("rabbitmqctl", ["add_vhost", vhost]);
  await run("rabbitmqctl", ["set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"]);
  const url = `${RABBITMQ_URL}/${vhost}`;
  const a = tracker("a", url);
  const b = tracker("b", url);
  try {
    await Promise.all([a.start(), b.start()]);
    const users = Array.from({ length: n }, (_, i) => `u${i}`);
    const sample = users.filter((_, i) => i % Math.max(1, Math.floor(n / 100)) === 0);
    const t0 = performance.now();
    users.forEach((user, i) => {
      a.userConnected(user);
      a.track(`room:${i % Math.max(1, Math.floor(n / 100))}`, user, { name: user });
    });
    const trackMs = performance.now() - t0;
    await until(async () => (await onlineCount(b, [...sample, users.at(-1)!])) === sample.length + 1);
    const deltaMs = performance.now() - t0;
    const c = tracker("c", url);
    const t1 = performance.now();
    await c.start();
    await until(async () => (await onlineCount(c, [...sample, users.at(-1)!])) === sample.length + 1);
    const snapshotMs = performance.now() - t1;
    const cpu0 = process.cpuUsage();
    await new Promise((resolve) => setTimeout(resolve, IDLE_WINDOW_MS));
    const cpu = process.cpuUsage(cpu0);
    const cpuPct = ((cpu.user + cpu.system) / 1000 / IDLE_WINDOW_MS) * 100;
    console.log(
      JSON.stringify({ tracked: n, entries: 2 * n, trackOnA_ms: Math.round(trackMs), convergeOnB_ms: Math.round(deltaMs), snapshotToNewNodeC_ms: Math.round(snapshotMs), idleCpuPercent_3nodes_heartbeat1s: Number(cpuPct.toFixed(2)) }),
    );
    c.stop();
  } finally {
    a.stop();
    b.stop();
    await run("rabbitmqctl", ["delete_vhost", vhost]).catch(() => undefined);
  }
}

const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
for (const n of sizes.length > 0 ? sizes : [10_000, 50_000]) await measure(n);
process.exit(0);
