import { describe, expect, it } from "vitest";
import { PromMetrics } from "../../src/adapters/prometheus/prom-metrics.js";
import { PUSHER_SERVER_CLOSE_CODES } from "../../src/adapters/pusher/socket-codes.js";
import { CloseCode } from "@sobranie/protocol/codes";

/** The sample lines of one metric (no HELP/TYPE), e.g. `name{labels} value`. */
function samples(text: string, name: string): string[] {
  return text.split("\n").filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `));
}

describe("PromMetrics", () => {
  it("renders every metric of docs/protocol.md §8 with the server_id label", async () => {
    const metrics = new PromMetrics({ nodeId: "node-a" });
    const text = await metrics.render();
    for (const name of [
      "sobranie_ws_connections_active",
      "sobranie_sse_connections_active",
      "sobranie_messages_sent_total",
      "sobranie_message_delivery_duration_seconds",
      "sobranie_frames_received_total",
      "sobranie_frames_rejected_total",
      "sobranie_rate_limited_total",
      "sobranie_oversize_frames_total",
      "sobranie_upgrades_rejected_total",
      "sobranie_connections_closed_total",
      "sobranie_pusher_connections_active",
      "sobranie_pusher_connections_closed_total",
      "sobranie_dead_lettered_total",
      "sobranie_client_publishes_total",
      "sobranie_amqp_connected",
      "sobranie_amqp_reconnects_total",
      "sobranie_bindings_active",
      "sobranie_draining",
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
    expect(samples(text, "sobranie_ws_connections_active")).toEqual(['sobranie_ws_connections_active{server_id="node-a"} 0']);
    expect(text).toContain('sobranie_frames_rejected_total{reason="rate_limited",server_id="node-a"} 0');
    for (const reason of ["unauthorized", "revoked", "too_many_connections", "capacity", "draining", "broker_unavailable"]) {
      expect(text).toContain(`sobranie_upgrades_rejected_total{reason="${reason}",server_id="node-a"} 0`);
    }
    expect(metrics.contentType).toMatch(/^text\/plain/);
  });

  it("includes process and event-loop metrics", async () => {
    const text = await new PromMetrics({ nodeId: "n" }).render();
    expect(text).toMatch(/^process_cpu_user_seconds_total\{server_id="n"\} /m);
    expect(text).toContain("nodejs_eventloop_lag_seconds");
  });

  it("keeps two instances apart (own registries, no global state)", async () => {
    const a = new PromMetrics({ nodeId: "a" });
    const b = new PromMetrics({ nodeId: "b" });
    a.connectionOpened("ws");
    expect(samples(await a.render(), "sobranie_ws_connections_active")).toEqual(['sobranie_ws_connections_active{server_id="a"} 1']);
    expect(samples(await b.render(), "sobranie_ws_connections_active")).toEqual(['sobranie_ws_connections_active{server_id="b"} 0']);
  });

  it("tracks connections per transport and counts closes by bounded close code", async () => {
    const metrics = new PromMetrics({ nodeId: "n" });
    metrics.connectionOpened("ws");
    metrics.connectionOpened("ws");
    metrics.connectionOpened("sse");
    metrics.connectionClosed("ws", CloseCode.TooSlow);
    metrics.connectionClosed("ws", 4999);
    metrics.connectionClosed("sse", CloseCode.Normal);
    const text = await metrics.render();
    expect(samples(text, "sobranie_ws_connections_active")).toEqual(['sobranie_ws_connections_active{server_id="n"} 0']);
    expect(samples(text, "sobranie_sse_connections_active")).toEqual(['sobranie_sse_connections_active{server_id="n"} 0']);
    expect(samples(text, "sobranie_connections_closed_total").sort()).toEqual([
      'sobranie_connections_closed_total{code="1000",server_id="n"} 1',
      'sobranie_connections_closed_total{code="4013",server_id="n"} 1',
      'sobranie_connections_closed_total{code="other",server_id="n"} 1',
    ]);
  });

  it("counts Pusher connections as WebSockets too, and their closes apart by Pusher's codes (which reuse ours with other meanings)", async () => {
    const metrics = new PromMetrics({ nodeId: "n", pusherCloseCodes: PUSHER_SERVER_CLOSE_CODES });
    metrics.connectionOpened("pusher");
    metrics.connectionOpened("pusher");
    metrics.connectionOpened("pusher");
    let text = await metrics.render();
    expect(samples(text, "sobranie_ws_connections_active")).toEqual(['sobranie_ws_connections_active{server_id="n"} 3']);
    expect(samples(text, "sobranie_pusher_connections_active")).toEqual(['sobranie_pusher_connections_active{server_id="n"} 3']);
    // 4201 is Pusher's missed pong (ours is 4008); 4999 is no code the gateway closes a Pusher connection with.
    metrics.connectionClosed("pusher", 4201);
    metrics.connectionClosed("pusher", 4009);
    metrics.connectionClosed("pusher", 4999);
    text = await metrics.render();
    expect(samples(text, "sobranie_ws_connections_active")).toEqual(['sobranie_ws_connections_active{server_id="n"} 0']);
    expect(samples(text, "sobranie_pusher_connections_active")).toEqual(['sobranie_pusher_connections_active{server_id="n"} 0']);
    expect(samples(text, "sobranie_pusher_connections_closed_total").sort()).toEqual([
      'sobranie_pusher_connections_closed_total{code="4009",server_id="n"} 1',
      'sobranie_pusher_connections_closed_total{code="4201",server_id="n"} 1',
      'sobranie_pusher_connections_closed_total{code="other",server_id="n"} 1',
    ]);
    expect(samples(text, "sobranie_connections_closed_total")).toEqual([]);
  });

  it("maps ops outside the protocol to unknown", async () => {
    const metrics = new PromMetrics({ nodeId: "n" });
    metrics.frameReceived("subscribe");
    metrics.frameReceived("subscribe");
    metrics.frameReceived("drop table users");
    metrics.frameReceived("x".repeat(10_000));
    const received = samples(await metrics.render(), "sobranie_frames_received_total").sort();
    expect(received).toEqual([
      'sobranie_frames_received_total{op="subscribe",server_id="n"} 2',
      'sobranie_frames_received_total{op="unknown",server_id="n"} 2',
    ]);
  });

  it("feeds the rate-limited and oversize totals from rejections", async () => {
    const metrics = new PromMetrics({ nodeId: "n" });
    metrics.frameRejected("rate_limited");
    metrics.frameRejected("rate_limited");
    metrics.frameRejected("too_large");
    metrics.frameRejected("forbidden");
    const text = await metrics.render();
    expect(samples(text, "sobranie_rate_limited_total")).toEqual(['sobranie_rate_limited_total{server_id="n"} 2']);
    expect(samples(text, "sobranie_oversize_frames_total")).toEqual(['sobranie_oversize_frames_total{server_id="n"} 1']);
    expect(text).toContain('sobranie_frames_rejected_total{reason="forbidden",server_id="n"} 1');
  });

  it("counts messages per recipient and observes delivery latency once per event", async () => {
    const metrics = new PromMetrics({ nodeId: "n" });
    metrics.messagesSent("event", "room", 3, 0.002);
    metrics.messagesSent("event", "room", 2, undefined);
    metrics.messagesSent("join", "room", 0, 0.001);
    const text = await metrics.render();
    expect(samples(text, "sobranie_messages_sent_total")).toEqual([
      'sobranie_messages_sent_total{type="event",namespace="room",server_id="n"} 5',
    ]);
    expect(text).toContain('sobranie_message_delivery_duration_seconds_bucket{le="0.0005",server_id="n"} 0');
    expect(text).toContain('sobranie_message_delivery_duration_seconds_bucket{le="0.0025",server_id="n"} 1');
    expect(text).toContain('sobranie_message_delivery_duration_seconds_bucket{le="5",server_id="n"} 1');
    expect(text).toContain('sobranie_message_delivery_duration_seconds_count{server_id="n"} 1');
  });

  it("records upgrades, dead letters, client publishes, broker state, bindings and drain", async () => {
    const metrics = new PromMetrics({ nodeId: "n" });
    metrics.upgradeRejected("draining");
    metrics.deadLettered("bad_json");
    metrics.clientPublished("room");
    metrics.brokerConnected(true);
    metrics.brokerReconnected();
    metrics.bindingsActive(12);
    metrics.draining(true);
    const text = await metrics.render();
    expect(text).toContain('sobranie_upgrades_rejected_total{reason="draining",server_id="n"} 1');
    expect(text).toContain('sobranie_upgrades_rejected_total{reason="unauthorized",server_id="n"} 0');
    expect(text).toContain('sobranie_dead_lettered_total{reason="bad_json",server_id="n"} 1');
    expect(text).toContain('sobranie_client_publishes_total{namespace="room",server_id="n"} 1');
    expect(text).toContain('sobranie_amqp_connected{server_id="n"} 1');
    expect(text).toContain('sobranie_amqp_reconnects_total{server_id="n"} 1');
    expect(text).toContain('sobranie_bindings_active{server_id="n"} 12');
    expect(text).toContain('sobranie_draining{server_id="n"} 1');
    metrics.brokerConnected(false);
    metrics.draining(false);
    const after = await metrics.render();
    expect(after).toContain('sobranie_amqp_connected{server_id="n"} 0');
    expect(after).toContain('sobranie_draining{server_id="n"} 0');
  });

  it("counts dropped presence bus messages by reason, both reasons from zero", async () => {
    const metrics = new PromMetrics({ nodeId: "n" });
    expect(samples(await metrics.render(), "sobranie_presence_messages_dropped_total").sort()).toEqual([
      'sobranie_presence_messages_dropped_total{reason="foreign",server_id="n"} 0',
      'sobranie_presence_messages_dropped_total{reason="invalid",server_id="n"} 0',
    ]);
    metrics.presenceMessageDropped("foreign");
    metrics.presenceMessageDropped("foreign");
    metrics.presenceMessageDropped("invalid");
    expect(samples(await metrics.render(), "sobranie_presence_messages_dropped_total").sort()).toEqual([
      'sobranie_presence_messages_dropped_total{reason="foreign",server_id="n"} 2',
      'sobranie_presence_messages_dropped_total{reason="invalid",server_id="n"} 1',
    ]);
  });

  it("exposes the /readyz verdict and each check, read at scrape time", async () => {
    const metrics = new PromMetrics({ nodeId: "n" });
    let store = false;
    metrics.observeReadiness(() => ({ ready: store, checks: { broker: true, store } }));
    const failing = await metrics.render();
    expect(failing).toContain('sobranie_ready{server_id="n"} 0');
    expect(failing).toContain('sobranie_readiness_check{check="store",server_id="n"} 0');
    expect(failing).toContain('sobranie_readiness_check{check="broker",server_id="n"} 1');
    store = true;
    expect(await metrics.render()).toContain('sobranie_ready{server_id="n"} 1');
  });
});
