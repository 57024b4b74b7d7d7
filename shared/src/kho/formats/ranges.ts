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
import { hex, u32View } from "../../lib/bytes.js";
import { lastAtOrBelow } from "../../lib/search.js";
import { physReadInto, type PhysMem } from "../../mm/physmem.js";
import { KHO_RANGES_FDT_LAYOUT } from "../fdt.js";
import { khoMemSerialize } from "../serialize.js";
import { KhoMemTrack, type KhoMemRange, type KhoRangeTable } from "../track.js";
import { KHO_WALK_MAX_ORDER, KhoMetaWalk, KhoWalkError, khoScratchHit, type KhoMetaClaim, type KhoWalkContext, type KhoWalkErrorCode, type KhoWalkWhere } from "../walk.js";
import { defineKhoFormat, ownTracker, type KhoFormat, type KhoFormatWalk } from "./types.js";

export { KHO_POSTED_MARKER };

/** Result of {@link khoMemWalk}. */
export interface KhoMemWalkResult {
  /** Chunks in list order (free memory once the walk is done). */
  chunks: number[];
  /** Number of preserved ranges (one memblock_reserve each). */
  readonly count: number;
  /** Visit the preserved ranges in list order (ascending, non-overlapping) straight from the walked chunks. */
  forEach(visit: (start: number, size: number, data: number) => void): void;
  /** The same ranges as typed arrays (the walk's own columns, no copy). */
  readonly table: KhoRangeTable;
  /** The same ranges as objects, made on first use (tools, tests, reports): 1M ranges make 1M objects. */
  readonly ranges: KhoMemRange[];
}

/** khoRangeObjects - the ranges of @t as objects, ascending (for callers that want KhoMemRange[]). */
export function khoRangeObjects(t: KhoRangeTable): KhoMemRange[] {
  const out = new Array<KhoMemRange>(t.count);
  for (let i = 0; i < t.count; i++) out[i] = { start: t.start[i]!, size: t.size[i]!, data: t.data[i]! };
  return out;
}

type RangeField = "start" | "size" | "data";
const RANGE_FIELD_OFFSET: Record<RangeField, number> = { start: KHOSER_MEM_RANGE_START, size: KHOSER_MEM_RANGE_SIZE_FIELD, data: KHOSER_MEM_RANGE_DATA };

/* u32 indices of a range's fields relative to the entry's first u32. */
const S_LO = KHOSER_MEM_RANGE_START >>> 2;
const Z_LO = KHOSER_MEM_RANGE_SIZE_FIELD >>> 2;
const D_LO = KHOSER_MEM_RANGE_DATA >>> 2;
const ENTRY_U32 = KHOSER_MEM_RANGE_SIZE >>> 2;

/* Folio bytes by order, 0..KHO_WALK_MAX_ORDER (exact doubles): a table read per entry instead of `2 ** order`. */
const WALK_FOLIO_SIZE = Float64Array.from({ length: KHO_WALK_MAX_ORDER + 1 }, (_, o) => PAGE_SIZE * 2 ** o);

/* Pages a ranges walk reads at once when chunks follow each other (64 KiB). */
const WALK_READAHEAD_PAGES = 16;

/* Ranges a walk's columns hold at first (1.1 MiB), and after their first growth at most (~4M: 72 MiB of address space, touched only as filled). */
const WALK_FIRST_CAPACITY = 1 << 16;
const WALK_BIG_CAPACITY = 1 << 22;

/*
 * The walked ranges as columns, written as each entry is validated: the
 * chunk pages themselves are read one at a time into one reused buffer.
 * Past WALK_FIRST_CAPACITY ranges the columns grow at once to room for
 * min(RAM pages, WALK_BIG_CAPACITY) ranges, which costs address space only:
 * a fresh page is touched when the walk writes into it, so 1M ranges touch
 * 18 MiB (18 bytes a range) plus the 1.1 MiB first copy, and nothing more
 * (a small walk reserves no large buffer, so an in-process loop of walks,
 * the fuzzer's, does not set off V8's external-memory GCs). On this VM a first-touched page cost ~20 us (2026-11-30; ~1.3 us on a quiet day),
 * so keeping a copy of every chunk page (24 MiB for 1M ranges) and then a
 * table (18 MiB) cost ~200 ms more than the validation itself.
 */
