import type { SparseHistogram } from "./stats.js";

/**
 * Messages between the runner and its child processes (Node IPC, JSON).
 *
 * Phases: 0 warm-up / routing check (not measured), 1 max throughput
 * (closed loop), 2 latency at a fixed fraction of that maximum, 3 latency at
 * one common offered rate for every scenario. Counters are arrays indexed by phase.
 */
export const Phase = { Warmup: 0, Max: 1, Fixed: 2, Common: 3 } as const;
export type Phase = (typeof Phase)[keyof typeof Phase];
export const PHASE_COUNT = 4;

/** The client protocol of a WebSocket endpoint: the native one (`/realtime/ws`) or Pusher's (`/app/{key}`). */
export type Wire = "native" | "pusher";

export interface ClientConfig {
  procIndex: number;
  /** `ws://127.0.0.1:<port>/<path>`; a token is appended as `?token=` when `jwtSecret` is set. */
  url: string;
  jwtSecret: string | null;
  /** The protocol `url` speaks: docs/protocol.md §4, or the Pusher protocol (docs/pusher.md). */
  wire: Wire;
  /** Channel index of each client this process owns. */
  channelOfClient: number[];
  channelCount: number;
  localAddresses: string[];
  connectConcurrency: number;
  connectTimeoutMs: number;
  /** The process exits by itself after this long, whatever happens. */
  hardTimeoutMs: number;
  reportEveryMs: number;
}

export type ClientCommand = { type: "start"; config: ClientConfig } | { type: "finish" };

export type ClientReport =
  | {
      type: "ready";
      connected: number;
      failed: number;
      failures: Record<string, number>;
      /** Connected subscribers per channel index. */
      subscribers: number[];
      connectMs: number;
    }
  | { type: "progress"; received: number[]; routed: number; closed: number }
  | {
      type: "final";
      received: number[];
      /** Per phase: frames whose seq was not the next one on that connection. */
      outOfOrder: number[];
      closed: number;
      closeCodes: Record<string, number>;
      histograms: SparseHistogram[];
      negativeLatencies: number;
    };

/** Runner → publisher (the amqp publisher child, or the rawUws server child). */
export type PublisherCommand =
  /** Closed loop: publish until `upTo` events of `phase` are out. */
  | { type: "credit"; phase: Phase; upTo: number }
  /** Open loop: `eventsPerSec`, round-robin over channels, for `durationMs`. */
  | { type: "rate"; phase: Phase; eventsPerSec: number; durationMs: number }
  /** End `phase` now; the publisher answers with a final `published`. */
  | { type: "end"; phase: Phase }
  | { type: "exit" };

export type PublisherReport =
  | { type: "ready"; port?: number; exchange?: string }
  | { type: "published"; phase: Phase; count: number; final: boolean; maxLagMs: number }
  | { type: "error"; message: string };

export interface PublisherSetup {
  runId: string;
  channelCount: number;
  bodyBytes: number;
  hardTimeoutMs: number;
}

/** Sends on the IPC channel if it is still open; `then` runs once the message is handed over (or at once). */
export function sendToParent(message: ClientReport | PublisherReport, then?: () => void): void {
  if (process.connected && process.send) process.send(message, undefined, {}, () => then?.());
  else then?.();
}

let deadline: NodeJS.Timeout | null = null;

/**
 * Children never outlive their parent or their time budget: they exit when the
 * IPC channel closes, and after `hardTimeoutMs` (a later call replaces the budget).
 */
export function boundLifetime(hardTimeoutMs: number, name: string): void {
  if (deadline === null) process.on("disconnect", () => process.exit(0));
  else clearTimeout(deadline);
  deadline = setTimeout(() => {
    process.stderr.write(`${name}: hard timeout of ${hardTimeoutMs} ms reached, exiting\n`);
    process.exit(2);
  }, hardTimeoutMs);
  deadline.unref();
}
