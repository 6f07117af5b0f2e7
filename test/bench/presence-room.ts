import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join as joinPath } from "node:path";
import os from "node:os";
import { ConnFleet, type StepTotals } from "./conn-fleet.js";
import type { ConnCommand } from "./conn-process.js";
import { createIsolated } from "./isolated.js";
import { CpuMeter } from "./machine.js";
import { nowMs } from "./payload.js";
import { type Observation, PresenceObserver } from "./presence-observer.js";
import { type ProcessHandle, type ServerContext, startGatewayProcess } from "./servers.js";
import { LatencyHistogram, round } from "./stats.js";

export interface PresenceRoomOptions {
  /** Members of the one room: half on node A (2 client processes), a quarter each in B1 and B2 on node B (1 process each). */
  members: number;
  /** Connects + subscribes in flight per client process. */
  concurrency: number;
  /** The gateways' HEARTBEAT_MS (node heartbeats, and the clients' ping interval) and PRESENCE_TTL_MS. */
  heartbeatMs: number;
  ttlMs: number;
  /** The idle CPU window. */
  idleMs: number;
  /** No join/leave frame for this long at any client: the fan-out has drained. */
  quietMs: number;
  /** Observer poll interval. */
  pollMs: number;
  /** Bound of every single wait. */
  timeoutMs: number;
  /** Every child (gateways, client processes) ends by itself after this long. */
  hardTimeoutMs: number;
}

export type Cpu = Record<string, number | null>;
/** Longest event-loop stall of each node during a phase (prom-client's `nodejs_eventloop_lag_max_seconds`, reset by every scrape). */
export type LoopMax = { a: number | null; b: number | null };

export interface PresenceJoin {
  subscribed: number;
  failed: number;
  failures: Record<string, number>;
  /** First subscribe sent → last `ok` received, over all members. */
  subscribeStormMs: number;
  subscribeP50Ms: number | null;
  subscribeP99Ms: number | null;
  /** Last `ok` → first observer answer with the full count, per node (negative: the node had them all before the last `ok` reached its client). */
  fullOnAAfterLastOkMs: number | null;
  fullOnBAfterLastOkMs: number | null;
  /** Last `ok` → both nodes answered the full count. */
  convergedMs: number | null;
  /** First subscribe → both nodes answered the full count. */
  joinStormMs: number | null;
  joinFrames: number;
  /** Last `ok` → the last join frame any member received (the join fan-out drained). */
  fanoutDrainedAfterLastOkMs: number | null;
  /** From just before the first subscribe until the fan-out drained plus `quietMs` (`cpuWindowMs`); compare CPU seconds across runs, not percent. */
  cpuPct: Cpu;
  cpuWindowMs: number;
  eventLoopMaxMs: LoopMax;
  /** After the fan-out drained: each node's count (short of `members` when subscribes failed or members were closed) and the members' closes by code. */
  countOnA: number | null;
  countOnB: number | null;
  closes: Record<string, number>;
}

export interface PresenceIdle {
  windowMs: number;
  cpuPct: Cpu;
  /** Members' sockets still open after the window, and closes by code since the join (4008 = heartbeat TTL, 4013 = send buffer). */
  open: number;
  closes: Record<string, number>;
  countOnA: number | null;
  countOnB: number | null;
  eventLoopMaxMs: LoopMax;
}

export interface PresenceLeave {
  members: number;
  /** Drop (or kill) → the first answer with the reduced count. */
  onAMs: number | null;
  onBMs: number | null;
  /** Leave frames the remaining members received, and drop (or kill) → the last of them. */
  leaveFrames: number;
  fanoutDrainedMs: number | null;
  eventLoopMaxMs: LoopMax;
}

export interface PeerRemoval {
  time: string;
  reason: string;
  entries: number;
}

