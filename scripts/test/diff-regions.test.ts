/*
 * diff's lazy page labels (scripts/src/diff/regions.ts) against inspect.ts's
 * flattenRegions() + regionAt(), which label all of RAM up front: the same
 * kind, label, index, data and region end at every page, for random layouts
 * (overlapping scratch and FDT pages, chunk pages inside preserved ranges,
 * adjacent ranges, the fallback for unsorted or overlapping input).
 */
import { fc, test as fcTest } from "@khosim/shared/test/fc-prop";
import { describe, expect, it } from "vitest";
import { PAGE_SIZE, khoDataFolio } from "@khosim/shared/abi";
import type { KhoMemRange } from "@khosim/shared/kho";
import { flattenRegions, regionAt, type Region, type RegionKind } from "../src/inspect.js";
import { labelledRegions, regionIndex, type RegionHit, type RegionSources } from "../src/diff/regions.js";

const P = PAGE_SIZE;
const BASE = 0x4000_0000;
const PAGES = 96;

/* What a lookup promises: kind, label, index, data, end. */
function hitOf(r: RegionHit | undefined): RegionHit | undefined {
  if (r === undefined) return undefined;
  const h: RegionHit = { kind: r.kind, label: r.label, end: r.end };
  if (r.index !== undefined) h.index = r.index;
  if (r.data !== undefined) h.data = r.data;
  return h;
}

/* Every page (and a few bytes past page starts) answered by both. */
function expectSame(src: RegionSources): void {
  const flat = flattenRegions(src.base, src.end, labelledRegions(src));
  const lazy = regionIndex(src);
  for (let phys = src.base - P; phys <= src.end; phys += P / 2) {
    const want = regionAt(flat, phys);
    expect(hitOf(lazy.labelAt(phys)), `at ${phys.toString(16)}`).toEqual(hitOf(want));
  }
}

const OTHER_KINDS: RegionKind[] = ["kho-fdt", "scratch-array", "subtree-fdt", "subtree-info", "scratch", "scratch"];

/* Ranges ascending and disjoint (as the walk returns them) from page gaps and sizes. */
const rangesArb = fc.array(fc.record({ gap: fc.integer({ min: 0, max: 6 }), pages: fc.integer({ min: 1, max: 8 }), order: fc.integer({ min: -1, max: 3 }) }), { maxLength: 12 }).map((xs) => {
  const out: KhoMemRange[] = [];
  let page = 0;
  for (const x of xs) {
    page += x.gap;
    if (page + x.pages > PAGES) break;
    out.push({ start: BASE + page * P, size: x.pages * P, data: x.order < 0 ? 0 : khoDataFolio(x.order) });
    page += x.pages;
  }
  return out;
});

const othersArb = fc.array(fc.record({ k: fc.integer({ min: 0, max: OTHER_KINDS.length - 1 }), start: fc.integer({ min: -2, max: PAGES + 2 }), pages: fc.integer({ min: 0, max: 20 }) }), { maxLength: 6 }).map((xs) =>
  xs.map((x, i): Region => {
    const kind = OTHER_KINDS[x.k]!;
    const r: Region = { start: BASE + x.start * P, end: BASE + (x.start + x.pages) * P, kind, label: kind === "scratch" ? `scratch area ${i}` : kind };
    if (kind === "scratch") r.index = i;
    return r;
  }),
);

const chunksArb = fc.uniqueArray(fc.integer({ min: 0, max: PAGES - 1 }), { maxLength: 8 }).map((ps) => ps.map((p) => BASE + p * P));

describe("regionIndex", () => {
  fcTest.prop([rangesArb, othersArb, chunksArb])("answers as flattenRegions + regionAt for every page", (ranges, others, chunks) => {
    expectSame({ base: BASE, end: BASE + PAGES * P, others, chunks, chunkName: "chunk", ranges });
  });

  fcTest.prop([fc.array(fc.record({ page: fc.integer({ min: -4, max: PAGES + 4 }), pages: fc.integer({ min: 0, max: 6 }) }), { maxLength: 8 }), fc.array(fc.integer({ min: -2, max: PAGES + 2 }), { maxLength: 6 })])(
    "falls back to the same answers for unsorted, overlapping, empty or out-of-RAM ranges and chunk pages",
    (rs, cs) => {
      const ranges = rs.map((r, i) => ({ start: BASE + r.page * P, size: r.pages * P, data: khoDataFolio(i % 3) }));
      expectSame({ base: BASE, end: BASE + PAGES * P, others: [], chunks: cs.map((c) => BASE + c * P), chunkName: "radix metadata page", ranges });
    },
  );

  it("labels a page of a million ranges without labelling the others", () => {
    const n = 1 << 20;
    const ranges: KhoMemRange[] = [];
    for (let i = 0; i < n; i++) ranges.push({ start: BASE + 2 * i * P, size: P, data: khoDataFolio(0) });
    const lazy = regionIndex({ base: BASE, end: BASE + 2 * n * P, others: [], chunks: [BASE + 1 * P], chunkName: "chunk", ranges });
    expect(lazy.labelAt(BASE + 2 * 777_777 * P)).toEqual({ kind: "preserved", label: "order-0 folios", index: 777_777, data: khoDataFolio(0), end: BASE + (2 * 777_777 + 1) * P });
    expect(lazy.labelAt(BASE + P)).toEqual({ kind: "chunk", label: "chunk 0", index: 0, end: BASE + 2 * P });
    expect(lazy.labelAt(BASE + 3 * P)).toEqual({ kind: "free", label: "free", end: BASE + 4 * P });
    expect(lazy.labelAt(BASE + 2 * n * P)).toBeUndefined();
  });
});
