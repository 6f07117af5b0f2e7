import { describe, expect, it } from "vitest";
import { BatchPump, type BatchSource } from "../../src/core/batch-pump.js";
import { FakeClock } from "../support/fake-clock.js";

const MAX_BATCH = 3;
const WAIT_MS = 5;
const RETRY_MS = 100;

class ArraySource implements BatchSource<number> {
  items: Array<{ value: number; at: number }> = [];
  constructor(private readonly clock: FakeClock) {}
  get size(): number {
    return this.items.length;
  }
  get firstArrivalMs(): number | undefined {
    return this.items[0]?.at;
  }
  take(max: number): number[] {
    return this.items.splice(0, max).map((item) => item.value);
  }
  push(...values: number[]): void {
    for (const value of values) this.items.push({ value, at: this.clock.monotonic() });
  }
}

function setUp(run: (batch: number[]) => Promise<void>) {
  const clock = new FakeClock();
  const source = new ArraySource(clock);
  const pump = new BatchPump<number>({ clock, source, maxBatch: MAX_BATCH, maxBatchWaitMs: WAIT_MS, retryDelayMs: () => RETRY_MS, run });
  pump.start();
  const add = (...values: number[]): void => {
    source.push(...values);
    pump.wake();
  };
  return { clock, source, pump, add };
}

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("BatchPump", () => {
  it("holds a lone item for maxBatchWaitMs, then sends what arrived meanwhile", async () => {
    const batches: number[][] = [];
    const { clock, add } = setUp(async (batch) => void batches.push(batch));
    add(1);
    clock.advance(WAIT_MS - 1);
    add(2);
    expect(batches).toEqual([]);
    clock.advance(1);
    expect(batches).toEqual([[1, 2]]);
  });

  it("sends a full batch at once and never runs two batches together", async () => {
    const batches: number[][] = [];
    let finish = (): void => {};
    const { add } = setUp((batch) => {
      batches.push(batch);
      return new Promise((resolve) => {
        finish = resolve;
      });
    });
    add(1, 2, 3, 4, 5, 6, 7);
    expect(batches).toEqual([[1, 2, 3]]);
    finish();
    await flush();
    expect(batches).toEqual([[1, 2, 3], [4, 5, 6]]);
  });

  it("waits the retry delay after a failed batch", async () => {
    const batches: number[][] = [];
    const { clock, source, add } = setUp(async (batch) => {
      batches.push(batch);
      if (batches.length === 1) {
        source.items.unshift(...batch.map((value) => ({ value, at: clock.monotonic() })));
        throw new Error("store down");
      }
    });
    add(1, 2, 3);
    await flush();
    expect(batches).toEqual([[1, 2, 3]]);
    clock.advance(RETRY_MS - 1);
    expect(batches.length).toBe(1);
    clock.advance(1);
    expect(batches).toEqual([[1, 2, 3], [1, 2, 3]]);
  });

  it("halt() resolves false while the batch in flight outlasts the timeout", async () => {
    const { clock, pump, add } = setUp(() => new Promise(() => {}));
    add(1, 2, 3);
    const halted = pump.halt(50);
    clock.advance(50);
    expect(await halted).toBe(false);
  });
});
