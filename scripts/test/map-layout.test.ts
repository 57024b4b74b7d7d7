/*
 * The memory map's pure parts: classification, aggregation to a granule with
 * a cap on embedded segments, the difference of two handoffs.
 */
import { describe, expect, test } from "vitest";
import { fc, test as fcTest } from "@khosim/shared/test/fc-prop";
import { KHO_DATA_FOLIO, PAGE_SIZE } from "@khosim/shared/abi";
import { flattenRegions, type Region } from "../src/inspect.js";
import { mapClasses, mapClassIndex, mapClassKey, mapOrderColor } from "../src/map/classes.js";
import { mapAggregate, mapAggregateCapped, mapDataset, mapDiffPieces, mapMarks, mapPiecesFromRegions, mapSegmentsAtLeast, type MapPieces } from "../src/map/layout.js";

const P = PAGE_SIZE;
const BASE = 0x40000000;
const classes = mapClasses();
const C = mapClassIndex(classes);
const cls = (key: string): number => C.get(key)!;

function region(start: number, pages: number, kind: Region["kind"], extra: Partial<Region> = {}): Region {
  return { start, end: start + pages * P, kind, label: kind, ...extra };
}

/** Per-class page totals of segments (pure and aggregated). */
function classPages(seg: number[], mix: number[][]): Map<number, number> {
  const t = new Map<number, number>();
  for (let i = 0; i < seg.length; i += 3) {
    if (seg[i + 1]! >= 0) t.set(seg[i + 1]!, (t.get(seg[i + 1]!) ?? 0) + seg[i]!);
    else {
      const m = mix[seg[i + 2]!]!;
      for (let k = 0; k < m.length; k += 3) t.set(m[k]!, (t.get(m[k]!) ?? 0) + m[k + 1]!);
    }
  }
  return t;
}

function piecePages(p: MapPieces): Map<number, number> {
  const t = new Map<number, number>();
  for (let i = 0; i < p.start.length; i++) t.set(p.cls[i]!, (t.get(p.cls[i]!) ?? 0) + (p.end[i]! - p.start[i]!) / P);
  return t;
}

describe("classes", () => {
  test("preserved ranges are classified by order, phys ranges apart", () => {
    expect(mapClassKey({ kind: "preserved", data: KHO_DATA_FOLIO | 3 })).toBe("order-3");
    expect(mapClassKey({ kind: "preserved", data: 0 })).toBe("phys");
    expect(mapClassKey({ kind: "chunk" })).toBe("chunk");
    expect(classes.filter((c) => c.key.startsWith("order-") && c.legend)).toHaveLength(11);
  });

  test("orders lie on a gradient from dark to light", () => {
    const lum = (hex: string) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)).reduce((a, b, i) => a + b * [0.3, 0.59, 0.11][i]!, 0);
    expect(lum(mapOrderColor(0, 10))).toBeLessThan(lum(mapOrderColor(5, 10)));
    expect(lum(mapOrderColor(5, 10))).toBeLessThan(lum(mapOrderColor(10, 10)));
    expect(mapOrderColor(10, 10)).toBe("#fde725");
    // Higher orders than MAX_PAGE_ORDER get their own classes (not in the legend unless present).
    expect(mapClasses(12).find((c) => c.key === "order-12")).toMatchObject({ legend: false });
  });
});

