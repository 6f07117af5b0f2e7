/**
 * How an event of a `pusherSeq` namespace carries its `seq` to Pusher
 * subscribers (docs/pusher.md, "Recovery"): inside `data`, the only part of
 * a Pusher event every SDK hands the app's callback.
 *
 * - A JSON object without members named `__seq` or `__data` gets one more
 *   member, `"__seq": <seq>`: callbacks that read their own fields keep
 *   working unchanged, and pusher-js still decrypts an encrypted channel's
 *   `{nonce, ciphertext}`.
 * - Anything else (a string, a number, an array, null, an object that uses
 *   either name itself) is wrapped as `{"__seq": <seq>, "__data": <data>}`.
 *
 * Reversible without collisions: data with a `__data` member is a wrapping
 * (an object of the first kind never has one), so its `__data` is the data;
 * otherwise the data is the object without `__seq`.
 */
export const SEQ_MEMBER = "__seq";
export const WRAPPED_MEMBER = "__data";

export function dataWithSeq(data: unknown, seq: number): Record<string, unknown> {
  const extendable = typeof data === "object" && data !== null && !Array.isArray(data) && !(SEQ_MEMBER in data) && !(WRAPPED_MEMBER in data);
  return extendable ? { ...data, [SEQ_MEMBER]: seq } : { [SEQ_MEMBER]: seq, [WRAPPED_MEMBER]: data };
}
