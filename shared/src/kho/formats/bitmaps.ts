/*
 * The "bitmaps" formats: mainline Linux's KHO memory preservation, byte for
 * byte as an x86-64 kernel (4 KiB pages, little-endian) lays it out.
 *
 * Checked against kernel/kexec_handover.c of torvalds/linux:
 *  - commit 00c010e130e58301db2ea0cec1eadc931e1cb8cf (the 6.16 code:
 *    PRESERVE_BITS = 512 * 8, bitmaps from kzalloc(512), no page magic);
 *  - commit a4a508df2aa34f8650afde54ea804321c618f45f (late 2025:
 *    PRESERVE_BITS = PAGE_SIZE * 8, bitmaps from get_zeroed_page(), same
 *    chunk layout and FDT).
 *
 * Tracker (struct kho_mem_track): one sparse map per order (the `orders`
 * xarray) of bitmaps (struct kho_mem_phys_bits, PRESERVE_BITS bits each); a
 * block of @order at @pfn is bit (pfn >> order) % PRESERVE_BITS of bitmap
 * (pfn >> order) / PRESERVE_BITS. kho_preserve_folio sets one bit at the
 * folio's order; kho_preserve_phys splits its range into aligned power-of-two
 * blocks, order = min(ctz(pfn), ilog2(end_pfn - pfn)), which may exceed
 * MAX_PAGE_ORDER.
 *
 * Serialized (kho_mem_serialize), all little-endian:
 *
 *	struct khoser_mem_chunk {			// one page, 4096 bytes
 *		u64 next;		// @0   phys of the next chunk, 0 ends the list
 *		u32 order;		// @8
 *		u32 num_elms;		// @12  0..255
 *		struct {
 *			u64 phys_start;	// @16 + 16 i: (index * PRESERVE_BITS) << (order + PAGE_SHIFT)
 *			u64 bitmap;	// @24 + 16 i: phys of the kho_mem_phys_bits
 *		} bitmaps[255];	// (4096 - 16) / 16 = 255, no tail
 *	};
 *
 * Chunks follow xa_for_each over the orders (ascending order), and within an
 * order over the bitmaps (ascending index); each order starts a new chunk and
 * a full chunk (255 entries) continues in a new one of the same order. The
 * bitmaps are not copied: the chunk entries point at the tracker's own
 * bitmaps, bit n of a bitmap is bit n % 8 of byte n / 8 (DECLARE_BITMAP,
 * little-endian unsigned longs). Nothing of it is preserved: chunks and
 * bitmaps become free memory once the successor has walked them.
 *
 * The KHO FDT (kho_finalize):
 *
 *	/ {
 *		compatible = "kho-v1";
 *		preserved-memory-map = [u64 LE phys of the first chunk, 0 if none];
 *		khosim,preserve-bits = [u32 LE 32768];	// bitmaps-page only, see below
 *		kho_test {				// kho_add_subtree(), in call order
 *			fdt = [u64 LE phys of the sub-tree];
 *		};
 *	};
 *
 * There is no /preserved-memory node in mainline: the map is a root property,
 * written first (fdt_property_placeholder) so that it precedes the sub-tree
 * nodes. Mainline has no marker telling 512-byte from one-page bitmaps (a
 * kernel only ever reads its own); khosim's successor must tell the two apart
 * from the FDT alone, so "bitmaps-page" adds the root property
 * `khosim,preserve-bits` (u32, native endian like KHO's other values). The
 * 6.16 FDT ("bitmaps") is exactly mainline's.
 *
 * Where the tracker differs from the kernel's (and from KhoMemTrack):
 *  - per-range data cannot be carried: every block's data is
 *    khoDataFolio(order), and a phys range comes back as its blocks;
 *  - the kernel never checks overlap (two orders covering the same page are
 *    both memblock_reserve()d); khosim keeps KhoMemTrack's EEXIST: preserving
 *    a block that overlaps a preserved block of another order fails and
 *    changes nothing. Re-preserving a block of the same order is harmless.
 *    Because phys ranges become blocks, two overlapping phys ranges whose
 *    splits differ (e.g. [0, 16) and [8, 24) pages) conflict, where
 *    KhoMemTrack would merge them;
 *  - unpreserve of [addr, addr + size) clears every block wholly inside it;
 *    a block straddling either end is split: cleared, and its pieces outside
 *    the range preserved again as kho_preserve_phys() would split them. The
 *    bitmaps cannot tell a folio from a phys range, so a folio is split too
 *    where KhoMemTrack says EINVAL (the kernel's own __kho_unpreserve()
 *    clears only bits of the blocks the unpreserved range splits into, so a
 *    sub-range of a preserved block silently stays preserved there). Like the
 *    kernel, a bitmap once allocated is kept (and serialized) even when all
 *    its bits are clear again.
 */
