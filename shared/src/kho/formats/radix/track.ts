/*
 * The radix format's tracker. The kernel (kernel/liveupdate/kho_radix.c,
 * kho_radix_add_page) inserts into the tree at each kho_preserve_*();
 * khosim's KhoTracker API has no allocator at preserve time, so it keeps,
 * per order, runs of equal-order blocks in a KhoMemTrack (data =
 * khoDataFolio(order)): state proportional to runs, never to pages.
 * kho_preserve_phys splits a range as mainline does (khoPhysBlocks). The
 * format carries no per-range data: a phys range and folios of the same
 * order are the same bits. Where KhoMemTrack's semantics cannot be kept:
 *  - kho_preserve_phys over preserved memory preserves only the gaps (the
 *    kernel would set overlapping bits of another order, which a careful
 *    successor must reject); it never fails with EEXIST, even over a folio;
 *  - kho_preserve_folio overlapping blocks of another order is EEXIST; the
 *    same block again is harmless;
 *  - kho_unpreserve* may cut inside a block: the block is removed and its
 *    remaining parts re-preserved as smaller aligned blocks (callers must not
 *    cut folios, which the format cannot tell apart).
 */
import { PAGE_SIZE } from "../../../abi/page.js";
import { khoDataOrder } from "../../../abi/ranges.js";
import { hex } from "../../../lib/bytes.js";
import { KHO_TRACK_MAX_ORDER, KhoMemTrack, KhoTrackError, khoCheckRange, khoFolioSize, khoPhysBlocks, type KhoMemRange } from "../../track.js";
import type { KhoTracker } from "../types.js";

/**
 * The radix format's tracker: preserved blocks as runs of equal order (see
 * the file comment for where its semantics differ from KhoMemTrack's).
 */
export class KhoRadixTrack implements KhoTracker {
  private readonly runs = new KhoMemTrack();

  /** Bytes preserved. */
  get totalBytes(): number {
    return this.runs.totalBytes;
  }

  /** Number of runs of equal-order blocks. */
  get count(): number {
    return this.runs.count;
  }

  /** Maximal runs of equal-order blocks, ascending; data = khoDataFolio(order). */
  ranges(): IterableIterator<KhoMemRange> {
    return this.runs.ranges();
  }

  /** True when any byte of [@addr, @addr + @size) is preserved. */
  intersects(addr: number, size: number): boolean {
    return this.runs.intersects(addr, size);
  }

  khoPreserveFolio(phys: number, order: number): void {
    this.runs.khoPreserveFolio(phys, order);
  }

  /** Room for @n more runs (KhoTracker.reserve). */
  reserve(n: number): void {
    this.runs.reserve(n);
  }

  khoPreservePhys(phys: number, size: number): void {
    khoCheckRange("kho_preserve_phys", phys, size);
    const end = phys + size;
    if (!this.runs.intersects(phys, size)) {
      this.addBlocks(phys, end);
      return;
    }
    // Preserve only the gaps between what is preserved already.
    let cur = phys;
    while (cur < end) {
      const r = this.runs.rangeAt(cur);
      if (r !== undefined) {
        cur = r.start + r.size;
        continue;
      }
      let gapEnd = end;
      if (this.runs.intersects(cur, end - cur)) {
        // Smallest n with a preserved byte in [cur, cur + n pages): the gap is n - 1 pages.
        let lo = 1;
        let hi = (end - cur) / PAGE_SIZE;
        while (lo < hi) {
          const mid = Math.floor((lo + hi) / 2);
          if (this.runs.intersects(cur, mid * PAGE_SIZE)) hi = mid;
          else lo = mid + 1;
        }
        gapEnd = cur + (lo - 1) * PAGE_SIZE;
      }
      this.addBlocks(cur, gapEnd);
      cur = gapEnd;
    }
  }

  khoUnpreserve(addr: number, size: number): void {
    khoCheckRange("kho_unpreserve", addr, size);
    this.splitAt(addr);
    this.splitAt(addr + size);
    this.runs.khoUnpreserve(addr, size);
  }

  khoUnpreservePhys(phys: number, size: number): void {
    this.khoUnpreserve(phys, size);
  }

  khoUnpreserveFolio(phys: number, order: number): void {
    if (!Number.isInteger(order) || order < 0 || order > KHO_TRACK_MAX_ORDER) {
      throw new KhoTrackError("EINVAL", `folio order ${String(order)} is out of range 0..${KHO_TRACK_MAX_ORDER}`);
    }
    const fsz = khoFolioSize(order);
    khoCheckRange("kho_unpreserve_folio", phys, fsz);
    if (phys % fsz !== 0) {
      throw new KhoTrackError("EINVAL", `folio at ${hex(phys)} is not aligned to its order-${order} folio size ${hex(fsz)}`);
    }
    this.khoUnpreserve(phys, fsz);
  }

  /* Preserve [start, end), known to be free, as mainline's blocks. */
  private addBlocks(start: number, end: number): void {
    for (const b of khoPhysBlocks(start / PAGE_SIZE, end / PAGE_SIZE)) this.runs.khoPreserveFolio(b.pfn * PAGE_SIZE, b.order);
  }

  /* Make @c a block boundary: a block containing it is replaced by smaller blocks. */
  private splitAt(c: number): void {
    const r = this.runs.rangeAt(c);
    if (r === undefined || r.start === c) return;
    const fsz = khoFolioSize(khoDataOrder(r.data));
    const off = (c - r.start) % fsz;
    if (off === 0) return;
    const bs = c - off;
    this.runs.khoUnpreserve(bs, fsz);
    this.addBlocks(bs, c);
    this.addBlocks(c, bs + fsz);
  }
}
