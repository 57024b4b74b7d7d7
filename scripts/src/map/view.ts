/*
 * The map renderer: a window of addresses -> SVG. These functions run in
 * Node (the SVG inlined in the page) and in the browser (re-rendering on
 * zoom): script.ts inlines their source into the page, so every function
 * here must be self-contained: no imports used at run time, no module-level
 * values, calls only to functions of this file and to JavaScript built-ins.
 * That is why everything mapRenderSvg and mapZoom reach stays in this one
 * file: a call into another module would be a module reference in the
 * inlined text (Vitest rewrites imports that way), which the page lacks. A
 * unit test evaluates the inlined source alone. What only the page runs is
 * in client.ts.
 */
import type { MapClass, MapDoc, MapGeometry, MapPrepared, MapWindow, MapDataset } from "./types.js";

/** mapHex - 0x-prefixed lowercase hex. */
export function mapHex(n: number): string {
  return "0x" + n.toString(16);
}

/** mapSize - 4 KiB, 1.5 MiB, 16 GiB, ... */
export function mapSize(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let u = 0;
  let v = n;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  const s = Number.isInteger(v) ? String(v) : v < 100 ? v.toFixed(2).replace(/\.?0+$/, "") : v.toFixed(1).replace(/\.0$/, "");
  return s + " " + units[u];
}

