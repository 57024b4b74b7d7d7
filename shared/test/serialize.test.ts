import { fc, test } from "./fc-prop.js";
import { expectEqual } from "./fast-expect.js";
import { describe, expect, it } from "vitest";
import { KHOSER_RANGES_PER_CHUNK, KHO_DATA_PHYS, khoDataFolio, khoserRangeOffset } from "../src/abi/ranges.js";
import { PAGE_SIZE } from "../src/abi/page.js";
import { ByteReader } from "../src/lib/bytes.js";
import { BuddyAllocator } from "../src/mm/buddy.js";
import { SparseMem } from "../src/mm/physmem.js";
import { KhoSerializeError, decodeChunk, encodeChunk, khoMemSerialize, khoserChunkCount } from "../src/kho/serialize.js";
import { KhoMemTrack, type KhoMemRange } from "../src/kho/track.js";
import { khoMemWalk, type KhoMemWalkResult } from "../src/kho/formats/ranges.js";

/* A walk result as { chunks, ranges } (its ranges objects are made on first use; the typed table is checked against them). */
function plainWalk(w: KhoMemWalkResult): { chunks: number[]; ranges: KhoMemRange[] } {
  expect(w.table.count).toBe(w.ranges.length);
  w.ranges.forEach((r, i) => expectEqual([w.table.start[i], w.table.size[i], w.table.data[i]], [r.start, r.size, r.data]));
  return { chunks: w.chunks, ranges: w.ranges };
}

const P = PAGE_SIZE;
const RAM_BASE = 0x4000_0000;
const RAM_SIZE = 0x1000_0000; // 256 MiB
/* Chunk pages are handed out downwards from here, above the preserved ranges. */
const CHUNK_TOP = RAM_BASE + RAM_SIZE;
const CTX = { ramBase: RAM_BASE, ramSize: RAM_SIZE, scratch: [{ addr: RAM_BASE + 0x0800_0000, size: 0x0100_0000 }] };

function downAllocator(top = CHUNK_TOP): () => number {
  let next = top;
  return () => (next -= P);
}

/* n isolated ranges (a page each, one page apart), alternating phys and order-0 folio. */
function isolated(n: number): KhoMemTrack {
  const t = new KhoMemTrack();
  for (let i = 0; i < n; i++) {
    const addr = RAM_BASE + 2 * i * P;
    if (i % 2 === 0) t.khoPreservePhys(addr, P);
    else t.khoPreserveFolio(addr, 0);
  }
  return t;
}

describe("khoserChunkCount", () => {
  it.each([
    [0, 0],
    [1, 1],
    [169, 1],
    [170, 1],
    [171, 2],
    [340, 2],
    [341, 3],
  ])("%i ranges need %i chunks", (n, chunks) => {
    expect(khoserChunkCount(n)).toBe(chunks);
  });
});

describe("khoMemSerialize chunk boundaries", () => {
  it("nothing preserved: metadata 0 and no chunk allocated or written", () => {
    const mem = new SparseMem(RAM_BASE, RAM_SIZE);
    let calls = 0;
    const out = khoMemSerialize(new KhoMemTrack(), mem, () => {
      calls++;
      return CHUNK_TOP - P;
    });
    expect(out).toEqual({ metadata: 0, chunks: [] });
    expect(calls).toBe(0);
    expect(mem.touchedPages).toBe(0);
    expect(plainWalk(khoMemWalk(mem, 0n, CTX))).toEqual({ chunks: [], ranges: [] });
  });

  it.each([1, 169, 170, 171, 340, 341])(
    "%i ranges: chunk count, num_ranges per chunk, links, entries and zeroed tails are right",
    (n) => {
      const track = isolated(n);
      const want = [...track.ranges()];
      const mem = new SparseMem(RAM_BASE, RAM_SIZE);
      const out = khoMemSerialize(track, mem, downAllocator());

      const nChunks = Math.ceil(n / KHOSER_RANGES_PER_CHUNK);
      expect(out.chunks).toHaveLength(nChunks);
      expect(out.chunks).toEqual(Array.from({ length: nChunks }, (_, i) => CHUNK_TOP - (i + 1) * P));
      expect(out.metadata).toBe(out.chunks[0]);
      expect(mem.touchedPages).toBe(nChunks); // only chunk pages were written

      let seen = 0;
      out.chunks.forEach((phys, i) => {
        const page = mem.read(phys, P);
        const c = decodeChunk(page);
        const expectNum = Math.min(KHOSER_RANGES_PER_CHUNK, n - i * KHOSER_RANGES_PER_CHUNK);
        expect(c.numRanges).toBe(BigInt(expectNum));
        expect(c.next).toBe(BigInt(out.chunks[i + 1] ?? 0));
        const got = c.ranges.map((x) => ({ start: Number(x.start), size: Number(x.size), data: Number(x.data) }));
        expect(got).toEqual(want.slice(seen, seen + expectNum));
        seen += expectNum;
        // Everything past the last used entry is zero (16 + 170 * 24 = 4096: a full chunk has no tail).
        expect(page.subarray(khoserRangeOffset(expectNum)).every((b) => b === 0)).toBe(true);
      });
      expect(seen).toBe(n);

      expect(plainWalk(khoMemWalk(mem, BigInt(out.metadata), CTX))).toEqual({ chunks: out.chunks, ranges: want });
    },
  );
});

