/*
 * The "posted" format: the April 2025 linux-mm posting (seed/kho-ranges-code.c)
 * exactly as posted, bugs included, so that its cost can be measured and a
 * careful successor can say what is wrong with what it left in memory.
 *
 * What is reproduced, byte for byte:
 *  - KHOSER_RANGES_SIZE as mis-parenthesised in the posting:
 *    PAGE_SIZE - (sizeof(hdr) / sizeof(range)) = 4096 - 0 = 4096 entries, so
 *    sizeof(struct khoser_mem_chunk) = 16 + 4096 * 24 = 98,320 bytes, not a page;
 *  - kho_mem_serialize() calling new_chunk() for EVERY range: each range gets
 *    a chunk of its own with num_ranges = 1, the "chunk full" test never
 *    fires, and the chunks are linked through hdr.next in range order
 *    (ascending), the last one with next = 0 (kzalloc);
 *  - /preserved-memory/metadata = phys of the first chunk, in a "kho-v1" FDT.
 *
 * Allocation. new_chunk() is kzalloc(98,320). That is above
 * KMALLOC_MAX_CACHE_SIZE (two pages with SLUB), so it is a large kmalloc:
 * kmalloc_large() takes alloc_pages(get_order(98,320)) = an order-5 block of
 * 32 pages (131,072 bytes), 32,752 bytes of it slack. khosim allocates those
 * 32 pages per chunk through allocContig(32) and reports them: metadataPages
 * lists all 32 pages of every chunk and metadataBytes is 32 * 4096 = 131,072
 * bytes per chunk (what the posting really takes from the page allocator;
 * the object itself is POSTED_CHUNK_SIZE = 98,320 bytes).
 * kmalloc_large's block would also be aligned to 32 pages; the allocator
 * handed in decides alignment (finalize asks for page alignment only).
 *
 * Zeroing. kzalloc zeroes the whole block. khosim writes the first page of
 * each chunk whole (header, ranges[0], zeros) and leaves the other 31 pages
 * as they are: in a fresh predecessor (SparseMem) never-written memory reads
 * as zero, so the image is what kzalloc leaves; writing 31 zero pages per
 * range would cost 127 KiB of simulator memory per range (13 GB for 100k
 * ranges). On a memory that already holds data (a later generation over an
 * OverlayMem) those pages may keep stale bytes; they lie past num_ranges and
 * nothing reads them.
 *
 * What is NOT reproduced:
 *  - With nothing preserved the posting hands over virt_to_phys(NULL), which
 *    is not 0; khosim hands over 0 (no chunk), as the issue asks.
 *  - The tracker. The posting's __kho_preserve coalesced neighbours whatever
 *    their data and let a store silently overwrite overlapping ranges. khosim
 *    uses the fixed KhoMemTrack (coalesce only equal data, EEXIST on
 *    conflicting overlap): the data-blind merge turns a folio next to a phys
 *    range into one range with one data value, so folio orders are lost and
 *    the successor cannot restore or verify what was preserved. The posting
 *    would therefore have produced at most as many ranges (hence chunks) as
 *    khosim does, fewer only where neighbours with different data touch. The
 *    cost measured here is the serializer's.
 *  - The KHO FDT carries khosim's marker KHO_POSTED_MARKER (an empty
 *    property) on /preserved-memory. The posting had none: its successor
 *    simply assumed its own layout. khosim adds it so that one successor can
 *    tell the posted chunks (98,320 bytes, 4096 entries) from the fixed
 *    ranges chunks (one page, 170 entries) from the FDT alone; both say
 *    "kho-v1".
 *
 * The walk is what a successor built from the same posting reads (98,320-byte
 * chunks of up to 4096 entries), made careful: every value is validated
 * before use and the first problem is thrown as a KhoPostedWalkError naming
 * the chunk, the entry, the field and its byte offset. The successor knows
 * only sizeof(*chunk), so the metadata pages it reads and frees again are the
 * 25 pages the 98,320-byte object spans (POSTED_CHUNK_SPAN_PAGES); the
 * remaining 7 pages of each order-5 block were never reserved and are free
 * memory to it anyway.
 */
