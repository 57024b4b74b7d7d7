/*
 * memblock region-list tests in the style of Linux tools/testing/memblock
 * (tests/basic_api.c): a fresh memblock per test, one API call at a time,
 * then assert region count, base, size, flags and total size.
 */
import { describe, expect, it } from "vitest";
import {
  MEMBLOCK_DRIVER_MANAGED,
  MEMBLOCK_HOTPLUG,
  MEMBLOCK_KHO_SCRATCH,
  MEMBLOCK_MIRROR,
  MEMBLOCK_NOMAP,
  MEMBLOCK_NONE,
  MEMBLOCK_RSRV_KERN,
  MEMBLOCK_RSRV_NOINIT,
  Memblock,
  MemblockError,
  PHYS_ADDR_MAX,
  memblockFlagNames,
} from "../src/mm/memblock/index.js";
import {
  SZ_1G,
  SZ_1K,
  SZ_1M,
  SZ_2G,
  SZ_2K,
  SZ_2M,
  SZ_4G,
  SZ_4K,
  SZ_4M,
  SZ_8K,
  SZ_16K,
  SZ_16M,
  SZ_32M,
  SZ_64K,
  SZ_128K,
  SZ_256M,
  SZ_512M,
  expectRegions,
  fresh,
} from "./memblock-common.js";
import { thrownBy } from "./thrown.js";

describe("memblock flags", () => {
  it("have the values of include/linux/memblock.h", () => {
    expect(MEMBLOCK_NONE).toBe(0x0);
    expect(MEMBLOCK_HOTPLUG).toBe(0x1);
    expect(MEMBLOCK_MIRROR).toBe(0x2);
    expect(MEMBLOCK_NOMAP).toBe(0x4);
    expect(MEMBLOCK_DRIVER_MANAGED).toBe(0x8);
    expect(MEMBLOCK_RSRV_NOINIT).toBe(0x10);
    expect(MEMBLOCK_RSRV_KERN).toBe(0x20);
    expect(MEMBLOCK_KHO_SCRATCH).toBe(0x40);
  });

  it("print like memblock's debugfs", () => {
    expect(memblockFlagNames(MEMBLOCK_NONE)).toBe("NONE");
    expect(memblockFlagNames(MEMBLOCK_RSRV_NOINIT | MEMBLOCK_RSRV_KERN)).toBe("RSV_NIT|RSV_KERN");
    expect(memblockFlagNames(MEMBLOCK_KHO_SCRATCH)).toBe("KHO_SCRATCH");
    expect(memblockFlagNames(0x100)).toBe("0x100");
  });
});

