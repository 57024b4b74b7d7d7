/*
 * A pure model of Linux's early boot allocator, mm/memblock.c.
 *
 * One Memblock instance is one boot: struct memblock's two region lists,
 * "memory" (RAM the firmware reported) and "reserved" (what is in use),
 * each a MemblockType (regions.ts) kept sorted, non-overlapping and minimal
 * the way the kernel keeps them, plus the allocation policy (direction,
 * current limit, KHO scratch-only mode). This file holds the region API
 * (memblock_add/remove/reserve/phys_free, the flag setters, the queries)
 * as tools/testing/memblock/tests/basic_api.c exercises it; allocation and
 * the free-range walk are in alloc.ts. khosim has one NUMA node, so the
 * kernel's nid arguments and tests are moot.
 *
 * Addresses and sizes are JS numbers (safe integers); PHYS_ADDR_MAX is
 * 2^53 - 1, and sizes are capped so that base + size never passes it, like
 * memblock_cap_size(). Anything else is rejected with a MemblockError.
 */
import { hex } from "../../lib/bytes.js";
import { MemblockAlloc } from "./alloc.js";
import {
  MEMBLOCK_FLAGS_ALL,
  MEMBLOCK_HOTPLUG,
  MEMBLOCK_KHO_SCRATCH,
  MEMBLOCK_MIRROR,
  MEMBLOCK_NOMAP,
  MEMBLOCK_NONE,
  MEMBLOCK_RSRV_KERN,
  MEMBLOCK_RSRV_NOINIT,
  memblockFlagNames,
} from "./flags.js";
import { CHUNK_MAX, MemblockType, QUEUE_MAX, regionEnd } from "./regions.js";
import {
  MEMBLOCK_ALLOC_ANYWHERE,
  MemblockError,
  checkPhys,
  checkRange,
  type MemblockRegion,
  type MemblockTypeName,
} from "./types.js";

/**
 * struct memblock for one boot: memory and reserved lists plus the
 * allocation policy (direction, current limit, KHO scratch-only mode).
 */
export class Memblock extends MemblockAlloc {
  protected readonly memory: MemblockType;
  protected readonly reserved: MemblockType;
  protected bottomUp = false;
  protected currentLimit = MEMBLOCK_ALLOC_ANYWHERE;
  protected khoScratchOnly = false;
  protected systemHasSomeMirror = false;

  /**
   * @options.chunkMax: regions per internal chunk before it is split
   * (default 1024). Results never depend on it; tests make it tiny to
   * exercise updates that cross chunk boundaries.
   * @options.queueMax: isolated stream blocks held before they are stored
   * together (default 1024); results never depend on it either, tests make
   * it tiny so that the queue fills and is stored between other calls.
   */
  constructor(options: { chunkMax?: number; queueMax?: number } = {}) {
    super();
    const chunkMax = options.chunkMax ?? CHUNK_MAX;
    if (!Number.isSafeInteger(chunkMax) || chunkMax < 2) {
      throw new MemblockError("EINVAL", `Memblock: chunkMax ${String(chunkMax)} must be an integer >= 2`);
    }
    const queueMax = options.queueMax ?? QUEUE_MAX;
    if (!Number.isSafeInteger(queueMax) || queueMax < 1) {
      throw new MemblockError("EINVAL", `Memblock: queueMax ${String(queueMax)} must be an integer >= 1`);
    }
    this.memory = new MemblockType("memory", chunkMax, queueMax);
    this.reserved = new MemblockType("reserved", chunkMax, queueMax);
  }

  private store(type: MemblockTypeName): MemblockType {
    if (type === "memory") return this.memory;
    if (type === "reserved") return this.reserved;
    throw new MemblockError("EINVAL", `unknown memblock type ${String(type)}`);
  }

  /* ----------------------------- add, remove ---------------------------- */

