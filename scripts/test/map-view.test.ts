/*
 * The map's renderer (pure, the same code runs in the page): windows and
 * zoom, per-pixel aggregation, tooltips, the SVG, and the page itself.
 */
import { describe, expect, test } from "vitest";
import { KHO_DATA_FOLIO, PAGE_SIZE } from "@khosim/shared/abi";
import { flattenRegions, type Region } from "../src/inspect.js";
import { mapClassIndex } from "../src/map/classes.js";
import { mapBuild, mapGeometry, mapHtml, type MapSource } from "../src/map/html.js";
import { mapViewSource } from "../src/map/script.js";
import { mapAggregateView, mapDescribe, mapFit, mapOverview, mapPan, mapPrepare, mapRenderSvg, mapRuns, mapSize, mapZoom } from "../src/map/view.js";
import type { MapWindow } from "../src/map/types.js";

const P = PAGE_SIZE;
const BASE = 0x40000000;
const GiB = 2 ** 30;
const geo = mapGeometry(false);

function region(start: number, pages: number, kind: Region["kind"], extra: Partial<Region> = {}): Region {
  return { start, end: start + pages * P, kind, label: kind, ...extra };
}

/** A small handoff-like layout on 1 GiB: a preserved order-9 run, an order-0 folio, two chunks, the KHO FDT, scratch. */
function source(title = "h", ram = GiB): MapSource {
  const labelled: Region[] = [
    region(BASE + 0x2000000, 512, "preserved", { data: KHO_DATA_FOLIO | 9, index: 0 }),
    region(BASE + 0x2200000, 1, "preserved", { data: KHO_DATA_FOLIO, index: 1 }),
    region(BASE + 0x2201000, 1, "kho-fdt", { label: "KHO FDT" }),
    region(BASE + 0x2202000, 1, "chunk", { label: "chunk 0", index: 0 }),
    region(BASE + 0x3000000, 1, "chunk", { label: "chunk 1", index: 1 }),
    region(BASE + ram - 0x4000000, 0x4000000 / P, "scratch", { label: "scratch area 0", index: 0 }),
  ];
  return { title, ram: { base: BASE, size: ram }, regions: flattenRegions(BASE, BASE + ram, labelled), chunks: [BASE + 0x2202000, BASE + 0x3000000], problems: [] };
}

describe("windows", () => {
  test("the overview lays RAM out in at most 64 rows of a power-of-two size, from 1 GiB to 1 TiB", () => {
    expect(mapOverview({ base: BASE, size: GiB }, geo)).toEqual({ start: BASE, bpr: 16 << 20, rows: 64 });
    expect(mapOverview({ base: BASE, size: 1024 * GiB }, geo)).toEqual({ start: BASE, bpr: 16 * GiB, rows: 64 });
    expect(mapOverview({ base: BASE, size: 3 * GiB }, geo)).toEqual({ start: BASE, bpr: 64 << 20, rows: 48 });
  });

  test("zoom in shrinks the window four times around its centre (or the given address), zoom out undoes it", () => {
    const span = { base: BASE, size: GiB };
    const ov = mapOverview(span, geo);
    const z = mapZoom(span, geo, ov, 0.25);
    expect(z.bpr * z.rows).toBe(GiB / 4);
    expect(z.start).toBe(BASE + (3 * GiB) / 8);
    const at = mapZoom(span, geo, ov, 0.25, BASE + 0x2201000);
    expect(at.start).toBeLessThanOrEqual(BASE + 0x2201000);
    expect(at.start).toBe(BASE); // clamped to the start of RAM
    expect(mapZoom(span, geo, z, 4)).toEqual(ov);
    // The deepest zoom: 16 bytes per pixel.
    let w: MapWindow = ov;
    for (let i = 0; i < 20; i++) w = mapZoom(span, geo, w, 0.25, BASE + 0x2201000);
    expect(w.bpr / geo.cols).toBe(16);
    expect(w.start).toBeLessThanOrEqual(BASE + 0x2201000);
    expect(w.start + w.bpr * w.rows).toBeGreaterThan(BASE + 0x2201000);
  });

  test("fit covers the asked range; pan moves by a window", () => {
    const span = { base: BASE, size: GiB };
    const w = mapFit(span, geo, BASE + 0x2200000, BASE + 0x2300000);
    expect(w.start).toBeLessThanOrEqual(BASE + 0x2200000);
    expect(w.start + w.bpr * w.rows).toBeGreaterThanOrEqual(BASE + 0x2300000);
    expect(w.rows).toBeLessThanOrEqual(geo.maxRows);
    const n = mapPan(span, geo, w, 1);
    expect(n.start).toBe(w.start + w.bpr * w.rows);
    expect(mapPan(span, geo, n, -1)).toEqual(w);
    // Clipped at the ends.
    expect(mapPan(span, geo, mapOverview(span, geo), 1)).toEqual(mapOverview(span, geo));
  });
});

