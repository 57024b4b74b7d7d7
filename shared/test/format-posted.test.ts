import { describe, expect, it } from "vitest";
import { KHO_DATA_FOLIO, KHO_DATA_PHYS, khoDataFolio } from "../src/abi/ranges.js";
import { KHO_FDT_MEMORY_PATH } from "../src/abi/kho-fdt.js";
import { PAGE_SIZE } from "../src/abi/page.js";
import { ByteWriter } from "../src/lib/bytes.js";
import { FdtRo, propStringList } from "../src/fdt/index.js";
import { KHO_FORMATS, KHO_POSTED_MARKER, rangesFormat } from "../src/kho/formats/index.js";
import {
  POSTED_CHUNK_ALLOC_BYTES,
  POSTED_CHUNK_ALLOC_PAGES,
  POSTED_CHUNK_SIZE,
  POSTED_CHUNK_SPAN_PAGES,
  POSTED_GEOMETRY,
  POSTED_RANGES_SIZE,
} from "../src/abi/ranges.js";
import { khoMemWalk, postedFormat } from "../src/kho/formats/ranges.js";
import type { KhoWalkContext, KhoWalkError } from "../src/kho/walk.js";

/* The posted geometry of the one chunk-list walk. */
const khoPostedWalk = (mem: PhysMem, metadata: bigint, ctx: KhoWalkContext) => khoMemWalk(mem, metadata, ctx, POSTED_GEOMETRY);
import { parseKhoFdt, u64le } from "../src/kho/fdt.js";
import { SparseMem, type PhysMem } from "../src/mm/physmem.js";
import { KhoSerializeError } from "../src/kho/serialize.js";
import { KhoMemTrack, type KhoMemRange } from "../src/kho/track.js";
import { CTX, RAM_BASE, RAM_END, RAM_SIZE, SCRATCH, type ChunkWant, catchWalkError, expectChunkError, poke64, u64At } from "./format-common.js";

const P = PAGE_SIZE;
const GiB = 2 ** 30;
/* Chunks are handed out from here, 32 pages each. */
const CHUNK_AREA = 0x1_0000_0000;
const BLOCK = POSTED_CHUNK_ALLOC_BYTES;

function bump(start = CHUNK_AREA): (pages: number) => number {
  let next = start;
  return (pages) => {
    const p = next;
    next += pages * P;
    return p;
  };
}
const noPage = (): number => {
  throw new Error("posted allocates chunks with allocContig only");
};

function serialize(track: KhoMemTrack, mem: PhysMem = new SparseMem(RAM_BASE, RAM_SIZE)) {
  return { mem, ser: postedFormat.serialize(track, mem, noPage, bump()) };
}

describe("posted: the posting's constants", () => {
  it("KHOSER_RANGES_SIZE is 4096 and a chunk 98,320 bytes in an order-5 (32-page) kmalloc_large block", () => {
    expect(POSTED_RANGES_SIZE).toBe(4096);
    expect(POSTED_CHUNK_SIZE).toBe(98_320);
    expect(POSTED_CHUNK_ALLOC_PAGES).toBe(32);
    expect(POSTED_CHUNK_ALLOC_BYTES).toBe(131_072);
    expect(POSTED_CHUNK_SPAN_PAGES).toBe(25);
  });
});

