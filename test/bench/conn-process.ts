import { SignJWT } from "jose";
import WebSocket from "ws";
import { boundLifetime, type Wire } from "./ipc.js";
import { RawWs, type RawTarget } from "./raw-ws-client.js";
import { nowMs } from "./payload.js";
import { LatencyHistogram, type SparseHistogram } from "./stats.js";

/**
 * Load generator of the idle, connect, ingress, recovery and presence scenarios: one
 * child process owning `count` connections, driven by the runner step by step
 * (`open`, then `go` / `drop` / `storm`, then `finish`). Tokens are signed
 * before any timed step, so JWT signing is the generator's cost, never the
 * measurement's. Gateway clients (`jwtSecret` set) wait for `welcome`; plain
 * `ws` baseline clients only for `open`.
 */

export interface ConnConfig {
  procIndex: number;
  url: string;
  jwtSecret: string | null;
  count: number;
  localAddresses: string[];
  concurrency: number;
  timeoutMs: number;
  hardTimeoutMs: number;
  /** recovery and ingress: client i uses `room:<prefix><i % rooms>`. */
  rooms: number;
  roomPrefix: string;
  /** presence: each token also carries a small `info` claim (`{name}`). */
  info?: boolean;
}

export type ConnCommand =
  /** Takes the config and signs every client's token. */
  | { type: "config"; config: ConnConfig }
  | { type: "open"; subscribe: "none" | "room" }
  /** connect: a timed storm; see ConnectStep. */
  | ({ type: "connect" } & ConnectStep)
  /** ingress: closed-loop `publish` with `window` in flight per connection. */
  | { type: "ingress"; durationMs: number; rampMs: number; window: number; dataBytes: number }
  | { type: "drop" }
  /** recovery: reconnect everything at once with `since`; `k` events were missed per room; `t0` is the runner's clock. */
  | { type: "storm"; k: number; t0: number; timeoutMs: number }
  /** recovery: the runner is about to publish one event per room; each client notes its seq. */
  | { type: "prime" }
  /** presence: connect, `subscribe` to `channel` (with `presence` or without), then ping every `heartbeatMs`. */
  | { type: "join"; channel: string; presence: boolean; heartbeatMs: number }
  /** presence: resolves once no join/leave frame arrived for `quietMs` (or after `timeoutMs`). */
  | { type: "settle"; quietMs: number; timeoutMs: number }
  /** presence: frames received and sockets closed so far. */
  | { type: "counts" }
  | { type: "finish" };

/**
 * One connect storm: every client connects (`client`: the `ws` library or the
 * raw client of raw-ws-client.ts), waits for `open` (the 101) or also for
 * `welcome`, then optionally subscribes (`user`: its own `user:<sub>`, a new
 * channel per client; `room`: `room:<prefix><i % rooms>`; `post`: the public
 * `post:bench0`, one channel for all) and waits for `ok`. The latency is that
 * whole exchange.
 *
 * On the Pusher wire (`/app/{key}`, raw client only) `welcome` is
 * `pusher:connection_established`, and the one subscription is `post` as
 * `post.bench0`, answered by `pusher_internal:subscription_succeeded`.
 */
export interface ConnectStep {
  client: "ws" | "raw";
  wire: Wire;
  expect: "open" | "welcome";
  subscribe: "none" | "user" | "room" | "post";
}

export interface ConnReport {
  type: "done";
  step: string;
  ok: number;
  failed: number;
  failures: Record<string, number>;
  elapsedMs: number;
  histogram: SparseHistogram;
  extra: Record<string, number>;
  /** Timestamps (`nowMs()`, comparable across processes): the fleet keeps the earliest and latest of each. */
  marks?: Record<string, number>;
}

type Frame = { op?: string; ref?: number; seq?: number; code?: string; recovered?: boolean; channel?: string; event?: string };

let config: ConnConfig;
let tokens: string[] = [];
const sockets: (WebSocket | null)[] = [];
const rawSockets: RawWs[] = [];
const lastSeq: number[] = [];

