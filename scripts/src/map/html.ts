/*
 * The map page: one self-contained HTML file (inline SVG, CSS, JS and the
 * embedded, aggregated region data; nothing fetched from the network).
 */
import { khoDataIsFolio, khoDataOrder, type RamBank } from "@khosim/shared/abi";
import type { KernelLost, Region } from "../inspect.js";
import { mapClassIndex, mapClassKey, mapClasses } from "./classes.js";
import { MAP_DEFAULT_DETAIL, mapDataset, mapDiffPieces, mapMarks, mapPiecesFromRegions, type MapPieces } from "./layout.js";
import type { MapDataset, MapDoc, MapGeometry } from "./types.js";
import { mapViewSource } from "./script.js";
import { mapCount, mapEsc, mapHex, mapOverview, mapPrepare, mapRenderSvg, mapSize } from "./view.js";

/** What the map needs from a handoff (openHandoff's HandoffView has all of it). */
export interface MapSource {
  /** Shown as the map's title (the directory). */
  title: string;
  ram: { base: number; size: number };
  regions: readonly Region[];
  chunks: readonly number[];
  /** map --kernel: the preserved pages that version does not reserve (drawn as the "lost" class, which @regions carries). */
  lost?: KernelLost;
  /** The walked ranges (list order): the preserved totals count them, including the pages drawn as kho_test pages. */
  ranges?: readonly { start: number; size: number; data: number }[];
  problems: readonly string[];
  /** RAM banks (boot DTB memory nodes): node boundaries are labelled. */
  banks?: readonly RamBank[] | undefined;
  /** True when the banks carry numa-node-id. */
  numa?: boolean | undefined;
}

export interface MapOptions {
  /** Cap on embedded segments per map (MAP_DEFAULT_DETAIL). */
  detail?: number;
}

/** mapGeometry - drawing geometry: 64 rows of 1024 pixel buckets for one map, 32 rows each when comparing. */
export function mapGeometry(compare: boolean): MapGeometry {
  return { cols: 1024, maxRows: compare ? 32 : 64, rowH: 11, pitch: 15, left: 100, top: 22, right: 300, maxLinks: 2000 };
}

interface SourceStats {
  /** class key -> [regions, bytes] */
  byClass: Map<string, [number, number]>;
}

function sourceStats(src: MapSource): SourceStats {
  const byClass = new Map<string, [number, number]>();
  const bump = (key: string, n: number, bytes: number): void => {
    const t = byClass.get(key) ?? [0, 0];
    t[0] += n;
    t[1] += bytes;
    byClass.set(key, t);
  };
  const seen = new Set<string>();
  for (const r of src.regions) {
    if (src.ranges && r.kind === "preserved") continue;
    const key = mapClassKey(r);
    const id = `${key}:${r.index ?? r.start}`;
    bump(key, seen.has(id) ? 0 : 1, r.end - r.start);
    seen.add(id);
  }
  for (const r of src.ranges ?? []) bump(mapClassKey({ kind: "preserved", data: r.data }), 1, r.size);
  return { byClass };
}

