/*
 * A pure model of Linux's early boot allocator, mm/memblock.c.
 *
 * One Memblock instance is one boot: two region lists, "memory" (RAM the
 * firmware reported) and "reserved" (what is in use), each kept sorted,
 * non-overlapping and minimal the way the kernel keeps them:
 *  - memblock_add_range() inserts only the parts of [base, base + size) that
 *    no region covers yet (overlapped parts keep their own flags), then
 *    merges neighbours that touch (base + size == next.base) and carry equal
 *    flags. khosim has one NUMA node, so the kernel's nid test is moot.
 *  - memblock_isolate_range() splits regions at the range's boundaries;
 *    removing and flag changes work on the isolated regions, and flag
 *    changes merge again afterwards (memblock_setclr_flag()).
 *  - allocations search free memory (memory minus reserved) top-down by
 *    default, skip the first page, skip NOMAP / DRIVER_MANAGED memory, and
 *    in KHO scratch-only mode consider only MEMBLOCK_KHO_SCRATCH memory. What
 *    they find is reserved with MEMBLOCK_RSRV_KERN.
 *
 * Results are those of the kernel's linear scans (O(n) per call), but the
 * lists are chunks of typed arrays found by binary search, and an update
 * only touches the regions it overlaps plus their two neighbours: appending
 * in ascending order is O(1) amortized and a random insertion costs
 * O(log n + chunk size). A successor can memblock_reserve() a million
 * preserved ranges in about a second in ascending order, a few in random
 * order.
 *
 * Addresses and sizes are JS numbers (safe integers); PHYS_ADDR_MAX is
 * 2^53 - 1, and sizes are capped so that base + size never passes it, like
 * memblock_cap_size(). Anything else is rejected with a MemblockError.
 */
import { PAGE_SIZE } from "../abi/page.js";
import { hex } from "../lib/bytes.js";

/*
 * enum memblock_flags, values as in include/linux/memblock.h (6.15+, where
 * MEMBLOCK_KHO_SCRATCH was added by the KHO series).
 */
/** No special request. */
export const MEMBLOCK_NONE = 0x0;
/** Hot(un)pluggable memory region. */
export const MEMBLOCK_HOTPLUG = 0x1;
/** Mirrored memory region. */
export const MEMBLOCK_MIRROR = 0x2;
/** Not added to the kernel direct mapping; never allocated, never freed to the buddy allocator. */
export const MEMBLOCK_NOMAP = 0x4;
/** Always detected via a driver; skipped like NOMAP. */
export const MEMBLOCK_DRIVER_MANAGED = 0x8;
/** Reserved region whose struct pages are not initialized (reserved regions only). */
export const MEMBLOCK_RSRV_NOINIT = 0x10;
/** Reserved for kernel use: set on everything memblock allocations reserve. */
export const MEMBLOCK_RSRV_KERN = 0x20;
/** Scratch memory for kexec handover: the only memory allocations may use in scratch-only mode. */
export const MEMBLOCK_KHO_SCRATCH = 0x40;

/** Every flag bit the model knows. */
export const MEMBLOCK_FLAGS_ALL =
  MEMBLOCK_HOTPLUG |
  MEMBLOCK_MIRROR |
  MEMBLOCK_NOMAP |
  MEMBLOCK_DRIVER_MANAGED |
  MEMBLOCK_RSRV_NOINIT |
  MEMBLOCK_RSRV_KERN |
  MEMBLOCK_KHO_SCRATCH;

/** Highest physical address khosim represents (phys_addr_t's maximum here). */
export const PHYS_ADDR_MAX = Number.MAX_SAFE_INTEGER;
/** @end value meaning "no upper limit" (the kernel's ~(phys_addr_t)0). */
export const MEMBLOCK_ALLOC_ANYWHERE = PHYS_ADDR_MAX;
/** @end value meaning "up to memblock.current_limit". */
export const MEMBLOCK_ALLOC_ACCESSIBLE = 0;
/** Like ACCESSIBLE, without kmemleak tracking (no difference in this model). */
export const MEMBLOCK_ALLOC_NOLEAKTRACE = 1;
/** Alignment used when an allocation asks for align 0 (x86-64 L1 line). */
export const SMP_CACHE_BYTES = 64;

/** The two region lists of struct memblock. */
export type MemblockTypeName = "memory" | "reserved";

/** struct memblock_region without nid: [base, base + size) with flags. */
export interface MemblockRegion {
  base: number;
  size: number;
  flags: number;
}

/** A free physical range [base, base + size). */
export interface PhysRange {
  base: number;
  size: number;
}

/** EINVAL: bad argument; ENOMEM: an allocation found no room. */
export type MemblockErrorCode = "EINVAL" | "ENOMEM";

/** Typed error for invalid arguments and failed strict allocations. */
export class MemblockError extends Error {
  constructor(
    readonly code: MemblockErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "MemblockError";
  }
}

const FLAG_NAMES: ReadonlyArray<readonly [number, string]> = [
  [MEMBLOCK_HOTPLUG, "HOTPLUG"],
  [MEMBLOCK_MIRROR, "MIRROR"],
  [MEMBLOCK_NOMAP, "NOMAP"],
  [MEMBLOCK_DRIVER_MANAGED, "DRV_MNG"],
  [MEMBLOCK_RSRV_NOINIT, "RSV_NIT"],
  [MEMBLOCK_RSRV_KERN, "RSV_KERN"],
  [MEMBLOCK_KHO_SCRATCH, "KHO_SCRATCH"],
];

/**
 * memblockFlagNames - render flags the way memblock's debugfs does.
 * @flags: region flags
 *
 * Return: "NONE" or the names joined by "|", e.g. "RSV_NIT|RSV_KERN".
 */
