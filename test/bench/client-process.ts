import { SignJWT } from "jose";
import WebSocket from "ws";
import { boundLifetime, type ClientCommand, type ClientReport, type ClientConfig, PHASE_COUNT, Phase, sendToParent, type Wire } from "./ipc.js";
import { channelName, nowMs, pusherChannelName, readMarker } from "./payload.js";
import { LatencyHistogram } from "./stats.js";

/**
 * Load generator: one child process owning a share of the WebSocket clients.
 *
 * Every client speaks docs/protocol.md §4 the same way against every server: wait for
 * `welcome`, send `subscribe` with `ref: 1`, wait for `ok ref 1`; or, on the
 * Pusher wire, wait for `pusher:connection_established`, send `pusher:subscribe`,
 * wait for `pusher_internal:subscription_succeeded`. Then, per
 * event frame, it takes the receive time first, finds the marker with a
 * `Buffer.indexOf` (no JSON.parse, no UTF-8 decode on the hot path), and
 * records `receive - send` in this process's histogram. Counts go to the
 * runner every `reportEveryMs` (they drive the closed loop); histograms go
 * once, at the end.
 */

interface Connection {
  ws: WebSocket;
  lastSeq: number[];
  routed: boolean;
  closedByUs: boolean;
}

const PING: Record<Wire, string> = { native: JSON.stringify({ op: "ping" }), pusher: JSON.stringify({ event: "pusher:ping", data: {} }) };
const PING_TICK_MS = 100;

const received = new Array<number>(PHASE_COUNT).fill(0);
const outOfOrder = new Array<number>(PHASE_COUNT).fill(0);
const histograms = Array.from({ length: PHASE_COUNT }, () => new LatencyHistogram());
const closeCodes: Record<string, number> = {};
const connections: Connection[] = [];
let routed = 0;
let closed = 0;
let heartbeatMs = 25_000;
let wire: Wire = "native";
let finishing = false;

/** Until the runner's config arrives: a child left waiting must not linger. */
boundLifetime(60_000, "client-process");

process.on("message", (command: ClientCommand) => {
  switch (command.type) {
    case "start":
      void start(command.config);
      return;
    case "finish":
      finish();
      return;
  }
});

async function start(config: ClientConfig): Promise<void> {
  boundLifetime(config.hardTimeoutMs, `client-process ${config.procIndex}`);
  wire = config.wire;
  const startedAt = nowMs();
  const failures: Record<string, number> = {};
  const subscribers = new Array<number>(config.channelCount).fill(0);
  const key = config.jwtSecret === null ? null : new TextEncoder().encode(config.jwtSecret);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < config.channelOfClient.length) {
      const index = next++;
      const channel = config.channelOfClient[index]!;
      const token = key === null ? null : await sign(key, `bench-${config.procIndex}-${index}`);
      const url = token === null ? config.url : `${config.url}?token=${token}`;
      const localAddress = config.localAddresses[index % config.localAddresses.length]!;
      try {
        connections.push(await connect(url, localAddress, channel, config.connectTimeoutMs));
        subscribers[channel]! += 1;
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        failures[reason] = (failures[reason] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: config.connectConcurrency }, worker));
  sendToParent({
    type: "ready",
    connected: connections.length,
    failed: config.channelOfClient.length - connections.length,
    failures,
    subscribers,
    connectMs: nowMs() - startedAt,
  });
  setInterval(() => sendToParent({ type: "progress", received, routed, closed }), config.reportEveryMs);
  startHeartbeat();
}

function sign(key: Uint8Array, sub: string): Promise<string> {
  return new SignJWT({ channels: ["room:*"] })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime("2h")
    .sign(key);
}

/** Resolves once the server confirmed the subscription; rejects with a short reason to tally. */
function connect(url: string, localAddress: string, channel: number, timeoutMs: number): Promise<Connection> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { localAddress, perMessageDeflate: false, skipUTF8Validation: true, handshakeTimeout: timeoutMs });
    const connection: Connection = { ws, lastSeq: new Array<number>(PHASE_COUNT).fill(-1), routed: false, closedByUs: false };
    let subscribed = false;
    const fail = (reason: string): void => {
      clearTimeout(timer);
      if (subscribed) return;
      ws.terminate();
      reject(new Error(reason));
    };
    const timer = setTimeout(() => fail("timeout"), timeoutMs);
    ws.on("unexpected-response", (_request, response) => fail(`http_${response.statusCode ?? "?"}`));
    ws.on("error", (error: NodeJS.ErrnoException) => fail(error.code ?? error.message));
    ws.on("message", (data: Buffer) => {
      const at = nowMs();
      const marker = readMarker(data);
      if (marker !== null) return onEvent(connection, marker.phase, marker.seq, at - marker.sendMs);
      if (subscribed) return;
      const frame = parseControl(data.toString("utf8"));
      const step = wire === "native" ? nativeHandshake(frame, channel) : pusherHandshake(frame, channel);
      if (step === null) return;
      if ("send" in step) ws.send(step.send);
      else if ("failed" in step) fail(step.failed);
      else {
        subscribed = true;
        clearTimeout(timer);
        resolve(connection);
      }
    });
    ws.on("close", (code: number) => {
      if (!subscribed) return fail(`close_${code}`);
      if (connection.closedByUs || finishing) return;
      closed += 1;
      closeCodes[code] = (closeCodes[code] ?? 0) + 1;
    });
  });
}

