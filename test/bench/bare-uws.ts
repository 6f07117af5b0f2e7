import type { loadNativeUws } from "../../src/adapters/uws/load-native-uws.js";

type Uws = ReturnType<typeof loadNativeUws>["uws"];
type UwsApp = ReturnType<Uws["App"]>;

const WELCOME = JSON.stringify({ op: "welcome", session: "raw", node: "raw-uws", heartbeatMs: 25_000, ttlMs: 60_000, maxFrameBytes: 65_536 });

/**
 * The bare uWebSockets.js server of the uWS baselines (rawUws, amqpUws): just
 * enough of docs/protocol.md §4 (welcome, subscribe → ok, ping → pong) for the load
 * generator to treat it exactly like the gateway, and nothing else — no
 * tokens, no limits, no per-client bookkeeping. Subscribing joins the uWS
 * topic named by the channel; `beforeSubscribe` (a binding, say) runs first.
 */
export function bareUwsApp(uws: Uws, beforeSubscribe?: (channel: string) => Promise<void>): UwsApp {
  return uws
    .App()
    .ws<{ closed: boolean }>("/*", {
      compression: uws.DISABLED,
      maxPayloadLength: 64 * 1024,
      idleTimeout: 120,
      // The runner's closed loop bounds what is in flight; this only makes sure
      // uWS never silently skips a subscriber, which would read as `lost`.
      maxBackpressure: 64 * 1024 * 1024,
      closeOnBackpressureLimit: false,
      open: (ws) => {
        ws.send(WELCOME, false);
      },
      message: (ws, message) => {
        // uWS reuses `message` after this handler returns: decode it now.
        let frame: { op?: unknown; ref?: unknown; channel?: unknown };
        try {
          frame = JSON.parse(Buffer.from(message).toString("utf8")) as typeof frame;
        } catch {
          return;
        }
        const { channel, ref } = frame;
        if (frame.op === "subscribe" && typeof channel === "string") {
          const join = (): void => {
            if (ws.getUserData().closed) return;
            ws.subscribe(channel);
            ws.send(JSON.stringify({ op: "ok", ref, recovered: false, missed: 0 }), false);
          };
          if (beforeSubscribe) void beforeSubscribe(channel).then(join);
          else join();
        } else if (frame.op === "ping") {
          ws.send(JSON.stringify({ op: "pong", ref }), false);
        }
      },
      close: (ws) => {
        ws.getUserData().closed = true;
      },
    })
    .get("/readyz", (res) => {
      res.end("ok");
    });
}