export function memblockFlagNames(flags: number): string {
  const names = FLAG_NAMES.filter(([bit]) => (flags & bit) !== 0).map(([, n]) => n);
  const unknown = flags & ~MEMBLOCK_FLAGS_ALL;
  if (unknown) names.push(hex(unknown));
  return names.length ? names.join("|") : "NONE";
}

/* ------------------------------------------------------------------------ */
/* Region store: a sorted list of regions kept in chunks.                    */
/* ------------------------------------------------------------------------ */

/** A chunk is split when it grows past this many regions (default). */
const CHUNK_MAX = 1024;

/** Position of a region: chunk index and index inside the chunk. */
interface Pos {
  c: number;
  i: number;
}

function regionEnd(r: MemblockRegion): number {
  return r.base + r.size;
}

/**
 * Chunk - a run of consecutive regions stored as parallel typed arrays
 * (struct of arrays): no object per region, so moving regions is a plain
 * memory copy and a million regions cost the garbage collector nothing.
 * Addresses are safe integers, exact in a Float64Array.
 */
class Chunk {
  base: Float64Array;
  size: Float64Array;
  flags: Int32Array;
  len = 0;

  constructor(capacity: number) {
    this.base = new Float64Array(capacity);
    this.size = new Float64Array(capacity);
    this.flags = new Int32Array(capacity);
  }

  end(i: number): number {
    return this.base[i]! + this.size[i]!;
  }

  get(i: number): MemblockRegion {
    return { base: this.base[i]!, size: this.size[i]!, flags: this.flags[i]! };
  }

  private reserve(capacity: number): void {
    if (capacity <= this.base.length) return;
    const cap = Math.max(capacity, this.base.length * 2);
    const base = new Float64Array(cap);
    const size = new Float64Array(cap);
    const flags = new Int32Array(cap);
    base.set(this.base.subarray(0, this.len));
    size.set(this.size.subarray(0, this.len));
    flags.set(this.flags.subarray(0, this.len));
    this.base = base;
    this.size = size;
    this.flags = flags;
  }

  /** Replace entries [from, to) by @items. */
  splice(from: number, to: number, items: readonly MemblockRegion[]): void {
    const k = items.length;
    const newLen = this.len - (to - from) + k;
    this.reserve(newLen);
    if (to !== from + k && to < this.len) {
      this.base.copyWithin(from + k, to, this.len);
      this.size.copyWithin(from + k, to, this.len);
      this.flags.copyWithin(from + k, to, this.len);
    }
    for (let j = 0; j < k; j++) {
      const r = items[j]!;
      this.base[from + j] = r.base;
      this.size[from + j] = r.size;
      this.flags[from + j] = r.flags;
    }
    this.len = newLen;
  }

  /** Append entries [from, to) of @other. */
  appendFrom(other: Chunk, from: number, to: number): void {
    const n = to - from;
    this.reserve(this.len + n);
    this.base.set(other.base.subarray(from, to), this.len);
    this.size.set(other.size.subarray(from, to), this.len);
    this.flags.set(other.flags.subarray(from, to), this.len);
    this.len += n;
  }
}

/**
 * RegionStore - one memblock_type: regions sorted by base, non-overlapping,
 * held in chunks of at most chunkMax so that insertions and removals move
 * at most one chunk. Concatenating the chunks gives the kernel's array.
 * Positions are valid until the next modification; the end position is
 * { c: chunks.length, i: 0 }. Regions read through at() are copies; all
 * changes go through replace().
 */
class RegionStore {
  chunks: Chunk[] = [];
  /** Base of each chunk's first region: a flat number array the searches bisect. */
  private firstBase: number[] = [];
  cnt = 0;
  totalSize = 0;
  /** A chunk this small is merged into a neighbour when they fit together. */
  private readonly chunkMin: number;

  constructor(
    readonly name: MemblockTypeName,
    private readonly chunkMax: number,
  ) {
    this.chunkMin = Math.max(1, chunkMax >>> 3);
  }

  private newChunk(): Chunk {
    return new Chunk(this.chunkMax + 1);
  }

  endPos(): Pos {
    return { c: this.chunks.length, i: 0 };
  }

  isEnd(p: Pos): boolean {
    return p.c >= this.chunks.length;
  }

  at(p: Pos): MemblockRegion {
    return this.chunks[p.c]!.get(p.i);
  }

  next(p: Pos): Pos {
    const chunk = this.chunks[p.c]!;
    return p.i + 1 < chunk.len ? { c: p.c, i: p.i + 1 } : { c: p.c + 1, i: 0 };
  }

  /** Position before @p, or null at the start. */
  prev(p: Pos): Pos | null {
    if (p.i > 0) return { c: p.c, i: p.i - 1 };
    if (p.c === 0) return null;
    return { c: p.c - 1, i: this.chunks[p.c - 1]!.len - 1 };
  }

  first(): MemblockRegion | undefined {
    return this.chunks[0]?.get(0);
  }

  last(): MemblockRegion | undefined {
    const chunk = this.chunks[this.chunks.length - 1];
    return chunk?.get(chunk.len - 1);
  }

  /** Index of the last chunk whose first region starts at or below @addr (< @addr if @strict); -1 if none. */
  private chunkFor(addr: number, strict: boolean): number {
    const fb = this.firstBase;
    let lo = 0;
    let hi = fb.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const v = fb[mid]!;
      if (strict ? v < addr : v <= addr) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }

  /**
   * First region that ends above @addr: the first that can overlap
   * [addr, ...). Bases and ends both increase along the list: find the
   * chunk by its first base, then bisect inside it; if all its regions end
   * at or below @addr, the answer is the next chunk's first region.
   */
  firstEndingAbove(addr: number): Pos {
    const c = this.chunkFor(addr, false);
    if (c < 0) return { c: 0, i: 0 };
    const chunk = this.chunks[c]!;
    if (chunk.end(chunk.len - 1) <= addr) return { c: c + 1, i: 0 };
    let a = 0;
    let b = chunk.len - 1;
    while (a < b) {
      const mid = (a + b) >>> 1;
      if (chunk.end(mid) > addr) b = mid;
      else a = mid + 1;
    }
    return { c, i: a };
  }

  /** Last region that starts below @addr, or null. */
  lastStartingBelow(addr: number): Pos | null {
    const c = this.chunkFor(addr, true);
    if (c < 0) return null;
    const chunk = this.chunks[c]!;
    // last i with base < addr; base[0] < addr holds
    let a = 0;
    let b = chunk.len - 1;
    while (a < b) {
      const mid = (a + b + 1) >>> 1;
      if (chunk.base[mid]! < addr) a = mid;
      else b = mid - 1;
    }
    return { c, i: a };
  }

  /** Region containing @addr, or undefined. */
  search(addr: number): MemblockRegion | undefined {
    const p = this.firstEndingAbove(addr);
    if (this.isEnd(p)) return undefined;
    const r = this.at(p);
    return r.base <= addr ? r : undefined;
  }

  /** Number of regions in [from, to). */
  distance(from: Pos, to: Pos): number {
    if (this.isEnd(from)) return 0;
    if (from.c === to.c) return to.i - from.i;
    let n = this.chunks[from.c]!.len - from.i;
    for (let c = from.c + 1; c < to.c && c < this.chunks.length; c++) n += this.chunks[c]!.len;
    if (!this.isEnd(to)) n += to.i;
    return n;
  }

  /**
   * Replace the regions in [from, to) by @items (sorted, and fitting
   * between the neighbours). Updates cnt; totalSize is the caller's.
   */
  replace(from: Pos, to: Pos, items: readonly MemblockRegion[]): void {
    this.cnt += items.length - this.distance(from, to);
    const chunks = this.chunks;
    if (this.isEnd(from)) {
      if (items.length === 0) return;
      if (chunks.length === 0) this.spliceChunks(0, 0, [this.newChunk()]);
      const c = chunks.length - 1;
      const last = chunks[c]!;
      last.splice(last.len, last.len, items);
      this.fix(c);
      return;
    }
    if (from.c === to.c) {
      chunks[from.c]!.splice(from.i, to.i, items);
      this.fix(from.c);
      return;
    }
    // [from, to) spans chunks: cut the tail of the first, drop the middle,
    // cut the head of the last.
    const first = chunks[from.c]!;
    first.splice(from.i, first.len, items);
    if (!this.isEnd(to)) chunks[to.c]!.splice(0, to.i, []);
    const middle = Math.min(to.c, chunks.length) - from.c - 1;
    if (middle > 0) this.spliceChunks(from.c + 1, middle, []);
    if (from.c + 1 < chunks.length) this.fix(from.c + 1);
    this.fix(from.c);
  }

  /** chunks.splice() keeping firstBase in step. */
  private spliceChunks(start: number, deleteCount: number, add: Chunk[]): void {
    this.chunks.splice(start, deleteCount, ...add);
    this.firstBase.splice(start, deleteCount, ...add.map((ch) => ch.base[0]!));
  }

  /**
   * Restore chunk size bounds around chunk @c after a change to its
   * contents, and refresh its first base.
   */
  private fix(c: number): void {
    const chunks = this.chunks;
    const chunk = chunks[c]!;
    if (chunk.len === 0) {
      this.spliceChunks(c, 1, []);
      return;
    }
    if (chunk.len > this.chunkMax) {
      const half = Math.max(1, this.chunkMax >>> 1);
      const pieces: Chunk[] = [];
      for (let k = 0; k < chunk.len; k += half) {
        const piece = this.newChunk();
        piece.appendFrom(chunk, k, Math.min(k + half, chunk.len));
        pieces.push(piece);
      }
      this.spliceChunks(c, 1, pieces);
      return;
    }
    this.firstBase[c] = chunk.base[0]!;
    if (chunk.len < this.chunkMin) {
      const nextChunk = chunks[c + 1];
      if (nextChunk && chunk.len + nextChunk.len <= this.chunkMax) {
        chunk.appendFrom(nextChunk, 0, nextChunk.len);
        this.spliceChunks(c + 1, 1, []);
        return;
      }
      const prevChunk = chunks[c - 1];
      if (prevChunk && chunk.len + prevChunk.len <= this.chunkMax) {
        prevChunk.appendFrom(chunk, 0, chunk.len);
        this.spliceChunks(c, 1, []);
      }
    }
  }

  /** Walk copies of every region in order. */
  *[Symbol.iterator](): Generator<MemblockRegion> {
    for (const chunk of this.chunks) for (let i = 0; i < chunk.len; i++) yield chunk.get(i);
  }
}

/**
 * Merge touching regions with equal flags in a sorted run (the core of
 * memblock_merge_regions()). May grow the size of regions in @run.
 */
function mergeRun(run: MemblockRegion[]): MemblockRegion[] {
  const out: MemblockRegion[] = [];
  for (const r of run) {
    const last = out[out.length - 1];
    if (last && regionEnd(last) === r.base && last.flags === r.flags) last.size += r.size;
    else out.push(r);
  }
  return out;
}

/* ------------------------------------------------------------------------ */
/* Argument checks                                                           */
/* ------------------------------------------------------------------------ */

function checkPhys(fn: string, what: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new MemblockError("EINVAL", `${fn}: ${what} ${String(v)} is not a non-negative safe integer`);
  }
}