import { KHOSER_CHUNK_HDR_NEXT, KHOSER_CHUNK_HDR_NUM_RANGES, KHOSER_CHUNK_HDR_SIZE, KHOSER_MEM_RANGE_DATA, KHOSER_MEM_RANGE_SIZE, KHOSER_MEM_RANGE_SIZE_FIELD, KHOSER_MEM_RANGE_START, KHO_DATA_VALID_MASK, khoDataIsFolio, khoDataOrder, khoserRangeOffset } from "../../abi/ranges.js";
import { KHO_FDT_MEMORY_PATH, KHO_FDT_METADATA_PROP } from "../../abi/kho-fdt.js";
import { PAGE_SIZE } from "../../abi/page.js";
import { BTree } from "../../lib/btree.js";
import { ByteReader, ByteWriter, hex } from "../../lib/bytes.js";
import type { FdtRo } from "../../fdt/index.js";
import { buildKhoFdt, readU64Prop, type KhoSubtree } from "../fdt.js";
import type { PhysMem } from "../../mm/physmem.js";
import { KhoSerializeError } from "../serialize.js";
import { KhoMemTrack, type KhoMemRange } from "../track.js";
import { KHO_WALK_MAX_ORDER, KhoWalkError, khoScratchHit, type KhoWalkContext, type KhoWalkErrorCode, type KhoWalkErrorWhere } from "../walk.js";
import { KHO_POSTED_MARKER } from "./ranges.js";
import { type AllocPage, type KhoFormat, type KhoFormatWalk, type KhoSerialized, type KhoTracker } from "./types.js";

/**
 * KHOSER_RANGES_SIZE as posted: PAGE_SIZE - sizeof(hdr) / sizeof(range)
 * = 4096 - (16 / 24) = 4096 - 0 = 4096 entries per chunk.
 */
export const POSTED_RANGES_SIZE = PAGE_SIZE - Math.floor(KHOSER_CHUNK_HDR_SIZE / KHOSER_MEM_RANGE_SIZE);
/** sizeof(struct khoser_mem_chunk) as posted: 16 + 4096 * 24 = 98,320 bytes. */
export const POSTED_CHUNK_SIZE = KHOSER_CHUNK_HDR_SIZE + POSTED_RANGES_SIZE * KHOSER_MEM_RANGE_SIZE;
/** get_order(98,320): kmalloc_large's page order for one chunk (5). */
export const POSTED_CHUNK_ORDER = Math.ceil(Math.log2(Math.ceil(POSTED_CHUNK_SIZE / PAGE_SIZE)));
/** Pages kmalloc_large really takes for one chunk: 1 << 5 = 32. */
export const POSTED_CHUNK_ALLOC_PAGES = 2 ** POSTED_CHUNK_ORDER;
/** Bytes kmalloc_large really takes for one chunk: 131,072. */
export const POSTED_CHUNK_ALLOC_BYTES = POSTED_CHUNK_ALLOC_PAGES * PAGE_SIZE;
/** Pages the 98,320-byte chunk object spans (what the successor reads and frees): 25. */
export const POSTED_CHUNK_SPAN_PAGES = Math.ceil(POSTED_CHUNK_SIZE / PAGE_SIZE);

/** What the posted walk found wrong. */
export type KhoPostedWalkErrorCode = KhoWalkErrorCode;

/** The posted walk reports with the ranges walk's error class and fields ("chunk" = the 98,320-byte object). */
export type KhoPostedWalkErrorWhere = KhoWalkErrorWhere;
export { KhoWalkError as KhoPostedWalkError };

/** Result of {@link khoPostedWalk}. */
export interface KhoPostedWalkResult {
  /** Chunk addresses in list order. */
  chunks: number[];
  /** Every entry in list order (ascending, non-overlapping; one memblock_reserve each). */
  entries: KhoMemRange[];
}

/** Result of {@link khoPostedSerialize}. */
export interface KhoPostedSerialized {
  /** /preserved-memory/metadata: phys of the first chunk, 0 if none. */
  metadata: number;
  /** Phys of every chunk (its 32-page block), in list order. */
  chunks: number[];
}

const TWO53 = 1n << 53n;
const TWO64 = 1n << 64n;
const TWO32 = 2 ** 32;
const HI_2_53 = 2 ** 21;
const PAGE = BigInt(PAGE_SIZE);