describe("mapAggregate", () => {
  const regions = [
    region(BASE, 4, "free"),
    region(BASE + 4 * P, 1, "chunk", { index: 0 }),
    region(BASE + 5 * P, 3, "free"),
    region(BASE + 8 * P, 8, "preserved", { data: KHO_DATA_FOLIO | 3, index: 0 }),
    region(BASE + 16 * P, 16, "scratch", { index: 0 }),
  ];
  const pieces = mapPiecesFromRegions(regions, classes);
  const end = BASE + 32 * P;

  test("at page granularity every region is exact", () => {
    const { seg, mix } = mapAggregate(pieces, BASE, end, P);
    expect(mix).toEqual([]);
    expect(seg).toEqual([4, cls("free"), -1, 1, cls("chunk"), 0, 3, cls("free"), -1, 8, cls("order-3"), 0, 16, cls("scratch"), 0]);
  });

  test("a granule that mixes regions becomes an aggregate with pages and region counts per class", () => {
    const { seg, mix } = mapAggregate(pieces, BASE, end, 8 * P);
    // [0, 8 pages): free, chunk, free -> aggregate; then 8 pages of order-3 and 16 of scratch stay pure.
    expect(seg).toEqual([8, -1, 0, 8, cls("order-3"), 0, 16, cls("scratch"), 0]);
    expect(mix).toHaveLength(1);
    const m = mix[0]!;
    const entries = new Map<number, [number, number]>();
    for (let k = 0; k < m.length; k += 3) entries.set(m[k]!, [m[k + 1]!, m[k + 2]!]);
    expect(entries.get(cls("free"))).toEqual([7, 2]);
    expect(entries.get(cls("chunk"))).toEqual([1, 1]);
  });

  test("consecutive aggregates with the same classes merge, a region spanning two granules counts once", () => {
    // Isolated order-0 folios: preserved, free, preserved, free, ... with one 2-page free region crossing a granule boundary.
    const rs: Region[] = [];
    let a = BASE;
    for (let i = 0; i < 8; i++) {
      rs.push(region(a, 1, "preserved", { data: KHO_DATA_FOLIO, index: i }));
      rs.push(region(a + P, i === 3 ? 2 : 1, "free"));
      a += (i === 3 ? 3 : 2) * P;
    }
    rs.push(region(a, 1, "preserved", { data: KHO_DATA_FOLIO, index: 8 }));
    a += P;
    const p = mapPiecesFromRegions(rs, classes);
    const { seg, mix } = mapAggregate(p, BASE, a, 2 * P);
    expect(seg).toEqual([(a - BASE) / P, -1, 0]);
    const m = mix[0]!;
    const entries = new Map<number, [number, number]>();
    for (let k = 0; k < m.length; k += 3) entries.set(m[k]!, [m[k + 1]!, m[k + 2]!]);
    expect(entries.get(cls("order-0"))).toEqual([9, 9]);
    // The 2-page free region lies in two granules and is still one region.
    expect(entries.get(cls("free"))).toEqual([9, 8]);
  });

  fcTest.prop([fc.array(fc.record({ kind: fc.constantFrom<Region["kind"]>("free", "chunk", "preserved", "scratch", "kho-fdt"), pages: fc.integer({ min: 1, max: 40 }) }), { minLength: 1, maxLength: 60 }), fc.integer({ min: 0, max: 6 })])(
    "whatever the granule, segments cover the span and keep every class's pages",
    (spec, k) => {
      let a = BASE;
      const rs = spec.map((s, i) => {
        const r = region(a, s.pages, s.kind, s.kind === "preserved" ? { data: KHO_DATA_FOLIO | (i % 3), index: i } : { index: i });
        a = r.end;
        return r;
      });
      const p = mapPiecesFromRegions(flattenRegions(BASE, a, rs), classes);
      const { seg, mix } = mapAggregate(p, BASE, a, P << k);
      let total = 0;
      for (let i = 0; i < seg.length; i += 3) {
        expect(seg[i]).toBeGreaterThan(0);
        total += seg[i]!;
      }
      expect(total).toBe((a - BASE) / P);
      expect(classPages(seg, mix)).toEqual(piecePages(p));
    },
  );
});

