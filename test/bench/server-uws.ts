import { loadUws } from "../../src/adapters/uws/load-uws.js";
import { boundLifetime, type PublisherCommand, type PublisherSetup, sendToParent } from "./ipc.js";
import { channelName, eventBody, eventFrame } from "./payload.js";
import { PublishLoop } from "./publish-loop.js";

/**
 * The rawUws baseline: a bare uWebSockets.js server that publishes the
 * benchmark's events itself with `app.publish(topic, frame)`, from the same
 * publish loop the amqp publisher uses. No broker, no JSON parsing of events,
 * no per-client bookkeeping: an upper bound for what the gateway could reach on
 * this machine with these clients.
 *
 * It speaks just enough of CONTRACT §4 (welcome, subscribe → ok, ping → pong)
 * for the load generator to treat it exactly like the gateway.
 */

const setup = JSON.parse(process.argv[2] ?? "{}") as PublisherSetup;
boundLifetime(setup.hardTimeoutMs, "server-uws");
const { uws } = loadUws();

const WELCOME = JSON.stringify({ op: "welcome", session: "raw", node: "raw-uws", heartbeatMs: 25_000, ttlMs: 60_000, maxFrameBytes: 65_536 });
const topics = Array.from({ length: setup.channelCount }, (_, index) => channelName(index));

const app = uws
  .App()
  .ws("/*", {
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
      if (frame.op === "subscribe" && typeof frame.channel === "string") {
        ws.subscribe(frame.channel);
        ws.send(JSON.stringify({ op: "ok", ref: frame.ref, recovered: false, missed: 0 }), false);
      } else if (frame.op === "ping") {
        ws.send(JSON.stringify({ op: "pong", ref: frame.ref }), false);
      }
    },
  })
  .get("/readyz", (res) => {
    res.end("ok");
  });

const loop = new PublishLoop({
  channelCount: setup.channelCount,
  report: sendToParent,
  sink: {
    emit: (channel, phase, seq, sendMs) => {
      const body = eventBody(setup.runId, channel, phase, seq, sendMs, setup.bodyBytes);
      app.publish(topics[channel]!, eventFrame(topics[channel]!, body), false);
      return true;
    },
    drained: () => Promise.resolve(),
  },
});

process.on("message", (command: PublisherCommand) => {
  if (command.type === "exit") process.exit(0);
  loop.handle(command);
});

app.listen("127.0.0.1", 0, (listenSocket) => {
  if (listenSocket === false) {
    sendToParent({ type: "error", message: "uWS could not listen on 127.0.0.1" }, () => process.exit(1));
    return;
  }
  sendToParent({ type: "ready", port: uws.us_socket_local_port(listenSocket as unknown as Parameters<typeof uws.us_socket_local_port>[0]) });
});
