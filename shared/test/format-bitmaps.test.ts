// Over 500 lines: one file for both bitmap formats (6.16 and one-page), each describe a part: bits, sizes, byte layout, tracker, round trip, walker rejections, scale.
import { fc, test } from "./fc-prop.js";
import { expectBe, expectEqual, withoutStacks } from "./fast-expect.js";
import { describe, expect, it } from "vitest";
import { PAGE_SIZE } from "../src/abi/page.js";
import { khoDataFolio } from "../src/abi/ranges.js";
import { ByteReader, u32leBytes, u64leBytes } from "../src/lib/bytes.js";
import { FdtRo, FdtWriter } from "../src/fdt/index.js";
import { rangesFormat } from "../src/kho/formats/ranges.js";
import { KHOSER_BITMAPS_PER_CHUNK, KHO_BITMAPS_PAGE_MARKER, PRESERVE_BITS_6_16, PRESERVE_BITS_PAGE } from "../src/abi/bitmaps.js";
import { KHO_FDT_MEMORY_MAP_PROP as PROP_PRESERVED_MEMORY_MAP } from "../src/abi/kho-fdt.js";
import { ctz, ilog2 } from "../src/lib/bits.js";
import { KhoBitmapTrack, bitmapsFormat, bitmapsPageFormat } from "../src/kho/formats/bitmaps/format.js";
import type { KhoWalkError, KhoWalkErrorCode } from "../src/kho/walk.js";
import type { KhoFormat, KhoFormatWalk, KhoSerialized } from "../src/kho/formats/types.js";
import { KhoFdtError, buildKhoFdt, parseKhoFdt } from "../src/kho/fdt.js";
import { SparseMem, type PhysMem } from "../src/mm/physmem.js";
import { KhoTrackError, khoPhysBlocks, type KhoMemRange } from "../src/kho/track.js";
import type { KhoWalkContext } from "../src/kho/walk.js";
import { bumpPages, catchWalkError, poke64, u64At } from "./format-common.js";

const P = PAGE_SIZE;
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/* A machine: 8 GiB of RAM from 1 GiB, scratch and metadata pages far above the preserved memory. */
const RAM_BASE = 0x4000_0000;
const RAM_SIZE = 8 * GiB;
const SCRATCH = { addr: 0x1_f000_0000, size: 16 * MiB };
const META = 0x2_0000_0000;
const CTX: KhoWalkContext = { ramBase: RAM_BASE, ramSize: RAM_SIZE, scratch: [SCRATCH] };

const noContig = (): number => {
  throw new Error("allocContig not expected");
};

function tracker(f: KhoFormat): KhoBitmapTrack {
  return f.createTracker() as KhoBitmapTrack;
}

interface Handoff {
  mem: SparseMem;
  ser: KhoSerialized;
  track: KhoBitmapTrack;
}

function handoff(f: KhoFormat, fill: (t: KhoBitmapTrack) => void, meta = META, ramBase = RAM_BASE, ramSize = RAM_SIZE): Handoff {
  const track = tracker(f);
  fill(track);
  const mem = new SparseMem(ramBase, ramSize);
  const ser = f.serialize(track, mem, bumpPages(meta), noContig);
  return { mem, ser, track };
}

function walk(f: KhoFormat, h: Handoff, ctx = CTX): KhoFormatWalk {
  return f.walk(h.mem, BigInt(h.ser.root), ctx);
}

function u32At(mem: PhysMem, phys: number): number {
  return new ByteReader(mem.read(phys, 4)).u32le(0);
}

const FORMATS = [
  { f: bitmapsFormat, bits: PRESERVE_BITS_6_16, bmBytes: 512 },
  { f: bitmapsPageFormat, bits: PRESERVE_BITS_PAGE, bmBytes: 4096 },
] as const;

describe("ctz, ilog2 and the kho_preserve_phys split", () => {
  it("ctz and ilog2 across the 32-bit boundary", () => {
    expect(ctz(0)).toBe(64);
    expect(ctz(1)).toBe(0);
    expect(ctz(0x40000)).toBe(18);
    expect(ctz(2 ** 32)).toBe(32);
    expect(ctz(2 ** 40 + 2 ** 35)).toBe(35);
    expect(ilog2(1)).toBe(0);
    expect(ilog2(0x3ffff)).toBe(17);
    expect(ilog2(2 ** 32)).toBe(32);
    expect(ilog2(2 ** 41 - 1)).toBe(40);
  });

  /* Brute force: at each pfn the largest naturally aligned power of two that still fits. */
  function brute(pfn: number, end: number): { pfn: number; order: number }[] {
    const out: { pfn: number; order: number }[] = [];
    while (pfn < end) {
      let o = 0;
      while (pfn % 2 ** (o + 1) === 0 && pfn + 2 ** (o + 1) <= end) o++;
      out.push({ pfn, order: o });
      pfn += 2 ** o;
    }
    return out;
  }

  it.each([
    [0x40000, 0x40000 + 0x40000, [{ pfn: 0x40000, order: 18 }]],
    [0x40001, 0x40008, [{ pfn: 0x40001, order: 0 }, { pfn: 0x40002, order: 1 }, { pfn: 0x40004, order: 2 }]],
    [0x40003, 0x4000b, [{ pfn: 0x40003, order: 0 }, { pfn: 0x40004, order: 2 }, { pfn: 0x40008, order: 1 }, { pfn: 0x4000a, order: 0 }]],
    [0, 5, [{ pfn: 0, order: 2 }, { pfn: 4, order: 0 }]],
    // Beyond MAX_PAGE_ORDER: a 4 GiB aligned range is one order-20 block.
    [0x100000, 0x200000, [{ pfn: 0x100000, order: 20 }]],
  ])("[%i, %i)", (pfn, end, blocks) => {
    expect(khoPhysBlocks(pfn, end)).toEqual(blocks);
    expect(brute(pfn, end)).toEqual(blocks);
  });

  test.prop([fc.integer({ min: 0, max: 2 ** 30 }), fc.integer({ min: 1, max: 5000 })])("matches the brute force", (pfn, n) => {
    expect(khoPhysBlocks(pfn, pfn + n)).toEqual(brute(pfn, pfn + n));
  });

  it("kho_preserve_phys sets exactly those blocks' bits", () => {
    const t = new KhoBitmapTrack();
    t.khoPreservePhys(0x40003 * P, 8 * P);
    for (const b of brute(0x40003, 0x4000b)) expect(t.hasBlock(b.pfn * P, b.order)).toBe(true);
    expect(t.blockCount).toBe(4);
    expect(t.hasBlock(0x40002 * P, 1)).toBe(false);
  });
});

