/**
 * SSE framing (docs/protocol.md §6). One server frame becomes one SSE message:
 *
 *   event: <type>          the event's type for `event` frames, `sobranie.<op>` for the others
 *   id: <seq>              only for durable events, and only when the stream asks for ids
 *   data: <frame JSON>     the same JSON a WebSocket client gets
 *
 * Guarantee: no CR or LF reaches the `event:` or `id:` field, whatever the
 * frame holds. Event types are already restricted by EVENT_TYPE_PATTERN; the
 * encoder does not rely on that and maps anything outside a safe alphabet to
 * `_`. `id:` is only ever the decimal form of a safe integer.
 */

/** Prefix of the event names of non-`event` frames (`sobranie.welcome`, `sobranie.ok`, …), so they never collide with EventSource's own `error`/`message`. */
export const SSE_CONTROL_PREFIX = "sobranie.";

/** Written every 15 s so proxies keep an idle stream open; ignored by every SSE parser. */
export const SSE_KEEPALIVE = ": keep-alive\n\n";

/** The first bytes of a stream: a comment, so headers and the connection are flushed at once. */
export const SSE_PREAMBLE = ": sobranie\n\n";

const UNSAFE_NAME_CHARS = /[^A-Za-z0-9_.:-]/g;
const LINE_BREAK = /\r\n|\r|\n/;

/** The SSE message of one serialized server frame, with and without its `id:` line (built lazily, once each). */
export class SseMessage {
  /** The frame's `op` and `ref`, for the transport's own bookkeeping. */
  readonly op: string | undefined;
  readonly ref: number | undefined;
  private readonly event: string;
  private readonly id: string | undefined;
  private readonly dataLines: string;
  private withIdText: string | undefined;
  private withoutIdText: string | undefined;

  constructor(frameText: string) {
    const head = readHead(frameText);
    this.op = typeof head.op === "string" ? head.op : undefined;
    this.ref = Number.isSafeInteger(head.ref) ? (head.ref as number) : undefined;
    this.event = sseEventName(head);
    this.id = head.op === "event" && Number.isSafeInteger(head.seq) && (head.seq as number) >= 0 ? String(head.seq) : undefined;
    this.dataLines = sseDataLines(frameText);
  }

  /** True when this message carries a durable seq. */
  get hasId(): boolean {
    return this.id !== undefined;
  }

  text(withId: boolean): string {
    if (withId && this.id !== undefined) {
      return (this.withIdText ??= `event: ${this.event}\nid: ${this.id}\n${this.dataLines}\n`);
    }
    return (this.withoutIdText ??= `event: ${this.event}\n${this.dataLines}\n`);
  }
}

/** The last message of a stream the server ends: what a WebSocket client would learn from the close code. */
export function sseCloseMessage(code: number, reason: string): string {
  return new SseMessage(JSON.stringify({ op: "close", code, reason })).text(false);
}

/** `event:` value: the type of an `event` frame, else `sobranie.<op>`; never a CR or LF. */
export function sseEventName(head: { op?: unknown; type?: unknown }): string {
  const op = typeof head.op === "string" ? head.op : "unknown";
  const raw = op === "event" && typeof head.type === "string" && head.type !== "" ? head.type : `${SSE_CONTROL_PREFIX}${op}`;
  return raw.replace(UNSAFE_NAME_CHARS, "_").slice(0, 600);
}

/** `data:` lines: one per line of the text (JSON from JSON.stringify has none, but a line break must never end the field early). */
export function sseDataLines(text: string): string {
  if (!LINE_BREAK.test(text)) return `data: ${text}\n`;
  return text
    .split(LINE_BREAK)
    .map((line) => `data: ${line}\n`)
    .join("");
}

/** A `Last-Event-ID` value as a seq, or undefined when it is not one (a foreign or mangled id is ignored, as if absent). */
export function parseLastEventId(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{1,16}$/.test(text)) return undefined;
  const seq = Number(text);
  return Number.isSafeInteger(seq) ? seq : undefined;
}

interface FrameHead {
  op?: unknown;
  ref?: unknown;
  type?: unknown;
  seq?: unknown;
}

function readHead(frameText: string): FrameHead {
  try {
    const parsed: unknown = JSON.parse(frameText);
    return typeof parsed === "object" && parsed !== null ? (parsed as FrameHead) : {};
  } catch {
    return {};
  }
}
