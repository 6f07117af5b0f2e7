import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeadLetterWatch, DurableEnv, eventIds, expectExactlyOnceInOrder } from "../support/durable-env.js";
import { signToken, startTestGateway, uniqueId, type TestGateway } from "../support/test-gateway.js";
import { waitFor } from "../support/wait-for.js";
import { TestClient, type Frame } from "../support/ws-client.js";

// Issue 3 on the real RabbitMQ and PostgreSQL, each file in its own vhost and
// database: backend event → sobranie.persist → worker (seq) → sobranie.live → client.
const SLOW_MS = 30_000;

/** A worker and a gateway (with the store, for recovery and the inbox) in this process. */
async function startPair(env: DurableEnv, workerEnv: Record<string, string> = {}): Promise<{ worker: TestGateway; gateway: TestGateway }> {
  const worker = await startTestGateway({ ...env.env, ROLE: "worker", ...workerEnv });
  const gateway = await startTestGateway({ ...env.env, ROLE: "gateway" });
  return { worker, gateway };
}

async function connect(gateway: TestGateway, user: string): Promise<TestClient> {
  return TestClient.connect(gateway.wsUrl, { token: await signToken({ sub: user }) });
}

async function subscribe(client: TestClient, channel: string, since?: number): Promise<Frame> {
  const ok = await client.request(since === undefined ? { op: "subscribe", channel } : { op: "subscribe", channel, since }, 15_000);
  expect(ok).toMatchObject({ op: "ok" });
  return ok;
}

/** Waits until the client holds `count` events of the channel. */
async function eventsOf(client: TestClient, channel: string, count: number, timeoutMs = SLOW_MS): Promise<Frame[]> {
  await waitFor(() => client.events(channel).length >= count, timeoutMs, `${count} events on ${channel} (have ${client.events(channel).length})`);
  return client.events(channel);
}