describe("exact metadata sizes (kho-facts §5: bitmap + 4 KiB chunk per order used)", () => {
  /*
   * metadataBytes = 4096 * chunks + bitmaps * PRESERVE_BITS / 8: 512 per
   * bitmap in 6.16 (kzalloc(512), 8 to a slab page; the page is not counted
   * whole), 4096 per bitmap for one-page bitmaps. metadataPages = chunk pages
   * + pages holding bitmaps.
   */
  it.each([
    // name, format, fill, chunks, bitmaps, bytes, pages (one page, 1 GiB and 171 ranges: scripts/test/format-contract.test.ts)
    // Stride 8 MiB: 2 folios per 16 MiB bitmap -> 86 bitmaps (11 slab pages); 16 per 128 MiB bitmap -> 11.
    ["171 order-0 folios, stride 8 MiB", bitmapsFormat, (t: KhoBitmapTrack) => stride(t, 171, 8 * MiB), 1, 86, 86 * 512 + 4096, 1 + 11],
    ["171 order-0 folios, stride 8 MiB", bitmapsPageFormat, (t: KhoBitmapTrack) => stride(t, 171, 8 * MiB), 1, 11, 11 * 4096 + 4096, 1 + 11],
    // 256 bitmaps of one order: 255 in the first chunk, 1 in a second.
    ["256 order-0 folios, one per 16 MiB bitmap", bitmapsFormat, (t: KhoBitmapTrack) => stride(t, 256, 16 * MiB), 2, 256, 256 * 512 + 2 * 4096, 2 + 32],
    ["256 order-0 folios, one per 128 MiB bitmap", bitmapsPageFormat, (t: KhoBitmapTrack) => stride(t, 256, 128 * MiB, 0x1_0100_5000), 2, 256, 256 * 4096 + 2 * 4096, 2 + 256],
  ] as const)("%s (%s)", (_name, f, fill, chunks, bitmaps, bytes, pages) => {
    const h = handoff(f, fill, META, RAM_BASE, f === bitmapsPageFormat && bitmaps === 256 ? 40 * GiB : RAM_SIZE);
    expect(h.track.bitmapCount).toBe(bitmaps);
    expect(h.ser.metadataBytes).toBe(bytes);
    expect(h.ser.metadataPages).toHaveLength(pages);
    // Chunk count from the list itself.
    let n = 0;
    for (let c = h.ser.root; c !== 0; c = Number(u64At(h.mem, c))) n++;
    expect(n).toBe(chunks);
  });

  it("nothing preserved: root 0, nothing allocated or written", () => {
    for (const { f } of FORMATS) {
      const mem = new SparseMem(RAM_BASE, RAM_SIZE);
      const ser = f.serialize(f.createTracker(), mem, () => {
        throw new Error("no allocation expected");
      }, noContig);
      expect(ser).toEqual({ root: 0, metadataPages: [], metadataBytes: 0 });
      expect(mem.touchedPages).toBe(0);
      const w = f.walk(mem, 0n, CTX);
      expect([w.metadataPages, w.ranges, w.blockCount]).toEqual([[], [], 0]);
    }
  });

  it("256 bitmaps spill: chunk 0 holds 255, chunk 1 the last, same order, linked", () => {
    const h = handoff(bitmapsFormat, (t) => stride(t, 256, 16 * MiB));
    const c0 = h.ser.root;
    const c1 = Number(u64At(h.mem, c0));
    expect(KHOSER_BITMAPS_PER_CHUNK).toBe(255);
    expect([u32At(h.mem, c0 + 8), u32At(h.mem, c0 + 12)]).toEqual([0, 255]);
    expect([u64At(h.mem, c1), u32At(h.mem, c1 + 8), u32At(h.mem, c1 + 12)]).toEqual([0n, 0, 1]);
    // The 256th bitmap's phys_start: folio 255 at RAM_BASE + 255 * 16 MiB.
    expect(u64At(h.mem, c1 + 16)).toBe(BigInt(RAM_BASE + 255 * 16 * MiB));
    expect(walk(bitmapsFormat, h).blockCount).toBe(256);
  });
});

function stride(t: KhoBitmapTrack, n: number, step: number, base = RAM_BASE): void {
  for (let i = 0; i < n; i++) t.khoPreserveFolio(base + i * step, 0);
}

