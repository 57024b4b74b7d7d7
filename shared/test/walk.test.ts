import { describe, expect, it } from "vitest";
import { KHO_DATA_FOLIO, KHO_DATA_PHYS, khoDataFolio, khoserRangeOffset } from "../src/abi/ranges.js";
import { PAGE_SIZE } from "../src/abi/page.js";
import { u64leBytes } from "../src/lib/bytes.js";
import { SparseMem, type PhysMem } from "../src/mm/physmem.js";
import { encodeChunk } from "../src/kho/serialize.js";
import type { KhoMemRange } from "../src/kho/track.js";
import { KHO_WALK_MAX_ORDER, type KhoWalkError, type KhoWalkErrorCode } from "../src/kho/walk.js";
import { khoMemWalk, type KhoMemWalkResult } from "../src/kho/formats/ranges.js";
import { type ChunkWant, catchWalkError, expectChunkError } from "./format-common.js";

/* A walk result as { chunks, ranges } (its ranges objects are made on first use; the typed table is checked against them). */
function plainWalk(w: KhoMemWalkResult): { chunks: number[]; ranges: KhoMemRange[] } {
  expect(w.table.count).toBe(w.ranges.length);
  w.ranges.forEach((r, i) => expect([w.table.start[i], w.table.size[i], w.table.data[i]]).toEqual([r.start, r.size, r.data]));
  return { chunks: w.chunks, ranges: w.ranges };
}

const P = PAGE_SIZE;
const RAM_BASE = 0x4000_0000;
const RAM_SIZE = 0x1000_0000; // 256 MiB
const RAM_END = RAM_BASE + RAM_SIZE;
const SCRATCH = { addr: 0x4800_0000, size: 0x0100_0000 };
const CTX = { ramBase: RAM_BASE, ramSize: RAM_SIZE, scratch: [SCRATCH] };
/* Chunk pages, deliberately not ascending. */
const C0 = 0x4f00_0000;
const C1 = 0x4e00_0000;
const C2 = 0x4f80_0000;
const PAGES = [C0, C1, C2];

/* The default list: 170 + 170 + 5 single-page ranges, one page apart. */
const R: KhoMemRange[] = Array.from({ length: 345 }, (_, i) => ({
  start: RAM_BASE + 2 * i * P,
  size: P,
  data: i % 2 === 0 ? KHO_DATA_PHYS : khoDataFolio(0),
}));
const DEFAULT_CHUNKS = [R.slice(0, 170), R.slice(170, 340), R.slice(340)];

/* Write chunk i at pages[i], linked in order. */
function build(chunks: KhoMemRange[][] = DEFAULT_CHUNKS, pages: number[] = PAGES): SparseMem {
  const mem = new SparseMem(RAM_BASE, RAM_SIZE);
  chunks.forEach((rs, i) => mem.write(pages[i]!, encodeChunk(pages[i + 1] !== undefined && i + 1 < chunks.length ? pages[i + 1]! : 0, rs)));
  return mem;
}

function poke(mem: PhysMem, phys: number, off: number, v: number | bigint): void {
  mem.write(phys + off, u64leBytes(v));
}

/* Offsets of ranges[i]'s fields inside a chunk page. */
const START = (i: number): number => khoserRangeOffset(i);
const SIZE = (i: number): number => khoserRangeOffset(i) + 8;
const DATA = (i: number): number => khoserRangeOffset(i) + 16;

function walkError(mem: PhysMem, metadata: bigint | number = C0): KhoWalkError {
  return catchWalkError(() => khoMemWalk(mem, BigInt(metadata), CTX));
}

/* A bad range field in chunk 1 (at C1), entry 17. */
function rangeWant(code: KhoWalkErrorCode, field: "start" | "size" | "data", chunkIndex = 1, rangeIndex = 17): ChunkWant {
  const off = field === "start" ? START(rangeIndex) : field === "size" ? SIZE(rangeIndex) : DATA(rangeIndex);
  return { code, chunkIndex, chunkPhys: PAGES[chunkIndex]!, rangeIndex, field, offset: off };
}