describe("memblock_add", () => {
  it("simple: one region, count 1, total = size", () => {
    const m = fresh();
    expectRegions(m, "memory", []);
    m.memblockAdd(SZ_1G, SZ_4G);
    expectRegions(m, "memory", [[SZ_1G, SZ_4G]]);
    expect(m.memblockPhysMemSize()).toBe(SZ_4G);
  });

  it("disjoint: two regions, ascending whatever the call order", () => {
    const m = fresh();
    m.memblockAdd(SZ_1G, SZ_8K);
    m.memblockAdd(SZ_256M, SZ_16K);
    expectRegions(m, "memory", [
      [SZ_256M, SZ_16K],
      [SZ_1G, SZ_8K],
    ]);
  });

  it("overlap top: new region overlaps the bottom of an existing one -> one region", () => {
    const m = fresh();
    const r1 = { base: SZ_512M, size: SZ_1G };
    const r2 = { base: SZ_256M, size: SZ_512M };
    m.memblockAdd(r1.base, r1.size);
    m.memblockAdd(r2.base, r2.size);
    expectRegions(m, "memory", [[r2.base, r1.base + r1.size - r2.base]]);
  });

  it("overlap bottom: new region overlaps the top of an existing one -> one region", () => {
    const m = fresh();
    const r1 = { base: SZ_128K, size: SZ_512M };
    const r2 = { base: SZ_256M, size: SZ_1G };
    m.memblockAdd(r1.base, r1.size);
    m.memblockAdd(r2.base, r2.size);
    expectRegions(m, "memory", [[r1.base, r2.base + r2.size - r1.base]]);
  });

  it("within: adding a range inside an existing region changes nothing", () => {
    const m = fresh();
    m.memblockAdd(SZ_8K, SZ_1M);
    m.memblockAdd(SZ_16K, SZ_2M - SZ_1M - SZ_16K);
    expectRegions(m, "memory", [[SZ_8K, SZ_1M]]);
  });

  it("twice: the same region twice is one region", () => {
    const m = fresh();
    m.memblockAdd(SZ_128K, SZ_2M);
    m.memblockAdd(SZ_128K, SZ_2M);
    expectRegions(m, "memory", [[SZ_128K, SZ_2M]]);
  });

  it("between: filling the gap between two regions merges all three", () => {
    const m = fresh();
    m.memblockAdd(SZ_1G, SZ_8K);
    m.memblockAdd(SZ_1G + SZ_16K, SZ_8K);
    expectRegions(m, "memory", [
      [SZ_1G, SZ_8K],
      [SZ_1G + SZ_16K, SZ_8K],
    ]);
    m.memblockAdd(SZ_1G + SZ_8K, SZ_8K);
    expectRegions(m, "memory", [[SZ_1G, SZ_16K + SZ_8K]]);
  });

  it("near max: the size is capped at PHYS_ADDR_MAX - base", () => {
    const m = fresh();
    const base = PHYS_ADDR_MAX - SZ_1M;
    m.memblockAdd(base, SZ_2M);
    expectRegions(m, "memory", [[base, SZ_1M]]);
  });

  it("size 0 adds nothing", () => {
    const m = fresh();
    m.memblockAdd(SZ_1G, 0);
    expectRegions(m, "memory", []);
  });

  it("touching regions with different flags stay apart", () => {
    const m = fresh();
    m.memblockAdd(SZ_1G, SZ_1M);
    m.memblockMarkKhoScratch(SZ_1G, SZ_1M);
    m.memblockAdd(SZ_1G + SZ_1M, SZ_1M);
    expectRegions(m, "memory", [
      [SZ_1G, SZ_1M, MEMBLOCK_KHO_SCRATCH],
      [SZ_1G + SZ_1M, SZ_1M],
    ]);
  });

  it("overlapping a flagged region keeps its flags and adds NONE pieces around it", () => {
    const m = fresh();
    m.memblockAdd(SZ_1G, SZ_1M);
    m.memblockMarkKhoScratch(SZ_1G, SZ_1M);
    m.memblockAdd(SZ_1G - SZ_1M, 3 * SZ_1M);
    expectRegions(m, "memory", [
      [SZ_1G - SZ_1M, SZ_1M],
      [SZ_1G, SZ_1M, MEMBLOCK_KHO_SCRATCH],
      [SZ_1G + SZ_1M, SZ_1M],
    ]);
  });

  it("covering several regions fills every gap and merges to one", () => {
    const m = fresh();
    for (let i = 0; i < 5; i++) m.memblockAdd(i * SZ_64K, SZ_4K);
    expect(m.regionCount("memory")).toBe(5);
    m.memblockAdd(0, 5 * SZ_64K);
    expectRegions(m, "memory", [[0, 5 * SZ_64K]]);
  });
});