describe("byte layout", () => {
  /*
   * Order-0 folios at pfn 0x40005 and 0x40007 (bitmap 64, bits 5 and 7) and
   * 0x41fff (bitmap 65, bit 4095); an order-3 folio at 0x50048000 (pfn
   * 0x50048 >> 3 = 0xa009: bitmap 10, bit 9). Bitmaps first, 8 to a page:
   * 0x2_0000_0000 +0, +0x200, +0x400; then chunk 0 (order 0) at
   * 0x2_0000_1000 and chunk 1 (order 3) at 0x2_0000_2000.
   */
  const fill = (t: KhoBitmapTrack): void => {
    t.khoPreserveFolio(0x5004_8000, 3); // out of order on purpose: chunks follow the orders
    t.khoPreserveFolio(0x4000_7000, 0);
    t.khoPreserveFolio(0x41ff_f000, 0);
    t.khoPreserveFolio(0x4000_5000, 0);
  };

  it("6.16: chunk headers, entries and bitmap bits at exact offsets", () => {
    const h = handoff(bitmapsFormat, fill);
    const BM = META;
    const C0 = META + P;
    const C1 = META + 2 * P;
    expect(h.ser).toEqual({ root: C0, metadataPages: [C0, BM, C1], metadataBytes: 2 * 4096 + 3 * 512 });

    const c0 = new DataView(h.mem.read(C0, P).buffer);
    expect(c0.getBigUint64(0, true)).toBe(BigInt(C1)); // next
    expect(c0.getUint32(8, true)).toBe(0); // order
    expect(c0.getUint32(12, true)).toBe(2); // num_elms
    expect(c0.getBigUint64(16, true)).toBe(0x4000_0000n); // bitmaps[0].phys_start = (64 * 4096) << 12
    expect(c0.getBigUint64(24, true)).toBe(BigInt(BM)); // bitmaps[0].bitmap
    expect(c0.getBigUint64(32, true)).toBe(0x4100_0000n); // bitmaps[1].phys_start = (65 * 4096) << 12
    expect(c0.getBigUint64(40, true)).toBe(BigInt(BM + 0x200));
    expect(h.mem.read(C0 + 48, P - 48).every((b) => b === 0)).toBe(true);

    const c1 = new DataView(h.mem.read(C1, P).buffer);
    expect(c1.getBigUint64(0, true)).toBe(0n);
    expect(c1.getUint32(8, true)).toBe(3);
    expect(c1.getUint32(12, true)).toBe(1);
    expect(c1.getBigUint64(16, true)).toBe(0x5000_0000n); // (10 * 4096) << 15
    expect(c1.getBigUint64(24, true)).toBe(BigInt(BM + 0x400));

    const bm = h.mem.read(BM, P);
    expect(bm[0]).toBe(0xa0); // bits 5 and 7
    expect(bm[0x200 + 511]).toBe(0x80); // bit 4095
    expect(bm[0x400 + 1]).toBe(0x02); // bit 9
    const others = [...bm].filter((_, i) => i !== 0 && i !== 0x200 + 511 && i !== 0x400 + 1);
    expect(others.every((b) => b === 0)).toBe(true);
  });

  it("one-page bitmaps: a page each, bits at PRESERVE_BITS 32768", () => {
    const h = handoff(bitmapsPageFormat, fill);
    // Bitmaps: order 0 index 8 (pfn 0x40005 / 32768) holds all three order-0 bits; order 3 index 1 (0xa009 / 32768).
    const [B0, B1, C0, C1] = [META, META + P, META + 2 * P, META + 3 * P];
    expect(h.ser).toEqual({ root: C0, metadataPages: [C0, B0, C1, B1], metadataBytes: 4 * 4096 });
    expect([u64At(h.mem, C0), u32At(h.mem, C0 + 8), u32At(h.mem, C0 + 12)]).toEqual([BigInt(C1), 0, 1]);
    expect([u64At(h.mem, C0 + 16), u64At(h.mem, C0 + 24)]).toEqual([0x4000_0000n, BigInt(B0)]); // (8 * 32768) << 12
    expect([u64At(h.mem, C1 + 16), u64At(h.mem, C1 + 24)]).toEqual([0x4000_0000n, BigInt(B1)]); // (1 * 32768) << 15
    const b0 = h.mem.read(B0, P);
    expect([b0[0], b0[0x1fff >>> 3]]).toEqual([0xa0, 0x80]); // pfn 0x41fff - 0x40000 = bit 0x1fff
    expect(h.mem.read(B1, P)[(0xa009 - 32768) >>> 3]).toBe(1 << ((0xa009 - 32768) & 7));
  });

  it("the KHO FDT: root compatible, preserved-memory-map, sub-trees; no /preserved-memory", () => {
    const blob = bitmapsFormat.buildFdt(0x2_0000_1000, [{ name: "kho_test", fdtPhys: 0x4567_8000 }]);
    const fdt = new FdtRo(blob);
    expect(fdt.properties(0).map((p) => p.name)).toEqual(["compatible", PROP_PRESERVED_MEMORY_MAP]);
    expect([...fdt.getProp(0, PROP_PRESERVED_MEMORY_MAP)!]).toEqual([...u64leBytes(0x2_0000_1000)]);
    expect(fdt.subnodes(0).map((n) => fdt.nodeName(n))).toEqual(["kho_test"]);
    expect([...fdt.getProp(fdt.pathOffset("/kho_test"), "fdt")!]).toEqual([...u64leBytes(0x4567_8000)]);
    expect(() => fdt.pathOffset("/preserved-memory")).toThrow();
    // The bytes libfdt's sequential writer gives for the same calls.
    const w = new FdtWriter();
    w.finishReservemap();
    w.beginNode("");
    w.propertyString("compatible", "kho-v1");
    w.property("preserved-memory-map", u64leBytes(0x2_0000_1000));
    w.beginNode("kho_test");
    w.property("fdt", u64leBytes(0x4567_8000));
    w.endNode();
    w.endNode();
    expect(blob).toEqual(w.finish());
    expect(bitmapsFormat.readRoot(fdt)).toBe(0x2_0000_1000n);

    const page = new FdtRo(bitmapsPageFormat.buildFdt(0x1000, []));
    expect(page.properties(0).map((p) => p.name)).toEqual(["compatible", PROP_PRESERVED_MEMORY_MAP, KHO_BITMAPS_PAGE_MARKER]);
    expect([...page.getProp(0, KHO_BITMAPS_PAGE_MARKER)!]).toEqual([...u32leBytes(32768)]);
    expect(bitmapsPageFormat.readRoot(page)).toBe(0x1000n);
  });

  it("matches / parseKhoFdt tell ranges, bitmaps and bitmaps-page apart", () => {
    const formats = [rangesFormat, bitmapsFormat, bitmapsPageFormat];
    const ranges = buildKhoFdt(0x1000, []);
    const bm = bitmapsFormat.buildFdt(0x2000, []);
    const pg = bitmapsPageFormat.buildFdt(0x3000, []);
    expect(formats.map((f) => f.matches(new FdtRo(ranges)))).toEqual([true, false, false]);
    expect(formats.map((f) => f.matches(new FdtRo(bm)))).toEqual([false, true, false]);
    expect(formats.map((f) => f.matches(new FdtRo(pg)))).toEqual([false, false, true]);
    expect(parseKhoFdt(bm, formats)).toMatchObject({ format: bitmapsFormat, metadata: 0x2000n });
    expect(parseKhoFdt(pg, formats)).toMatchObject({ format: bitmapsPageFormat, metadata: 0x3000n });
  });

  it("readRoot names the property when it is missing or malformed", () => {
    const fdtWith = (props: [string, Uint8Array][]): FdtRo => {
      const w = new FdtWriter();
      w.finishReservemap();
      w.beginNode("");
      w.propertyString("compatible", "kho-v1");
      for (const [n, v] of props) w.property(n, v);
      w.endNode();
      return new FdtRo(w.finish());
    };
    const err = (f: KhoFormat, fdt: FdtRo): KhoFdtError => {
      try {
        f.readRoot(fdt);
      } catch (e) {
        expect(e).toBeInstanceOf(KhoFdtError);
        return e as KhoFdtError;
      }
      throw new Error("readRoot did not throw");
    };
    expect(err(bitmapsFormat, fdtWith([])).message).toBe("/preserved-memory-map: missing");
    expect(err(bitmapsFormat, fdtWith([[PROP_PRESERVED_MEMORY_MAP, u32leBytes(0x1000)]])).message).toBe("/preserved-memory-map: length 4, expected 8");
    expect(err(bitmapsPageFormat, fdtWith([[PROP_PRESERVED_MEMORY_MAP, u64leBytes(0x1000)], [KHO_BITMAPS_PAGE_MARKER, u32leBytes(4096)]])).message).toBe(
      "/khosim,preserve-bits: is 4096, expected 32768 (one-page bitmaps)",
    );
    expect(err(bitmapsPageFormat, fdtWith([[PROP_PRESERVED_MEMORY_MAP, u64leBytes(0x1000)], [KHO_BITMAPS_PAGE_MARKER, u64leBytes(32768)]])).field).toBe(
      "/khosim,preserve-bits",
    );
  });
});

