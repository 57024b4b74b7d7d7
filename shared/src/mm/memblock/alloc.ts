/*
 * The allocation family of mm/memblock.c: the free-range walk
 * (__next_mem_range, __next_mem_range_rev, should_skip_region) and the
 * allocators built on it (memblock_find_in_range_node,
 * memblock_alloc_range_nid, memblock_phys_alloc_range,
 * memblock_phys_alloc, memblock_alloc_or_panic). Tested like
 * tools/testing/memblock/tests/alloc_api.c in shared/test/memblock-alloc.
 *
 * Allocations search free memory (memory minus reserved) top-down by
 * default, skip the first page, skip NOMAP / DRIVER_MANAGED memory, and in
 * KHO scratch-only mode consider only MEMBLOCK_KHO_SCRATCH memory. What
 * they find is reserved with MEMBLOCK_RSRV_KERN.
 */
import { PAGE_SIZE } from "../../abi/page.js";
import { hex } from "../../lib/bytes.js";
import {
  MEMBLOCK_DRIVER_MANAGED,
  MEMBLOCK_KHO_SCRATCH,
  MEMBLOCK_MIRROR,
  MEMBLOCK_NOMAP,
  MEMBLOCK_NONE,
  MEMBLOCK_RSRV_KERN,
} from "./flags.js";
import { regionEnd, type MemblockType } from "./regions.js";
import {
  MEMBLOCK_ALLOC_ACCESSIBLE,
  MEMBLOCK_ALLOC_NOLEAKTRACE,
  MemblockError,
  PHYS_ADDR_MAX,
  SMP_CACHE_BYTES,
  checkPhys,
  type MemblockRegion,
  type PhysRange,
} from "./types.js";

function checkAlign(fn: string, align: number): void {
  checkPhys(fn, "align", align);
  if (align !== 0 && !isPow2(align)) {
    throw new MemblockError("EINVAL", `${fn}: align ${hex(align)} is not a power of two`);
  }
}

function isPow2(v: number): boolean {
  if (!Number.isSafeInteger(v) || v <= 0) return false;
  while (v > 1) {
    if (v % 2 !== 0) return false;
    v /= 2;
  }
  return true;
}

function roundDown(v: number, align: number): number {
  return v - (v % align);
}