boundLifetime(60_000, "conn-process");
process.on("message", (command: ConnCommand) => void handle(command).catch((error: unknown) => report("error", { ok: 0, failed: 1, failures: { [String(error)]: 1 } })));

async function handle(command: ConnCommand): Promise<void> {
  switch (command.type) {
    case "config":
      config = command.config;
      boundLifetime(config.hardTimeoutMs, `conn-process ${config.procIndex}`);
      tokens = config.jwtSecret === null ? [] : await signAll(config.jwtSecret);
      return report("config", {});
    case "open": {
      const started = nowMs();
      const outcome = await pool(config.count, config.concurrency, async (i) => {
        const ws = await open(i);
        if (command.subscribe === "room") {
          const ok = await request(ws, { op: "subscribe", ref: 1, channel: room(i) }, 1);
          if (ok.op !== "ok") throw new Error(`subscribe_${ok.code}`);
          lastSeq[i] = 0;
        }
        sockets[i] = ws;
      });
      return report("open", { ...outcome, elapsedMs: nowMs() - started });
    }
    case "connect":
      return connectStorm(command);
    case "ingress":
      return ingress(command);
    case "drop": {
      const at = nowMs();
      for (const ws of sockets) ws?.terminate();
      sockets.length = 0;
      return report("drop", { marks: { dropAt: at } });
    }
    case "storm":
      return storm(command);
    case "prime":
      return prime();
    case "join":
      return join(command);
    case "settle":
      return settle(command);
    case "counts":
      return report("counts", { extra: counts() });
    case "finish":
      for (const ws of sockets) ws?.terminate();
      for (const ws of rawSockets) ws.destroy();
      setTimeout(() => process.exit(0), 200);
  }
}

function subject(i: number): string {
  return `b${config.procIndex}x${i}`;
}

function room(i: number): string {
  return `room:${config.roomPrefix}${i % config.rooms}`;
}

async function signAll(secret: string): Promise<string[]> {
  const key = new TextEncoder().encode(secret);
  const out: string[] = [];
  for (let i = 0; i < config.count; i += 1) {
    const claims = config.info === true ? { channels: ["room:*"], info: { name: `Member ${subject(i)}` } } : { channels: ["room:*"] };
    out.push(await new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setSubject(subject(i)).setExpirationTime("2h").sign(key));
  }
  return out;
}

/** Runs `task(0..count-1)` with at most `concurrency` at once; failures are tallied by reason. */
async function pool(count: number, concurrency: number, task: (i: number) => Promise<void>): Promise<{ ok: number; failed: number; failures: Record<string, number> }> {
  let next = 0;
  let ok = 0;
  const failures: Record<string, number> = {};
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      try {
        await task(i);
        ok += 1;
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        failures[reason] = (failures[reason] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { ok, failed: count - ok, failures };
}

/** Connects client `i`; resolves after `welcome` (gateway, by default) or `open` (plain ws server, by default). */
function open(i: number, expect: "open" | "welcome" = config.jwtSecret === null ? "open" : "welcome"): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const url = config.jwtSecret === null ? config.url : `${config.url}?token=${tokens[i]}`;
    const ws = new WebSocket(url, { localAddress: config.localAddresses[i % config.localAddresses.length]!, perMessageDeflate: false, handshakeTimeout: config.timeoutMs });
    const timer = setTimeout(() => fail("timeout"), config.timeoutMs);
    const fail = (reason: string): void => {
      clearTimeout(timer);
      ws.terminate();
      reject(new Error(reason));
    };
    ws.on("error", (error: NodeJS.ErrnoException) => fail(error.code ?? error.message));
    ws.on("unexpected-response", (_request, response) => fail(`http_${response.statusCode ?? "?"}`));
    const done = (): void => {
      clearTimeout(timer);
      ws.removeAllListeners("error");
      ws.on("error", () => undefined);
      resolve(ws);
    };
    if (expect === "open") ws.once("open", done);
    else ws.once("message", (data: Buffer) => ((parse(data).op === "welcome" ? done : () => fail("no_welcome"))()));
  });
}