describe("tracker semantics", () => {
  it("same block twice is harmless; another order over it is EEXIST and changes nothing", () => {
    const t = new KhoBitmapTrack();
    t.khoPreserveFolio(0x4000_8000, 3);
    t.khoPreserveFolio(0x4000_8000, 3);
    t.khoPreservePhys(0x4000_8000, 8 * P); // splits into the same order-3 block
    expect([t.totalBytes, t.blockCount]).toEqual([8 * P, 1]);
    expect(() => t.khoPreserveFolio(0x4000_9000, 0)).toThrow(/^kho_preserve_folio: order-0 block \[0x40009000, 0x4000a000\) overlaps preserved order-3 block \[0x40008000, 0x40010000\)$/);
    expect(() => t.khoPreserveFolio(0x4000_0000, 4)).toThrow(KhoTrackError);
    // A phys range is all or nothing: its first block is fine, its second conflicts.
    expect(() => t.khoPreservePhys(0x4000_0000, 12 * P)).toThrow(/^kho_preserve_phys: order-2 block \[0x40008000, 0x4000c000\) overlaps preserved order-3 block \[0x40008000, 0x40010000\)$/);
    expect([t.totalBytes, t.blockCount]).toEqual([8 * P, 1]);
    expect(t.ranges()).toEqual([{ start: 0x4000_8000, size: 8 * P, data: khoDataFolio(3) }]);
  });

  it("overlapping phys ranges with different splits conflict (a documented difference from KhoMemTrack)", () => {
    const t = new KhoBitmapTrack();
    t.khoPreservePhys(0x4000_0000, 16 * P); // one order-4 block
    expect(() => t.khoPreservePhys(0x4000_8000, 16 * P)).toThrow(KhoTrackError);
  });

  it("unpreserve clears whole blocks, splits a cut one, keeps the emptied bitmaps", () => {
    const t = new KhoBitmapTrack();
    t.khoPreserveFolio(0x4000_0000, 0);
    t.khoPreserveFolio(0x4000_8000, 3);
    // Cuts the order-3 block [8, 16) at page 9: pages 9..15 stay, as blocks 9 (order 0), 10 (order 1), 12 (order 2).
    t.khoUnpreserve(0x4000_0000, 9 * P);
    expect(t.ranges()).toEqual([
      { start: 0x4000_9000, size: P, data: khoDataFolio(0) },
      { start: 0x4000_a000, size: 2 * P, data: khoDataFolio(1) },
      { start: 0x4000_c000, size: 4 * P, data: khoDataFolio(2) },
    ]);
    expect([t.totalBytes, t.blockCount]).toEqual([7 * P, 3]);
    t.khoUnpreserve(0x4000_0000, 16 * P);
    expect([t.totalBytes, t.blockCount, t.bitmapCount]).toEqual([0, 0, 4]);
    t.khoUnpreserve(0x4000_0000, 16 * P); // harmless
    // Like the kernel, emptied bitmaps are still serialized (a chunk per order); the walk finds no block in them.
    const mem = new SparseMem(RAM_BASE, RAM_SIZE);
    const ser = bitmapsFormat.serialize(t, mem, bumpPages(META), noContig);
    expect(ser.metadataBytes).toBe(4 * 4096 + 4 * 512);
    const w = bitmapsFormat.walk(mem, BigInt(ser.root), CTX);
    expect([w.ranges, w.blockCount, w.metadataPages.length]).toEqual([[], 0, 5]);
    // After the unpreserve a different order may take the place.
    t.khoPreserveFolio(0x4000_0000, 4);
    expect(t.ranges()).toEqual([{ start: 0x4000_0000, size: 16 * P, data: khoDataFolio(4) }]);
    t.khoUnpreserveFolio(0x4000_0000, 4);
    expect(t.totalBytes).toBe(0);
  });

  it("unpreserving the middle of one block keeps both sides", () => {
    const t = new KhoBitmapTrack();
    t.khoPreservePhys(0x4001_0000, 16 * P); // one order-4 block, pages 16..31
    t.khoUnpreservePhys(0x4001_4000, 2 * P); // pages 20, 21
    expect(t.ranges()).toEqual([
      { start: 0x4001_0000, size: 4 * P, data: khoDataFolio(2) },
      { start: 0x4001_6000, size: 2 * P, data: khoDataFolio(1) },
      { start: 0x4001_8000, size: 8 * P, data: khoDataFolio(3) },
    ]);
    expect([t.totalBytes, t.blockCount]).toEqual([14 * P, 3]);
  });

  it("EINVAL on bad arguments", () => {
    const t = new KhoBitmapTrack();
    expect(() => t.khoPreserveFolio(0x4000_1000, 1)).toThrow(KhoTrackError);
    expect(() => t.khoPreserveFolio(0x4000_0000, -1)).toThrow(KhoTrackError);
    expect(() => t.khoPreserveFolio(0x4000_0000, 1.5)).toThrow(KhoTrackError);
    expect(() => t.khoPreserveFolio(0x4000_0000, 41)).toThrow(KhoTrackError);
    expect(() => t.khoPreserveFolio(2 ** 53, 0)).toThrow(KhoTrackError);
    expect(() => t.khoPreservePhys(0x4000_0800, P)).toThrow(KhoTrackError);
    expect(() => t.khoPreservePhys(0x4000_0000, 0)).toThrow(KhoTrackError);
    expect(t.totalBytes).toBe(0);
  });

  it("serialize refuses a preserved or repeated page from the allocator", () => {
    const t = new KhoBitmapTrack();
    t.khoPreserveFolio(META, 0);
    expect(() => bitmapsFormat.serialize(t, new SparseMem(RAM_BASE, RAM_SIZE), () => META, noContig)).toThrow(/preserved page/);
    const u = new KhoBitmapTrack();
    stride(u, 2, 16 * MiB);
    expect(() => bitmapsFormat.serialize(u, new SparseMem(RAM_BASE, RAM_SIZE), () => META, noContig)).toThrow(/unusable page/);
    expect(() => bitmapsFormat.serialize(rangesFormat.createTracker(), new SparseMem(RAM_BASE, RAM_SIZE), bumpPages(META), noContig)).toThrow(TypeError);
  });
});