/** Index of the last range whose start is < @end, or -1 (ranges ascending by start). */
function lastStartBelow(starts: ArrayLike<number>, n: number, end: number): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (starts[mid]! < end) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/**
 * khoPostedSerialize - kho_mem_serialize() as posted: one new chunk per
 * range, each holding that range alone, linked in range order.
 * @track: the ranges to record (read only)
 * @mem: memory the chunks are written to
 * @allocContig: returns the phys of @pages free contiguous pages (neither
 *               scratch nor preserved); called with POSTED_CHUNK_ALLOC_PAGES
 *
 * Throws KhoSerializeError (EINVAL, chunk index) when the allocator hands out
 * an unusable block: not a positive page-aligned safe integer, overlapping
 * preserved memory or another chunk.
 */
export function khoPostedSerialize(track: KhoTracker, mem: PhysMem, allocContig: (pages: number) => number): KhoPostedSerialized {
  const ranges = [...track.ranges()];
  const n = ranges.length;
  const starts = new Float64Array(n);
  const ends = new Float64Array(n);
  ranges.forEach((r, i) => {
    starts[i] = r.start;
    ends[i] = r.start + r.size;
  });
  const chunks: number[] = [];
  const taken = new BTree<number, number>();
  for (let i = 0; i < n; i++) {
    const phys = allocContig(POSTED_CHUNK_ALLOC_PAGES);
    const end = phys + POSTED_CHUNK_ALLOC_BYTES;
    if (!Number.isSafeInteger(phys) || phys <= 0 || phys % PAGE_SIZE !== 0 || !Number.isSafeInteger(end)) {
      throw new KhoSerializeError("EINVAL", i, `kho_mem_serialize (posted): chunk ${i}: allocator returned unusable block ${hex(phys)}`);
    }
    const ri = lastStartBelow(starts, n, end);
    if (ri >= 0 && ends[ri]! > phys) {
      throw new KhoSerializeError("EINVAL", i, `kho_mem_serialize (posted): chunk ${i}: block [${hex(phys)}, ${hex(end)}) overlaps preserved memory`);
    }
    const lower = taken.getPairOrNextLower(phys);
    const higher = taken.nextHigherPair(phys);
    if ((lower !== undefined && lower[0] + POSTED_CHUNK_ALLOC_BYTES > phys) || (higher !== undefined && higher[0] < end)) {
      throw new KhoSerializeError("EINVAL", i, `kho_mem_serialize (posted): chunk ${i}: block ${hex(phys)} overlaps another chunk`);
    }
    taken.set(phys, i);
    chunks.push(phys);
  }

  // Each chunk's first page, written once and whole: the rest of the block stays untouched (zero in a fresh machine).
  const page = new Uint8Array(PAGE_SIZE);
  const w = new ByteWriter(page);
  const e0 = khoserRangeOffset(0);
  for (let i = 0; i < n; i++) {
    const r = ranges[i]!;
    w.u64le(KHOSER_CHUNK_HDR_NEXT, i + 1 < n ? chunks[i + 1]! : 0);
    w.u64le(KHOSER_CHUNK_HDR_NUM_RANGES, 1);
    w.u64le(e0 + KHOSER_MEM_RANGE_START, r.start);
    w.u64le(e0 + KHOSER_MEM_RANGE_SIZE_FIELD, r.size);
    w.u64le(e0 + KHOSER_MEM_RANGE_DATA, r.data);
    mem.write(chunks[i]!, page);
  }
  return { metadata: chunks[0] ?? 0, chunks };
}

type RangeField = "start" | "size" | "data";
const RANGE_FIELD_OFFSET: Record<RangeField, number> = {
  start: KHOSER_MEM_RANGE_START,
  size: KHOSER_MEM_RANGE_SIZE_FIELD,
  data: KHOSER_MEM_RANGE_DATA,
};

/**
 * khoPostedWalk - walk and validate the posted chunk list in @mem.
 * @mem: the successor's view of RAM
 * @metadata: /preserved-memory/metadata (0: nothing preserved)
 * @ctx: RAM bounds and the scratch areas
 *
 * Reads each chunk's header, bounds num_ranges (at most 4096), then reads
 * exactly the entries it announces. Throws KhoPostedWalkError on the first
 * invalid value. Chunks must be page aligned, their 98,320 bytes wholly
 * inside RAM, clear of scratch, of every other chunk and of every preserved
 * range; ranges are checked as in walk.ts.
 */