/** Sends a frame and resolves with the first `ok` or `error` answering `ref`. */
function request(ws: WebSocket, frame: object, ref: number): Promise<Frame> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("timeout")), config.timeoutMs);
    const onMessage = (data: Buffer): void => {
      const answer = parse(data);
      if ((answer.op !== "ok" && answer.op !== "error") || answer.ref !== ref) return;
      clearTimeout(timer);
      ws.off("message", onMessage);
      resolve(answer);
    };
    ws.on("message", onMessage);
    ws.once("close", (code) => reject(new Error(`close_${code}`)));
    ws.send(JSON.stringify(frame));
  });
}

function parse(data: Buffer | string): Frame {
  try {
    return JSON.parse(typeof data === "string" ? data : data.toString("utf8")) as Frame;
  } catch {
    return {};
  }
}

async function connectStorm(step: ConnectStep): Promise<void> {
  const histogram = new LatencyHistogram();
  const target = rawTarget();
  const channelOf = (i: number): string => (step.subscribe === "user" ? `user:${subject(i)}` : step.subscribe === "post" ? "post:bench0" : room(i));
  if (step.wire === "pusher" && (step.client !== "raw" || step.subscribe === "user" || step.subscribe === "room")) {
    throw new Error(`the Pusher wire's storm runs the raw client, subscribing to nothing or post (asked: ${step.client}, ${step.subscribe})`);
  }
  const started = nowMs();
  const outcome = await pool(config.count, config.concurrency, async (i) => {
    const t = nowMs();
    if (step.client === "ws") {
      const ws = await open(i, step.expect);
      sockets[i] = ws;
      if (step.subscribe !== "none") {
        const ok = await request(ws, { op: "subscribe", ref: 1, channel: channelOf(i) }, 1);
        if (ok.op !== "ok") throw new Error(`subscribe_${ok.code}`);
      }
    } else if (step.wire === "pusher") {
      const ws = await RawWs.open(target, config.localAddresses[i % config.localAddresses.length]!, config.timeoutMs);
      rawSockets.push(ws);
      if (step.expect === "welcome" && parse(await ws.nextText(config.timeoutMs)).event !== "pusher:connection_established") throw new Error("no_connection_established");
      if (step.subscribe === "post") {
        ws.send(JSON.stringify({ event: "pusher:subscribe", data: { channel: "post.bench0" } }));
        const answer = parse(await ws.nextText(config.timeoutMs));
        if (answer.event !== "pusher_internal:subscription_succeeded") throw new Error(`subscribe_${answer.event}`);
      }
    } else {
      const ws = await RawWs.open({ ...target, path: tokens[i] === undefined ? target.path : `${target.path}?token=${tokens[i]}` }, config.localAddresses[i % config.localAddresses.length]!, config.timeoutMs);
      rawSockets.push(ws);
      if (step.expect === "welcome" && parse(await ws.nextText(config.timeoutMs)).op !== "welcome") throw new Error("no_welcome");
      if (step.subscribe !== "none") {
        ws.send(JSON.stringify({ op: "subscribe", ref: 1, channel: channelOf(i) }));
        const ok = parse(await ws.nextText(config.timeoutMs));
        if (ok.op !== "ok") throw new Error(`subscribe_${ok.code ?? ok.op}`);
      }
    }
    histogram.recordMs(nowMs() - t);
  });
  report("connect", { ...outcome, elapsedMs: nowMs() - started, histogram: histogram.toSparse() });
}

/** The URL's path and query (the Pusher endpoint's `?protocol=7`); a token is appended to a path without one. */
function rawTarget(): RawTarget {
  const url = new URL(config.url);
  return { host: url.hostname, port: Number(url.port), path: url.pathname + url.search };
}