  /**
   * memblockAdd - add new memory region.
   * @base: base address of the new region
   * @size: size of the new region
   *
   * Overlaps with existing memory are allowed; existing regions keep their
   * flags. New parts get MEMBLOCK_NONE.
   */
  memblockAdd(base: number, size: number): void {
    size = checkRange("memblock_add", base, size);
    this.memory.addRange(base, size, MEMBLOCK_NONE);
  }

  /**
   * memblockAddNode - add new memory region with flags (memblock_add_node()
   * without the node: khosim has one). This is how the kernel adds
   * MEMBLOCK_DRIVER_MANAGED memory.
   * @base: base address of the new region
   * @size: size of the new region
   * @flags: flags of the new parts
   */
  memblockAddNode(base: number, size: number, flags: number): void {
    size = checkRange("memblock_add_node", base, size);
    if (!Number.isInteger(flags) || flags < 0 || (flags & ~MEMBLOCK_FLAGS_ALL) !== 0) {
      throw new MemblockError("EINVAL", `memblock_add_node: unknown flags ${String(flags)}`);
    }
    this.memory.addRange(base, size, flags);
  }

  /**
   * memblockRemove - remove [base, base + size) from memory.
   * @base: base address of the range
   * @size: size of the range
   */
  memblockRemove(base: number, size: number): void {
    size = checkRange("memblock_remove", base, size);
    this.memory.removeRange(base, size);
  }

  /**
   * memblockReserve - mark [base, base + size) as reserved.
   * @base: base address of the range
   * @size: size of the range
   *
   * Newly reserved parts get MEMBLOCK_NONE; parts already reserved are left
   * as they are (with their flags). The range need not be memory.
   */
  memblockReserve(base: number, size: number): void {
    // The next block of a successor's ascending stream: O(1) from cached bounds (MemblockType.streamReserve).
    if (this.reserved.streamReserve(base, size, MEMBLOCK_NONE)) return;
    size = checkRange("memblock_reserve", base, size);
    this.reserved.addRange(base, size, MEMBLOCK_NONE);
  }

  /**
   * memblockReserveKern - reserve for kernel use (MEMBLOCK_RSRV_KERN), as
   * every memblock allocation does.
   * @base: base address of the range
   * @size: size of the range
   */
  memblockReserveKern(base: number, size: number): void {
    size = checkRange("memblock_reserve_kern", base, size);
    this.reserved.addRange(base, size, MEMBLOCK_RSRV_KERN);
  }

  /**
   * memblockPhysFree - free a boot memory block: remove [base, base + size)
   * from the reserved list, splitting regions that cross its boundaries.
   * @base: phys address of the block
   * @size: size of the block
   */
  memblockPhysFree(base: number, size: number): void {
    size = checkRange("memblock_phys_free", base, size);
    this.reserved.removeRange(base, size);
  }

  /* -------------------------------- flags ------------------------------- */

  /**
   * memblockReservedMarkNoinit - set MEMBLOCK_RSRV_NOINIT on the *reserved*
   * regions inside [base, base + size): their struct pages are not
   * initialized.
   * @base: base address of the range
   * @size: size of the range
   *
   * Only the reserved list is touched, so on memory that is not reserved
   * yet this does nothing: reserve first, then mark. (The April 2025 seed
   * marks first and reserves after, and so loses the flag.)
   */
  memblockReservedMarkNoinit(base: number, size: number): void {
    if (this.reserved.streamMark(base, size, MEMBLOCK_RSRV_NOINIT)) return;
    size = checkRange("memblock_reserved_mark_noinit", base, size);
    this.reserved.setClrFlag(base, size, true, MEMBLOCK_RSRV_NOINIT);
  }

  /**
   * memblockMarkKhoScratch - set MEMBLOCK_KHO_SCRATCH on memory regions in
   * [base, base + size); in scratch-only mode only such memory is allocated.
   * @base: base address of the range
   * @size: size of the range
   */
  memblockMarkKhoScratch(base: number, size: number): void {
    size = checkRange("memblock_mark_kho_scratch", base, size);
    this.memory.setClrFlag(base, size, true, MEMBLOCK_KHO_SCRATCH);
  }