export function khoPostedWalk(mem: PhysMem, metadata: bigint, ctx: KhoWalkContext): KhoPostedWalkResult {
  const ramBase = ctx.ramBase;
  const ramEnd = ctx.ramBase + ctx.ramSize;
  const ramBaseB = BigInt(ramBase);
  const ramEndB = BigInt(ramEnd);
  const span = POSTED_CHUNK_SIZE;
  const spanB = BigInt(span);

  const chunks: number[] = [];
  /* Chunk start -> index, ordered: cycles and overlaps are found as the list is followed. */
  const byAddr = new BTree<number, number>();
  const entries: KhoMemRange[] = [];
  const firstEntryOf: number[] = [];
  let prevStart = -1;
  let prevEnd = -1;

  let ptr = metadata;
  let holder: KhoPostedWalkErrorWhere = { field: "metadata" };
  let holderName = "metadata";

  while (ptr !== 0n) {
    const ci = chunks.length;
    const bad = (code: KhoWalkErrorCode, why: string): KhoWalkError =>
      new KhoWalkError(code, holder, `${holderName} is ${hex(ptr)}: ${why}`);
    if (ptr < 0n || ptr % PAGE !== 0n) throw bad("CHUNK_UNALIGNED", `chunk ${ci} address is not page aligned`);
    if (ptr >= TWO53 || ptr < ramBaseB || ptr + spanB > ramEndB) {
      throw bad("CHUNK_OUTSIDE_RAM", `chunk ${ci} [${hex(ptr)}, ${hex(ptr + spanB)}) is not inside RAM [${hex(ramBase)}, ${hex(ramEnd)})`);
    }
    const phys = Number(ptr);
    const s = khoScratchHit(ctx, phys, phys + span);
    if (s !== undefined) {
      throw bad("CHUNK_IN_SCRATCH", `chunk ${ci} [${hex(phys)}, ${hex(phys + span)}) overlaps scratch [${hex(s.addr)}, ${hex(s.addr + s.size)})`);
    }
    const again = byAddr.get(phys);
    if (again !== undefined) throw bad("CHUNK_CYCLE", `that is chunk ${again} again (cycle)`);
    const lower = byAddr.getPairOrNextLower(phys);
    const higher = byAddr.nextHigherPair(phys);
    const other = lower !== undefined && lower[0] + span > phys ? lower : higher !== undefined && higher[0] < phys + span ? higher : undefined;
    if (other !== undefined) {
      throw bad("CHUNK_OVERLAP", `chunk ${ci} [${hex(phys)}, ${hex(phys + span)}) overlaps chunk ${other[1]} [${hex(other[0])}, ${hex(other[0] + span)})`);
    }
    byAddr.set(phys, ci);
    chunks.push(phys);
    firstEntryOf.push(entries.length);
    const where = `chunk ${ci} at ${hex(phys)}`;

    const hdr = new ByteReader(mem.read(phys, KHOSER_CHUNK_HDR_SIZE));
    const numB = hdr.u64le(KHOSER_CHUNK_HDR_NUM_RANGES);
    if (numB > BigInt(POSTED_RANGES_SIZE)) {
      throw new KhoWalkError(
        "NUM_RANGES",
        { chunkIndex: ci, chunkPhys: phys, field: "num_ranges", offset: KHOSER_CHUNK_HDR_NUM_RANGES },
        `${where}: num_ranges at +${hex(KHOSER_CHUNK_HDR_NUM_RANGES)} is ${hex(numB)}, more than ${POSTED_RANGES_SIZE}`,
      );
    }
    const num = Number(numB);
    // Exactly the entries announced; the reader's offsets are relative to ranges[0].
    const r = new ByteReader(mem.read(phys + KHOSER_CHUNK_HDR_SIZE, num * KHOSER_MEM_RANGE_SIZE));

    let i = 0;
    const fail = (code: KhoWalkErrorCode, field: RangeField, why: string): KhoWalkError => {
      const offset = khoserRangeOffset(i) + RANGE_FIELD_OFFSET[field];
      return new KhoWalkError(
        code,
        { chunkIndex: ci, chunkPhys: phys, rangeIndex: i, field, offset },
        `${where}: ranges[${i}].${field} at +${hex(offset)} is ${hex(r.u64le(offset - KHOSER_CHUNK_HDR_SIZE))}: ${why}`,
      );
    };
    for (; i < num; i++) {
      const base = i * KHOSER_MEM_RANGE_SIZE;
      const sLo = r.u32le(base + KHOSER_MEM_RANGE_START);
      const sHi = r.u32le(base + KHOSER_MEM_RANGE_START + 4);
      const zLo = r.u32le(base + KHOSER_MEM_RANGE_SIZE_FIELD);
      const zHi = r.u32le(base + KHOSER_MEM_RANGE_SIZE_FIELD + 4);
      const dLo = r.u32le(base + KHOSER_MEM_RANGE_DATA);
      const dHi = r.u32le(base + KHOSER_MEM_RANGE_DATA + 4);

      if (sLo % PAGE_SIZE !== 0) throw fail("RANGE_UNALIGNED", "start", "not page aligned");
      if (zLo % PAGE_SIZE !== 0) throw fail("RANGE_UNALIGNED", "size", "not page aligned");
      if (zLo === 0 && zHi === 0) throw fail("RANGE_EMPTY", "size", "empty range");
      const bigStart = sHi >= HI_2_53;
      const bigSize = zHi >= HI_2_53;
      if ((bigStart || bigSize) && r.u64le(base + KHOSER_MEM_RANGE_START) + r.u64le(base + KHOSER_MEM_RANGE_SIZE_FIELD) >= TWO64) {
        throw fail("RANGE_OVERFLOW", "size", `start ${hex(r.u64le(base + KHOSER_MEM_RANGE_START))} + size overflows u64`);
      }
      const st = sHi * TWO32 + sLo;
      const sz = zHi * TWO32 + zLo;
      if (bigStart || st < ramBase || st >= ramEnd) throw fail("RANGE_OUTSIDE_RAM", "start", `outside RAM [${hex(ramBase)}, ${hex(ramEnd)})`);
      const en = st + sz;
      if (bigSize || en > ramEnd) {
        throw fail("RANGE_OUTSIDE_RAM", "size", `range ends at ${hex(BigInt(st) + r.u64le(base + KHOSER_MEM_RANGE_SIZE_FIELD))}, past RAM end ${hex(ramEnd)}`);
      }
      if (dHi !== 0 || (dLo & ~KHO_DATA_VALID_MASK) !== 0 || (dLo !== 0 && !khoDataIsFolio(dLo))) {
        throw fail("RANGE_DATA", "data", "neither 0 (phys range) nor KHO_DATA_FOLIO | order");
      }
      if (khoDataIsFolio(dLo)) {
        const order = khoDataOrder(dLo);
        if (order > KHO_WALK_MAX_ORDER) throw fail("FOLIO_ORDER", "data", `folio order ${order} is above ${KHO_WALK_MAX_ORDER}`);
        const fsz = PAGE_SIZE * 2 ** order;
        if (st % fsz !== 0) throw fail("FOLIO_UNALIGNED", "start", `not aligned to its order-${order} folio size ${hex(fsz)}`);
        if (sz % fsz !== 0) throw fail("FOLIO_UNALIGNED", "size", `not a multiple of its order-${order} folio size ${hex(fsz)}`);
      }
      if (st < prevStart) throw fail("RANGE_ORDER", "start", `out of order: below the previous range [${hex(prevStart)}, ${hex(prevEnd)})`);
      if (st < prevEnd) throw fail("RANGE_OVERLAP", "start", `overlaps previous range [${hex(prevStart)}, ${hex(prevEnd)})`);
      const sc = khoScratchHit(ctx, st, en);
      if (sc !== undefined) {
        throw fail("RANGE_IN_SCRATCH", "start", `range [${hex(st)}, ${hex(en)}) overlaps scratch [${hex(sc.addr)}, ${hex(sc.addr + sc.size)})`);
      }
      entries.push({ start: st, size: sz, data: dLo });
      prevStart = st;
      prevEnd = en;
    }

    ptr = hdr.u64le(KHOSER_CHUNK_HDR_NEXT);
    holder = { chunkIndex: ci, chunkPhys: phys, field: "next", offset: KHOSER_CHUNK_HDR_NEXT };
    holderName = `${where}: next at +${hex(KHOSER_CHUNK_HDR_NEXT)}`;
  }

  // The chunks are freed once walked: none may overlap what is preserved.
  const n = entries.length;
  const starts = new Float64Array(n);
  entries.forEach((e, k) => (starts[k] = e.start));
  chunks.forEach((phys, ci) => {
    const ri = lastStartBelow(starts, n, phys + span);
    if (ri < 0) return;
    const rg = entries[ri]!;
    if (rg.start + rg.size <= phys) return;
    let home = 0;
    while (home + 1 < firstEntryOf.length && firstEntryOf[home + 1]! <= ri) home++;
    throw new KhoWalkError(
      "CHUNK_IN_RANGE",
      { chunkIndex: ci, chunkPhys: phys, rangeIndex: ri },
      `chunk ${ci} [${hex(phys)}, ${hex(phys + span)}) overlaps preserved range [${hex(rg.start)}, ${hex(rg.start + rg.size)}) ` +
        `(range ${ri}, chunk ${home} ranges[${ri - firstEntryOf[home]!}])`,
    );
  });

  return { chunks, entries };
}

