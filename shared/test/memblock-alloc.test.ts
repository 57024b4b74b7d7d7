/*
 * memblock allocation and free-range tests in the style of Linux
 * tools/testing/memblock/tests/alloc_api.c: a fixed block of memory, one
 * allocation at a time, then assert the returned address and the reserved
 * list. The kernel's default direction is top-down.
 */
import { describe, expect, it } from "vitest";
import { PAGE_SIZE } from "../src/abi/page.js";
import {
  MEMBLOCK_ALLOC_ANYWHERE,
  MEMBLOCK_KHO_SCRATCH,
  MEMBLOCK_NONE,
  MEMBLOCK_NOMAP,
  MEMBLOCK_DRIVER_MANAGED,
  MEMBLOCK_RSRV_KERN,
  Memblock,
  MemblockError,
  SMP_CACHE_BYTES,
} from "../src/mm/memblock/index.js";
import {
  SZ_2,
  SZ_1G,
  SZ_1M,
  SZ_2M,
  SZ_4K,
  SZ_8K,
  SZ_16K,
  SZ_16M,
  SZ_512,
  SZ_64K,
  SZ_256M,
  expectRegions,
} from "./memblock-common.js";
import { thrownBy } from "./thrown.js";

/** Simulated RAM for the allocation tests: [MEM_BASE, MEM_BASE + MEM_SIZE). */
const MEM_BASE = SZ_256M;
const MEM_SIZE = SZ_16K;
const MEM_END = MEM_BASE + MEM_SIZE;

function setupMemblock(): Memblock {
  const m = new Memblock();
  m.memblockAdd(MEM_BASE, MEM_SIZE);
  return m;
}

