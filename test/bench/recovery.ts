import os from "node:os";
import amqp from "amqplib";
import { SignJWT } from "jose";
import WebSocket from "ws";
import { ConnFleet } from "./conn-fleet.js";
import { createIsolated } from "./isolated.js";
import { CpuMeter } from "./machine.js";
import { nowMs } from "./payload.js";
import { printGrid, show } from "./report.js";
import { type ProcessHandle, type ServerContext, startGatewayProcess } from "./servers.js";
import { round } from "./stats.js";

export interface RecoveryOptions {
  clients: number;
  /** Clients per room (`room:rec<j>`, a durable namespace). */
  perRoom: number;
  /** Events published to each room while its clients are away. */
  eventsPerRoom: number;
  procs: number;
  timeoutMs: number;
}

export interface RecoveryResult {
  clients: number;
  rooms: number;
  eventsPerRoom: number;
  recovered: number;
  failed: number;
  failures: Record<string, number>;
  /** From the reconnect signal until the last client held every missed event. */
  timeToAllMs: number;
  p50Ms: number | null;
  p99Ms: number | null;
  recoveredEventsPerSec: number;
  lost: number;
  duplicates: number;
  notRecoveredFlag: number;
  cpuPct: Record<string, number | null>;
  loadAvg1m: number;
}

/**
 * Scenario `recovery`: a worker and a gateway with PostgreSQL, in a private
 * vhost and database. Clients subscribe to durable `room:` channels and learn
 * their last seq from one event per room; then every client drops, K events
 * per room are published (confirmed, and seen persisted by one observer per
 * room), and every client reconnects at once with `since`. A client is done
 * when it holds each of its room's K missed seqs; lost = missing seqs,
 * duplicates = seqs seen twice or outside the missed range.
 */