describe("durable delivery: RabbitMQ → worker → PostgreSQL → gateway → WebSocket", { timeout: 90_000 }, () => {
  let env: DurableEnv;
  let worker: TestGateway;
  let gateway: TestGateway;
  const clients: TestClient[] = [];

  async function client(user: string): Promise<TestClient> {
    const made = await connect(gateway, user);
    clients.push(made);
    return made;
  }

  beforeAll(async () => {
    env = await DurableEnv.create("durable_it");
    // A batch waits 30 ms to fill, so a burst of duplicates lands in one transaction.
    ({ worker, gateway } = await startPair(env, { PERSIST_MAX_BATCH_WAIT_MS: "30" }));
  }, 60_000);

  afterAll(async () => {
    for (const made of clients) made.close();
    await gateway?.stop();
    await worker?.stop();
    await env?.close();
  }, 60_000);

  it("delivers a backend notification to the user's subscriber with a seq, strictly increasing per channel", async () => {
    const user = uniqueId("u1");
    const [inbox, other] = [`user:${user}`, `room:${user}`];
    const subscriber = await TestClient.connect(gateway.wsUrl, { token: await signToken({ sub: user, channels: [other] }) });
    clients.push(subscriber);
    await subscribe(subscriber, inbox);
    await subscribe(subscriber, other);
    const ids = eventIds("n", 20);
    for (const [i, id] of ids.entries()) {
      await env.publishEvent(inbox, id, { i });
      await env.publishEvent(other, `${id}-room`, { i }, "message.created");
    }
    const events = await eventsOf(subscriber, inbox, ids.length);
    expect(events[0]).toEqual({ op: "event", channel: inbox, id: ids[0], seq: expect.any(Number), type: "notification.created", data: { i: 0 }, ts: expect.any(String) });
    expectExactlyOnceInOrder(events, ids);
    expectExactlyOnceInOrder(await eventsOf(subscriber, other, ids.length), ids.map((id) => `${id}-room`));
    expect((await env.rows(inbox)).map((row) => row.seq)).toEqual(events.map((frame) => frame.seq));
  });

  it("delivers an event id published twice, or repeated inside one burst, exactly once and stores it once", async () => {
    const user = uniqueId("u2");
    const channel = `user:${user}`;
    const subscriber = await client(user);
    await subscribe(subscriber, channel);
    const [first, a, b, c, end] = eventIds("d", 5) as [string, string, string, string, string];
    await env.publishEvent(channel, first);
    await eventsOf(subscriber, channel, 1);
    // The same id again after it was delivered: stored before, relayed with its first seq, dropped by the gateway.
    await env.publishEvent(channel, first, { again: true });
    // Duplicates inside one burst: published back to back, confirmed together.
    await Promise.all([a, b, a, c, b, a].map((id) => env.publishEvent(channel, id)));
    await env.publishEvent(channel, end);
    await eventsOf(subscriber, channel, 5);
    await subscriber.request({ op: "ping" });
    expectExactlyOnceInOrder(subscriber.events(channel), [first, a, b, c, end]);
    expect(subscriber.events(channel)[0]!.data).toEqual({});
    expect((await env.rows(channel)).map((row) => row.id)).toEqual([first, a, b, c, end]);
  });

  it("subscribe with since, while events keep coming: ok {recovered, missed}, the missed in order, then live, gapless and without duplicates", async () => {
    const user = uniqueId("u3");
    const channel = `user:${user}`;
    const watcher = await client(user);
    await subscribe(watcher, channel);
    const published: string[] = [];
    const base = uniqueId("s");
    let stopAt = Number.POSITIVE_INFINITY;
    const producer = (async () => {
      for (let i = 0; published.length < stopAt; i++) {
        const id = `${base}-${String(i).padStart(4, "0")}`;
        await env.publishEvent(channel, id, { i });
        published.push(id);
      }
    })();
    // Each recovering client subscribes mid-stream, `since` 10 events behind the watcher.
    const recoveries: Array<{ client: TestClient; ok: Frame; since: number; fromIndex: number }> = [];
    for (const seen of [20, 40, 60, 80]) {
      const events = await eventsOf(watcher, channel, seen);
      const fromIndex = seen - 10;
      const since = events[fromIndex - 1]!.seq as number;
      const recovering = await client(user);
      recoveries.push({ client: recovering, ok: await subscribe(recovering, channel, since), since, fromIndex });
    }
    stopAt = published.length + 20;
    await producer;
    await eventsOf(watcher, channel, published.length);
    expectExactlyOnceInOrder(watcher.events(channel), published);
    for (const { client: recovering, ok, fromIndex } of recoveries) {
      expect(ok).toMatchObject({ recovered: true, missed: expect.any(Number) });
      expect(ok.missed as number).toBeGreaterThanOrEqual(10);
      const expected = published.slice(fromIndex);
      await eventsOf(recovering, channel, expected.length);
      await recovering.request({ op: "ping" });
      // `ok` comes before the first recovered event.
      expect(recovering.frames.findIndex((frame) => frame.op === "event")).toBeGreaterThan(recovering.frames.indexOf(ok));
      expectExactlyOnceInOrder(recovering.events(channel), expected);
    }
  });

  it("inbox: pages oldest first with unread; read marks move only forward, over HTTP and WebSocket, and reach the user's other connections", async () => {
    const user = uniqueId("u7");
    const channel = `user:${user}`;
    const token = await signToken({ sub: user });
    const [first, second] = [await client(user), await client(user)];
    await subscribe(first, channel);
    await subscribe(second, channel);
    const ids = eventIds("i", 5);
    for (const id of ids) await env.publishEvent(channel, id, { text: id });
    const seqs = (await eventsOf(first, channel, 5)).map((frame) => frame.seq as number);
    const get = async (query: string, auth = `Bearer ${token}`) => {
      const response = await fetch(`${gateway.httpUrl}/api/v1/notifications${query}`, { headers: { authorization: auth } });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };
    const post = async (body: string, auth = `Bearer ${token}`) => {
      const response = await fetch(`${gateway.httpUrl}/api/v1/notifications/read`, { method: "POST", headers: { authorization: auth }, body });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };

    const all = await get("?after=0&limit=50");
    expect(all).toMatchObject({ status: 200, body: { unread: 5, readUpTo: 0 } });
    expectExactlyOnceInOrder(all.body.notifications as Frame[], ids);
    const page = await get(`?after=${seqs[1]}&limit=2`);
    expect((page.body.notifications as Frame[]).map((frame) => frame.id)).toEqual(ids.slice(2, 4));

    expect(await post(JSON.stringify({ upTo: seqs[2] }))).toEqual({ status: 200, body: { upTo: seqs[2] } });
    expect(await second.next((frame) => frame.op === "read")).toMatchObject({ channel, upTo: seqs[2] });
    expect((await get("")).body).toMatchObject({ unread: 2, readUpTo: seqs[2] });
    expect(await first.request({ op: "read", channel, upTo: seqs[3] })).toMatchObject({ op: "ok", upTo: seqs[3] });
    expect(await second.next((frame) => frame.op === "read")).toMatchObject({ channel, upTo: seqs[3] });
    // Never back: an older mark answers with the current one, over either path.
    expect(await post(JSON.stringify({ upTo: seqs[0] }))).toEqual({ status: 200, body: { upTo: seqs[3] } });
    expect(await first.request({ op: "read", channel, upTo: seqs[1] })).toMatchObject({ op: "ok", upTo: seqs[3] });
    expect((await get("")).body).toMatchObject({ unread: 1, readUpTo: seqs[3] });
    expect(await first.request({ op: "read", channel: "user:someone-else", upTo: 1 })).toMatchObject({ op: "error", code: "forbidden" });
    // Never past the newest event: both paths answer the clamped mark, and a later event is unread.
    expect(await post(JSON.stringify({ upTo: Number.MAX_SAFE_INTEGER }))).toEqual({ status: 200, body: { upTo: seqs[4] } });
    expect(await first.request({ op: "read", channel, upTo: Number.MAX_SAFE_INTEGER })).toMatchObject({ op: "ok", upTo: seqs[4] });
    await env.publishEvent(channel, `${user}-later`, { text: "later" });
    await first.next((frame) => frame.op === "event" && frame.id === `${user}-later`);
    expect((await get("")).body).toMatchObject({ unread: 1, readUpTo: seqs[4] });

    const badRequest = { error: { code: "bad_request", message: expect.any(String) } };
    for (const query of ["?after=abc", "?after=-1", "?limit=0", "?limit=100000", "?limit=1.5"]) {
      expect(await get(query), query).toEqual({ status: 400, body: badRequest });
    }
    for (const body of ["not json", "{}", JSON.stringify({ upTo: -1 }), JSON.stringify({ upTo: "3" }), JSON.stringify({ upTo: 1.5 }), "[]"]) {
      expect(await post(body), body).toEqual({ status: 400, body: badRequest });
    }
    const unauthorized = { status: 401, body: { error: { code: "unauthorized", message: expect.any(String) } } };
    expect(await get("", "")).toEqual(unauthorized);
    expect(await get("", "Bearer not-a-jwt")).toEqual(unauthorized);
    expect(await get("", `Bearer ${await signToken({ sub: user, expiresInSec: -60 })}`)).toEqual(unauthorized);
    expect(await post(JSON.stringify({ upTo: 1 }), "")).toEqual(unauthorized);
    expect(await post(JSON.stringify({ upTo: 1 }), `Bearer ${await signToken({ sub: user, secret: "another-secret-that-is-long-enough-0123" })}`)).toEqual(unauthorized);
    const huge = await post(JSON.stringify({ upTo: 1, pad: "x".repeat(70_000) }));
    expect(huge).toEqual({ status: 413, body: { error: { code: "too_large", message: expect.any(String) } } });
    expect((await get("")).body).toMatchObject({ readUpTo: seqs[4] });
  });

  it("dead-letters poison events on a durable namespace and still delivers the events around them in order", async () => {
    const user = uniqueId("u9");
    const channel = `user:${user}`;
    const routingKey = `user.${user}.notification.created`;
    const subscriber = await client(user);
    await subscribe(subscriber, channel);
    const watch = await DeadLetterWatch.open(env.rabbitmqUrl);
    const [good1, good2, good3, good4, nul] = eventIds("g", 5) as [string, string, string, string, string];
    await env.publishEvent(channel, good1);
    await env.publisher.publish(routingKey, "this is not json");
    await env.publisher.publish(routingKey, { id: uniqueId("nodata"), type: "notification.created" });
    await env.publishEvent(channel, good2);
    // PostgreSQL's jsonb refuses \u0000; in one burst so the store must isolate it from its batch.
    await Promise.all([env.publishEvent(channel, good3), env.publishEvent(channel, nul, { text: "a\u0000b" }), env.publishEvent(channel, good4)]);
    await eventsOf(subscriber, channel, 4);
    await waitFor(() => watch.letters.length >= 3, SLOW_MS, "three dead letters");
    await subscriber.request({ op: "ping" });
    expectExactlyOnceInOrder(subscriber.events(channel), [good1, good2, good3, good4]);
    expect(watch.letters.map((letter) => letter.routingKey)).toEqual([routingKey, routingKey, routingKey]);
    expect(watch.letters.map((letter) => letter.reason).sort()).toEqual(["invalid_envelope", "not_json", "store_rejected"]);
    expect(watch.letters.find((letter) => letter.reason === "store_rejected")?.body).toContain(nul);
    expect((await env.rows(channel)).map((row) => row.id)).toEqual([good1, good2, good3, good4]);
    await watch.close();
  });
});