describe("memblock_phys_alloc, top-down", () => {
  it("simple: returns the highest fit and reserves it with MEMBLOCK_RSRV_KERN", () => {
    const m = setupMemblock();
    const addr = m.memblockPhysAlloc(SZ_2, SMP_CACHE_BYTES);
    expect(addr).toBe(MEM_END - SMP_CACHE_BYTES);
    expectRegions(m, "reserved", [[MEM_END - SMP_CACHE_BYTES, SZ_2, MEMBLOCK_RSRV_KERN]]);
    expect(m.memblockIsRegionReserved(addr, SZ_2)).toBe(true);
  });

  it("page-sized allocations come from the top, one below the other", () => {
    const m = setupMemblock();
    expect(m.memblockPhysAlloc(SZ_4K, SZ_4K)).toBe(MEM_END - SZ_4K);
    expect(m.memblockPhysAlloc(SZ_4K, SZ_4K)).toBe(MEM_END - SZ_8K);
    // Touching allocations share the RSRV_KERN flag and merge.
    expectRegions(m, "reserved", [[MEM_END - SZ_8K, SZ_8K, MEMBLOCK_RSRV_KERN]]);
  });

  it("before: an allocation right below a reserve_kern region merges with it", () => {
    const m = setupMemblock();
    const r1Size = SMP_CACHE_BYTES;
    const r2Size = SZ_512;
    const total = r1Size + r2Size;
    m.memblockReserveKern(MEM_END - r1Size, r1Size);
    const addr = m.memblockPhysAlloc(r2Size, SMP_CACHE_BYTES);
    expect(addr).toBe(MEM_END - total);
    expectRegions(m, "reserved", [[MEM_END - total, total, MEMBLOCK_RSRV_KERN]]);
  });

  it("before, with a plain memblock_reserve neighbour: two regions (flags differ)", () => {
    // Why upstream's alloc_api.c switched its setup to memblock_reserve_kern().
    const m = setupMemblock();
    m.memblockReserve(MEM_END - SMP_CACHE_BYTES, SMP_CACHE_BYTES);
    const addr = m.memblockPhysAlloc(SZ_512, SMP_CACHE_BYTES);
    expect(addr).toBe(MEM_END - SMP_CACHE_BYTES - SZ_512);
    expectRegions(m, "reserved", [
      [addr, SZ_512, MEMBLOCK_RSRV_KERN],
      [MEM_END - SMP_CACHE_BYTES, SMP_CACHE_BYTES, MEMBLOCK_NONE],
    ]);
  });

  it("second fit: not enough room above a reserved block, the allocation goes below it", () => {
    const m = setupMemblock();
    m.memblockReserveKern(MEM_END - SZ_4K, SZ_512);
    const addr = m.memblockPhysAlloc(SZ_4K, SZ_4K);
    expect(addr).toBe(MEM_END - 2 * SZ_4K);
    expectRegions(m, "reserved", [
      [MEM_END - 2 * SZ_4K, SZ_4K + SZ_512, MEMBLOCK_RSRV_KERN],
    ]);
  });

  it("in between: a gap of exactly the size is found and the three regions merge", () => {
    const m = setupMemblock();
    const gap = MEM_BASE + SZ_8K;
    m.memblockReserveKern(MEM_BASE + SZ_4K, SZ_4K);
    m.memblockReserveKern(gap + SZ_512, MEM_END - gap - SZ_512);
    const addr = m.memblockPhysAlloc(SZ_512, SZ_512);
    expect(addr).toBe(gap);
    expectRegions(m, "reserved", [[MEM_BASE + SZ_4K, MEM_SIZE - SZ_4K, MEMBLOCK_RSRV_KERN]]);
  });

  it("no space: everything reserved -> 0, nothing changes", () => {
    const m = setupMemblock();
    m.memblockReserve(MEM_BASE, MEM_SIZE);
    expect(m.memblockPhysAlloc(SZ_512, SMP_CACHE_BYTES)).toBe(0);
    expectRegions(m, "reserved", [[MEM_BASE, MEM_SIZE]]);
  });

  it("too large: bigger than any free span -> 0", () => {
    const m = setupMemblock();
    m.memblockReserve(MEM_BASE + SZ_8K, SZ_4K);
    expect(m.memblockPhysAlloc(SZ_8K + SZ_4K, SZ_4K)).toBe(0);
    expect(m.memblockPhysAlloc(SZ_8K, SZ_4K)).toBe(MEM_BASE);
  });

  it("no memory at all -> 0", () => {
    const m = new Memblock();
    expect(m.memblockPhysAlloc(SZ_4K, SZ_4K)).toBe(0);
  });

  it("alignment: the result is rounded down to the alignment", () => {
    const m = new Memblock();
    m.memblockAdd(SZ_1M, SZ_1M + 0x80);
    // end - size = 2 MiB - 0x80, rounded down to 64 KiB
    expect(m.memblockPhysAlloc(0x100, SZ_64K)).toBe(SZ_2M - SZ_64K);
    // end - size = 2 MiB + 0x23 rounds down to 2 MiB itself
    m.memblockAdd(SZ_2M + 0x80, 0xa3);
    expect(m.memblockPhysAlloc(0x100, SZ_64K)).toBe(SZ_2M);
  });

  it("align 0 means SMP_CACHE_BYTES", () => {
    const m = setupMemblock();
    expect(m.memblockPhysAlloc(1, 0)).toBe(MEM_END - SMP_CACHE_BYTES);
  });

  it("rejects size 0 and an alignment that is not a power of two", () => {
    const m = setupMemblock();
    expect(() => m.memblockPhysAlloc(0, SZ_4K)).toThrow(MemblockError);
    expect(() => m.memblockPhysAlloc(SZ_4K, 3 * SZ_4K)).toThrow(/power of two/);
    expect(() => m.memblockPhysAllocRange(SZ_4K, SZ_4K, -1, 0)).toThrow(MemblockError);
  });

  it("never hands out the first page", () => {
    const m = new Memblock();
    m.memblockAdd(0, 2 * PAGE_SIZE);
    expect(m.memblockPhysAlloc(PAGE_SIZE, PAGE_SIZE)).toBe(PAGE_SIZE);
    expect(m.memblockPhysAlloc(PAGE_SIZE, PAGE_SIZE)).toBe(0);
    expect(m.memblockPhysAlloc(1, 1)).toBe(0);
  });

  it("large addresses beyond 4 GiB stay exact", () => {
    const m = new Memblock();
    const base = 2 ** 52;
    m.memblockAdd(base, SZ_1G);
    expect(m.memblockPhysAlloc(SZ_2M, SZ_2M)).toBe(base + SZ_1G - SZ_2M);
  });

  it("skips NOMAP and DRIVER_MANAGED memory", () => {
    const m = setupMemblock();
    m.memblockMarkNomap(MEM_END - SZ_4K, SZ_4K);
    expect(m.memblockPhysAlloc(SZ_4K, SZ_4K)).toBe(MEM_END - SZ_8K);
    m.memblockClearNomap(MEM_END - SZ_4K, SZ_4K);
    expect(m.memblockPhysAlloc(SZ_4K, SZ_4K)).toBe(MEM_END - SZ_4K);
  });

  it("skips DRIVER_MANAGED memory (added with memblock_add_node)", () => {
    const m = setupMemblock();
    m.memblockAddNode(MEM_END, SZ_16K, MEMBLOCK_DRIVER_MANAGED);
    expectRegions(m, "memory", [
      [MEM_BASE, MEM_SIZE],
      [MEM_END, SZ_16K, MEMBLOCK_DRIVER_MANAGED],
    ]);
    expect(m.memblockPhysAlloc(SZ_4K, SZ_4K)).toBe(MEM_END - SZ_4K);
    expect(m.freeRanges()).toEqual([{ base: MEM_BASE, size: MEM_SIZE - SZ_4K }]);
    expect(() => m.memblockAddNode(0, SZ_4K, 0x1000)).toThrow(MemblockError);
  });

  it("mirror: prefers mirrored memory, falls back to any when it is full", () => {
    const m = setupMemblock();
    m.memblockMarkMirror(MEM_BASE + SZ_4K, SZ_4K);
    expect(m.memblockPhysAlloc(SZ_4K, SZ_4K)).toBe(MEM_BASE + SZ_4K);
    expect(m.memblockPhysAlloc(SZ_4K, SZ_4K)).toBe(MEM_END - SZ_4K);
  });

  it("the current limit bounds MEMBLOCK_ALLOC_ACCESSIBLE but not ANYWHERE", () => {
    const m = setupMemblock();
    m.memblockSetCurrentLimit(MEM_BASE + SZ_8K);
    expect(m.memblockGetCurrentLimit()).toBe(MEM_BASE + SZ_8K);
    expect(m.memblockPhysAlloc(SZ_4K, SZ_4K)).toBe(MEM_BASE + SZ_4K);
    expect(m.memblockPhysAllocRange(SZ_4K, SZ_4K, 0, MEMBLOCK_ALLOC_ANYWHERE)).toBe(MEM_END - SZ_4K);
  });
});