class RangeColumns {
  count = 0;
  /* lastAtOrBelow()'s previous answer (0 before any). */
  private hint = 0;
  start: Float64Array;
  size: Float64Array;
  data: Uint16Array;

  constructor(private readonly maxRanges: number) {
    const cap = Math.max(1, Math.min(maxRanges, WALK_FIRST_CAPACITY));
    this.start = new Float64Array(cap);
    this.size = new Float64Array(cap);
    this.data = new Uint16Array(cap);
  }

  /* Room for @n more ranges: the first growth to the big capacity, later ones doubling. */
  reserve(n: number): void {
    const need = this.count + n;
    if (need <= this.start.length) return;
    let cap = Math.max(this.start.length * 2, Math.min(this.maxRanges, WALK_BIG_CAPACITY));
    while (cap < need) cap *= 2;
    const start = new Float64Array(cap);
    const size = new Float64Array(cap);
    const data = new Uint16Array(cap);
    start.set(this.start.subarray(0, this.count));
    size.set(this.size.subarray(0, this.count));
    data.set(this.data.subarray(0, this.count));
    this.start = start;
    this.size = size;
    this.data = data;
  }

  forEach(visit: (start: number, size: number, data: number) => void): void {
    const { start, size, data } = this;
    for (let i = 0, n = this.count; i < n; i++) visit(start[i]!, size[i]!, data[i]!);
  }

  /* Range @ri (0 <= ri < count). */
  at(ri: number): KhoMemRange {
    return { start: this.start[ri]!, size: this.size[ri]!, data: this.data[ri]! };
  }

  /* Index of the last range whose start is <= @addr, or -1 (asked for each chunk in list order: from the previous answer). */
  lastAtOrBelow(addr: number): number {
    const i = lastAtOrBelow(this.start, this.count, addr, this.hint);
    if (i >= 0) this.hint = i;
    return i;
  }

  table(): KhoRangeTable {
    const n = this.count;
    return { count: n, start: this.start.subarray(0, n), size: this.size.subarray(0, n), data: this.data.subarray(0, n) };
  }
}

/* A walk result whose objects are made once, when first asked for. */
class MemWalkResult implements KhoMemWalkResult {
  private objs: KhoMemRange[] | undefined;
  readonly table: KhoRangeTable;
  constructor(
    readonly chunks: number[],
    private readonly walked: RangeColumns,
  ) {
    this.table = walked.table();
  }
  get count(): number {
    return this.walked.count;
  }
  get ranges(): KhoMemRange[] {
    return (this.objs ??= khoRangeObjects(this.table));
  }
  forEach(visit: (start: number, size: number, data: number) => void): void {
    this.walked.forEach(visit);
  }
}


/*
 * The claim of chunk @ci, which the metadata property (chunk 0) or the next
 * field of chunk @ci - 1 at @prevPhys points at. Its names are made only
 * when a message needs them (KhoMetaWalk reads them lazily).
 */
class ChunkClaim implements KhoMetaClaim {
  readonly kind = "chunk";
  constructor(
    private readonly ci: number,
    readonly size: number,
    private readonly prevPhys: number,
  ) {}
  get label(): string {
    return `chunk ${this.ci}`;
  }
  get holder(): KhoWalkWhere {
    return this.ci === 0 ? { field: "metadata" } : { object: "chunk", index: this.ci - 1, phys: this.prevPhys, field: "next", offset: KHOSER_CHUNK_HDR_NEXT };
  }
  get holderName(): string {
    return this.ci === 0 ? "metadata" : `chunk ${this.ci - 1} at ${hex(this.prevPhys)}: next at +${hex(KHOSER_CHUNK_HDR_NEXT)}`;
  }
}