describe("durable delivery under retention", { timeout: 90_000 }, () => {
  let env: DurableEnv;
  let worker: TestGateway;
  let gateway: TestGateway;

  beforeAll(async () => {
    env = await DurableEnv.create("durable_ret");
    ({ worker, gateway } = await startPair(env, { RETENTION_MAX_PER_CHANNEL: "3", RETENTION_INTERVAL_MS: "1000" }));
  }, 60_000);

  afterAll(async () => {
    await gateway?.stop();
    await worker?.stop();
    await env?.close();
  }, 60_000);

  it("answers a since older than what is retained with recovered: false and the events that remain", async () => {
    const user = uniqueId("u8");
    const channel = `user:${user}`;
    const live = await connect(gateway, user);
    await subscribe(live, channel);
    const ids = eventIds("r", 8);
    for (const id of ids) await env.publishEvent(channel, id);
    const seqs = (await eventsOf(live, channel, ids.length)).map((frame) => frame.seq as number);
    await waitFor(async () => (await env.rows(channel)).length === 3, SLOW_MS, "retention down to 3 events");
    const cases = [
      { since: seqs[0]!, recovered: false, expected: ids.slice(5) },
      { since: 0, recovered: false, expected: ids.slice(5) },
      { since: seqs[4]!, recovered: true, expected: ids.slice(5) },
      { since: seqs[6]!, recovered: true, expected: ids.slice(7) },
    ];
    for (const { since, recovered, expected } of cases) {
      const recovering = await connect(gateway, user);
      expect(await subscribe(recovering, channel, since)).toMatchObject({ recovered, missed: expected.length });
      await recovering.request({ op: "ping" });
      expectExactlyOnceInOrder(recovering.events(channel), expected);
      recovering.close();
    }
    live.close();
  });
});
