/*
 * memblock flag setters (reserved_mark_noinit, mark/clear_kho_scratch) and
 * queries, in the style of Linux tools/testing/memblock: a fresh memblock
 * per test, one API call at a time, then assert region count, base, size,
 * flags and total size.
 */
import { describe, expect, it } from "vitest";
import {
  MEMBLOCK_HOTPLUG,
  MEMBLOCK_KHO_SCRATCH,
  MEMBLOCK_NONE,
  MEMBLOCK_RSRV_NOINIT,
  type MemblockRegion,
} from "../src/mm/memblock/index.js";
import {
  SZ_1G,
  SZ_1M,
  SZ_2M,
  SZ_4K,
  SZ_8K,
  SZ_16K,
  SZ_16M,
  SZ_32K,
  SZ_64K,
  SZ_128K,
  SZ_256M,
  SZ_512M,
  expectRegions,
  fresh,
} from "./memblock-common.js";

describe("memblock_reserved_mark_noinit", () => {
  it("marking the middle splits the region into three", () => {
    const m = fresh();
    m.memblockReserve(SZ_1M, SZ_64K);
    m.memblockReservedMarkNoinit(SZ_1M + SZ_16K, SZ_16K);
    expectRegions(m, "reserved", [
      [SZ_1M, SZ_16K],
      [SZ_1M + SZ_16K, SZ_16K, MEMBLOCK_RSRV_NOINIT],
      [SZ_1M + 2 * SZ_16K, SZ_64K - 2 * SZ_16K],
    ]);
    expect(m.memblockReservedSize()).toBe(SZ_64K);
  });

  it("marking the whole region flags it in place", () => {
    const m = fresh();
    m.memblockReserve(SZ_1M, SZ_64K);
    m.memblockReservedMarkNoinit(SZ_1M, SZ_64K);
    expectRegions(m, "reserved", [[SZ_1M, SZ_64K, MEMBLOCK_RSRV_NOINIT]]);
  });

  it("marking twice, or a sub-range of a marked region, changes nothing", () => {
    const m = fresh();
    m.memblockReserve(SZ_1M, SZ_64K);
    m.memblockReservedMarkNoinit(SZ_1M, SZ_64K);
    m.memblockReservedMarkNoinit(SZ_1M + SZ_4K, SZ_4K);
    m.memblockReservedMarkNoinit(SZ_1M, SZ_64K);
    expectRegions(m, "reserved", [[SZ_1M, SZ_64K, MEMBLOCK_RSRV_NOINIT]]);
  });

  it("is a no-op on memory that is not reserved", () => {
    const m = fresh();
    m.memblockAdd(0, SZ_16M);
    m.memblockReservedMarkNoinit(SZ_1M, SZ_64K);
    expectRegions(m, "reserved", []);
    expectRegions(m, "memory", [[0, SZ_16M]]);
  });

  it("marks only the reserved parts of a range with holes", () => {
    const m = fresh();
    m.memblockReserve(SZ_1M, SZ_4K);
    m.memblockReserve(SZ_1M + SZ_16K, SZ_4K);
    m.memblockReservedMarkNoinit(SZ_1M - SZ_4K, SZ_64K);
    expectRegions(m, "reserved", [
      [SZ_1M, SZ_4K, MEMBLOCK_RSRV_NOINIT],
      [SZ_1M + SZ_16K, SZ_4K, MEMBLOCK_RSRV_NOINIT],
    ]);
  });

  it("the seed's order (mark_noinit, then reserve) loses the flag; reserve-then-mark keeps it", () => {
    // deserialize_range() in seed/kho-ranges-code.c:
    //   memblock_reserved_mark_noinit(start, size); memblock_reserve(start, size);
    const seed = fresh();
    seed.memblockReservedMarkNoinit(SZ_16M, SZ_2M);
    expectRegions(seed, "reserved", []);
    seed.memblockReserve(SZ_16M, SZ_2M);
    expectRegions(seed, "reserved", [[SZ_16M, SZ_2M, MEMBLOCK_NONE]]);

    const fixed = fresh();
    fixed.memblockReserve(SZ_16M, SZ_2M);
    fixed.memblockReservedMarkNoinit(SZ_16M, SZ_2M);
    expectRegions(fixed, "reserved", [[SZ_16M, SZ_2M, MEMBLOCK_RSRV_NOINIT]]);
  });

  it("adjacent preserved ranges, each reserved then marked, merge into one NOINIT region", () => {
    const m = fresh();
    m.memblockReserve(SZ_1M, SZ_4K);
    m.memblockReservedMarkNoinit(SZ_1M, SZ_4K);
    m.memblockReserve(SZ_1M + SZ_4K, SZ_4K);
    // In between the new part is NONE and does not merge with the NOINIT one.
    expectRegions(m, "reserved", [
      [SZ_1M, SZ_4K, MEMBLOCK_RSRV_NOINIT],
      [SZ_1M + SZ_4K, SZ_4K],
    ]);
    m.memblockReservedMarkNoinit(SZ_1M + SZ_4K, SZ_4K);
    expectRegions(m, "reserved", [[SZ_1M, SZ_8K, MEMBLOCK_RSRV_NOINIT]]);
  });

  it("marking a span over NONE and NOINIT pieces merges everything back into one", () => {
    const m = fresh();
    m.memblockReserve(SZ_1M, SZ_64K);
    m.memblockReservedMarkNoinit(SZ_1M + SZ_16K, SZ_4K);
    m.memblockReservedMarkNoinit(SZ_1M + SZ_32K, SZ_4K);
    expect(m.regionCount("reserved")).toBe(5);
    m.memblockReservedMarkNoinit(SZ_1M, SZ_64K);
    expectRegions(m, "reserved", [[SZ_1M, SZ_64K, MEMBLOCK_RSRV_NOINIT]]);
  });
});


