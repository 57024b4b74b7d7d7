/*
 * The bitmaps formats' tracker: mainline's struct kho_mem_track
 * (kernel/kexec_handover.c at 00c010e130e58301db2ea0cec1eadc931e1cb8cf and
 * a4a508df2aa34f8650afde54ea804321c618f45f), one sparse map per order (the
 * `orders` xarray) of PRESERVE_BITS-bit bitmaps; a block of @order at @pfn
 * is bit (pfn >> order) % PRESERVE_BITS of bitmap (pfn >> order) /
 * PRESERVE_BITS. kho_preserve_folio sets one bit at the folio's order;
 * kho_preserve_phys splits its range with khoPhysBlocks().
 *
 * Where it differs from the kernel's (and from KhoMemTrack):
 *  - per-range data cannot be carried: every block's data is
 *    khoDataFolio(order), and a phys range comes back as its blocks;
 *  - the kernel never checks overlap; khosim keeps KhoMemTrack's EEXIST for
 *    a block overlapping a preserved block of another order (so two
 *    overlapping phys ranges whose splits differ conflict); the same block
 *    again is harmless;
 *  - unpreserve clears every block wholly inside the range and splits a
 *    block straddling either end (a folio too, where KhoMemTrack says
 *    EINVAL; the kernel's __kho_unpreserve() leaves such a block preserved).
 *    Like the kernel, a bitmap once allocated is kept (and serialized).
 */
import { PAGE_SIZE } from "../../../abi/page.js";
import { PRESERVE_BITS_6_16 } from "../../../abi/bitmaps.js";
import { khoDataFolio } from "../../../abi/ranges.js";
import { hex } from "../../../lib/bytes.js";
import { KHO_TRACK_MAX_ORDER, KhoTrackError, khoCheckRange, khoPhysBlocks, type KhoMemRange } from "../../track.js";
import type { KhoTracker } from "../types.js";

/** 2 ** i for every shift used here (exact doubles). */
export const POW2: readonly number[] = Array.from({ length: 128 }, (_, i) => 2 ** i);

/* 1 / (PAGE_SIZE << order) for every order the tracker accepts: exact powers of two. */
const INV_FOLIO = new Float64Array(KHO_TRACK_MAX_ORDER + 1).map((_, o) => 1 / (PAGE_SIZE * 2 ** o));

/* Bits set in each byte value. */
const POP8 = new Uint8Array(256);
for (let i = 1; i < 256; i++) POP8[i] = (i & 1) + POP8[i >> 1]!;

/* The first set bit in [from, to) of @bm, or -1. */
function scanFirst(bm: Uint8Array, from: number, to: number): number {
  let b = from;
  while (b < to && (b & 7) !== 0) {
    if (bm[b >>> 3]! & (1 << (b & 7))) return b;
    b++;
  }
  while (b + 8 <= to) {
    const v = bm[b >>> 3]!;
    if (v !== 0) return b + 31 - Math.clz32(v & -v);
    b += 8;
  }
  for (; b < to; b++) if (bm[b >>> 3]! & (1 << (b & 7))) return b;
  return -1;
}

/* Clear bits [from, to) of @bm; returns how many were set. */
function clearRange(bm: Uint8Array, from: number, to: number): number {
  let n = 0;
  let b = from;
  while (b < to && (b & 7) !== 0) {
    const m = 1 << (b & 7);
    if (bm[b >>> 3]! & m) {
      bm[b >>> 3] = bm[b >>> 3]! & ~m;
      n++;
    }
    b++;
  }
  while (b + 8 <= to) {
    n += POP8[bm[b >>> 3]!]!;
    bm[b >>> 3] = 0;
    b += 8;
  }
  for (; b < to; b++) {
    const m = 1 << (b & 7);
    if (bm[b >>> 3]! & m) {
      bm[b >>> 3] = bm[b >>> 3]! & ~m;
      n++;
    }
  }
  return n;
}

