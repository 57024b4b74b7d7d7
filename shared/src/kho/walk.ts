/*
 * kho_mem_deserialize's walk, careful version.
 *
 * The seed's successor followed the chunk list blindly: no bound on
 * num_ranges, no check that chunks are aligned, inside RAM, clear of scratch
 * or free of cycles, and no check of the ranges at all. Here every value read
 * from the handoff is validated before use and the first problem is reported
 * as a KhoWalkError naming the chunk, the entry, the field and its byte
 * offset. Nothing is reserved here: the caller reserves the returned ranges
 * and treats the returned chunk pages as free memory once done.
 */
import { KhoMetadataError } from "./formats/types.js";
import { KHOSER_CHUNK_HDR_NEXT, KHOSER_CHUNK_HDR_NUM_RANGES, KHOSER_CHUNK_SIZE, KHOSER_MEM_RANGE_DATA, KHOSER_MEM_RANGE_SIZE_FIELD, KHOSER_MEM_RANGE_START, KHOSER_RANGES_PER_CHUNK, KHO_DATA_VALID_MASK, khoDataIsFolio, khoDataOrder, khoserRangeOffset } from "../abi/ranges.js";
import { PAGE_SHIFT, PAGE_SIZE } from "../abi/page.js";
import { ByteReader, hex } from "../lib/bytes.js";
import type { PhysMem } from "../mm/physmem.js";
import type { KhoMemRange } from "./track.js";

/**
 * Highest folio order the walk accepts: PAGE_SIZE << order must fit a u64.
 * Whether the successor supports the order is for the restore step to judge.
 */
export const KHO_WALK_MAX_ORDER = 63 - PAGE_SHIFT;

/** What the walk found wrong. */
export type KhoWalkErrorCode =
  /** A chunk pointer (metadata or next) is not page aligned. */
  | "CHUNK_UNALIGNED"
  /** A chunk pointer is 2^53 or more, or its page is not wholly inside RAM. */
  | "CHUNK_OUTSIDE_RAM"
  /** A chunk page overlaps a scratch area. */
  | "CHUNK_IN_SCRATCH"
  /** A next pointer leads to a chunk already walked. */
  | "CHUNK_CYCLE"
  /** More chunks than RAM has pages (cannot happen without a cycle; a backstop). */
  | "CHUNK_LIMIT"
  /** A chunk page lies inside a preserved range (metadata is not preserved). */
  | "CHUNK_IN_RANGE"
  /** num_ranges is more than KHOSER_RANGES_PER_CHUNK. */
  | "NUM_RANGES"
  /** A range's start or size is not page aligned. */
  | "RANGE_UNALIGNED"
  /** A range's size is 0. */
  | "RANGE_EMPTY"
  /** start + size passes 2^64. */
  | "RANGE_OVERFLOW"
  /** A range is not wholly inside RAM (or start/size is 2^53 or more). */
  | "RANGE_OUTSIDE_RAM"
  /** A range overlaps a scratch area. */
  | "RANGE_IN_SCRATCH"
  /** A range starts below the previous range's start. */
  | "RANGE_ORDER"
  /** A range starts inside the previous range. */
  | "RANGE_OVERLAP"
  /** data has bits outside KHO_DATA_VALID_MASK. */
  | "RANGE_DATA"
  /** A folio run's order is above KHO_WALK_MAX_ORDER. */
  | "FOLIO_ORDER"
  /** A folio run's start or size is not a multiple of its folio size. */
  | "FOLIO_UNALIGNED"
  /** posted: a chunk's 98,320 bytes overlap another chunk's (its chunks are not page-sized). */
  | "CHUNK_OVERLAP";

/** Where a {@link KhoWalkError} was found; absent fields do not apply. */
export interface KhoWalkErrorWhere {
  /** Index in the list of the chunk holding the bad field (or the bad chunk page itself). */
  chunkIndex?: number;
  /** Phys of that chunk. */
  chunkPhys?: number;
  /**
   * Entry index inside the chunk (ranges[i]); for CHUNK_IN_RANGE the index of
   * the covering range in the walk's whole range list.
   */
  rangeIndex?: number;
  /** "metadata", "next", "num_ranges", "start", "size" or "data". */
  field?: string;
  /** Byte offset of the field inside the chunk page. */
  offset?: number;
}