describe("posted: exact metadata sizes (one 32-page chunk per range)", () => {
  it("nothing preserved: no chunk, metadata 0", () => {
    const { ser } = serialize(new KhoMemTrack());
    expect(ser).toEqual({ root: 0, metadataPages: [], metadataBytes: 0, objects: [] });
  });

  it("one isolated order-0 page: 1 chunk = 32 pages = 131,072 bytes (the fixed format: 4,096)", () => {
    const t = new KhoMemTrack();
    t.khoPreserveFolio(0x5000_0000, 0);
    const { mem, ser } = serialize(t);
    expect(ser.root).toBe(CHUNK_AREA);
    expect(ser.metadataBytes).toBe(131_072);
    expect(ser.metadataPages).toEqual(Array.from({ length: 32 }, (_, i) => CHUNK_AREA + i * P));
    const w = postedFormat.walk(mem, BigInt(ser.root), CTX);
    expect(w.metadataPages).toEqual(Array.from({ length: 25 }, (_, i) => CHUNK_AREA + i * P));
    expect(w.blockCount).toBe(1);
  });

  it("171 isolated ranges: 171 chunks of 32 pages (5,472 pages, 22,413,312 bytes) where the fixed format needs 2 pages", () => {
    const t = new KhoMemTrack();
    for (let i = 0; i < 171; i++) t.khoPreservePhys(0x5000_0000 + 2 * i * P, P);
    const { mem, ser } = serialize(t);
    expect(ser.metadataPages.length).toBe(5_472);
    expect(ser.metadataBytes).toBe(22_413_312);
    const onePage = bump();
    const fixed = rangesFormat.serialize(t, new SparseMem(RAM_BASE, RAM_SIZE), () => onePage(1), bump());
    expect(fixed.metadataBytes).toBe(8192);
    const w = postedFormat.walk(mem, BigInt(ser.root), CTX);
    expect(w.metadataPages.length).toBe(171 * 25);
    expect(w.blockCount).toBe(171);
    expect(w.ranges).toEqual([...t.ranges()]);
  });
});

describe("posted: byte layout", () => {
  const t = new KhoMemTrack();
  t.khoPreservePhys(0x5000_0000, 3 * P);
  t.khoPreserveFolio(0x5001_0000, 4);
  const { mem, ser } = serialize(t);
  const C0 = CHUNK_AREA;
  const C1 = CHUNK_AREA + BLOCK;

  it("a chunk per range, linked in order, num_ranges 1, the entry at +16/+24/+32", () => {
    expect(ser.root).toBe(C0);
    expect(u64At(mem, C0 + 0)).toBe(BigInt(C1)); // hdr.next
    expect(u64At(mem, C0 + 8)).toBe(1n); // hdr.num_ranges
    expect(u64At(mem, C0 + 16)).toBe(0x5000_0000n); // ranges[0].start
    expect(u64At(mem, C0 + 24)).toBe(BigInt(3 * P)); // ranges[0].size
    expect(u64At(mem, C0 + 32)).toBe(BigInt(KHO_DATA_PHYS)); // ranges[0].data
    expect(u64At(mem, C0 + 40)).toBe(0n); // ranges[1].start: unused
    expect(u64At(mem, C1 + 0)).toBe(0n); // last chunk: next = 0
    expect(u64At(mem, C1 + 8)).toBe(1n);
    expect(u64At(mem, C1 + 16)).toBe(0x5001_0000n);
    expect(u64At(mem, C1 + 24)).toBe(BigInt(16 * P));
    expect(u64At(mem, C1 + 32)).toBe(BigInt(KHO_DATA_FOLIO | 4));
  });

  it("writes only each chunk's first page: the rest of the block reads as zero", () => {
    expect((mem as SparseMem).touchedPages).toBe(2);
    expect(mem.read(C0 + P, POSTED_CHUNK_SIZE - P).every((b) => b === 0)).toBe(true);
  });

  it("KHO FDT: kho-v1, /preserved-memory/metadata and the khosim marker; detected as posted, not ranges", () => {
    const blob = postedFormat.buildFdt(ser.root, [{ name: "kho_test", fdtPhys: 0x4200_0000 }]);
    const fdt = new FdtRo(blob);
    expect(propStringList(fdt.getProp(0, "compatible")!)).toEqual(["kho-v1"]);
    const node = fdt.pathOffset(KHO_FDT_MEMORY_PATH);
    expect(fdt.getProp(node, KHO_POSTED_MARKER)).toEqual(new Uint8Array(0));
    expect(u64le(fdt.getProp(node, "metadata")!)).toBe(BigInt(C0));
    expect(postedFormat.matches(fdt)).toBe(true);
    expect(rangesFormat.matches(fdt)).toBe(false);
    expect(postedFormat.matches(new FdtRo(rangesFormat.buildFdt(C0, [])))).toBe(false);
    const k = parseKhoFdt(blob, KHO_FORMATS);
    expect(k.format.name).toBe("posted");
    expect(k.metadata).toBe(BigInt(C0));
  });

  it("serialize refuses an allocator block that is unaligned or overlaps preserved memory", () => {
    const m = new SparseMem(RAM_BASE, RAM_SIZE);
    expect(() => postedFormat.serialize(t, m, noPage, () => CHUNK_AREA + 8)).toThrow(KhoSerializeError);
    // A block whose 32nd page is the preserved page 0x5000_0000.
    expect(() => postedFormat.serialize(t, m, noPage, () => 0x5000_0000 - 31 * P)).toThrow(/overlaps preserved memory/);
  });

  it("serialize refuses a second block that overlaps the first, above or below it (the B+ tree of multi-page chunks)", () => {
    const m = new SparseMem(RAM_BASE, RAM_SIZE);
    for (const blocks of [[C0, C0 + 16 * P], [C0 + 16 * P, C0]]) {
      const it = blocks[Symbol.iterator]();
      expect(() => postedFormat.serialize(t, m, noPage, () => it.next().value as number)).toThrow(/chunk 1: allocator returned unusable block 0x[0-9a-f]+: it overlaps another chunk/);
    }
    expect(m.touchedPages).toBe(0);
  });
});

