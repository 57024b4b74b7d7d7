// Over 500 lines: the kho-v2 radix format end to end (keys, byte layout, tracker, round trip, walker rejections), one describe each.
import { fc, test } from "./fc-prop.js";
import { expectBe, expectEqual } from "./fast-expect.js";
import { describe, expect, it } from "vitest";
import { PAGE_SIZE } from "../src/abi/page.js";
import { khoDataFolio, khoDataOrder } from "../src/abi/ranges.js";
import { FdtRo, propStringList } from "../src/fdt/index.js";
import { KHO_FORMATS, rangesFormat } from "../src/kho/formats/index.js";
import {
  KHO_BITMAP_SIZE_LOG2,
  KHO_ORDER_0_LOG2,
  KHO_TABLE_SIZE_LOG2,
  KHO_TREE_MAX_DEPTH,
  khoRadixBitmapIndex,
  khoRadixDecodeKey,
  khoRadixEncodeKey,
  khoRadixTableIndex,
} from "../src/abi/radix.js";
import { KhoRadixTrack, khoRadixWalk, radixFormat } from "../src/kho/formats/radix/format.js";
import type { KhoWalkError, KhoWalkErrorCode } from "../src/kho/walk.js";
import { khoRetrieveSubtree, parseKhoFdt, u64le } from "../src/kho/fdt.js";
import { SparseMem, type PhysMem } from "../src/mm/physmem.js";
import { KhoSerializeError } from "../src/kho/serialize.js";
import { KhoTrackError, khoFolioSize, khoPhysBlocks, type KhoMemRange } from "../src/kho/track.js";
import { CTX, RAM_BASE, RAM_END, RAM_SIZE, SCRATCH, bumpPages, catchWalkError, poke64, u64At } from "./format-common.js";

const P = PAGE_SIZE;
const GiB = 2 ** 30;
/* Nodes are handed out from here, in order: inside the 128 MiB the leaf of P0 covers. */
const NODE_AREA = 0x4100_0000;
const N = (i: number): number => NODE_AREA + i * P;
const P0 = 0x4000_0000;

const noContig = (): number => {
  throw new Error("radix allocates single pages");
};

function serialize(t: KhoRadixTrack, ramBase = RAM_BASE, ramSize = RAM_SIZE, nodes = NODE_AREA) {
  const mem = new SparseMem(ramBase, ramSize);
  return { mem, ser: radixFormat.serialize(t, mem, bumpPages(nodes), noContig) };
}

/* Every byte of the page at @phys except those listed is zero. */
function expectOnly(mem: PhysMem, phys: number, bytes: Record<number, number>): void {
  const page = mem.read(phys, P);
  const got: Record<number, number> = {};
  page.forEach((b, i) => {
    if (b !== 0) got[i] = b;
  });
  expect(got).toEqual(bytes);
}

