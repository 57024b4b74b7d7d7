/*
 * From labelled regions to what the map embeds: classified pieces, the
 * difference of two handoffs, and aggregation to a bounded number of segments
 * (a granule of 2^k pages, the smallest that fits the cap).
 */
import { PAGE_SIZE, type RamBank } from "@khosim/shared/abi";
import type { Region } from "../inspect.js";
import { mapClassIndex, mapClassKey } from "./classes.js";
import type { MapClass, MapDataset, MapMark } from "./types.js";

/** Default cap on the segments embedded per map. */
export const MAP_DEFAULT_DETAIL = 20_000;

/**
 * Disjoint, ascending, page-aligned pieces covering a span, as parallel arrays
 * (a 1M-range handoff has 2M of them).
 */
export interface MapPieces {
  start: number[];
  end: number[];
  cls: number[];
  idx: number[];
}

/** mapPiecesFromRegions - classify @regions (disjoint, ascending, covering RAM as openHandoff returns them). */
export function mapPiecesFromRegions(regions: readonly Region[], classes: readonly MapClass[]): MapPieces {
  const index = mapClassIndex(classes);
  // Sized for the worst case and cut to length at the end: growing four 2M-entry arrays by copying costs more than the walk.
  const count = regions.length;
  const start: number[] = new Array<number>(count);
  const end: number[] = new Array<number>(count);
  const cls: number[] = new Array<number>(count);
  const idx: number[] = new Array<number>(count);
  // A region's class depends on its kind alone, or for preserved ranges on their data.
  const byKind = new Map<string, number>();
  const byData = new Map<number, number>();
  let n = -1;
  for (let i = 0; i < count; i++) {
    const r = regions[i]!;
    const memo = r.kind === "preserved" ? byData : byKind;
    const key = r.kind === "preserved" ? (r.data ?? 0) : r.kind;
    let c = (memo as Map<string | number, number>).get(key);
    if (c === undefined) {
      c = index.get(mapClassKey(r));
      if (c === undefined) throw new Error(`map: no class for region kind ${r.kind}`);
      (memo as Map<string | number, number>).set(key, c);
    }
    const x = r.index ?? -1;
    if (n >= 0 && end[n] === r.start && cls[n] === c && idx[n] === x) end[n] = r.end;
    else {
      n++;
      start[n] = r.start;
      end[n] = r.end;
      cls[n] = c;
      idx[n] = x;
    }
  }
  n++;
  start.length = n;
  end.length = n;
  cls.length = n;
  idx.length = n;
  return { start, end, cls, idx };
}

/** classAt - walk helper: class of @p's piece containing @addr, 0 (outside) when none. */
function cursor(p: MapPieces) {
  let i = 0;
  return (addr: number): { cls: number; end: number } => {
    while (i < p.start.length && p.end[i]! <= addr) i++;
    if (i >= p.start.length) return { cls: 0, end: Infinity };
    if (addr < p.start[i]!) return { cls: 0, end: p.start[i]! };
    return { cls: p.cls[i]!, end: p.end[i]! };
  };
}

/**
 * mapDiffPieces - pieces over [base, end) classified "same" or "differs"
 * (class of @a vs class of @b; outside a map's RAM counts as "outside").
 * A differing piece's idx indexes the returned `pairs` ([clsA, clsB]).
 */
export function mapDiffPieces(a: MapPieces, b: MapPieces, base: number, end: number, classes: readonly MapClass[]): { pieces: MapPieces; pairs: number[][] } {
  const index = mapClassIndex(classes);
  const same = index.get("same")!;
  const differs = index.get("differs")!;
  const pairs: number[][] = [];
  const pairIndex = new Map<string, number>();
  const out: MapPieces = { start: [], end: [], cls: [], idx: [] };
  const ca = cursor(a);
  const cb = cursor(b);
  let addr = base;
  while (addr < end) {
    const x = ca(addr);
    const y = cb(addr);
    const next = Math.min(end, x.end, y.end);
    let cls = same;
    let idx = -1;
    if (x.cls !== y.cls) {
      cls = differs;
      const k = `${x.cls},${y.cls}`;
      let j = pairIndex.get(k);
      if (j === undefined) {
        j = pairs.length;
        pairs.push([x.cls, y.cls]);
        pairIndex.set(k, j);
      }
      idx = j;
    }
    const n = out.start.length - 1;
    if (n >= 0 && out.cls[n] === cls && out.idx[n] === idx) out.end[n] = next;
    else {
      out.start.push(addr);
      out.end.push(next);
      out.cls.push(cls);
      out.idx.push(idx);
    }
    addr = next;
  }
  return { pieces: out, pairs };
}

interface Bucket {
  /** cls -> [pages, regions, first piece ordinal, last piece ordinal] */
  h: Map<number, [number, number, number, number]>;
}