describe("memblock_reserve", () => {
  it("simple: one reserved region", () => {
    const m = fresh();
    m.memblockReserve(SZ_2G, SZ_128K);
    expectRegions(m, "reserved", [[SZ_2G, SZ_128K]]);
    expect(m.memblockReservedSize()).toBe(SZ_128K);
    expectRegions(m, "memory", []);
  });

  it("disjoint: two reserved regions", () => {
    const m = fresh();
    m.memblockReserve(SZ_256M, SZ_16K);
    m.memblockReserve(SZ_256M + SZ_64K, SZ_8K);
    expectRegions(m, "reserved", [
      [SZ_256M, SZ_16K],
      [SZ_256M + SZ_64K, SZ_8K],
    ]);
  });

  it("two adjacent regions -> one region of combined size", () => {
    const m = fresh();
    m.memblockReserve(SZ_1M, SZ_4K);
    m.memblockReserve(SZ_1M + SZ_4K, SZ_8K);
    expectRegions(m, "reserved", [[SZ_1M, SZ_4K + SZ_8K]]);
  });

  it("adjacent below an existing region -> one region", () => {
    const m = fresh();
    m.memblockReserve(SZ_1M + SZ_4K, SZ_8K);
    m.memblockReserve(SZ_1M, SZ_4K);
    expectRegions(m, "reserved", [[SZ_1M, SZ_4K + SZ_8K]]);
  });

  it("overlap top: new region overlaps the bottom of an existing one", () => {
    const m = fresh();
    const r1 = { base: SZ_1G, size: SZ_1G };
    const r2 = { base: SZ_128K, size: SZ_1G };
    m.memblockReserve(r1.base, r1.size);
    m.memblockReserve(r2.base, r2.size);
    expectRegions(m, "reserved", [[r2.base, r1.base + r1.size - r2.base]]);
  });

  it("overlap bottom: new region overlaps the top of an existing one", () => {
    const m = fresh();
    const r1 = { base: SZ_2K, size: SZ_128K };
    const r2 = { base: SZ_128K, size: SZ_128K };
    m.memblockReserve(r1.base, r1.size);
    m.memblockReserve(r2.base, r2.size);
    expectRegions(m, "reserved", [[r1.base, r2.base + r2.size - r1.base]]);
  });

  it("within: reserving inside a reserved region changes nothing", () => {
    const m = fresh();
    m.memblockReserve(SZ_1M, SZ_8K);
    m.memblockReserve(SZ_1M + SZ_1K, SZ_1K);
    expectRegions(m, "reserved", [[SZ_1M, SZ_8K]]);
  });

  it("twice: the same range twice is one region", () => {
    const m = fresh();
    m.memblockReserve(SZ_16K, SZ_2M);
    m.memblockReserve(SZ_16K, SZ_2M);
    expectRegions(m, "reserved", [[SZ_16K, SZ_2M]]);
  });

  it("between: reserving the exact gap merges the two neighbours", () => {
    const m = fresh();
    m.memblockReserve(SZ_1G, SZ_8K);
    m.memblockReserve(SZ_1G + SZ_16K, SZ_8K);
    m.memblockReserve(SZ_1G + SZ_8K, SZ_8K);
    expectRegions(m, "reserved", [[SZ_1G, 3 * SZ_8K]]);
  });

  it("near max: capped at PHYS_ADDR_MAX", () => {
    const m = fresh();
    m.memblockReserve(PHYS_ADDR_MAX - SZ_1K, SZ_1M);
    expectRegions(m, "reserved", [[PHYS_ADDR_MAX - SZ_1K, SZ_1K]]);
  });

  it("needs no memory behind it and does not touch the memory list", () => {
    const m = fresh();
    m.memblockAdd(0, SZ_1M);
    m.memblockReserve(SZ_2M, SZ_4K);
    expectRegions(m, "memory", [[0, SZ_1M]]);
    expectRegions(m, "reserved", [[SZ_2M, SZ_4K]]);
  });

  it("over a NOINIT region keeps it and adds NONE pieces around it", () => {
    const m = fresh();
    m.memblockReserve(SZ_1M, SZ_4K);
    m.memblockReservedMarkNoinit(SZ_1M, SZ_4K);
    m.memblockReserve(SZ_1M - SZ_4K, 3 * SZ_4K);
    expectRegions(m, "reserved", [
      [SZ_1M - SZ_4K, SZ_4K],
      [SZ_1M, SZ_4K, MEMBLOCK_RSRV_NOINIT],
      [SZ_1M + SZ_4K, SZ_4K],
    ]);
  });

  it("memblock_reserve_kern regions do not merge with plain reserved neighbours", () => {
    const m = fresh();
    m.memblockReserve(SZ_1M, SZ_4K);
    m.memblockReserveKern(SZ_1M + SZ_4K, SZ_4K);
    expectRegions(m, "reserved", [
      [SZ_1M, SZ_4K],
      [SZ_1M + SZ_4K, SZ_4K, MEMBLOCK_RSRV_KERN],
    ]);
    m.memblockReserveKern(SZ_1M + SZ_8K, SZ_4K);
    expectRegions(m, "reserved", [
      [SZ_1M, SZ_4K],
      [SZ_1M + SZ_4K, SZ_8K, MEMBLOCK_RSRV_KERN],
    ]);
  });
});