/*
 * One walk of a chunk list: the state kept from one chunk to the next, and
 * step(), which claims, reads and validates one chunk. Per chunk in a
 * method of its own so that V8 optimizes it as a function after a few
 * hundred chunks: as the body of khoMemWalk's loop it waited for an
 * on-stack-replacement compile of the whole walk (~12-16 ms), which ran
 * unoptimized meanwhile and finished only after the walk, competing with
 * the reserve loop for the CPU.
 */
class ChunkListWalk {
  readonly mw: KhoMetaWalk;
  readonly out: RangeColumns;
  /* Index in the output of each chunk's first entry, to name a range's home chunk. */
  readonly firstRangeOf: number[] = [];
  private readonly whole: boolean;
  private readonly buf: Uint8Array;
  private readonly u: Uint32Array;
  /* [bufBase, bufBase + bufLen) of RAM is in buf (whole chunks only). */
  private bufBase = -1;
  private bufLen = 0;
  private prevPhys = -1;
  /* The scratch areas as plain [lo, hi) pairs, compared inline per range. */
  private readonly scLo: Float64Array;
  private readonly scHi: Float64Array;

  constructor(
    private readonly mem: PhysMem,
    private readonly ctx: KhoWalkContext,
    private readonly geo: KhoserGeometry,
  ) {
    this.mw = new KhoMetaWalk(ctx);
    this.out = new RangeColumns(Math.floor(ctx.ramSize / PAGE_SIZE));
    /*
     * One buffer for every chunk read. A one-page chunk is read with up to
     * WALK_READAHEAD_PAGES - 1 pages after it when it follows the previous
     * chunk directly (chunks allocated one after the other: one pread for 16
     * chunks instead of one each), else alone; a posted chunk's header, then
     * exactly its entries, at their offsets in the chunk. Reading the pages
     * ahead reads RAM only: a chunk is judged when the list reaches it.
     */
    this.whole = geo.chunkSize === PAGE_SIZE;
    this.buf = new Uint8Array(this.whole ? WALK_READAHEAD_PAGES * PAGE_SIZE : KHOSER_CHUNK_HDR_SIZE + geo.rangesPerChunk * KHOSER_MEM_RANGE_SIZE);
    this.u = u32View(this.buf);
    const nSc = ctx.scratch.length;
    this.scLo = new Float64Array(nSc);
    this.scHi = new Float64Array(nSc);
    ctx.scratch.forEach((a, k) => {
      this.scLo[k] = a.addr;
      this.scHi[k] = a.addr + a.size;
    });
  }