function countingMem(mem: PhysMem): { mem: PhysMem; reads: [number, number][] } {
  const reads: [number, number][] = [];
  return {
    reads,
    mem: {
      base: mem.base,
      size: mem.size,
      read: (p, l) => {
        reads.push([p, l]);
        return mem.read(p, l);
      },
      write: (p, d) => mem.write(p, d),
    },
  };
}

describe("khoMemWalk on valid lists", () => {
  it("metadata 0 means nothing preserved and reads nothing", () => {
    const { mem, reads } = countingMem(new SparseMem(RAM_BASE, RAM_SIZE));
    expect(plainWalk(khoMemWalk(mem, 0n, CTX))).toEqual({ chunks: [], ranges: [] });
    expect(reads).toEqual([]);
  });

  it("returns the chunks and ranges in list order, reading each chunk page once", () => {
    const { mem, reads } = countingMem(build());
    expect(plainWalk(khoMemWalk(mem, BigInt(C0), CTX))).toEqual({ chunks: PAGES, ranges: R });
    expect(reads).toEqual(PAGES.map((p) => [p, P]));
  });

  it("accepts folio orders above MAX_PAGE_ORDER (the restore step judges them)", () => {
    const big: KhoMemRange = { start: RAM_BASE, size: 2 ** 27, data: khoDataFolio(15) };
    expect(khoMemWalk(build([[big]]), BigInt(C0), CTX).ranges).toEqual([big]);
  });

  it("accepts adjacent ranges and ranges touching scratch and RAM ends", () => {
    const rs: KhoMemRange[] = [
      { start: RAM_BASE, size: P, data: KHO_DATA_PHYS },
      { start: RAM_BASE + P, size: P, data: khoDataFolio(0) },
      { start: SCRATCH.addr - P, size: P, data: KHO_DATA_PHYS },
      { start: SCRATCH.addr + SCRATCH.size, size: P, data: KHO_DATA_PHYS },
      { start: RAM_END - P, size: P, data: KHO_DATA_PHYS },
    ];
    expect(khoMemWalk(build([rs]), BigInt(C0), CTX).ranges).toEqual(rs);
  });
});

describe("khoMemWalk rejects bad chunk headers", () => {
  it("num_ranges 171", () => {
    const mem = build();
    poke(mem, C1, 8, 171);
    const e = walkError(mem);
    expectChunkError(e, { code: "NUM_RANGES", chunkIndex: 1, chunkPhys: C1, field: "num_ranges", offset: 8 });
    expect(e.message).toBe("chunk 1 at 0x4e000000: num_ranges at +0x8 is 0xab, more than 170");
  });

  it("num_ranges 2^63 without reading past the chunk page", () => {
    const { mem, reads } = countingMem(build());
    poke(mem, C1, 8, 1n << 63n);
    expectChunkError(walkError(mem), { code: "NUM_RANGES", chunkIndex: 1, chunkPhys: C1, field: "num_ranges", offset: 8 });
    expect(reads).toEqual([
      [C0, P],
      [C1, P],
    ]);
  });

  it("next pointing to its own chunk is a cycle", () => {
    const mem = build();
    poke(mem, C1, 0, C1);
    const e = walkError(mem);
    expectChunkError(e, { code: "CHUNK_CYCLE", chunkIndex: 1, chunkPhys: C1, field: "next", offset: 0 });
    expect(e.message).toBe("chunk 1 at 0x4e000000: next at +0x0 is 0x4e000000: that is chunk 1 again (cycle)");
  });

  it("next pointing to an earlier chunk is a cycle", () => {
    const mem = build();
    poke(mem, C2, 0, C0);
    const e = walkError(mem);
    expectChunkError(e, { code: "CHUNK_CYCLE", chunkIndex: 2, chunkPhys: C2, field: "next", offset: 0 });
    expect(e.message).toContain("chunk 0 again");
  });

  it.each([
    ["at RAM end", RAM_END],
    ["below RAM", RAM_BASE - P],
    ["at 2^53", 2 ** 53],
    ["near 2^64", (1n << 64n) - BigInt(P)],
  ])("next %s is outside RAM", (_name, v) => {
    const mem = build();
    poke(mem, C1, 0, v);
    expectChunkError(walkError(mem), { code: "CHUNK_OUTSIDE_RAM", chunkIndex: 1, chunkPhys: C1, field: "next", offset: 0 });
  });

  it("next not page aligned", () => {
    const mem = build();
    poke(mem, C1, 0, C2 + 8);
    expectChunkError(walkError(mem), { code: "CHUNK_UNALIGNED", chunkIndex: 1, chunkPhys: C1, field: "next", offset: 0 });
  });

  it("next into scratch", () => {
    const mem = build();
    poke(mem, C1, 0, SCRATCH.addr + SCRATCH.size - P);
    expectChunkError(walkError(mem), { code: "CHUNK_IN_SCRATCH", chunkIndex: 1, chunkPhys: C1, field: "next", offset: 0 });
  });

  it.each<[string, bigint, KhoWalkErrorCode]>([
    ["unaligned", BigInt(C0 + 1), "CHUNK_UNALIGNED"],
    ["outside RAM", BigInt(RAM_END), "CHUNK_OUTSIDE_RAM"],
    ["in scratch", BigInt(SCRATCH.addr), "CHUNK_IN_SCRATCH"],
  ])("metadata %s is reported against the metadata, not a chunk", (_name, md, code) => {
    const e = walkError(build(), md);
    expectChunkError(e, { code, field: "metadata" });
    expect(e.message).toMatch(/^metadata is 0x[0-9a-f]+: chunk 0 /);
  });
});

