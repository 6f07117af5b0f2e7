import type { UnderlyingSource } from "node:stream/web";

/**
 * The part of Bun's runtime API the Bun edge adapter uses, declared here so
 * `tsc` on Node checks the adapter without Bun's type package (whose globals
 * would change the types of the whole project). Semantics noted where the
 * adapter relies on them.
 */

export interface BunServer {
  readonly port: number;
  /** Bytes sent, -1 when buffered behind backpressure, 0 when dropped or no subscriber. */
  publish(topic: string, data: string, compress?: boolean): number;
  subscriberCount(topic: string): number;
  /** True when the request was taken over; the fetch handler must then settle with undefined. */
  upgrade(request: Request, options: { data: unknown }): boolean;
  /** The peer's address; null when the connection is gone. */
  requestIP(request: Request): { readonly address: string } | null;
  /** Per-request idle timeout in seconds; 0 disables it. */
  timeout(request: Request, seconds: number): void;
  /** false: stop listening, keep open connections; true: close them too. */
  stop(closeActiveConnections?: boolean): Promise<void>;
}

export interface BunServerWebSocket<Data> {
  readonly data: Data;
  /** Bytes sent, -1 when buffered behind backpressure, 0 when dropped. */
  send(data: string, compress?: boolean): number;
  /** Sends made inside `callback` leave in one write. */
  cork(callback: () => void): void;
  close(code?: number, reason?: string): void;
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
  /** To every subscriber of `topic` but this socket; bytes sent, -1 when buffered, 0 when dropped or none. */
  publish(topic: string, data: string): number;
  getBufferedAmount(): number;
  /** Sends a ping frame. */
  ping(): number;
}

export interface BunWebSocketHandler<Data> {
  maxPayloadLength: number;
  /** Bytes; 0 is no limit (passed to uWS as maxBackpressure). */
  backpressureLimit: number;
  closeOnBackpressureLimit: boolean;
  /** Seconds; 0 disables. */
  idleTimeout: number;
  sendPings: boolean;
  perMessageDeflate: boolean;
  /** Text frames arrive as strings (already decoded), binary ones as Buffers. */
  open(ws: BunServerWebSocket<Data>): void;
  message(ws: BunServerWebSocket<Data>, message: string | Uint8Array): void;
  ping(ws: BunServerWebSocket<Data>, data: Uint8Array): void;
  pong(ws: BunServerWebSocket<Data>, data: Uint8Array): void;
  close(ws: BunServerWebSocket<Data>, code: number, reason: string): void;
}

export type BunFetch = (request: Request, server: BunServer) => Response | Promise<Response | undefined> | undefined;

export interface BunServeOptions<Data> {
  hostname: string;
  port: number;
  /**
   * By pattern (`/a/b`, `/a/:name`), every method; a static pattern wins over
   * one with `:name`. Bun percent-decodes the params it would hand over, so
   * the adapter reads raw segments from the path itself.
   */
  routes: Record<string, BunFetch>;
  /** Requests no route takes. */
  fetch: BunFetch;
  websocket: BunWebSocketHandler<Data>;
}

/**
 * A `type: "direct"` ReadableStream's controller, writing straight to the
 * HTTP response: `write` returns the byte count when the bytes went out, or
 * a promise while they are held behind backpressure.
 * Writes are flushed at the end of the tick.
 */
export interface BunDirectController {
  write(chunk: string): number | Promise<number>;
  end(): void;
}

export interface BunRuntime {
  readonly version: string;
  serve<Data>(options: BunServeOptions<Data>): BunServer;
}

export function bunRuntime(): BunRuntime {
  const bun = (globalThis as { Bun?: BunRuntime }).Bun;
  if (!bun) throw new Error("the Bun adapter needs the Bun runtime");
  return bun;
}

/** A direct ReadableStream (Bun only): `pull` is called once, when Bun starts sending the body. */
export function directStream(pull: (controller: BunDirectController) => Promise<void>): ReadableStream<Uint8Array> {
  return new ReadableStream({ type: "direct", pull } as unknown as UnderlyingSource<Uint8Array>);
}
