import { setTimeout as sleep } from "node:timers/promises";
import type { ClientFleet } from "./fleet.js";
import { Phase } from "./ipc.js";
import { CpuMeter } from "./machine.js";
import type { ServerHandle } from "./servers.js";
import { WriteCallMeter } from "./write-calls.js";

/** What every phase needs: the server and its publisher, the clients, and the CPU groups to meter. */
export interface PhaseContext {
  server: ServerHandle;
  fleet: ClientFleet;
  channels: number;
  /** Average subscribers per channel: deliveries per published event. */
  perEvent: number;
  cpuGroups: Record<string, number[]>;
}

const CREDIT_STEPS = 4;

export interface PhaseRun {
  published: number;
  /** Deliveries owed for what was published: Σ over channels of events on it × its subscribers. */
  expected: number;
  deliveredPerSec: number;
  publisherMaxLagMs: number;
  cpuPct: Record<string, number | null>;
  /** The server's socket-write system calls per second (max phase only; `null` without perf). */
  serverWritesPerSec: number | null;
}

/**
 * Phase 0 at a low rate until every client has seen an event (or the route
 * timeout), and never shorter than `warmupMs`: proves routing end to end and
 * warms the JIT. Nothing here is measured.
 */
export async function warmUp(context: PhaseContext, warmupMs: number, routeTimeoutMs: number): Promise<void> {
  const { server, fleet } = context;
  const eventsPerSec = Math.min(context.channels * 10, 20_000 / context.perEvent);
  const started = performance.now();
  server.publisher.send({ type: "rate", phase: Phase.Warmup, eventsPerSec, durationMs: routeTimeoutMs });
  for (;;) {
    await sleep(100);
    if (server.publisher.error) throw new Error(server.publisher.error);
    const elapsed = performance.now() - started;
    const everyone = fleet.routed() >= fleet.connected - fleet.closed();
    if ((everyone && elapsed >= warmupMs) || elapsed >= routeTimeoutMs) break;
  }
  server.publisher.send({ type: "end", phase: Phase.Warmup });
  await server.publisher.final(Phase.Warmup, 10_000);
  if (fleet.routed() === 0) {
    throw new Error(
      `no warm-up event reached any client within ${routeTimeoutMs} ms: events published to the exchange are not routed to the server ` +
        '(for the gateway: the sobranie.events → sobranie.live binding for "post", and the per-node queue binding)',
    );
  }
  // Let warm-up stragglers arrive before phase 1 counts anything.
  await sleep(300);
}

/**
 * Max throughput, closed loop: on every client progress report the publisher
 * is granted credit up to `(received + window) / perEvent` events, so it can
 * run ahead of what clients have received by at most `windowDeliveries`, in
 * quarter-window steps. The system then runs as fast as its slowest stage and
 * no queue anywhere grows past the window. Delivered/s is counted between `rampMs` and `durationMs`.
 * (Latency in this phase is queueing inside the window — Little's law — and
 * says little about the server.)
 */
export async function closedLoop(context: PhaseContext, durationMs: number, rampMs: number, windowDeliveries: number): Promise<PhaseRun> {
  const { server, fleet } = context;
  // Credit moves in quarter-window steps, like AMQP or TCP window updates.
  // Granting every few events instead would make an in-process publisher
  // (rawUws) trickle events one or two per loop iteration — a syscall per
  // delivery on both ends — and the baseline would measure the credit loop
  // rather than uWS. The broker path does not keep these bursts whole: at
  // 10,000 clients it delivers about 200 events per read, fewer deliveries
  // per write than rawUws (`dlv/write`; amqpUws shows what that costs).
  const quantum = Math.max(1, Math.floor(windowDeliveries / context.perEvent / CREDIT_STEPS));
  let granted = 0;
  const grant = (): void => {
    const upTo = Math.floor((fleet.received(Phase.Max) + windowDeliveries) / context.perEvent);
    if (upTo < granted + quantum) return;
    granted = upTo;
    server.publisher.send({ type: "credit", phase: Phase.Max, upTo });
  };
  const unsubscribe = fleet.onProgress(grant);
  grant();
  await sleep(rampMs);
  const from = { at: performance.now(), received: fleet.received(Phase.Max) };
  const cpu = new CpuMeter(context.cpuGroups);
  const writes = new WriteCallMeter(server.pids.server ?? []);
  await sleep(durationMs - rampMs);
  const to = { at: performance.now(), received: fleet.received(Phase.Max) };
  const cpuPct = cpu.stop();
  const serverWritesPerSec = await writes.stop();
  unsubscribe();
  server.publisher.send({ type: "end", phase: Phase.Max });
  const total = await server.publisher.final(Phase.Max, 30_000);
  const expected = expectedDeliveries(fleet, context.channels, total.count);
  await drain(fleet, Phase.Max, expected);
  return {
    published: total.count,
    expected,
    deliveredPerSec: (to.received - from.received) / ((to.at - from.at) / 1000),
    publisherMaxLagMs: total.maxLagMs,
    cpuPct,
    serverWritesPerSec,
  };
}

/** Open loop at `deliveriesPerSec` offered for `durationMs` (intended-time stamps: see PublishLoop). */
export async function openLoop(context: PhaseContext, phase: Phase, deliveriesPerSec: number, durationMs: number): Promise<PhaseRun> {
  const { server, fleet } = context;
  const cpu = new CpuMeter(context.cpuGroups);
  const started = performance.now();
  server.publisher.send({ type: "rate", phase, eventsPerSec: deliveriesPerSec / context.perEvent, durationMs });
  const total = await server.publisher.final(phase, durationMs + 60_000);
  const seconds = (performance.now() - started) / 1000;
  const cpuPct = cpu.stop();
  const expected = expectedDeliveries(fleet, context.channels, total.count);
  await drain(fleet, phase, expected);
  return { published: total.count, expected, deliveredPerSec: fleet.received(phase) / seconds, publisherMaxLagMs: total.maxLagMs, cpuPct, serverWritesPerSec: null };
}

/** Event `k` went to channel `k % channels`: the first `published % channels` channels got one more. */
function expectedDeliveries(fleet: ClientFleet, channels: number, published: number): number {
  return fleet.subscribers.reduce((sum, subs, channel) => sum + subs * (Math.floor(published / channels) + (channel < published % channels ? 1 : 0)), 0);
}

/** Waits until `expected` deliveries of `phase` have arrived, or nothing has arrived for a second (10 s at most). */
async function drain(fleet: ClientFleet, phase: Phase, expected: number): Promise<void> {
  const deadline = performance.now() + 10_000;
  let last = -1;
  let quietSince = performance.now();
  while (performance.now() < deadline) {
    const received = fleet.received(phase);
    if (received >= expected) return;
    if (received !== last) {
      last = received;
      quietSince = performance.now();
    } else if (performance.now() - quietSince > 1000) {
      return;
    }
    await sleep(50);
  }
}
