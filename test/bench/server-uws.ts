import { loadNativeUws } from "../../src/adapters/uws/load-native-uws.js";
import { bareUwsApp } from "./bare-uws.js";
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
 * The server itself is bare-uws.ts, shared with the amqpUws baseline.
 */

const setup = JSON.parse(process.argv[2] ?? "{}") as PublisherSetup;
boundLifetime(setup.hardTimeoutMs, "server-uws");
const { uws } = loadNativeUws();

const topics = Array.from({ length: setup.channelCount }, (_, index) => channelName(index));
const app = bareUwsApp(uws);

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
