import type { FanoutResult } from "./fanout.js";
import type { ScenarioName } from "./servers.js";

type Results = Partial<Record<ScenarioName, FanoutResult | { error: string }>>;
type Row = (result: FanoutResult) => string[];

const MAIN: [string[], Row] = [
  ["scenario", "delivered/s", "p50 ms", "p99 ms", "p99.9 ms", "lost", "offered/s", "srv cpu%", "box cpu%", "softirq%", "others%", "dlv/srv-cpu-s", "dlv/write"],
  (r) => [
    String(r.deliveredPerSec),
    show(r.p50Ms),
    show(r.p99Ms),
    show(r.p999Ms),
    String(r.lost),
    show(r.fixed.offeredDeliveriesPerSec),
    show(r.max.cpuPct.server ?? null),
    show(r.max.cpuPct.box ?? null),
    show(r.max.cpuPct.softirq ?? null),
    show(r.max.cpuPct.others ?? null),
    show(r.deliveriesPerServerCpuSec),
    show(r.deliveriesPerServerWrite),
  ],
];

const COMMON: [string[], Row] = [
  ["same load", "offered/s", "p50 ms", "p99 ms", "p99.9 ms", "lost", "srv cpu%", "box cpu%"],
  (r) =>
    r.common === null
      ? ["skipped"]
      : [
          show(r.common.offeredDeliveriesPerSec),
          show(r.common.p50Ms),
          show(r.common.p99Ms),
          show(r.common.p999Ms),
          String(r.common.lost),
          show(r.common.cpuPct.server ?? null),
          show(r.common.cpuPct.box ?? null),
        ],
];

/**
 * Prints, per scenario: max delivered/s (closed loop), latency at half of that
 * scenario's own max (`offered/s`), losses over all phases, CPU during the max
 * phase (`softirq%`: loopback network work billed to no process; `others%`:
 * the rest of the box not spent by this benchmark — other tenants of a shared
 * machine, steal), deliveries per server-CPU-second, and deliveries per
 * socket-write system call of the server (`dlv/write`, with perf). A second
 * table gives latency at one common offered load. Then the gateway/rawUws
 * ratios: throughput as a fraction of the bare-uWS upper bound, latency as a
 * multiple of it; and, when amqpUws ran, the gateway against bare uWS fed by
 * the same broker (what the broker itself costs, set apart).
 */
export function printTable(results: Results, log: (line: string) => void): void {
  printBlock(MAIN, results, log);
  printBlock(COMMON, results, log);
  const gateway = results.gateway;
  const raw = results.rawUws;
  if (!gateway || !raw || "error" in gateway || "error" in raw) return;
  log(
    `\ngateway/rawUws: delivered/s ${ratio(gateway.deliveredPerSec, raw.deliveredPerSec)}, ` +
      `dlv/srv-cpu-s ${ratio(gateway.deliveriesPerServerCpuSec, raw.deliveriesPerServerCpuSec)}; ` +
      `latency at half max: p50 ${ratio(gateway.p50Ms, raw.p50Ms)}, p99 ${ratio(gateway.p99Ms, raw.p99Ms)}, p99.9 ${ratio(gateway.p999Ms, raw.p999Ms)}` +
      (gateway.common && raw.common
        ? `; at the same load: p50 ${ratio(gateway.common.p50Ms, raw.common.p50Ms)}, p99 ${ratio(gateway.common.p99Ms, raw.common.p99Ms)}, p99.9 ${ratio(gateway.common.p999Ms, raw.common.p999Ms)}`
        : ""),
  );
  const broker = results.amqpUws;
  if (broker && !("error" in broker)) {
    log(
      `gateway/amqpUws (bare uWS fed by the same broker): delivered/s ${ratio(gateway.deliveredPerSec, broker.deliveredPerSec)}, ` +
        `dlv/srv-cpu-s ${ratio(gateway.deliveriesPerServerCpuSec, broker.deliveriesPerServerCpuSec)}; amqpUws/rawUws: delivered/s ${ratio(broker.deliveredPerSec, raw.deliveredPerSec)}`,
    );
  }
  if (gateway.notes.some((note) => note.startsWith("STUB"))) log("note: gateway is a STUB run (--gateway-stub), not the gateway");
}

function printBlock([header, row]: [string[], Row], results: Results, log: (line: string) => void): void {
  const rows: string[][] = [header];
  for (const [name, result] of Object.entries(results) as [ScenarioName, FanoutResult | { error: string }][]) {
    rows.push([name, ...("error" in result ? ["error"] : row(result))]);
  }
  printGrid(rows, log);
}

/** Rows under a header row, first column left-aligned, the rest right-aligned (the runner's table format). */
export function printGrid(rows: string[][], log: (line: string) => void): void {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((cells) => (cells[column] ?? "").length)));
  log("");
  for (const cells of rows) log(cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join("  "));
}

export function show(value: number | null): string {
  return value === null ? "-" : String(value);
}

export function ratio(a: number | null, b: number | null): string {
  return a === null || b === null || b === 0 ? "-" : (a / b).toFixed(2);
}