/** What a client does on a frame before it is subscribed: send something, done, refused, or nothing (`null`). */
type HandshakeStep = { send: string } | { subscribed: true } | { failed: string } | null;

/** docs/protocol.md §4: `welcome` (its `heartbeatMs`), `subscribe` with `ref: 1`, `ok ref 1`. */
function nativeHandshake(frame: Record<string, unknown>, channel: number): HandshakeStep {
  if (frame.op === "welcome") {
    if (typeof frame.heartbeatMs === "number") heartbeatMs = frame.heartbeatMs;
    return { send: JSON.stringify({ op: "subscribe", ref: 1, channel: channelName(channel) }) };
  }
  if (frame.op === "ok" && frame.ref === 1) return { subscribed: true };
  if (frame.op === "error") return { failed: `error_${String(frame.code)}` };
  return null;
}

/** The Pusher protocol: `pusher:connection_established` (its `activity_timeout`, seconds, in `data` as a JSON string), `pusher:subscribe`, `pusher_internal:subscription_succeeded`. */
function pusherHandshake(frame: Record<string, unknown>, channel: number): HandshakeStep {
  switch (frame.event) {
    case "pusher:connection_established": {
      const timeout = parseControl(String(frame.data)).activity_timeout;
      if (typeof timeout === "number") heartbeatMs = timeout * 1000;
      return { send: JSON.stringify({ event: "pusher:subscribe", data: { channel: pusherChannelName(channel) } }) };
    }
    case "pusher_internal:subscription_succeeded":
      return { subscribed: true };
    case "pusher:error":
    case "pusher:subscription_error":
      return { failed: `${frame.event}_${JSON.stringify(frame.data)}` };
    default:
      return null;
  }
}

function onEvent(connection: Connection, phase: number, seq: number, latencyMs: number): void {
  if (phase < 0 || phase >= PHASE_COUNT) return;
  received[phase]! += 1;
  if (seq !== connection.lastSeq[phase]! + 1) outOfOrder[phase]! += 1;
  connection.lastSeq[phase] = Math.max(seq, connection.lastSeq[phase]!);
  if (phase === Phase.Warmup) {
    if (!connection.routed) routed += 1;
    connection.routed = true;
    return;
  }
  histograms[phase]!.recordMs(latencyMs);
}

function parseControl(text: string): Record<string, unknown> {
  try {
    const frame: unknown = JSON.parse(text);
    return typeof frame === "object" && frame !== null ? (frame as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** Pings every connection once per half heartbeat, spread over the period instead of in one burst. */
function startHeartbeat(): void {
  let cursor = 0;
  setInterval(() => {
    const periodMs = Math.max(1000, heartbeatMs / 2);
    const slice = Math.ceil((connections.length * PING_TICK_MS) / periodMs);
    for (let i = 0; i < slice && connections.length > 0; i += 1) {
      const connection = connections[cursor++ % connections.length]!;
      if (connection.ws.readyState === WebSocket.OPEN) connection.ws.send(PING[wire]);
    }
  }, PING_TICK_MS);
}

function finish(): void {
  if (finishing) return;
  finishing = true;
  const report: ClientReport = {
    type: "final",
    received,
    outOfOrder,
    closed,
    closeCodes,
    histograms: histograms.map((histogram) => histogram.toSparse()),
    negativeLatencies: histograms.reduce((sum, histogram) => sum + histogram.negative, 0),
  };
  sendToParent(report, closeAllAndExit);
}

function closeAllAndExit(): void {
  let open = 0;
  for (const connection of connections) {
    if (connection.ws.readyState !== WebSocket.OPEN) continue;
    open += 1;
    connection.closedByUs = true;
    connection.ws.once("close", () => {
      if (--open === 0) process.exit(0);
    });
    connection.ws.close(1000, "bench done");
  }
  if (open === 0) process.exit(0);
  // Servers that do not answer the close handshake must not hold the run.
  setTimeout(() => process.exit(0), 2000).unref();
}