async function ingress(command: Extract<ConnCommand, { type: "ingress" }>): Promise<void> {
  const histogram = new LatencyHistogram();
  const errors: Record<string, number> = {};
  const started = nowMs();
  const measureFrom = started + command.rampMs;
  const end = started + command.durationMs;
  const pad = "x".repeat(command.dataBytes);
  let measured = 0;
  let inFlight = 0;
  let all = 0;
  await new Promise<void>((resolve) => {
    sockets.forEach((ws, i) => {
      if (ws === null) return;
      const sentAt = new Map<number, number>();
      let ref = 0;
      const send = (): void => {
        ref += 1;
        sentAt.set(ref, nowMs());
        inFlight += 1;
        ws.send(`{"op":"publish","ref":${ref},"channel":"${room(i)}","type":"bench.tick","data":{"p":"${pad}"}}`);
      };
      ws.on("message", (data: Buffer) => {
        const at = nowMs();
        const frame = parse(data);
        if (frame.ref === undefined || !sentAt.has(frame.ref)) return;
        const t = sentAt.get(frame.ref)!;
        sentAt.delete(frame.ref);
        inFlight -= 1;
        if (frame.op === "ok") {
          all += 1;
          if (t >= measureFrom && at <= end) {
            measured += 1;
            histogram.recordMs(at - t);
          }
        } else errors[frame.code ?? "?"] = (errors[frame.code ?? "?"] ?? 0) + 1;
        if (at < end) send();
        else if (inFlight === 0) resolve();
      });
      for (let w = 0; w < command.window; w += 1) send();
    });
    // Answers that never come must not hold the run.
    setTimeout(resolve, command.durationMs + 10_000);
  });
  const failed = Object.values(errors).reduce((sum, count) => sum + count, 0);
  report("ingress", { ok: measured, failed, failures: errors, elapsedMs: end - measureFrom, histogram: histogram.toSparse(), extra: { all, unanswered: inFlight } });
}

/**
 * Everyone reconnects at once with `since`; a client is done once it holds
 * `k` distinct events with seq > since (seqs are increasing per channel, not
 * contiguous). A seq seen twice, or one at or below `since`, is a duplicate.
 */
async function storm(command: Extract<ConnCommand, { type: "storm" }>): Promise<void> {
  const histogram = new LatencyHistogram();
  let lost = 0;
  let duplicates = 0;
  let notRecovered = 0;
  let lastDone = command.t0;
  const outcome = await pool(config.count, config.count, async (i) => {
    const since = lastSeq[i]!;
    const seen = new Set<number>();
    const ws = await open(i);
    sockets[i] = ws;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        lost += command.k - seen.size;
        reject(new Error("incomplete"));
      }, command.timeoutMs);
      ws.on("message", (data: Buffer) => {
        const frame = parse(data);
        if (frame.op === "ok" && frame.ref === 1 && frame.recovered !== true) notRecovered += 1;
        if (frame.op === "error") reject(new Error(`error_${frame.code}`));
        if (frame.op !== "event" || frame.seq === undefined) return;
        if (frame.seq <= since || seen.has(frame.seq)) duplicates += 1;
        else seen.add(frame.seq);
        if (seen.size === command.k) {
          clearTimeout(timer);
          resolve();
        }
      });
      ws.send(JSON.stringify({ op: "subscribe", ref: 1, channel: room(i), since }));
    });
    const at = nowMs();
    lastDone = Math.max(lastDone, at);
    histogram.recordMs(at - command.t0);
  });
  // Late duplicates would arrive within moments of the last recovery.
  await new Promise((resolve) => setTimeout(resolve, 500));
  report("storm", { ...outcome, elapsedMs: lastDone - command.t0, histogram: histogram.toSparse(), extra: { lost, duplicates, notRecovered } });
}

/** presence: what each socket of the join step has received, counted from the frame's first bytes (no JSON parse). */
const received = { join: 0, leave: 0, pong: 0, other: 0 };
let lastPresenceFrameAt = 0;
const closeCodes: Record<string, number> = {};
/** `{"op":"` is 7 bytes: the op's first letter decides (join, leave, pong; server frames are JSON.stringify output, `op` first). */
const OP_LETTER = 7;

/**
 * Every connection subscribes to one channel; the step reports the first
 * subscribe sent and the last `ok` received (marks), and subscribe → `ok`
 * latency. From then on each socket counts join/leave frames and pings once
 * per `heartbeatMs`, spread over the period like the SDK's heartbeat.
 */