/** mapBuild - the document for one handoff, or two and their difference. */
export function mapBuild(sources: readonly MapSource[], options: MapOptions = {}): { doc: MapDoc; diff?: { pieces: MapPieces; pairs: number[][] } } {
  if (sources.length < 1 || sources.length > 2) throw new RangeError("map: one or two handoffs");
  let maxOrder = 0;
  for (const s of sources) for (const r of s.regions) if (r.kind === "preserved" && khoDataIsFolio(r.data ?? 0)) maxOrder = Math.max(maxOrder, khoDataOrder(r.data ?? 0));
  const lostUnder = sources.find((s) => s.lost)?.lost?.kernel;
  const classes = mapClasses(maxOrder, lostUnder);
  const detail = options.detail ?? MAP_DEFAULT_DETAIL;
  const base = Math.min(...sources.map((s) => s.ram.base));
  const end = Math.max(...sources.map((s) => s.ram.base + s.ram.size));
  const pieces = sources.map((s) => mapPiecesFromRegions(s.regions, classes));
  const maps: MapDataset[] = sources.map((s, i) =>
    mapDataset({ title: s.title, role: sources.length === 1 ? "a" : i === 0 ? "a" : "b", base: s.ram.base, size: s.ram.size, pieces: pieces[i]!, chunks: s.chunks, marks: mapMarks(s.regions, s.chunks, classes, s.numa ? s.banks : undefined), detail }),
  );
  let diff: { pieces: MapPieces; pairs: number[][] } | undefined;
  if (sources.length === 2) {
    diff = mapDiffPieces(pieces[0]!, pieces[1]!, base, end, classes);
    maps.push(mapDataset({ title: "difference (A → B)", role: "diff", base, size: end - base, pieces: diff.pieces, chunks: [], marks: [], pairs: diff.pairs, detail }));
  }
  const title = sources.length === 1 ? `khosim map: ${sources[0]!.title}` : `khosim map: ${sources[0]!.title} vs ${sources[1]!.title}`;
  const doc: MapDoc = { title, classes, maps, span: { base, size: end - base }, geo: mapGeometry(sources.length === 2) };
  return diff ? { doc, diff } : { doc };
}

const CSS = `
:root { --fg: #1d1d1f; --muted: #5f6368; --line: #d9dde2; --bg: #ffffff; --panel: #f6f7f9; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--fg); background: var(--bg); }
header { padding: 14px 20px 6px; }
h1 { font-size: 20px; margin: 0 0 2px; }
h2 { font-size: 15px; margin: 0 0 4px; }
.sub, .stats, .note { color: var(--muted); font-size: 13px; }
code, .mono, input { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 12.5px; }
#controls { position: sticky; top: 0; z-index: 2; display: flex; flex-wrap: wrap; gap: 8px; align-items: center; padding: 8px 20px; background: var(--panel); border-bottom: 1px solid var(--line); border-top: 1px solid var(--line); }
#controls button { font: inherit; min-width: 34px; padding: 3px 10px; border: 1px solid #b9bfc7; border-radius: 6px; background: #fff; cursor: pointer; }
#controls button:hover { background: #eef3fb; border-color: #6d8fc7; }
#controls form { display: flex; gap: 6px; align-items: center; margin: 0 6px; }
#controls input { width: 13ch; padding: 3px 6px; border: 1px solid #b9bfc7; border-radius: 5px; }
#window { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 12.5px; color: #174ea6; }
#legend { display: flex; flex-wrap: wrap; gap: 6px 16px; align-items: center; padding: 10px 20px; border-bottom: 1px solid var(--line); font-size: 13px; }
#legend .item { display: inline-flex; align-items: center; gap: 5px; white-space: nowrap; }
#legend .group { display: inline-flex; align-items: center; gap: 3px; }
#legend .orders .o { display: inline-flex; flex-direction: column; align-items: center; font-size: 10.5px; color: var(--muted); }
#legend svg { display: block; }
#status { padding: 6px 20px; min-height: 2.2em; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 12px; color: #333; background: #fffdf3; border-bottom: 1px solid var(--line); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
section.map { padding: 12px 20px 4px; }
.svgwrap { overflow-x: auto; cursor: zoom-in; user-select: none; }
.svgwrap svg { display: block; max-width: 100%; height: auto; }
.chips { display: flex; flex-wrap: wrap; gap: 6px; margin: 4px 0 6px; }
.chips button { font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace; padding: 1px 8px; border-radius: 10px; border: 1px solid var(--line); background: #fff; cursor: pointer; }
.chips button:hover { border-color: #6d8fc7; }
.sw { display: inline-block; width: 10px; height: 10px; border-radius: 2px; vertical-align: -1px; margin-right: 3px; }
.problems { color: #b00020; font-size: 13px; margin: 2px 0 4px; }
table.diff { border-collapse: collapse; font-size: 12.5px; margin: 4px 0 8px; }
table.diff td, table.diff th { border-bottom: 1px solid var(--line); padding: 2px 10px 2px 0; text-align: left; }
footer { padding: 10px 20px 24px; color: var(--muted); font-size: 12.5px; }
`;