/* A page-by-page model over a small region: the order of the block covering each page, or -1. */
const REGION_PAGES = 16384; // 64 MiB from RAM_BASE
type Op =
  | { k: "folio"; pfn: number; order: number }
  | { k: "phys"; pfn: number; pages: number }
  | { k: "unpreserve"; pfn: number; pages: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ pfn: fc.nat(REGION_PAGES - 1), order: fc.nat(12) }).map(({ pfn, order }) => ({ k: "folio" as const, pfn: Math.min(pfn - (pfn % 2 ** order), REGION_PAGES - 2 ** order), order })) },
  { weight: 3, arbitrary: fc.record({ pfn: fc.nat(REGION_PAGES - 1), pages: fc.integer({ min: 1, max: 5000 }) }).map(({ pfn, pages }) => ({ k: "phys" as const, pfn, pages: Math.min(pages, REGION_PAGES - pfn) })) },
  { weight: 1, arbitrary: fc.record({ pfn: fc.nat(REGION_PAGES - 1), pages: fc.integer({ min: 1, max: 3000 }) }).map(({ pfn, pages }) => ({ k: "unpreserve" as const, pfn, pages: Math.min(pages, REGION_PAGES - pfn) })) },
);

class Model {
  readonly page = new Int8Array(REGION_PAGES).fill(-1);

  private free(blocks: { pfn: number; order: number }[]): boolean {
    for (const b of blocks) {
      for (let p = b.pfn; p < b.pfn + 2 ** b.order; p++) if (this.page[p] !== -1 && this.page[p] !== b.order) return false;
    }
    return true;
  }

  preserve(blocks: { pfn: number; order: number }[]): boolean {
    if (!this.free(blocks)) return false;
    for (const b of blocks) this.page.fill(b.order, b.pfn, b.pfn + 2 ** b.order);
    return true;
  }

  /* Always succeeds: blocks cut by either end are split, their outside pieces re-blocked as kho_preserve_phys would. */
  unpreserve(p0: number, p1: number): boolean {
    const cut: [number, number][] = [];
    for (const at of [p0, p1]) {
      if (at >= REGION_PAGES) continue;
      const o = this.page[at]!;
      if (o < 0 || at % 2 ** o === 0) continue;
      const bs = at - (at % 2 ** o);
      if (!cut.some(([s]) => s === bs)) cut.push([bs, bs + 2 ** o]);
    }
    for (const [bs, be] of cut) this.page.fill(-1, bs, be);
    this.page.fill(-1, p0, p1);
    const base = RAM_BASE / P; // aligned far beyond any order here, so page indices keep their alignment
    for (const [bs, be] of cut) {
      const pieces = [
        [bs, Math.min(p0, be)],
        [Math.max(p1, bs), be],
      ].filter(([a, b]) => a! < b!);
      for (const [a, b] of pieces) for (const blk of khoPhysBlocks(base + a!, base + b!)) this.page.fill(blk.order, blk.pfn - base, blk.pfn - base + 2 ** blk.order);
    }
    return true;
  }

  ranges(): KhoMemRange[] {
    const out: KhoMemRange[] = [];
    for (let p = 0; p < REGION_PAGES; p++) {
      const o = this.page[p]!;
      if (o < 0) continue;
      const last = out[out.length - 1];
      const start = RAM_BASE + p * P;
      if (last && last.data === khoDataFolio(o) && last.start + last.size === start) last.size += P;
      else out.push({ start, size: P, data: khoDataFolio(o) });
    }
    return out;
  }

  blocks(): number {
    let n = 0;
    for (let p = 0; p < REGION_PAGES; p++) {
      const o = this.page[p]!;
      if (o >= 0 && (RAM_BASE / P + p) % (1 << o) === 0) n++;
    }
    return n;
  }
}

describe("round trip", () => {
  for (const { f, bmBytes } of FORMATS) {
    test.prop([fc.array(opArb, { minLength: 1, maxLength: 40 })], { numRuns: 120 })(`${f.name}: tracker = model, walk(serialize) = tracker`, (ops) => {
      const t = tracker(f);
      const m = new Model();
      const base = RAM_BASE / P;
      for (const op of ops) {
        const addr = RAM_BASE + op.pfn * P;
        let ok = true;
        try {
          if (op.k === "folio") t.khoPreserveFolio(addr, op.order);
          else if (op.k === "phys") t.khoPreservePhys(addr, op.pages * P);
          else t.khoUnpreserve(addr, op.pages * P);
        } catch (e) {
          if (!(e instanceof KhoTrackError)) expect(e).toBeInstanceOf(KhoTrackError);
          ok = false;
        }
        const want =
          op.k === "folio"
            ? m.preserve([{ pfn: op.pfn, order: op.order }])
            : op.k === "phys"
              ? m.preserve(khoPhysBlocks(base + op.pfn, base + op.pfn + op.pages).map((b) => ({ pfn: b.pfn - base, order: b.order })))
              : m.unpreserve(op.pfn, op.pfn + op.pages);
        expectBe(ok, want);
      }
      const ranges = m.ranges();
      const modelBlocks = m.blocks();
      expectEqual(t.ranges(), ranges);
      expect(t.totalBytes).toBe(ranges.reduce((n, r) => n + r.size, 0));
      expect(t.blockCount).toBe(modelBlocks);

      const mem = new SparseMem(RAM_BASE, RAM_SIZE);
      const ser = f.serialize(t, mem, bumpPages(META), noContig);
      const w = f.walk(mem, BigInt(ser.root), CTX);
      expectEqual(w.ranges, ranges);
      expect(w.blockCount).toBe(modelBlocks);
      expectEqual(w.metadataPages, ser.metadataPages);
      let chunks = 0;
      for (let c = ser.root; c !== 0; c = Number(u64At(mem, c))) chunks++;
      expect(ser.metadataBytes).toBe(chunks * P + t.bitmapCount * bmBytes);
      let blocks = 0;
      let bytes = 0;
      w.forEachBlock((start, size, data) => {
        blocks++;
        bytes += size;
        expectBe(size, P * 2 ** (data & 0xff));
        expectBe(start % size, 0);
      });
      expect([blocks, bytes]).toEqual([modelBlocks, t.totalBytes]);
    });
  }

  it("a 1 TiB machine with random orders and huge phys ranges", () => {
    const ram = 2 ** 40;
    const base = 0;
    const meta = ram - GiB;
    const ctx: KhoWalkContext = { ramBase: base, ramSize: ram, scratch: [{ addr: ram - 2 * GiB, size: GiB }] };
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 1) % n;
    };
    for (const { f } of FORMATS) {
      const t = tracker(f);
      // A huge range first (blocks far above MAX_PAGE_ORDER); later folios inside it fail with EEXIST.
      t.khoPreservePhys(3 * 64 * GiB + 5 * P, 37 * GiB + 3 * P);
      let done = 0;
      // Refusals are caught without stacks; any error that is not a KhoTrackError is kept and fails below.
      let other: unknown;
      withoutStacks(() => {
        for (let i = 0; i < 20000; i++) {
          const order = rnd(11);
          const size = P * 2 ** order;
          const phys = Math.floor((rnd(2 ** 30) * 1021) % ((ram - 4 * GiB) / size)) * size;
          try {
            t.khoPreserveFolio(phys, order);
            done++;
          } catch (e) {
            if (!(e instanceof KhoTrackError)) other ??= e;
          }
        }
      });
      expect(other).toBeUndefined();
      expect(done).toBeGreaterThan(15000);
      const mem = new SparseMem(base, ram);
      const ser = f.serialize(t, mem, bumpPages(meta), noContig);
      const w = f.walk(mem, BigInt(ser.root), ctx);
      expectEqual(w.ranges, t.ranges());
      expect(w.blockCount).toBe(t.blockCount);
    }
  });
});