  /**
   * memblockClearKhoScratch - clear MEMBLOCK_KHO_SCRATCH on memory regions
   * in [base, base + size).
   * @base: base address of the range
   * @size: size of the range
   */
  memblockClearKhoScratch(base: number, size: number): void {
    size = checkRange("memblock_clear_kho_scratch", base, size);
    this.memory.setClrFlag(base, size, false, MEMBLOCK_KHO_SCRATCH);
  }

  /** memblockMarkHotplug - set MEMBLOCK_HOTPLUG on memory in [base, base + size). */
  memblockMarkHotplug(base: number, size: number): void {
    size = checkRange("memblock_mark_hotplug", base, size);
    this.memory.setClrFlag(base, size, true, MEMBLOCK_HOTPLUG);
  }

  /** memblockClearHotplug - clear MEMBLOCK_HOTPLUG on memory in [base, base + size). */
  memblockClearHotplug(base: number, size: number): void {
    size = checkRange("memblock_clear_hotplug", base, size);
    this.memory.setClrFlag(base, size, false, MEMBLOCK_HOTPLUG);
  }

  /**
   * memblockMarkMirror - set MEMBLOCK_MIRROR on memory in [base, base + size).
   * From then on allocations prefer mirrored memory and fall back to any.
   */
  memblockMarkMirror(base: number, size: number): void {
    size = checkRange("memblock_mark_mirror", base, size);
    this.systemHasSomeMirror = true;
    this.memory.setClrFlag(base, size, true, MEMBLOCK_MIRROR);
  }

  /** memblockMarkNomap - set MEMBLOCK_NOMAP: never allocated, never freed to the buddy allocator. */
  memblockMarkNomap(base: number, size: number): void {
    size = checkRange("memblock_mark_nomap", base, size);
    this.memory.setClrFlag(base, size, true, MEMBLOCK_NOMAP);
  }

  /** memblockClearNomap - clear MEMBLOCK_NOMAP on memory in [base, base + size). */
  memblockClearNomap(base: number, size: number): void {
    size = checkRange("memblock_clear_nomap", base, size);
    this.memory.setClrFlag(base, size, false, MEMBLOCK_NOMAP);
  }

  /* ------------------------- allocation policy -------------------------- */

  /** memblockSetKhoScratchOnly - from now on allocate only from MEMBLOCK_KHO_SCRATCH memory. */
  memblockSetKhoScratchOnly(): void {
    this.khoScratchOnly = true;
  }

  /** memblockClearKhoScratchOnly - leave scratch-only mode. */
  memblockClearKhoScratchOnly(): void {
    this.khoScratchOnly = false;
  }

  /** memblockSetBottomUp - choose the allocation direction (the kernel default is top-down). */
  memblockSetBottomUp(enable: boolean): void {
    this.bottomUp = enable;
  }

  /** memblockBottomUp - true when allocations search bottom-up. */
  memblockBottomUp(): boolean {
    return this.bottomUp;
  }

  /** memblockSetCurrentLimit - upper bound for MEMBLOCK_ALLOC_ACCESSIBLE allocations. */
  memblockSetCurrentLimit(limit: number): void {
    checkPhys("memblock_set_current_limit", "limit", limit);
    this.currentLimit = limit;
  }

  /** memblockGetCurrentLimit - the current allocation limit. */
  memblockGetCurrentLimit(): number {
    return this.currentLimit;
  }

  /* ------------------------------- queries ------------------------------ */

  /** memblockPhysMemSize - total size of the memory regions. */
  memblockPhysMemSize(): number {
    return this.memory.totalSize;
  }

  /** memblockReservedSize - total size of the reserved regions. */
  memblockReservedSize(): number {
    return this.reserved.totalSize;
  }

  /** memblockStartOfDRAM - base of the first memory region (0 when none). */
  memblockStartOfDRAM(): number {
    const first = this.memory.first();
    return first ? first.base : 0;
  }