export async function runRecovery(context: ServerContext, options: RecoveryOptions, log: (line: string) => void): Promise<RecoveryResult> {
  const loadAvg1m = round(os.loadavg()[0] ?? 0, 2) ?? 0;
  const rooms = Math.max(1, Math.floor(options.clients / options.perRoom));
  const isolated = createIsolated(`bench_recovery_${context.runId}`, true);
  const nodes: ProcessHandle[] = [];
  let connection: amqp.ChannelModel | null = null;
  let fleet: ConnFleet | null = null;
  const observers: WebSocket[] = [];
  try {
    const env = { RABBITMQ_URL: isolated.rabbitUrl, DATABASE_URL: isolated.databaseUrl!, RATE_CONNECTION_BURST: "100000", RATE_USER_BURST: "100000" };
    const worker = await startGatewayProcess(context, { ...env, ROLE: "worker" }, "recovery-worker");
    nodes.push(worker);
    const gateway = await startGatewayProcess(context, { ...env, JWT_SECRET: worker.jwtSecret! }, "recovery-gateway");
    nodes.push(gateway);
    connection = await amqp.connect(isolated.rabbitUrl);
    const channel = await connection.createConfirmChannel();
    const publishAll = async (tag: string, perRoom: number): Promise<void> => {
      for (let n = 0; n < perRoom; n += 1) {
        for (let j = 0; j < rooms; j += 1) {
          channel.publish("sobranie.events", `room.rec${j}.bench.tick`, Buffer.from(JSON.stringify({ id: `${context.runId}-${tag}-${j}-${n}`, type: "bench.tick", data: { n } })));
        }
        await channel.waitForConfirms();
      }
    };

    const seen = new Array<number>(rooms).fill(0);
    for (let j = 0; j < rooms; j += 1) observers.push(await observe(gateway, `room:rec${j}`, () => (seen[j]! += 1)));
    fleet = ConnFleet.start({ procs: options.procs, clients: options.clients, url: gateway.wsUrl, jwtSecret: gateway.jwtSecret, addressesPerProc: 4, concurrency: 50, timeoutMs: 30_000, hardTimeoutMs: context.hardTimeoutMs, rooms, roomPrefix: "rec" });
    const opened = await fleet.open("room");
    if (opened.failed > 0) throw new Error(`subscribe failed: ${JSON.stringify(opened.failures)}`);
    await fleet.step("listening", { type: "prime" });
    const primed = fleet.step("prime", null);
    await publishAll("prime", 1);
    await primed;
    await fleet.step("drop", { type: "drop" });
    await publishAll("missed", options.eventsPerRoom);
    if (!(await waitFor(() => seen.every((count) => count >= 1 + options.eventsPerRoom), 60_000))) throw new Error("missed events not all persisted and delivered to the observers within 60 s");
    log(`  ${opened.ok} clients on ${rooms} rooms dropped; ${options.eventsPerRoom} events per room persisted; reconnecting all at once`);

    const pids: Record<string, number[]> = { server: [gateway.pid], worker: [worker.pid], clients: fleet.pids(), runner: [process.pid] };
    if (context.brokerPid !== null) pids.broker = [context.brokerPid];
    const meter = new CpuMeter(pids);
    const totals = await fleet.step("storm", { type: "storm", k: options.eventsPerRoom, t0: nowMs(), timeoutMs: options.timeoutMs });
    const cpuPct = meter.stop();
    const result: RecoveryResult = {
      clients: options.clients,
      rooms,
      eventsPerRoom: options.eventsPerRoom,
      recovered: totals.ok,
      failed: totals.failed,
      failures: totals.failures,
      timeToAllMs: Math.round(totals.elapsedMs),
      p50Ms: round(totals.histogram.percentileMs(0.5)),
      p99Ms: round(totals.histogram.percentileMs(0.99)),
      recoveredEventsPerSec: Math.round(((totals.ok * options.eventsPerRoom) / totals.elapsedMs) * 1000),
      lost: totals.extra.lost ?? 0,
      duplicates: totals.extra.duplicates ?? 0,
      notRecoveredFlag: totals.extra.notRecovered ?? 0,
      cpuPct,
      loadAvg1m,
    };
    log(`  ${result.recovered}/${options.clients} recovered in ${result.timeToAllMs} ms (p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms); lost ${result.lost}, duplicates ${result.duplicates}`);
    return result;
  } finally {
    for (const ws of observers) ws.terminate();
    await fleet?.stop();
    await connection?.close().catch(() => undefined);
    for (const node of nodes.reverse()) await node.stop();
    isolated.drop();
  }
}

async function observe(gateway: ProcessHandle, channel: string, onEvent: () => void): Promise<WebSocket> {
  const token = await new SignJWT({ channels: ["room:*"] }).setProtectedHeader({ alg: "HS256" }).setSubject("observer").setExpirationTime("1h").sign(new TextEncoder().encode(gateway.jwtSecret!));
  const ws = new WebSocket(`${gateway.wsUrl}?token=${token}`);
  await new Promise<void>((resolve, reject) => {
    ws.once("error", reject);
    ws.on("message", (data: Buffer) => {
      const frame = JSON.parse(data.toString("utf8")) as { op: string; ref?: number };
      if (frame.op === "welcome") ws.send(JSON.stringify({ op: "subscribe", ref: 1, channel }));
      else if (frame.op === "ok" && frame.ref === 1) resolve();
      else if (frame.op === "event") onEvent();
    });
  });
  return ws;
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

export function printRecovery(r: RecoveryResult, log: (line: string) => void): void {
  printGrid(
    [
      ["recovery", "clients", "recovered", "time to all ms", "p50 ms", "p99 ms", "events/s", "lost", "dups", "srv cpu%", "box cpu%", "others%"],
      ["gateway", String(r.clients), String(r.recovered), String(r.timeToAllMs), show(r.p50Ms), show(r.p99Ms), String(r.recoveredEventsPerSec), String(r.lost), String(r.duplicates), show(r.cpuPct.server ?? null), show(r.cpuPct.box ?? null), show(r.cpuPct.others ?? null)],
    ],
    log,
  );
  log(`${r.rooms} rooms × ${r.eventsPerRoom} missed events; ${r.notRecoveredFlag} subscribes answered recovered:false; failures ${JSON.stringify(r.failures)}`);
}