  /* Claim, read and validate the chunk at @ptr (its ranges appended to out); returns its next pointer. */
  step(ptr: bigint): bigint {
    const { mw, out, buf, u, geo, mem } = this;
    const { ramBase, ramEnd } = mw;
    const ci = this.firstRangeOf.length;
    const phys = mw.claim(ptr, new ChunkClaim(ci, geo.chunkSize, this.prevPhys));
    this.firstRangeOf.push(out.count);

    // hb: the chunk's first u32 in `u`.
    let hb = 0;
    if (!this.whole) {
      physReadInto(mem, phys, buf.subarray(0, KHOSER_CHUNK_HDR_SIZE));
    } else {
      if (phys < this.bufBase || phys + PAGE_SIZE > this.bufBase + this.bufLen) {
        this.bufBase = phys;
        this.bufLen = phys === this.prevPhys + PAGE_SIZE ? Math.min(buf.length, ramEnd - phys) : PAGE_SIZE;
        try {
          physReadInto(mem, phys, buf.subarray(0, this.bufLen));
        } catch (e) {
          // The pages ahead are not all readable (a hole between banks): the chunk alone, which throws if it is not.
          if (this.bufLen === PAGE_SIZE) throw e;
          this.bufLen = PAGE_SIZE;
          physReadInto(mem, phys, buf.subarray(0, PAGE_SIZE));
        }
      }
      hb = (phys - this.bufBase) >>> 2;
    }
    this.prevPhys = phys;
    const nLo = u[hb + (KHOSER_CHUNK_HDR_NUM_RANGES >>> 2)]!;
    const nHi = u[hb + (KHOSER_CHUNK_HDR_NUM_RANGES >>> 2) + 1]!;
    // Bound num_ranges before touching any entry: a huge count must not loop.
    const num = nHi === 0 && nLo <= geo.rangesPerChunk ? nLo : chunkFail(mw, ci, phys, nLo, nHi, geo);
    // Entry i starts at u32 hb + 4 + 6 i of `u`; khoserRangeOffset(i) in the chunk.
    const len = num * KHOSER_MEM_RANGE_SIZE;
    if (!this.whole && len > 0) physReadInto(mem, phys + KHOSER_CHUNK_HDR_SIZE, buf.subarray(KHOSER_CHUNK_HDR_SIZE, KHOSER_CHUNK_HDR_SIZE + len));
    out.reserve(num);
    const oi = out.count;
    const got = walkEntries(u, hb + (KHOSER_CHUNK_HDR_SIZE >>> 2), num, out, ramBase, ramEnd, this.scLo, this.scHi);
    if (got < num) {
      const j = oi + got - 1;
      throw rangeFail(mw, ci, phys, got, u, hb + (KHOSER_CHUNK_HDR_SIZE >>> 2) + got * ENTRY_U32, this.ctx, j >= 0 ? out.start[j]! : -1, j >= 0 ? out.start[j]! + out.size[j]! : -1);
    }
    out.count = oi + num;
    return u64Of(u[hb + (KHOSER_CHUNK_HDR_NEXT >>> 2)]!, u[hb + (KHOSER_CHUNK_HDR_NEXT >>> 2) + 1]!);
  }
}

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
 * value. Nothing is reserved here. Each chunk is read through one u32 view,
 * each u64 as two halves judged as plain numbers, and the ranges go into
 * typed arrays: no BigInt, DataView call or object per range.
 *
 * Return: the chunks and the preserved ranges, in list order.
 */
export function khoMemWalk(mem: PhysMem, metadata: bigint, ctx: KhoWalkContext, geo: KhoserGeometry = KHOSER_GEOMETRY): KhoMemWalkResult {
  const w = new ChunkListWalk(mem, ctx, geo);
  for (let ptr = metadata; ptr !== 0n; ) ptr = w.step(ptr);
  const { mw, out, firstRangeOf } = w;
  mw.checkNotPreservedBy((addr) => out.lastAtOrBelow(addr), (ri) => out.at(ri), (o, rg, ri) => {
    const home = lastAtOrBelow(firstRangeOf, firstRangeOf.length, ri);
    const what = o.size === PAGE_SIZE ? "page lies inside" : `[${hex(o.phys)}, ${hex(o.phys + o.size)}) overlaps`;
    return {
      where: { object: "chunk", index: o.index, phys: o.phys, entry: ri },
      message:
        `chunk ${o.index} at ${hex(o.phys)}: ${what} preserved range [${hex(rg.start)}, ${hex(rg.start + rg.size)}) ` +
        `(range ${ri}, chunk ${home} ranges[${ri - firstRangeOf[home]!}])`,
    };
  });
  return new MemWalkResult(mw.objects.map((o) => o.phys), out);
}

/* num_ranges of chunk @ci is above the geometry's bound: the error, as the shared bound() words it. */
function chunkFail(mw: KhoMetaWalk, ci: number, phys: number, lo: number, hi: number, geo: KhoserGeometry): never {
  mw.bound(u64Of(lo, hi), geo.rangesPerChunk, "NUM_RANGES", { object: "chunk", index: ci, phys, field: "num_ranges", offset: KHOSER_CHUNK_HDR_NUM_RANGES }, `chunk ${ci} at ${hex(phys)}`);
  throw new Error("unreachable: bound() accepted an out-of-bound count");
}