function swatch(color: string, pattern?: "hatch" | "mix", w = 18, h = 11): string {
  const defs =
    pattern === "hatch"
      ? `<defs><pattern id="lg-hatch" width="5" height="5" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="5" height="5" fill="${color}"/><rect width="1.6" height="5" fill="#6f7fc9"/></pattern></defs>`
      : pattern === "mix"
        ? `<defs><pattern id="lg-mix" width="4" height="4" patternUnits="userSpaceOnUse"><rect x="0.5" y="0.5" width="1.2" height="1.2" fill="#000" fill-opacity="0.55"/><rect x="2.5" y="2.5" width="1.2" height="1.2" fill="#fff" fill-opacity="0.85"/></pattern></defs>`
        : "";
  const fill = pattern === "hatch" ? "url(#lg-hatch)" : color;
  const over = pattern === "mix" ? `<rect width="${w}" height="${h}" fill="url(#lg-mix)"/>` : "";
  return `<svg width="${w}" height="${h}" aria-hidden="true">${defs}<rect width="${w}" height="${h}" rx="2" fill="${fill}" stroke="#00000026"/>${over}</svg>`;
}

function legendHtml(doc: MapDoc): string {
  const present = new Set<number>();
  for (const ds of doc.maps) {
    for (let i = 1; i < ds.seg.length; i += 3) if (ds.seg[i]! >= 0) present.add(ds.seg[i]!);
    for (const m of ds.mix) for (let k = 0; k < m.length; k += 3) present.add(m[k]!);
  }
  const shown = doc.classes.map((c, i) => ({ c, i })).filter(({ c, i }) => c.key !== "outside" && (c.legend || present.has(i)));
  const compare = doc.maps.length > 1;
  const item = (sw: string, text: string, title = text): string => `<span class="item" title="${mapEsc(title)}">${sw}${mapEsc(text)}</span>`;
  const out: string[] = [];
  const orders = shown.filter(({ c }) => c.key.startsWith("order-"));
  const others = shown.filter(({ c }) => !c.key.startsWith("order-") && c.key !== "same" && c.key !== "differs");
  for (const { c } of others.filter(({ c }) => c.key === "free" || c.key === "scratch")) out.push(item(swatch(c.color, c.hatch ? "hatch" : undefined), c.name));
  out.push(
    `<span class="item orders" title="preserved folios, coloured by order"><span>preserved folios by order</span><span class="group">${orders
      .map(({ c }) => `<span class="o">${swatch(c.color, undefined, 20, 12)}${mapEsc(c.key.slice(6))}</span>`)
      .join("")}</span></span>`,
  );
  for (const { c } of others.filter(({ c }) => c.key !== "free" && c.key !== "scratch")) out.push(item(swatch(c.color), c.name));
  out.push(item(`<svg width="18" height="12" aria-hidden="true"><circle cx="9" cy="6" r="3.2" fill="#fff" stroke="#e5202e" stroke-width="1.8"/></svg>`, "chunk marker"));
  out.push(
    item(
      `<svg width="30" height="12" aria-hidden="true"><defs><marker id="lg-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,1 L10,5 L0,9 z" fill="#1d1d1f"/></marker></defs><path d="M2,9 Q14,0 27,8" fill="none" stroke="#1d1d1f" stroke-width="1.2" marker-end="url(#lg-arrow)"/></svg>`,
      "next chunk (list order)",
    ),
  );
  out.push(item(swatch(doc.classes.find((c) => c.key === "order-0")!.color, "mix"), "aggregated: mixes kinds (colour of the most important)", "A pixel that holds several kinds of pages takes the colour of the most important one (lost > KHO FDT > scratch array > kho_test FDT > info blob > chunk > preserved > scratch > free) and gets this dotted mark; its tooltip lists what it aggregates."));
  if (compare) {
    for (const key of ["same", "differs"]) {
      const c = doc.classes.find((x) => x.key === key)!;
      out.push(item(swatch(c.color), `difference: ${c.name}`));
    }
  }
  return `<div id="legend" role="list" aria-label="legend">${out.join("")}</div>`;
}