describe("khoMemWalk rejects bad ranges", () => {
  function corrupt(off: (i: number) => number, v: number | bigint, chunk = C1, i = 17): SparseMem {
    const mem = build();
    poke(mem, chunk, off(i), v);
    return mem;
  }

  it("size 0", () => {
    const e = walkError(corrupt(SIZE, 0));
    expectChunkError(e, rangeWant("RANGE_EMPTY", "size"));
    expect(e.message).toBe("chunk 1 at 0x4e000000: ranges[17].size at +0x1b0 is 0x0: empty range");
  });

  it("start not page aligned", () => {
    expectChunkError(walkError(corrupt(START, R[187]!.start + 0x10)), rangeWant("RANGE_UNALIGNED", "start"));
  });

  it("size not page aligned", () => {
    expectChunkError(walkError(corrupt(SIZE, P + 1)), rangeWant("RANGE_UNALIGNED", "size"));
  });

  it("start below RAM", () => {
    expectChunkError(walkError(corrupt(START, RAM_BASE - P)), rangeWant("RANGE_OUTSIDE_RAM", "start"));
  });

  it("start at 2^53 (not a safe integer)", () => {
    expectChunkError(walkError(corrupt(START, 2 ** 53)), rangeWant("RANGE_OUTSIDE_RAM", "start"));
  });

  it("end past RAM end", () => {
    const mem = corrupt(START, RAM_END - P);
    poke(mem, C1, SIZE(17), 2 * P);
    expectChunkError(walkError(mem), rangeWant("RANGE_OUTSIDE_RAM", "size"));
  });

  it("size of 2^53 or more", () => {
    expectChunkError(walkError(corrupt(SIZE, 1n << 60n)), rangeWant("RANGE_OUTSIDE_RAM", "size"));
  });

  it.each([
    ["past", 2n * BigInt(P)],
    ["exactly at", BigInt(P)],
  ])("start + size %s 2^64 overflows", (_name, size) => {
    const mem = corrupt(START, (1n << 64n) - BigInt(P));
    poke(mem, C1, SIZE(17), size);
    expectChunkError(walkError(mem), rangeWant("RANGE_OVERFLOW", "size"));
  });

  it("a range overlapping the previous one", () => {
    const e = walkError(corrupt(START, R[186]!.start));
    expectChunkError(e, rangeWant("RANGE_OVERLAP", "start"));
    expect(e.message).toContain("overlaps previous range");
  });

  it("a range overlapping the last range of the previous chunk", () => {
    expectChunkError(walkError(corrupt(START, R[169]!.start, C1, 0)), rangeWant("RANGE_OVERLAP", "start", 1, 0));
  });

  it("a range below the previous one is out of order", () => {
    const e = walkError(corrupt(START, R[100]!.start));
    expectChunkError(e, rangeWant("RANGE_ORDER", "start"));
    expect(e.message).toContain("out of order");
  });

  it("a range overlapping scratch", () => {
    const mem = corrupt(START, SCRATCH.addr - P, C2, 4);
    poke(mem, C2, SIZE(4), 2 * P);
    expectChunkError(walkError(mem), rangeWant("RANGE_IN_SCRATCH", "start", 2, 4));
  });

  it.each([
    ["bit 9", 0x200n],
    ["bit 63", 1n << 63n],
    ["bit 32", 1n << 32n],
  ])("data with %s set", (_name, v) => {
    expectChunkError(walkError(corrupt(DATA, v)), rangeWant("RANGE_DATA", "data"));
  });

  it("a folio run whose start is not aligned to its folio size", () => {
    // R[187] starts at page 374 of RAM: not a multiple of 4 pages.
    expectChunkError(walkError(corrupt(DATA, khoDataFolio(2))), rangeWant("FOLIO_UNALIGNED", "start"));
  });

  it("a folio run whose size is not a multiple of its folio size", () => {
    const mem = corrupt(START, RAM_BASE + 376 * P);
    poke(mem, C1, DATA(17), khoDataFolio(2));
    expectChunkError(walkError(mem), rangeWant("FOLIO_UNALIGNED", "size"));
  });

  it("a folio order above the sanity cap", () => {
    expect(KHO_WALK_MAX_ORDER).toBe(51);
    expectChunkError(walkError(corrupt(DATA, KHO_DATA_FOLIO | 52)), rangeWant("FOLIO_ORDER", "data"));
  });
});

