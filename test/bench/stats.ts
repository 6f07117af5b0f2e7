/**
 * Latency histogram for the load generators.
 *
 * Values are recorded in whole microseconds into log-linear buckets (the HDR
 * histogram layout with 7 significant bits): exact below 128 µs, then 64
 * buckets per power of two, so any reported value is within 1/128 (< 0.8 %) of
 * the true one. Fixed memory (a few KiB) regardless of sample count, and
 * mergeable by adding counts, which is what lets each client process keep its
 * own histogram and the runner add them up: percentiles of merged samples, not
 * an average of per-process percentiles (which would be meaningless).
 */

const SUB_BUCKETS = 64;
/** 2^26 µs ≈ 67 s: anything slower is clamped into the last bucket. */
const MAX_EXPONENT = 20;
const BUCKET_COUNT = SUB_BUCKETS * (MAX_EXPONENT + 2);

/** `[bucket index, count]` pairs with a non-zero count: what crosses the IPC channel. */
export type SparseHistogram = [number, number][];

export class LatencyHistogram {
  private readonly counts = new Float64Array(BUCKET_COUNT);
  private total = 0;
  /** Receipts stamped before their send time: cross-process clock skew, clamped to 0. */
  negative = 0;

  recordMs(ms: number): void {
    if (ms < 0) {
      this.negative += 1;
      ms = 0;
    }
    this.counts[bucketOf(Math.round(ms * 1000))]! += 1;
    this.total += 1;
  }

  get count(): number {
    return this.total;
  }

  toSparse(): SparseHistogram {
    const out: SparseHistogram = [];
    this.counts.forEach((count, index) => {
      if (count > 0) out.push([index, count]);
    });
    return out;
  }

  addSparse(sparse: SparseHistogram): void {
    for (const [index, count] of sparse) {
      this.counts[index]! += count;
      this.total += count;
    }
  }

  /** Nearest-rank percentile in milliseconds (`q` in 0..1); `null` with no samples. */
  percentileMs(q: number): number | null {
    if (this.total === 0) return null;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let index = 0; index < BUCKET_COUNT; index += 1) {
      seen += this.counts[index]!;
      if (seen >= rank) return valueOf(index) / 1000;
    }
    return valueOf(BUCKET_COUNT - 1) / 1000;
  }
}

function bucketOf(micros: number): number {
  if (micros < 2 * SUB_BUCKETS) return micros;
  const exponent = Math.min(31 - Math.clz32(micros) - 6, MAX_EXPONENT);
  const sub = Math.min(micros >>> exponent, 2 * SUB_BUCKETS - 1);
  return SUB_BUCKETS * exponent + sub;
}

/** Midpoint of a bucket, in µs. */
function valueOf(index: number): number {
  if (index < 2 * SUB_BUCKETS) return index;
  const exponent = Math.floor(index / SUB_BUCKETS) - 1;
  const sub = index - SUB_BUCKETS * exponent;
  return sub * 2 ** exponent + 2 ** (exponent - 1);
}

/** Round for display and JSON: 3 significant decimals is already below the histogram's precision. */
export function round(value: number | null, digits = 3): number | null {
  if (value === null || !Number.isFinite(value)) return null;
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