describe("mapAggregateCapped", () => {
  test("the lower bound holds for pieces not merged: two touching pieces of one class and index are two regions", () => {
    const p: MapPieces = { start: [0, 1, 3, 5].map((x) => BASE + x * P), end: [1, 3, 5, 6].map((x) => BASE + x * P), cls: [2, 2, 2, 2], idx: [5, 6, 6, 7] };
    for (const g of [P, 2 * P, 4 * P]) expect(mapSegmentsAtLeast(p, BASE, BASE + 6 * P, g)).toBeLessThanOrEqual(mapAggregate(p, BASE, BASE + 6 * P, g).seg.length / 3);
  });

  fcTest.prop([
    fc.array(fc.record({ kind: fc.constantFrom<Region["kind"]>("free", "chunk", "preserved", "scratch", "kho-fdt"), pages: fc.integer({ min: 1, max: 40 }), gap: fc.integer({ min: 0, max: 5 }) }), { minLength: 1, maxLength: 60 }),
    fc.integer({ min: 1, max: 40 }),
  ])("the lower bound never exceeds the segments, so the capped search picks the granule a plain search picks", (spec, cap) => {
    // Gaps between regions, and RAM ending off a granule edge, as real handoffs have.
    let a = BASE;
    const rs: Region[] = [];
    spec.forEach((s, i) => {
      a += s.gap * P;
      rs.push(region(a, s.pages, s.kind, s.kind === "preserved" ? { data: KHO_DATA_FOLIO | (i % 3), index: i } : { index: i % 4 }));
      a = rs[rs.length - 1]!.end;
    });
    const p = mapPiecesFromRegions(rs, classes);
    let plain: number | undefined;
    for (let g = P; ; g *= 2) {
      const n = mapAggregate(p, BASE, a, g).seg.length / 3;
      expect(mapSegmentsAtLeast(p, BASE, a, g)).toBeLessThanOrEqual(n);
      if (plain === undefined && (n <= cap || g >= a - BASE)) plain = g;
      if (g >= a - BASE) break;
    }
    expect(mapAggregateCapped(p, BASE, a, cap).granule).toBe(plain);
  });


  test("1M isolated order-0 folios on 16 GiB fit a small cap at a fine granule", () => {
    const n = 1 << 20;
    const chunks = 6169;
    // Sized up front: 2M regions pushed one by one cost the test more than the code under test.
    const rs: Region[] = new Array<Region>(2 + 2 * n + chunks + 1);
    let k = 0;
    rs[k++] = region(BASE, 0x3000, "free");
    rs[k++] = region(BASE + 0x3000 * P, 1, "kho-fdt");
    let a = BASE + 0x3001 * P;
    for (let i = 0; i < n; i++) {
      // Literals, not region()'s spread: 2M objects are the test's own cost, not the code's.
      rs[k++] = { start: a, end: a + P, kind: "preserved", label: "preserved", data: KHO_DATA_FOLIO, index: i };
      rs[k++] = { start: a + P, end: a + 2 * P, kind: "free", label: "free" };
      a += 2 * P;
    }
    for (let i = 0; i < chunks; i++) rs[k++] = region(a + i * P, 1, "chunk", { index: i });
    a += chunks * P;
    const end = BASE + 16 * 2 ** 30;
    rs[k++] = region(a, (end - a) / P, "free");
    expect(k).toBe(rs.length);
    const p = mapPiecesFromRegions(rs, classes);
    expect(p.start.length).toBeGreaterThan(2_000_000);
    // Its speed is the bench's business; here, what it gives: the finest granule that fits (two passes).
    const r = mapAggregateCapped(p, BASE, end, 20_000);
    expect(r.seg.length / 3).toBeLessThanOrEqual(20_000);
    expect(r.granule).toBe(2 * P);
    expect(classPages(r.seg, r.mix)).toEqual(piecePages(p));
    expect(JSON.stringify(r).length).toBeLessThan(200_000);
  });

  test("exact when the regions fit", () => {
    const rs = [region(BASE, 10, "free"), region(BASE + 10 * P, 1, "chunk", { index: 0 }), region(BASE + 11 * P, 5, "free")];
    const r = mapAggregateCapped(mapPiecesFromRegions(rs, classes), BASE, BASE + 16 * P, 3);
    expect(r.granule).toBe(P);
    expect(r.seg.length / 3).toBe(3);
  });

  test("the cap is honoured with the coarsest granule when nothing else fits", () => {
    const rs: Region[] = [];
    for (let i = 0; i < 64; i++) rs.push(region(BASE + i * P, 1, i % 2 ? "chunk" : i % 3 ? "scratch" : "kho-fdt", { index: i }));
    const r = mapAggregateCapped(mapPiecesFromRegions(rs, classes), BASE, BASE + 64 * P, 1);
    expect(r.seg.length / 3).toBe(1);
  });
});

