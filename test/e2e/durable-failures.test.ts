import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DurableEnv, eventIds, expectExactlyOnceInOrder, RecoveringSubscriber, startNode } from "../support/durable-env.js";
import { GatewayProcess } from "../support/gateway-process.js";
import { TcpProxy } from "../support/tcp-proxy.js";
import { signToken, startTestGateway, uniqueId, type TestGateway } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";

// Issue 3's guarantee (every durable event, exactly once, in order) across
// worker kills, a PostgreSQL outage and gateway restarts. Workers and killed
// gateways run as whole processes from dist/ (`npm run build` first); each
// test gets its own RabbitMQ vhost and PostgreSQL database.
const SLOW_MS = 60_000;
/** Pace of the background producers: a steady stream, not a flood (recovery replays at most RECOVERY_MAX_EVENTS). */
const PRODUCER_PAUSE_MS = 10;

/** Publishes `ids` in chunks of `chunk`, each chunk confirmed before the next. */
async function publishAll(env: DurableEnv, channel: string, ids: readonly string[], chunk = 25): Promise<void> {
  for (let i = 0; i < ids.length; i += chunk) {
    await Promise.all(ids.slice(i, i + chunk).map((id) => env.publishEvent(channel, id)));
  }
}

async function status(url: string): Promise<number> {
  return (await fetch(url)).status;
}

