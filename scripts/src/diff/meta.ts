/*
 * The metadata side of a diff: preserved ranges compared by start address,
 * the chunk lists compared by chunk address and next pointer, and one chunk
 * page decoded on both sides (header fields and the entries whose bytes
 * differ). Pure functions of decoded data and page bytes.
 */
import { KHOSER_CHUNK_HDR_NEXT, KHOSER_CHUNK_HDR_NUM_RANGES, KHOSER_MEM_RANGE_DATA, KHOSER_MEM_RANGE_SIZE, KHOSER_MEM_RANGE_SIZE_FIELD, KHOSER_MEM_RANGE_START, KHOSER_RANGES_PER_CHUNK, PAGE_SIZE, khoserRangeOffset } from "@khosim/shared/abi";
import { ByteReader } from "@khosim/shared/lib";
import { describeData } from "../inspect.js";
import { type KhoMemRange } from "@khosim/shared/kho";

/* ---------------------------------------------------------------- ranges */

/** A preserved range on one side. */
export interface RangeInfo {
  start: number;
  size: number;
  data: number;
  /** "order-3 folios" / "phys range". */
  label: string;
}

export interface RangeResized {
  start: number;
  a: RangeInfo;
  b: RangeInfo;
  /** Changed pages inside the part both sides cover. */
  changedPages: number;
}

/** Same start and size; another `data` field and/or other bytes. */
export interface RangeDataChanged {
  start: number;
  size: number;
  a: RangeInfo;
  b: RangeInfo;
  /** The khoser_mem_range.data fields differ (another folio order or kind). */
  dataField: boolean;
  /** Pages of the range whose bytes differ. */
  changedPages: number;
}

export interface RangeDiff {
  /** Ranges on each side. */
  countA: number;
  countB: number;
  /** How many ranges each list below has in full (the lists hold at most `limit`). */
  counts: { added: number; removed: number; resized: number; dataChanged: number };
  /** In B only (by start address). */
  added: RangeInfo[];
  /** In A only. */
  removed: RangeInfo[];
  /** Same start, other size. */
  resized: RangeResized[];
  dataChanged: RangeDataChanged[];
  /** Ranges equal in start, size and data whose bytes are equal too. */
  unchanged: number;
}

/* Labels by data value: a handful of distinct values among a million ranges. */
const labels = new Map<number, string>();

function info(r: KhoMemRange): RangeInfo {
  let label = labels.get(r.data);
  if (label === undefined) labels.set(r.data, (label = describeData(r.data)));
  return { start: r.start, size: r.size, data: r.data, label };
}

const byStart = (x: KhoMemRange, y: KhoMemRange): number => x.start - y.start;

function sortedByStart(rs: readonly KhoMemRange[]): readonly KhoMemRange[] {
  for (let i = 1; i < rs.length; i++) if (rs[i]!.start < rs[i - 1]!.start) return [...rs].sort(byStart);
  return rs;
}

/**
 * diffRanges - compare two range lists by start address: a merge of both
 * lists in address order (walked lists are ascending already; others are
 * sorted first), so a million ranges cost no hashing.
 * @changedPages: changed pages of physical [start, end) (0 when unknown),
 * asked in ascending order of start (pageCounter() answers that in one pass);
 * ranges are compared at the same physical address on both sides.
 * @limit: keep at most this many entries per list (0: all); `counts` stay
 * exact, and only the kept entries are built.
 */
export function diffRanges(a: readonly KhoMemRange[], b: readonly KhoMemRange[], changedPages: (start: number, end: number) => number, limit = 0): RangeDiff {
  const d: RangeDiff = { countA: a.length, countB: b.length, counts: { added: 0, removed: 0, resized: 0, dataChanged: 0 }, added: [], removed: [], resized: [], dataChanged: [], unchanged: 0 };
  const c = d.counts;
  const keep = (n: number): boolean => limit === 0 || n < limit;
  const sa = sortedByStart(a);
  const sb = sortedByStart(b);
  let i = 0;
  let j = 0;
  while (i < sa.length || j < sb.length) {
    const ra = sa[i];
    const rb = sb[j];
    if (rb === undefined || (ra !== undefined && ra.start < rb.start)) {
      if (keep(c.removed++)) d.removed.push(info(ra!));
      i++;
      continue;
    }
    if (ra === undefined || rb.start < ra.start) {
      if (keep(c.added++)) d.added.push(info(rb));
      j++;
      continue;
    }
    i++;
    j++;
    if (ra.size !== rb.size) {
      const pages = changedPages(ra.start, ra.start + Math.min(ra.size, rb.size));
      if (keep(c.resized++)) d.resized.push({ start: ra.start, a: info(ra), b: info(rb), changedPages: pages });
      continue;
    }
    const pages = changedPages(ra.start, ra.start + ra.size);
    if (pages > 0 || ra.data !== rb.data) {
      if (keep(c.dataChanged++)) d.dataChanged.push({ start: ra.start, size: ra.size, a: info(ra), b: info(rb), dataField: ra.data !== rb.data, changedPages: pages });
    } else {
      d.unchanged++;
    }
  }
  return d;
}