describe("memblock_remove", () => {
  it("simple: removing one of two regions leaves the other", () => {
    const m = fresh();
    m.memblockAdd(SZ_2K, SZ_4K);
    m.memblockAdd(SZ_128K, SZ_4G);
    m.memblockRemove(SZ_2K, SZ_4K);
    expectRegions(m, "memory", [[SZ_128K, SZ_4G]]);
  });

  it("absent: removing a range no region covers changes nothing", () => {
    const m = fresh();
    m.memblockAdd(SZ_512M, SZ_4M);
    m.memblockRemove(SZ_1G + SZ_4M, SZ_1G);
    expectRegions(m, "memory", [[SZ_512M, SZ_4M]]);
  });

  it("overlap top: removing across the bottom edge trims the region", () => {
    const m = fresh();
    m.memblockAdd(SZ_1G, SZ_1G);
    m.memblockRemove(SZ_512M, SZ_1G);
    expectRegions(m, "memory", [[SZ_512M + SZ_1G, SZ_1G - SZ_512M]]);
  });

  it("overlap bottom: removing across the top edge trims the region", () => {
    const m = fresh();
    m.memblockAdd(SZ_2K, SZ_1G);
    m.memblockRemove(SZ_512M, SZ_1G);
    expectRegions(m, "memory", [[SZ_2K, SZ_512M - SZ_2K]]);
  });

  it("within: removing the middle splits the region in two", () => {
    const m = fresh();
    m.memblockAdd(SZ_1M, SZ_32M);
    m.memblockRemove(SZ_16M, SZ_1M);
    expectRegions(m, "memory", [
      [SZ_1M, SZ_16M - SZ_1M],
      [SZ_16M + SZ_1M, SZ_1M + SZ_32M - SZ_16M - SZ_1M],
    ]);
  });

  it("only region: removing it leaves an empty list (count 0)", () => {
    const m = fresh();
    m.memblockAdd(SZ_2K, SZ_4K);
    m.memblockRemove(SZ_2K, SZ_4K);
    expectRegions(m, "memory", []);
  });

  it("near max: removing past PHYS_ADDR_MAX is capped", () => {
    const m = fresh();
    const base = PHYS_ADDR_MAX - SZ_2M;
    m.memblockAdd(base, SZ_2M);
    m.memblockRemove(base + SZ_1M, SZ_4M);
    expectRegions(m, "memory", [[base, SZ_1M]]);
  });

  it("overlap two: a range over the end of one and the start of the next trims both", () => {
    const m = fresh();
    m.memblockAdd(SZ_1M, SZ_1M);
    m.memblockAdd(SZ_4M, SZ_1M);
    m.memblockRemove(SZ_1M + SZ_64K, SZ_4M - SZ_1M);
    expectRegions(m, "memory", [
      [SZ_1M, SZ_64K],
      [SZ_4M + SZ_64K, SZ_1M - SZ_64K],
    ]);
  });

  it("removing a range over many regions drops all of them", () => {
    const m = new Memblock({ chunkMax: 4 });
    for (let i = 0; i < 40; i++) m.memblockAdd(i * SZ_64K, SZ_4K);
    m.memblockRemove(SZ_64K + SZ_1K, 37 * SZ_64K);
    expectRegions(m, "memory", [
      [0, SZ_4K],
      [SZ_64K, SZ_1K],
      [38 * SZ_64K + SZ_1K, SZ_4K - SZ_1K],
      [39 * SZ_64K, SZ_4K],
    ]);
  });
});