describe("mapDiffPieces", () => {
  test("pages are same or differ by classification; pairs name both classes", () => {
    const a = mapPiecesFromRegions([region(BASE, 4, "free"), region(BASE + 4 * P, 4, "preserved", { data: KHO_DATA_FOLIO, index: 0 }), region(BASE + 8 * P, 8, "free")], classes);
    const b = mapPiecesFromRegions([region(BASE, 6, "free"), region(BASE + 6 * P, 4, "preserved", { data: KHO_DATA_FOLIO, index: 7 }), region(BASE + 10 * P, 6, "free")], classes);
    const { pieces, pairs } = mapDiffPieces(a, b, BASE, BASE + 16 * P, classes);
    const rows = pieces.start.map((s, i) => [(s - BASE) / P, (pieces.end[i]! - BASE) / P, classes[pieces.cls[i]!]!.key, pieces.idx[i]]);
    expect(rows).toEqual([
      [0, 4, "same", -1],
      [4, 6, "differs", 0],
      [6, 8, "same", -1],
      [8, 10, "differs", 1],
      [10, 16, "same", -1],
    ]);
    expect(pairs).toEqual([
      [cls("order-0"), cls("free")],
      [cls("free"), cls("order-0")],
    ]);
  });

  test("RAM present in only one handoff differs from outside", () => {
    const a = mapPiecesFromRegions([region(BASE, 8, "free")], classes);
    const b = mapPiecesFromRegions([region(BASE, 16, "free")], classes);
    const { pieces, pairs } = mapDiffPieces(a, b, BASE, BASE + 16 * P, classes);
    expect(pieces.cls.map((c) => classes[c]!.key)).toEqual(["same", "differs"]);
    expect(pairs).toEqual([[cls("outside"), cls("free")]]);
  });
});

describe("mapMarks and mapDataset", () => {
  test("landmarks: KHO structures, scratch areas and the first chunk, in address order", () => {
    const labelled: Region[] = [
      region(BASE + 16 * P, 16, "scratch", { label: "scratch area 0", index: 0 }),
      region(BASE + 2 * P, 1, "kho-fdt", { label: "KHO FDT" }),
      region(BASE + 3 * P, 1, "scratch-array", { label: "kho_scratch array" }),
      region(BASE + 4 * P, 1, "chunk", { label: "chunk 0", index: 0 }),
      region(BASE + 6 * P, 1, "chunk", { label: "chunk 1", index: 1 }),
    ];
    const regions = flattenRegions(BASE, BASE + 32 * P, labelled);
    const marks = mapMarks(regions, [BASE + 4 * P, BASE + 6 * P], classes);
    expect(marks.map((m) => [m.label, (m.start - BASE) / P])).toEqual([
      ["KHO FDT", 2],
      ["kho_scratch array", 3],
      ["chunk 0 (metadata, 2 chunks)", 4],
      ["scratch area 0", 16],
    ]);
    const ds = mapDataset({ title: "t", role: "a", base: BASE, size: 32 * P, pieces: mapPiecesFromRegions(regions, classes), chunks: [BASE + 4 * P, BASE + 6 * P], marks });
    expect(ds.granule).toBe(P);
    expect(ds.regionCount).toBe(regions.length);
    expect(ds.seg.filter((_, i) => i % 3 === 0).reduce((a, b) => a + b, 0)).toBe(32);
  });
});