/*
 * walkEntries - validate the @num entries of one chunk (entry i at u32
 * @b0 + 6 i of @u) and append them to @out's columns (room made). The
 * walk's hot loop, in a function of its own so that V8 optimizes it alone:
 * inside khoMemWalk it waited ~18 ms for the whole walk to compile, running
 * unoptimized meanwhile. Returns the number of entries taken: fewer than
 * @num when the entry at that index fails a check (rangeFail() names it).
 */
function walkEntries(u: Uint32Array, b0: number, num: number, out: RangeColumns, ramBase: number, ramEnd: number, scLo: Float64Array, scHi: Float64Array): number {
  const cs = out.start;
  const cz = out.size;
  const cd = out.data;
  const o0 = out.count;
  const nSc = scLo.length;
  let prevEnd = o0 > 0 ? cs[o0 - 1]! + cz[o0 - 1]! : -1;
  for (let i = 0, b = b0; i < num; i++, b += ENTRY_U32) {
    /*
     * Each u64 as two u32 halves judged with plain numbers: a value is
     * below 2^53 exactly when its high half is below 2^21. BigInt only for
     * the rare huge values and for messages (1M ranges must walk fast).
     */
    const sLo = u[b + S_LO]!;
    const sHi = u[b + S_LO + 1]!;
    const zLo = u[b + Z_LO]!;
    const zHi = u[b + Z_LO + 1]!;
    const dLo = u[b + D_LO]!;
    const dHi = u[b + D_LO + 1]!;
    // 2^32 is a multiple of PAGE_SIZE, so the low half decides alignment.
    if ((sLo & (PAGE_SIZE - 1)) !== 0 || (zLo & (PAGE_SIZE - 1)) !== 0 || (zLo === 0 && zHi === 0) || sHi >= HI_2_53 || zHi >= HI_2_53) return i;
    const st = sHi * TWO32 + sLo;
    const sz = zHi * TWO32 + zLo;
    // Both below 2^53, their sum is exact.
    const en = st + sz;
    if (st < ramBase || st >= ramEnd || en > ramEnd || dHi !== 0 || st < prevEnd) return i;
    if (dLo !== 0) {
      // A folio run: KHO_DATA_FOLIO | order, start and size multiples of the folio size (a power of two, exact as a double).
      if ((dLo & ~KHO_DATA_VALID_MASK) !== 0 || !khoDataIsFolio(dLo) || khoDataOrder(dLo) > KHO_WALK_MAX_ORDER) return i;
      const fsz = WALK_FOLIO_SIZE[khoDataOrder(dLo)]!;
      if (fsz > PAGE_SIZE && (st % fsz !== 0 || sz % fsz !== 0)) return i;
    }
    for (let k = 0; k < nSc; k++) if (st < scHi[k]! && scLo[k]! < en) return i;
    prevEnd = en;
    cs[o0 + i] = st;
    cz[o0 + i] = sz;
    cd[o0 + i] = dLo;
  }
  return num;
}

/*
 * Entry @i of chunk @ci (its first u32 at @b of @u) failed the fast checks:
 * judge it again field by field, in the order the checks are documented, and
 * return the error for the first that fails. Off the hot path on purpose.
 */