/* ---------------------------------------------------------------- rejections */

const C0 = CHUNK_AREA;
const C1 = CHUNK_AREA + BLOCK;
const C2 = CHUNK_AREA + 2 * BLOCK;
const R0: KhoMemRange = { start: 0x5000_0000, size: P, data: KHO_DATA_PHYS };
const R1: KhoMemRange = { start: 0x5000_4000, size: 2 * P, data: khoDataFolio(1) };
const R2: KhoMemRange = { start: 0x5001_0000, size: P, data: khoDataFolio(0) };

/* A chunk as the posting lays it out: header, then the entries. */
function writeChunk(mem: PhysMem, phys: number, next: number, entries: readonly KhoMemRange[], numRanges: number | bigint = entries.length): void {
  const b = new Uint8Array(16 + 24 * entries.length);
  const w = new ByteWriter(b);
  w.u64le(0, next);
  w.u64le(8, numRanges);
  entries.forEach((e, i) => {
    w.u64le(16 + 24 * i, e.start);
    w.u64le(24 + 24 * i, e.size);
    w.u64le(32 + 24 * i, e.data);
  });
  mem.write(phys, b);
}

function build(chunks: readonly (readonly KhoMemRange[])[] = [[R0], [R1], [R2]], at: readonly number[] = [C0, C1, C2]): SparseMem {
  const mem = new SparseMem(RAM_BASE, RAM_SIZE);
  chunks.forEach((es, i) => writeChunk(mem, at[i]!, i + 1 < chunks.length ? at[i + 1]! : 0, es));
  return mem;
}

function expectReject(mem: PhysMem, want: ChunkWant, metadata: number | bigint = C0, ctx = CTX): KhoWalkError {
  const e = catchWalkError(() => khoPostedWalk(mem, BigInt(metadata), ctx));
  expectChunkError(e, want);
  return e;
}

const NEXT0 = { chunkIndex: 0, chunkPhys: C0, field: "next", offset: 0 };
const NEXT1 = { chunkIndex: 1, chunkPhys: C1, field: "next", offset: 0 };
const NEXT2 = { chunkIndex: 2, chunkPhys: C2, field: "next", offset: 0 };
const entry = (ci: number, phys: number, field: "start" | "size" | "data", i = 0) => ({
  chunkIndex: ci,
  chunkPhys: phys,
  rangeIndex: i,
  field,
  offset: 16 + 24 * i + { start: 0, size: 8, data: 16 }[field],
});