import { PAGE_SHIFT, PAGE_SIZE } from "../../abi/page.js";
import { khoDataFolio } from "../../abi/ranges.js";
import { ByteReader, ByteWriter, hex, u32leBytes, u64leBytes } from "../../lib/bytes.js";
import { FdtWriter, type FdtRo } from "../../fdt/index.js";
import { KhoFdtError, readU64Prop, type KhoSubtree } from "../fdt.js";
import type { PhysMem } from "../../mm/physmem.js";
import { KhoSerializeError } from "../serialize.js";
import { KHO_TRACK_MAX_ORDER, KhoTrackError, khoCheckRange, type KhoMemRange } from "../track.js";
import { KHO_WALK_MAX_ORDER, khoScratchHit, lastRangeAtOrBelow, type KhoWalkContext } from "../walk.js";
import { KhoMetadataError, type AllocPage, type KhoFormat, type KhoFormatName, type KhoFormatWalk, type KhoSerialized, type KhoTracker } from "./types.js";

/** Root compatible of the mainline KHO FDT (6.16 through 6.19). */
export const KHO_BITMAPS_COMPATIBLE = "kho-v1";
/** Root property: u64 LE phys of the first khoser_mem_chunk, 0 when nothing is preserved. */
export const PROP_PRESERVED_MEMORY_MAP = "preserved-memory-map";
/** Sub-tree nodes' property (kho_add_subtree): u64 LE phys of the sub-FDT. */
export const PROP_SUB_FDT = "fdt";
/** khosim's root property marking one-page bitmaps: u32 LE PRESERVE_BITS (32768). Not in mainline. */
export const KHO_BITMAPS_PAGE_MARKER = "khosim,preserve-bits";

/** PRESERVE_BITS in 6.16: 512-byte bitmaps. */
export const PRESERVE_BITS_6_16 = 512 * 8;
/** PRESERVE_BITS from late 2025: one-page bitmaps. */
export const PRESERVE_BITS_PAGE = PAGE_SIZE * 8;

/* struct khoser_mem_chunk_hdr */
export const KHOSER_BM_HDR_SIZE = 16;
export const KHOSER_BM_HDR_NEXT = 0;
export const KHOSER_BM_HDR_ORDER = 8;
export const KHOSER_BM_HDR_NUM_ELMS = 12;
/* struct khoser_mem_bitmap_ptr */
export const KHOSER_BM_PTR_SIZE = 16;
export const KHOSER_BM_PTR_PHYS_START = 0;
export const KHOSER_BM_PTR_BITMAP = 8;
/** KHOSER_BITMAP_SIZE: (4096 - 16) / 16 = 255 entries per chunk. */
export const KHOSER_BITMAPS_PER_CHUNK = Math.floor((PAGE_SIZE - KHOSER_BM_HDR_SIZE) / KHOSER_BM_PTR_SIZE);
/** A chunk is exactly one page. */
export const KHOSER_BM_CHUNK_SIZE = PAGE_SIZE;

/** Byte offset of bitmaps[i] inside a chunk. */
export function khoserBitmapPtrOffset(i: number): number {
  return KHOSER_BM_HDR_SIZE + i * KHOSER_BM_PTR_SIZE;
}

/* 2 ** i for every shift used here (exact doubles). */
const POW2: readonly number[] = Array.from({ length: 128 }, (_, i) => 2 ** i);
const TWO32 = 2 ** 32;
/* A u64's high u32 half is at least this exactly when the u64 is 2^53 or more. */
const HI_2_53 = 2 ** 21;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/* Bits set in each byte value. */
const POP8 = new Uint8Array(256);
for (let i = 1; i < 256; i++) POP8[i] = (i & 1) + POP8[i >> 1]!;

/** count_trailing_zeros() of a non-negative safe integer; 64 for 0 (BITS_PER_LONG). */
export function ctz(n: number): number {
  if (n === 0) return 64;
  const lo = n % TWO32;
  if (lo !== 0) return 31 - Math.clz32(lo & -lo);
  const hi = Math.floor(n / TWO32);
  return 32 + 31 - Math.clz32(hi & -hi);
}

/** ilog2() of a positive safe integer. */
export function ilog2(n: number): number {
  if (n >= TWO32) return 32 + 31 - Math.clz32(Math.floor(n / TWO32));
  return 31 - Math.clz32(n);
}

/**
 * khoPhysBlocks - the blocks kho_preserve_phys() splits pages [@pfn, @endPfn)
 * into: order = min(ctz(pfn), ilog2(end_pfn - pfn)), then pfn += 1 << order.
 */
export function khoPhysBlocks(pfn: number, endPfn: number): { pfn: number; order: number }[] {
  const out: { pfn: number; order: number }[] = [];
  while (pfn < endPfn) {
    const order = Math.min(ctz(pfn), ilog2(endPfn - pfn));
    out.push({ pfn, order });
    pfn += POW2[order]!;
  }
  return out;
}

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