function rangeFail(mw: KhoMetaWalk, ci: number, phys: number, i: number, u: Uint32Array, b: number, ctx: KhoWalkContext, prevStart = -1, prevEnd = -1): KhoWalkError {
  const { ramBase, ramEnd } = mw;
  const where = `chunk ${ci} at ${hex(phys)}`;
  const fail = (code: KhoWalkErrorCode, field: RangeField, why: string): KhoWalkError => {
    const offset = khoserRangeOffset(i) + RANGE_FIELD_OFFSET[field];
    const k = b + (RANGE_FIELD_OFFSET[field] >>> 2);
    return new KhoWalkError(code, { object: "chunk", index: ci, phys, entry: i, field, offset }, `${where}: ranges[${i}].${field} at +${hex(offset)} is ${hex(u64Of(u[k]!, u[k + 1]!))}: ${why}`);
  };
  const sLo = u[b + S_LO]!;
  const sHi = u[b + S_LO + 1]!;
  const zLo = u[b + Z_LO]!;
  const zHi = u[b + Z_LO + 1]!;
  const dLo = u[b + D_LO]!;
  const dHi = u[b + D_LO + 1]!;
  if (sLo % PAGE_SIZE !== 0) return fail("RANGE_UNALIGNED", "start", "not page aligned");
  if (zLo % PAGE_SIZE !== 0) return fail("RANGE_UNALIGNED", "size", "not page aligned");
  if (zLo === 0 && zHi === 0) return fail("RANGE_EMPTY", "size", "empty range");
  const bigStart = sHi >= HI_2_53;
  const bigSize = zHi >= HI_2_53;
  if ((bigStart || bigSize) && u64Of(sLo, sHi) + u64Of(zLo, zHi) >= TWO64) return fail("RANGE_OVERFLOW", "size", `start ${hex(u64Of(sLo, sHi))} + size overflows u64`);
  const st = sHi * TWO32 + sLo;
  const sz = zHi * TWO32 + zLo;
  if (bigStart || st < ramBase || st >= ramEnd) return fail("RANGE_OUTSIDE_RAM", "start", `outside RAM [${hex(ramBase)}, ${hex(ramEnd)})`);
  const en = st + sz;
  if (bigSize || en > ramEnd) return fail("RANGE_OUTSIDE_RAM", "size", `range ends at ${hex(BigInt(st) + u64Of(zLo, zHi))}, past RAM end ${hex(ramEnd)}`);
  if (dHi !== 0 || (dLo & ~KHO_DATA_VALID_MASK) !== 0 || (dLo !== 0 && !khoDataIsFolio(dLo))) {
    return fail("RANGE_DATA", "data", `${hex(u64Of(dLo, dHi))} is neither 0 (phys range) nor KHO_DATA_FOLIO | order`);
  }
  if (khoDataIsFolio(dLo)) {
    const order = khoDataOrder(dLo);
    if (order > KHO_WALK_MAX_ORDER) return fail("FOLIO_ORDER", "data", `folio order ${order} is above ${KHO_WALK_MAX_ORDER}`);
    const fsz = PAGE_SIZE * 2 ** order;
    if (st % fsz !== 0) return fail("FOLIO_UNALIGNED", "start", `not aligned to its order-${order} folio size ${hex(fsz)}`);
    if (sz % fsz !== 0) return fail("FOLIO_UNALIGNED", "size", `not a multiple of its order-${order} folio size ${hex(fsz)}`);
  }
  // Ranges are written in ascending order, so overlap can only be with the previous one.
  if (st < prevStart) return fail("RANGE_ORDER", "start", `out of order: below the previous range [${hex(prevStart)}, ${hex(prevEnd)})`);
  if (st < prevEnd) return fail("RANGE_OVERLAP", "start", `overlaps previous range [${hex(prevStart)}, ${hex(prevEnd)})`);
  const sc = khoScratchHit(ctx, st, en);
  if (sc !== undefined) return fail("RANGE_IN_SCRATCH", "start", `range [${hex(st)}, ${hex(en)}) overlaps scratch [${hex(sc.addr)}, ${hex(sc.addr + sc.size)})`);
  throw new Error(`unreachable: ${where}: ranges[${i}] failed a fast check but passes every check`);
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
  serialize(track, mem, allocPage, _allocContig, allocPages) {
    const s = khoMemSerialize(ownTracker(track, KhoMemTrack, "ranges"), mem, allocPage, KHOSER_GEOMETRY, allocPages);
    return { root: s.metadata, metadataPages: s.chunks, metadataBytes: s.chunks.length * KHOSER_GEOMETRY.chunkSize };
  },
  walk(mem, root, ctx): KhoFormatWalk {
    const w = khoMemWalk(mem, root, ctx);
    return {
      metadataPages: w.chunks,
      get table() {
        return w.table;
      },
      get ranges() {
        return w.ranges;
      },
      blockCount: w.count,
      forEachBlock: (visit) => w.forEach(visit),
    };
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
      blockCount: w.count,
      forEachBlock: (visit) => w.forEach(visit),
    };
  },
});
