/*
 * Page comparison of two RAM images, and grouping of the changed pages into
 * runs that mean one thing on each side.
 *
 * Only the given extents are read: the union of both images' data extents
 * when they are known (a range that is a hole in both reads as zeros in both
 * and is equal), else the whole common part. Blocks are compared whole and
 * only a differing block is compared page by page; with `stats`, the pages
 * that hold data (non-zero on either side) are counted too, so a page of
 * zeros counts as a hole whether or not it was written. The reader is a
 * callback, so the core runs on files (scripts/src/diff.ts) and on buffers
 * (tests) alike.
 */
import { PAGE_SIZE, khoDataIsFolio, khoDataOrder, ramPhysOfFileOffset, type RamBank } from "@khosim/shared/abi";
import { hex } from "@khosim/shared/lib";
import { isZero, type Extent } from "../holes.js";
import type { RegionKind } from "../inspect.js";
import type { RegionHit, RegionLookup } from "./regions.js";

/** Bytes compared at once before drilling down to pages. */
export const DIFF_BLOCK_SIZE = 1 << 20;
/** Block size when whole images are read (large reads, few system calls). */
export const SCAN_BLOCK_SIZE = 8 << 20;

/** Consecutive changed pages, as image offsets: [start, end), page aligned. */
export interface OffsetRun {
  start: number;
  end: number;
}

/**
 * unionExtents - the merged union of @a and @b, widened to whole pages and
 * clipped to [0, @limit). Inputs need not be sorted.
 */
export function unionExtents(a: readonly Extent[], b: readonly Extent[], limit: number): Extent[] {
  const all = [...a, ...b]
    .map((e) => ({ start: Math.max(0, Math.floor(e.start / PAGE_SIZE) * PAGE_SIZE), end: Math.min(limit, Math.ceil(e.end / PAGE_SIZE) * PAGE_SIZE) }))
    .filter((e) => e.end > e.start)
    .sort((x, y) => x.start - y.start);
  const out: Extent[] = [];
  for (const e of all) {
    const last = out[out.length - 1];
    if (last && e.start <= last.end) last.end = Math.max(last.end, e.end);
    else out.push({ ...e });
  }
  return out;
}

/** extentBytes - total bytes of @extents. */
export function extentBytes(extents: readonly Extent[]): number {
  return extents.reduce((n, e) => n + (e.end - e.start), 0);
}

/**
 * Fill @buf with @side's bytes at image offset @offset (0 = A, 1 = B). Bytes
 * past the end of a file must read as zero.
 */
export type BlockReader = (side: 0 | 1, offset: number, buf: Buffer) => void;

export interface ComparePagesOptions {
  /** Block size, a multiple of PAGE_SIZE (DIFF_BLOCK_SIZE). */
  blockSize?: number;
  /** Called after each block with the bytes compared so far. */
  onProgress?: (done: number) => void;
  /** When given, filled with what was found besides the changed pages. */
  stats?: CompareStats;
}

export interface CompareStats {
  /** Bytes of the pages that are non-zero on A or on B (changed or not). */
  dataBytes: number;
}

/**
 * comparePages - compare both images over @extents (sorted, disjoint, page
 * aligned, as unionExtents returns) and return the changed pages as merged
 * runs of image offsets, ascending.
 */