function statsHtml(src: MapSource, ds: MapDataset, doc: MapDoc): string {
  const st = sourceStats(src);
  const parts: string[] = [`RAM ${mapHex(src.ram.base)}–${mapHex(src.ram.base + src.ram.size)} (${mapSize(src.ram.size)})`];
  let prN = 0;
  let prB = 0;
  const perClass: string[] = [];
  for (const c of doc.classes) {
    if (!(c.key.startsWith("order-") || c.key === "phys" || c.key === "preserved-other")) continue;
    const t = st.byClass.get(c.key);
    if (!t) continue;
    prN += t[0];
    prB += t[1];
    perClass.push(`<span class="sw" style="background:${c.color}"></span>${mapEsc(c.name)}: ${mapCount(t[0])} (${mapSize(t[1])})`);
  }
  parts.push(`preserved ${mapCount(prN)} range(s), ${mapSize(prB)}`);
  parts.push(`${mapCount(src.chunks.length)} chunk page(s)`);
  if (src.lost) {
    const first = src.lost.ranges[0];
    parts.push(`lost under ${src.lost.kernel}: ${mapCount(src.lost.pages)} page(s) in ${mapCount(src.lost.ranges.length)} run(s)${first ? `, first ${mapHex(first.start)}` : ""}`);
  }
  const scratch = st.byClass.get("scratch");
  if (scratch) parts.push(`scratch ${mapSize(scratch[1])}`);
  const free = st.byClass.get("free");
  parts.push(`free ${mapSize(free ? free[1] : 0)}`);
  parts.push(ds.granule > 4096 ? `${mapCount(ds.regionCount)} regions, embedded as ${mapCount(ds.seg.length / 3)} segments at ${mapSize(ds.granule)} detail` : `${mapCount(ds.regionCount)} regions, every page exact`);
  const chips = ds.marks.map((m) => {
    const c = doc.classes[m.cls]!;
    return `<button type="button" data-goto="${mapHex(m.start)}-${mapHex(m.end)}" title="zoom to ${mapEsc(m.label)}"><span class="sw" style="background:${c.color}"></span>${mapEsc(m.label)} ${mapHex(m.start)}</button>`;
  });
  const problems = src.problems.length ? `<div class="problems">could not decode: ${src.problems.map((p) => mapEsc(p)).join("; ")}</div>` : "";
  return `<div class="stats">${parts.map((p) => mapEsc(p)).join(" · ")}</div><div class="stats">${perClass.join(" &nbsp; ")}</div>${problems}<div class="chips">${chips.join("")}</div>`;
}

function diffHtml(doc: MapDoc, diff: { pieces: MapPieces; pairs: number[][] }): string {
  const differs = mapClassIndex(doc.classes).get("differs")!;
  const byPair = new Map<number, [number, number]>();
  let bytes = 0;
  let runs = 0;
  const first: string[] = [];
  for (let i = 0; i < diff.pieces.start.length; i++) {
    if (diff.pieces.cls[i] !== differs) continue;
    const n = diff.pieces.end[i]! - diff.pieces.start[i]!;
    bytes += n;
    runs++;
    const t = byPair.get(diff.pieces.idx[i]!) ?? [0, 0];
    t[0]++;
    t[1] += n;
    byPair.set(diff.pieces.idx[i]!, t);
    if (first.length < 8) {
      const [a, b] = diff.pairs[diff.pieces.idx[i]!]!;
      first.push(`<button type="button" data-goto="${mapHex(diff.pieces.start[i]!)}-${mapHex(diff.pieces.end[i]!)}">${mapHex(diff.pieces.start[i]!)} ${mapEsc(doc.classes[a!]!.name)} → ${mapEsc(doc.classes[b!]!.name)}</button>`);
    }
  }
  if (runs === 0) return `<div class="stats">A and B classify every page the same way.</div>`;
  const rows = [...byPair]
    .sort((x, y) => y[1][1] - x[1][1])
    .slice(0, 12)
    .map(([p, [n, b]]) => {
      const [ca, cb] = diff.pairs[p]!;
      const A = doc.classes[ca!]!;
      const B = doc.classes[cb!]!;
      return `<tr><td><span class="sw" style="background:${A.color}"></span>${mapEsc(A.name)}</td><td>→</td><td><span class="sw" style="background:${B.color}"></span>${mapEsc(B.name)}</td><td class="mono">${mapSize(b)}</td><td>${mapCount(n)} run(s)</td></tr>`;
    });
  return `<div class="stats">${mapSize(bytes)} (${mapCount(bytes / 4096)} pages) in ${mapCount(runs)} run(s) classified differently</div><table class="diff"><tr><th>A</th><th></th><th>B</th><th>bytes</th><th></th></tr>${rows.join("")}</table><div class="chips">${first.join("")}</div>`;
}

