/*
 * The "ranges" and "posted" formats: one chunk list of {start, size, data}
 * ranges (abi/ranges.ts) in two geometries. ranges is the April 2025
 * linux-mm posting with its bugs fixed (the default): page-sized chunks of
 * 170 entries, filled. posted is the same posting exactly as posted: each
 * range gets a 98,320-byte chunk of its own (4096 entries, num_ranges = 1)
 * from an order-5 kmalloc_large block, and /preserved-memory carries
 * khosim's marker so a successor can tell the two apart from the FDT alone.
 * Both use KhoMemTrack (the posting's data-blind merge would lose folio
 * orders), khoMemSerialize() and khoMemWalk() with their geometry.
 */
import { KHO_FDT_MEMORY_NODE, KHO_FDT_METADATA_PROP, KHO_FDT_SUB_FDT_PROP, KHO_FDT_COMPATIBLE } from "../../abi/kho-fdt.js";
import { PAGE_SIZE } from "../../abi/page.js";
import {
  KHOSER_CHUNK_HDR_NEXT, KHOSER_CHUNK_HDR_NUM_RANGES, KHOSER_CHUNK_HDR_SIZE, KHOSER_GEOMETRY, KHOSER_MEM_RANGE_DATA, KHOSER_MEM_RANGE_SIZE,
  KHOSER_MEM_RANGE_SIZE_FIELD, KHOSER_MEM_RANGE_START, KHO_DATA_VALID_MASK, KHO_POSTED_MARKER, POSTED_CHUNK_ALLOC_BYTES, POSTED_CHUNK_SPAN_PAGES,
  POSTED_GEOMETRY, khoDataIsFolio, khoDataOrder, khoserRangeOffset, type KhoserGeometry,
} from "../../abi/ranges.js";
import { HI_2_53, TWO32, TWO64, u64Of } from "../../lib/bits.js";
import { ByteReader, hex } from "../../lib/bytes.js";
import type { PhysMem } from "../../mm/physmem.js";
import { KHO_RANGES_FDT_LAYOUT } from "../fdt.js";
import { khoMemSerialize } from "../serialize.js";
import { KhoMemTrack, type KhoMemRange } from "../track.js";
import { KHO_WALK_MAX_ORDER, KhoMetaWalk, KhoWalkError, khoScratchHit, type KhoWalkContext, type KhoWalkErrorCode, type KhoWalkWhere } from "../walk.js";
import { defineKhoFormat, ownTracker, type KhoFormat, type KhoFormatWalk } from "./types.js";

export { KHO_POSTED_MARKER };

/** Result of {@link khoMemWalk}. */
export interface KhoMemWalkResult {
  /** Chunks in list order (free memory once the walk is done). */
  chunks: number[];
  /** Preserved ranges in list order (ascending, non-overlapping; one memblock_reserve each). */
  ranges: KhoMemRange[];
}

type RangeField = "start" | "size" | "data";
const RANGE_FIELD_OFFSET: Record<RangeField, number> = { start: KHOSER_MEM_RANGE_START, size: KHOSER_MEM_RANGE_SIZE_FIELD, data: KHOSER_MEM_RANGE_DATA };

/**
 * khoMemWalk - walk and validate the chunk list a predecessor left in @mem.
 * @mem: the successor's view of RAM
 * @metadata: /preserved-memory/metadata, phys of the first chunk (0: none)
 * @ctx: RAM bounds and the scratch areas
 * @geo: the chunk geometry (KHOSER_GEOMETRY, or POSTED_GEOMETRY)
 *
 * Claims each chunk (geo.chunkSize bytes) through the shared walk, bounds
 * num_ranges by geo.rangesPerChunk, then reads exactly the entries it
 * announces and validates each. Throws KhoWalkError on the first invalid
 * value. Nothing is reserved here.
 *
 * Return: the chunks and the preserved ranges, in list order.
 */