export function comparePages(read: BlockReader, extents: readonly Extent[], opts: ComparePagesOptions = {}): OffsetRun[] {
  const block = opts.blockSize ?? DIFF_BLOCK_SIZE;
  if (block <= 0 || block % PAGE_SIZE !== 0) throw new RangeError(`block size ${block} is not a positive multiple of ${PAGE_SIZE}`);
  const bufA = Buffer.alloc(block);
  const bufB = Buffer.alloc(block);
  const runs: OffsetRun[] = [];
  const mark = (start: number): void => {
    const last = runs[runs.length - 1];
    if (last && last.end === start) last.end = start + PAGE_SIZE;
    else runs.push({ start, end: start + PAGE_SIZE });
  };
  let done = 0;
  for (const e of extents) {
    for (let off = e.start; off < e.end; off += block) {
      const len = Math.min(block, e.end - off);
      const a = len === block ? bufA : bufA.subarray(0, len);
      const b = len === block ? bufB : bufB.subarray(0, len);
      read(0, off, a);
      read(1, off, b);
      const stats = opts.stats;
      if (!a.equals(b)) {
        for (let p = 0; p < len; p += PAGE_SIZE) {
          const n = Math.min(PAGE_SIZE, len - p);
          if (Buffer.compare(a.subarray(p, p + n), b.subarray(p, p + n)) !== 0) {
            mark(off + p);
            if (stats) stats.dataBytes += n;
          } else if (stats && !isZero(a.subarray(p, p + n))) stats.dataBytes += n;
        }
      } else if (stats && !isZero(a)) {
        for (let p = 0; p < len; p += PAGE_SIZE) {
          const n = Math.min(PAGE_SIZE, len - p);
          if (!isZero(a.subarray(p, p + n))) stats.dataBytes += n;
        }
      }
      done += len;
      opts.onProgress?.(done);
    }
  }
  return runs;
}

/** countPages - pages in @runs. */
export function countPages(runs: readonly OffsetRun[]): number {
  return runs.reduce((n, r) => n + (r.end - r.start) / PAGE_SIZE, 0);
}

/**
 * pagesIn - changed pages of @runs (sorted image offsets) inside image
 * offsets [start, end): binary search, then a walk over the overlapping runs.
 */
export function pagesIn(runs: readonly OffsetRun[], start: number, end: number): number {
  let lo = 0;
  let hi = runs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (runs[mid]!.end <= start) lo = mid + 1;
    else hi = mid;
  }
  let n = 0;
  for (let i = lo; i < runs.length && runs[i]!.start < end; i++) {
    n += (Math.min(end, runs[i]!.end) - Math.max(start, runs[i]!.start)) / PAGE_SIZE;
  }
  return n;
}

/**
 * pageCounter - pagesIn() over @runs for windows asked in ascending order
 * (the ranges of a sorted list): a cursor that only moves forward, so a
 * million windows cost one pass over the runs. A window that starts below
 * the previous one is answered by binary search, as pagesIn().
 */
export function pageCounter(runs: readonly OffsetRun[]): (start: number, end: number) => number {
  let lo = 0;
  let prev = -Infinity;
  return (start, end) => {
    if (start < prev) return pagesIn(runs, start, end);
    prev = start;
    while (lo < runs.length && runs[lo]!.end <= start) lo++;
    let n = 0;
    for (let i = lo; i < runs.length && runs[i]!.start < end; i++) n += (Math.min(end, runs[i]!.end) - Math.max(start, runs[i]!.start)) / PAGE_SIZE;
    return n;
  };
}

/** What a page is on one side of the diff. */
export interface PageSide {
  kind: RegionKind;
  /** inspect.ts's label: "order-3 folios", "chunk 2", "scratch area 0", "free", ... */
  label: string;
  /** Range index (preserved) or chunk index (chunk) in list order. */
  index?: number;
  /** khoser_mem_range.data of a preserved range. */
  data?: number;
  /** Folio order of a preserved folio run. */
  order?: number;
}

/** Changed pages that are the same thing on A and the same thing on B. */
export interface ChangedRun {
  /** Image offsets [start, end). Physical addresses are base + offset on each side. */
  start: number;
  end: number;
  a: PageSide;
  b: PageSide;
}

function sideOf(r: RegionHit | undefined): PageSide {
  if (!r) return { kind: "free", label: "outside RAM" };
  const s: PageSide = { kind: r.kind, label: r.label };
  if (r.index !== undefined) s.index = r.index;
  if (r.data !== undefined) {
    s.data = r.data;
    if (khoDataIsFolio(r.data)) s.order = khoDataOrder(r.data);
  }
  return s;
}