export interface PresenceRoomResult {
  members: number;
  channel: string;
  onA: number;
  onB: number;
  heartbeatMs: number;
  ttlMs: number;
  presence: {
    join: PresenceJoin;
    idle: PresenceIdle;
    disconnect: PresenceLeave | null;
    kill: PresenceLeave;
    /** "presence: node removed" lines in each node's log: on A, the last `dead` one is expected (the kill); any other is a live peer judged dead. */
    peerRemovals: { a: PeerRemoval[]; b: PeerRemoval[] };
    /** Observer connections the nodes closed (code → times); each was reopened on the next question. */
    observerCloses: { a: Record<string, number>; b: Record<string, number> };
  };
  baseline: { join: PresenceJoin; idle: PresenceIdle };
  /** presence / baseline gateway CPU over the idle window: node A, node B, both. */
  idleCpuRatio: { a: number | null; b: number | null; both: number | null };
  loadAvg1m: number;
  notes: string[];
}

/** Convergence is expected within about a second of the last `ok`; 30 s later it is reported as never (null) with the counts reached. */
const CONVERGE_GIVE_UP_MS = 30_000;

/** Two gateway nodes, their observers, and the member fleets on each. */
interface Cluster {
  a: ProcessHandle;
  b: ProcessHandle;
  observerA: PresenceObserver;
  observerB: PresenceObserver;
  /** `a`: node A's members; `b1`: node B's members that disconnect; `b2`: node B's members that die with it. */
  fleets: { a: ConnFleet; b1: ConnFleet; b2: ConnFleet };
  sizes: { a: number; b1: number; b2: number };
}

/**
 * Scenario `presence`: one `room:` channel with N members across two gateway
 * processes (ROLE=gateway, one private vhost), each member its own user with a
 * small `info` claim. Run twice on fresh nodes: baseline (the same members
 * subscribed without `presence`), then presence. Measured: convergence (the
 * observers' `presence` counts on both nodes against the members' subscribe
 * times), the join fan-out, gateway CPU over an idle window while members ping
 * every HEARTBEAT_MS, a disconnect wave of a quarter of the members (node B's
 * B1 half) and `kill -9` of node B (the other quarter: dead-node removal,
 * bounded by PRESENCE_TTL_MS).
 */