describe("walker rejections", () => {
  /*
   * The base handoff (6.16 format), RAM 112 MiB from 1 GiB (its end is not
   * a bitmap boundary), scratch [0x4500_0000, +16 MiB), metadata from
   * 0x4600_0000: bitmap page BM (order-0 index 64 at +0, index 65 at +0x200,
   * order-3 index 8 at +0x400), chunk C0 (order 0, 2 entries), chunk C1
   * (order 3, 1 entry).
   */
  const RB = 0x4000_0000;
  const RS = 112 * MiB;
  const RE = RB + RS;
  const SC = { addr: 0x4500_0000, size: 16 * MiB };
  const MB = 0x4600_0000;
  const ctx: KhoWalkContext = { ramBase: RB, ramSize: RS, scratch: [SC] };
  const BM = MB;
  const C0 = MB + P;
  const C1 = MB + 2 * P;
  const ENT = (i: number): number => 16 + 16 * i;

  function base(): SparseMem {
    const h = handoff(
      bitmapsFormat,
      (t) => {
        t.khoPreserveFolio(RB + 5 * P, 0);
        t.khoPreserveFolio(RB + 16 * MiB + 7 * P, 0);
        t.khoPreserveFolio(RB + 8 * P, 3);
      },
      MB,
      RB,
      RS,
    );
    expect(h.ser).toMatchObject({ root: C0, metadataPages: [C0, BM, C1] });
    // The order-3 bitmap (index 8, bit 1) spans [0x40000000, 0x48000000), past the RAM end 0x47000000.
    expect(u64At(h.mem, C1 + 16)).toBe(BigInt(RB));
    return h.mem;
  }

  /* @where in the old per-format names: chunkIndex, chunkPhys, entryIndex are the shared walk's index, phys, entry. */
  type Where = { chunkIndex?: number; chunkPhys?: number; order?: number; entryIndex?: number; field?: string; offset?: number; bit?: number };
  function reject(mem: PhysMem, code: KhoWalkErrorCode, where: Where, message: RegExp, root = C0): KhoWalkError {
    const e = catchWalkError(() => bitmapsFormat.walk(mem, BigInt(root), ctx));
    expect(e.code).toBe(code);
    const { chunkIndex, chunkPhys, entryIndex, ...rest } = where;
    const want = { ...rest, ...(chunkIndex === undefined ? {} : { index: chunkIndex }), ...(chunkPhys === undefined ? {} : { phys: chunkPhys }), ...(entryIndex === undefined ? {} : { entry: entryIndex }) };
    expect(e).toMatchObject(want);
    expect(e.message).toMatch(message);
    return e;
  }

  const poke32 = (mem: PhysMem, at: number, v: number): void => mem.write(at, u32leBytes(v));
  const setBit = (mem: PhysMem, bitmap: number, bit: number): void => {
    const b = mem.read(bitmap + (bit >>> 3), 1);
    b[0] = b[0]! | (1 << (bit & 7));
    mem.write(bitmap + (bit >>> 3), b);
  };

  it("the base handoff walks", () => {
    const w = bitmapsFormat.walk(base(), BigInt(C0), ctx);
    expect(w.ranges).toEqual([
      { start: RB + 5 * P, size: P, data: khoDataFolio(0) },
      { start: RB + 8 * P, size: 8 * P, data: khoDataFolio(3) },
      { start: RB + 16 * MiB + 7 * P, size: P, data: khoDataFolio(0) },
    ]);
    expect(w.blockCount).toBe(3);
    expect(w.metadataPages).toEqual([C0, BM, C1]);
  });

  it.each([256, 2 ** 32 - 1])("num_elms %i", (n) => {
    const mem = base();
    poke32(mem, C0 + 12, n);
    reject(mem, "NUM_ELMS", { chunkIndex: 0, chunkPhys: C0, order: 0, field: "num_elms", offset: 12 }, new RegExp(`^chunk 0 \\(order 0\\) at 0x46001000: num_elms at \\+0xc is ${n}, more than 255$`));
  });

  it("order above the walk's bound", () => {
    const mem = base();
    poke32(mem, C1 + 8, 52);
    reject(mem, "CHUNK_ORDER", { chunkIndex: 1, chunkPhys: C1, field: "order", offset: 8 }, /^chunk 1 at 0x46002000: order at \+0x8 is 52, above 51$/);
  });

  it("next pointing at its own chunk (cycle)", () => {
    const mem = base();
    poke64(mem, C1, C1);
    reject(mem, "CHUNK_CYCLE", { chunkIndex: 1, chunkPhys: C1, field: "next", offset: 0 }, /^chunk 1 \(order 3\) at 0x46002000: next at \+0x0 is 0x46002000: that is chunk 1 again \(cycle\)$/);
  });

  it("next outside RAM, unaligned, in scratch; root unaligned", () => {
    let mem = base();
    poke64(mem, C0, RE);
    reject(mem, "CHUNK_OUTSIDE_RAM", { chunkIndex: 0, field: "next", offset: 0 }, /next at \+0x0 is 0x47000000: chunk 1 page is outside RAM/);
    mem = base();
    poke64(mem, C0, 2n ** 64n - 4096n);
    reject(mem, "CHUNK_OUTSIDE_RAM", { chunkIndex: 0, field: "next" }, /is 0xfffffffffffff000/);
    mem = base();
    poke64(mem, C0, C1 + 8);
    reject(mem, "CHUNK_UNALIGNED", { chunkIndex: 0, field: "next" }, /0x46002008: chunk 1 address is not page aligned/);
    mem = base();
    poke64(mem, C0, SC.addr);
    reject(mem, "CHUNK_IN_SCRATCH", { chunkIndex: 0, field: "next" }, /chunk 1 page overlaps scratch \[0x45000000, 0x46000000\)/);
    reject(base(), "CHUNK_UNALIGNED", { field: "preserved-memory-map" }, /^preserved-memory-map is 0x46001010: chunk 0 address/, C0 + 16);
  });

  it("bitmap pointer outside RAM, unaligned, in scratch, in a chunk page, reused", () => {
    let mem = base();
    poke64(mem, C0 + ENT(1) + 8, RE);
    reject(mem, "BITMAP_OUTSIDE_RAM", { chunkIndex: 0, order: 0, entryIndex: 1, field: "bitmap", offset: 0x28 }, /^chunk 0 \(order 0\) at 0x46001000: bitmaps\[1\]\.bitmap at \+0x28 is 0x47000000: bitmap \[0x47000000, 0x47000200\) is outside RAM \[0x40000000, 0x47000000\)$/);
    mem = base();
    poke64(mem, C0 + ENT(1) + 8, BM + 0x208);
    reject(mem, "BITMAP_UNALIGNED", { entryIndex: 1, field: "bitmap", offset: 0x28 }, /is 0x46000208: bitmap address is not aligned to its 512-byte size$/);
    mem = base();
    poke64(mem, C1 + ENT(0) + 8, SC.addr + 0x200);
    reject(mem, "BITMAP_IN_SCRATCH", { chunkIndex: 1, order: 3, entryIndex: 0, field: "bitmap", offset: 0x18 }, /bitmap \[0x45000200, 0x45000400\) overlaps scratch \[0x45000000, 0x46000000\)$/);
    mem = base();
    poke64(mem, C0 + ENT(1) + 8, C0 + 0x200);
    reject(mem, "METADATA_OVERLAP", { chunkIndex: 0, entryIndex: 1, field: "bitmap" }, /bitmaps\[1\]\.bitmap at \+0x28 is 0x46001200: bitmap \[0x46001200, 0x46001400\) overlaps chunk 0 \[0x46001000, 0x46002000\)$/);
    mem = base();
    poke64(mem, C1 + ENT(0) + 8, BM);
    reject(mem, "BITMAP_REUSED", { chunkIndex: 1, entryIndex: 0 }, /already the bitmap of chunk 0 bitmaps\[0\]/);
    mem = base();
    poke64(mem, C0, BM); // a chunk in the bitmaps' page
    reject(mem, "METADATA_OVERLAP", { chunkIndex: 0, field: "next" }, /next at \+0x0 is 0x46000000: chunk 1 page overlaps the bitmap of chunk 0 bitmaps\[0\] \[0x46000000, 0x46000200\)$/);
  });

  it("phys_start misaligned or past RAM", () => {
    let mem = base();
    poke64(mem, C0 + ENT(1), RB + 16 * MiB + P);
    reject(mem, "START_UNALIGNED", { chunkIndex: 0, entryIndex: 1, field: "phys_start", offset: 0x20 }, /^chunk 0 \(order 0\) at 0x46001000: bitmaps\[1\]\.phys_start at \+0x20 is 0x41001000: not aligned to PRESERVE_BITS << \(order \+ PAGE_SHIFT\) = 0x1000000$/);
    mem = base();
    poke64(mem, C1 + ENT(0), 0x400_0000); // order 3: spans are 128 MiB
    reject(mem, "START_UNALIGNED", { chunkIndex: 1, order: 3, field: "phys_start", offset: 0x10 }, /= 0x8000000$/);
    mem = base();
    poke64(mem, C0 + ENT(1), 0x4800_0000);
    reject(mem, "START_OUTSIDE_RAM", { entryIndex: 1, field: "phys_start" }, /at or past RAM end 0x47000000/);
    mem = base();
    poke64(mem, C0 + ENT(1), 2n ** 63n);
    reject(mem, "START_OUTSIDE_RAM", { entryIndex: 1, field: "phys_start" }, /is 0x8000000000000000: outside RAM/);
  });

  it("a set bit outside RAM (below the base, past the end)", () => {
    let mem = base();
    poke64(mem, C0 + ENT(0), 0); // order-0 bitmap 0 now covers [0, 16 MiB): bit 5 is below RAM
    reject(mem, "BLOCK_OUTSIDE_RAM", { chunkIndex: 0, order: 0, entryIndex: 0, field: "bit", bit: 5, offset: 0 }, /^chunk 0 \(order 0\) at 0x46001000: bitmaps\[0\] \(bitmap 0x46000000\) bit 5 at byte \+0x0: block \[0x5000, 0x6000\) starts below RAM base 0x40000000$/);
    mem = base();
    setBit(mem, BM + 0x400, 3583); // block 0x40000000 + 3583 * 32 KiB = 0x46ff8000: inside
    setBit(mem, BM + 0x400, 3584); // block 0x47000000: outside
    reject(mem, "BLOCK_OUTSIDE_RAM", { chunkIndex: 1, order: 3, entryIndex: 0, field: "bit", bit: 3584, offset: 448 }, /bitmaps\[0\] \(bitmap 0x46000400\) bit 3584 at byte \+0x1c0: block \[0x47000000, 0x47008000\) is not inside RAM/);
  });

  it("a block overlapping scratch", () => {
    const mem = base();
    // Order-0 bitmap 1 covers [0x41000000, 0x42000000); move it to scratch's window [0x45000000, 0x46000000).
    poke64(mem, C0 + ENT(1), SC.addr);
    reject(mem, "BLOCK_IN_SCRATCH", { chunkIndex: 0, entryIndex: 1, field: "bit", bit: 7, offset: 0 }, /bit 7 at byte \+0x0: block \[0x45007000, 0x45008000\) overlaps scratch \[0x45000000, 0x46000000\)/);
  });

  it("two orders overlapping, and one order twice", () => {
    let mem = base();
    setBit(mem, BM, 9); // order-0 page 0x40009000 inside the order-3 block [0x40008000, 0x40010000)
    reject(mem, "BLOCK_OVERLAP", { chunkIndex: 0, order: 0, entryIndex: 0, field: "bit", bit: 9, offset: 1 }, /^chunk 0 \(order 0\) bitmaps\[0\] bit 9: block \[0x40009000, 0x4000a000\) \(bitmap 0x46000000 byte \+0x1\) overlaps chunk 1 \(order 3\) bitmaps\[0\] bit 1: block \[0x40008000, 0x40010000\)$/);
    mem = base();
    setBit(mem, BM, 8); // the order-0 page at the order-3 block's start: equal starts, the lower order comes first
    reject(mem, "BLOCK_OVERLAP", { chunkIndex: 1, order: 3, entryIndex: 0, bit: 1 }, /^chunk 1 \(order 3\) bitmaps\[0\] bit 1: block \[0x40008000, 0x40010000\) \(bitmap 0x46000400 byte \+0x0\) overlaps chunk 0 \(order 0\) bitmaps\[0\] bit 8: block \[0x40008000, 0x40009000\)$/);
    mem = base();
    poke64(mem, C0 + ENT(1), RB); // both order-0 entries cover [0x40000000, 0x41000000)
    setBit(mem, BM + 0x200, 5);
    reject(mem, "BLOCK_OVERLAP", { chunkIndex: 0, order: 0, entryIndex: 1, field: "bit", bit: 5 }, /^chunk 0 \(order 0\) bitmaps\[1\] bit 5: block \[0x40005000, 0x40006000\) .* overlaps chunk 0 \(order 0\) bitmaps\[0\] bit 5/);
  });

  it("a chunk or a bitmap page inside preserved memory", () => {
    let mem = base();
    // Point the order-0 bitmap 1 at the metadata window and mark chunk 1's page.
    poke64(mem, C0 + ENT(1), MB);
    mem.write(BM + 0x200, new Uint8Array(512));
    setBit(mem, BM + 0x200, (C1 - MB) / P);
    reject(mem, "CHUNK_IN_PRESERVED", { chunkIndex: 1, chunkPhys: C1 }, /^chunk 1 at 0x46002000: page lies inside preserved run \[0x46002000, 0x46003000\) of order 0$/);
    mem = base();
    poke64(mem, C0 + ENT(1), MB);
    mem.write(BM + 0x200, new Uint8Array(512));
    setBit(mem, BM + 0x200, 0);
    reject(mem, "BITMAP_IN_PRESERVED", { chunkIndex: 0, entryIndex: 0, field: "bitmap", offset: 0x18 }, /bitmaps\[0\]\.bitmap at \+0x18 is 0x46000000: its page 0x46000000 lies inside preserved run/);
  });

  it("every rejection is a KhoMetadataError the successor can catch", async () => {
    const { KhoMetadataError } = await import("../src/kho/formats/types.js");
    const mem = base();
    poke32(mem, C0 + 12, 256);
    expect(() => bitmapsFormat.walk(mem, BigInt(C0), ctx)).toThrow(KhoMetadataError);
  });
});