describe("memblock_mark_kho_scratch / memblock_clear_kho_scratch", () => {
  it("marking the middle of memory isolates it: three regions", () => {
    const m = fresh();
    m.memblockAdd(0, SZ_1G);
    m.memblockMarkKhoScratch(SZ_256M, SZ_256M);
    expectRegions(m, "memory", [
      [0, SZ_256M],
      [SZ_256M, SZ_256M, MEMBLOCK_KHO_SCRATCH],
      [SZ_512M, SZ_512M],
    ]);
    expect(m.memblockPhysMemSize()).toBe(SZ_1G);
  });

  it("clearing merges the pieces back into one region", () => {
    const m = fresh();
    m.memblockAdd(0, SZ_1G);
    m.memblockMarkKhoScratch(SZ_256M, SZ_256M);
    m.memblockClearKhoScratch(SZ_256M, SZ_256M);
    expectRegions(m, "memory", [[0, SZ_1G]]);
  });

  it("clearing part of a scratch area splits it", () => {
    const m = fresh();
    m.memblockAdd(0, SZ_1G);
    m.memblockMarkKhoScratch(0, SZ_1G);
    m.memblockClearKhoScratch(SZ_256M, SZ_256M);
    expectRegions(m, "memory", [
      [0, SZ_256M, MEMBLOCK_KHO_SCRATCH],
      [SZ_256M, SZ_256M],
      [SZ_512M, SZ_512M, MEMBLOCK_KHO_SCRATCH],
    ]);
  });

  it("marking outside memory does nothing; marking across a hole marks both sides only", () => {
    const m = fresh();
    m.memblockAdd(0, SZ_1M);
    m.memblockAdd(SZ_2M, SZ_1M);
    m.memblockMarkKhoScratch(SZ_16M, SZ_1M);
    expectRegions(m, "memory", [
      [0, SZ_1M],
      [SZ_2M, SZ_1M],
    ]);
    m.memblockMarkKhoScratch(SZ_1M - SZ_4K, SZ_1M + SZ_8K);
    expectRegions(m, "memory", [
      [0, SZ_1M - SZ_4K],
      [SZ_1M - SZ_4K, SZ_4K, MEMBLOCK_KHO_SCRATCH],
      [SZ_2M, SZ_4K, MEMBLOCK_KHO_SCRATCH],
      [SZ_2M + SZ_4K, SZ_1M - SZ_4K],
    ]);
  });

  it("flags on memory and on reserved are independent", () => {
    const m = fresh();
    m.memblockAdd(0, SZ_1M);
    m.memblockReserve(0, SZ_1M);
    m.memblockMarkKhoScratch(0, SZ_1M);
    m.memblockReservedMarkNoinit(0, SZ_1M);
    expectRegions(m, "memory", [[0, SZ_1M, MEMBLOCK_KHO_SCRATCH]]);
    expectRegions(m, "reserved", [[0, SZ_1M, MEMBLOCK_RSRV_NOINIT]]);
  });

  it("other memory flags combine: hotplug + scratch on one range", () => {
    const m = fresh();
    m.memblockAdd(0, SZ_1M);
    m.memblockMarkHotplug(0, SZ_1M);
    m.memblockMarkKhoScratch(SZ_64K, SZ_64K);
    expectRegions(m, "memory", [
      [0, SZ_64K, MEMBLOCK_HOTPLUG],
      [SZ_64K, SZ_64K, MEMBLOCK_HOTPLUG | MEMBLOCK_KHO_SCRATCH],
      [SZ_128K, SZ_1M - SZ_128K, MEMBLOCK_HOTPLUG],
    ]);
    m.memblockClearHotplug(0, SZ_1M);
    expectRegions(m, "memory", [
      [0, SZ_64K],
      [SZ_64K, SZ_64K, MEMBLOCK_KHO_SCRATCH],
      [SZ_128K, SZ_1M - SZ_128K],
    ]);
  });
});