export async function runPresenceRoom(context: ServerContext, requested: PresenceRoomOptions, log: (line: string) => void): Promise<PresenceRoomResult> {
  // --gateway-env wins over the scenario's own settings (servers.ts applies it last): the members ping at what the nodes run.
  const heartbeatMs = Number(context.gatewayEnv.HEARTBEAT_MS ?? requested.heartbeatMs);
  const ttlMs = Number(context.gatewayEnv.PRESENCE_TTL_MS ?? requested.ttlMs);
  const options: PresenceRoomOptions = { ...requested, heartbeatMs, ttlMs };
  const loadAvg1m = round(os.loadavg()[0] ?? 0, 2) ?? 0;
  const ctx: ServerContext = { ...context, hardTimeoutMs: options.hardTimeoutMs };
  const isolated = createIsolated(`bench_presence_${context.runId}`, false);
  const channel = `room:presence${context.runId}`;
  const env = {
    RABBITMQ_URL: isolated.rabbitUrl,
    JWT_SECRET: randomBytes(24).toString("hex"),
    HEARTBEAT_MS: String(options.heartbeatMs),
    PRESENCE_TTL_MS: String(options.ttlMs),
    // "presence: node removed" is an info line: the logs show when each node dropped its peer.
    LOG_LEVEL: "info",
  };
  const sizes = { a: Math.floor(options.members / 2), b1: Math.floor(options.members / 4), b2: options.members - Math.floor(options.members / 2) - Math.floor(options.members / 4) };
  log(`  ${options.members} members in ${channel}: ${sizes.a} on node A, ${sizes.b1 + sizes.b2} on node B; HEARTBEAT_MS=${heartbeatMs} PRESENCE_TTL_MS=${ttlMs}`);
  try {
    const baseline = await withCluster(ctx, env, "presence-base", sizes, options, async (cluster) => {
      const join = await joinPhase(cluster, ctx, channel, false, options);
      log(`  baseline (no presence): ${join.subscribed} subscribed in ${join.subscribeStormMs} ms`);
      const idle = await idlePhase(cluster, ctx, channel, false, options);
      log(`  baseline idle ${options.idleMs} ms: gateway cpu% A ${idle.cpuPct.nodeA}, B ${idle.cpuPct.nodeB}`);
      return { join, idle };
    });
    const presence = await withCluster(ctx, env, "presence", sizes, options, async (cluster) => {
      const join = await joinPhase(cluster, ctx, channel, true, options);
      log(`  presence: ${join.subscribed} subscribed in ${join.subscribeStormMs} ms; both nodes full ${join.convergedMs} ms after the last ok (join storm ${join.joinStormMs} ms); fan-out drained ${join.fanoutDrainedAfterLastOkMs} ms after it`);
      const idle = await idlePhase(cluster, ctx, channel, true, options);
      log(`  presence idle ${options.idleMs} ms: gateway cpu% A ${idle.cpuPct.nodeA}, B ${idle.cpuPct.nodeB}; counts A ${idle.countOnA}, B ${idle.countOnB}`);
      const disconnect = await disconnectPhase(cluster, channel, options);
      log(`  disconnect ${disconnect?.members} of node B's members: node A counted it in ${disconnect?.onAMs} ms, node B in ${disconnect?.onBMs} ms`);
      const kill = await killPhase(cluster, channel, options);
      log(`  kill -9 node B (${kill.members} members): node A counted it in ${kill.onAMs} ms`);
      return { join, idle, disconnect, kill, observerCloses: { a: { ...cluster.observerA.closeCodes }, b: { ...cluster.observerB.closeCodes } } };
    });
    const removals = (node: string): PeerRemoval[] => peerRemovals(joinPath(context.logDir, `presence-${node}-${context.runId}.log`));
    const ratioOf = (p: number | null | undefined, b: number | null | undefined): number | null => (p == null || b == null || b === 0 ? null : round(p / b, 2));
    const sum = (cpu: Cpu): number | null => (cpu.nodeA == null || cpu.nodeB == null ? null : cpu.nodeA + cpu.nodeB);
    return {
      members: options.members,
      channel,
      onA: sizes.a,
      onB: sizes.b1 + sizes.b2,
      heartbeatMs,
      ttlMs,
      presence: { ...presence, peerRemovals: { a: removals("a"), b: removals("b") } },
      baseline,
      idleCpuRatio: {
        a: ratioOf(presence.idle.cpuPct.nodeA, baseline.idle.cpuPct.nodeA),
        b: ratioOf(presence.idle.cpuPct.nodeB, baseline.idle.cpuPct.nodeB),
        both: ratioOf(sum(presence.idle.cpuPct), sum(baseline.idle.cpuPct)),
      },
      loadAvg1m,
      notes: [
        `private vhost ${isolated.rabbitUrl.split("/").pop()}`,
        "baseline: every connection still counts for its user's online status (replicated like presence); only the room membership is off",
        `members ping every HEARTBEAT_MS (${heartbeatMs} ms), spread over the period`,
      ],
    };
  } finally {
    isolated.drop();
  }
}