/** forEachRun - call @run(first, end) for each maximal run of set bits among the first @nbits of @bm. */
export function forEachRun(bm: Uint8Array, nbits: number, run: (first: number, end: number) => void): void {
  let start = -1;
  const nbytes = nbits >>> 3;
  for (let i = 0; i < nbytes; i++) {
    const v = bm[i]!;
    if (v === 0) {
      if (start >= 0) {
        run(start, i * 8);
        start = -1;
      }
    } else if (v === 0xff) {
      if (start < 0) start = i * 8;
    } else {
      for (let k = 0; k < 8; k++) {
        if (v & (1 << k)) {
          if (start < 0) start = i * 8 + k;
        } else if (start >= 0) {
          run(start, i * 8 + k);
          start = -1;
        }
      }
    }
  }
  if (start >= 0) run(start, nbits);
}

/** popcount - set bits of @bm. */
export function popcount(bm: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < bm.length; i++) n += POP8[bm[i]!]!;
  return n;
}

function fmtBlock(pfn: number, order: number): string {
  const start = pfn * PAGE_SIZE;
  return `order-${order} block [${hex(start)}, ${hex(start + PAGE_SIZE * POW2[order]!)})`;
}

/** One bitmap of the tracker, in serialization (walk) order. */
export interface KhoBitmapEntry {
  order: number;
  /** Bitmap index: phys_start = (index * PRESERVE_BITS) << (order + PAGE_SHIFT). */
  index: number;
  /** The bitmap itself (PRESERVE_BITS / 8 bytes, kernel bit order). */
  bits: Uint8Array;
}

/**
 * struct kho_mem_track - per-order sparse bitmaps of preserved blocks.
 *
 * State is one Uint8Array of PRESERVE_BITS / 8 bytes per bitmap ever
 * touched, never anything per page of RAM: 48 GiB of contiguous order-0
 * folios is 3072 bitmaps of 512 bytes (1.5 MiB). Methods throw KhoTrackError
 * (EINVAL, EEXIST) and leave the tracker unchanged on failure.
 */
export class KhoBitmapTrack implements KhoTracker {
  private readonly bmBytes: number;
  /* 1 / preserveBits (a power of two: exact), so that a bitmap index is a multiply. */
  private readonly invBits: number;
  /* orders[o]: bitmap index -> bitmap (kho_mem_phys.phys_bits); undefined until order o is first set. */
  private readonly orders: (Map<number, Uint8Array> | undefined)[] = new Array<Map<number, Uint8Array> | undefined>(KHO_TRACK_MAX_ORDER + 1).fill(undefined);
  /* Set bits per order. */
  private readonly setBits: number[] = new Array<number>(KHO_TRACK_MAX_ORDER + 1).fill(0);
  /* Orders with at least one set bit, ascending: the only ones a block can conflict with. */
  private live: number[] = [];
  private total = 0;
  private nBitmaps = 0;
  /* The bitmap the last set bit went to. */
  private cOrder = -1;
  private cIndex = -1;
  private cBits: Uint8Array | undefined;
  /*
   * The folio after the last one kho_preserve_folio() set, while cOrder is
   * the only live order: its address (-1 when none), its bit in cBits, its size.
   */
  private nextPhys = -1;
  private nextBit = 0;
  private nextSize = 0;

  constructor(readonly preserveBits: number = PRESERVE_BITS_6_16) {
    if (!Number.isInteger(preserveBits) || preserveBits <= 0 || preserveBits % 8 !== 0 || (preserveBits & (preserveBits - 1)) !== 0) {
      throw new RangeError(`PRESERVE_BITS ${preserveBits} is not a power of two multiple of 8`);
    }
    this.bmBytes = preserveBits / 8;
    this.invBits = 1 / preserveBits;
  }

  /** Bytes preserved. */
  get totalBytes(): number {
    return this.total;
  }

  /** Number of set bits: the blocks the successor will memblock_reserve(). */
  get blockCount(): number {
    let n = 0;
    for (const o of this.live) n += this.setBits[o]!;
    return n;
  }

  /** Number of bitmaps allocated (including any whose bits were all cleared again). */
  get bitmapCount(): number {
    return this.nBitmaps;
  }

  /** True when the block of @order at @phys is preserved (its bit is set). */
  hasBlock(phys: number, order: number): boolean {
    const hi = phys / PAGE_SIZE / POW2[order]!;
    return Number.isSafeInteger(hi) && hi >= 0 && this.testBit(order, hi);
  }