export function rangeDiffEmpty(d: RangeDiff): boolean {
  return d.counts.added + d.counts.removed + d.counts.resized + d.counts.dataChanged === 0;
}

/* ---------------------------------------------------------------- chunks */

/**
 * A metadata page in list order. For the ranges format (a linked list of
 * khoser_mem_chunk pages) its header as found by following next pointers;
 * other formats' metadata pages have no next/num_ranges (undefined).
 */
export interface ChunkLink {
  addr: number;
  next?: bigint;
  numRanges?: bigint;
}

/** Why a lenient chain follow stopped before next = 0 (undefined: it did not). */
export type ChainStop = string | undefined;

/**
 * followChunks - the chunk list as the pointers say, without judging the
 * entries: start at @metadata, read each header with @readPage (undefined for
 * a page that cannot be read: unaligned or outside RAM) and stop at next = 0,
 * an unreadable page, a cycle, or @limit chunks. Meant to show a list the
 * careful walk refused.
 */
export function followChunks(metadata: bigint, readPage: (phys: number) => Uint8Array | undefined, limit: number): { chunks: ChunkLink[]; stop: ChainStop } {
  const chunks: ChunkLink[] = [];
  const seen = new Set<number>();
  let ptr = metadata;
  while (ptr !== 0n) {
    if (chunks.length >= limit) return { chunks, stop: `more than ${limit} chunks` };
    if (ptr > BigInt(Number.MAX_SAFE_INTEGER) || ptr % BigInt(PAGE_SIZE) !== 0n) return { chunks, stop: `pointer 0x${ptr.toString(16)} is not a page in RAM` };
    const addr = Number(ptr);
    if (seen.has(addr)) return { chunks, stop: `cycle back to 0x${addr.toString(16)}` };
    const page = readPage(addr);
    if (!page) return { chunks, stop: `pointer 0x${ptr.toString(16)} is not a page in RAM` };
    seen.add(addr);
    const r = new ByteReader(page);
    const next = r.u64le(KHOSER_CHUNK_HDR_NEXT);
    chunks.push({ addr, next, numRanges: r.u64le(KHOSER_CHUNK_HDR_NUM_RANGES) });
    ptr = next;
  }
  return { chunks, stop: undefined };
}

export interface ChunkRef {
  addr: number;
  /** Position in the list. */
  index: number;
  next?: bigint;
  numRanges?: bigint;
}

export interface ChunkRelinked {
  addr: number;
  a: ChunkRef;
  b: ChunkRef;
}

export interface ChunkDiff {
  countA: number;
  countB: number;
  /** /preserved-memory/metadata on each side (undefined: not decoded). */
  metadataA?: bigint;
  metadataB?: bigint;
  /** In B's list only. */
  added: ChunkRef[];
  /** In A's list only. */
  removed: ChunkRef[];
  /** In both lists, with another next pointer (both known). */
  relinked: ChunkRelinked[];
  /** In both lists at another position, next unchanged. */
  moved: ChunkRelinked[];
}