export function khoMemWalk(mem: PhysMem, metadata: bigint, ctx: KhoWalkContext, geo: KhoserGeometry = KHOSER_GEOMETRY): KhoMemWalkResult {
  const mw = new KhoMetaWalk(ctx);
  const { ramBase, ramEnd } = mw;
  const ranges: KhoMemRange[] = [];
  /* Index in `ranges` of each chunk's first entry, to name a range's home chunk. */
  const firstRangeOf: number[] = [];
  let prevStart = -1;
  let prevEnd = -1;

  let ptr = metadata;
  let holder: KhoWalkWhere = { field: "metadata" };
  let holderName = "metadata";
  while (ptr !== 0n) {
    const ci = firstRangeOf.length;
    const phys = mw.claim(ptr, { kind: "chunk", size: geo.chunkSize, label: `chunk ${ci}`, holder, holderName });
    firstRangeOf.push(ranges.length);
    const where = `chunk ${ci} at ${hex(phys)}`;
    const at = (field: string, offset: number, entry?: number): KhoWalkWhere & { field: string; offset: number } =>
      entry === undefined ? { object: "chunk", index: ci, phys, field, offset } : { object: "chunk", index: ci, phys, entry, field, offset };

    // A one-page chunk is read once, whole; a posted chunk's header first, then exactly the entries announced.
    const whole = geo.chunkSize === PAGE_SIZE ? mem.read(phys, PAGE_SIZE) : undefined;
    const hdr = new ByteReader(whole ?? mem.read(phys, KHOSER_CHUNK_HDR_SIZE));
    // Bound num_ranges before touching any entry: a huge count must not loop.
    const num = mw.bound(hdr.u64le(KHOSER_CHUNK_HDR_NUM_RANGES), geo.rangesPerChunk, "NUM_RANGES", at("num_ranges", KHOSER_CHUNK_HDR_NUM_RANGES), where);
    // Entry i is at i * 24 in this reader, khoserRangeOffset(i) in the chunk.
    const len = num * KHOSER_MEM_RANGE_SIZE;
    const r = new ByteReader(whole ? whole.subarray(KHOSER_CHUNK_HDR_SIZE, KHOSER_CHUNK_HDR_SIZE + len) : mem.read(phys + KHOSER_CHUNK_HDR_SIZE, len));

    let i = 0;
    const fail = (code: KhoWalkErrorCode, field: RangeField, why: string): KhoWalkError => {
      const offset = khoserRangeOffset(i) + RANGE_FIELD_OFFSET[field];
      return new KhoWalkError(code, at(field, offset, i), `${where}: ranges[${i}].${field} at +${hex(offset)} is ${hex(r.u64le(offset - KHOSER_CHUNK_HDR_SIZE))}: ${why}`);
    };
    for (; i < num; i++) {
      const base = i * KHOSER_MEM_RANGE_SIZE;
      /*
       * Read each u64 as two u32 halves and judge it with plain numbers: a
       * value is below 2^53 exactly when its high half is below 2^21. BigInt
       * is used only for the rare huge values and for messages (1M ranges
       * must walk fast).
       */
      const sLo = r.u32le(base + KHOSER_MEM_RANGE_START);
      const sHi = r.u32le(base + KHOSER_MEM_RANGE_START + 4);
      const zLo = r.u32le(base + KHOSER_MEM_RANGE_SIZE_FIELD);
      const zHi = r.u32le(base + KHOSER_MEM_RANGE_SIZE_FIELD + 4);
      const dLo = r.u32le(base + KHOSER_MEM_RANGE_DATA);
      const dHi = r.u32le(base + KHOSER_MEM_RANGE_DATA + 4);

      // 2^32 is a multiple of PAGE_SIZE, so the low half decides alignment.
      if (sLo % PAGE_SIZE !== 0) throw fail("RANGE_UNALIGNED", "start", "not page aligned");
      if (zLo % PAGE_SIZE !== 0) throw fail("RANGE_UNALIGNED", "size", "not page aligned");
      if (zLo === 0 && zHi === 0) throw fail("RANGE_EMPTY", "size", "empty range");
      const bigStart = sHi >= HI_2_53;
      const bigSize = zHi >= HI_2_53;
      if ((bigStart || bigSize) && u64Of(sLo, sHi) + u64Of(zLo, zHi) >= TWO64) throw fail("RANGE_OVERFLOW", "size", `start ${hex(u64Of(sLo, sHi))} + size overflows u64`);
      const st = sHi * TWO32 + sLo;
      const sz = zHi * TWO32 + zLo;
      if (bigStart || st < ramBase || st >= ramEnd) throw fail("RANGE_OUTSIDE_RAM", "start", `outside RAM [${hex(ramBase)}, ${hex(ramEnd)})`);
      // Both below 2^53 past this point, their sum is exact.
      const en = st + sz;
      if (bigSize || en > ramEnd) throw fail("RANGE_OUTSIDE_RAM", "size", `range ends at ${hex(BigInt(st) + u64Of(zLo, zHi))}, past RAM end ${hex(ramEnd)}`);
      if (dHi !== 0 || (dLo & ~KHO_DATA_VALID_MASK) !== 0 || (dLo !== 0 && !khoDataIsFolio(dLo))) {
        throw fail("RANGE_DATA", "data", `${hex(u64Of(dLo, dHi))} is neither 0 (phys range) nor KHO_DATA_FOLIO | order`);
      }
      if (khoDataIsFolio(dLo)) {
        const order = khoDataOrder(dLo);
        if (order > KHO_WALK_MAX_ORDER) throw fail("FOLIO_ORDER", "data", `folio order ${order} is above ${KHO_WALK_MAX_ORDER}`);
        // A power of two, exact as a double for every order up to the cap.
        const fsz = PAGE_SIZE * 2 ** order;
        if (st % fsz !== 0) throw fail("FOLIO_UNALIGNED", "start", `not aligned to its order-${order} folio size ${hex(fsz)}`);
        if (sz % fsz !== 0) throw fail("FOLIO_UNALIGNED", "size", `not a multiple of its order-${order} folio size ${hex(fsz)}`);
      }
      // Ranges are written in ascending order, so overlap can only be with the previous one.
      if (st < prevStart) throw fail("RANGE_ORDER", "start", `out of order: below the previous range [${hex(prevStart)}, ${hex(prevEnd)})`);
      if (st < prevEnd) throw fail("RANGE_OVERLAP", "start", `overlaps previous range [${hex(prevStart)}, ${hex(prevEnd)})`);
      const s = khoScratchHit(ctx, st, en);
      if (s !== undefined) {
        throw fail("RANGE_IN_SCRATCH", "start", `range [${hex(st)}, ${hex(en)}) overlaps scratch [${hex(s.addr)}, ${hex(s.addr + s.size)})`);
      }
      ranges.push({ start: st, size: sz, data: dLo });
      prevStart = st;
      prevEnd = en;
    }

    ptr = hdr.u64le(KHOSER_CHUNK_HDR_NEXT);
    holder = at("next", KHOSER_CHUNK_HDR_NEXT);
    holderName = `${where}: next at +${hex(KHOSER_CHUNK_HDR_NEXT)}`;
  }

  mw.checkNotPreserved(ranges, (o, rg, ri) => {
    const home = lastAtOrBelow(firstRangeOf, ri);
    const what = o.size === PAGE_SIZE ? "page lies inside" : `[${hex(o.phys)}, ${hex(o.phys + o.size)}) overlaps`;
    return {
      where: { object: "chunk", index: o.index, phys: o.phys, entry: ri },
      message:
        `chunk ${o.index} at ${hex(o.phys)}: ${what} preserved range [${hex(rg.start)}, ${hex(rg.start + rg.size)}) ` +
        `(range ${ri}, chunk ${home} ranges[${ri - firstRangeOf[home]!}])`,
    };
  });
  return { chunks: mw.objects.map((o) => o.phys), ranges };
}

