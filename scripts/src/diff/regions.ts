/*
 * What a physical page is, answered per address without labelling all of RAM.
 *
 * inspect.ts's flattenRegions() turns every labelled thing (each preserved
 * range, each chunk page, the KHO FDT, scratch, ...) into disjoint Region
 * objects covering RAM: two million objects and strings per side for a
 * handoff of 1M isolated ranges, nearly all of them never looked at, since
 * diff labels only the pages that changed. regionIndex() answers the same
 * question lazily: preserved ranges stay in the walk's ascending array,
 * chunk pages go into a sorted Float64Array, the few other labelled regions
 * into a short list, and a lookup is two binary searches; labels are built
 * for the hits only. The answers are those of flattenRegions() + regionAt()
 * (pinned by a property test); when the fast path's assumptions do not hold
 * (unsorted or overlapping ranges or chunk pages, which the careful walk never
 * returns), it falls back to flattenRegions().
 */
import { PAGE_SIZE } from "@khosim/shared/abi";
import type { KhoMemRange } from "@khosim/shared/kho";
import { PRIORITY, describeData, flattenRegions, regionAt, type Region } from "../inspect.js";

/** A labelled region as a lookup returns it: what it is and where its (merged) region ends. */
export type RegionHit = Pick<Region, "kind" | "label" | "index" | "data" | "end">;

/** What a page of one side's RAM is. */
export interface RegionLookup {
  /**
   * labelAt - the region containing @phys, as flattenRegions() + regionAt() would
   * give it (kind, label, index, data and the region's end), or undefined
   * outside RAM.
   */
  labelAt(phys: number): RegionHit | undefined;
}


/**
 * lookupOfRegions - a RegionLookup over regions already flattened
 * (flattenRegions()'s output: disjoint, ascending), by binary search.
 */
export function lookupOfRegions(regions: readonly Region[]): RegionLookup {
  return { labelAt: (phys) => regionAt(regions, phys) };
}

/** What one side's RAM holds, as decoded (the inputs of flattenRegions, kept apart). */
export interface RegionSources {
  /** RAM [base, end). */
  base: number;
  end: number;
  /** The few other labelled regions: scratch areas, KHO FDT, scratch array, kho_test FDT and info blob. */
  others: readonly Region[];
  /** Metadata pages in walk order; page i is labelled `${chunkName} ${i}`. */
  chunks: readonly number[];
  /** "chunk", or "radix metadata page" and the like. */
  chunkName: string;
  /** Preserved ranges in list order; range i is labelled describeData(data), index i. */
  ranges: readonly KhoMemRange[];
  /** diff --kernel: the lost pages (lostRegions: ascending, disjoint, kind "lost", above everything else). */
  lost?: readonly Region[];
}

/** The labelled regions of @src as inspect.ts lists them (for the fallback and the tests). */
export function labelledRegions(src: RegionSources): Region[] {
  const out: Region[] = [...src.others, ...(src.lost ?? [])];
  src.ranges.forEach((r, i) => out.push({ start: r.start, end: r.start + r.size, kind: "preserved", label: describeData(r.data), data: r.data, index: i }));
  src.chunks.forEach((c, i) => out.push({ start: c, end: c + PAGE_SIZE, kind: "chunk", label: `${src.chunkName} ${i}`, index: i }));
  return out;
}

/* Ranges ascending, disjoint, non-empty and inside RAM (what the careful walk returns). */
function rangesFit(rs: readonly KhoMemRange[], base: number, end: number): boolean {
  let prevEnd = base;
  for (let i = 0; i < rs.length; i++) {
    const r = rs[i]!;
    if (!(r.start >= prevEnd && r.size > 0 && r.start + r.size <= end)) return false;
    prevEnd = r.start + r.size;
  }
  return true;
}

