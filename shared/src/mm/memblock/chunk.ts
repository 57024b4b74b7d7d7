/*
 * Storage for one run of consecutive memblock regions as parallel typed
 * arrays (struct of arrays): no object per region, so moving regions is a
 * plain memory copy and a million regions cost the garbage collector
 * nothing. Addresses are safe integers, exact in a Float64Array.
 */
import type { MemblockRegion } from "./types.js";

/** Moves of at most this many regions are done element by element in insert() and remove(). */
const SHORT_MOVE = 16;

/*
 * The three columns of @cap regions over one ArrayBuffer: one allocation
 * instead of three (a successor's 1M reserves make ~1,000 chunks).
 */
function columns(cap: number): [Float64Array, Float64Array, Int32Array] {
  const buf = new ArrayBuffer(cap * 20);
  return [new Float64Array(buf, 0, cap), new Float64Array(buf, cap * 8, cap), new Int32Array(buf, cap * 16, cap)];
}

/**
 * Chunk - regions [0, len) of one run, in the order of the kernel's array.
 * Capacity grows by doubling; MemblockType keeps len within its bounds.
 */
export class Chunk {
  base: Float64Array;
  size: Float64Array;
  flags: Int32Array;
  len = 0;

  constructor(capacity: number) {
    [this.base, this.size, this.flags] = columns(capacity);
  }

  /** end - end of region @i. */
  end(i: number): number {
    return this.base[i]! + this.size[i]!;
  }

  /** get - a copy of region @i. */
  get(i: number): MemblockRegion {
    return { base: this.base[i]!, size: this.size[i]!, flags: this.flags[i]! };
  }

  private reserve(capacity: number): void {
    if (capacity <= this.base.length) return;
    const [base, size, flags] = columns(Math.max(capacity, this.base.length * 2));
    base.set(this.base.subarray(0, this.len));
    size.set(this.size.subarray(0, this.len));
    flags.set(this.flags.subarray(0, this.len));
    this.base = base;
    this.size = size;
    this.flags = flags;
  }

  /** splice - replace entries [from, to) by @items. */
  splice(from: number, to: number, items: readonly MemblockRegion[]): void {
    const k = items.length;
    const newLen = this.len - (to - from) + k;
    this.reserve(newLen);
    if (to !== from + k && to < this.len) {
      this.base.copyWithin(from + k, to, this.len);
      this.size.copyWithin(from + k, to, this.len);
      this.flags.copyWithin(from + k, to, this.len);
    }
    for (let j = 0; j < k; j++) {
      const r = items[j]!;
      this.base[from + j] = r.base;
      this.size[from + j] = r.size;
      this.flags[from + j] = r.flags;
    }
    this.len = newLen;
  }

  /** push - append one region. */
  push(base: number, size: number, flags: number): void {
    this.reserve(this.len + 1);
    this.base[this.len] = base;
    this.size[this.len] = size;
    this.flags[this.len] = flags;
    this.len++;
  }

  /** insert - put one region at index @at, moving the ones after it up by one. */
  insert(at: number, base: number, size: number, flags: number): void {
    this.reserve(this.len + 1);
    const { base: b, size: s, flags: f } = this;
    if (this.len - at <= SHORT_MOVE) {
      // A few regions (the early allocations above a successor's reserves): a loop beats three copyWithin calls.
      for (let j = this.len; j > at; j--) {
        b[j] = b[j - 1]!;
        s[j] = s[j - 1]!;
        f[j] = f[j - 1]!;
      }
    } else {
      b.copyWithin(at + 1, at, this.len);
      s.copyWithin(at + 1, at, this.len);
      f.copyWithin(at + 1, at, this.len);
    }
    this.base[at] = base;
    this.size[at] = size;
    this.flags[at] = flags;
    this.len++;
  }

  /**
   * insertRun - put regions [@from, @from + @n) of the columns @base, @size,
   * @flags at index @at, moving the ones after it up by @n: @n single
   * insert()s at @at, @at + 1, ... in one move.
   */
  insertRun(at: number, base: Float64Array, size: Float64Array, flags: Int32Array, from: number, n: number): void {
    this.reserve(this.len + n);
    const { base: b, size: s, flags: f } = this;
    if (this.len - at <= SHORT_MOVE) {
      for (let j = this.len - 1; j >= at; j--) {
        b[j + n] = b[j]!;
        s[j + n] = s[j]!;
        f[j + n] = f[j]!;
      }
    } else {
      b.copyWithin(at + n, at, this.len);
      s.copyWithin(at + n, at, this.len);
      f.copyWithin(at + n, at, this.len);
    }
    b.set(base.subarray(from, from + n), at);
    s.set(size.subarray(from, from + n), at);
    f.set(flags.subarray(from, from + n), at);
    this.len += n;
  }

  /** remove - drop the region at index @at, moving the ones after it down by one. */
  remove(at: number): void {
    const { base: b, size: s, flags: f } = this;
    if (this.len - at <= SHORT_MOVE) {
      for (let j = at + 1; j < this.len; j++) {
        b[j - 1] = b[j]!;
        s[j - 1] = s[j]!;
        f[j - 1] = f[j]!;
      }
    } else {
      b.copyWithin(at, at + 1, this.len);
      s.copyWithin(at, at + 1, this.len);
      f.copyWithin(at, at + 1, this.len);
    }
    this.len--;
  }

  /** appendFrom - append entries [from, to) of @other. */
  appendFrom(other: Chunk, from: number, to: number): void {
    const n = to - from;
    this.reserve(this.len + n);
    this.base.set(other.base.subarray(from, to), this.len);
    this.size.set(other.size.subarray(from, to), this.len);
    this.flags.set(other.flags.subarray(from, to), this.len);
    this.len += n;
  }
}