async function join(command: Extract<ConnCommand, { type: "join" }>): Promise<void> {
  const histogram = new LatencyHistogram();
  let firstSubscribeAt = Number.POSITIVE_INFINITY;
  let lastOkAt = 0;
  // Pings start with the first connection: the storm may last longer than PRESENCE_TTL_MS.
  startPings(command.heartbeatMs);
  const outcome = await pool(config.count, config.concurrency, async (i) => {
    const ws = await open(i);
    sockets[i] = ws;
    ws.on("message", (data: Buffer) => {
      const letter = data[OP_LETTER];
      if (letter === 0x6a) received.join += 1;
      else if (letter === 0x6c) received.leave += 1;
      else if (letter === 0x70) return void (received.pong += 1);
      else return void (received.other += 1);
      lastPresenceFrameAt = nowMs();
    });
    ws.on("close", (code: number) => void (closeCodes[code] = (closeCodes[code] ?? 0) + 1));
    const sentAt = nowMs();
    firstSubscribeAt = Math.min(firstSubscribeAt, sentAt);
    const frame = command.presence ? { op: "subscribe", ref: 1, channel: command.channel, presence: true } : { op: "subscribe", ref: 1, channel: command.channel };
    const ok = await request(ws, frame, 1).catch((error: unknown) => ({ op: "error", code: error instanceof Error ? error.message : String(error) }) as Frame);
    if (ok.op !== "ok") {
      sockets[i] = null;
      ws.terminate();
      throw new Error(`subscribe_${ok.code}`);
    }
    const at = nowMs();
    lastOkAt = Math.max(lastOkAt, at);
    histogram.recordMs(at - sentAt);
  });
  report("join", { ...outcome, elapsedMs: lastOkAt - firstSubscribeAt, histogram: histogram.toSparse(), marks: { firstSubscribeAt, lastOkAt } });
}

const PING = JSON.stringify({ op: "ping" });
const PING_TICK_MS = 100;

/** Each of the `count` slots gets one `ping` per `heartbeatMs` once its socket is open. */
function startPings(heartbeatMs: number): void {
  let cursor = 0;
  const slice = Math.max(1, Math.ceil((config.count * PING_TICK_MS) / heartbeatMs));
  setInterval(() => {
    for (let k = 0; k < slice; k += 1) {
      const ws = sockets[cursor++ % config.count];
      if (ws?.readyState === WebSocket.OPEN) ws.send(PING);
    }
  }, PING_TICK_MS);
}

async function settle(command: Extract<ConnCommand, { type: "settle" }>): Promise<void> {
  const deadline = nowMs() + command.timeoutMs;
  while (nowMs() - lastPresenceFrameAt < command.quietMs && nowMs() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  const quiet = nowMs() - lastPresenceFrameAt >= command.quietMs;
  report("settle", { ok: quiet ? 1 : 0, failed: quiet ? 0 : 1, failures: quiet ? {} : { not_quiet: 1 }, extra: counts(), marks: lastPresenceFrameAt > 0 ? { lastPresenceFrameAt } : {} });
}

function counts(): Record<string, number> {
  const open = sockets.filter((ws) => ws?.readyState === WebSocket.OPEN).length;
  const closes = Object.fromEntries(Object.entries(closeCodes).map(([code, n]) => [`close_${code}`, n]));
  return { open, joinFrames: received.join, leaveFrames: received.leave, pongs: received.pong, otherFrames: received.other, ...closes };
}

function prime(): void {
  let pending = 0;
  sockets.forEach((ws, i) => {
    if (ws === null) return;
    pending += 1;
    const onMessage = (data: Buffer): void => {
      const frame = parse(data);
      if (frame.op !== "event" || frame.seq === undefined) return;
      lastSeq[i] = frame.seq;
      ws.off("message", onMessage);
      if (--pending === 0) report("prime", {});
    };
    ws.on("message", onMessage);
  });
  report("listening", {});
}

function report(step: string, fields: Partial<ConnReport>): void {
  const message: ConnReport = { type: "done", step, ok: 0, failed: 0, failures: {}, elapsedMs: 0, histogram: [], extra: {}, marks: {}, ...fields };
  if (process.connected) process.send?.(message);
}