/** Starts both nodes (one JWT secret), their observers and the three member fleets; stops all of it after `body`. */
async function withCluster<T>(
  ctx: ServerContext,
  env: Record<string, string>,
  label: string,
  sizes: Cluster["sizes"],
  options: PresenceRoomOptions,
  body: (cluster: Cluster) => Promise<T>,
): Promise<T> {
  const started = await Promise.allSettled([startGatewayProcess(ctx, env, `${label}-a`), startGatewayProcess(ctx, env, `${label}-b`)]);
  const nodes = started.flatMap((outcome) => (outcome.status === "fulfilled" ? [outcome.value] : []));
  const fleets: ConnFleet[] = [];
  const observers: PresenceObserver[] = [];
  try {
    const failed = started.find((outcome) => outcome.status === "rejected");
    if (failed) throw failed.reason;
    const [a, b] = nodes as [ProcessHandle, ProcessHandle];
    const fleet = (url: string, procs: number, clients: number, procOffset: number): ConnFleet => {
      const members = ConnFleet.start({ procs, clients, url, jwtSecret: env.JWT_SECRET!, addressesPerProc: 4, concurrency: options.concurrency, timeoutMs: 30_000, hardTimeoutMs: ctx.hardTimeoutMs, info: true, procOffset });
      fleets.push(members);
      return members;
    };
    const cluster: Cluster = {
      a,
      b,
      observerA: await PresenceObserver.connect(a.wsUrl, env.JWT_SECRET!, "observer-a", options.heartbeatMs),
      observerB: await PresenceObserver.connect(b.wsUrl, env.JWT_SECRET!, "observer-b", options.heartbeatMs),
      fleets: { a: fleet(a.wsUrl, 2, sizes.a, 0), b1: fleet(b.wsUrl, 1, sizes.b1, 2), b2: fleet(b.wsUrl, 1, sizes.b2, 3) },
      sizes,
    };
    observers.push(cluster.observerA, cluster.observerB);
    await Promise.all(fleets.map((member) => member.configure()));
    return await body(cluster);
  } finally {
    for (const observer of observers) observer.close();
    await Promise.all(fleets.map((member) => member.stop()));
    for (const node of nodes) await node.stop();
  }
}

function allFleets(cluster: Cluster): ConnFleet[] {
  return [cluster.fleets.a, cluster.fleets.b1, cluster.fleets.b2];
}

/** Sends one command to several fleets at once and adds up their totals. */
async function stepAll(fleets: ConnFleet[], step: string, command: ConnCommand | null): Promise<StepTotals> {
  const parts = await Promise.all(fleets.map((fleet) => fleet.step(step, command)));
  const totals: StepTotals = { ok: 0, failed: 0, failures: {}, elapsedMs: 0, histogram: new LatencyHistogram(), extra: {}, firstMark: {}, lastMark: {} };
  for (const part of parts) {
    totals.ok += part.ok;
    totals.failed += part.failed;
    totals.elapsedMs = Math.max(totals.elapsedMs, part.elapsedMs);
    for (const [reason, n] of Object.entries(part.failures)) totals.failures[reason] = (totals.failures[reason] ?? 0) + n;
    for (const [key, n] of Object.entries(part.extra)) totals.extra[key] = (totals.extra[key] ?? 0) + n;
    for (const [key, at] of Object.entries(part.firstMark)) totals.firstMark[key] = Math.min(totals.firstMark[key] ?? at, at);
    for (const [key, at] of Object.entries(part.lastMark)) totals.lastMark[key] = Math.max(totals.lastMark[key] ?? at, at);
    mergeHistogram(totals.histogram, part.histogram);
  }
  return totals;
}

function mergeHistogram(into: LatencyHistogram, from: LatencyHistogram): void {
  into.addSparse(from.toSparse());
}

function cpuGroups(cluster: Cluster, ctx: ServerContext): Record<string, number[]> {
  const groups: Record<string, number[]> = { nodeA: [cluster.a.pid], nodeB: [cluster.b.pid], clients: allFleets(cluster).flatMap((fleet) => fleet.pids()), runner: [process.pid] };
  if (ctx.brokerPid !== null) groups.broker = [ctx.brokerPid];
  return groups;
}