  /** True when any byte of [@addr, @addr + @size) (page aligned) lies in a preserved block. */
  intersects(addr: number, size: number): boolean {
    const p0 = Math.floor(addr / PAGE_SIZE);
    const p1 = Math.ceil((addr + size) / PAGE_SIZE);
    for (const o of this.live) {
      const s = POW2[o]!;
      let hit = false;
      this.forBitmapsIn(o, Math.floor(p0 / s), Math.ceil(p1 / s), (bm, from, to) => (hit = scanFirst(bm, from, to) >= 0));
      if (hit) return true;
    }
    return false;
  }

  /**
   * kho_preserve_folio - preserve one folio of @order at @phys.
   * @phys: aligned to PAGE_SIZE << @order
   * @order: 0..KHO_TRACK_MAX_ORDER
   */
  khoPreserveFolio(phys: number, order: number): void {
    // The next folio of an ascending run: aligned and free of conflicts as the last one was; one bit to set.
    if (phys === this.nextPhys && order === this.cOrder && this.nextBit < this.preserveBits && phys + this.nextSize <= Number.MAX_SAFE_INTEGER) {
      const bit = this.nextBit;
      const bm = this.cBits!;
      const byte = bit >>> 3;
      const m = 1 << (bit & 7);
      const v = bm[byte]!;
      this.nextPhys = phys + this.nextSize;
      this.nextBit = bit + 1;
      if ((v & m) === 0) {
        bm[byte] = v | m;
        this.total += this.nextSize;
        this.setBits[order]!++;
      }
      return;
    }
    // The hot call: checks inline, no allocation unless a bitmap is new.
    const s = order <= KHO_TRACK_MAX_ORDER ? POW2[order] : undefined; // undefined for non-integer or negative orders
    if (s === undefined) throw new KhoTrackError("EINVAL", `folio order ${String(order)} is out of range 0..${KHO_TRACK_MAX_ORDER}`);
    const size = PAGE_SIZE * s;
    // Scaling by a power of two is exact: hi is an integer exactly when phys is size aligned (a multiply, not a divide).
    const hi = phys * INV_FOLIO[order]!;
    if (!(hi >= 0 && Math.floor(hi) === hi && phys + size <= Number.MAX_SAFE_INTEGER)) {
      throw new KhoTrackError("EINVAL", `kho_preserve_folio: folio at ${String(phys)} is not a safe address aligned to its order-${order} folio size ${hex(size)}`);
    }
    const live = this.live;
    if (live.length > 1 || (live.length === 1 && live[0] !== order)) this.checkConflict("kho_preserve_folio", hi * s, order);
    const bit = this.setBit(hi, order);
    if (this.live.length === 1) {
      this.nextPhys = phys + size;
      this.nextBit = bit + 1;
      this.nextSize = size;
    }
  }

  /**
   * kho_preserve_phys - preserve [@phys, @phys + @size) as the aligned
   * power-of-two blocks khoPhysBlocks() gives. All blocks are checked before
   * any is set.
   */
  khoPreservePhys(phys: number, size: number): void {
    this.nextPhys = -1;
    khoCheckRange("kho_preserve_phys", phys, size);
    const blocks = khoPhysBlocks(phys / PAGE_SIZE, (phys + size) / PAGE_SIZE);
    for (const b of blocks) this.checkConflict("kho_preserve_phys", b.pfn, b.order);
    for (const b of blocks) this.setBit(b.pfn / POW2[b.order]!, b.order);
  }