describe("per-pixel aggregation", () => {
  const { doc } = mapBuild([source()]);
  const C = mapClassIndex(doc.classes);
  const prep = mapPrepare(doc.maps[0]!);

  test("a pixel holding several kinds takes the most important one and is marked", () => {
    const win = mapOverview(doc.span, geo); // 16 KiB per pixel
    const agg = mapAggregateView(prep, doc.classes, win, geo.cols);
    const px = (addr: number) => Math.floor((addr - BASE) / (win.bpr / geo.cols));
    // [0x2200000, 0x2204000): order-0 folio, KHO FDT, chunk, free -> KHO FDT, mixed.
    expect(agg.dom[px(BASE + 0x2200000)]).toBe(C.get("kho-fdt"));
    expect(agg.mixed[px(BASE + 0x2200000)]).toBe(1);
    // Inside the order-9 run: pure.
    expect(agg.dom[px(BASE + 0x2100000)]).toBe(C.get("order-9"));
    expect(agg.mixed[px(BASE + 0x2100000)]).toBe(0);
    // The chunk page alone in its pixel with free memory: chunk beats free.
    expect(agg.dom[px(BASE + 0x3000000)]).toBe(C.get("chunk"));
    expect(agg.dom[px(BASE + 0x100000)]).toBe(C.get("free"));
    expect(agg.dom[px(BASE + GiB - P)]).toBe(C.get("scratch"));
    // Runs: the whole order-9 run is one rect.
    const runs = mapRuns(agg, geo.cols, win.rows);
    expect(runs.find((r) => r[3] === C.get("order-9"))).toEqual([2, 0, 128, C.get("order-9"), 0]);
  });

  test("zoomed in, pages are exact", () => {
    const win = mapFit(doc.span, geo, BASE + 0x2200000, BASE + 0x2204000);
    const agg = mapAggregateView(prep, doc.classes, win, geo.cols);
    const bpp = win.bpr / geo.cols;
    const px = (addr: number) => (addr - win.start) / bpp;
    for (const [a, k] of [
      [0x2200000, "order-0"],
      [0x2201000, "kho-fdt"],
      [0x2202000, "chunk"],
      [0x2203000, "free"],
    ] as const) {
      for (let p = px(BASE + a); p < px(BASE + a + P); p++) {
        expect(agg.dom[p]).toBe(C.get(k));
        expect(agg.mixed[p]).toBe(0);
      }
    }
  });

  test("tooltips give the address ranges and what they hold", () => {
    const t = mapDescribe(doc, prep, BASE + 0x2200000, BASE + 0x2204000, 8);
    expect(t.split("\n")).toEqual([
      "0x42200000–0x42204000 (16 KiB)",
      "range #1: order-0 folios  0x42200000–0x42201000 (4 KiB)",
      "KHO FDT  0x42201000–0x42202000 (4 KiB)",
      "chunk 0 → chunk 1 at 0x43000000  0x42202000–0x42203000 (4 KiB)",
      "free memory  0x42203000–0x43000000 (13.99 MiB)",
    ]);
    const many = mapDescribe(doc, prep, BASE, BASE + GiB, 3);
    expect(many).toContain("aggregates 9 segments:");
    expect(many).toContain("order-9 folios: 1 region(s), 2 MiB");
  });
});