/** Validate (base, size) and return size capped like memblock_cap_size(). */
function checkRange(fn: string, base: number, size: number): number {
  checkPhys(fn, "base", base);
  checkPhys(fn, "size", size);
  return Math.min(size, PHYS_ADDR_MAX - base);
}

function checkAlign(fn: string, align: number): void {
  checkPhys(fn, "align", align);
  if (align !== 0 && !isPow2(align)) {
    throw new MemblockError("EINVAL", `${fn}: align ${hex(align)} is not a power of two`);
  }
}

function isPow2(v: number): boolean {
  if (!Number.isSafeInteger(v) || v <= 0) return false;
  while (v > 1) {
    if (v % 2 !== 0) return false;
    v /= 2;
  }
  return true;
}

function roundDown(v: number, align: number): number {
  return v - (v % align);
}

function roundUp(v: number, align: number): number {
  const rem = v % align;
  return rem === 0 ? v : v - rem + align;
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

/* ------------------------------------------------------------------------ */
/* Memblock                                                                  */
/* ------------------------------------------------------------------------ */

/**
 * struct memblock for one boot: memory and reserved lists plus the
 * allocation policy (direction, current limit, KHO scratch-only mode).
 */
export class Memblock {
  private readonly memory: RegionStore;
  private readonly reserved: RegionStore;
  private bottomUp = false;
  private currentLimit = MEMBLOCK_ALLOC_ANYWHERE;
  private khoScratchOnly = false;
  private systemHasSomeMirror = false;

  /**
   * @options.chunkMax: regions per internal chunk before it is split
   * (default 1024). Results never depend on it; tests make it tiny to
   * exercise updates that cross chunk boundaries.
   */
  constructor(options: { chunkMax?: number } = {}) {
    const chunkMax = options.chunkMax ?? CHUNK_MAX;
    if (!Number.isSafeInteger(chunkMax) || chunkMax < 2) {
      throw new MemblockError("EINVAL", `Memblock: chunkMax ${String(chunkMax)} must be an integer >= 2`);
    }
    this.memory = new RegionStore("memory", chunkMax);
    this.reserved = new RegionStore("reserved", chunkMax);
  }

  private store(type: MemblockTypeName): RegionStore {
    if (type === "memory") return this.memory;
    if (type === "reserved") return this.reserved;
    throw new MemblockError("EINVAL", `unknown memblock type ${String(type)}`);
  }

  /* -------------------------- region list core -------------------------- */

  /**
   * memblock_add_range - add [base, base + size) to @type with @flags.
   *
   * Parts already covered by a region keep that region and its flags; only
   * the uncovered parts are inserted. If anything was inserted, touching
   * regions with equal flags are merged around the insertion.
   */
  private addRange(type: RegionStore, base: number, size: number, flags: number): void {
    if (size === 0) return;
    const end = base + size;
    const from = type.firstEndingAbove(base);
    const run: MemblockRegion[] = [];
    let cursor = base;
    let added = 0;
    let to = from;
    while (!type.isEnd(to)) {
      const r = type.at(to);
      if (r.base >= end) break;
      if (r.base > cursor) {
        run.push({ base: cursor, size: r.base - cursor, flags });
        added += r.base - cursor;
      }
      run.push(r);
      cursor = Math.min(regionEnd(r), end);
      to = type.next(to);
    }
    if (cursor < end) {
      run.push({ base: cursor, size: end - cursor, flags });
      added += end - cursor;
    }
    if (added === 0) return;
    type.totalSize += added;
    this.mergeAndReplace(type, from, to, run);
  }

  /**
   * Replace [from, to) by @run merged together with the regions just
   * before and after it (memblock_merge_regions() on the touched span).
   */
  private mergeAndReplace(type: RegionStore, from: Pos, to: Pos, run: MemblockRegion[]): void {
    let start = from;
    const before = type.prev(from);
    if (before) {
      const b = type.at(before);
      const first = run[0];
      if (first && regionEnd(b) === first.base && b.flags === first.flags) {
        run.unshift(b);
        start = before;
      }
    }
    let stop = to;
    if (!type.isEnd(to)) {
      const a = type.at(to);
      const last = run[run.length - 1];
      if (last && regionEnd(last) === a.base && last.flags === a.flags) {
        run.push(a);
        stop = type.next(to);
      }
    }
    type.replace(start, stop, mergeRun(run));
  }

  /**
   * memblock_remove_range - drop [base, base + size) from @type: regions
   * crossing a boundary are split (memblock_isolate_range()) and the parts
   * inside are removed.
   */
  private removeRange(type: RegionStore, base: number, size: number): void {
    if (size === 0) return;
    const end = base + size;
    const from = type.firstEndingAbove(base);
    let to = from;
    let removed = 0;
    let first: MemblockRegion | undefined;
    let last: MemblockRegion | undefined;
    while (!type.isEnd(to)) {
      const r = type.at(to);
      if (r.base >= end) break;
      first ??= r;
      last = r;
      removed += Math.min(regionEnd(r), end) - Math.max(r.base, base);
      to = type.next(to);
    }
    if (!first || !last) return;
    const keep: MemblockRegion[] = [];
    if (first.base < base) keep.push({ base: first.base, size: base - first.base, flags: first.flags });
    if (regionEnd(last) > end) keep.push({ base: end, size: regionEnd(last) - end, flags: last.flags });
    type.totalSize -= removed;
    type.replace(from, to, keep);
  }

  /**
   * memblock_setclr_flag - set or clear @flag on [base, base + size) of
   * @type. Regions are isolated first, so only the part inside the range
   * changes; parts of the range that no region covers stay uncovered.
   */
  private setClrFlag(type: RegionStore, base: number, size: number, set: boolean, flag: number): void {
    if (size === 0) return;
    const end = base + size;
    const from = type.firstEndingAbove(base);
    let to = from;
    let changes = false;
    const run: MemblockRegion[] = [];
    while (!type.isEnd(to)) {
      const r = type.at(to);
      if (r.base >= end) break;
      const newFlags = set ? r.flags | flag : r.flags & ~flag;
      if (newFlags !== r.flags) changes = true;
      const rend = regionEnd(r);
      const lo = Math.max(r.base, base);
      const hi = Math.min(rend, end);
      if (r.base < lo) run.push({ base: r.base, size: lo - r.base, flags: r.flags });
      run.push({ base: lo, size: hi - lo, flags: newFlags });
      if (rend > hi) run.push({ base: hi, size: rend - hi, flags: r.flags });
      to = type.next(to);
    }
    // Splitting and merging back with unchanged flags is the identity.
    if (!changes) return;
    this.mergeAndReplace(type, from, to, run);
  }

  /* ------------------------------ public API ---------------------------- */

  /**
   * memblockAdd - add new memory region.
   * @base: base address of the new region
   * @size: size of the new region
   *
   * Overlaps with existing memory are allowed; existing regions keep their
   * flags. New parts get MEMBLOCK_NONE.
   */
  memblockAdd(base: number, size: number): void {
    size = checkRange("memblock_add", base, size);
    this.addRange(this.memory, base, size, MEMBLOCK_NONE);
  }

  /**
   * memblockAddNode - add new memory region with flags (memblock_add_node()
   * without the node: khosim has one). This is how the kernel adds
   * MEMBLOCK_DRIVER_MANAGED memory.
   * @base: base address of the new region
   * @size: size of the new region
   * @flags: flags of the new parts
   */
  memblockAddNode(base: number, size: number, flags: number): void {
    size = checkRange("memblock_add_node", base, size);
    if (!Number.isInteger(flags) || flags < 0 || (flags & ~MEMBLOCK_FLAGS_ALL) !== 0) {
      throw new MemblockError("EINVAL", `memblock_add_node: unknown flags ${String(flags)}`);
    }
    this.addRange(this.memory, base, size, flags);
  }

  /**
   * memblockRemove - remove [base, base + size) from memory.
   * @base: base address of the range
   * @size: size of the range
   */
  memblockRemove(base: number, size: number): void {
    size = checkRange("memblock_remove", base, size);
    this.removeRange(this.memory, base, size);
  }

  /**
   * memblockReserve - mark [base, base + size) as reserved.
   * @base: base address of the range
   * @size: size of the range
   *
   * Newly reserved parts get MEMBLOCK_NONE; parts already reserved are left
   * as they are (with their flags). The range need not be memory.
   */
  memblockReserve(base: number, size: number): void {
    size = checkRange("memblock_reserve", base, size);
    this.addRange(this.reserved, base, size, MEMBLOCK_NONE);
  }

  /**
   * memblockReserveKern - reserve for kernel use (MEMBLOCK_RSRV_KERN), as
   * every memblock allocation does.
   * @base: base address of the range
   * @size: size of the range
   */
  memblockReserveKern(base: number, size: number): void {
    size = checkRange("memblock_reserve_kern", base, size);
    this.addRange(this.reserved, base, size, MEMBLOCK_RSRV_KERN);
  }

  /**
   * memblockPhysFree - free a boot memory block: remove [base, base + size)
   * from the reserved list, splitting regions that cross its boundaries.
   * @base: phys address of the block
   * @size: size of the block
   */
  memblockPhysFree(base: number, size: number): void {
    size = checkRange("memblock_phys_free", base, size);
    this.removeRange(this.reserved, base, size);
  }

  /**
   * memblockReservedMarkNoinit - set MEMBLOCK_RSRV_NOINIT on the *reserved*
   * regions inside [base, base + size): their struct pages are not
   * initialized.
   * @base: base address of the range
   * @size: size of the range
   *
   * Only the reserved list is touched, so on memory that is not reserved
   * yet this does nothing: reserve first, then mark. (The April 2025 seed
   * marks first and reserves after, and so loses the flag.)
   */
  memblockReservedMarkNoinit(base: number, size: number): void {
    size = checkRange("memblock_reserved_mark_noinit", base, size);
    this.setClrFlag(this.reserved, base, size, true, MEMBLOCK_RSRV_NOINIT);
  }

  /**
   * memblockMarkKhoScratch - set MEMBLOCK_KHO_SCRATCH on memory regions in
   * [base, base + size); in scratch-only mode only such memory is allocated.
   * @base: base address of the range
   * @size: size of the range
   */
  memblockMarkKhoScratch(base: number, size: number): void {
    size = checkRange("memblock_mark_kho_scratch", base, size);
    this.setClrFlag(this.memory, base, size, true, MEMBLOCK_KHO_SCRATCH);
  }

  /**
   * memblockClearKhoScratch - clear MEMBLOCK_KHO_SCRATCH on memory regions
   * in [base, base + size).
   * @base: base address of the range
   * @size: size of the range
   */
  memblockClearKhoScratch(base: number, size: number): void {
    size = checkRange("memblock_clear_kho_scratch", base, size);
    this.setClrFlag(this.memory, base, size, false, MEMBLOCK_KHO_SCRATCH);
  }

  /** memblockMarkHotplug - set MEMBLOCK_HOTPLUG on memory in [base, base + size). */
  memblockMarkHotplug(base: number, size: number): void {
    size = checkRange("memblock_mark_hotplug", base, size);
    this.setClrFlag(this.memory, base, size, true, MEMBLOCK_HOTPLUG);
  }

  /** memblockClearHotplug - clear MEMBLOCK_HOTPLUG on memory in [base, base + size). */
  memblockClearHotplug(base: number, size: number): void {
    size = checkRange("memblock_clear_hotplug", base, size);
    this.setClrFlag(this.memory, base, size, false, MEMBLOCK_HOTPLUG);
  }

  /**
   * memblockMarkMirror - set MEMBLOCK_MIRROR on memory in [base, base + size).
   * From then on allocations prefer mirrored memory and fall back to any.
   */
  memblockMarkMirror(base: number, size: number): void {
    size = checkRange("memblock_mark_mirror", base, size);
    this.systemHasSomeMirror = true;
    this.setClrFlag(this.memory, base, size, true, MEMBLOCK_MIRROR);
  }

  /** memblockMarkNomap - set MEMBLOCK_NOMAP: never allocated, never freed to the buddy allocator. */
  memblockMarkNomap(base: number, size: number): void {
    size = checkRange("memblock_mark_nomap", base, size);
    this.setClrFlag(this.memory, base, size, true, MEMBLOCK_NOMAP);
  }

  /** memblockClearNomap - clear MEMBLOCK_NOMAP on memory in [base, base + size). */
  memblockClearNomap(base: number, size: number): void {
    size = checkRange("memblock_clear_nomap", base, size);
    this.setClrFlag(this.memory, base, size, false, MEMBLOCK_NOMAP);
  }

  /** memblockSetKhoScratchOnly - from now on allocate only from MEMBLOCK_KHO_SCRATCH memory. */
  memblockSetKhoScratchOnly(): void {
    this.khoScratchOnly = true;
  }

  /** memblockClearKhoScratchOnly - leave scratch-only mode. */
  memblockClearKhoScratchOnly(): void {
    this.khoScratchOnly = false;
  }

  /** True while in KHO scratch-only mode. */
  memblockKhoScratchOnly(): boolean {
    return this.khoScratchOnly;
  }

  /** memblockSetBottomUp - choose the allocation direction (the kernel default is top-down). */
  memblockSetBottomUp(enable: boolean): void {
    this.bottomUp = enable;
  }

  /** memblockBottomUp - true when allocations search bottom-up. */
  memblockBottomUp(): boolean {
    return this.bottomUp;
  }

  /** memblockSetCurrentLimit - upper bound for MEMBLOCK_ALLOC_ACCESSIBLE allocations. */
  memblockSetCurrentLimit(limit: number): void {
    checkPhys("memblock_set_current_limit", "limit", limit);
    this.currentLimit = limit;
  }

  /** memblockGetCurrentLimit - the current allocation limit. */
  memblockGetCurrentLimit(): number {
    return this.currentLimit;
  }

  /* ------------------------------ allocation ---------------------------- */

  /** choose_memblock_flags(): the memory attributes allocations ask for. */
  private chooseFlags(): number {
    if (this.khoScratchOnly) return MEMBLOCK_KHO_SCRATCH;
    return this.systemHasSomeMirror ? MEMBLOCK_MIRROR : MEMBLOCK_NONE;
  }

  /**
   * memblock_find_in_range_node - find @size free bytes aligned to @align
   * in [start, end), top-down unless bottom-up is set.
   *
   * Return: the address, or 0 when nothing fits.
   */
  private findInRange(size: number, align: number, start: number, end: number, flags: number): number {
    if (end === MEMBLOCK_ALLOC_ACCESSIBLE || end === MEMBLOCK_ALLOC_NOLEAKTRACE) end = this.currentLimit;
    // avoid allocating the first page
    start = Math.max(start, PAGE_SIZE);
    end = Math.max(start, end);
    if (this.bottomUp) {
      for (const [s, e] of this.freeSpans(flags, start, end, false)) {
        const thisStart = clamp(s, start, end);
        const thisEnd = clamp(e, start, end);
        const cand = roundUp(thisStart, align);
        if (cand < thisEnd && thisEnd - cand >= size) return cand;
      }
    } else {
      for (const [s, e] of this.freeSpans(flags, start, end, true)) {
        const thisStart = clamp(s, start, end);
        const thisEnd = clamp(e, start, end);
        if (thisEnd < size) continue;
        const cand = roundDown(thisEnd - size, align);
        if (cand >= thisStart) return cand;
      }
    }
    return 0;
  }

  /**
   * memblockPhysAllocRange - allocate and reserve a block inside [start, end).
   * @size: size of the block in bytes (> 0)
   * @align: alignment, a power of two; 0 means SMP_CACHE_BYTES
   * @start: lowest acceptable address
   * @end: end of the acceptable range; MEMBLOCK_ALLOC_ACCESSIBLE (0) means
   *       the current limit, MEMBLOCK_ALLOC_ANYWHERE means no limit
   *
   * Searches free memory (memory minus reserved, without NOMAP and
   * DRIVER_MANAGED memory; in scratch-only mode only MEMBLOCK_KHO_SCRATCH
   * memory), top-down by default, never in the first page. The block is
   * reserved with MEMBLOCK_RSRV_KERN.
   *
   * Return: physical address of the block, or 0 on failure.
   */
  memblockPhysAllocRange(size: number, align: number, start: number, end: number): number {
    const fn = "memblock_phys_alloc_range";
    checkPhys(fn, "size", size);
    if (size === 0) throw new MemblockError("EINVAL", `${fn}: size must not be 0`);
    checkAlign(fn, align);
    checkPhys(fn, "start", start);
    checkPhys(fn, "end", end);
    if (align === 0) align = SMP_CACHE_BYTES;
    let flags = this.chooseFlags();
    for (;;) {
      const found = this.findInRange(size, align, start, end, flags);
      if (found) {
        this.addRange(this.reserved, found, Math.min(size, PHYS_ADDR_MAX - found), MEMBLOCK_RSRV_KERN);
        return found;
      }
      if (flags & MEMBLOCK_MIRROR) {
        flags &= ~MEMBLOCK_MIRROR;
        continue;
      }
      return 0;
    }
  }

  /**
   * memblockPhysAlloc - allocate and reserve a block anywhere below the
   * current limit (memblock_phys_alloc_range(size, align, 0, ACCESSIBLE)).
   * @size: size of the block in bytes (> 0)
   * @align: alignment, a power of two; 0 means SMP_CACHE_BYTES
   *
   * Return: physical address of the block, or 0 on failure.
   */
  memblockPhysAlloc(size: number, align: number): number {
    return this.memblockPhysAllocRange(size, align, 0, MEMBLOCK_ALLOC_ACCESSIBLE);
  }

  /**
   * memblockAllocOrThrow - memblockPhysAllocRange() that throws instead of
   * returning 0.
   * @size: size of the block in bytes (> 0)
   * @align: alignment, a power of two; 0 means SMP_CACHE_BYTES
   * @start: lowest acceptable address (default 0)
   * @end: end of the acceptable range (default MEMBLOCK_ALLOC_ACCESSIBLE)
   *
   * Return: physical address of the block.
   * Throws: MemblockError ENOMEM naming the size, the range and, in
   * scratch-only mode, that only KHO scratch memory was searched.
   */
  memblockAllocOrThrow(size: number, align: number, start = 0, end = MEMBLOCK_ALLOC_ACCESSIBLE): number {
    const found = this.memblockPhysAllocRange(size, align, start, end);
    if (found) return found;
    const limit = end === MEMBLOCK_ALLOC_ACCESSIBLE || end === MEMBLOCK_ALLOC_NOLEAKTRACE ? this.currentLimit : end;
    const where = this.khoScratchOnly
      ? "in KHO scratch memory (scratch-only mode: only MEMBLOCK_KHO_SCRATCH memory is a candidate)"
      : "in free memory";
    throw new MemblockError(
      "ENOMEM",
      `memblock: failed to allocate ${size} (${hex(size)}) bytes aligned to ${hex(align || SMP_CACHE_BYTES)} ` +
        `${where} within [${hex(start)}, ${hex(limit)})`,
    );
  }

  /* -------------------------- queries and walks ------------------------- */

  /** should_skip_region() for memory regions (one node, movable_node off). */
  private skipMemory(m: MemblockRegion, flags: number): boolean {
    if (flags & MEMBLOCK_MIRROR && !(m.flags & MEMBLOCK_MIRROR)) return true;
    if (!(flags & MEMBLOCK_NOMAP) && m.flags & MEMBLOCK_NOMAP) return true;
    if (!(flags & MEMBLOCK_DRIVER_MANAGED) && m.flags & MEMBLOCK_DRIVER_MANAGED) return true;
    if (flags & MEMBLOCK_KHO_SCRATCH && !(m.flags & MEMBLOCK_KHO_SCRATCH)) return true;
    return false;
  }

  /**
   * Free spans [start, end) as __next_mem_range() / __next_mem_range_rev()
   * yield them: each memory region that is not skipped, minus the reserved
   * regions, in ascending or (@reverse) descending order. Only the parts
   * inside [lo, hi) are produced (the kernel's callers clamp the same way).
   * Binary search finds the first memory and reserved regions involved, so
   * a walk costs O(log n) plus the spans it visits.
   */
  private *freeSpans(flags: number, lo: number, hi: number, reverse: boolean): Generator<[number, number]> {
    const mem = this.memory;
    const rsv = this.reserved;
    if (hi <= lo) return;
    if (reverse) {
      for (let mp = mem.lastStartingBelow(hi); mp; mp = mem.prev(mp)) {
        const m = mem.at(mp);
        const mEnd = regionEnd(m);
        if (mEnd <= lo) break;
        if (this.skipMemory(m, flags)) continue;
        const ms = Math.max(m.base, lo);
        let top = Math.min(mEnd, hi);
        let rp = rsv.lastStartingBelow(top);
        while (top > ms) {
          if (!rp) {
            yield [ms, top];
            break;
          }
          const r = rsv.at(rp);
          const gapStart = Math.max(regionEnd(r), ms);
          if (gapStart < top) yield [gapStart, top];
          top = Math.min(top, r.base);
          rp = rsv.prev(rp);
        }
      }
    } else {
      for (let mp = mem.firstEndingAbove(lo); !mem.isEnd(mp); mp = mem.next(mp)) {
        const m = mem.at(mp);
        if (m.base >= hi) break;
        if (this.skipMemory(m, flags)) continue;
        const me = Math.min(regionEnd(m), hi);
        let bottom = Math.max(m.base, lo);
        let rp = rsv.firstEndingAbove(bottom);
        while (bottom < me) {
          if (rsv.isEnd(rp)) {
            yield [bottom, me];
            break;
          }
          const r = rsv.at(rp);
          const gapEnd = Math.min(r.base, me);
          if (bottom < gapEnd) yield [bottom, gapEnd];
          bottom = Math.max(bottom, regionEnd(r));
          rp = rsv.next(rp);
        }
      }
    }
  }

  /**
   * forEachFreeMemRange - for_each_free_mem_range(): free ranges (memory
   * minus reserved) in ascending order, one memory region at a time, so a
   * range never crosses a memory region boundary.
   * @flags: memory attributes asked for; with MEMBLOCK_NONE (the default,
   *         what memblock_free_all() uses) NOMAP and DRIVER_MANAGED memory
   *         is skipped.
   */
  *forEachFreeMemRange(flags: number = MEMBLOCK_NONE): Generator<PhysRange> {
    for (const [s, e] of this.freeSpans(flags, 0, PHYS_ADDR_MAX, false)) yield { base: s, size: e - s };
  }

  /**
   * freeRanges - what memblock_free_all() hands to the buddy allocator:
   * forEachFreeMemRange() collected into an array.
   * @flags: as for forEachFreeMemRange()
   */
  freeRanges(flags: number = MEMBLOCK_NONE): PhysRange[] {
    return [...this.forEachFreeMemRange(flags)];
  }

  /** memblockPhysMemSize - total size of the memory regions. */
  memblockPhysMemSize(): number {
    return this.memory.totalSize;
  }

  /** memblockReservedSize - total size of the reserved regions. */
  memblockReservedSize(): number {
    return this.reserved.totalSize;
  }

  /** memblockStartOfDRAM - base of the first memory region (0 when none). */
  memblockStartOfDRAM(): number {
    const first = this.memory.first();
    return first ? first.base : 0;
  }

  /** memblockEndOfDRAM - end of the last memory region (0 when none). */
  memblockEndOfDRAM(): number {
    const last = this.memory.last();
    return last ? regionEnd(last) : 0;
  }

  /**
   * memblockIsRegionReserved - true when [base, base + size) overlaps a
   * reserved region (memblock_overlaps_region() on the reserved list).
   */
  memblockIsRegionReserved(base: number, size: number): boolean {
    size = checkRange("memblock_is_region_reserved", base, size);
    const p = this.reserved.firstEndingAbove(base);
    return !this.reserved.isEnd(p) && this.reserved.at(p).base < base + size;
  }

  /** memblockIsReserved - true when @addr lies in a reserved region. */
  memblockIsReserved(addr: number): boolean {
    checkPhys("memblock_is_reserved", "addr", addr);
    return this.reserved.search(addr) !== undefined;
  }

  /** memblockIsMemory - true when @addr lies in a memory region. */
  memblockIsMemory(addr: number): boolean {
    checkPhys("memblock_is_memory", "addr", addr);
    return this.memory.search(addr) !== undefined;
  }

  /**
   * memblockIsRegionMemory - true when one memory region contains all of
   * [base, base + size). As in the kernel, a range spanning two touching
   * regions with different flags is not "region memory".
   */
  memblockIsRegionMemory(base: number, size: number): boolean {
    size = checkRange("memblock_is_region_memory", base, size);
    const r = this.memory.search(base);
    return r !== undefined && regionEnd(r) >= base + size;
  }

  /** regions - copies of the regions of @type, ascending. */
  regions(type: MemblockTypeName): MemblockRegion[] {
    const out: MemblockRegion[] = [];
    for (const r of this.store(type)) out.push({ base: r.base, size: r.size, flags: r.flags });
    return out;
  }

  /** forEachRegion - walk copies of the regions of @type without building an array. */
  *forEachRegion(type: MemblockTypeName): Generator<MemblockRegion> {
    for (const r of this.store(type)) yield { base: r.base, size: r.size, flags: r.flags };
  }

  /** regionCount - number of regions of @type (memblock.<type>.cnt; 0 when empty). */
  regionCount(type: MemblockTypeName): number {
    return this.store(type).cnt;
  }

  /** totalSize - memblock.<type>.total_size. */
  totalSize(type: MemblockTypeName): number {
    return this.store(type).totalSize;
  }

  /**
   * memblockSelfCheck - verify the invariants the kernel keeps (and the
   * model's own bookkeeping): regions sorted, non-empty, non-overlapping,
   * fully merged, count and total size consistent, no empty chunk.
   * Throws an Error describing the first violation. O(n); for tests.
   */
  memblockSelfCheck(): void {
    for (const type of [this.memory, this.reserved]) {
      let cnt = 0;
      let total = 0;
      let prev: MemblockRegion | undefined;
      for (const chunk of type.chunks) {
        if (chunk.len === 0) throw new Error(`${type.name}: empty chunk`);
      }
      for (const r of type) {
        const at = `${type.name}[${cnt}] [${hex(r.base)}, +${hex(r.size)})`;
        if (!(r.size > 0)) throw new Error(`${at}: empty region`);
        if (regionEnd(r) > PHYS_ADDR_MAX) throw new Error(`${at}: passes PHYS_ADDR_MAX`);
        if (prev) {
          if (regionEnd(prev) > r.base) throw new Error(`${at}: overlaps or is out of order`);
          if (regionEnd(prev) === r.base && prev.flags === r.flags) throw new Error(`${at}: not merged`);
        }
        cnt++;
        total += r.size;
        prev = r;
      }
      if (cnt !== type.cnt) throw new Error(`${type.name}: cnt ${type.cnt} but ${cnt} regions`);
      if (total !== type.totalSize) throw new Error(`${type.name}: total_size ${type.totalSize} but ${total}`);
    }
  }

  /** memblockDumpAll - text like __memblock_dump_all(), for logs and debugging. */
  memblockDumpAll(): string {
    const lines: string[] = [" memory size = " + hex(this.memory.totalSize) + " reserved size = " + hex(this.reserved.totalSize)];
    for (const type of [this.memory, this.reserved]) {
      lines.push(` ${type.name}.cnt  = ${hex(type.cnt)}`);
      let idx = 0;
      for (const r of type) {
        const last = regionEnd(r) - 1;
        lines.push(`  ${type.name}[${hex(idx++)}]\t[${hex(r.base)}-${hex(last)}], ${hex(r.size)} bytes flags: ${memblockFlagNames(r.flags)}`);
      }
    }
    return lines.join("\n");
  }
}
