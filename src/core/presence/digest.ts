/**
 * An order-free digest of a set of (key, user) entries, kept up to date in
 * O(1) per change: two independent 32-bit FNV-1a hashes of each entry are
 * XORed into two accumulators (XOR is its own inverse, so a removal undoes
 * an add), plus the entry count. Two nodes that hold the same set compute the
 * same digest whatever order the changes came in; a missed delta changes it
 * with probability 1 - 2^-64.
 */
export class EntryDigest {
  private count = 0;
  private a = 0;
  private b = 0;

  toggle(key: string, user: string, added: boolean): void {
    const text = `${key}\u0000${user}`;
    this.a ^= fnv1a(text, 0x811c9dc5);
    this.b ^= fnv1a(text, 0x01000193);
    this.count += added ? 1 : -1;
  }

  get size(): number {
    return this.count;
  }

  toString(): string {
    return `${this.count}:${(this.a >>> 0).toString(16)}:${(this.b >>> 0).toString(16)}`;
  }
}

export const EMPTY_DIGEST = new EntryDigest().toString();

function fnv1a(text: string, basis: number): number {
  let hash = basis;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}