async function joinPhase(cluster: Cluster, ctx: ServerContext, channel: string, presence: boolean, options: PresenceRoomOptions): Promise<PresenceJoin> {
  const total = cluster.sizes.a + cluster.sizes.b1 + cluster.sizes.b2;
  await loopMax(cluster);
  const meter = new CpuMeter(cpuGroups(cluster, ctx), 1);
  const startedAt = nowMs();
  const full = (count: number): boolean => count >= total;
  const impossible = new AbortController();
  const watches = presence
    ? [cluster.observerA.until(channel, full, options.pollMs, options.timeoutMs, impossible.signal), cluster.observerB.until(channel, full, options.pollMs, options.timeoutMs, impossible.signal)]
    : [Promise.resolve(null), Promise.resolve(null)];
  const joined = await stepAll(allFleets(cluster), "join", { type: "join", channel, presence, heartbeatMs: options.heartbeatMs });
  // A member that never got its `ok` is no member: the full count cannot come any more.
  if (joined.failed > 0) impossible.abort();
  // Members closed after their `ok` (4008, 4013) leave the room as well: past this, the count is not coming.
  const giveUp = setTimeout(() => impossible.abort(), CONVERGE_GIVE_UP_MS);
  const [fullA, fullB] = (await Promise.all(watches)) as [Observation | null, Observation | null];
  clearTimeout(giveUp);
  const settled = await stepAll(allFleets(cluster), "settle", { type: "settle", quietMs: options.quietMs, timeoutMs: options.timeoutMs });
  const cpuPct = meter.stop();
  const cpuWindowMs = Math.round(nowMs() - startedAt);
  const eventLoopMaxMs = await loopMax(cluster);
  const firstAt = joined.firstMark.firstSubscribeAt ?? null;
  const lastOkAt = joined.lastMark.lastOkAt ?? null;
  const since = (at: number | undefined | null, from: number | null): number | null => (at == null || from === null ? null : Math.round(at - from));
  const both = fullA === null || fullB === null ? null : Math.max(fullA.at, fullB.at);
  return {
    subscribed: joined.ok,
    failed: joined.failed,
    failures: { ...joined.failures, ...settled.failures },
    subscribeStormMs: since(lastOkAt, firstAt) ?? 0,
    subscribeP50Ms: round(joined.histogram.percentileMs(0.5)),
    subscribeP99Ms: round(joined.histogram.percentileMs(0.99)),
    fullOnAAfterLastOkMs: since(fullA?.at, lastOkAt),
    fullOnBAfterLastOkMs: since(fullB?.at, lastOkAt),
    convergedMs: since(both, lastOkAt),
    joinStormMs: since(both, firstAt),
    joinFrames: settled.extra.joinFrames ?? 0,
    fanoutDrainedAfterLastOkMs: since(settled.lastMark.lastPresenceFrameAt, lastOkAt),
    cpuPct,
    cpuWindowMs,
    eventLoopMaxMs,
    countOnA: presence ? await cluster.observerA.count(channel) : null,
    countOnB: presence ? await cluster.observerB.count(channel) : null,
    closes: closesOf(settled),
  };
}

async function idlePhase(cluster: Cluster, ctx: ServerContext, channel: string, presence: boolean, options: PresenceRoomOptions): Promise<PresenceIdle> {
  // The same pause after the join in both runs: the presence run has just waited quietMs for its fan-out to drain, the baseline has no fan-out.
  if (!presence) await new Promise((resolve) => setTimeout(resolve, options.quietMs));
  await loopMax(cluster);
  const meter = new CpuMeter(cpuGroups(cluster, ctx), 1);
  await new Promise((resolve) => setTimeout(resolve, options.idleMs));
  const cpuPct = meter.stop();
  const eventLoopMaxMs = await loopMax(cluster);
  const counts = await stepAll(allFleets(cluster), "counts", { type: "counts" });
  const closes = closesOf(counts);
  return { windowMs: options.idleMs, cpuPct, open: counts.extra.open ?? 0, closes, countOnA: await cluster.observerA.count(channel), countOnB: await cluster.observerB.count(channel), eventLoopMaxMs };
}