describe("khoMemSerialize layout", () => {
  it("writes the header and entries as little-endian u64s at the ABI offsets", () => {
    const t = new KhoMemTrack();
    t.khoPreserveFolio(0x4020_0000, 9); // 2 MiB folio
    t.khoPreservePhys(0x4100_0000, 3 * P);
    const mem = new SparseMem(RAM_BASE, RAM_SIZE);
    const { metadata } = khoMemSerialize(t, mem, () => 0x4fff_f000);
    expect(metadata).toBe(0x4fff_f000);
    const r = new ByteReader(mem.read(metadata, P));
    expect(r.u64le(0)).toBe(0n); // next
    expect(r.u64le(8)).toBe(2n); // num_ranges
    expect([r.u64le(16), r.u64le(24), r.u64le(32)]).toEqual([0x4020_0000n, 0x20_0000n, 0x109n]);
    expect([r.u64le(40), r.u64le(48), r.u64le(56)]).toEqual([0x4100_0000n, 0x3000n, 0n]);
    expect(r.u8(16)).toBe(0x00);
    expect(r.u8(18)).toBe(0x20); // LE: 0x40200000 -> 00 00 20 40
    expect(r.u8(19)).toBe(0x40);
  });

  it("chunk bytes do not depend on what the pages held before", () => {
    const track = isolated(341);
    const clean = new SparseMem(RAM_BASE, RAM_SIZE);
    const dirty = new SparseMem(RAM_BASE, RAM_SIZE);
    for (let i = 1; i <= 3; i++) dirty.write(CHUNK_TOP - i * P, new Uint8Array(P).fill(0xa5));
    const a = khoMemSerialize(track, clean, downAllocator());
    const b = khoMemSerialize(track, dirty, downAllocator());
    expect(b).toEqual(a);
    for (const phys of a.chunks) expect(dirty.read(phys, P)).toEqual(clean.read(phys, P));
  });

  it("every chunk page is encodeChunk()'s bytes when the chunks fill more than one staging buffer: a short last chunk is zeroed past its entries, whatever the buffer held", () => {
    // Stages of 64 pages: chunk 64 is staged where full chunk 0 was; 130 and 200 ranges after them make one and two more short ends.
    for (const n of [64 * KHOSER_RANGES_PER_CHUNK + 5, 65 * KHOSER_RANGES_PER_CHUNK + 130, 129 * KHOSER_RANGES_PER_CHUNK + 1]) {
      const track = isolated(n);
      const mem = new SparseMem(RAM_BASE, RAM_SIZE);
      const { chunks } = khoMemSerialize(track, mem, downAllocator());
      expect(chunks.length).toBe(khoserChunkCount(n));
      const ranges = [...track.ranges()];
      chunks.forEach((phys, c) => {
        const want = encodeChunk(chunks[c + 1] ?? 0, ranges.slice(c * KHOSER_RANGES_PER_CHUNK, (c + 1) * KHOSER_RANGES_PER_CHUNK));
        expect(mem.read(phys, P), `${n} ranges, chunk ${c}`).toEqual(want);
      });
    }
  });

  it("links chunks in allocation order even when pages are handed out non-monotonically", () => {
    const pages = [0x4f00_0000, 0x4e00_0000, 0x4f80_0000];
    const it = pages[Symbol.iterator]();
    const mem = new SparseMem(RAM_BASE, RAM_SIZE);
    const out = khoMemSerialize(isolated(341), mem, () => it.next().value as number);
    expect(out.chunks).toEqual(pages);
    expect(decodeChunk(mem.read(pages[0]!, P)).next).toBe(BigInt(pages[1]!));
    expect(decodeChunk(mem.read(pages[1]!, P)).next).toBe(BigInt(pages[2]!));
    expect(decodeChunk(mem.read(pages[2]!, P)).next).toBe(0n);
  });
});