/** diffChunks - compare two chunk lists by chunk address and next pointer. */
export function diffChunks(a: readonly ChunkLink[], b: readonly ChunkLink[], metadataA?: bigint, metadataB?: bigint): ChunkDiff {
  const ref = (c: ChunkLink, index: number): ChunkRef => {
    const r: ChunkRef = { addr: c.addr, index };
    if (c.next !== undefined) r.next = c.next;
    if (c.numRanges !== undefined) r.numRanges = c.numRanges;
    return r;
  };
  const inB = new Map<number, ChunkRef>();
  b.forEach((c, i) => inB.set(c.addr, ref(c, i)));
  const d: ChunkDiff = { countA: a.length, countB: b.length, added: [], removed: [], relinked: [], moved: [] };
  if (metadataA !== undefined) d.metadataA = metadataA;
  if (metadataB !== undefined) d.metadataB = metadataB;
  const seen = new Set<number>();
  a.forEach((c, i) => {
    const ra = ref(c, i);
    const rb = inB.get(c.addr);
    if (!rb) return d.removed.push(ra);
    seen.add(c.addr);
    if (ra.next !== undefined && rb.next !== undefined && ra.next !== rb.next) d.relinked.push({ addr: c.addr, a: ra, b: rb });
    else if (ra.index !== rb.index) d.moved.push({ addr: c.addr, a: ra, b: rb });
    return undefined;
  });
  b.forEach((c, i) => {
    if (!seen.has(c.addr)) d.added.push(ref(c, i));
  });
  return d;
}

export function chunkDiffEmpty(d: ChunkDiff): boolean {
  return d.added.length + d.removed.length + d.relinked.length + d.moved.length === 0 && d.metadataA === d.metadataB;
}

/** One khoser_mem_range slot as raw u64s. */
export interface RawEntry {
  start: bigint;
  size: bigint;
  data: bigint;
}

export interface ChunkEntryDiff {
  /** Slot index 0..169 (slots past num_ranges included: they should be zero). */
  index: number;
  a: RawEntry;
  b: RawEntry;
}

/** A chunk page that differs, decoded on both sides. */
export interface ChunkPageDiff {
  /** Position of this page in each side's chunk list (undefined: not a chunk there). */
  indexA?: number;
  indexB?: number;
  next: { a: bigint; b: bigint };
  numRanges: { a: bigint; b: bigint };
  /** Header fields whose bytes differ: "next", "num_ranges". */
  header: string[];
  /** Slots whose 24 bytes differ, ascending (capped by @maxEntries). */
  entries: ChunkEntryDiff[];
  /** All differing slots. */
  entriesChanged: number;
}

function rawEntry(r: ByteReader, i: number): RawEntry {
  const o = khoserRangeOffset(i);
  return { start: r.u64le(o + KHOSER_MEM_RANGE_START), size: r.u64le(o + KHOSER_MEM_RANGE_SIZE_FIELD), data: r.u64le(o + KHOSER_MEM_RANGE_DATA) };
}

function bytesEqual(a: Uint8Array, b: Uint8Array, off: number, len: number): boolean {
  for (let i = off; i < off + len; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * diffChunkPage - decode a page that is a chunk on at least one side, from
 * both sides' bytes (@pageA, @pageB: PAGE_SIZE each).
 */
export function diffChunkPage(pageA: Uint8Array, pageB: Uint8Array, indexA?: number, indexB?: number, maxEntries = Infinity): ChunkPageDiff {
  const ra = new ByteReader(pageA);
  const rb = new ByteReader(pageB);
  const d: ChunkPageDiff = {
    next: { a: ra.u64le(KHOSER_CHUNK_HDR_NEXT), b: rb.u64le(KHOSER_CHUNK_HDR_NEXT) },
    numRanges: { a: ra.u64le(KHOSER_CHUNK_HDR_NUM_RANGES), b: rb.u64le(KHOSER_CHUNK_HDR_NUM_RANGES) },
    header: [],
    entries: [],
    entriesChanged: 0,
  };
  if (indexA !== undefined) d.indexA = indexA;
  if (indexB !== undefined) d.indexB = indexB;
  if (d.next.a !== d.next.b) d.header.push("next");
  if (d.numRanges.a !== d.numRanges.b) d.header.push("num_ranges");
  for (let i = 0; i < KHOSER_RANGES_PER_CHUNK; i++) {
    const o = khoserRangeOffset(i);
    if (bytesEqual(pageA, pageB, o, KHOSER_MEM_RANGE_SIZE)) continue;
    d.entriesChanged++;
    if (d.entries.length < maxEntries) d.entries.push({ index: i, a: rawEntry(ra, i), b: rawEntry(rb, i) });
  }
  return d;
}