  /** memblockEndOfDRAM - end of the last memory region (0 when none). */
  memblockEndOfDRAM(): number {
    const last = this.memory.last();
    return last ? regionEnd(last) : 0;
  }

  /**
   * memblockIsRegionReserved - true when [base, base + size) overlaps a
   * reserved region (memblock_overlaps_region() on the reserved list).
   */
  memblockIsRegionReserved(base: number, size: number): boolean {
    size = checkRange("memblock_is_region_reserved", base, size);
    const p = this.reserved.firstEndingAbove(base);
    return !this.reserved.isEnd(p) && this.reserved.at(p).base < base + size;
  }

  /** memblockIsReserved - true when @addr lies in a reserved region. */
  memblockIsReserved(addr: number): boolean {
    checkPhys("memblock_is_reserved", "addr", addr);
    return this.reserved.search(addr) !== undefined;
  }

  /** memblockIsMemory - true when @addr lies in a memory region. */
  memblockIsMemory(addr: number): boolean {
    checkPhys("memblock_is_memory", "addr", addr);
    return this.memory.search(addr) !== undefined;
  }

  /**
   * memblockIsRegionMemory - true when one memory region contains all of
   * [base, base + size). As in the kernel, a range spanning two touching
   * regions with different flags is not "region memory".
   */
  memblockIsRegionMemory(base: number, size: number): boolean {
    size = checkRange("memblock_is_region_memory", base, size);
    const r = this.memory.search(base);
    return r !== undefined && regionEnd(r) >= base + size;
  }

  /** regions - copies of the regions of @type, ascending. */
  regions(type: MemblockTypeName): MemblockRegion[] {
    const out: MemblockRegion[] = [];
    this.store(type).forEach((base, size, flags) => out.push({ base, size, flags }));
    return out;
  }

  /** forEachRegion - for_each_mem_region() / for_each_reserved_mem_region(): copies, without building an array. */
  *forEachRegion(type: MemblockTypeName): Generator<MemblockRegion> {
    for (const r of this.store(type)) yield { base: r.base, size: r.size, flags: r.flags };
  }

  /**
   * sizeWithFlag - bytes of the regions of @type that have @flag set (for
   * reports: e.g. MEMBLOCK_RSRV_NOINIT on the reserved list), without
   * copying the regions.
   */
  sizeWithFlag(type: MemblockTypeName, flag: number): number {
    let n = 0;
    this.store(type).forEach((_base, size, flags) => {
      if (flags & flag) n += size;
    });
    return n;
  }

  /** regionCount - number of regions of @type (memblock.<type>.cnt; 0 when empty). */
  regionCount(type: MemblockTypeName): number {
    return this.store(type).cnt;
  }

  /** totalSize - memblock.<type>.total_size. */
  totalSize(type: MemblockTypeName): number {
    return this.store(type).totalSize;
  }

  /**
   * memblockSelfCheck - verify the invariants the kernel keeps (and the
   * model's own bookkeeping): regions sorted, non-empty, non-overlapping,
   * fully merged, count and total size consistent, no empty chunk.
   * Throws an Error describing the first violation. O(n); for tests.
   */
  memblockSelfCheck(): void {
    this.memory.check();
    this.reserved.check();
  }

  /** memblockDumpAll - text like __memblock_dump_all(), for logs and debugging. */
  memblockDumpAll(): string {
    const lines: string[] = [" memory size = " + hex(this.memory.totalSize) + " reserved size = " + hex(this.reserved.totalSize)];
    for (const type of [this.memory, this.reserved]) {
      lines.push(` ${type.name}.cnt  = ${hex(type.cnt)}`);
      let idx = 0;
      for (const r of type) {
        const last = regionEnd(r) - 1;
        lines.push(`  ${type.name}[${hex(idx++)}]\t[${hex(r.base)}-${hex(last)}], ${hex(r.size)} bytes flags: ${memblockFlagNames(r.flags)}`);
      }
    }
    return lines.join("\n");
  }
}