describe("memblock_phys_free", () => {
  it("simple: freeing one of two reserved regions", () => {
    const m = fresh();
    m.memblockReserve(SZ_4M, SZ_1M);
    m.memblockReserve(SZ_8K, SZ_1K);
    m.memblockPhysFree(SZ_8K, SZ_1K);
    expectRegions(m, "reserved", [[SZ_4M, SZ_1M]]);
    expect(m.memblockReservedSize()).toBe(SZ_1M);
  });

  it("absent: freeing what is not reserved changes nothing", () => {
    const m = fresh();
    m.memblockReserve(SZ_2M, SZ_8K);
    m.memblockPhysFree(SZ_16M, SZ_128K);
    expectRegions(m, "reserved", [[SZ_2M, SZ_8K]]);
  });

  it("splits a reserved region when freeing its middle", () => {
    const m = fresh();
    m.memblockReserve(SZ_1M, SZ_64K);
    m.memblockPhysFree(SZ_1M + SZ_16K, SZ_8K);
    expectRegions(m, "reserved", [
      [SZ_1M, SZ_16K],
      [SZ_1M + SZ_16K + SZ_8K, SZ_64K - SZ_16K - SZ_8K],
    ]);
  });

  it("overlap top and bottom trim the region", () => {
    const m = fresh();
    m.memblockReserve(SZ_1M, SZ_64K);
    m.memblockPhysFree(SZ_1M - SZ_4K, SZ_8K);
    expectRegions(m, "reserved", [[SZ_1M + SZ_4K, SZ_64K - SZ_4K]]);
    m.memblockPhysFree(SZ_1M + SZ_64K - SZ_4K, SZ_8K);
    expectRegions(m, "reserved", [[SZ_1M + SZ_4K, SZ_64K - SZ_8K]]);
  });

  it("only region: freeing it leaves count 0 and size 0", () => {
    const m = fresh();
    m.memblockReserve(SZ_2K, SZ_16K);
    m.memblockPhysFree(SZ_2K, SZ_16K);
    expectRegions(m, "reserved", []);
    expect(m.memblockReservedSize()).toBe(0);
  });

  it("keeps the flags of the pieces it leaves", () => {
    const m = fresh();
    m.memblockReserve(SZ_1M, SZ_64K);
    m.memblockReservedMarkNoinit(SZ_1M, SZ_64K);
    m.memblockPhysFree(SZ_1M + SZ_4K, SZ_4K);
    expectRegions(m, "reserved", [
      [SZ_1M, SZ_4K, MEMBLOCK_RSRV_NOINIT],
      [SZ_1M + SZ_8K, SZ_64K - SZ_8K, MEMBLOCK_RSRV_NOINIT],
    ]);
  });

  it("does not touch the memory list", () => {
    const m = fresh();
    m.memblockAdd(0, SZ_1M);
    m.memblockReserve(0, SZ_1M);
    m.memblockPhysFree(0, SZ_1M);
    expectRegions(m, "memory", [[0, SZ_1M]]);
    expectRegions(m, "reserved", []);
  });
});

describe("argument checks", () => {
  const bad = [-1, 0.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, Number.MAX_SAFE_INTEGER + 2];

  it.each(bad)("rejects base/size %s with MemblockError EINVAL", (v) => {
    const m = fresh();
    for (const call of [
      () => m.memblockAdd(v, SZ_4K),
      () => m.memblockAdd(0, v),
      () => m.memblockReserve(v, SZ_4K),
      () => m.memblockReserve(0, v),
      () => m.memblockRemove(v, 1),
      () => m.memblockPhysFree(0, v),
      () => m.memblockReservedMarkNoinit(v, 1),
      () => m.memblockMarkKhoScratch(0, v),
      () => m.memblockClearKhoScratch(v, 1),
      () => m.memblockIsMemory(v),
      () => m.memblockIsRegionReserved(v, 1),
      () => m.memblockPhysAlloc(v, 0),
      () => m.memblockPhysAllocRange(SZ_4K, 0, v, 0),
    ]) {
      const err = thrownBy(MemblockError, () => call());
      expect(err.code).toBe("EINVAL");
    }
    m.memblockSelfCheck();
    expect(m.regionCount("memory") + m.regionCount("reserved")).toBe(0);
  });

  it("names the function and the argument", () => {
    const m = fresh();
    expect(() => m.memblockReserve(-4096, 1)).toThrow(/memblock_reserve: base -4096/);
    expect(() => m.memblockAdd(0, 1.5)).toThrow(/memblock_add: size 1.5/);
  });

  it("rejects a silly chunk size", () => {
    expect(() => new Memblock({ chunkMax: 1 })).toThrow(MemblockError);
  });
});