/** Thrown by {@link khoMemWalk} on the first invalid value. */
export class KhoWalkError extends KhoMetadataError implements KhoWalkErrorWhere {
  readonly chunkIndex?: number;
  readonly chunkPhys?: number;
  readonly rangeIndex?: number;
  readonly field?: string;
  readonly offset?: number;

  constructor(
    readonly code: KhoWalkErrorCode,
    where: KhoWalkErrorWhere,
    message: string,
  ) {
    super(message);
    this.name = "KhoWalkError";
    if (where.chunkIndex !== undefined) this.chunkIndex = where.chunkIndex;
    if (where.chunkPhys !== undefined) this.chunkPhys = where.chunkPhys;
    if (where.rangeIndex !== undefined) this.rangeIndex = where.rangeIndex;
    if (where.field !== undefined) this.field = where.field;
    if (where.offset !== undefined) this.offset = where.offset;
  }
}

/** What the successor knows before walking: its RAM and the scratch areas. */
export interface KhoWalkContext {
  ramBase: number;
  ramSize: number;
  scratch: readonly { addr: number; size: number }[];
}

/** Result of {@link khoMemWalk}. */
export interface KhoMemWalkResult {
  /** Chunk pages in list order (free memory once the walk is done). */
  chunks: number[];
  /** Preserved ranges in list order (ascending, non-overlapping). */
  ranges: KhoMemRange[];
}

const TWO53 = 1n << 53n;
const TWO64 = 1n << 64n;
const TWO32 = 2 ** 32;
/* A u64's high u32 half is at least this exactly when the u64 is 2^53 or more. */
const HI_2_53 = 2 ** 21;
const PAGE = BigInt(PAGE_SIZE);

type RangeField = "start" | "size" | "data";
const RANGE_FIELD_OFFSET: Record<RangeField, number> = {
  start: KHOSER_MEM_RANGE_START,
  size: KHOSER_MEM_RANGE_SIZE_FIELD,
  data: KHOSER_MEM_RANGE_DATA,
};

/* The error for ranges[i].field of chunk ci; the value is re-read whole for the message. */
function rangeError(
  r: ByteReader,
  where: string,
  ci: number,
  phys: number,
  i: number,
  code: KhoWalkErrorCode,
  field: RangeField,
  why: string,
): KhoWalkError {
  const offset = khoserRangeOffset(i) + RANGE_FIELD_OFFSET[field];
  return new KhoWalkError(
    code,
    { chunkIndex: ci, chunkPhys: phys, rangeIndex: i, field, offset },
    `${where}: ranges[${i}].${field} at +${hex(offset)} is ${hex(r.u64le(offset))}: ${why}`,
  );
}

/** khoScratchHit - the scratch area [start, end) overlaps, if any (every format's walk checks this). */
export function khoScratchHit(ctx: KhoWalkContext, start: number, end: number): { addr: number; size: number } | undefined {
  for (const s of ctx.scratch) {
    if (start < s.addr + s.size && s.addr < end) return s;
  }
  return undefined;
}

/**
 * khoMemWalk - walk and validate the chunk list a predecessor left in @mem.
 * @mem: the successor's view of RAM
 * @metadata: /preserved-memory/metadata, phys of the first chunk (0: none)
 * @ctx: RAM bounds and the scratch areas
 *
 * Reads each chunk page once. Throws KhoWalkError on the first invalid value.
 *
 * Return: the chunk pages and the preserved ranges, in list order.
 */
