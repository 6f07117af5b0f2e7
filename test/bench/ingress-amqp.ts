import { randomUUID } from "node:crypto";
import amqp from "amqplib";
import type { ConnReport } from "./conn-process.js";
import { boundLifetime } from "./ipc.js";
import { nowMs } from "./payload.js";
import { LatencyHistogram } from "./stats.js";

/**
 * The ingress baseline: raw amqplib confirmed publishing from one process,
 * `window` publishes in flight, each body shaped and sized like the envelope
 * the gateway publishes for a client `publish` (id, type, data, occurredAt,
 * user). Latency is publish → confirm. argv[2]: JSON
 * `{rabbitUrl, window, durationMs, rampMs, dataBytes, hardTimeoutMs}`;
 * reports one `ConnReport` (step `ingress`) on IPC, then exits.
 */
const setup = JSON.parse(process.argv[2] ?? "{}") as { rabbitUrl: string; window: number; durationMs: number; rampMs: number; dataBytes: number; hardTimeoutMs: number };
boundLifetime(setup.hardTimeoutMs, "ingress-amqp");

const connection = await amqp.connect(setup.rabbitUrl);
const channel = await connection.createConfirmChannel();
const histogram = new LatencyHistogram();
const data = { p: "x".repeat(setup.dataBytes) };
const started = nowMs();
const measureFrom = started + setup.rampMs;
const end = started + setup.durationMs;
let measured = 0;
let all = 0;
let failed = 0;
let inFlight = 0;

await new Promise<void>((resolve) => {
  const send = (): void => {
    const id = randomUUID();
    const t = nowMs();
    const body = JSON.stringify({ id, type: "bench.tick", data, occurredAt: new Date().toISOString(), user: "b0x0" });
    inFlight += 1;
    channel.publish("sobranie.events", "client.room.bench0.bench.tick", Buffer.from(body), { messageId: id, timestamp: Date.now(), contentType: "application/json" }, (error) => {
      const at = nowMs();
      inFlight -= 1;
      if (error) failed += 1;
      else {
        all += 1;
        if (t >= measureFrom && at <= end) {
          measured += 1;
          histogram.recordMs(at - t);
        }
      }
      if (at < end) send();
      else if (inFlight === 0) resolve();
    });
  };
  for (let i = 0; i < setup.window; i += 1) send();
});

const report: ConnReport = { type: "done", step: "ingress", ok: measured, failed, failures: failed > 0 ? { nack: failed } : {}, elapsedMs: end - measureFrom, histogram: histogram.toSparse(), extra: { all } };
process.send?.(report, undefined, {}, () => void connection.close().finally(() => process.exit(0)));