describe("scale (untimed)", () => {
  it("48 GiB of contiguous order-0 folios: 12.6M preserves, serialize, walk", () => {
    const N = (48 * GiB) / P;
    expect(N).toBe(12_582_912);
    const base = 0x1_0000_0000;
    const ram = 64 * GiB;
    const ctx: KhoWalkContext = { ramBase: base, ramSize: ram, scratch: [{ addr: base + 50 * GiB, size: GiB }] };
    for (const { f, bits, bmBytes } of FORMATS) {
      const t = tracker(f);
      const t0 = performance.now();
      for (let i = 0; i < N; i++) t.khoPreserveFolio(base + i * P, 0);
      const t1 = performance.now();
      const mem = new SparseMem(base, ram);
      const ser = f.serialize(t, mem, bumpPages(base + 60 * GiB), noContig);
      const t2 = performance.now();
      const w = f.walk(mem, BigInt(ser.root), ctx);
      const t3 = performance.now();
      let n = 0;
      w.forEachBlock(() => n++);
      const t4 = performance.now();
      const nBitmaps = N / bits;
      const nChunks = Math.ceil(nBitmaps / 255);
      expect(t.bitmapCount).toBe(nBitmaps); // 3072 or 384
      expect(ser.metadataBytes).toBe(nChunks * P + nBitmaps * bmBytes); // 1.5 MiB of bitmaps + chunks
      expect([w.blockCount, n]).toEqual([N, N]);
      expect(w.ranges).toEqual([{ start: base, size: 48 * GiB, data: khoDataFolio(0) }]);
      console.info(
        `${f.name}: ${N} preserves ${(t1 - t0).toFixed(0)} ms, serialize ${(t2 - t1).toFixed(0)} ms, walk ${(t3 - t2).toFixed(0)} ms, ` +
          `forEachBlock ${(t4 - t3).toFixed(0)} ms; ${nBitmaps} bitmaps, ${nChunks} chunks, ${ser.metadataBytes} bytes`,
      );
    }
  });
});