/** Index of the last element <= @v in ascending @a (by @key), or -1. */
function lastAtOrBelow(n: number, key: (i: number) => number, v: number): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (key(mid) <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/**
 * regionIndex - a RegionLookup over @src that labels only what is asked for.
 * Same answers as flattenRegions(base, end, labelledRegions(src)) + regionAt().
 */
export function regionIndex(src: RegionSources): RegionLookup {
  const { base, end, ranges } = src;
  // Chunk pages sorted by address, with their list index.
  const order = Array.from(src.chunks.keys()).sort((x, y) => src.chunks[x]! - src.chunks[y]! || x - y);
  const chunkAt = new Float64Array(order.length);
  const chunkIdx = new Int32Array(order.length);
  let chunksFit = true;
  order.forEach((ci, k) => {
    const c = src.chunks[ci]!;
    chunkAt[k] = c;
    chunkIdx[k] = ci;
    if (c < base || c + PAGE_SIZE > end || (k > 0 && c < chunkAt[k - 1]! + PAGE_SIZE)) chunksFit = false;
  });
  const lost = src.lost ?? [];
  let lostFit = true;
  for (let i = 0; i < lost.length; i++) if (lost[i]!.kind !== "lost" || lost[i]!.start < base || lost[i]!.end > end || (i > 0 && lost[i]!.start < lost[i - 1]!.end)) lostFit = false;
  if (!chunksFit || !lostFit || !rangesFit(ranges, base, end)) return lookupOfRegions(flattenRegions(base, end, labelledRegions(src)));

  // The others clipped to RAM, empty ones dropped, in flattenRegions' order (stable by start): the first wins a tie.
  const others = src.others
    .map((r, i) => ({ r, i }))
    .sort((x, y) => x.r.start - y.r.start || x.i - y.i)
    .map(({ r }) => ({ r, start: Math.max(base, Math.min(end, r.start)), end: Math.max(base, Math.min(end, r.end)), prio: PRIORITY[r.kind] }))
    .filter((o) => o.end > o.start);
  const chunkPrio = PRIORITY.chunk;
  const rangePrio = PRIORITY.preserved;
  const rangeLabels = new Map<number, string>();
  const rangeLabel = (data: number): string => {
    let s = rangeLabels.get(data);
    if (s === undefined) rangeLabels.set(data, (s = describeData(data)));
    return s;
  };
  const chunkKey = (i: number): number => chunkAt[i]!;
  const rangeKey = (i: number): number => ranges[i]!.start;

  /* The winner at @phys and where it stops winning (one piece of flattenRegions, before merging). */
  const lostKey = (i: number): number => lost[i]!.start;
  const piece = (phys: number): RegionHit => {
    // Lost pages win over everything (PRIORITY.lost is the highest); else the rest stops where the next lost run starts.
    const li = lastAtOrBelow(lost.length, lostKey, phys);
    if (li >= 0 && phys < lost[li]!.end) return { kind: "lost", label: lost[li]!.label, end: lost[li]!.end };
    const nextLost = li + 1 < lost.length ? lost[li + 1]!.start : end;
    // The winner: the highest priority among what covers phys (the first of equals).
    let prio = -1;
    let limit = end;
    let hit: RegionHit | undefined;
    for (const o of others) {
      if (o.start <= phys && phys < o.end && o.prio > prio) {
        prio = o.prio;
        limit = o.end;
        hit = { kind: o.r.kind, label: o.r.label, end: 0 };
        if (o.r.index !== undefined) hit.index = o.r.index;
        if (o.r.data !== undefined) hit.data = o.r.data;
      }
    }
    const k = lastAtOrBelow(chunkAt.length, chunkKey, phys);
    if (chunkPrio > prio && k >= 0 && phys < chunkAt[k]! + PAGE_SIZE) {
      prio = chunkPrio;
      limit = chunkAt[k]! + PAGE_SIZE;
      hit = { kind: "chunk", label: `${src.chunkName} ${chunkIdx[k]!}`, index: chunkIdx[k]!, end: 0 };
    }
    const j = lastAtOrBelow(ranges.length, rangeKey, phys);
    if (rangePrio > prio && j >= 0 && phys < ranges[j]!.start + ranges[j]!.size) {
      const r = ranges[j]!;
      prio = rangePrio;
      limit = r.start + r.size;
      hit = { kind: "preserved", label: rangeLabel(r.data), index: j, data: r.data, end: 0 };
    }
    // It lasts until it ends or something of higher priority starts (free: anything).
    for (const o of others) if (o.prio > prio && o.start > phys && o.start < limit) limit = o.start;
    if (chunkPrio > prio && k + 1 < chunkAt.length) limit = Math.min(limit, chunkAt[k + 1]!);
    if (rangePrio > prio && j + 1 < ranges.length) limit = Math.min(limit, ranges[j + 1]!.start);
    limit = Math.min(limit, nextLost);
    if (!hit) return { kind: "free", label: "free", end: limit };
    hit.end = limit;
    return hit;
  };

  return {
    labelAt(phys: number): RegionHit | undefined {
      if (phys < base || phys >= end) return undefined;
      const hit = piece(phys);
      // flattenRegions merges neighbouring pieces that say the same (two regions of one kind and label, no index).
      while (hit.end < end) {
        const next = piece(hit.end);
        if (next.kind !== hit.kind || next.label !== hit.label || next.index !== hit.index) break;
        hit.end = next.end;
      }
      return hit;
    },
  };
}