/* Call @run(first, end) for each maximal run of set bits among the first @nbits of @bm. */
function forEachRun(bm: Uint8Array, nbits: number, run: (first: number, end: number) => void): void {
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

function popcount(bm: Uint8Array): number {
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

  constructor(readonly preserveBits: number = PRESERVE_BITS_6_16) {
    if (!Number.isInteger(preserveBits) || preserveBits <= 0 || preserveBits % 8 !== 0 || (preserveBits & (preserveBits - 1)) !== 0) {
      throw new RangeError(`PRESERVE_BITS ${preserveBits} is not a power of two multiple of 8`);
    }
    this.bmBytes = preserveBits / 8;
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
    // The hot call: checks inline, no allocation unless a bitmap is new.
    const s = order <= KHO_TRACK_MAX_ORDER ? POW2[order] : undefined; // undefined for non-integer or negative orders
    if (s === undefined) throw new KhoTrackError("EINVAL", `folio order ${String(order)} is out of range 0..${KHO_TRACK_MAX_ORDER}`);
    const size = PAGE_SIZE * s;
    // Dividing by a power of two is exact: hi is an integer exactly when phys is size aligned.
    const hi = phys / size;
    if (!(hi >= 0 && Math.floor(hi) === hi && phys + size <= MAX_SAFE)) {
      throw new KhoTrackError("EINVAL", `kho_preserve_folio: folio at ${String(phys)} is not a safe address aligned to its order-${order} folio size ${hex(size)}`);
    }
    const live = this.live;
    if (live.length > 1 || (live.length === 1 && live[0] !== order)) this.checkConflict("kho_preserve_folio", hi * s, order);
    this.setBit(hi, order);
  }

  /**
   * kho_preserve_phys - preserve [@phys, @phys + @size) as the aligned
   * power-of-two blocks khoPhysBlocks() gives. All blocks are checked before
   * any is set.
   */
  khoPreservePhys(phys: number, size: number): void {
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

  /* Set bit @hi (pfn >> order) of @order (no checks). */
  private setBit(hi: number, order: number): void {
    const B = this.preserveBits;
    let idx: number;
    let bit: number;
    if (hi < 0x80000000) {
      idx = (hi / B) | 0;
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
      if (this.setBits[order]!++ === 0) this.live = [...this.live, order].sort((a, b) => a - b);
    }
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

/* ---------------------------------------------------------------------- */
/* Serialization                                                          */
/* ---------------------------------------------------------------------- */

/**
 * kho_mem_serialize - write the chunk list for @track into @mem.
 *
 * Allocation, in this order (deterministic for a deterministic allocator):
 *  1. the bitmaps, in walk order. In the kernel they were allocated at
 *     preserve time and stay where they are; khosim gives them their place
 *     now. 6.16: kzalloc(512) comes from the kmalloc-512 slab, objects
 *     512-aligned, several per slab page; khosim packs 8 bitmaps into each
 *     page from @allocPage (an order-0 slab; a real slab may span 2-8
 *     pages, which changes no byte of the format). One-page bitmaps
 *     (get_zeroed_page) take one page each.
 *  2. the chunks, one page each from @allocPage, in list order (new_chunk).
 *
 * metadataPages: chunk pages and bitmap pages in walk order (each chunk, then
 * the bitmap pages its entries reach first), each page once.
 * metadataBytes: the exact allocations: 4096 per chunk + PRESERVE_BITS / 8
 * per bitmap (512 in 6.16, 4096 for one-page bitmaps). A page shared by
 * several 512-byte bitmaps counts 512 per bitmap, not 4096; the unused slots
 * of the last bitmap page are not counted (they belong to the slab).
 */
export function khoBitmapsSerialize(track: KhoBitmapTrack, mem: PhysMem, allocPage: AllocPage): KhoSerialized {
  const list = track.bitmapsInWalkOrder();
  if (list.length === 0) return { root: 0, metadataPages: [], metadataBytes: 0 };
  const bmBytes = track.preserveBits / 8;
  const perPage = Math.max(1, Math.floor(PAGE_SIZE / bmBytes));
  const seenAlloc = new Set<number>();
  const alloc = (what: string, i: number): number => {
    const phys = allocPage();
    // 0 ends the list, so no chunk can live there; a repeat would overwrite metadata.
    if (!Number.isSafeInteger(phys) || phys <= 0 || phys % PAGE_SIZE !== 0 || seenAlloc.has(phys)) {
      throw new KhoSerializeError("EINVAL", i, `kho_mem_serialize: ${what}: allocator returned unusable page ${hex(phys)}`);
    }
    if (track.intersects(phys, PAGE_SIZE)) {
      throw new KhoSerializeError("EINVAL", i, `kho_mem_serialize: ${what}: allocator returned preserved page ${hex(phys)}`);
    }
    seenAlloc.add(phys);
    return phys;
  };

  // 1. The bitmaps, packed perPage to a page.
  const bmPhys: number[] = new Array<number>(list.length);
  let page = 0;
  let buf: Uint8Array | undefined;
  list.forEach((e, i) => {
    const slot = i % perPage;
    if (slot === 0) {
      if (buf !== undefined) mem.write(page, buf);
      page = alloc(`bitmap page ${i / perPage}`, i / perPage);
      buf = new Uint8Array(PAGE_SIZE);
    }
    buf!.set(e.bits, slot * bmBytes);
    bmPhys[i] = page + slot * bmBytes;
  });
  mem.write(page, buf!);

  // 2. The chunks: a new one per order and whenever one is full.
  const chunkFirst: number[] = [];
  list.forEach((e, i) => {
    const f = chunkFirst[chunkFirst.length - 1];
    if (f === undefined || list[f]!.order !== e.order || i - f === KHOSER_BITMAPS_PER_CHUNK) chunkFirst.push(i);
  });
  const chunkPhys = chunkFirst.map((_, c) => alloc(`chunk ${c}`, c));

  const metadataPages: number[] = [];
  const seen = new Set<number>();
  chunkFirst.forEach((first, c) => {
    const end = chunkFirst[c + 1] ?? list.length;
    const b = new Uint8Array(KHOSER_BM_CHUNK_SIZE);
    const w = new ByteWriter(b);
    w.u64le(KHOSER_BM_HDR_NEXT, chunkPhys[c + 1] ?? 0);
    w.u32le(KHOSER_BM_HDR_ORDER, list[first]!.order);
    w.u32le(KHOSER_BM_HDR_NUM_ELMS, end - first);
    metadataPages.push(chunkPhys[c]!);
    for (let i = first; i < end; i++) {
      const e = list[i]!;
      const off = khoserBitmapPtrOffset(i - first);
      w.u64le(off + KHOSER_BM_PTR_PHYS_START, e.index * track.preserveBits * POW2[e.order]! * PAGE_SIZE);
      w.u64le(off + KHOSER_BM_PTR_BITMAP, bmPhys[i]!);
      const pg = bmPhys[i]! - (bmPhys[i]! % PAGE_SIZE);
      if (!seen.has(pg)) {
        seen.add(pg);
        metadataPages.push(pg);
      }
    }
    mem.write(chunkPhys[c]!, b);
  });

  return { root: chunkPhys[0]!, metadataPages, metadataBytes: chunkPhys.length * KHOSER_BM_CHUNK_SIZE + list.length * bmBytes };
}

/* ---------------------------------------------------------------------- */
/* The successor's walk                                                   */
/* ---------------------------------------------------------------------- */

/** What the bitmaps walk found wrong. */
export type BitmapsWalkErrorCode =
  /** A chunk pointer (preserved-memory-map or next) is not page aligned. */
  | "CHUNK_UNALIGNED"
  /** A chunk pointer is 2^53 or more, or its page is not wholly inside RAM. */
  | "CHUNK_OUTSIDE_RAM"
  /** A chunk page overlaps a scratch area. */
  | "CHUNK_IN_SCRATCH"
  /** A next pointer leads to a chunk already walked. */
  | "CHUNK_CYCLE"
  /** More chunks than RAM has pages (a backstop). */
  | "CHUNK_LIMIT"
  /** A chunk page lies inside preserved memory. */
  | "CHUNK_IN_PRESERVED"
  /** hdr.order is above KHO_WALK_MAX_ORDER. */
  | "CHUNK_ORDER"
  /** hdr.num_elms is more than 255. */
  | "NUM_ELMS"
  /** phys_start is not a multiple of PRESERVE_BITS << (order + PAGE_SHIFT). */
  | "START_UNALIGNED"
  /** phys_start is 2^53 or more, or at or past the end of RAM. */
  | "START_OUTSIDE_RAM"
  /** A bitmap pointer is not aligned to the bitmap size (kmalloc-512 objects, pages). */
  | "BITMAP_UNALIGNED"
  /** A bitmap is not wholly inside RAM. */
  | "BITMAP_OUTSIDE_RAM"
  /** A bitmap overlaps a scratch area. */
  | "BITMAP_IN_SCRATCH"
  /** Two entries point at the same bitmap. */
  | "BITMAP_REUSED"
  /** The page holding a bitmap lies inside preserved memory. */
  | "BITMAP_IN_PRESERVED"
  /** A bitmap lies in a chunk page, or a chunk in a bitmap's page. */
  | "METADATA_OVERLAP"
  /** A set bit's block is not wholly inside RAM. */
  | "BLOCK_OUTSIDE_RAM"
  /** A set bit's block overlaps a scratch area. */
  | "BLOCK_IN_SCRATCH"
  /** Two set bits' blocks overlap (across entries or orders). */
  | "BLOCK_OVERLAP";

/** Where a {@link BitmapsWalkError} was found; absent fields do not apply. */
export interface BitmapsWalkErrorWhere {
  /** Index in the list of the chunk holding the bad field (or the bad chunk itself). */
  chunkIndex?: number;
  chunkPhys?: number;
  /** hdr.order of that chunk, once read. */
  order?: number;
  /** bitmaps[i] inside the chunk. */
  entryIndex?: number;
  /** "preserved-memory-map", "next", "order", "num_elms", "phys_start", "bitmap" or "bit". */
  field?: string;
  /** Byte offset of the field inside the chunk page; for field "bit", of the bit's byte inside the bitmap. */
  offset?: number;
  /** For field "bit": the bit number inside the bitmap. */
  bit?: number;
}

/** Thrown by the bitmaps walk on the first invalid value. */
export class BitmapsWalkError extends KhoMetadataError implements BitmapsWalkErrorWhere {
  readonly chunkIndex?: number;
  readonly chunkPhys?: number;
  readonly order?: number;
  readonly entryIndex?: number;
  readonly field?: string;
  readonly offset?: number;
  readonly bit?: number;

  constructor(
    readonly code: BitmapsWalkErrorCode,
    where: BitmapsWalkErrorWhere,
    message: string,
  ) {
    super(message);
    this.name = "BitmapsWalkError";
    Object.assign(this, where);
  }
}

/* The preserved range overlapping [start, end), if any. */
function rangeHit(ranges: readonly KhoMemRange[], start: number, end: number): KhoMemRange | undefined {
  const i = lastRangeAtOrBelow(ranges, end - 1);
  if (i < 0) return undefined;
  const r = ranges[i]!;
  return r.start + r.size > start ? r : undefined;
}

/**
 * khoBitmapsWalk - walk and validate the chunk list and bitmaps at @root.
 * @preserveBits: PRESERVE_BITS of the format (the bitmap size is a eighth of it)
 *
 * Every value is checked before use; the first problem throws a
 * BitmapsWalkError naming the chunk (index, phys, order), the entry, the
 * field and its byte offset. Memory used is proportional to the chunks,
 * entries and runs of set bits, never to the blocks.
 */
export function khoBitmapsWalk(mem: PhysMem, root: bigint, ctx: KhoWalkContext, preserveBits: number): KhoFormatWalk {
  const B = preserveBits;
  const bmBytes = B / 8;
  const ramBase = ctx.ramBase;
  const ramEnd = ctx.ramBase + ctx.ramSize;
  const maxChunks = Math.floor(ctx.ramSize / PAGE_SIZE);

  const chunks: number[] = [];
  const chunkIndexOf = new Map<number, number>();
  const metadataPages: number[] = [];
  /* Page of each bitmap seen -> the entry that first used it (for messages). */
  const bitmapPageUser = new Map<number, { ci: number; i: number; bm: number }>();
  const bitmapUser = new Map<number, { ci: number; i: number }>();
  /* Entries, for forEachBlock and for locating overlaps. */
  const eOrder: number[] = [];
  const eStart: number[] = [];
  const eBitmap: number[] = [];
  const eChunk: number[] = [];
  const eIndex: number[] = [];
  /* Runs of set bits per order: start, end (bytes) and the entry the run starts in. */
  const runs: { s: number[]; e: number[]; ent: number[]; sorted: boolean }[] = [];
  let blockCount = 0;

  let ptr = root;
  let holder: BitmapsWalkErrorWhere = { field: PROP_PRESERVED_MEMORY_MAP };
  let holderName = PROP_PRESERVED_MEMORY_MAP;

  while (ptr !== 0n) {
    const ci = chunks.length;
    const bad = (code: BitmapsWalkErrorCode, why: string): BitmapsWalkError => new BitmapsWalkError(code, holder, `${holderName} is ${hex(ptr)}: ${why}`);
    if (ptr % BigInt(PAGE_SIZE) !== 0n) throw bad("CHUNK_UNALIGNED", `chunk ${ci} address is not page aligned`);
    if (ptr >= 1n << 53n || ptr < BigInt(ramBase) || ptr + BigInt(PAGE_SIZE) > BigInt(ramEnd)) {
      throw bad("CHUNK_OUTSIDE_RAM", `chunk ${ci} page is outside RAM [${hex(ramBase)}, ${hex(ramEnd)})`);
    }
    const phys = Number(ptr);
    const sc = khoScratchHit(ctx, phys, phys + PAGE_SIZE);
    if (sc !== undefined) throw bad("CHUNK_IN_SCRATCH", `chunk ${ci} page overlaps scratch [${hex(sc.addr)}, ${hex(sc.addr + sc.size)})`);
    const again = chunkIndexOf.get(phys);
    if (again !== undefined) throw bad("CHUNK_CYCLE", `that is chunk ${again} again (cycle)`);
    const user = bitmapPageUser.get(phys);
    if (user !== undefined) {
      throw bad("METADATA_OVERLAP", `chunk ${ci} page holds the bitmap ${hex(user.bm)} of chunk ${user.ci} bitmaps[${user.i}]`);
    }
    if (ci >= maxChunks) throw bad("CHUNK_LIMIT", `more chunks than RAM has pages (${maxChunks})`);
    chunkIndexOf.set(phys, ci);
    chunks.push(phys);
    metadataPages.push(phys);

    const r = new ByteReader(mem.read(phys, KHOSER_BM_CHUNK_SIZE));
    const order = r.u32le(KHOSER_BM_HDR_ORDER);
    if (order > KHO_WALK_MAX_ORDER) {
      throw new BitmapsWalkError(
        "CHUNK_ORDER",
        { chunkIndex: ci, chunkPhys: phys, field: "order", offset: KHOSER_BM_HDR_ORDER },
        `chunk ${ci} at ${hex(phys)}: order at +${hex(KHOSER_BM_HDR_ORDER)} is ${order}, above ${KHO_WALK_MAX_ORDER}`,
      );
    }
    const where = `chunk ${ci} (order ${order}) at ${hex(phys)}`;
    const num = r.u32le(KHOSER_BM_HDR_NUM_ELMS);
    if (num > KHOSER_BITMAPS_PER_CHUNK) {
      throw new BitmapsWalkError(
        "NUM_ELMS",
        { chunkIndex: ci, chunkPhys: phys, order, field: "num_elms", offset: KHOSER_BM_HDR_NUM_ELMS },
        `${where}: num_elms at +${hex(KHOSER_BM_HDR_NUM_ELMS)} is ${num}, more than ${KHOSER_BITMAPS_PER_CHUNK}`,
      );
    }
    const bsize = PAGE_SIZE * POW2[order]!;
    const span = B * bsize;
    let ord = runs[order];
    if (ord === undefined) {
      ord = { s: [], e: [], ent: [], sorted: true };
      runs[order] = ord;
    }

    for (let i = 0; i < num; i++) {
      const base = khoserBitmapPtrOffset(i);
      const fail = (code: BitmapsWalkErrorCode, field: "phys_start" | "bitmap", why: string): BitmapsWalkError => {
        const off = base + (field === "bitmap" ? KHOSER_BM_PTR_BITMAP : KHOSER_BM_PTR_PHYS_START);
        return new BitmapsWalkError(
          code,
          { chunkIndex: ci, chunkPhys: phys, order, entryIndex: i, field, offset: off },
          `${where}: bitmaps[${i}].${field} at +${hex(off)} is ${hex(r.u64le(off))}: ${why}`,
        );
      };
      const sLo = r.u32le(base + KHOSER_BM_PTR_PHYS_START);
      const sHi = r.u32le(base + KHOSER_BM_PTR_PHYS_START + 4);
      const bLo = r.u32le(base + KHOSER_BM_PTR_BITMAP);
      const bHi = r.u32le(base + KHOSER_BM_PTR_BITMAP + 4);

      if (sHi >= HI_2_53) throw fail("START_OUTSIDE_RAM", "phys_start", `outside RAM [${hex(ramBase)}, ${hex(ramEnd)})`);
      const start = sHi * TWO32 + sLo;
      // A multiple of 2^53 or more below 2^53 can only be 0; % is exact for these doubles.
      if (start % span !== 0) {
        throw fail("START_UNALIGNED", "phys_start", `not aligned to PRESERVE_BITS << (order + PAGE_SHIFT) = ${hex(BigInt(B) << BigInt(order + PAGE_SHIFT))}`);
      }
      if (start >= ramEnd) throw fail("START_OUTSIDE_RAM", "phys_start", `at or past RAM end ${hex(ramEnd)}`);

      if (bLo % bmBytes !== 0) throw fail("BITMAP_UNALIGNED", "bitmap", `not aligned to the ${bmBytes}-byte bitmap size`);
      const bm = bHi * TWO32 + bLo;
      if (bHi >= HI_2_53 || bm < ramBase || bm + bmBytes > ramEnd) {
        throw fail("BITMAP_OUTSIDE_RAM", "bitmap", `bitmap is outside RAM [${hex(ramBase)}, ${hex(ramEnd)})`);
      }
      const bsc = khoScratchHit(ctx, bm, bm + bmBytes);
      if (bsc !== undefined) throw fail("BITMAP_IN_SCRATCH", "bitmap", `bitmap overlaps scratch [${hex(bsc.addr)}, ${hex(bsc.addr + bsc.size)})`);
      const bmPage = bm - (bm % PAGE_SIZE);
      const inChunk = chunkIndexOf.get(bmPage);
      if (inChunk !== undefined) throw fail("METADATA_OVERLAP", "bitmap", `bitmap lies in the page of chunk ${inChunk}`);
      const prevUser = bitmapUser.get(bm);
      if (prevUser !== undefined) throw fail("BITMAP_REUSED", "bitmap", `already the bitmap of chunk ${prevUser.ci} bitmaps[${prevUser.i}]`);
      bitmapUser.set(bm, { ci, i });
      if (!bitmapPageUser.has(bmPage)) {
        bitmapPageUser.set(bmPage, { ci, i, bm });
        metadataPages.push(bmPage);
      }

      const bits = mem.read(bm, bmBytes);
      const ent = eOrder.length;
      eOrder.push(order);
      eStart.push(start);
      eBitmap.push(bm);
      eChunk.push(ci);
      eIndex.push(i);
      blockCount += popcount(bits);

      const bitFail = (code: BitmapsWalkErrorCode, k: number, why: string): BitmapsWalkError => {
        const a = BigInt(start) + (BigInt(k) << BigInt(order + PAGE_SHIFT));
        const z = BigInt(bsize);
        return new BitmapsWalkError(
          code,
          { chunkIndex: ci, chunkPhys: phys, order, entryIndex: i, field: "bit", offset: k >>> 3, bit: k },
          `${where}: bitmaps[${i}] (bitmap ${hex(bm)}) bit ${k} at byte +${hex(k >>> 3)}: block [${hex(a)}, ${hex(a + z)}) ${why}`,
        );
      };
      forEachRun(bits, B, (b0, b1) => {
        // Doubles may round past 2^53, but only upwards of RAM's end: the comparisons stay right.
        const rs = start + b0 * bsize;
        const re = start + b1 * bsize;
        if (rs < ramBase) throw bitFail("BLOCK_OUTSIDE_RAM", b0, `starts below RAM base ${hex(ramBase)}`);
        if (re > ramEnd) {
          const k = Math.max(b0, Math.floor((ramEnd - start) / bsize));
          throw bitFail("BLOCK_OUTSIDE_RAM", k, `is not inside RAM [${hex(ramBase)}, ${hex(ramEnd)})`);
        }
        const s = khoScratchHit(ctx, rs, re);
        if (s !== undefined) {
          const k = Math.max(b0, Math.floor((s.addr - start) / bsize));
          throw bitFail("BLOCK_IN_SCRATCH", k, `overlaps scratch [${hex(s.addr)}, ${hex(s.addr + s.size)})`);
        }
        const n = ord.s.length;
        if (n > 0 && ord.e[n - 1] === rs) {
          ord.e[n - 1] = re;
        } else {
          if (n > 0 && rs < ord.s[n - 1]!) ord.sorted = false;
          ord.s.push(rs);
          ord.e.push(re);
          ord.ent.push(ent);
        }
      });
    }

    ptr = r.u64le(KHOSER_BM_HDR_NEXT);
    holder = { chunkIndex: ci, chunkPhys: phys, order, field: "next", offset: KHOSER_BM_HDR_NEXT };
    holderName = `${where}: next at +${hex(KHOSER_BM_HDR_NEXT)}`;
  }

  /* The entry of @order whose set bit covers byte @addr, and that bit. */
  const locate = (order: number, addr: number, not = -1): { ent: number; bit: number } | undefined => {
    const bsize = PAGE_SIZE * POW2[order]!;
    for (let ent = 0; ent < eOrder.length; ent++) {
      if (ent === not || eOrder[ent] !== order || addr < eStart[ent]! || addr >= eStart[ent]! + B * bsize) continue;
      const k = Math.floor((addr - eStart[ent]!) / bsize);
      const bits = mem.read(eBitmap[ent]!, bmBytes);
      if (bits[k >>> 3]! & (1 << (k & 7))) return { ent, bit: k };
    }
    return undefined;
  };
  const describe = (ent: number, bit: number): string => {
    const o = eOrder[ent]!;
    const a = BigInt(eStart[ent]!) + (BigInt(bit) << BigInt(o + PAGE_SHIFT));
    return `chunk ${eChunk[ent]} (order ${o}) bitmaps[${eIndex[ent]}] bit ${bit}: block [${hex(a)}, ${hex(a + (1n << BigInt(o + PAGE_SHIFT)))})`;
  };

  // Merge the per-order runs by start (orders are few), checking overlap as we go.
  const heads: { o: number; order: number[]; k: number }[] = [];
  runs.forEach((ord, o) => {
    if (ord === undefined || ord.s.length === 0) return;
    const idx = Array.from({ length: ord.s.length }, (_, k) => k);
    if (!ord.sorted) idx.sort((a, b) => ord.s[a]! - ord.s[b]!);
    heads.push({ o, order: idx, k: 0 });
  });
  const ranges: KhoMemRange[] = [];
  let prevEnd = -1;
  let prevOrder = -1;
  for (;;) {
    let best: (typeof heads)[number] | undefined;
    let bestStart = Infinity;
    for (const h of heads) {
      if (h.k >= h.order.length) continue;
      const s = runs[h.o]!.s[h.order[h.k]!]!;
      if (s < bestStart) {
        bestStart = s;
        best = h;
      }
    }
    if (best === undefined) break;
    const ord = runs[best.o]!;
    const j = best.order[best.k++]!;
    const s = ord.s[j]!;
    const e = ord.e[j]!;
    if (s < prevEnd) {
      // Blame the run that starts inside the other; locate both blocks covering s.
      // The run starts at a set bit of the entry it was first read from.
      const ent = ord.ent[j]!;
      const mine = { ent, bit: Math.floor((s - eStart[ent]!) / (PAGE_SIZE * POW2[best.o]!)) };
      const other = locate(prevOrder, s, prevOrder === best.o ? mine.ent : -1);
      const o = eOrder[mine.ent]!;
      const offB = mine.bit >>> 3;
      throw new BitmapsWalkError(
        "BLOCK_OVERLAP",
        { chunkIndex: eChunk[mine.ent]!, chunkPhys: chunks[eChunk[mine.ent]!]!, order: o, entryIndex: eIndex[mine.ent]!, field: "bit", offset: offB, bit: mine.bit },
        `${describe(mine.ent, mine.bit)} (bitmap ${hex(eBitmap[mine.ent]!)} byte +${hex(offB)}) overlaps ` +
          (other ? describe(other.ent, other.bit) : `preserved order-${prevOrder} memory ending at ${hex(prevEnd)}`),
      );
    }
    const data = khoDataFolio(best.o);
    const last = ranges[ranges.length - 1];
    if (last !== undefined && last.data === data && last.start + last.size === s) last.size = e - last.start;
    else ranges.push({ start: s, size: e - s, data });
    prevEnd = e;
    prevOrder = best.o;
  }

  // Metadata is free memory once walked: none of it may lie in preserved memory.
  for (const pg of metadataPages) {
    const hit = rangeHit(ranges, pg, pg + PAGE_SIZE);
    if (hit === undefined) continue;
    const ci = chunkIndexOf.get(pg);
    const what = `preserved run [${hex(hit.start)}, ${hex(hit.start + hit.size)}) of order ${hit.data & 0xff}`;
    if (ci !== undefined) {
      throw new BitmapsWalkError("CHUNK_IN_PRESERVED", { chunkIndex: ci, chunkPhys: pg }, `chunk ${ci} at ${hex(pg)}: page lies inside ${what}`);
    }
    const u = bitmapPageUser.get(pg)!;
    const off = khoserBitmapPtrOffset(u.i) + KHOSER_BM_PTR_BITMAP;
    throw new BitmapsWalkError(
      "BITMAP_IN_PRESERVED",
      { chunkIndex: u.ci, chunkPhys: chunks[u.ci]!, entryIndex: u.i, field: "bitmap", offset: off },
      `chunk ${u.ci} at ${hex(chunks[u.ci]!)}: bitmaps[${u.i}].bitmap at +${hex(off)} is ${hex(u.bm)}: its page ${hex(pg)} lies inside ${what}`,
    );
  }

  return {
    metadataPages,
    ranges,
    blockCount,
    forEachBlock(visit) {
      for (let ent = 0; ent < eOrder.length; ent++) {
        const o = eOrder[ent]!;
        const bsize = PAGE_SIZE * POW2[o]!;
        const data = khoDataFolio(o);
        const start = eStart[ent]!;
        const bits = mem.read(eBitmap[ent]!, bmBytes);
        for (let i = 0; i < bits.length; i++) {
          const v = bits[i]!;
          if (v === 0) continue;
          for (let k = 0; k < 8; k++) if (v & (1 << k)) visit(start + (i * 8 + k) * bsize, bsize, data);
        }
      }
    },
  };
}

/* ---------------------------------------------------------------------- */
/* The formats                                                            */
/* ---------------------------------------------------------------------- */

/**
 * khoBitmapsFdt - the KHO FDT as kho_finalize() writes it: root compatible,
 * preserved-memory-map, @rootProps (khosim's marker), then one node per
 * sub-tree in kho_add_subtree() order.
 */
export function khoBitmapsFdt(root: number, subtrees: readonly KhoSubtree[], rootProps: readonly { name: string; value: Uint8Array }[] = []): Uint8Array {
  const w = new FdtWriter();
  w.finishReservemap();
  w.beginNode("");
  w.propertyString("compatible", KHO_BITMAPS_COMPATIBLE);
  w.property(PROP_PRESERVED_MEMORY_MAP, u64leBytes(root));
  for (const p of rootProps) w.property(p.name, p.value);
  for (const s of subtrees) {
    w.beginNode(s.name);
    w.property(PROP_SUB_FDT, u64leBytes(s.fdtPhys));
    w.endNode();
  }
  w.endNode();
  return w.finish();
}

function asBitmapTrack(track: KhoTracker, bits: number, name: string): KhoBitmapTrack {
  if (!(track instanceof KhoBitmapTrack) || track.preserveBits !== bits) {
    throw new TypeError(`${name}.serialize: the tracker was not made by ${name}.createTracker()`);
  }
  return track;
}

function hasProp(fdt: FdtRo, name: string): boolean {
  try {
    return fdt.getProp(0, name) !== undefined;
  } catch {
    return false;
  }
}

function makeBitmapsFormat(name: KhoFormatName, bits: number, marker: boolean): KhoFormat {
  const rootProps = marker ? [{ name: KHO_BITMAPS_PAGE_MARKER, value: u32leBytes(bits) }] : [];
  return {
    name,
    compatible: KHO_BITMAPS_COMPATIBLE,
    createTracker(): KhoTracker {
      return new KhoBitmapTrack(bits);
    },
    serialize(track: KhoTracker, mem: PhysMem, allocPage: AllocPage): KhoSerialized {
      return khoBitmapsSerialize(asBitmapTrack(track, bits, name), mem, allocPage);
    },
    buildFdt(root: number, subtrees: readonly KhoSubtree[]): Uint8Array {
      return khoBitmapsFdt(root, subtrees, rootProps);
    },
    matches(fdt: FdtRo): boolean {
      return hasProp(fdt, PROP_PRESERVED_MEMORY_MAP) && hasProp(fdt, KHO_BITMAPS_PAGE_MARKER) === marker;
    },
    readRoot(fdt: FdtRo): bigint {
      if (marker) {
        const where = `/${KHO_BITMAPS_PAGE_MARKER}`;
        const v = fdt.getProp(0, KHO_BITMAPS_PAGE_MARKER);
        if (v === undefined) throw new KhoFdtError(where, "missing");
        if (v.length !== 4) throw new KhoFdtError(where, `length ${v.length}, expected 4`);
        const got = new ByteReader(v).u32le(0);
        if (got !== bits) throw new KhoFdtError(where, `is ${got}, expected ${bits} (one-page bitmaps)`);
      }
      return readU64Prop(fdt, "/", PROP_PRESERVED_MEMORY_MAP, "no root node");
    },
    walk(mem: PhysMem, root: bigint, ctx: KhoWalkContext): KhoFormatWalk {
      return khoBitmapsWalk(mem, root, ctx, bits);
    },
  };
}

/** Linux 6.16: 512-byte bitmaps (PRESERVE_BITS 4096), mainline FDT exactly. */
export const bitmapsFormat: KhoFormat = makeBitmapsFormat("bitmaps", PRESERVE_BITS_6_16, false);

/** Late-2025 mainline: one-page bitmaps (PRESERVE_BITS 32768); FDT adds khosim,preserve-bits. */
export const bitmapsPageFormat: KhoFormat = makeBitmapsFormat("bitmaps-page", PRESERVE_BITS_PAGE, true);