describe("queries", () => {
  it("memblock_is_memory / is_reserved look up single addresses", () => {
    const m = fresh();
    m.memblockAdd(SZ_1M, SZ_1M);
    m.memblockReserve(SZ_1M + SZ_4K, SZ_4K);
    expect(m.memblockIsMemory(SZ_1M - 1)).toBe(false);
    expect(m.memblockIsMemory(SZ_1M)).toBe(true);
    expect(m.memblockIsMemory(SZ_2M - 1)).toBe(true);
    expect(m.memblockIsMemory(SZ_2M)).toBe(false);
    expect(m.memblockIsReserved(SZ_1M + SZ_4K - 1)).toBe(false);
    expect(m.memblockIsReserved(SZ_1M + SZ_4K)).toBe(true);
    expect(m.memblockIsReserved(SZ_1M + SZ_8K)).toBe(false);
  });

  it("memblock_is_region_reserved is true on any overlap, false when only touching", () => {
    const m = fresh();
    m.memblockReserve(SZ_1M, SZ_4K);
    expect(m.memblockIsRegionReserved(SZ_1M - SZ_4K, SZ_4K)).toBe(false);
    expect(m.memblockIsRegionReserved(SZ_1M + SZ_4K, SZ_4K)).toBe(false);
    expect(m.memblockIsRegionReserved(SZ_1M - SZ_4K, SZ_4K + 1)).toBe(true);
    expect(m.memblockIsRegionReserved(SZ_1M + SZ_4K - 1, SZ_4K)).toBe(true);
    expect(m.memblockIsRegionReserved(0, SZ_16M)).toBe(true);
    expect(m.memblockIsRegionReserved(SZ_1M + 1, 1)).toBe(true);
  });

  it("memblock_is_region_memory needs one region to hold the whole range", () => {
    const m = fresh();
    m.memblockAdd(0, SZ_2M);
    m.memblockMarkKhoScratch(SZ_1M, SZ_1M);
    expect(m.memblockIsRegionMemory(0, SZ_1M)).toBe(true);
    expect(m.memblockIsRegionMemory(SZ_1M, SZ_1M)).toBe(true);
    // Like the kernel: the range spans two regions, so it is not "region memory".
    expect(m.memblockIsRegionMemory(SZ_1M - SZ_4K, SZ_8K)).toBe(false);
    expect(m.memblockIsRegionMemory(SZ_2M - SZ_4K, SZ_8K)).toBe(false);
  });

  it("start and end of DRAM", () => {
    const m = fresh();
    expect(m.memblockStartOfDRAM()).toBe(0);
    expect(m.memblockEndOfDRAM()).toBe(0);
    m.memblockAdd(SZ_1G, SZ_1M);
    m.memblockAdd(SZ_1M, SZ_1M);
    expect(m.memblockStartOfDRAM()).toBe(SZ_1M);
    expect(m.memblockEndOfDRAM()).toBe(SZ_1G + SZ_1M);
  });

  it("regions() returns copies", () => {
    const m = fresh();
    m.memblockReserve(SZ_1M, SZ_4K);
    const list = m.regions("reserved");
    (list[0] as MemblockRegion).size = 1;
    list.push({ base: 0, size: 1, flags: 0 });
    expectRegions(m, "reserved", [[SZ_1M, SZ_4K]]);
    expect([...m.forEachRegion("reserved")]).toEqual(m.regions("reserved"));
  });

  it("memblockDumpAll lists both types", () => {
    const m = fresh();
    m.memblockAdd(0, SZ_1M);
    m.memblockReserve(SZ_4K, SZ_4K);
    m.memblockReservedMarkNoinit(SZ_4K, SZ_4K);
    const text = m.memblockDumpAll();
    expect(text).toContain("memory[0x0]\t[0x0-0xfffff], 0x100000 bytes flags: NONE");
    expect(text).toContain("reserved[0x0]\t[0x1000-0x1fff], 0x1000 bytes flags: RSV_NIT");
  });
});