  /**
   * kho_unpreserve - stop preserving [@addr, @addr + @size): clear every
   * preserved block wholly inside it; a preserved block straddling either end
   * is cleared and what of it lies outside the range is preserved again as
   * the blocks kho_preserve_phys() would give those pieces. The bitmaps
   * cannot tell a folio from a phys range, so cutting a folio splits it too
   * (KhoMemTrack refuses that; callers that track folios refuse it first).
   * Unpreserving what is not preserved is harmless.
   */
  khoUnpreserve(addr: number, size: number): void {
    khoCheckRange("kho_unpreserve", addr, size);
    const p0 = addr / PAGE_SIZE;
    const p1 = (addr + size) / PAGE_SIZE;
    // Blocks cut by either end (both ends may cut the same block).
    const cut: { pfn: number; order: number }[] = [];
    for (const o of this.live) {
      const s = POW2[o]!;
      for (const at of [p0, p1]) {
        if (at % s === 0) continue;
        const b = Math.floor(at / s);
        if (this.testBit(o, b) && !cut.some((c) => c.order === o && c.pfn === b * s)) cut.push({ pfn: b * s, order: o });
      }
    }
    for (const c of cut) this.clearBlocks(c.order, c.pfn / POW2[c.order]!, c.pfn / POW2[c.order]! + 1);
    for (const o of [...this.live]) {
      const s = POW2[o]!;
      this.clearBlocks(o, Math.ceil(p0 / s), Math.floor(p1 / s));
    }
    // The pieces of cut blocks outside [p0, p1): inside their old block, so nothing can conflict.
    for (const c of cut) {
      const end = c.pfn + POW2[c.order]!;
      if (c.pfn < p0) for (const b of khoPhysBlocks(c.pfn, Math.min(p0, end))) this.setBit(b.pfn / POW2[b.order]!, b.order);
      if (p1 < end) for (const b of khoPhysBlocks(Math.max(p1, c.pfn), end)) this.setBit(b.pfn / POW2[b.order]!, b.order);
    }
  }

  /* Clear block indices [@lo, @hi) of @order. */
  private clearBlocks(order: number, lo: number, hi: number): void {
    this.nextPhys = -1;
    if (lo >= hi) return;
    let cleared = 0;
    this.forBitmapsIn(order, lo, hi, (bm, from, to) => {
      cleared += clearRange(bm, from, to);
      return false;
    });
    if (cleared > 0) {
      this.total -= cleared * POW2[order]! * PAGE_SIZE;
      this.setBits[order] = this.setBits[order]! - cleared;
      if (this.setBits[order] === 0) this.live = this.live.filter((x) => x !== order);
    }
  }

  /** kho_unpreserve_phys - see khoUnpreserve. */
  khoUnpreservePhys(phys: number, size: number): void {
    this.khoUnpreserve(phys, size);
  }

  /** kho_unpreserve_folio - stop preserving the folio of @order at @phys (and anything inside it). */
  khoUnpreserveFolio(phys: number, order: number): void {
    if (!Number.isInteger(order) || order < 0 || order > KHO_TRACK_MAX_ORDER) {
      throw new KhoTrackError("EINVAL", `folio order ${String(order)} is out of range 0..${KHO_TRACK_MAX_ORDER}`);
    }
    const size = PAGE_SIZE * POW2[order]!;
    khoCheckRange("kho_unpreserve_folio", phys, size);
    if (phys % size !== 0) throw new KhoTrackError("EINVAL", `folio at ${hex(phys)} is not aligned to its order-${order} folio size ${hex(size)}`);
    this.khoUnpreserve(phys, size);
  }

  /** Preserved memory as maximal runs of equal data (one order each), ascending. */
  ranges(): KhoMemRange[] {
    const runs: KhoMemRange[] = [];
    for (const o of this.live) {
      const map = this.orders[o]!;
      const scale = POW2[o]! * PAGE_SIZE;
      const data = khoDataFolio(o);
      let last: KhoMemRange | undefined;
      for (const idx of [...map.keys()].sort((a, b) => a - b)) {
        const base = idx * this.preserveBits;
        forEachRun(map.get(idx)!, this.preserveBits, (b0, b1) => {
          const start = (base + b0) * scale;
          const end = (base + b1) * scale;
          if (last !== undefined && last.start + last.size === start) {
            last.size = end - last.start;
          } else {
            last = { start, size: end - start, data };
            runs.push(last);
          }
        });
      }
    }
    // Blocks of different orders never overlap; runs of different orders never merge (different data).
    return runs.sort((a, b) => a.start - b.start);
  }

  /** Every bitmap in kho_mem_serialize's order: orders ascending, then index ascending. */
  bitmapsInWalkOrder(): KhoBitmapEntry[] {
    const out: KhoBitmapEntry[] = [];
    this.orders.forEach((map, order) => {
      if (map === undefined) return;
      for (const index of [...map.keys()].sort((a, b) => a - b)) out.push({ order, index, bits: map.get(index)! });
    });
    return out;
  }