describe("radix: kho-v2 constants and key encoding", () => {
  it("6 levels: 5 tables of 512 entries and a 32,768-bit leaf; order-0 bit at 52", () => {
    expect(KHO_ORDER_0_LOG2).toBe(52);
    expect(KHO_TABLE_SIZE_LOG2).toBe(9);
    expect(KHO_BITMAP_SIZE_LOG2).toBe(15);
    expect(KHO_TREE_MAX_DEPTH).toBe(6);
  });

  it("encode/decode as kho_radix_encode_key/decode_key", () => {
    expect(khoRadixEncodeKey(0x4000_0000, 0)).toBe(2 ** 52 + 0x40000);
    expect(khoRadixEncodeKey(0x4000_0000, 18)).toBe(2 ** 34 + 1);
    expect(khoRadixEncodeKey(0x4000_2000, 1)).toBe(2 ** 51 + 0x20001);
    expect(khoRadixDecodeKey(2 ** 34 + 1)).toEqual({ phys: 0x4000_0000, order: 18 });
    expect(khoRadixDecodeKey(2 ** 52 + 0x40000)).toEqual({ phys: 0x4000_0000, order: 0 });
    expect(khoRadixDecodeKey(0)).toBeUndefined();
    expect(khoRadixDecodeKey(2 ** 53)).toBeUndefined();
    const k = 2 ** 52 + 0x40000;
    expect([5, 4, 3, 2, 1].map((l) => khoRadixTableIndex(k, l))).toEqual([2, 0, 0, 0, 8]);
    expect(khoRadixBitmapIndex(k)).toBe(0);
  });

  test.prop([fc.nat(2 ** 30), fc.nat(20)])("decode(encode(phys, order)) round-trips", (n, order) => {
    const phys = Math.floor(n / 2 ** order) * 2 ** order * P;
    expect(khoRadixDecodeKey(khoRadixEncodeKey(phys, order))).toEqual({ phys, order });
  });

  it("ranges split as mainline: order = min(ctz(pfn), ilog2(end_pfn - pfn))", () => {
    const got: [number, number][] = [];
    for (const b of khoPhysBlocks(1, 9)) got.push([b.pfn * P, b.order]);
    expect(got).toEqual([
      [0x1000, 0],
      [0x2000, 1],
      [0x4000, 2],
      [0x8000, 0],
    ]);
  });
});

describe("radix: tracker", () => {
  const runs = (t: KhoRadixTrack): [number, number, number][] => [...t.ranges()].map((r) => [r.start - P0, r.size, khoDataOrder(r.data)]);

  it("kho_preserve_phys becomes aligned blocks; the same folio again is harmless; another order overlapping is EEXIST", () => {
    const t = new KhoRadixTrack();
    t.khoPreservePhys(P0 + 0x1000, 0x8000);
    expect(runs(t)).toEqual([
      [0x1000, 0x1000, 0],
      [0x2000, 0x2000, 1],
      [0x4000, 0x4000, 2],
      [0x8000, 0x1000, 0],
    ]);
    t.khoPreserveFolio(P0 + 0x2000, 1);
    expect(() => t.khoPreserveFolio(P0 + 0x2000, 0)).toThrow(KhoTrackError);
    expect(() => t.khoPreserveFolio(P0, 3)).toThrow(/overlaps/);
    expect(t.totalBytes).toBe(0x8000);
    expect(() => t.khoPreservePhys(P0 + 0x800, P)).toThrow(KhoTrackError);
  });

  it("kho_preserve_phys over preserved memory fills the gaps only", () => {
    const t = new KhoRadixTrack();
    t.khoPreservePhys(P0 + 0x1000, 0x8000);
    t.khoPreservePhys(P0, 0x10000);
    expect(runs(t)).toEqual([
      [0x0, 0x2000, 0],
      [0x2000, 0x2000, 1],
      [0x4000, 0x4000, 2],
      [0x8000, 0x2000, 0],
      [0xa000, 0x2000, 1],
      [0xc000, 0x4000, 2],
    ]);
    expect(t.totalBytes).toBe(0x10000);
  });

  it("unpreserve inside a block splits it; unpreserving what is not preserved is harmless", () => {
    const t = new KhoRadixTrack();
    t.khoPreservePhys(P0, 0x8000); // one order-3 block
    t.khoUnpreserve(P0 + 0x5000, P);
    expect(runs(t)).toEqual([
      [0x0, 0x4000, 2],
      [0x4000, 0x1000, 0],
      [0x6000, 0x2000, 1],
    ]);
    expect(t.totalBytes).toBe(0x7000);
    t.khoUnpreservePhys(P0 + 0x100000, 0x4000);
    t.khoUnpreserveFolio(P0 + 0x6000, 1);
    expect(t.totalBytes).toBe(0x5000);
    expect(() => t.khoUnpreserveFolio(P0 + 0x1000, 1)).toThrow(KhoTrackError);
  });

  const op = fc.oneof(
    fc.record({ k: fc.constant("folio" as const), page: fc.nat(1023), order: fc.nat(4) }),
    fc.record({ k: fc.constant("phys" as const), page: fc.nat(1023), pages: fc.integer({ min: 1, max: 40 }) }),
    fc.record({ k: fc.constant("unpreserve" as const), page: fc.nat(1023), pages: fc.integer({ min: 1, max: 20 }) }),
  );
  test.prop([fc.array(op, { maxLength: 50 })], { numRuns: 100 })("covers exactly the pages a page-level model says; runs are aligned blocks", (ops) => {
    const t = new KhoRadixTrack();
    const model = new Uint8Array(1100);
    for (const o of ops) {
      const before = t.totalBytes;
      if (o.k === "folio") {
        const page = Math.floor(o.page / 2 ** o.order) * 2 ** o.order;
        try {
          t.khoPreserveFolio(P0 + page * P, o.order);
          model.fill(1, page, page + 2 ** o.order);
        } catch (e) {
          if (!(e instanceof KhoTrackError)) expect(e).toBeInstanceOf(KhoTrackError);
          expectBe((e as KhoTrackError).code, "EEXIST");
          expectBe(t.totalBytes, before);
        }
      } else if (o.k === "phys") {
        t.khoPreservePhys(P0 + o.page * P, o.pages * P);
        model.fill(1, o.page, o.page + o.pages);
      } else {
        t.khoUnpreserve(P0 + o.page * P, o.pages * P);
        model.fill(0, o.page, o.page + o.pages);
      }
    }
    const got = new Uint8Array(model.length);
    let prevEnd = -1;
    for (const r of t.ranges()) {
      const fsz = khoFolioSize(khoDataOrder(r.data));
      expectBe(r.start % fsz, 0);
      expectBe(r.size % fsz, 0);
      if (!(r.start >= prevEnd)) expect(r.start).toBeGreaterThanOrEqual(prevEnd);
      prevEnd = r.start + r.size;
      got.fill(1, (r.start - P0) / P, (r.start + r.size - P0) / P);
    }
    expect(got).toEqual(model);
    expect(t.totalBytes).toBe(model.reduce((n, b) => n + b, 0) * P);
  });
});