/** mapHtml - the page for @sources (one handoff, or two and their difference). */
export function mapHtml(sources: readonly MapSource[], options: MapOptions = {}): string {
  const { doc, diff } = mapBuild(sources, options);
  const win = mapOverview(doc.span, doc.geo);
  const sections = doc.maps.map((ds, i) => {
    const svg = mapRenderSvg(doc, i, mapPrepare(ds), win);
    const head = ds.role === "diff" ? "Difference (A → B): pages whose classification differs" : `${sources.length === 2 ? (i === 0 ? "A: " : "B: ") : ""}${ds.title}`;
    const info = ds.role === "diff" ? diffHtml(doc, diff!) : statsHtml(sources[i]!, ds, doc);
    return `<section class="map" id="section-${i}"><h2>${mapEsc(head)}</h2>${info}<div class="svgwrap" id="map-${i}">${svg}</div></section>`;
  });
  const granules = doc.maps.filter((m) => m.granule > 4096);
  const note =
    `Each row is a run of physical addresses; a pixel bucket aggregates what is smaller than a pixel. ` +
    `Click to zoom in ×4 around an address, drag to select a window, or use the buttons and keys (+, −, 0, ←, →). ` +
    (granules.length
      ? `To keep the file small, at most ${mapCount(options.detail ?? MAP_DEFAULT_DETAIL)} segments are embedded per map: ${granules.map((m) => `${mapEsc(m.title)} at ${mapSize(m.granule)} granules`).join(", ")}; finer detail is shown aggregated.`
      : `Every region is embedded exactly, down to the page.`);
  const json = JSON.stringify(doc).replace(/</g, "\\u003c");
  const script = mapViewSource();
  if (/<\/script/i.test(script)) throw new Error("map: inline script contains </script");
  const sub = sources.map((s, i) => `${sources.length === 2 ? (i === 0 ? "A: " : "B: ") : ""}<code>${mapEsc(s.title)}</code>`).join(" &nbsp;·&nbsp; ");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${mapEsc(doc.title)}</title>
<style>${CSS}</style>
</head>
<body>
<header><h1>khosim memory map</h1><div class="sub">${sub}</div></header>
<nav id="controls" aria-label="zoom">
<button type="button" id="zoom-out" title="zoom out ×4 (−)">−</button><button type="button" id="zoom-in" title="zoom in ×4 (+)">+</button><button type="button" id="prev" title="previous window (←)">◀</button><button type="button" id="next" title="next window (→)">▶</button><button type="button" id="reset" title="whole RAM (0)">reset</button>
<form id="go"><label for="win-start">from</label><input id="win-start" spellcheck="false"><label for="win-end">to</label><input id="win-end" spellcheck="false"><button type="submit">show</button></form>
<span id="window"></span>
</nav>
${legendHtml(doc)}
<div id="status">Hover over the map for details; click to zoom in, drag to select a window.</div>
${sections.join("\n")}
<footer>${note}</footer>
<script type="application/json" id="khomap-data">${json}</script>
<script>
${script}
mapClientMain();
</script>
</body>
</html>
`;
}