export function khoMemWalk(mem: PhysMem, metadata: bigint, ctx: KhoWalkContext): KhoMemWalkResult {
  const ramBase = ctx.ramBase;
  const ramEnd = ctx.ramBase + ctx.ramSize;
  const ramBaseB = BigInt(ramBase);
  const ramEndB = BigInt(ramEnd);
  const maxChunks = Math.floor(ctx.ramSize / PAGE_SIZE);

  const chunks: number[] = [];
  const chunkIndexOf = new Map<number, number>();
  const ranges: KhoMemRange[] = [];
  /* Index in `ranges` of each chunk's first entry, to name a range's home chunk. */
  const firstRangeOf: number[] = [];
  let prevStart = -1;
  let prevEnd = -1;

  // Where the pointer to the next chunk was read from.
  let ptr = metadata;
  let holder: KhoWalkErrorWhere = { field: "metadata" };
  let holderName = "metadata";

  while (ptr !== 0n) {
    const ci = chunks.length;
    const bad = (code: KhoWalkErrorCode, why: string): KhoWalkError =>
      new KhoWalkError(code, holder, `${holderName} is ${hex(ptr)}: ${why}`);
    if (ptr < 0n || ptr % PAGE !== 0n) throw bad("CHUNK_UNALIGNED", `chunk ${ci} address is not page aligned`);
    if (ptr >= TWO53 || ptr < ramBaseB || ptr + PAGE > ramEndB) {
      throw bad("CHUNK_OUTSIDE_RAM", `chunk ${ci} page is outside RAM [${hex(ramBase)}, ${hex(ramEnd)})`);
    }
    const phys = Number(ptr);
    const s = khoScratchHit(ctx, phys, phys + PAGE_SIZE);
    if (s !== undefined) {
      throw bad("CHUNK_IN_SCRATCH", `chunk ${ci} page overlaps scratch [${hex(s.addr)}, ${hex(s.addr + s.size)})`);
    }
    const again = chunkIndexOf.get(phys);
    if (again !== undefined) throw bad("CHUNK_CYCLE", `that is chunk ${again} again (cycle)`);
    if (ci >= maxChunks) throw bad("CHUNK_LIMIT", `more chunks than RAM has pages (${maxChunks})`);
    chunkIndexOf.set(phys, ci);
    chunks.push(phys);
    firstRangeOf.push(ranges.length);

    const r = new ByteReader(mem.read(phys, KHOSER_CHUNK_SIZE));
    const where = `chunk ${ci} at ${hex(phys)}`;

    // Bound num_ranges before touching any entry: a huge count must not loop.
    const numB = r.u64le(KHOSER_CHUNK_HDR_NUM_RANGES);
    if (numB > BigInt(KHOSER_RANGES_PER_CHUNK)) {
      throw new KhoWalkError(
        "NUM_RANGES",
        { chunkIndex: ci, chunkPhys: phys, field: "num_ranges", offset: KHOSER_CHUNK_HDR_NUM_RANGES },
        `${where}: num_ranges at +${hex(KHOSER_CHUNK_HDR_NUM_RANGES)} is ${hex(numB)}, more than ${KHOSER_RANGES_PER_CHUNK}`,
      );
    }
    const num = Number(numB);

    // Defined once per chunk, not per entry: ranges are many.
    let i = 0;
    const fail = (code: KhoWalkErrorCode, field: RangeField, why: string): KhoWalkError =>
      rangeError(r, where, ci, phys, i, code, field, why);
    for (; i < num; i++) {
      const base = khoserRangeOffset(i);
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
      if ((bigStart || bigSize) && r.u64le(base + KHOSER_MEM_RANGE_START) + r.u64le(base + KHOSER_MEM_RANGE_SIZE_FIELD) >= TWO64) {
        throw fail("RANGE_OVERFLOW", "size", `start ${hex(r.u64le(base + KHOSER_MEM_RANGE_START))} + size overflows u64`);
      }
      const st = sHi * TWO32 + sLo;
      const sz = zHi * TWO32 + zLo;
      if (bigStart || st < ramBase || st >= ramEnd) {
        throw fail("RANGE_OUTSIDE_RAM", "start", `outside RAM [${hex(ramBase)}, ${hex(ramEnd)})`);
      }
      // Both below 2^53 past this point, their sum is exact.
      const en = st + sz;
      if (bigSize || en > ramEnd) {
        throw fail("RANGE_OUTSIDE_RAM", "size", `range ends at ${hex(BigInt(st) + r.u64le(base + KHOSER_MEM_RANGE_SIZE_FIELD))}, past RAM end ${hex(ramEnd)}`);
      }
      if (dHi !== 0 || (dLo & ~KHO_DATA_VALID_MASK) !== 0 || (dLo !== 0 && !khoDataIsFolio(dLo))) {
        throw fail("RANGE_DATA", "data", `${hex(BigInt(dHi) * 0x100000000n + BigInt(dLo))} is neither 0 (phys range) nor KHO_DATA_FOLIO | order`);
      }
      const dt = dLo;

      if (khoDataIsFolio(dt)) {
        const order = khoDataOrder(dt);
        if (order > KHO_WALK_MAX_ORDER) throw fail("FOLIO_ORDER", "data", `folio order ${order} is above ${KHO_WALK_MAX_ORDER}`);
        // A power of two, exact as a double for every order up to the cap.
        const fsz = PAGE_SIZE * 2 ** order;
        if (st % fsz !== 0) throw fail("FOLIO_UNALIGNED", "start", `not aligned to its order-${order} folio size ${hex(fsz)}`);
        if (sz % fsz !== 0) throw fail("FOLIO_UNALIGNED", "size", `not a multiple of its order-${order} folio size ${hex(fsz)}`);
      }

      // Ranges are written in ascending order, so overlap can only be with the previous one.
      if (st < prevStart) {
        throw fail("RANGE_ORDER", "start", `out of order: below the previous range [${hex(prevStart)}, ${hex(prevEnd)})`);
      }
      if (st < prevEnd) {
        throw fail("RANGE_OVERLAP", "start", `overlaps previous range [${hex(prevStart)}, ${hex(prevEnd)})`);
      }
      const sc = khoScratchHit(ctx, st, en);
      if (sc !== undefined) {
        throw fail(
          "RANGE_IN_SCRATCH",
          "start",
          `range [${hex(st)}, ${hex(en)}) overlaps scratch [${hex(sc.addr)}, ${hex(sc.addr + sc.size)})`,
        );
      }
      ranges.push({ start: st, size: sz, data: dt });
      prevStart = st;
      prevEnd = en;
    }

    ptr = r.u64le(KHOSER_CHUNK_HDR_NEXT);
    holder = { chunkIndex: ci, chunkPhys: phys, field: "next", offset: KHOSER_CHUNK_HDR_NEXT };
    holderName = `${where}: next at +${hex(KHOSER_CHUNK_HDR_NEXT)}`;
  }

  // Chunk pages are handed back as free memory: none may sit inside a preserved range.
  chunks.forEach((phys, ci) => {
    const ri = lastRangeAtOrBelow(ranges, phys);
    if (ri < 0) return;
    const rg = ranges[ri]!;
    if (phys >= rg.start + rg.size) return;
    const home = lastIndexAtOrBelow(firstRangeOf, ri);
    throw new KhoWalkError(
      "CHUNK_IN_RANGE",
      { chunkIndex: ci, chunkPhys: phys, rangeIndex: ri },
      `chunk ${ci} at ${hex(phys)}: page lies inside preserved range [${hex(rg.start)}, ${hex(rg.start + rg.size)}) ` +
        `(range ${ri}, chunk ${home} ranges[${ri - firstRangeOf[home]!}])`,
    );
  });

  return { chunks, ranges };
}

/** lastRangeAtOrBelow - index of the last range whose start is <= @addr, or -1 (@ranges ascending). */
export function lastRangeAtOrBelow(ranges: readonly KhoMemRange[], addr: number): number {
  let lo = 0;
  let hi = ranges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ranges[mid]!.start <= addr) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/** Index of the last value <= @v in an ascending array (the chunk whose entries hold range @v). */
function lastIndexAtOrBelow(a: readonly number[], v: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}