describe("khoMemSerialize allocator checks", () => {
  it.each([
    ["unaligned", [0x4fff_f800]],
    ["zero (would end the list)", [0]],
    ["repeated", [0x4fff_f000, 0x4fff_f000]],
    ["preserved", [RAM_BASE]],
    ["fractional", [0.5]],
  ])("rejects a %s chunk page", (_name, pages) => {
    const track = isolated(171);
    const it = pages[Symbol.iterator]();
    const mem = new SparseMem(RAM_BASE, RAM_SIZE);
    expect(() => khoMemSerialize(track, mem, () => it.next().value as number)).toThrow(KhoSerializeError);
    expect(mem.touchedPages).toBe(0); // nothing written before all chunks are vetted
  });

  it.each([
    ["the preserved page that ends the gap the chunks before it lay in", [RAM_BASE + P, RAM_BASE + 2 * P]],
    ["a preserved page below that gap", [RAM_BASE + 3 * P, RAM_BASE + 2 * P]],
    ["a preserved page far above it", [RAM_BASE + 3 * P, RAM_BASE + 5 * P, RAM_BASE + 4 * P]],
  ])("rejects %s (one lookup per gap of free memory, not per chunk)", (_name, pages) => {
    // Preserved: every other page from RAM_BASE; the gaps are the odd pages. The last page given is the bad one.
    const it = pages[Symbol.iterator]();
    const mem = new SparseMem(RAM_BASE, RAM_SIZE);
    const bad = pages.length - 1;
    expect(() => khoMemSerialize(isolated(bad * 170 + 1), mem, () => it.next().value as number)).toThrow(
      new RegExp(`chunk ${bad}: allocator returned page \\[0x${pages[bad]!.toString(16)}, 0x[0-9a-f]+\\) that overlaps preserved memory`),
    );
    expect(mem.touchedPages).toBe(0);
  });

  it("takes many chunk pages from one gap of free memory above every preserved range", () => {
    const pages = Array.from({ length: 5 }, (_, i) => RAM_BASE + 0x100_0000 + i * P);
    const it = pages[Symbol.iterator]();
    const mem = new SparseMem(RAM_BASE, RAM_SIZE);
    expect(khoMemSerialize(isolated(4 * 170 + 1), mem, () => it.next().value as number).chunks).toEqual(pages);
  });

  it("with allocChunks, takes every chunk address from one call and writes what one call per chunk writes", () => {
    const track = isolated(5 * 170 + 3);
    const twin = (): BuddyAllocator => {
      const b = new BuddyAllocator(10);
      b.freeRange(RAM_BASE + 0x100_0000, 0x80_0000);
      b.allocFolio(2); // the lowest block is no longer max-order
      return b;
    };
    const one = twin();
    const many = twin();
    const memOne = new SparseMem(RAM_BASE, RAM_SIZE);
    const memMany = new SparseMem(RAM_BASE, RAM_SIZE);
    let calls = 0;
    const a = khoMemSerialize(track, memOne, () => one.allocFolio(0)!);
    const b = khoMemSerialize(track, memMany, () => Number.NaN, undefined, (n) => {
      calls++;
      const out: number[] = [];
      many.allocPages(n, out);
      return out;
    });
    expect(calls).toBe(1);
    expect(b).toEqual(a);
    for (const c of a.chunks) expect(memMany.read(c, P)).toEqual(memOne.read(c, P));
  });

  it("refuses allocChunks returning another number of addresses than asked for", () => {
    const mem = new SparseMem(RAM_BASE, RAM_SIZE);
    const two = [RAM_BASE + 0x100_0000, RAM_BASE + 0x100_1000];
    expect(() => khoMemSerialize(isolated(3 * 170), mem, () => Number.NaN, undefined, () => two)).toThrow(/^kho_mem_serialize: asked for 3 chunk pages at once, the allocator returned 2$/);
    expect(() => khoMemSerialize(isolated(170), mem, () => Number.NaN, undefined, () => two)).toThrow(/asked for 1 chunk page at once, the allocator returned 2/);
    expect(mem.touchedPages).toBe(0);
  });

  it("checks each address allocChunks gives as it checks allocChunk's", () => {
    const mem = new SparseMem(RAM_BASE, RAM_SIZE);
    const bad = [RAM_BASE + P, RAM_BASE + 2 * P];
    expect(() => khoMemSerialize(isolated(171), mem, () => Number.NaN, undefined, () => bad)).toThrow(/chunk 1: allocator returned page \[0x40002000, 0x40003000\) that overlaps preserved memory/);
    expect(mem.touchedPages).toBe(0);
  });

  it("rejects a page handed out twice once the allocator has turned back (the set of chunk pages, built lazily)", () => {
    // 4 chunks: the second page lies below the first, the third between them, the fourth repeats the second.
    const pages = [0x4fff_e000, 0x4fff_c000, 0x4fff_d000, 0x4fff_c000];
    const it = pages[Symbol.iterator]();
    const mem = new SparseMem(RAM_BASE, RAM_SIZE);
    expect(() => khoMemSerialize(isolated(3 * 170 + 1), mem, () => it.next().value as number)).toThrow(/chunk 3: allocator returned unusable page 0x4fffc000: it overlaps another chunk/);
    expect(mem.touchedPages).toBe(0);
  });
});

