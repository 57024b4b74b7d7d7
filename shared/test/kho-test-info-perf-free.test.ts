/*
 * The kho_test info blob's fast paths give the bytes and tables the plain
 * ones do (no timing here: speed is the bench's). FolioTable.pushRun is
 * push() per entry; encodeKhoTestInfo of an unfilled table writes zero
 * checksums; readKhoTestInfo (pieces through one buffer) gives
 * csum64(whole blob) and decodeKhoTestInfo(whole blob), including the first
 * malformed entry when it lies past the first piece. KhoTestInfoEncoder's
 * pieces are slices of the blob written field by field; SparseMem's
 * generated pages read, list and write to an image as written pages do.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { beforeAll, describe, expect, test } from "vitest";
import { FolioTable, KhoTestError, KhoTestInfoEncoder, KHO_TEST_FOLIO_ENTRY_SIZE, decodeKhoTestInfo, encodeKhoTestInfo, type KhoTestRange } from "../src/abi/kho-test.js";
import { csum64, csum64Stream, initCsum } from "../src/lib/csum.js";
import { OverlayMem, SparseMem, physReadInto } from "../src/mm/physmem.js";
import { writeImage } from "../src/mm/image.js";
import { KhoMemTrack } from "../src/kho/track.js";
import { readKhoTestInfo } from "../src/kho/in/test-info.js";
import { expectEqual } from "./fast-expect.js";

const BASE = 0x4000_0000;
/** More folio entries than one read piece (65,536) holds, and not a multiple of it. */
const N = 65536 * 2 + 7;

beforeAll(async () => {
  await initCsum();
});

/** A table of N folios at 8 KiB strides above 4 GiB (phys needs both u32 halves), every third filled. */
function table(): FolioTable {
  const t = new FolioTable(N);
  for (let i = 0; i < N; i++) t.push(0x1_0000_0000 + i * 0x2000, i % 3, i % 3 === 0 ? BigInt(i) * 0x1_0000_0001n + 1n : 0n);
  return t;
}

const RANGES: KhoTestRange[] = [
  { start: 0x5000_0000, size: 0x3000, csum: 0x1122334455667788n },
  { start: 0x5001_0000, size: 0x1000, csum: 0n },
];

describe("FolioTable.pushRun", () => {
  test("fills the columns as push() per entry would, after entries already there", () => {
    const a = new FolioTable(10);
    const b = new FolioTable(10);
    a.push(0x1000, 2, 0n);
    b.push(0x1000, 2, 0n);
    a.pushRun(0x8000_0000, 0x2000, 1, 6);
    for (let i = 0; i < 6; i++) b.push(0x8000_0000 + i * 0x2000, 1, 0n);
    expect([a.length, a.live]).toEqual([b.length, b.live]);
    expect(Array.from(a.phys)).toEqual(Array.from(b.phys));
    expect(Array.from(a.order)).toEqual(Array.from(b.order));
    expect(Array.from(a.alive)).toEqual(Array.from(b.alive));
    expect(() => a.pushRun(0, 0x1000, 0, 4)).toThrow(RangeError);
  });
});

describe("encodeKhoTestInfo", () => {
  test("an unfilled table (no checksum column) encodes phys | order and zero checksums", () => {
    const t = new FolioTable(3);
    t.pushRun(0x2_0000_0000, 0x1000, 0, 3);
    t.kill(1);
    const out = encodeKhoTestInfo(t, []);
    const d = new DataView(out.buffer);
    expect(out.length).toBe(2 * KHO_TEST_FOLIO_ENTRY_SIZE);
    expect([d.getBigUint64(0, true), d.getBigUint64(8, true), d.getBigUint64(16, true), d.getBigUint64(24, true)]).toEqual([0x2_0000_0000n, 0n, 0x2_0000_2000n, 0n]);
  });
});