/* Adjacent entries with equal data, merged (a handcrafted list may split a run). */
function mergeEqual(entries: readonly KhoMemRange[]): KhoMemRange[] {
  let need = false;
  for (let i = 1; i < entries.length && !need; i++) {
    const a = entries[i - 1]!;
    const b = entries[i]!;
    need = a.start + a.size === b.start && a.data === b.data;
  }
  if (!need) return entries as KhoMemRange[];
  const out: KhoMemRange[] = [];
  for (const e of entries) {
    const last = out[out.length - 1];
    if (last !== undefined && last.start + last.size === e.start && last.data === e.data) last.size += e.size;
    else out.push({ ...e });
  }
  return out;
}

export const postedFormat: KhoFormat = {
  name: "posted",
  compatible: "kho-v1",
  createTracker(): KhoTracker {
    return new KhoMemTrack();
  },
  serialize(track: KhoTracker, mem: PhysMem, _allocPage: AllocPage, allocContig: (pages: number) => number): KhoSerialized {
    const s = khoPostedSerialize(track, mem, allocContig);
    const metadataPages: number[] = [];
    for (const c of s.chunks) for (let p = 0; p < POSTED_CHUNK_ALLOC_PAGES; p++) metadataPages.push(c + p * PAGE_SIZE);
    return { root: s.metadata, metadataPages, metadataBytes: s.chunks.length * POSTED_CHUNK_ALLOC_BYTES, objects: s.chunks };
  },
  buildFdt(root: number, subtrees: readonly KhoSubtree[]): Uint8Array {
    return buildKhoFdt(root, subtrees, [{ name: KHO_POSTED_MARKER, value: new Uint8Array(0) }]);
  },
  matches(fdt: FdtRo): boolean {
    try {
      return fdt.getProp(fdt.pathOffset(KHO_FDT_MEMORY_PATH), KHO_POSTED_MARKER) !== undefined;
    } catch {
      return false;
    }
  },
  readRoot(fdt: FdtRo): bigint {
    return readU64Prop(fdt, KHO_FDT_MEMORY_PATH, KHO_FDT_METADATA_PROP, "no preserved-memory node");
  },
  walk(mem: PhysMem, root: bigint, ctx: KhoWalkContext): KhoFormatWalk {
    const w = khoPostedWalk(mem, root, ctx);
    const metadataPages: number[] = [];
    for (const c of w.chunks) for (let p = 0; p < POSTED_CHUNK_SPAN_PAGES; p++) metadataPages.push(c + p * PAGE_SIZE);
    return {
      metadataPages,
      objects: w.chunks,
      ranges: mergeEqual(w.entries),
      blockCount: w.entries.length,
      forEachBlock(visit) {
        for (const e of w.entries) visit(e.start, e.size, e.data);
      },
    };
  },
};