describe("radix: exact metadata sizes", () => {
  it("nothing preserved: the root table alone (1 page, all zero)", () => {
    const { mem, ser } = serialize(new KhoRadixTrack());
    expect(ser).toEqual({ root: N(0), metadataPages: [N(0)], metadataBytes: 4096 });
    expectOnly(mem, N(0), {});
    expect(radixFormat.walk(mem, BigInt(ser.root), CTX)).toMatchObject({ metadataPages: [N(0)], ranges: [], blockCount: 0 });
  });

  it("one isolated order-0 page: a 4 KiB leaf + 5 tables = 6 pages = 24,576 bytes", () => {
    const t = new KhoRadixTrack();
    t.khoPreserveFolio(P0, 0);
    const { ser } = serialize(t);
    expect(ser.metadataPages).toEqual([N(0), N(1), N(2), N(3), N(4), N(5)]);
    expect(ser.metadataBytes).toBe(24_576);
  });

  it("171 isolated ranges: 6 pages when they share a leaf, 176 when each has its own leaf under one level-1 table", () => {
    const near = new KhoRadixTrack();
    for (let i = 0; i < 171; i++) near.khoPreservePhys(P0 + 2 * i * P, P);
    expect(serialize(near).ser.metadataBytes).toBe(6 * 4096);
    // 128 MiB apart: one leaf each (32,768 pages per leaf); prefixes 2^37+8 .. 2^37+178 share a level-1 table.
    const far = new KhoRadixTrack();
    for (let i = 0; i < 171; i++) far.khoPreservePhys(P0 + i * 128 * 2 ** 20, P);
    const { mem, ser } = serialize(far, RAM_BASE, 32 * GiB);
    expect(ser.metadataPages.length).toBe(176);
    expect(ser.metadataBytes).toBe(720_896);
    const w = radixFormat.walk(mem, BigInt(ser.root), { ramBase: RAM_BASE, ramSize: 32 * GiB, scratch: [] });
    expect(w.blockCount).toBe(171);
    expect(w.ranges).toEqual([...far.ranges()]);
  });

  it("orders 0 and 1 take separate paths from the root (11 pages); a phys range of 3 orders 16 pages", () => {
    const t = new KhoRadixTrack();
    t.khoPreserveFolio(P0, 0);
    t.khoPreserveFolio(P0 + 0x2000, 1);
    expect(serialize(t).ser.metadataPages.length).toBe(11);
    const r = new KhoRadixTrack();
    r.khoPreservePhys(P0 + 0x1000, 0x8000);
    const { mem, ser } = serialize(r);
    expect(ser.metadataBytes).toBe(16 * 4096);
    expect(radixFormat.walk(mem, BigInt(ser.root), CTX).blockCount).toBe(4);
  });
});