describe("memblock_phys_alloc_range", () => {
  it("stays inside [start, end)", () => {
    const m = setupMemblock();
    const addr = m.memblockPhysAllocRange(SZ_4K, SZ_4K, MEM_BASE, MEM_BASE + SZ_8K + SZ_512);
    expect(addr).toBe(MEM_BASE + SZ_4K);
    expectRegions(m, "reserved", [[MEM_BASE + SZ_4K, SZ_4K, MEMBLOCK_RSRV_KERN]]);
  });

  it("a window smaller than the size fails; end below start fails", () => {
    const m = setupMemblock();
    expect(m.memblockPhysAllocRange(SZ_8K, SZ_4K, MEM_BASE, MEM_BASE + SZ_4K)).toBe(0);
    expect(m.memblockPhysAllocRange(SZ_4K, SZ_4K, MEM_END, MEM_BASE + SZ_4K)).toBe(0);
  });

  it("a window that starts inside a free span uses only the part inside it", () => {
    const m = setupMemblock();
    m.memblockReserve(MEM_BASE + SZ_4K, SZ_4K);
    const addr = m.memblockPhysAllocRange(SZ_4K, SZ_4K, MEM_BASE + SZ_512, MEM_BASE + SZ_8K);
    expect(addr).toBe(0);
    expect(m.memblockPhysAllocRange(SZ_512, SZ_512, MEM_BASE + SZ_512, MEM_BASE + SZ_8K)).toBe(MEM_BASE + SZ_4K - SZ_512);
  });
});

describe("memblock_phys_alloc, bottom-up", () => {
  it("returns the lowest fit above the first page", () => {
    const m = setupMemblock();
    m.memblockSetBottomUp(true);
    expect(m.memblockBottomUp()).toBe(true);
    expect(m.memblockPhysAlloc(SZ_512, SZ_512)).toBe(MEM_BASE);
    expect(m.memblockPhysAlloc(SZ_4K, SZ_4K)).toBe(MEM_BASE + SZ_4K);
    expectRegions(m, "reserved", [
      [MEM_BASE, SZ_512, MEMBLOCK_RSRV_KERN],
      [MEM_BASE + SZ_4K, SZ_4K, MEMBLOCK_RSRV_KERN],
    ]);
  });
});