describe("readKhoTestInfo", () => {
  test("pieces give csum64 and decodeKhoTestInfo of the whole blob", () => {
    const blob = encodeKhoTestInfo(table(), RANGES);
    const mem = new SparseMem(BASE, 0x1000_0000);
    mem.write(BASE + 0x1000, blob);
    const got = readKhoTestInfo(mem, BASE + 0x1000, N, RANGES.length);
    const want = decodeKhoTestInfo(blob, N, RANGES.length);
    expect(got.csum).toBe(csum64(blob));
    expect(got.error).toBeUndefined();
    expectEqual(Array.from(got.table!.folios.phys), Array.from(want.folios.phys));
    expectEqual(Array.from(got.table!.folios.order), Array.from(want.folios.order));
    expectEqual(Array.from(got.table!.folios.csum), Array.from(want.folios.csum));
    expect([got.table!.folios.length, got.table!.folios.live]).toEqual([N, N]);
    expect(got.table!.ranges).toEqual(want.ranges);
  });

  test("a malformed entry past the first piece is reported by index, and the checksum still covers the whole blob", () => {
    const blob = encodeKhoTestInfo(table(), RANGES);
    const bad = 65536 + 5;
    new DataView(blob.buffer).setUint32(bad * KHO_TEST_FOLIO_ENTRY_SIZE + 4, 2 ** 21, true); // phys at 2^53
    const mem = new SparseMem(BASE, 0x1000_0000);
    mem.write(BASE, blob);
    const got = readKhoTestInfo(mem, BASE, N, RANGES.length);
    expect(got.csum).toBe(csum64(blob));
    expect(got.table).toBeUndefined();
    expect(got.error).toBeInstanceOf(KhoTestError);
    expect(got.error!.message).toBe(`kho_test folios[${bad}]: phys 0x2000002000a000 is beyond 2^53`);
    expect(() => decodeKhoTestInfo(blob, N, RANGES.length)).toThrow(got.error!.message);
  });

  test("csum64Stream over pieces is csum64 of their concatenation", () => {
    const a = Uint8Array.from({ length: 100 }, (_, i) => i);
    const b = Uint8Array.from({ length: 37 }, (_, i) => 255 - i);
    const s = csum64Stream();
    s.update(a);
    s.update(b);
    expect(s.digest()).toBe(csum64(a, b));
  });
});

/** The blob of @t and @ranges written field by field with a DataView (the oracle for the encoder). */
function blobByFields(t: FolioTable, ranges: readonly KhoTestRange[]): Uint8Array {
  const out = new Uint8Array(t.live * 16 + ranges.length * 24);
  const d = new DataView(out.buffer);
  let off = 0;
  for (let i = 0; i < t.length; i++) {
    if (!t.alive[i]) continue;
    d.setBigUint64(off, BigInt(t.phys[i]!) | BigInt(t.order[i]!), true);
    d.setBigUint64(off + 8, t.csumOf(i), true);
    off += 16;
  }
  for (const r of ranges) {
    d.setBigUint64(off, BigInt(r.start), true);
    d.setBigUint64(off + 8, BigInt(r.size), true);
    d.setBigUint64(off + 16, r.csum, true);
    off += 24;
  }
  return out;
}

describe("KhoTestInfoEncoder", () => {
  test("any piece, in any order, is that slice of the blob (killed entries skipped, zeros past the end)", () => {
    const t = new FolioTable(300);
    for (let i = 0; i < 300; i++) t.push(0x3_0000_0000 + i * 0x1000, i % 4, i % 5 === 0 ? 0n : BigInt(i) << 40n | 0xabcn);
    for (const k of [0, 7, 8, 150, 299]) t.kill(k);
    const want = blobByFields(t, RANGES);
    const enc = new KhoTestInfoEncoder(t, RANGES);
    expect(enc.size).toBe(want.length);
    expect(encodeKhoTestInfo(t, RANGES)).toEqual(want);
    // Ascending page-sized pieces, then pieces that go back, cut entries, cross into the range table and run past the end.
    const spans: [number, number][] = [[0, 4096], [4096, 600], [4000, 200], [16, 32], [3, 29], [want.length - 60, 100], [1600, 4000], [0, want.length]];
    for (const [off, len] of spans) {
      const out = new Uint8Array(len).fill(0xee);
      enc.encodeInto(off, out);
      const exp = new Uint8Array(len);
      exp.set(want.subarray(off, Math.min(want.length, off + len)));
      expect(out, `[${off}, +${len})`).toEqual(exp);
    }
  });
});