function sameSide(x: PageSide, y: PageSide): boolean {
  return x.kind === y.kind && x.label === y.label && x.index === y.index;
}

/** One side's labelled RAM: what each physical address is, RAM base and, with holes, the banks. */
export interface SideRegions {
  base: number;
  regions: RegionLookup;
  banks?: readonly RamBank[] | undefined;
}

/**
 * sidePhys - the physical address of image offset @off on side @s (ram.ts's
 * mapping: banks back to back), and the image offset where its bank ends;
 * phys -1 past the last bank.
 */
export function sidePhys(s: { base: number; banks?: readonly RamBank[] | undefined }, off: number): { phys: number; bankEnd: number } {
  if (!s.banks) return { phys: s.base + off, bankEnd: Infinity };
  let acc = 0;
  for (const b of s.banks) {
    acc += b.size;
    if (off < acc) return { phys: ramPhysOfFileOffset({ base: s.base, size: 0, banks: s.banks }, off), bankEnd: acc };
  }
  return { phys: -1, bankEnd: Infinity };
}

/**
 * classifyRuns - split @changed (image offsets) where either side's region
 * changes and label each piece; neighbouring pieces that mean the same on
 * both sides are merged. Pieces outside a side's RAM are labelled "outside RAM".
 */
export function classifyRuns(changed: readonly OffsetRun[], a: SideRegions, b: SideRegions): ChangedRun[] {
  const out: ChangedRun[] = [];
  for (const run of changed) {
    for (let off = run.start; off < run.end; ) {
      const pa = sidePhys(a, off);
      const pb = sidePhys(b, off);
      const ra = pa.phys < 0 ? undefined : a.regions.labelAt(pa.phys);
      const rb = pb.phys < 0 ? undefined : b.regions.labelAt(pb.phys);
      // A piece never crosses the end of a bank: past it the next bank (after a hole) follows in the image.
      let end = Math.min(run.end, pa.bankEnd, pb.bankEnd);
      if (ra) end = Math.min(end, off + ra.end - pa.phys);
      if (rb) end = Math.min(end, off + rb.end - pb.phys);
      // A region boundary off the page grid cannot split a page.
      end = Math.max(off + PAGE_SIZE, Math.ceil(end / PAGE_SIZE) * PAGE_SIZE);
      end = Math.min(end, run.end);
      const sa = sideOf(ra);
      const sb = sideOf(rb);
      const last = out[out.length - 1];
      if (last && last.end === off && sameSide(last.a, sa) && sameSide(last.b, sb)) last.end = end;
      else out.push({ start: off, end, a: sa, b: sb });
      off = end;
    }
  }
  return out;
}

/** describeSide - "preserved order-10 folios", "chunk 2", "free", "KHO FDT", ... */
export function describeSide(s: PageSide): string {
  return s.kind === "preserved" ? `preserved ${s.label}` : s.label;
}

/** Changed pages per (A kind, B kind) pair, most pages first. */
export interface KindPair {
  a: RegionKind;
  b: RegionKind;
  pages: number;
}

export function pagesByKind(runs: readonly ChangedRun[]): KindPair[] {
  const m = new Map<string, KindPair>();
  for (const r of runs) {
    const k = `${r.a.kind}\0${r.b.kind}`;
    const e = m.get(k) ?? { a: r.a.kind, b: r.b.kind, pages: 0 };
    e.pages += (r.end - r.start) / PAGE_SIZE;
    m.set(k, e);
  }
  return [...m.values()].sort((x, y) => y.pages - x.pages || x.a.localeCompare(y.a) || x.b.localeCompare(y.b));
}

/** A run's address span in hex, "0x42000000-0x423fffff", on the side with @base. */
export function spanText(base: number, start: number, end: number): string {
  return `${hex(base + start)}-${hex(base + end - 1)}`;
}