describe("KHO scratch-only mode", () => {
  /** 16 MiB of RAM at 1 GiB with 1 MiB of scratch at its bottom, as a successor sees it. */
  function successor(): Memblock {
    const m = new Memblock();
    m.memblockAdd(SZ_1G, SZ_16M);
    m.memblockMarkKhoScratch(SZ_1G, SZ_1M);
    m.memblockSetKhoScratchOnly();
    return m;
  }

  it("allocations come from scratch although higher memory is free", () => {
    const m = successor();
    expect(m.memblockPhysAlloc(SZ_4K, SZ_4K)).toBe(SZ_1G + SZ_1M - SZ_4K);
    expect(m.memblockPhysAlloc(SZ_64K, SZ_64K)).toBe(SZ_1G + SZ_1M - 2 * SZ_64K);
  });

  it("avoids reserved parts of scratch", () => {
    const m = successor();
    m.memblockReserve(SZ_1G + SZ_1M - SZ_8K, SZ_8K);
    expect(m.memblockPhysAlloc(SZ_4K, SZ_4K)).toBe(SZ_1G + SZ_1M - 3 * SZ_4K);
  });

  it("fails when scratch is full, even with free memory elsewhere", () => {
    const m = successor();
    expect(m.memblockPhysAlloc(SZ_1M, SZ_4K)).toBe(SZ_1G);
    expect(m.memblockPhysAlloc(SZ_4K, SZ_4K)).toBe(0);
    expect(m.freeRanges()).toEqual([{ base: SZ_1G + SZ_1M, size: SZ_16M - SZ_1M }]);
  });

  it("memblockAllocOrThrow names the size and scratch-only mode", () => {
    const m = successor();
    m.memblockReserve(SZ_1G, SZ_1M);
    const err = thrownBy(MemblockError, () => m.memblockAllocOrThrow(SZ_8K, SZ_4K));
    expect(err.code).toBe("ENOMEM");
    expect(err.message).toMatch(/8192 \(0x2000\) bytes/);
    expect(err.message).toMatch(/scratch-only/);
  });

  it("memblockAllocOrThrow outside scratch-only mode does not mention it, and returns on success", () => {
    const m = setupMemblock();
    expect(m.memblockAllocOrThrow(SZ_4K, SZ_4K)).toBe(MEM_END - SZ_4K);
    expect(() => m.memblockAllocOrThrow(SZ_1M, SZ_4K)).toThrow(/1048576 \(0x100000\) bytes/);
    try {
      m.memblockAllocOrThrow(SZ_1M, SZ_4K);
    } catch (e) {
      expect((e as Error).message).not.toMatch(/scratch-only/);
    }
  });

  it("leaving scratch-only mode allocates top-down from all memory again", () => {
    const m = successor();
    m.memblockClearKhoScratchOnly();
    expect(m.memblockPhysAlloc(SZ_4K, SZ_4K)).toBe(SZ_1G + SZ_16M - SZ_4K);
  });

  it("no scratch at all: every scratch-only allocation fails", () => {
    const m = new Memblock();
    m.memblockAdd(SZ_1G, SZ_16M);
    m.memblockSetKhoScratchOnly();
    expect(m.memblockPhysAlloc(SZ_4K, SZ_4K)).toBe(0);
  });
});

describe("free ranges (memblock_free_all's input)", () => {
  it("memory minus reserved, ascending", () => {
    const m = new Memblock();
    m.memblockAdd(SZ_1M, SZ_1M);
    m.memblockAdd(SZ_16M, SZ_1M);
    m.memblockReserve(SZ_1M + SZ_4K, SZ_4K);
    m.memblockReserve(SZ_16M - SZ_4K, SZ_8K);
    m.memblockReserve(SZ_1G, SZ_4K);
    expect(m.freeRanges()).toEqual([
      { base: SZ_1M, size: SZ_4K },
      { base: SZ_1M + SZ_8K, size: SZ_1M - SZ_8K },
      { base: SZ_16M + SZ_4K, size: SZ_1M - SZ_4K },
    ]);
    expect([...m.forEachFreeMemRange()]).toEqual(m.freeRanges());
  });

  it("a range never crosses a memory region boundary (e.g. scratch)", () => {
    const m = new Memblock();
    m.memblockAdd(0, SZ_2M);
    m.memblockMarkKhoScratch(SZ_1M, SZ_1M);
    expect(m.freeRanges()).toEqual([
      { base: 0, size: SZ_1M },
      { base: SZ_1M, size: SZ_1M },
    ]);
    expect(m.freeRanges(MEMBLOCK_KHO_SCRATCH)).toEqual([{ base: SZ_1M, size: SZ_1M }]);
  });

  it("NOMAP memory is not freed; the first page is", () => {
    const m = new Memblock();
    m.memblockAdd(0, 3 * SZ_1M);
    m.memblockMarkNomap(SZ_1M, SZ_1M);
    expect(m.freeRanges()).toEqual([
      { base: 0, size: SZ_1M },
      { base: SZ_2M, size: SZ_1M },
    ]);
    // Asking for NOMAP explicitly includes it, still one range per region.
    expect(m.freeRanges(MEMBLOCK_NOMAP)).toEqual([
      { base: 0, size: SZ_1M },
      { base: SZ_1M, size: SZ_1M },
      { base: SZ_2M, size: SZ_1M },
    ]);
  });

  it("reserved regions straddling memory edges are cut at the edges", () => {
    const m = new Memblock();
    m.memblockAdd(SZ_1M, SZ_1M);
    m.memblockReserve(0, SZ_1M + SZ_4K);
    m.memblockReserve(SZ_2M - SZ_4K, SZ_1M);
    expect(m.freeRanges()).toEqual([{ base: SZ_1M + SZ_4K, size: SZ_1M - SZ_8K }]);
  });

  it("nothing free when all memory is reserved; empty memblock gives nothing", () => {
    const m = setupMemblock();
    m.memblockReserve(0, SZ_1G);
    expect(m.freeRanges()).toEqual([]);
    expect(new Memblock().freeRanges()).toEqual([]);
  });
});