describe("khoMemWalk rejects chunk pages inside preserved ranges", () => {
  it("a later chunk page covered by a range", () => {
    const rs = [...R.slice(0, 169), { start: C1 - P, size: 3 * P, data: KHO_DATA_PHYS }];
    const e = walkError(build([rs, [{ start: C1 + 4 * P, size: P, data: KHO_DATA_PHYS }]], [C0, C1]));
    expectChunkError(e, { code: "CHUNK_IN_PRESERVED", chunkIndex: 1, chunkPhys: C1, rangeIndex: 169 });
    expect(e.message).toBe(
      "chunk 1 at 0x4e000000: page lies inside preserved range [0x4dfff000, 0x4e002000) (range 169, chunk 0 ranges[169])",
    );
  });

  it("the first chunk page covered by a range in a later chunk", () => {
    const e = walkError(build([R.slice(0, 170), [{ start: C0, size: P, data: KHO_DATA_PHYS }]], [C0, C1]));
    expectChunkError(e, { code: "CHUNK_IN_PRESERVED", chunkIndex: 0, chunkPhys: C0, rangeIndex: 170 });
    expect(e.message).toContain("chunk 1 ranges[0]");
  });
});

describe("khoMemWalk reads ahead only what it may", () => {
  it("consecutive chunks ending just before a hole between banks: the read ahead fails, the chunk is read alone, the walk is the same", () => {
    const P = PAGE_SIZE;
    const base = 0x40000000;
    const banks = [
      { base, size: 64 * P, node: 0 },
      { base: base + 128 * P, size: 512 * P, node: 0 },
    ];
    const mem = new SparseMem(base, 640 * P, banks);
    const ranges: KhoMemRange[] = Array.from({ length: 200 }, (_, i) => ({ start: base + (128 + 2 * i) * P, size: P, data: khoDataFolio(0) }));
    const c0 = base + 62 * P;
    const c1 = base + 63 * P;
    mem.write(c0, encodeChunk(c1, ranges.slice(0, 170)));
    mem.write(c1, encodeChunk(0, ranges.slice(170)));
    const lengths: number[] = [];
    const watched: PhysMem = {
      base: mem.base,
      size: mem.size,
      banks,
      read: (p, len) => {
        lengths.push(len);
        return mem.read(p, len);
      },
      write: (p, d) => mem.write(p, d),
    };
    const w = khoMemWalk(watched, BigInt(c0), { ramBase: base, ramSize: 640 * P, scratch: [] });
    expect(w.chunks).toEqual([c0, c1]);
    expect(w.ranges).toEqual(ranges);
    // c0 alone (nothing before it), c1 with 15 pages ahead (refused: the hole), c1 alone.
    expect(lengths).toEqual([P, 16 * P, P]);
  });
});