describe("kho_preserve_folio's next-folio fast path (KhoBitmapTrack)", () => {
  it("ascending folios with jumps, repeats, unpreserves and bitmap ends match a page model", () => {
    const P = PAGE_SIZE;
    let seed = 7;
    const rnd = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    // 64-bit bitmaps: the run crosses a bitmap end every 64 folios.
    const t = new KhoBitmapTrack(64);
    const pages = new Set<number>();
    let p = 2 ** 40;
    for (let step = 0; step < 5000; step++) {
      const a = rnd(100);
      if (a < 85) {
        t.khoPreserveFolio(p, 0);
        pages.add(p);
        p += P;
      } else if (a < 90) {
        p += P * (1 + rnd(200));
      } else if (a < 94) {
        p -= P * Math.min(rnd(4), (p - 2 ** 40) / P); // the same folio again
      } else {
        const q = 2 ** 40 + P * rnd((p - 2 ** 40) / P + 1);
        t.khoUnpreserveFolio(q, 0);
        pages.delete(q);
      }
      if (step % 250 === 0 || step === 4999) {
        expect(t.blockCount).toBe(pages.size);
        expect(t.totalBytes).toBe(pages.size * P);
        const want: KhoMemRange[] = [];
        for (const q of [...pages].sort((x, y) => x - y)) {
          const last = want[want.length - 1];
          if (last && last.start + last.size === q) last.size += P;
          else want.push({ start: q, size: P, data: khoDataFolio(0) });
        }
        expect(t.ranges()).toEqual(want);
      }
    }
  });

  it("a second live order turns the fast path off: the next folio inside a preserved block of another order is EEXIST", () => {
    const P = PAGE_SIZE;
    const t = new KhoBitmapTrack();
    t.khoPreserveFolio(0, 0);
    t.khoPreserveFolio(P, 0);
    t.khoPreserveFolio(4 * P, 2); // [4P, 8P): order 2
    t.khoPreserveFolio(2 * P, 0);
    t.khoPreserveFolio(3 * P, 0);
    expect(() => t.khoPreserveFolio(4 * P, 0)).toThrow(KhoTrackError);
    expect(t.blockCount).toBe(5);
    // And after a phys range of another order at the next address.
    const u = new KhoBitmapTrack();
    u.khoPreserveFolio(0, 0);
    u.khoPreservePhys(4 * P, 4 * P);
    expect(() => u.khoPreserveFolio(4 * P, 0)).toThrow(KhoTrackError);
    // Not aligned or not safe: refused as on the slow path.
    const v = new KhoBitmapTrack();
    v.khoPreserveFolio(2 ** 53 - 2 * P, 0);
    expect(() => v.khoPreserveFolio(2 ** 53 - P, 0)).toThrow(KhoTrackError);
  });
});