describe("radix: byte layout", () => {
  it("order-0 page at 0x40000000: root[2] -> L4[0] -> L3[0] -> L2[0] -> L1[8] -> leaf bit 0", () => {
    const t = new KhoRadixTrack();
    t.khoPreserveFolio(P0, 0);
    const { mem } = serialize(t);
    expect(u64At(mem, N(0) + 16)).toBe(BigInt(N(1)));
    expectOnly(mem, N(0), { 17: 0x10, 19: 0x41 }); // entry 2 at +16: 0x41001000 little-endian
    expect(u64At(mem, N(1))).toBe(BigInt(N(2)));
    expect(u64At(mem, N(2))).toBe(BigInt(N(3)));
    expect(u64At(mem, N(3))).toBe(BigInt(N(4)));
    expect(u64At(mem, N(4) + 64)).toBe(BigInt(N(5)));
    expectOnly(mem, N(4), { 65: 0x50, 67: 0x41 }); // entry 8 at +64: 0x41005000
    expectOnly(mem, N(5), { 0: 0x01 });
  });

  it("1 GiB at 0x80000000 (order 18, key 2^34 + 2): root[0] -> L4[0] -> L3[2] -> L2[0] -> L1[0] -> leaf bit 2", () => {
    const t = new KhoRadixTrack();
    t.khoPreservePhys(2 * GiB, GiB);
    expect(khoRadixEncodeKey(2 * GiB, 18)).toBe(2 ** 34 + 2);
    const { mem } = serialize(t);
    expect(u64At(mem, N(0) + 0)).toBe(BigInt(N(1)));
    expect(u64At(mem, N(1) + 0)).toBe(BigInt(N(2)));
    expect(u64At(mem, N(2) + 16)).toBe(BigInt(N(3)));
    expectOnly(mem, N(2), { 17: 0x30, 19: 0x41 });
    expect(u64At(mem, N(3) + 0)).toBe(BigInt(N(4)));
    expect(u64At(mem, N(4) + 0)).toBe(BigInt(N(5)));
    expectOnly(mem, N(5), { 0: 0x04 });
  });

  it("dense bits: 10 order-0 pages from bit 3 set bytes 0 and 1 of the leaf", () => {
    const t = new KhoRadixTrack();
    for (let i = 3; i < 13; i++) t.khoPreserveFolio(P0 + i * P, 0);
    const { mem } = serialize(t);
    expectOnly(mem, N(5), { 0: 0xf8, 1: 0x1f });
  });

  it("KHO FDT: kho-v2, root preserved-memory-map, sub-nodes with preserved-data (no kho-v1 fdt)", () => {
    const blob = radixFormat.buildFdt(N(0), [{ name: "kho_test", fdtPhys: 0x4200_0000 }]);
    const fdt = new FdtRo(blob);
    expect(propStringList(fdt.getProp(0, "compatible")!)).toEqual(["kho-v2"]);
    expect(u64le(fdt.getProp(0, "preserved-memory-map")!)).toBe(BigInt(N(0)));
    const sub = fdt.pathOffset("/kho_test");
    expect(u64le(fdt.getProp(sub, "preserved-data")!)).toBe(0x4200_0000n);
    expect(fdt.getProp(sub, "fdt")).toBeUndefined();
    expect(() => fdt.pathOffset("/preserved-memory")).toThrow();
    expect(radixFormat.matches(fdt)).toBe(true);
    expect(radixFormat.matches(new FdtRo(rangesFormat.buildFdt(N(0), [])))).toBe(false);
    const k = parseKhoFdt(blob, KHO_FORMATS);
    expect(k.format.name).toBe("radix");
    expect(k.metadata).toBe(BigInt(N(0)));
    expect(khoRetrieveSubtree(k, "kho_test")).toBe(0x4200_0000n);
  });

  it("serialize refuses an unaligned, repeated or preserved node page", () => {
    const t = new KhoRadixTrack();
    t.khoPreserveFolio(P0, 0);
    const m = new SparseMem(RAM_BASE, RAM_SIZE);
    expect(() => radixFormat.serialize(t, m, () => N(0) + 8, noContig)).toThrow(KhoSerializeError);
    expect(() => radixFormat.serialize(t, m, () => N(0), noContig)).toThrow(/unusable/);
    expect(() => radixFormat.serialize(t, m, () => P0, noContig)).toThrow(/preserved page/);
  });
});