/**
 * mapAggregate - segments ([pages, cls, idx] triples, see MapDataset) for
 * @pieces over [base, end) with detail @granule bytes (a power-of-two number
 * of pages; PAGE_SIZE = exact). A granule that holds one piece only stays
 * pure; one that mixes pieces becomes an aggregate with per-class page and
 * region counts, and consecutive aggregates with the same set of classes merge.
 */
export function mapAggregate(pieces: MapPieces, base: number, end: number, granule: number): { seg: number[]; mix: number[][] } {
  const seg: number[] = [];
  const mixes: Bucket[] = [];
  const mixKeys: string[] = [];
  let lastMixed = false;
  const pushPure = (pages: number, cls: number, idx: number): void => {
    const n = seg.length - 3;
    if (n >= 0 && !lastMixed && seg[n + 1] === cls && seg[n + 2] === idx) seg[n] = seg[n]! + pages;
    else seg.push(pages, cls, idx);
    lastMixed = false;
  };
  const pushBucket = (pages: number, b: Bucket): void => {
    if (b.h.size === 1) {
      const [cls, v] = [...b.h][0]!;
      if (v[1] === 1) {
        pushPure(pages, cls, pieceIdx(v[2]));
        return;
      }
    }
    const key = [...b.h.keys()].sort((x, y) => x - y).join(",");
    const n = seg.length - 3;
    if (n >= 0 && lastMixed && mixKeys[seg[n + 2]!] === key) {
      const prev = mixes[seg[n + 2]!]!;
      for (const [c, v] of b.h) {
        const w = prev.h.get(c)!;
        w[0] += v[0];
        w[1] += v[1] - (w[3] === v[2] ? 1 : 0);
        w[3] = v[3];
      }
      seg[n] = seg[n]! + pages;
    } else {
      seg.push(pages, -1, mixes.length);
      mixes.push(b);
      mixKeys.push(key);
    }
    lastMixed = true;
  };
  // Pieces are addressed through ordinals so that a region spanning two granules counts once in a merged aggregate.
  const pieceIdx = (ord: number): number => (ord < 0 ? -1 : pieces.idx[ord]!);
  const g = granule;
  let bucket: Bucket | undefined;
  let bucketStart = base;
  const add = (ord: number, cls: number, bytes: number): void => {
    bucket ??= { h: new Map() };
    const v = bucket.h.get(cls);
    if (!v) bucket.h.set(cls, [bytes / PAGE_SIZE, 1, ord, ord]);
    else {
      v[0] += bytes / PAGE_SIZE;
      if (v[3] !== ord) v[1] += 1;
      v[3] = ord;
    }
  };
  const flush = (upTo: number): void => {
    if (bucket) pushBucket((upTo - bucketStart) / PAGE_SIZE, bucket);
    bucket = undefined;
  };
  const handle = (ps: number, pe: number, cls: number, ord: number): void => {
    let p = ps;
    while (p < pe) {
      const gStart = base + Math.floor((p - base) / g) * g;
      const gEnd = Math.min(end, gStart + g);
      if (!bucket && p === gStart && pe >= gEnd) {
        // Whole granules: one pure run up to the last granule boundary inside the piece.
        const whole = pe >= end ? end : base + Math.floor((pe - base) / g) * g;
        pushPure((whole - p) / PAGE_SIZE, cls, pieceIdx(ord));
        p = whole;
        continue;
      }
      if (!bucket) bucketStart = gStart;
      const q = Math.min(pe, gEnd);
      add(ord, cls, q - p);
      p = q;
      if (p === gEnd) flush(gEnd);
    }
  };
  // Gaps between pieces (and around them) are "outside" (class 0) with no region.
  let addr = base;
  for (let i = 0; i < pieces.start.length && addr < end; i++) {
    const s = Math.max(pieces.start[i]!, base);
    const e = Math.min(pieces.end[i]!, end);
    if (e <= addr) continue;
    if (s > addr) {
      handle(addr, Math.min(s, end), 0, -1);
      addr = Math.min(s, end);
    }
    if (s >= end) break;
    handle(Math.max(s, addr), e, pieces.cls[i]!, i);
    addr = e;
  }
  if (addr < end) handle(addr, end, 0, -1);
  flush(end);
  const mix = mixes.map((b) => {
    const out: number[] = [];
    for (const [c, v] of [...b.h].sort((x, y) => x[0] - y[0])) out.push(c, v[0], v[1]);
    return out;
  });
  return { seg, mix };
}

/**
 * mapSegmentsAtLeast - a lower bound on the segments mapAggregate(@pieces,
 * @base, @end, @granule) returns, in one pass without allocation: (a) pieces
 * holding a whole granule (each gives a pure segment, unless the previous
 * such piece has the same class and region) plus (b) maximal runs of granules
 * with a boundary inside them (each such granule is mixed; mixed granules
 * merge only when adjacent, never with a pure one). Every piece's start and
 * end is a boundary.
 */