describe("SVG and page", () => {
  test("the overview SVG has rows, tooltips with addresses, chunk links and callouts", () => {
    const { doc } = mapBuild([source()]);
    const svg = mapRenderSvg(doc, 0, mapPrepare(doc.maps[0]!), mapOverview(doc.span, geo));
    expect(svg.match(/<text x="94"/g)).toHaveLength(64);
    expect(svg).toContain("range #0: order-9 folios  0x42000000–0x42200000 (2 MiB)");
    expect(svg.match(/<path class="link"/g)).toHaveLength(1);
    expect(svg).toContain("chunk 0 (0x42202000) → chunk 1 (0x43000000)");
    expect(svg).toContain('class="callout"');
    expect(svg).toContain("KHO FDT 0x42201000");
  });

  test("the inlined script is self-contained and renders exactly what Node renders", () => {
    const { doc } = mapBuild([source("a"), source("b", 2 * GiB)]);
    const api = new Function(mapViewSource() + "\nreturn { mapRenderSvg, mapPrepare, mapZoom, mapOverview };")() as {
      mapRenderSvg: typeof mapRenderSvg;
      mapPrepare: typeof mapPrepare;
      mapZoom: typeof mapZoom;
      mapOverview: typeof mapOverview;
    };
    const clone = JSON.parse(JSON.stringify(doc)) as typeof doc;
    const win = mapZoom(doc.span, doc.geo, mapOverview(doc.span, doc.geo), 0.25);
    expect(api.mapZoom(clone.span, clone.geo, api.mapOverview(clone.span, clone.geo), 0.25)).toEqual(win);
    for (let i = 0; i < doc.maps.length; i++) {
      expect(api.mapRenderSvg(clone, i, api.mapPrepare(clone.maps[i]!), win)).toBe(mapRenderSvg(doc, i, mapPrepare(doc.maps[i]!), win));
    }
  });

  test("one self-contained page: nothing fetched, data embedded, two handoffs give a difference map", () => {
    const html = mapHtml([source("out/a"), source("out/b", 2 * GiB)]);
    expect(html).not.toMatch(/<link|@import|src=|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    expect(html.match(/url\(([^)]*)\)/g)!.every((u) => u.startsWith("url(#"))).toBe(true);
    expect(html).toContain('id="khomap-data"');
    expect(html).toContain('id="legend"');
    expect(html.match(/<svg xmlns="http:\/\/www.w3.org\/2000\/svg" class="khomap"/g)).toHaveLength(3);
    expect(html).toContain("Difference (A → B)");
    expect(html).toMatch(/[\d.]+ GiB \([\d,]+ pages\) in 3 run\(s\) classified differently/);
    expect(html).toContain("outside RAM</td><td>→</td><td><span class=\"sw\" style=\"background:#e9edf1\"></span>free memory");
  });

  test("1 TiB of RAM stays small and readable", () => {
    const ram = 1024 * GiB;
    const labelled: Region[] = [];
    // 100,000 scattered order-0 folios and a few big runs.
    for (let i = 0; i < 100_000; i++) labelled.push(region(BASE + i * 0x1000000, 1, "preserved", { data: KHO_DATA_FOLIO, index: i }));
    labelled.push(region(BASE + 512 * GiB, (64 * GiB) / P, "preserved", { data: KHO_DATA_FOLIO | 10, index: 100_000 }));
    const src: MapSource = { title: "big", ram: { base: BASE, size: ram }, regions: flattenRegions(BASE, BASE + ram, labelled), chunks: [], problems: [] };
    const html = mapHtml([src]);
    expect(html.length).toBeLessThan(1_500_000);
    expect(html).toContain("RAM 0x40000000–0x10040000000 (1 TiB)");
    expect(html).toContain('data-bpr="17179869184"');
    expect(mapSize(ram)).toBe("1 TiB");
  });
});