describe("durable delivery across failures (whole processes)", { timeout: 180_000 }, () => {
  let env: DurableEnv;
  let gateway: TestGateway | undefined;
  let proxy: TcpProxy | undefined;
  const subscribers: RecoveringSubscriber[] = [];

  async function subscriber(channel: string, user: string, wsUrl: string): Promise<RecoveringSubscriber> {
    const made = new RecoveringSubscriber(channel, await signToken({ sub: user }));
    subscribers.push(made);
    await made.attach(wsUrl);
    return made;
  }

  beforeEach(async () => {
    env = await DurableEnv.create("durable_e2e");
  }, 60_000);

  afterEach(async () => {
    for (const made of subscribers.splice(0)) made.close();
    await gateway?.stop();
    gateway = undefined;
    await GatewayProcess.killAll();
    await proxy?.stop();
    proxy = undefined;
    await env.close();
  }, 60_000);

  it("a worker SIGKILLed in the middle of a burst and restarted: every event exactly once, in order", async () => {
    const workerEnv = { ...env.env, PERSIST_MAX_BATCH: "20", PERSIST_MAX_BATCH_WAIT_MS: "10" };
    const first = await startNode("worker", workerEnv);
    gateway = await startTestGateway({ ...env.env, ROLE: "gateway" });
    const user = uniqueId("k");
    const channel = `user:${user}`;
    const live = await subscriber(channel, user, gateway.wsUrl);
    const ids = eventIds("k", 400);

    await publishAll(env, channel, ids.slice(0, 300));
    await waitFor(() => live.events.length >= 30, SLOW_MS, "the worker under way");
    first.node.kill("SIGKILL");
    expect((await first.node.exited).signal).toBe("SIGKILL");
    // Published while no worker runs: they wait in sobranie.persist.
    await publishAll(env, channel, ids.slice(300));
    expect(live.events.length).toBeLessThan(ids.length);
    await startNode("worker", workerEnv);

    await waitFor(() => live.events.length >= ids.length, SLOW_MS, `all ${ids.length} events (have ${live.events.length})`);
    await live.current!.request({ op: "ping" });
    expectExactlyOnceInOrder(live.events, ids);
    expect((await env.rows(channel)).map((row) => row.id)).toEqual(ids);

    // A client that saw the first 30 before the kill recovers the rest at the end.
    const since = live.events[29]!.seq as number;
    const recovering = new RecoveringSubscriber(channel, await signToken({ sub: user }));
    subscribers.push(recovering);
    const ok = await recovering.attach(gateway.wsUrl, since);
    expect(ok).toMatchObject({ recovered: true, missed: ids.length - 30 });
    await waitFor(() => recovering.events.length >= ids.length - 30, SLOW_MS, "the recovered events");
    expectExactlyOnceInOrder(recovering.events, ids.slice(30));
  });

  it("PostgreSQL unreachable during a burst: events wait in sobranie.persist, the worker is not ready, then all arrive once in order", async () => {
    proxy = new TcpProxy("127.0.0.1", 5432);
    await proxy.start();
    const proxied = new URL(env.databaseUrl);
    proxied.port = String(proxy.port);
    const worker = await startNode("worker", { ...env.env, DATABASE_URL: proxied.toString(), PERSIST_MAX_BATCH: "20" });
    gateway = await startTestGateway({ ...env.env, ROLE: "gateway" });
    const user = uniqueId("pg");
    const channel = `user:${user}`;
    const live = await subscriber(channel, user, gateway.wsUrl);
    const ids = eventIds("pg", 200);
    expect(await status(`${worker.url}/readyz`)).toBe(200);

    await publishAll(env, channel, ids.slice(0, 100));
    await waitFor(() => live.events.length >= 10, SLOW_MS, "the burst under way");
    proxy.cut();
    await publishAll(env, channel, ids.slice(100));
    await waitFor(async () => (await status(`${worker.url}/readyz`)) === 503, SLOW_MS, "worker /readyz 503 while PostgreSQL is away");
    // The worker keeps retrying; wait for two more failed attempts, not for a guessed time.
    const failures = () => worker.node.stdout.match(/store failed; retrying/g)?.length ?? 0;
    const seen = failures();
    await waitFor(() => failures() >= seen + 2, SLOW_MS, "the worker retrying the store");
    // Nothing lost: every event not delivered is still in sobranie.persist (its counts lag a few seconds).
    const delivered = live.events.length;
    expect(delivered).toBeLessThan(ids.length);
    await waitFor(async () => (await env.persistQueueDepth()) >= ids.length - delivered, SLOW_MS, "undelivered events counted in sobranie.persist");
    // Nothing delivered without the store, however long the outage lasted so far.
    await live.current!.request({ op: "ping" });
    expect(live.events.length).toBe(delivered);

    proxy.restore();
    await waitFor(() => live.events.length >= ids.length, SLOW_MS, `all ${ids.length} events (have ${live.events.length})`);
    await waitFor(async () => (await status(`${worker.url}/readyz`)) === 200, SLOW_MS, "worker ready again");
    await waitFor(async () => (await env.persistQueueDepth()) === 0, SLOW_MS, "sobranie.persist drained");
    await live.current!.request({ op: "ping" });
    expectExactlyOnceInOrder(live.events, ids);
    expect((await env.rows(channel)).map((row) => row.id)).toEqual(ids);
  });

  it("gateways killed and drained while events flow: clients resubscribe elsewhere with since and see every event once, in order", async () => {
    gateway = await startTestGateway({ ...env.env, ROLE: "worker" });
    const nodeEnv = { ...env.env, DRAIN_GRACE_MS: "300" };
    const [g1, g2] = await Promise.all([startNode("gateway", nodeEnv), startNode("gateway", nodeEnv)]);
    const ws = (node: { port: number }) => `ws://127.0.0.1:${node.port}/realtime/ws`;
    const user = uniqueId("gw");
    const channel = `user:${user}`;
    const onFirst = await subscriber(channel, user, ws(g1));
    const onSecond = await subscriber(channel, user, ws(g2));

    const published: string[] = [];
    const base = uniqueId("gw");
    let stopAt = Number.POSITIVE_INFINITY;
    const producer = (async () => {
      for (let i = 0; published.length < stopAt; i++) {
        const id = `${base}-${String(i).padStart(5, "0")}`;
        await env.publishEvent(channel, id, { i });
        published.push(id);
        await new Promise((resolve) => setTimeout(resolve, PRODUCER_PAUSE_MS));
      }
    })();

    await waitFor(() => onFirst.events.length >= 20, SLOW_MS, "events on the first node");
    // A crash: no drain, the socket just drops; the client resumes on the other node.
    g1.node.kill("SIGKILL");
    await onFirst.current!.closed;
    expect(await onFirst.attach(ws(g2))).toMatchObject({ recovered: true });
    const resumedAt = onFirst.events.length;
    await waitFor(() => onFirst.events.length >= resumedAt + 20, SLOW_MS, "events after the first resume");

    // A restart: a fresh node comes up, the old one drains (reconnect, then 1012), both clients move.
    const g3 = await startNode("gateway", nodeEnv);
    g2.node.kill("SIGTERM");
    for (const moving of [onFirst, onSecond]) {
      expect(await moving.current!.next((frame) => frame.op === "reconnect", SLOW_MS)).toMatchObject({ reason: "drain" });
      expect(await moving.current!.closed).toMatchObject({ code: 1012 });
      expect(await moving.attach(ws(g3))).toMatchObject({ recovered: true });
    }
    expect((await g2.node.exited).code).toBe(0);
    const movedAt = onSecond.events.length;
    await waitFor(() => onSecond.events.length >= movedAt + 20, SLOW_MS, "events after the move");

    stopAt = published.length + 20;
    await producer;
    for (const moved of [onFirst, onSecond]) {
      await waitFor(() => moved.events.length >= published.length, SLOW_MS, `all ${published.length} events (have ${moved.events.length})`);
      await moved.current!.request({ op: "ping" });
      expectExactlyOnceInOrder(moved.events, published);
    }
    expect(onFirst.sessions).toHaveLength(3);
    expect(onSecond.sessions).toHaveLength(2);
  });
});