describe("posted walk: accepts", () => {
  it("the default list", () => {
    const w = khoPostedWalk(build(), BigInt(C0), CTX);
    expect(w.chunks).toEqual([C0, C1, C2]);
    expect(w.ranges).toEqual([R0, R1, R2]);
  });

  it("a full chunk of 4096 entries (the posting's chunk really holds 4096)", () => {
    const es = Array.from({ length: POSTED_RANGES_SIZE }, (_, i) => ({ start: 0x5000_0000 + 2 * i * P, size: P, data: KHO_DATA_PHYS }));
    const w = khoPostedWalk(build([es]), BigInt(C0), CTX);
    expect(w.ranges.length).toBe(4096);
  });
});

describe("posted walk: rejects, naming the chunk, entry, field and offset", () => {
  it("CHUNK_UNALIGNED: metadata, and a next pointer", () => {
    expectReject(build(), { code: "CHUNK_UNALIGNED", field: "metadata" }, C0 + 8);
    const mem = build();
    poke64(mem, C0, C1 + 0x800);
    expectReject(mem, { code: "CHUNK_UNALIGNED", ...NEXT0 });
  });

  it("CHUNK_OUTSIDE_RAM: first page inside RAM but the 98,320 bytes pass its end; and 2^53", () => {
    const mem = build();
    const last = RAM_END - 24 * P; // pages 0..23 inside, the last 16 bytes are not
    writeChunk(mem, last, 0, []);
    poke64(mem, C1, last);
    const e = expectReject(mem, { code: "CHUNK_OUTSIDE_RAM", ...NEXT1 });
    expect(e.message).toContain("chunk 2");
    expectReject(build(), { code: "CHUNK_OUTSIDE_RAM", field: "metadata" }, 1n << 53n);
  });

  it("CHUNK_IN_SCRATCH: the chunk's 25th page is scratch", () => {
    const mem = build();
    const at = SCRATCH.addr - 24 * P;
    writeChunk(mem, at, 0, []);
    poke64(mem, C0, at);
    expectReject(mem, { code: "CHUNK_IN_SCRATCH", ...NEXT0 });
  });

  it("CHUNK_CYCLE", () => {
    const mem = build();
    poke64(mem, C2, C0);
    expect(expectReject(mem, { code: "CHUNK_CYCLE", ...NEXT2 }).message).toContain("chunk 0 again");
  });

  it("METADATA_OVERLAP: a chunk starting inside the previous one's 98,320 bytes", () => {
    const mem = build();
    const at = C1 + 24 * P; // C1's last 16 bytes
    writeChunk(mem, at, 0, [R2]);
    poke64(mem, C1, at);
    expect(expectReject(mem, { code: "METADATA_OVERLAP", ...NEXT1 }).message).toContain("overlaps chunk 1");
  });

  it("CHUNK_IN_PRESERVED: a preserved range covering the 25th page of chunk 1", () => {
    const mem = build([[R0], [R1], [{ start: C1 + 24 * P, size: P, data: KHO_DATA_PHYS }]]);
    const e = expectReject(mem, { code: "CHUNK_IN_PRESERVED", chunkIndex: 1, chunkPhys: C1, rangeIndex: 2 });
    expect(e.message).toContain("chunk 2 ranges[0]");
  });

  it("NUM_RANGES: 4097 entries announced", () => {
    const mem = build();
    poke64(mem, C1 + 8, 4097);
    expectReject(mem, { code: "NUM_RANGES", chunkIndex: 1, chunkPhys: C1, field: "num_ranges", offset: 8 });
  });

  it("RANGE_UNALIGNED: start and size", () => {
    const mem = build();
    poke64(mem, C1 + 16, R1.start + 0x800);
    expectReject(mem, { code: "RANGE_UNALIGNED", ...entry(1, C1, "start") });
    const m2 = build();
    poke64(m2, C1 + 24, 0x1800);
    expectReject(m2, { code: "RANGE_UNALIGNED", ...entry(1, C1, "size") });
  });

  it("RANGE_EMPTY", () => {
    const mem = build();
    poke64(mem, C2 + 24, 0);
    expectReject(mem, { code: "RANGE_EMPTY", ...entry(2, C2, "size") });
  });

  it("RANGE_OVERFLOW", () => {
    const mem = build();
    poke64(mem, C2 + 24, (1n << 64n) - BigInt(P));
    expectReject(mem, { code: "RANGE_OVERFLOW", ...entry(2, C2, "size") });
  });

  it("RANGE_OUTSIDE_RAM: start, and end", () => {
    const mem = build();
    poke64(mem, C2 + 16, RAM_END);
    expectReject(mem, { code: "RANGE_OUTSIDE_RAM", ...entry(2, C2, "start") });
    const m2 = build();
    poke64(m2, C2 + 24, RAM_END - R2.start + P);
    expectReject(m2, { code: "RANGE_OUTSIDE_RAM", ...entry(2, C2, "size") });
  });

  it("RANGE_IN_SCRATCH", () => {
    const mem = build([[{ start: SCRATCH.addr + SCRATCH.size - P, size: 2 * P, data: KHO_DATA_PHYS }], [R1], [R2]]);
    expectReject(mem, { code: "RANGE_IN_SCRATCH", ...entry(0, C0, "start") });
  });

  it("RANGE_ORDER and RANGE_OVERLAP across chunks", () => {
    const mem = build();
    poke64(mem, C2 + 16, R0.start);
    expectReject(mem, { code: "RANGE_ORDER", ...entry(2, C2, "start") });
    const m2 = build([[R0], [R1], [{ start: R1.start + P, size: P, data: KHO_DATA_PHYS }]]);
    expectReject(m2, { code: "RANGE_OVERLAP", ...entry(2, C2, "start") });
  });

  it("RANGE_DATA, FOLIO_ORDER, FOLIO_UNALIGNED", () => {
    const mem = build();
    poke64(mem, C1 + 32, 0x5);
    expectReject(mem, { code: "RANGE_DATA", ...entry(1, C1, "data") });
    const m2 = build();
    poke64(m2, C1 + 32, KHO_DATA_FOLIO | 60);
    expectReject(m2, { code: "FOLIO_ORDER", ...entry(1, C1, "data") });
    const m3 = build([[R0], [{ start: 0x5000_5000, size: 2 * P, data: khoDataFolio(1) }], [R2]]);
    expectReject(m3, { code: "FOLIO_UNALIGNED", ...entry(1, C1, "start") });
  });

  it("the second entry of a chunk is located at +0x28 (rangeIndex 1)", () => {
    const mem = build([[R0, { start: R1.start, size: 0, data: 0 }]]);
    expectReject(mem, { code: "RANGE_EMPTY", ...entry(0, C0, "size", 1) });
  });
});