  /* Set bit @hi (pfn >> order) of @order (no checks); returns its index in the (now cached) bitmap. */
  private setBit(hi: number, order: number): number {
    const B = this.preserveBits;
    let idx: number;
    let bit: number;
    if (hi < 0x80000000) {
      idx = (hi * this.invBits) | 0;
      bit = hi & (B - 1);
    } else {
      idx = Math.floor(hi / B);
      bit = hi - idx * B;
    }
    let bm = this.cBits;
    if (order !== this.cOrder || idx !== this.cIndex || bm === undefined) bm = this.lookup(order, idx);
    const byte = bit >>> 3;
    const m = 1 << (bit & 7);
    const v = bm[byte]!;
    if ((v & m) === 0) {
      bm[byte] = v | m;
      this.total += PAGE_SIZE * POW2[order]!;
      if (this.setBits[order]!++ === 0) {
        this.live = [...this.live, order].sort((a, b) => a - b);
        this.nextPhys = -1;
      }
    }
    return bit;
  }

  /* The bitmap @idx of @order, allocated on first use; becomes the cached one. */
  private lookup(order: number, idx: number): Uint8Array {
    let map = this.orders[order];
    if (map === undefined) {
      map = new Map();
      this.orders[order] = map;
    }
    let bm = map.get(idx);
    if (bm === undefined) {
      bm = new Uint8Array(this.bmBytes);
      map.set(idx, bm);
      this.nBitmaps++;
    }
    this.cOrder = order;
    this.cIndex = idx;
    this.cBits = bm;
    this.nextPhys = -1;
    return bm;
  }

  /* Is bit @hi (a block index: pfn >> order) of @order set? */
  private testBit(order: number, hi: number): boolean {
    const map = this.orders[order];
    if (map === undefined) return false;
    const idx = Math.floor(hi / this.preserveBits);
    const bm = map.get(idx);
    if (bm === undefined) return false;
    const bit = hi - idx * this.preserveBits;
    return (bm[bit >>> 3]! & (1 << (bit & 7))) !== 0;
  }

  /*
   * Call @fn(bitmap, from, to) for the part [from, to) of each existing
   * bitmap of @order that block indices [@lo, @hi) fall in, ascending; stop
   * when @fn returns true. Visits existing bitmaps only: looks indices up
   * one by one when the span is small, otherwise walks the map.
   */
  private forBitmapsIn(order: number, lo: number, hi: number, fn: (bm: Uint8Array, from: number, to: number, idx: number) => boolean): void {
    const map = this.orders[order];
    if (map === undefined || lo >= hi) return;
    const B = this.preserveBits;
    const iLo = Math.floor(lo / B);
    const iHi = Math.floor((hi - 1) / B);
    const part = (idx: number, bm: Uint8Array): boolean => {
      const base = idx * B;
      return fn(bm, Math.max(lo, base) - base, Math.min(hi, base + B) - base, idx);
    };
    if (iHi - iLo + 1 <= map.size) {
      for (let idx = iLo; idx <= iHi; idx++) {
        const bm = map.get(idx);
        if (bm !== undefined && part(idx, bm)) return;
      }
      return;
    }
    const keys = [...map.keys()].filter((k) => k >= iLo && k <= iHi).sort((a, b) => a - b);
    for (const idx of keys) if (part(idx, map.get(idx)!)) return;
  }

  /* EEXIST when the block of @order at @pfn overlaps a preserved block of another order. */
  private checkConflict(fn: string, pfn: number, order: number): void {
    for (const o of this.live) {
      if (o === order) continue;
      if (o > order) {
        const b = Math.floor(pfn / POW2[o]!);
        if (this.testBit(o, b)) {
          throw new KhoTrackError("EEXIST", `${fn}: ${fmtBlock(pfn, order)} overlaps preserved ${fmtBlock(b * POW2[o]!, o)}`);
        }
        continue;
      }
      const lo = pfn / POW2[o]!;
      const hi = lo + POW2[order - o]!;
      let found = -1;
      this.forBitmapsIn(o, lo, hi, (bm, from, to, idx) => {
        const f = scanFirst(bm, from, to);
        if (f >= 0) found = idx * this.preserveBits + f;
        return f >= 0;
      });
      if (found >= 0) {
        throw new KhoTrackError("EEXIST", `${fn}: ${fmtBlock(pfn, order)} overlaps preserved ${fmtBlock(found * POW2[o]!, o)}`);
      }
    }
  }
}
