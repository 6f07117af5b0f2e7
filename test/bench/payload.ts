/**
 * The benchmark's event payload, shared by every publisher and every client.
 *
 * All measurement fields travel in one string, `data.m = "<phase>|<seq>|<sendMs>"`,
 * so a client can find them with a `Buffer.indexOf` on the raw frame, whatever
 * order the server writes the frame's keys in: the load generator must stay much
 * cheaper per message than the server under test, or it measures itself.
 * `sendMs` is `performance.timeOrigin + performance.now()` (sub-millisecond,
 * comparable across processes on one machine up to the skew of their time origins).
 * `seq` counts events per channel and phase from 0, so each subscriber can check
 * order and gaps.
 */

export const EVENT_TYPE = "bench.tick";
export const CHANNEL_NAMESPACE = "post";

const MARKER = Buffer.from('"m":"');
/** The marker inside a JSON string: a Pusher event frame carries the event's data as one (docs/pusher.md). */
const ESCAPED_MARKER = Buffer.from('\\"m\\":\\"');
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const PAD_CHAR = "x";

export interface Marker {
  phase: number;
  seq: number;
  sendMs: number;
}

export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** `post:bench3`: the channel clients subscribe to. */
export function channelName(index: number): string {
  return `${CHANNEL_NAMESPACE}:bench${index}`;
}

/** `post.bench3`: the same channel's Pusher name (a public channel: `post` lets anyone subscribe). */
export function pusherChannelName(index: number): string {
  return `${CHANNEL_NAMESPACE}.bench${index}`;
}

/** `post.bench3.bench.tick`: the routing key backends publish with (docs/protocol.md §3). */
export function routingKey(index: number): string {
  return `${CHANNEL_NAMESPACE}.bench${index}.${EVENT_TYPE}`;
}

/**
 * The broker body, padded so it is `bodyBytes` long (ASCII only, so chars = bytes).
 * `id` is unique per run (the gateway drops duplicate ids).
 */
export function eventBody(runId: string, channel: number, phase: number, seq: number, sendMs: number, bodyBytes: number): string {
  const head = `{"id":"${runId}.${phase}.${channel}.${seq}","type":"${EVENT_TYPE}","data":{"m":"${phase}|${seq}|${sendMs.toFixed(3)}","pad":"`;
  const tail = '"}}';
  return head + PAD_CHAR.repeat(Math.max(0, bodyBytes - head.length - tail.length)) + tail;
}

/**
 * The event frame a client receives for `body`, in the shape of docs/protocol.md §4
 * (`{"op":"event","channel",...,"ts"}`). The baselines send this so that every
 * client does the same work per message as against the gateway.
 */
export function eventFrame(channel: string, body: string): string {
  // body is {"id":..,"type":..,"data":{..}}: splice the frame fields around it.
  return `{"op":"event","channel":"${channel}",${body.slice(1, -1)},"ts":"${new Date().toISOString()}"}`;
}

/** The marker of an event frame (native or Pusher), or `null` for any other frame. Never throws. */
export function readMarker(frame: Buffer): Marker | null {
  let start: number;
  let end: number;
  const at = frame.indexOf(MARKER);
  if (at >= 0) {
    start = at + MARKER.length;
    end = frame.indexOf(QUOTE, start);
  } else {
    const escapedAt = frame.indexOf(ESCAPED_MARKER);
    if (escapedAt < 0) return null;
    start = escapedAt + ESCAPED_MARKER.length;
    end = frame.indexOf(BACKSLASH, start);
  }
  if (end < 0) return null;
  const parts = frame.toString("latin1", start, end).split("|");
  if (parts.length !== 3) return null;
  const phase = Number(parts[0]);
  const seq = Number(parts[1]);
  const sendMs = Number(parts[2]);
  if (!Number.isInteger(phase) || !Number.isInteger(seq) || !Number.isFinite(sendMs)) return null;
  return { phase, seq, sendMs };
}