function roundUp(v: number, align: number): number {
  const rem = v % align;
  return rem === 0 ? v : v - rem + align;
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

/**
 * MemblockAlloc - the allocation half of Memblock. It reads the fields of
 * struct memblock that Memblock (memblock.ts) owns and changes nothing but
 * the reserved list.
 */
export abstract class MemblockAlloc {
  protected abstract readonly memory: MemblockType;
  protected abstract readonly reserved: MemblockType;
  protected abstract bottomUp: boolean;
  protected abstract currentLimit: number;
  protected abstract khoScratchOnly: boolean;
  protected abstract systemHasSomeMirror: boolean;

  /* --------------------------- free-range walk -------------------------- */

  /** should_skip_region() for memory regions (one node, movable_node off). */
  private skipMemory(m: MemblockRegion, flags: number): boolean {
    if (flags & MEMBLOCK_MIRROR && !(m.flags & MEMBLOCK_MIRROR)) return true;
    if (!(flags & MEMBLOCK_NOMAP) && m.flags & MEMBLOCK_NOMAP) return true;
    if (!(flags & MEMBLOCK_DRIVER_MANAGED) && m.flags & MEMBLOCK_DRIVER_MANAGED) return true;
    if (flags & MEMBLOCK_KHO_SCRATCH && !(m.flags & MEMBLOCK_KHO_SCRATCH)) return true;
    return false;
  }

  /**
   * Free spans [start, end) as __next_mem_range() / __next_mem_range_rev()
   * yield them: each memory region that is not skipped, minus the reserved
   * regions, in ascending or (@reverse) descending order. Only the parts
   * inside [lo, hi) are produced (the kernel's callers clamp the same way).
   * Binary search finds the first memory and reserved regions involved, so
   * a walk costs O(log n) plus the spans it visits.
   */
  private *freeSpans(flags: number, lo: number, hi: number, reverse: boolean): Generator<[number, number]> {
    const mem = this.memory;
    const rsv = this.reserved;
    if (hi <= lo) return;
    if (reverse) {
      for (let mp = mem.lastStartingBelow(hi); mp; mp = mem.prev(mp)) {
        const m = mem.at(mp);
        const mEnd = regionEnd(m);
        if (mEnd <= lo) break;
        if (this.skipMemory(m, flags)) continue;
        const ms = Math.max(m.base, lo);
        let top = Math.min(mEnd, hi);
        let rp = rsv.lastStartingBelow(top);
        while (top > ms) {
          if (!rp) {
            yield [ms, top];
            break;
          }
          const r = rsv.at(rp);
          const gapStart = Math.max(regionEnd(r), ms);
          if (gapStart < top) yield [gapStart, top];
          top = Math.min(top, r.base);
          rp = rsv.prev(rp);
        }
      }
    } else {
      for (let mp = mem.firstEndingAbove(lo); !mem.isEnd(mp); mp = mem.next(mp)) {
        const m = mem.at(mp);
        if (m.base >= hi) break;
        if (this.skipMemory(m, flags)) continue;
        const me = Math.min(regionEnd(m), hi);
        let bottom = Math.max(m.base, lo);
        let rp = rsv.firstEndingAbove(bottom);
        while (bottom < me) {
          if (rsv.isEnd(rp)) {
            yield [bottom, me];
            break;
          }
          const r = rsv.at(rp);
          const gapEnd = Math.min(r.base, me);
          if (bottom < gapEnd) yield [bottom, gapEnd];
          bottom = Math.max(bottom, regionEnd(r));
          rp = rsv.next(rp);
        }
      }
    }
  }

  /**
   * forEachFreeMemRange - for_each_free_mem_range(): free ranges (memory
   * minus reserved) in ascending order, one memory region at a time, so a
   * range never crosses a memory region boundary.
   * @flags: memory attributes asked for; with MEMBLOCK_NONE (the default,
   *         what memblock_free_all() uses) NOMAP and DRIVER_MANAGED memory
   *         is skipped.
   */
  *forEachFreeMemRange(flags: number = MEMBLOCK_NONE): Generator<PhysRange> {
    for (const [s, e] of this.freeSpans(flags, 0, PHYS_ADDR_MAX, false)) yield { base: s, size: e - s };
  }

  /**
   * freeSize - total bytes of forEachFreeMemRange(@flags), summed as the
   * ranges are found, without an object per range.
   * @flags: as for forEachFreeMemRange()
   */
  freeSize(flags: number = MEMBLOCK_NONE): number {
    let n = 0;
    for (const [s, e] of this.freeSpans(flags, 0, PHYS_ADDR_MAX, false)) n += e - s;
    return n;
  }

  /**
   * freeRanges - what memblock_free_all() hands to the buddy allocator:
   * forEachFreeMemRange() collected into an array.
   * @flags: as for forEachFreeMemRange()
   */
  freeRanges(flags: number = MEMBLOCK_NONE): PhysRange[] {
    return [...this.forEachFreeMemRange(flags)];
  }

  /* ------------------------------ allocation ---------------------------- */

  /** choose_memblock_flags(): the memory attributes allocations ask for. */
  private chooseFlags(): number {
    if (this.khoScratchOnly) return MEMBLOCK_KHO_SCRATCH;
    return this.systemHasSomeMirror ? MEMBLOCK_MIRROR : MEMBLOCK_NONE;
  }

  /**
   * memblock_find_in_range_node - find @size free bytes aligned to @align
   * in [start, end), top-down unless bottom-up is set.
   *
   * Return: the address, or 0 when nothing fits.
   */
  private findInRange(size: number, align: number, start: number, end: number, flags: number): number {
    if (end === MEMBLOCK_ALLOC_ACCESSIBLE || end === MEMBLOCK_ALLOC_NOLEAKTRACE) end = this.currentLimit;
    // avoid allocating the first page
    start = Math.max(start, PAGE_SIZE);
    end = Math.max(start, end);
    if (this.bottomUp) {
      for (const [s, e] of this.freeSpans(flags, start, end, false)) {
        const thisStart = clamp(s, start, end);
        const thisEnd = clamp(e, start, end);
        const cand = roundUp(thisStart, align);
        if (cand < thisEnd && thisEnd - cand >= size) return cand;
      }
    } else {
      for (const [s, e] of this.freeSpans(flags, start, end, true)) {
        const thisStart = clamp(s, start, end);
        const thisEnd = clamp(e, start, end);
        if (thisEnd < size) continue;
        const cand = roundDown(thisEnd - size, align);
        if (cand >= thisStart) return cand;
      }
    }
    return 0;
  }

  /**
   * memblockPhysAllocRange - allocate and reserve a block inside [start, end).
   * @size: size of the block in bytes (> 0)
   * @align: alignment, a power of two; 0 means SMP_CACHE_BYTES
   * @start: lowest acceptable address
   * @end: end of the acceptable range; MEMBLOCK_ALLOC_ACCESSIBLE (0) means
   *       the current limit, MEMBLOCK_ALLOC_ANYWHERE means no limit
   *
   * Searches free memory (memory minus reserved, without NOMAP and
   * DRIVER_MANAGED memory; in scratch-only mode only MEMBLOCK_KHO_SCRATCH
   * memory), top-down by default, never in the first page. The block is
   * reserved with MEMBLOCK_RSRV_KERN; without a fit in mirrored memory the
   * search is repeated in any memory (memblock_alloc_range_nid()).
   *
   * Return: physical address of the block, or 0 on failure.
   */
  memblockPhysAllocRange(size: number, align: number, start: number, end: number): number {
    const fn = "memblock_phys_alloc_range";
    checkPhys(fn, "size", size);
    if (size === 0) throw new MemblockError("EINVAL", `${fn}: size must not be 0`);
    checkAlign(fn, align);
    checkPhys(fn, "start", start);
    checkPhys(fn, "end", end);
    if (align === 0) align = SMP_CACHE_BYTES;
    let flags = this.chooseFlags();
    for (;;) {
      const found = this.findInRange(size, align, start, end, flags);
      if (found) {
        this.reserved.addRange(found, Math.min(size, PHYS_ADDR_MAX - found), MEMBLOCK_RSRV_KERN);
        return found;
      }
      if (flags & MEMBLOCK_MIRROR) {
        flags &= ~MEMBLOCK_MIRROR;
        continue;
      }
      return 0;
    }
  }

  /**
   * memblockPhysAlloc - allocate and reserve a block anywhere below the
   * current limit (memblock_phys_alloc_range(size, align, 0, ACCESSIBLE)).
   * @size: size of the block in bytes (> 0)
   * @align: alignment, a power of two; 0 means SMP_CACHE_BYTES
   *
   * Return: physical address of the block, or 0 on failure.
   */
  memblockPhysAlloc(size: number, align: number): number {
    return this.memblockPhysAllocRange(size, align, 0, MEMBLOCK_ALLOC_ACCESSIBLE);
  }

  /**
   * memblockAllocOrThrow - memblockPhysAllocRange() that throws instead of
   * returning 0, where memblock_alloc_or_panic() panics.
   * @size: size of the block in bytes (> 0)
   * @align: alignment, a power of two; 0 means SMP_CACHE_BYTES
   * @start: lowest acceptable address (default 0)
   * @end: end of the acceptable range (default MEMBLOCK_ALLOC_ACCESSIBLE)
   *
   * Return: physical address of the block.
   * Throws: MemblockError ENOMEM naming the size, the range and, in
   * scratch-only mode, that only KHO scratch memory was searched.
   */
  memblockAllocOrThrow(size: number, align: number, start = 0, end = MEMBLOCK_ALLOC_ACCESSIBLE): number {
    const found = this.memblockPhysAllocRange(size, align, start, end);
    if (found) return found;
    const limit = end === MEMBLOCK_ALLOC_ACCESSIBLE || end === MEMBLOCK_ALLOC_NOLEAKTRACE ? this.currentLimit : end;
    const where = this.khoScratchOnly
      ? "in KHO scratch memory (scratch-only mode: only MEMBLOCK_KHO_SCRATCH memory is a candidate)"
      : "in free memory";
    throw new MemblockError(
      "ENOMEM",
      `memblock: failed to allocate ${size} (${hex(size)}) bytes aligned to ${hex(align || SMP_CACHE_BYTES)} ` +
        `${where} within [${hex(start)}, ${hex(limit)})`,
    );
  }
}