describe("radix: round trip", () => {
  const op = fc.oneof(
    fc.record({ k: fc.constant("folio" as const), page: fc.nat(4095), order: fc.nat(6) }),
    fc.record({ k: fc.constant("phys" as const), page: fc.nat(4095), pages: fc.integer({ min: 1, max: 100 }) }),
    fc.record({ k: fc.constant("unpreserve" as const), page: fc.nat(4095), pages: fc.integer({ min: 1, max: 30 }) }),
    // Far away: other leaves and level-1 tables.
    fc.record({ k: fc.constant("far" as const), page: fc.nat(2 ** 19 - 1), order: fc.nat(12) }),
  );
  const base = 0x5000_0000;
  test.prop([fc.array(op, { maxLength: 60 })], { numRuns: 80 })("random preservations: serialize, walk, same ranges and block count", (ops) => {
    const t = new KhoRadixTrack();
    for (const o of ops) {
      try {
        if (o.k === "folio") t.khoPreserveFolio(base + Math.floor(o.page / 2 ** o.order) * 2 ** o.order * P, o.order);
        else if (o.k === "far") t.khoPreserveFolio(base + Math.floor(o.page / 2 ** o.order) * 2 ** o.order * P, o.order);
        else if (o.k === "phys") t.khoPreservePhys(base + o.page * P, o.pages * P);
        else t.khoUnpreserve(base + o.page * P, o.pages * P);
      } catch (e) {
        if (!(e instanceof KhoTrackError)) throw e;
      }
    }
    const { mem, ser } = serialize(t);
    const want = [...t.ranges()];
    const w = radixFormat.walk(mem, BigInt(ser.root), CTX);
    expectEqual(w.ranges, want);
    expectEqual(w.metadataPages, ser.metadataPages);
    expect(w.blockCount).toBe(want.reduce((n, r) => n + r.size / khoFolioSize(khoDataOrder(r.data)), 0));
    let blocks = 0;
    let bytes = 0;
    w.forEachBlock((start, size, data) => {
      blocks++;
      bytes += size;
      expectBe(size, khoFolioSize(khoDataOrder(data)));
      expectBe(start % size, 0);
    });
    expect(blocks).toBe(w.blockCount);
    expect(bytes).toBe(t.totalBytes);
  });
});

/* ---------------------------------------------------------------- rejections */

interface Want {
  code: KhoWalkErrorCode;
  level?: number;
  nodeIndex?: number;
  nodePhys?: number;
  entry?: number;
  field?: string;
  offset?: number;
}

/* The one-page tree: nodes N(0) root .. N(4) level 1, N(5) leaf with bit 0 = P0. */
function base(): SparseMem {
  const t = new KhoRadixTrack();
  t.khoPreserveFolio(P0, 0);
  return serialize(t).mem;
}