/** mapCount - 1,048,576. */
export function mapCount(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** mapEsc - escape text for XML/HTML content and attribute values. */
export function mapEsc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** mapPrepare - segment start addresses of @ds (starts[n] = end). */
export function mapPrepare(ds: MapDataset): MapPrepared {
  const n = ds.seg.length / 3;
  const starts = new Array<number>(n + 1);
  let a = ds.base;
  for (let i = 0; i < n; i++) {
    starts[i] = a;
    a += ds.seg[3 * i]! * 4096;
  }
  starts[n] = a;
  const chunks: number[] = [];
  let c = 0;
  for (const d of ds.chunkPages) {
    c += d * 4096;
    chunks.push(c);
  }
  return { ds, starts, chunks };
}

/** mapFind - index of the segment containing @addr (0 below the base, n at or past the end). */
export function mapFind(prep: MapPrepared, addr: number): number {
  const st = prep.starts;
  const n = st.length - 1;
  if (addr < st[0]!) return 0;
  if (addr >= st[n]!) return n;
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (st[mid]! <= addr) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** mapMinBpr - the deepest zoom: 16 bytes per pixel, a page is 256 pixels wide (4 pages per row). */
export function mapMinBpr(geo: MapGeometry): number {
  return geo.cols * 16;
}

/** mapOverview - the whole span: rows of a power-of-two number of bytes, at most geo.maxRows of them. */
export function mapOverview(span: { base: number; size: number }, geo: MapGeometry): MapWindow {
  let bpr = mapMinBpr(geo);
  while (bpr * geo.maxRows < span.size) bpr *= 2;
  return { start: span.base, bpr, rows: Math.max(1, Math.ceil(span.size / bpr)) };
}

/** mapWinEnd - the end of @win, clipped to the span. */
export function mapWinEnd(span: { base: number; size: number }, win: MapWindow): number {
  return Math.min(win.start + win.bpr * win.rows, span.base + span.size);
}

/**
 * mapFit - the smallest window showing [a, b): rows of a power-of-two size
 * (between mapMinBpr and the overview's), starting on a multiple of the row
 * size from the base, clipped to the span.
 */
export function mapFit(span: { base: number; size: number }, geo: MapGeometry, a: number, b: number): MapWindow {
  const ov = mapOverview(span, geo);
  const end = span.base + span.size;
  let lo = Math.max(span.base, Math.min(a, b));
  let hi = Math.min(end, Math.max(a, b));
  if (!(hi > lo)) {
    lo = Math.max(span.base, Math.min(lo, end - 1));
    hi = lo + 1;
  }
  let bpr = mapMinBpr(geo);
  for (;;) {
    if (bpr >= ov.bpr) return ov;
    const start = span.base + Math.floor((lo - span.base) / bpr) * bpr;
    const rows = Math.ceil((hi - start) / bpr);
    if (rows <= geo.maxRows) return { start, bpr, rows: Math.max(1, Math.min(rows, Math.ceil((end - start) / bpr))) };
    bpr *= 2;
  }
}

/** mapZoom - @win scaled by @factor (< 1 zooms in) around @center (default: its middle). */
export function mapZoom(span: { base: number; size: number }, geo: MapGeometry, win: MapWindow, factor: number, center?: number): MapWindow {
  const end = mapWinEnd(span, win);
  const c = center === undefined ? (win.start + end) / 2 : center;
  const half = Math.max(1, ((end - win.start) * factor) / 2);
  let a = c - half;
  let b = c + half;
  if (a < span.base) {
    b += span.base - a;
    a = span.base;
  }
  if (b > span.base + span.size) {
    a -= b - (span.base + span.size);
    b = span.base + span.size;
  }
  return mapFit(span, geo, a, b);
}

/** mapPan - @win moved by @dir (±1) window lengths, clipped to the span. */
export function mapPan(span: { base: number; size: number }, geo: MapGeometry, win: MapWindow, dir: number): MapWindow {
  const len = win.bpr * win.rows;
  const end = span.base + span.size;
  const start = Math.max(span.base, Math.min(win.start + dir * len, end - len));
  const aligned = span.base + Math.ceil((start - span.base) / win.bpr) * win.bpr;
  const s = Math.min(aligned, Math.max(span.base, end - 1));
  return mapFit(span, geo, s, Math.min(end, s + len));
}

/**
 * mapAggregateView - one bucket per pixel of @win (rows × cols): the class of
 * the highest rank in it (ties: the most bytes), and whether it mixes classes.
 * dom is -1 where nothing of this map lies (outside its RAM).
 */
export function mapAggregateView(prep: MapPrepared, classes: MapClass[], win: MapWindow, cols: number): { dom: Int32Array; mixed: Uint8Array } {
  const ds = prep.ds;
  const st = prep.starts;
  const P = win.rows * cols;
  const bpp = win.bpr / cols;
  const ws = win.start;
  const we = Math.min(ws + win.bpr * win.rows, st[st.length - 1]!);
  const dom = new Int32Array(P).fill(-1);
  const bytes = new Float64Array(P);
  const mixed = new Uint8Array(P);
  const sets = new Map<number, Map<number, number>>();
  const add = (p: number, c: number, b: number): void => {
    if (c === 0 || b <= 0) return;
    const cur = dom[p]!;
    if (cur < 0) {
      dom[p] = c;
      bytes[p] = b;
      return;
    }
    let m = sets.get(p);
    if (!m) {
      m = new Map<number, number>();
      m.set(cur, bytes[p]!);
      sets.set(p, m);
    }
    m.set(c, (m.get(c) || 0) + b);
    let bc = -1;
    let bb = 0;
    for (const [k, v] of m) {
      if (bc < 0 || classes[k]!.rank > classes[bc]!.rank || (classes[k]!.rank === classes[bc]!.rank && v > bb)) {
        bc = k;
        bb = v;
      }
    }
    dom[p] = bc;
    bytes[p] = bb;
    if (m.size > 1) mixed[p] = 1;
  };
  for (let i = mapFind(prep, ws); i < st.length - 1 && st[i]! < we; i++) {
    const s = Math.max(st[i]!, ws);
    const e = Math.min(st[i + 1]!, we);
    if (e <= s) continue;
    const cls = ds.seg[3 * i + 1]!;
    const p0 = Math.floor((s - ws) / bpp);
    const p1 = Math.ceil((e - ws) / bpp) - 1;
    if (cls >= 0) {
      const f0 = Math.ceil((s - ws) / bpp);
      const f1 = Math.floor((e - ws) / bpp) - 1;
      if (cls !== 0) {
        for (let p = f0; p <= f1; p++) {
          dom[p] = cls;
          bytes[p] = bpp;
        }
      }
      if (p0 < f0) add(p0, cls, Math.min(e, ws + (p0 + 1) * bpp) - s);
      if (p1 > f1 && !(p1 === p0 && p0 < f0)) add(p1, cls, e - Math.max(s, ws + p1 * bpp));
    } else {
      const m = ds.mix[ds.seg[3 * i + 2]!]!;
      let total = 0;
      let best = -1;
      for (let k = 0; k < m.length; k += 3) {
        total += m[k + 1]!;
        const c = m[k]!;
        if (c !== 0 && (best < 0 || classes[c]!.rank > classes[m[best]!]!.rank || (classes[c]!.rank === classes[m[best]!]!.rank && m[k + 1]! > m[best + 1]!))) best = k;
      }
      const multi = m.length > 3 ? 1 : 0;
      const f0 = Math.ceil((s - ws) / bpp);
      const f1 = Math.floor((e - ws) / bpp) - 1;
      for (let p = p0; p <= p1; p++) {
        if (p >= f0 && p <= f1 && best >= 0) {
          // A pixel inside the aggregate: its proportions, no need for a per-pixel histogram.
          dom[p] = m[best]!;
          mixed[p] = multi;
          continue;
        }
        const ov = Math.min(e, ws + (p + 1) * bpp) - Math.max(s, ws + p * bpp);
        for (let k = 0; k < m.length; k += 3) add(p, m[k]!, (ov * m[k + 1]!) / total);
      }
    }
  }
  return { dom, mixed };
}

/** mapRuns - per row, maximal runs of pixels with the same colour and mark: [row, x0, x1 (exclusive), cls, mixed]. */
export function mapRuns(agg: { dom: Int32Array; mixed: Uint8Array }, cols: number, rows: number): number[][] {
  const runs: number[][] = [];
  for (let r = 0; r < rows; r++) {
    let x = 0;
    while (x < cols) {
      const p = r * cols + x;
      const d = agg.dom[p]!;
      const m = agg.mixed[p]!;
      let y = x + 1;
      while (y < cols && agg.dom[r * cols + y] === d && agg.mixed[r * cols + y] === m) y++;
      if (d >= 0) runs.push([r, x, y, d, m]);
      x = y;
    }
  }
  return runs;
}

/** mapItem - tooltip text for a pure segment: "range #3: order-0 folios", "chunk 2 → chunk 3 at 0x…", "differs: A free → B chunk page". */
export function mapItem(doc: MapDoc, prep: MapPrepared, cls: number, idx: number): string {
  const ds = prep.ds;
  const c = doc.classes[cls]!;
  if (c.key === "differs" && ds.pairs && ds.pairs[idx]) {
    const pr = ds.pairs[idx]!;
    return "differs: A " + doc.classes[pr[0]!]!.name + " → B " + doc.classes[pr[1]!]!.name;
  }
  if (c.key === "chunk" && idx >= 0) {
    const next = prep.chunks[idx + 1];
    return "chunk " + idx + (next === undefined ? " (last chunk)" : " → chunk " + (idx + 1) + " at " + mapHex(next));
  }
  if (c.item && idx >= 0) return c.item + idx + (c.item === "range #" ? ": " + c.name : "");
  return c.name;
}

/**
 * mapDescribe - what lies in [a, b) of a map: one line per segment when
 * there are at most @maxItems, else per-class totals. First line: the range.
 */
export function mapDescribe(doc: MapDoc, prep: MapPrepared, a: number, b: number, maxItems: number): string {
  const ds = prep.ds;
  const st = prep.starts;
  const lines = [mapHex(a) + "–" + mapHex(b) + " (" + mapSize(b - a) + ")"];
  const first = mapFind(prep, a);
  let last = first;
  while (last < st.length - 1 && st[last]! < b) last++;
  const n = last - first;
  const mixText = (m: number[]): string => {
    const parts: string[] = [];
    for (let k = 0; k < m.length; k += 3) parts.push(mapCount(m[k + 2]!) + "× " + doc.classes[m[k]!]!.name + " (" + mapSize(m[k + 1]! * 4096) + ")");
    return parts.join(", ");
  };
  if (n <= maxItems) {
    for (let i = first; i < last; i++) {
      const cls = ds.seg[3 * i + 1]!;
      const idx = ds.seg[3 * i + 2]!;
      const ext = mapHex(st[i]!) + "–" + mapHex(st[i + 1]!) + " (" + mapSize(st[i + 1]! - st[i]!) + ")";
      if (cls >= 0) {
        if (cls !== 0) lines.push(mapItem(doc, prep, cls, idx) + "  " + ext);
      } else lines.push("aggregated " + ext + ", detail " + mapSize(ds.granule) + ": " + mixText(ds.mix[idx]!));
    }
  } else {
    // Totals over the part of each segment inside [a, b), per class (per pair of classes in a difference map).
    const tot = new Map<string, number[]>();
    const bump = (name: string, rank: number, regions: number, bytes: number): void => {
      const t = tot.get(name) || [0, 0, rank];
      t[0]! += regions;
      t[1]! += bytes;
      tot.set(name, t);
    };
    for (let i = first; i < last; i++) {
      const s = Math.max(st[i]!, a);
      const e = Math.min(st[i + 1]!, b);
      const cls = ds.seg[3 * i + 1]!;
      if (cls === 0) continue;
      if (cls > 0) bump(doc.classes[cls]!.key === "differs" ? mapItem(doc, prep, cls, ds.seg[3 * i + 2]!) : doc.classes[cls]!.name, doc.classes[cls]!.rank, 1, e - s);
      else {
        const m = ds.mix[ds.seg[3 * i + 2]!]!;
        let total = 0;
        for (let k = 1; k < m.length; k += 3) total += m[k]!;
        for (let k = 0; k < m.length; k += 3) if (m[k] !== 0) bump(doc.classes[m[k]!]!.name, doc.classes[m[k]!]!.rank, m[k + 2]!, ((e - s) * m[k + 1]!) / total);
      }
    }
    const names = [...tot.keys()].sort((x, y) => tot.get(y)![2]! - tot.get(x)![2]! || tot.get(y)![1]! - tot.get(x)![1]!);
    lines.push("aggregates " + mapCount(n) + " segments:");
    for (const name of names.slice(0, 12)) lines.push("  " + name + ": " + mapCount(tot.get(name)![0]!) + " region(s), " + mapSize(Math.round(tot.get(name)![1]! / 4096) * 4096));
    if (names.length > 12) lines.push("  … and " + (names.length - 12) + " more kinds");
    if (ds.granule > 4096) lines.push("(embedded detail: " + mapSize(ds.granule) + ")");
  }
  return lines.join("\n");
}

/** mapPoint - SVG position of the middle of the page at @addr in @win. */
export function mapPoint(geo: MapGeometry, win: MapWindow, addr: number): { x: number; y: number; px: number } {
  const bpp = win.bpr / geo.cols;
  const off = addr - win.start;
  const row = Math.floor(off / win.bpr);
  const px = Math.floor(off / bpp);
  const x = geo.left + (off - row * win.bpr) / bpp + Math.max(1, 4096 / bpp) / 2;
  return { x, y: geo.top + row * geo.pitch + geo.rowH / 2, px };
}

/** mapRenderSvg - map @mi of @doc for @win as an SVG element. */
export function mapRenderSvg(doc: MapDoc, mi: number, prep: MapPrepared, win: MapWindow): string {
  const geo = doc.geo;
  const ds = prep.ds;
  const cls = doc.classes;
  const id = "khomap-" + mi;
  const bpp = win.bpr / geo.cols;
  const ws = win.start;
  const we = mapWinEnd(doc.span, win);
  const W = geo.left + geo.cols + geo.right;
  const marks = ds.marks.filter((m) => m.end > ws && m.start < we).slice(0, 40);
  const H = Math.max(geo.top + win.rows * geo.pitch + 6, geo.top + marks.length * 12 + 6);
  const o: string[] = [];
  o.push(
    '<svg xmlns="http://www.w3.org/2000/svg" class="khomap" id="' + id + '" data-map="' + mi + '" data-start="' + mapHex(ws) + '" data-end="' + mapHex(we) + '" data-bpr="' + win.bpr + '" viewBox="0 0 ' + W + " " + H + '" width="' + W + '" height="' + H + '" font-family="ui-monospace, SFMono-Regular, Menlo, Consolas, \'DejaVu Sans Mono\', monospace" font-size="10">',
  );
  o.push("<defs>");
  cls.forEach((c, i) => {
    if (c.hatch) o.push('<pattern id="' + id + "-h" + i + '" width="5" height="5" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="5" height="5" fill="' + c.color + '"/><rect width="1.6" height="5" fill="#6f7fc9"/></pattern>');
  });
  o.push('<pattern id="' + id + '-mix" width="4" height="4" patternUnits="userSpaceOnUse"><rect x="0.5" y="0.5" width="1.2" height="1.2" fill="#000" fill-opacity="0.55"/><rect x="2.5" y="2.5" width="1.2" height="1.2" fill="#fff" fill-opacity="0.85"/></pattern>');
  o.push('<marker id="' + id + '-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,1 L10,5 L0,9 z" fill="#1d1d1f"/></marker>');
  o.push("</defs>");
  // Axis: offsets within a row.
  for (let q = 0; q <= 4; q++) {
    const x = geo.left + (geo.cols * q) / 4;
    o.push('<line x1="' + x + '" y1="' + (geo.top - 5) + '" x2="' + x + '" y2="' + (geo.top - 1) + '" stroke="#888"/>');
    o.push('<text x="' + x + '" y="' + (geo.top - 8) + '" fill="#666" text-anchor="' + (q === 0 ? "start" : q === 4 ? "end" : "middle") + '">+' + mapSize((win.bpr * q) / 4).replace("0 B", "0") + "</text>");
  }
  // Row labels and a faint frame for the part of each row inside the span.
  for (let r = 0; r < win.rows; r++) {
    const rs = ws + r * win.bpr;
    const y = geo.top + r * geo.pitch;
    const w = Math.max(0, Math.min(geo.cols, (we - rs) / bpp));
    o.push('<text x="' + (geo.left - 6) + '" y="' + (y + geo.rowH - 2) + '" fill="#333" text-anchor="end">' + mapHex(rs) + "</text>");
    o.push('<rect x="' + geo.left + '" y="' + y + '" width="' + w + '" height="' + geo.rowH + '" fill="none" stroke="#d0d4d9" stroke-width="0.5"/>');
  }
  // Cells.
  const agg = mapAggregateView(prep, cls, win, geo.cols);
  const runs = mapRuns(agg, geo.cols, win.rows);
  o.push('<g class="cells">');
  for (const [r, x0, x1, c, m] of runs) {
    const a = ws + (r! * geo.cols + x0!) * bpp;
    const b = Math.min(ws + (r! * geo.cols + x1!) * bpp, we);
    const t = "<title>" + mapEsc(mapDescribe(doc, prep, a, b, 8)) + "</title>";
    const cc = cls[c!]!;
    const fill = cc.hatch ? "url(#" + id + "-h" + c + ")" : cc.color;
    const rect = 'x="' + (geo.left + x0!) + '" y="' + (geo.top + r! * geo.pitch) + '" width="' + (x1! - x0!) + '" height="' + geo.rowH + '"';
    if (m) o.push('<g class="mixed" data-cls="' + cc.key + '">' + t + "<rect " + rect + ' fill="' + fill + '"/><rect ' + rect + ' fill="url(#' + id + '-mix)"/></g>');
    else {
      o.push('<rect class="cell" data-cls="' + cc.key + '" ' + rect + ' fill="' + fill + '">' + t + "</rect>");
      // Name a region where it starts, when the run has room for it.
      const si = mapFind(prep, a);
      const sa = prep.starts[si]!;
      if (cc.rank > 0 && sa >= a && sa < b && ds.seg[3 * si + 1] === c) {
        const idx = ds.seg[3 * si + 2]!;
        const text = cc.key === "differs" ? mapItem(doc, prep, c!, idx).replace("differs: ", "") : cc.item === "range #" && idx >= 0 ? "range #" + idx + " " + cc.name : cc.item && idx >= 0 ? cc.item + idx : cc.name;
        const x = geo.left + (sa - ws - r! * win.bpr) / bpp;
        const room = geo.left + x1! - x;
        if (room >= text.length * 5.7 + 10) {
          const rgb = [1, 3, 5].map((k) => parseInt(cc.color.slice(k, k + 2), 16));
          const light = 0.3 * rgb[0]! + 0.59 * rgb[1]! + 0.11 * rgb[2]! > 150 || cc.hatch;
          o.push('<text class="cell-label" x="' + (x + 6).toFixed(1) + '" y="' + (geo.top + r! * geo.pitch + geo.rowH - 2.5) + '" font-size="9" fill="' + (light ? "#1d1d1f" : "#fff") + '"' + (cc.hatch ? ' paint-order="stroke" stroke="#fff" stroke-width="2.2" stroke-opacity="0.85"' : "") + ' pointer-events="none">' + mapEsc(text) + "</text>");
        }
      }
    }
  }
  o.push("</g>");
  // Chunk pages and the links between them (list order), one marker per pixel.
  const inWin = (x: number): boolean => x >= ws && x < we;
  const markers = new Map<number, number[]>();
  const links = new Map<string, string>();
  let omitted = 0;
  const ch = prep.chunks;
  for (let k = 0; k < ch.length; k++) {
    const a = ch[k]!;
    const b = ch[k + 1];
    const ia = inWin(a);
    if (ia) {
      const pa = mapPoint(geo, win, a);
      const mk = markers.get(pa.px);
      if (mk) mk.push(k);
      else if (markers.size < geo.maxLinks) markers.set(pa.px, [k]);
      else omitted++;
    }
    if (b === undefined) continue;
    const ib = inWin(b);
    if (!ia && !ib) continue;
    const pa = ia ? mapPoint(geo, win, a) : undefined;
    const pb = ib ? mapPoint(geo, win, b) : undefined;
    // One link per pair of pixels (an end outside the view counts by its side).
    const key = (pa ? pa.px : a < ws ? "<" : ">") + "/" + (pb ? pb.px : b < ws ? "<" : ">");
    if (links.has(key) || (pa && pb && pa.px === pb.px)) continue;
    if (links.size >= geo.maxLinks) {
      omitted++;
      continue;
    }
    const title = "<title>chunk " + k + " (" + mapHex(a) + ") → chunk " + (k + 1) + " (" + mapHex(b) + ")" + (pa && pb ? "" : ", outside this view") + "</title>";
    let d: string;
    if (pa && pb) {
      const dx = pb.x - pa.x;
      const dy = pb.y - pa.y;
      const dist = Math.sqrt(dx * dx + dy * dy);
      const bulge = Math.min(60, 6 + dist * 0.25);
      const cx = (pa.x + pb.x) / 2 + (dy / dist) * bulge;
      const cy = (pa.y + pb.y) / 2 - (Math.abs(dx) / dist) * bulge;
      d = "M" + pa.x.toFixed(1) + "," + pa.y.toFixed(1) + " Q" + cx.toFixed(1) + "," + cy.toFixed(1) + " " + pb.x.toFixed(1) + "," + pb.y.toFixed(1);
    } else if (pa) {
      const up = b < ws;
      d = "M" + pa.x.toFixed(1) + "," + pa.y.toFixed(1) + " q8," + (up ? -4 : 4) + " 12," + (up ? -14 : 14);
    } else {
      const up = a < ws;
      d = "M" + (pb!.x - 12).toFixed(1) + "," + (pb!.y + (up ? -14 : 14)).toFixed(1) + " q4," + (up ? 10 : -10) + " 12," + (up ? 14 : -14);
    }
    links.set(key, '<path class="link" d="' + d + '" fill="none" stroke="#1d1d1f" stroke-opacity="0.8" stroke-width="1.2"' + (pa && pb ? "" : ' stroke-dasharray="3 2"') + ' marker-end="url(#' + id + '-arrow)">' + title + "</path>");
  }
  o.push('<g class="links">' + [...links.values()].join("") + "</g>");
  const chunkColor = (cls.find((c) => c.key === "chunk") || { color: "#e5202e" }).color;
  o.push('<g class="chunks">');
  const fewMarkers = markers.size <= 16;
  for (const ks of markers.values()) {
    const p = mapPoint(geo, win, ch[ks[0]!]!);
    const name = ks.length === 1 ? "chunk " + ks[0] : "chunks " + ks[0] + "–" + ks[ks.length - 1] + " (" + ks.length + ")";
    o.push('<circle class="chunk" cx="' + p.x.toFixed(1) + '" cy="' + p.y.toFixed(1) + '" r="3" fill="#fff" stroke="' + chunkColor + '" stroke-width="1.8"><title>' + name + " at " + mapHex(ch[ks[0]!]!) + "</title></circle>");
    if (fewMarkers) o.push('<text x="' + (p.x + 4).toFixed(1) + '" y="' + (p.y - 4).toFixed(1) + '" font-size="9" fill="#9b1019" paint-order="stroke" stroke="#fff" stroke-width="2.5">' + (ks.length === 1 ? "c" + ks[0] : "c" + ks[0] + "…" + ks[ks.length - 1]) + "</text>");
  }
  o.push("</g>");
  // Callouts for the landmarks, stacked in the right margin.
  const shown = marks.map((m) => ({ m, p: mapPoint(geo, win, Math.max(m.start, ws)), y: 0 }));
  shown.sort((x, y) => x.p.y - y.p.y || x.p.x - y.p.x);
  let prevY = -Infinity;
  for (const s of shown) {
    s.y = Math.max(s.p.y + 3.5, prevY + 12);
    prevY = s.y;
  }
  let nextY = H - 3;
  for (let i = shown.length - 1; i >= 0; i--) {
    shown[i]!.y = Math.min(shown[i]!.y, nextY);
    nextY = shown[i]!.y - 12;
  }
  const lx = geo.left + geo.cols + 18;
  o.push('<g class="callouts">');
  for (const s of shown) {
    const c = cls[s.m.cls]!;
    const gapY = s.p.y - geo.rowH / 2 + geo.rowH + (geo.pitch - geo.rowH) / 2;
    const size = s.m.end - s.m.start;
    o.push('<polyline points="' + s.p.x.toFixed(1) + "," + s.p.y.toFixed(1) + " " + s.p.x.toFixed(1) + "," + gapY.toFixed(1) + " " + (geo.left + geo.cols + 6) + "," + gapY.toFixed(1) + " " + (lx - 3) + "," + (s.y - 3.5).toFixed(1) + '" fill="none" stroke="#555" stroke-width="0.8" stroke-opacity="0.7"/>');
    o.push('<circle cx="' + s.p.x.toFixed(1) + '" cy="' + s.p.y.toFixed(1) + '" r="2.6" fill="' + c.color + '" stroke="#111" stroke-width="1"/>');
    o.push('<text class="callout" x="' + lx + '" y="' + s.y.toFixed(1) + '" fill="#222"><tspan fill="' + (c.key === "scratch" ? "#3949ab" : c.color) + '">■</tspan> ' + mapEsc(s.m.label) + " " + mapHex(s.m.start) + (size > 4096 ? " (" + mapSize(size) + ")" : "") + "<title>" + mapEsc(s.m.label + " " + mapHex(s.m.start) + "–" + mapHex(s.m.end) + " (" + mapSize(size) + ")") + "</title></text>");
  }
  o.push("</g>");
  if (omitted > 0) o.push('<text x="' + geo.left + '" y="' + (H - 1) + '" fill="#a00">' + omitted + " chunk markers/links not drawn at this zoom (zoom in)</text>");
  o.push('<g class="sel"></g>');
  o.push("</svg>");
  return o.join("");
}