describe("posted: scale", () => {
  /*
   * Enough chunks that the byte counts and the chunk addresses pass 2^32 (the
   * 32-bit boundaries a count or an address could be truncated at): 40,000
   * one-range chunks of 128 KiB from 2 GiB up are 5.2 GB of metadata reaching
   * 7 GiB. (It had 100,000 chunks; the boundaries are the same, at 40% of the work.)
   */
  it("40,000 isolated ranges: 40,000 chunks (1.28M pages, 5.2 GB of metadata, chunks above 4 GiB), serialized and walked", () => {
    const ramSize = 16 * GiB;
    const t = new KhoMemTrack();
    const n = 40_000;
    for (let i = 0; i < n; i++) t.khoPreserveFolio(GiB + 2 * i * P, 0);
    const mem = new SparseMem(0, ramSize);
    const ser = postedFormat.serialize(t, mem, noPage, bump(2 * GiB));
    expect(ser.metadataPages.length).toBe(32 * n);
    expect(ser.metadataBytes).toBe(5_242_880_000);
    expect(ser.metadataBytes).toBeGreaterThan(2 ** 32);
    expect(Math.max(...ser.metadataPages.slice(-32))).toBeGreaterThan(4 * GiB);
    const w = postedFormat.walk(mem, BigInt(ser.root), { ramBase: 0, ramSize, scratch: [{ addr: 0, size: 256 * 2 ** 20 }] });
    expect(w.blockCount).toBe(n);
    expect(w.ranges.length).toBe(n);
    expect(w.metadataPages.length).toBe(25 * n);
    expect(Math.max(...w.metadataPages.slice(-25))).toBeGreaterThan(4 * GiB);
  });
});