/** Index of the last value <= @v in an ascending array (the chunk whose entries hold range @v). */
function lastAtOrBelow(a: readonly number[], v: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/* Adjacent entries with equal data, merged (posted: one range per chunk, a handcrafted list may split a run). */
function mergeEqual(entries: readonly KhoMemRange[]): KhoMemRange[] {
  const out: KhoMemRange[] = [];
  for (const e of entries) {
    const last = out[out.length - 1];
    if (last !== undefined && last.start + last.size === e.start && last.data === e.data) last.size += e.size;
    else out.push({ ...e });
  }
  return out;
}

/* Every page of each chunk: @pages of them from its start. */
function chunkPages(chunks: readonly number[], pages: number): number[] {
  const out: number[] = [];
  for (const c of chunks) for (let p = 0; p < pages; p++) out.push(c + p * PAGE_SIZE);
  return out;
}

/** The default format: page-sized chunks of 170 ranges, /preserved-memory/metadata. */
export const rangesFormat: KhoFormat = defineKhoFormat({
  name: "ranges",
  fdtLayout: { ...KHO_RANGES_FDT_LAYOUT, absent: [KHO_POSTED_MARKER] },
  createTracker: () => new KhoMemTrack(),
  serialize(track, mem, allocPage) {
    const s = khoMemSerialize(ownTracker(track, KhoMemTrack, "ranges"), mem, allocPage);
    return { root: s.metadata, metadataPages: s.chunks, metadataBytes: s.chunks.length * KHOSER_GEOMETRY.chunkSize };
  },
  walk(mem, root, ctx): KhoFormatWalk {
    const w = khoMemWalk(mem, root, ctx);
    return { metadataPages: w.chunks, ranges: w.ranges, blockCount: w.ranges.length, forEachBlock: (visit) => w.ranges.forEach((r) => visit(r.start, r.size, r.data)) };
  },
});

/**
 * The posting as posted: a 98,320-byte chunk per range. metadataPages lists
 * all 32 pages of every order-5 block the predecessor took (metadataBytes
 * 131,072 per chunk); the successor knows only sizeof(*chunk), so it reads
 * and frees the 25 pages the object spans.
 */
export const postedFormat: KhoFormat = defineKhoFormat({
  name: "posted",
  fdtLayout: {
    compatible: KHO_FDT_COMPATIBLE,
    mapNode: KHO_FDT_MEMORY_NODE,
    mapProps: [{ name: KHO_POSTED_MARKER, value: new Uint8Array(0) }, { name: KHO_FDT_METADATA_PROP }],
    subtreeProp: KHO_FDT_SUB_FDT_PROP,
  },
  createTracker: () => new KhoMemTrack(),
  serialize(track, mem, _allocPage, allocContig) {
    const s = khoMemSerialize(ownTracker(track, KhoMemTrack, "posted"), mem, () => allocContig(POSTED_GEOMETRY.allocPages), POSTED_GEOMETRY);
    return { root: s.metadata, metadataPages: chunkPages(s.chunks, POSTED_GEOMETRY.allocPages), metadataBytes: s.chunks.length * POSTED_CHUNK_ALLOC_BYTES, objects: s.chunks };
  },
  walk(mem, root, ctx): KhoFormatWalk {
    const w = khoMemWalk(mem, root, ctx, POSTED_GEOMETRY);
    return {
      metadataPages: chunkPages(w.chunks, POSTED_CHUNK_SPAN_PAGES),
      objects: w.chunks,
      ranges: mergeEqual(w.ranges),
      blockCount: w.ranges.length,
      forEachBlock: (visit) => w.ranges.forEach((r) => visit(r.start, r.size, r.data)),
    };
  },
});