describe("KhoTestInfoEncoder, dense and unfilled (the 48 GiB case)", () => {
  test("pieces into a dirty buffer are slices of the blob, checksum words zero", () => {
    const t = new FolioTable(1000);
    t.pushRun(0x7_fff0_0000, 0x1000, 0, 1000); // crosses a 4 GiB boundary of phys
    const want = blobByFields(t, []);
    const enc = new KhoTestInfoEncoder(t, []);
    for (let off = 0; off < want.length; off += 4096) {
      const out = new Uint8Array(4096).fill(0xee);
      enc.encodeInto(off, out);
      const exp = new Uint8Array(4096);
      exp.set(want.subarray(off, off + 4096));
      expect(out, `page at ${off}`).toEqual(exp);
    }
  });
});

describe("SparseMem.writeGenerated", () => {
  test("generated pages read, list, write over and go into the image as write() of the same bytes", () => {
    const base = 0x1_0000_0000;
    const bytes = Uint8Array.from({ length: 5 * 4096 + 100 }, (_, i) => (i * 7 + 3) & 255);
    const a = new SparseMem(base, 64 * 4096);
    const b = new SparseMem(base, 64 * 4096);
    for (const m of [a, b]) m.write(base + 2 * 4096, new Uint8Array(4096).fill(9)); // a held page the blob then covers
    for (const m of [a, b]) m.write(base + 7 * 4096, new Uint8Array(10).fill(1)); // the blob's partial last page, held before
    a.writeGenerated(base + 2 * 4096, bytes.length, (off, out) => {
      out.set(bytes.subarray(off, off + out.length));
      out.fill(0, Math.max(0, bytes.length - off));
    });
    b.write(base + 2 * 4096, bytes);
    expect(a.touchedPages).toBe(b.touchedPages);
    expect(a.touchedRuns()).toEqual(b.touchedRuns());
    expect(a.read(base + 4096, 8 * 4096)).toEqual(b.read(base + 4096, 8 * 4096));
    expect(a.page(base / 4096 + 4)).toEqual(b.page(base / 4096 + 4));
    // A write into the middle of the generated pages holds that page; its neighbours stay generated and correct.
    for (const m of [a, b]) m.write(base + 4 * 4096 + 10, Uint8Array.of(1, 2, 3));
    expect(a.read(base, 16 * 4096)).toEqual(b.read(base, 16 * 4096));
    expect(a.touchedRuns()).toEqual(b.touchedRuns());
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "khosim-gen-"));
    try {
      expect(writeImage(path.join(dir, "a.img"), a)).toBe(writeImage(path.join(dir, "b.img"), b));
      expect(fs.readFileSync(path.join(dir, "a.img"))).toEqual(fs.readFileSync(path.join(dir, "b.img")));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("physReadInto", () => {
  test("through an OverlayMem, gives read(): the lower memory's bytes with the overlay's pages over them", () => {
    const base = 0x4000_0000;
    const lower = new SparseMem(base, 16 * 4096);
    lower.write(base + 4096, new Uint8Array(3 * 4096).fill(5));
    const top = new OverlayMem(lower);
    top.write(base + 2 * 4096 + 100, Uint8Array.of(7, 8, 9));
    const out = new Uint8Array(3 * 4096 - 50).fill(0xee);
    physReadInto(top, base + 4096 + 50, out);
    expect(out).toEqual(top.read(base + 4096 + 50, out.length));
    expect([out[4096 + 50 - 1], out[4096 + 50], out[4096 + 52], out[4096 + 53]]).toEqual([5, 7, 9, 5]);
  });
});

describe("KhoMemTrack.forEachRange", () => {
  test("visits what ranges() lists, in its order, and returns the count (tree and ascending tail both in use)", () => {
    const t = new KhoMemTrack();
    for (let i = 0; i < 50; i++) t.khoPreserveFolio(0x1_0000_0000 + i * 0x2000, 0); // ascending, isolated: the tail
    t.khoPreserveFolio(0x4000_0000, 1); // below the tail: the tree
    t.khoPreservePhys(0x5000_0000, 0x3000);
    t.khoPreserveFolio(0x1_0000_0000 + 0x1000, 0); // fills the gap between two tail ranges
    const seen: [number, number, number][] = [];
    const n = t.forEachRange((start, size, data) => seen.push([start, size, data]));
    expect(seen).toEqual([...t.ranges()].map((r) => [r.start, r.size, r.data]));
    expect(n).toBe(seen.length);
    expect(seen.length).toBeGreaterThan(40);
  });
});
