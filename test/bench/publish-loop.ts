import { setImmediate as yieldToIo } from "node:timers/promises";
import type { Phase, PublisherCommand, PublisherReport } from "./ipc.js";
import { nowMs } from "./payload.js";

/** Where events go: the amqp channel, or uWS `app.publish`. */
export interface PublishSink {
  /** Sends one event; `false` means the transport's buffer is full: await `drained()` before the next. */
  emit(channel: number, phase: Phase, seq: number, sendMs: number): boolean;
  drained(): Promise<void>;
}

/**
 * Most events emitted before yielding to the event loop (lets sockets flush and
 * IPC credit arrive). Large on purpose: uWS queues `app.publish` messages and
 * writes them per socket when the loop turns, so everything granted in one
 * iteration leaves as one write per socket. With 256 the 10,000-client rawUws
 * run made one send() per delivery and measured 107k/s instead of 363k/s —
 * its own publishing, not uWS. The broker path batches only partly: RabbitMQ
 * hands the gateway its events spread over socket reads (see `dlv/write`).
 */
const BATCH = 4096;
const TICK_MS = 1;

/**
 * Drives a publisher from the runner's commands, identically for every
 * scenario, so the gateway and the baselines see the same offered load.
 *
 * Event `k` of a phase goes to channel `k % channelCount` with per-channel
 * sequence `floor(k / channelCount)`: the runner can compute what each channel
 * should have received from the published total alone.
 *
 * Closed loop (`credit`): the runner grants credit from what clients have
 * received, so the number of undelivered events is bounded by its window and
 * no buffer anywhere grows without limit; events carry their actual send time.
 *
 * Open loop (`rate`): event `k` is due at `start + k / rate` and is stamped with
 * that *intended* time, not the time it went out. If the publisher falls behind
 * (event-loop stall, broker flow control) the delay shows up in the latency
 * instead of silently lowering the offered load (coordinated omission).
 */
export class PublishLoop {
  private readonly channelCount: number;
  private readonly sink: PublishSink;
  private readonly report: (message: PublisherReport) => void;
  private readonly published = new Map<Phase, number>();
  private readonly credit = new Map<Phase, number>();
  private active: Phase | null = null;
  private pumping: Promise<void> | null = null;
  private rateTimer: NodeJS.Timeout | null = null;
  private blocked = false;
  private maxLagMs = 0;
  private readonly ended = new Set<Phase>();

  constructor(deps: { channelCount: number; sink: PublishSink; report: (message: PublisherReport) => void }) {
    this.channelCount = deps.channelCount;
    this.sink = deps.sink;
    this.report = deps.report;
  }

  handle(command: PublisherCommand): void {
    switch (command.type) {
      case "credit":
        this.switchTo(command.phase);
        this.credit.set(command.phase, Math.max(command.upTo, this.credit.get(command.phase) ?? 0));
        this.pumping ??= this.pump(command.phase).finally(() => (this.pumping = null));
        return;
      case "rate":
        this.switchTo(command.phase);
        this.startRate(command.phase, command.eventsPerSec, command.durationMs);
        return;
      case "end":
        void this.end(command.phase);
        return;
      case "exit":
        return;
    }
  }

  private switchTo(phase: Phase): void {
    if (this.active === phase) return;
    this.stopRate();
    this.active = phase;
    this.maxLagMs = 0;
  }

  private async end(phase: Phase): Promise<void> {
    if (this.active === phase) {
      this.active = null;
      this.stopRate();
    }
    await this.pumping;
    if (this.ended.has(phase)) return;
    this.ended.add(phase);
    this.report({ type: "published", phase, count: this.published.get(phase) ?? 0, final: true, maxLagMs: this.maxLagMs });
  }

  private emitNext(phase: Phase, sendMs: number): boolean {
    const k = this.published.get(phase) ?? 0;
    this.published.set(phase, k + 1);
    return this.sink.emit(k % this.channelCount, phase, Math.floor(k / this.channelCount), sendMs);
  }

  private async pump(phase: Phase): Promise<void> {
    while (this.active === phase && (this.published.get(phase) ?? 0) < (this.credit.get(phase) ?? 0)) {
      for (let i = 0; i < BATCH && (this.published.get(phase) ?? 0) < (this.credit.get(phase) ?? 0); i += 1) {
        if (!this.emitNext(phase, nowMs())) await this.sink.drained();
      }
      await yieldToIo();
    }
  }

  private startRate(phase: Phase, eventsPerSec: number, durationMs: number): void {
    const start = nowMs();
    const total = Math.max(1, Math.round((eventsPerSec * durationMs) / 1000));
    const intervalMs = 1000 / eventsPerSec;
    const base = this.published.get(phase) ?? 0;
    this.rateTimer = setInterval(() => {
      if (this.blocked) return;
      const now = nowMs();
      const due = Math.min(total, Math.floor((now - start) / intervalMs) + 1);
      let sent = (this.published.get(phase) ?? 0) - base;
      while (sent < due) {
        const intended = start + sent * intervalMs;
        this.maxLagMs = Math.max(this.maxLagMs, now - intended);
        sent += 1;
        if (!this.emitNext(phase, intended)) {
          this.blocked = true;
          void this.sink.drained().then(() => (this.blocked = false));
          break;
        }
      }
      if (sent >= total) void this.end(phase);
    }, TICK_MS);
  }

  private stopRate(): void {
    if (this.rateTimer) clearInterval(this.rateTimer);
    this.rateTimer = null;
  }
}