function setByte(mem: PhysMem, phys: number, v: number): void {
  mem.write(phys, Uint8Array.of(v));
}

function expectReject(mem: PhysMem, want: Want, root: number | bigint = N(0), ctx = CTX): KhoWalkError {
  const e = catchWalkError(() => khoRadixWalk(mem, BigInt(root), ctx));
  // A leaf's bad bit is `bit`, a table's bad entry `entry`: both are the "entry" of these expectations.
  expect(e.object === "node" || e.object === undefined).toBe(true);
  expect({ code: e.code, level: e.level, nodeIndex: e.index, nodePhys: e.phys, entry: e.level === 0 ? e.bit : e.entry, field: e.field, offset: e.offset }).toEqual({
    level: undefined,
    nodeIndex: undefined,
    nodePhys: undefined,
    entry: undefined,
    field: undefined,
    offset: undefined,
    ...want,
  });
  expect(e.message).not.toContain("\n");
  return e;
}

const table = (level: number, i: number, entry: number) => ({ level, nodeIndex: i, nodePhys: N(i), entry, field: "table", offset: entry * 8 });
const bit = (i: number, phys: number, b: number) => ({ level: 0, nodeIndex: i, nodePhys: phys, entry: b, field: "bitmap", offset: b >>> 3 });

describe("radix walk: rejects, naming level, node, entry or bit, and byte offset", () => {
  it("accepts the base tree", () => {
    const w = khoRadixWalk(base(), BigInt(N(0)), CTX);
    expect(w.nodes).toEqual([N(0), N(1), N(2), N(3), N(4), N(5)]);
    expect(w.ranges).toEqual([{ start: P0, size: P, data: khoDataFolio(0) }]);
  });

  it("NODE_UNALIGNED: the root pointer, and a level-1 entry", () => {
    expectReject(base(), { code: "NODE_UNALIGNED", field: "preserved-memory-map" }, N(0) + 8);
    const mem = base();
    poke64(mem, N(4) + 64, N(5) + 0x10);
    expectReject(mem, { code: "NODE_UNALIGNED", ...table(1, 4, 8) });
  });

  it("NODE_OUTSIDE_RAM: a root entry at RAM end, and a root pointer of 2^53", () => {
    const mem = base();
    poke64(mem, N(0) + 16, RAM_END);
    expectReject(mem, { code: "NODE_OUTSIDE_RAM", ...table(5, 0, 2) });
    expectReject(base(), { code: "NODE_OUTSIDE_RAM", field: "preserved-memory-map" }, 1n << 53n);
  });

  it("NODE_IN_SCRATCH", () => {
    const mem = base();
    poke64(mem, N(1), SCRATCH.addr);
    expectReject(mem, { code: "NODE_IN_SCRATCH", ...table(4, 1, 0) });
  });

  it("NODE_CYCLE: a level-2 entry pointing back at the root", () => {
    const mem = base();
    poke64(mem, N(3) + 40, N(0));
    expect(expectReject(mem, { code: "NODE_CYCLE", ...table(2, 3, 5) }).message).toContain("node 0");
  });

  it("NODE_SHARED: two level-1 entries with the same leaf", () => {
    const mem = base();
    poke64(mem, N(4) + 72, N(5));
    expectReject(mem, { code: "NODE_SHARED", ...table(1, 4, 9) });
  });

  it("NODE_IN_PRESERVED: the level-2 table's page is a preserved block (reported at the entry pointing at it)", () => {
    const mem = base();
    setByte(mem, N(5) + 512, 0x08); // bit 4099: page 0x41003000 = N(3)
    const e = expectReject(mem, { code: "NODE_IN_PRESERVED", ...table(3, 2, 0) });
    expect(e.message).toContain("node 3");
  });

  it("KEY_WIDTH: root entry 4 would set key bit 53", () => {
    const mem = base();
    poke64(mem, N(0) + 32, N(9));
    expectReject(mem, { code: "KEY_WIDTH", ...table(5, 0, 4) });
  });

  it("KEY_NO_ORDER: bit 0 of the all-zero path is key 0", () => {
    const mem = base();
    poke64(mem, N(0), N(6));
    for (let i = 6; i < 10; i++) poke64(mem, N(i), N(i + 1));
    setByte(mem, N(10), 0x01);
    expectReject(mem, { code: "KEY_NO_ORDER", ...bit(5, N(10), 0) });
  });

  it("BLOCK_OUTSIDE_RAM: a leaf moved below RAM; and the first block of a run past RAM end", () => {
    const mem = base();
    poke64(mem, N(4) + 64, 0);
    poke64(mem, N(4) + 56, N(5)); // keys of pfn 0x38000.. : 0x38000000 is below RAM
    expectReject(mem, { code: "BLOCK_OUTSIDE_RAM", ...bit(5, N(5), 0) });
    const m2 = base();
    setByte(m2, N(5) + 4095, 0xff); // bits 32760..32767
    const small = { ramBase: RAM_BASE, ramSize: 32764 * P, scratch: [] };
    expectReject(m2, { code: "BLOCK_OUTSIDE_RAM", ...bit(5, N(5), 32764) }, N(0), small);
  });

  it("BLOCK_IN_SCRATCH: the first scratch block of a run", () => {
    const mem = base();
    setByte(mem, N(5) + 2047, 0xf0); // bits 16380..16383
    setByte(mem, N(5) + 2048, 0x7f); // bits 16384..16390
    const ctx = { ramBase: RAM_BASE, ramSize: RAM_SIZE, scratch: [{ addr: 0x4400_0000, size: 0x0100_0000 }] };
    expectReject(mem, { code: "BLOCK_IN_SCRATCH", ...bit(5, N(5), 16384) }, N(0), ctx);
  });

  it("BLOCK_OVERLAP: an order-1 block over an order-0 page", () => {
    const t = new KhoRadixTrack();
    t.khoPreserveFolio(P0, 0);
    t.khoPreserveFolio(P0 + 0x2000, 1);
    const { mem } = serialize(t);
    // Order-1 path first (smaller keys): N(5) is its leaf; bit 1 (0x40002000) becomes bit 0 (0x40000000).
    expectOnly(mem, N(5), { 0: 0x02 });
    setByte(mem, N(5), 0x01);
    const e = expectReject(mem, { code: "BLOCK_OVERLAP", ...bit(5, N(5), 0) });
    expect(e.message).toContain("order-0 block [0x40000000, 0x40001000)");
  });

  it("a root pointer of 0 is nothing preserved", () => {
    expect(khoRadixWalk(base(), 0n, CTX)).toEqual({ nodes: [], leaves: [], ranges: [], blocks: 0 });
  });
});

describe("radix: scale", () => {
  it("48 GiB of contiguous order-0 folios (12,582,912): 389 pages, one range, 12,582,912 blocks", () => {
    const n = 12_582_912;
    const t = new KhoRadixTrack();
    const start = 4 * GiB;
    for (let i = 0; i < n; i++) t.khoPreserveFolio(start + i * P, 0);
    const { mem, ser } = serialize(t, 0, 64 * GiB, 60 * GiB);
    // 384 leaves (32,768 bits each) + one table at each of levels 1..5.
    expect(ser.metadataPages.length).toBe(389);
    expect(ser.metadataBytes).toBe(1_593_344);
    const w = radixFormat.walk(mem, BigInt(ser.root), { ramBase: 0, ramSize: 64 * GiB, scratch: [{ addr: 0, size: GiB }] });
    expect(w.ranges).toEqual([{ start, size: 48 * GiB, data: khoDataFolio(0) }] satisfies KhoMemRange[]);
    expect(w.blockCount).toBe(n);
    let count = 0;
    let next = start;
    w.forEachBlock((s, size) => {
      if (s !== next || size !== P) throw new Error(`block ${count} at ${s}`);
      next += P;
      count++;
    });
    expect(count).toBe(n);
  });
});