export function mapSegmentsAtLeast(pieces: MapPieces, base: number, end: number, granule: number): number {
  const g = granule;
  let pure = 0;
  let pureCls = NaN;
  let pureIdx = NaN;
  let runs = 0;
  let lastMixed = -2;
  const boundary = (at: number): void => {
    if (at <= base || at >= end) return;
    const k = Math.floor((at - base) / g);
    if (base + k * g === at) return; // on a granule edge: no granule is split
    if (k > lastMixed + 1) runs++;
    lastMixed = k;
  };
  for (let i = 0; i < pieces.start.length; i++) {
    const s = Math.max(pieces.start[i]!, base);
    const e = Math.min(pieces.end[i]!, end);
    if (e <= s) continue;
    // Every piece edge: mapAggregate counts two touching pieces as two regions even with one class and index.
    boundary(s);
    boundary(e);
    const firstWhole = base + Math.ceil((s - base) / g) * g;
    if (firstWhole + g <= e || (firstWhole < e && e === end)) {
      if (pieces.cls[i] !== pureCls || pieces.idx[i] !== pureIdx) pure++;
      pureCls = pieces.cls[i]!;
      pureIdx = pieces.idx[i]!;
    }
  }
  return pure + runs;
}

/**
 * mapAggregateCapped - exact segments when they fit @cap, else the smallest
 * power-of-two granule (in pages) whose aggregation fits. Granules whose
 * lower bound (mapSegmentsAtLeast) already exceeds @cap are not aggregated:
 * a 1M-folio handoff skips its 2M-segment exact pass.
 */
export function mapAggregateCapped(pieces: MapPieces, base: number, end: number, cap: number): { seg: number[]; mix: number[][]; granule: number } {
  for (let granule = PAGE_SIZE; ; granule *= 2) {
    const last = granule >= end - base;
    if (!last && mapSegmentsAtLeast(pieces, base, end, granule) > cap) continue;
    const r = mapAggregate(pieces, base, end, granule);
    if (r.seg.length / 3 <= cap || last) return { ...r, granule };
  }
}

export interface MapDatasetInput {
  title: string;
  role: string;
  base: number;
  size: number;
  pieces: MapPieces;
  chunks: readonly number[];
  marks: MapMark[];
  pairs?: number[][];
  /** Cap on embedded segments (MAP_DEFAULT_DETAIL). */
  detail?: number;
}

/** mapDataset - aggregate @input to at most `detail` segments. */
export function mapDataset(input: MapDatasetInput): MapDataset {
  const end = input.base + input.size;
  const a = mapAggregateCapped(input.pieces, input.base, end, input.detail ?? MAP_DEFAULT_DETAIL);
  const ds: MapDataset = {
    title: input.title,
    role: input.role,
    base: input.base,
    size: input.size,
    granule: a.granule,
    regionCount: input.pieces.start.length,
    seg: a.seg,
    mix: a.mix,
    chunkPages: input.chunks.map((c, i) => (i === 0 ? c / PAGE_SIZE : (c - input.chunks[i - 1]!) / PAGE_SIZE)),
    marks: input.marks,
  };
  if (input.pairs) ds.pairs = input.pairs;
  return ds;
}

/**
 * mapMarks - callouts for the KHO structures, the scratch areas, the first
 * chunk, the first lost page and, given NUMA @banks, where each node's
 * memory starts.
 */
export function mapMarks(regions: readonly Region[], chunks: readonly number[], classes: readonly MapClass[], banks?: readonly RamBank[]): MapMark[] {
  const index = mapClassIndex(classes);
  const marks: MapMark[] = [];
  let node = -1;
  for (const b of banks ?? []) {
    if (b.node !== node) marks.push({ start: b.base, end: b.base + PAGE_SIZE, cls: index.get("free")!, label: `node ${b.node} starts` });
    node = b.node;
  }
  const byKey = new Map<string, MapMark>();
  for (const r of regions) {
    if (r.kind === "kho-fdt" || r.kind === "scratch-array" || r.kind === "subtree-fdt" || r.kind === "subtree-info" || r.kind === "scratch") {
      // A landmark split by a higher-priority region is still one landmark.
      const key = `${r.kind}:${r.index ?? -1}`;
      const prev = byKey.get(key);
      if (prev) prev.end = Math.max(prev.end, r.end);
      else {
        const m = { start: r.start, end: r.end, cls: index.get(r.kind)!, label: r.label };
        byKey.set(key, m);
        marks.push(m);
      }
    }
  }
  const lost = regions.find((r) => r.kind === "lost");
  if (lost) marks.push({ start: lost.start, end: lost.end, cls: index.get("lost")!, label: `first ${lost.label}` });
  if (chunks.length > 0) {
    marks.push({ start: chunks[0]!, end: chunks[0]! + PAGE_SIZE, cls: index.get("chunk")!, label: `chunk 0 (metadata${chunks.length > 1 ? `, ${chunks.length} chunks` : ""})` });
  }
  return marks.sort((x, y) => x.start - y.start);
}