/** B1's members all disconnect at once (TCP close from the client side); both nodes are watched until they count it. */
async function disconnectPhase(cluster: Cluster, channel: string, options: PresenceRoomOptions): Promise<PresenceLeave | null> {
  // Targets from what is actually there (members closed earlier, e.g. 4008, are already gone).
  const leaving = (await cluster.fleets.b1.step("counts", { type: "counts" })).extra.open ?? 0;
  const before = await cluster.observerA.count(channel);
  if (before === null) return null;
  const left = (count: number): boolean => count <= before - leaving;
  await loopMax(cluster);
  const watchA = cluster.observerA.until(channel, left, options.pollMs, options.timeoutMs);
  const watchB = cluster.observerB.until(channel, left, options.pollMs, options.timeoutMs);
  const dropped = await cluster.fleets.b1.step("drop", { type: "drop" });
  const [onA, onB] = await Promise.all([watchA, watchB]);
  const settled = await stepAll([cluster.fleets.a, cluster.fleets.b2], "settle", { type: "settle", quietMs: options.quietMs, timeoutMs: options.timeoutMs });
  const dropAt = dropped.firstMark.dropAt ?? null;
  const eventLoopMaxMs = await loopMax(cluster);
  return {
    members: leaving,
    onAMs: after(onA, dropAt),
    onBMs: after(onB, dropAt),
    leaveFrames: settled.extra.leaveFrames ?? 0,
    fanoutDrainedMs: dropAt === null || settled.lastMark.lastPresenceFrameAt === undefined || settled.lastMark.lastPresenceFrameAt < dropAt ? null : Math.round(settled.lastMark.lastPresenceFrameAt - dropAt),
    eventLoopMaxMs,
  };
}

/** `kill -9` of node B with B2's members on it: node A removes them when B has been silent for PRESENCE_TTL_MS (checked every HEARTBEAT_MS). */
async function killPhase(cluster: Cluster, channel: string, options: PresenceRoomOptions): Promise<PresenceLeave> {
  const before = await cluster.fleets.a.step("counts", { type: "counts" });
  const staying = before.extra.open ?? 0;
  const dying = (await cluster.fleets.b2.step("counts", { type: "counts" })).extra.open ?? 0;
  const left = (count: number): boolean => count <= staying;
  await loopMax(cluster);
  const watch = cluster.observerA.until(channel, left, options.pollMs, options.timeoutMs);
  const killAt = nowMs();
  process.kill(cluster.b.pid, "SIGKILL");
  const onA = await watch;
  const settled = await cluster.fleets.a.step("settle", { type: "settle", quietMs: options.quietMs, timeoutMs: options.timeoutMs });
  const lastFrameAt = settled.lastMark.lastPresenceFrameAt;
  const eventLoopMaxMs = { a: (await loopMax(cluster)).a, b: null };
  return {
    members: dying,
    onAMs: after(onA, killAt),
    onBMs: null,
    leaveFrames: (settled.extra.leaveFrames ?? 0) - (before.extra.leaveFrames ?? 0),
    fanoutDrainedMs: lastFrameAt === undefined || lastFrameAt < killAt ? null : Math.round(lastFrameAt - killAt),
    eventLoopMaxMs,
  };
}

/** Scrapes both nodes' event-loop max (which also resets it: call once before a phase, once after). */
async function loopMax(cluster: Cluster): Promise<LoopMax> {
  const [a, b] = await Promise.all([eventLoopMaxMs(cluster.a.port), eventLoopMaxMs(cluster.b.port)]);
  return { a, b };
}

async function eventLoopMaxMs(port: number): Promise<number | null> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
    const match = /^nodejs_eventloop_lag_max_seconds(?:\{[^}]*\})? (\S+)/m.exec(text);
    return match ? Math.round(Number(match[1]) * 1000) : null;
  } catch {
    return null;
  }
}

/** The node's "presence: node removed" log lines (info level; the scenario runs its nodes at LOG_LEVEL=info). */
function peerRemovals(path: string): PeerRemoval[] {
  try {
    return readFileSync(path, "utf8")
      .split("\n")
      .filter((line) => line.includes("presence: node removed"))
      .map((line) => {
        const entry = JSON.parse(line) as { time?: string | number; reason?: string; entries?: number };
        return { time: typeof entry.time === "number" ? new Date(entry.time).toISOString() : String(entry.time), reason: entry.reason ?? "?", entries: entry.entries ?? 0 };
      });
  } catch {
    return [];
  }
}

function closesOf(totals: StepTotals): Record<string, number> {
  return Object.fromEntries(Object.entries(totals.extra).filter(([key]) => key.startsWith("close_")));
}

function after(observation: Observation | null, from: number | null): number | null {
  return observation === null || from === null ? null : Math.round(observation.at - from);
}