describe("encodeChunk / decodeChunk", () => {
  it("round-trip a full chunk and refuse more than 170 entries", () => {
    const ranges: KhoMemRange[] = Array.from({ length: KHOSER_RANGES_PER_CHUNK }, (_, i) => ({
      start: (i + 1) * 2 * P,
      size: P,
      data: i % 3 === 0 ? KHO_DATA_PHYS : khoDataFolio(0),
    }));
    const page = encodeChunk(0x1234_5000, ranges);
    expect(page).toHaveLength(P);
    const c = decodeChunk(page);
    expect(c.next).toBe(0x1234_5000n);
    expect(c.numRanges).toBe(170n);
    expect(c.ranges.map((x) => ({ start: Number(x.start), size: Number(x.size), data: Number(x.data) }))).toEqual(ranges);
    expect(() => encodeChunk(0, [...ranges, ranges[0]!])).toThrow(RangeError);
  });

  it("decodeChunk reads at most 170 entries whatever num_ranges claims", () => {
    const page = encodeChunk(0, []);
    page[15] = 0x80; // num_ranges = 2^63
    const c = decodeChunk(page);
    expect(c.numRanges).toBe(1n << 63n);
    expect(c.ranges).toHaveLength(KHOSER_RANGES_PER_CHUNK);
  });
});

describe("serialize -> walk round trip", () => {
  const rangeSet = fc.array(
    fc.record({
      page: fc.nat(4095),
      pages: fc.integer({ min: 1, max: 8 }),
      order: fc.constantFrom(-1, 0, 1, 3),
    }),
    { maxLength: 500 },
  );

  test.prop([rangeSet], { numRuns: 60 })("walk returns exactly the tracker's ranges and chunks", (specs) => {
    const t = new KhoMemTrack();
    for (const s of specs) {
      const fp = s.order < 0 ? 1 : 2 ** s.order;
      const start = RAM_BASE + Math.floor(s.page / fp) * fp * P;
      const size = Math.ceil(s.pages / fp) * fp * P;
      const data = s.order < 0 ? KHO_DATA_PHYS : khoDataFolio(s.order);
      try {
        t.khoPreserve(start, size, data);
      } catch {
        // overlaps with different data are refused; skip them
      }
    }
    const mem = new SparseMem(RAM_BASE, RAM_SIZE);
    const out = khoMemSerialize(t, mem, downAllocator());
    expect(out.chunks).toHaveLength(khoserChunkCount(t.count));
    expect(plainWalk(khoMemWalk(mem, BigInt(out.metadata), CTX))).toEqual({ chunks: out.chunks, ranges: [...t.ranges()] });
  });

  it("1M isolated folios survive the round trip", () => {
    const t = new KhoMemTrack();
    const n = 1_000_000;
    for (let i = 0; i < n; i++) t.khoPreserveFolio(2 ** 32 + 2 * i * P, 0);
    const ram = { ramBase: 2 ** 32, ramSize: 2 ** 34, scratch: [] };
    const mem = new SparseMem(ram.ramBase, ram.ramSize);
    const out = khoMemSerialize(t, mem, downAllocator(ram.ramBase + ram.ramSize));
    expect(out.chunks).toHaveLength(Math.ceil(n / 170));
    const w = khoMemWalk(mem, BigInt(out.metadata), ram);
    expect(w.ranges).toHaveLength(n);
    expect(w.ranges[n - 1]).toEqual({ start: 2 ** 32 + 2 * (n - 1) * P, size: P, data: khoDataFolio(0) });
    expectEqual(w.chunks, out.chunks);
  });
});
