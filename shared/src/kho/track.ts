/*
 * Keep track of memory that is to be preserved across KHO.
 *
 * The seed's struct kho_mem_track (a maple tree of ranges, each carrying a
 * kho_range_desc_t), fixed:
 *  - neighbours coalesce only when they are adjacent AND carry equal data
 *    (the seed merged whatever the neighbour's data was);
 *  - a preserve that overlaps a stored range with different data fails with
 *    EEXIST instead of silently overwriting it (the seed's mas_store did);
 *  - unpreserve exists and splits ranges.
 *
 * Ranges are [start, start + size) with page-aligned start and size. Stored
 * ranges never overlap and no two adjacent ranges have equal data, so the
 * stored set is canonical: the maximal runs of equal data over the preserved
 * pages. They live in two places (see KhoMemTrack): an append-only "tail" in
 * typed arrays that every ascending preserve extends at O(1) without an
 * allocation, and a B+ tree keyed by start for whatever arrives out of order.
 */
import { KHO_DATA_ORDER_MASK, KHO_DATA_PHYS, KHO_DATA_FOLIO, KHO_DATA_VALID_MASK, khoDataIsFolio, khoDataOrder } from "../abi/ranges.js";
import { PAGE_SIZE } from "../abi/page.js";
import { BTree } from "../lib/btree.js";
import { ctz, ilog2 } from "../lib/bits.js";
import { hex } from "../lib/bytes.js";
import { lastAtOrBelow } from "../lib/search.js";

/** One preserved range as handed out by the tracker and the walker. */
export interface KhoMemRange {
  /** Physical start, page aligned. */
  start: number;
  /** Bytes, page aligned, non-zero. */
  size: number;
  /** khoser_mem_range.data: KHO_DATA_PHYS or khoDataFolio(order). */
  data: number;
}

/**
 * Ranges as parallel typed arrays (struct-of-arrays): entry i is
 * [start[i], start[i] + size[i]) with data[i]. Only the first @count entries
 * are meaningful. What the tracker hands the serializer and what the walk
 * produces, without an object per range.
 */
export interface KhoRangeTable {
  readonly count: number;
  readonly start: Float64Array;
  readonly size: Float64Array;
  /** khoser_mem_range.data, at most KHO_DATA_VALID_MASK. */
  readonly data: Uint16Array;
}

/** Error codes of {@link KhoTrackError}, after the kernel's errnos. */
export type KhoTrackErrorCode = "EINVAL" | "EEXIST";

/** Thrown by {@link KhoMemTrack} on a bad argument or a conflicting preserve. */
export class KhoTrackError extends Error {
  constructor(
    readonly code: KhoTrackErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "KhoTrackError";
  }
}

/*
 * A stored range. Mutable on purpose: the fast path extends `end` in place,
 * which never changes the B+ tree key (start).
 */
interface Node {
  start: number;
  end: number;
  data: number;
}

function fmtRange(start: number, end: number, data: number): string {
  return `[${hex(start)}, ${hex(end)}) data ${hex(data)}`;
}

/* Folio sizes by order, up to the largest that is still a safe integer. */
const FOLIO_SIZES: readonly number[] = Array.from({ length: 64 }, (_, o) => PAGE_SIZE * 2 ** o).filter((v) =>
  Number.isSafeInteger(v),
);

/* 1 / folio size by order: exact, since every size is a power of two. */
const FOLIO_RECIP: readonly number[] = FOLIO_SIZES.map((v) => 1 / v);

/** Folio bytes by order as a typed array over every u8 order, 0 past KHO_TRACK_MAX_ORDER (for hot loops: a table read, not a power). */
export const KHO_FOLIO_SIZE = new Float64Array(256).map((_, o) => FOLIO_SIZES[o] ?? 0);

/** Highest folio order the tracker accepts: PAGE_SIZE << order must be below 2^53. */
export const KHO_TRACK_MAX_ORDER = FOLIO_SIZES.length - 1;

/**
 * khoFolioSize - bytes of one folio of @order (PAGE_SIZE << order without the
 * 32-bit overflow of `<<`); NaN for an order above KHO_TRACK_MAX_ORDER.
 */
export function khoFolioSize(order: number): number {
  return FOLIO_SIZES[order] ?? NaN;
}

/* Initial capacity of the tail arrays (entries); doubled as needed. */
const TAIL_INITIAL = 1024;

/**
 * struct kho_mem_track - the set of ranges to preserve across KHO.
 *
 * Two stores, one canonical set. The tail holds the highest ranges in
 * parallel typed arrays (start, size, data), ascending; the B+ tree holds
 * every range below them. Invariant: every tree range ends at or below the
 * tail's first start, and where one ends exactly there its data differs, so
 * tree ranges followed by tail ranges are the canonical list. A preserve at
 * or above the last tail range's start (any ascending stream: isolated or
 * contiguous folios) extends or appends to the tail: a few compares and
 * stores, no allocation. Anything else goes to the tree; when it would
 * touch the tail, the tail is moved into the tree first ("spilled"), so each
 * range is moved at most once and the tree path costs what it always did.
 *
 * Not thread safe (nothing here is). All methods throw {@link KhoTrackError}
 * and leave the set of ranges unchanged on failure.
 */
export class KhoMemTrack {
  private readonly tree: BTree<number, Node> = new BTree<number, Node>();
  /* Bytes in the tree's ranges (the tail's are summed when asked: totalBytes). */
  private total = 0;

  /* The tail: tn ranges, ascending, above every tree range. */
  private ts = new Float64Array(TAIL_INITIAL);
  private tz = new Float64Array(TAIL_INITIAL);
  private td = new Uint16Array(TAIL_INITIAL);
  private tn = 0;
  /*
   * The last tail range, mirrored in scalars for the hot path: start
   * (Infinity when the tail is empty), end, data. The hot path moves only
   * `he`; tz[tn - 1] catches up in sync(), which everything that reads the
   * tail calls first. `total` counts the tree's ranges only (totalBytes adds
   * the tail's, spill() moves them in), so neither an extend nor an append
   * touches it.
   */
  private hs = Infinity;
  private he = 0;
  private hd = 0;
  /* tailAtOrBelow()'s previous answer; the pair array the tree's lookups fill (no allocation per lookup). */
  private tailHint = 0;
  private readonly pair: [number, Node] = [0, { start: 0, end: 0, data: 0 }];

  /*
   * Tree fast-path cache: the tree range the last tree preserve stored, and
   * the start and data of the range right after it, in the tree or the tail
   * (Infinity / -1 when none). Valid only while `last` is set; anything that
   * may change the neighbourhood other than through the fast path clears it.
   */
  private last: Node | undefined;
  private lastNextStart = Infinity;
  private lastNextData = -1;

  /** Number of stored (coalesced) ranges. */
  get count(): number {
    return this.tree.size + this.tn;
  }

  /** Bytes preserved in total. */
  get totalBytes(): number {
    this.sync();
    let t = this.total;
    for (let i = 0; i < this.tn; i++) t += this.tz[i]!;
    return t;
  }

  /* Bring the last tail range's stored size up to `he` (the hot path moves `he` alone). */
  private sync(): void {
    const i = this.tn - 1;
    if (i >= 0) this.tz[i] = this.he - this.hs;
  }

  /**
   * ranges - the stored ranges in ascending address order.
   *
   * Yields copies; the tracker must not be modified while iterating.
   */
  ranges(): IterableIterator<KhoMemRange> {
    // One array filled in a plain loop, then its iterator: a generator's resume per range costs several times more.
    this.sync();
    const out = new Array<KhoMemRange>(this.count);
    let i = 0;
    for (const [, n] of this.tree.entries()) out[i++] = { start: n.start, size: n.end - n.start, data: n.data };
    const { ts, tz, td } = this;
    for (let k = 0; k < this.tn; k++) out[i++] = { start: ts[k]!, size: tz[k]!, data: td[k]! };
    return out[Symbol.iterator]();
  }

  /**
   * forEachRange - call @visit(start, size, data) for each stored range in
   * ascending address order, making no object per range (ranges() makes
   * one each: 1M ranges cost ~1 s of allocation and GC in report.json).
   * Returns the number visited. The tracker must not change meanwhile.
   */
  forEachRange(visit: (start: number, size: number, data: number) => void): number {
    this.sync();
    for (const [, n] of this.tree.entries()) visit(n.start, n.end - n.start, n.data);
    const { ts, tz, td } = this;
    for (let k = 0; k < this.tn; k++) visit(ts[k]!, tz[k]!, td[k]!);
    return this.count;
  }

  /**
   * rangeTable - the stored ranges, ascending, as typed arrays.
   *
   * When nothing is in the tree (every ascending workload) the arrays are
   * views of the tracker's own tail, valid until the next change; otherwise a
   * fresh copy. Either way no object per range is made (the serializer's
   * input).
   */
  rangeTable(): KhoRangeTable {
    const parts = this.rangeParts();
    if (parts.length === 1) return parts[0]!;
    const n = this.count;
    const start = new Float64Array(n);
    const size = new Float64Array(n);
    const data = new Uint16Array(n);
    let i = 0;
    for (const p of parts) {
      start.set(p.start, i);
      size.set(p.size, i);
      data.set(p.data, i);
      i += p.count;
    }
    return { count: n, start, size, data };
  }

  /**
   * rangeParts - the stored ranges, ascending, as consecutive tables: the
   * tree's (a copy) then the tail's (views of the tracker's own arrays, valid
   * until the next change); empty ones left out, at least one table. The
   * serializer reads these, so a few out-of-order ranges (kho_test's own
   * pages) do not cost a copy of a million tail ranges.
   */
  rangeParts(): KhoRangeTable[] {
    this.sync();
    const tn = this.tn;
    const tail: KhoRangeTable = { count: tn, start: this.ts.subarray(0, tn), size: this.tz.subarray(0, tn), data: this.td.subarray(0, tn) };
    const m = this.tree.size;
    if (m === 0) return [tail];
    const start = new Float64Array(m);
    const size = new Float64Array(m);
    const data = new Uint16Array(m);
    let i = 0;
    for (const [, r] of this.tree.entries()) {
      start[i] = r.start;
      size[i] = r.end - r.start;
      data[i++] = r.data;
    }
    const head: KhoRangeTable = { count: m, start, size, data };
    return tn === 0 ? [head] : [head, tail];
  }

  /**
   * rangeAt - the stored range containing byte @addr, if any.
   */
  rangeAt(addr: number): KhoMemRange | undefined {
    this.sync();
    if (this.tn > 0 && addr >= this.ts[0]!) {
      const i = this.tailAtOrBelow(addr);
      const s = this.ts[i]!;
      const z = this.tz[i]!;
      return addr < s + z ? { start: s, size: z, data: this.td[i]! } : undefined;
    }
    const p = this.tree.getPairOrNextLower(addr);
    if (p === undefined || p[1].end <= addr) return undefined;
    return { start: p[1].start, size: p[1].end - p[1].start, data: p[1].data };
  }

  /**
   * intersects - true when any byte of [@addr, @addr + @size) is preserved.
   * Lets allocators (e.g. for serialization chunks) avoid preserved memory.
   */
  intersects(addr: number, size: number): boolean {
    return size > 0 && this.clearUntil(addr) < addr + size;
  }

  /**
   * clearUntil - how far memory from @addr on is free of preserved ranges.
   *
   * Returns @addr when @addr itself is preserved, else the start of the
   * lowest preserved range above @addr (Infinity when none): every byte of
   * [@addr, result) is unpreserved. One lookup answers for a whole gap, so an
   * allocator checking many pages in it (the serializer's chunks) asks once.
   */
  clearUntil(addr: number): number {
    this.sync();
    const tailFirst = this.tn > 0 ? this.ts[0]! : Infinity;
    if (addr >= tailFirst) {
      const i = this.tailAtOrBelow(addr);
      if (this.ts[i]! + this.tz[i]! > addr) return addr;
      return i + 1 < this.tn ? this.ts[i + 1]! : Infinity;
    }
    if (this.tree.size === 0) return tailFirst;
    const p = this.tree.getPairOrNextLower(addr, this.pair);
    if (p !== undefined && p[1].end > addr) return addr;
    const n = this.tree.nextHigherPair(addr, this.pair);
    return n !== undefined && n[0] < tailFirst ? n[0] : tailFirst;
  }

  /**
   * __kho_preserve - record that [@addr, @addr + @size) is preserved with @data.
   * @addr: physical start, page aligned, safe integer
   * @size: bytes, page aligned, non-zero
   * @data: KHO_DATA_PHYS or khoDataFolio(order); a folio run must be aligned
   *        to its folio size
   *
   * Coalesces with neighbours that are adjacent or overlapping and carry equal
   * data; re-preserving (part of) what is already preserved with the same data
   * is harmless. Throws KhoTrackError EINVAL on a bad argument and EEXIST when
   * the range overlaps a stored range with different data.
   */
  khoPreserve(addr: number, size: number, data: number): void {
    khoCheckRange("kho_preserve", addr, size);
    checkData(addr, size, data);
    this.preserve(addr, addr + size, data);
  }

  /* __kho_preserve proper, arguments already checked. */
  private preserve(addr: number, end: number, data: number): void {
    const ls = this.hs;
    if (addr >= ls) {
      // At or above the last tail range's start: nothing but that range can be touched.
      const le = this.he;
      if (addr <= le && this.hd === data) {
        // Extends (or re-preserves) the last range: only its end moves (sync() does the rest).
        if (end > le) this.he = end;
        return;
      }
      if (addr >= le) {
        // After the last range (or right at its end with other data): a new one.
        this.append(addr, end, data, le - ls);
        return;
      }
      throw new KhoTrackError("EEXIST", `kho_preserve ${fmtRange(addr, end, data)} overlaps preserved ${fmtRange(ls, le, this.hd)}`);
    }
    if (this.tn > 0) {
      // Below the tail: the tree takes it unless it would touch the tail.
      const t0 = this.ts[0]!;
      if (end > t0 || (end === t0 && this.td[0] === data)) this.spill();
    } else if (this.startsTail(addr, data)) {
      this.append(addr, end, data, 0);
      return;
    }
    this.preserveTree(addr, end, data);
  }

  /* With the tail empty: true when a range at @addr lies past every tree range and cannot merge with the last. */
  private startsTail(addr: number, data: number): boolean {
    const k = this.tree.maxKey();
    if (k === undefined) return true;
    const n = this.tree.get(k)!;
    return addr > n.end || (addr === n.end && n.data !== data);
  }

  /*
   * Append [addr, end) to the tail (caller checked it lies past and apart from
   * the last range, whose size is @lastSize; ignored when the tail is empty).
   * The old last range is closed (its size stored and counted); the new one's
   * size waits for sync() or the next append.
   */
  private append(addr: number, end: number, data: number, lastSize: number): void {
    let n = this.tn;
    if (n > 0) this.tz[n - 1] = lastSize;
    if (n === this.ts.length) this.growTail();
    this.ts[n] = addr;
    this.td[n] = data;
    this.tn = ++n;
    this.hs = addr;
    this.he = end;
    this.hd = data;
    // A tree range's cached next neighbour may now be the tail's first.
    if (n === 1) this.last = undefined;
  }

  /**
   * reserve - make room for @n more ranges, so that the preserves that follow
   * neither allocate nor first-touch memory.
   * @n: how many ranges the caller may add (khoFolioRuns() of its folios)
   *
   * The storage is written once here: on this VM a first-touch page fault
   * cost 20-90 us on a loaded day (~1.3 us on a quiet one), 18 bytes per
   * range, which would otherwise be most of an isolated preserve's time (the
   * C reference maps its arena with MAP_POPULATE before timing for the same
   * reason). Changes no range.
   */
  reserve(n: number): void {
    if (!(n > 0)) return;
    const need = this.tn + Math.min(n, 2 ** 30);
    if (need > this.ts.length) this.growTail(need);
    // Touch what the coming preserves will write (zeros are never read: only [0, tn) is).
    const end = Math.min(need, this.ts.length);
    this.ts.fill(0, this.tn, end);
    this.tz.fill(0, this.tn, end);
    this.td.fill(0, this.tn, end);
  }

  private growTail(min = 0): void {
    const cap = Math.max(this.ts.length * 2, min);
    const ts = new Float64Array(cap);
    const tz = new Float64Array(cap);
    const td = new Uint16Array(cap);
    ts.set(this.ts);
    tz.set(this.tz);
    td.set(this.td);
    this.ts = ts;
    this.tz = tz;
    this.td = td;
  }

  /* Move every tail range into the tree (ascending keys above the tree's): the tail is empty after. */
  private spill(): void {
    this.sync();
    const { ts, tz, td } = this;
    // The tail's ranges leave it: count them in total.
    for (let i = 0; i < this.tn; i++) this.total += tz[i]!;
    for (let i = 0; i < this.tn; i++) this.tree.set(ts[i]!, { start: ts[i]!, end: ts[i]! + tz[i]!, data: td[i]! });
    this.tn = 0;
    this.hs = Infinity;
    this.last = undefined;
  }

  /* Index of the last tail range whose start is <= @addr (@addr >= ts[0]); a serializer asks about its chunk pages in order. */
  private tailAtOrBelow(addr: number): number {
    return (this.tailHint = lastAtOrBelow(this.ts, this.tn, addr, this.tailHint));
  }

  /* The tree's preserve: [addr, end) touches no tail range (the caller spilled otherwise). */
  private preserveTree(addr: number, end: number, data: number): void {
    /*
     * Fast path: the range starts inside, at the end of, or after the range
     * the previous tree preserve stored, and ends before the next stored range
     * (or right at it when that one's data differs, so no merge is due).
     * Descending or interleaved preserves below the tail take it.
     */
    const l = this.last;
    if (l !== undefined && addr >= l.start && (end < this.lastNextStart || (end === this.lastNextStart && this.lastNextData !== data))) {
      if (addr <= l.end && l.data === data) {
        // Extends (or re-preserves) the last range: only its end moves.
        if (end > l.end) {
          this.total += end - l.end;
          l.end = end;
        }
        return;
      }
      if (addr > l.end || (addr === l.end && l.data !== data)) {
        // A new range in the gap after the last one: nothing to merge with.
        const n: Node = { start: addr, end, data };
        this.tree.set(addr, n);
        this.total += end - addr;
        this.last = n;
        return;
      }
      // Overlaps the last range with different data: the slow path reports it.
    }
    this.preserveSlow(addr, end, data);
  }

  private preserveSlow(addr: number, end: number, data: number): void {
    // Every stored range that overlaps or touches [addr, end].
    const touching: Node[] = [];
    const left = this.tree.getPairOrNextLower(addr);
    if (left !== undefined && left[1].end >= addr) touching.push(left[1]);
    this.tree.forRange(addr, end, true, (k, v) => {
      if (left === undefined || k !== left[0]) touching.push(v);
    });

    // Check everything before changing anything, so a failure changes nothing.
    for (const t of touching) {
      if (t.data !== data && t.start < end && addr < t.end) {
        throw new KhoTrackError(
          "EEXIST",
          `kho_preserve ${fmtRange(addr, end, data)} overlaps preserved ${fmtRange(t.start, t.end, t.data)}`,
        );
      }
    }

    let lo = addr;
    let hi = end;
    let covered = 0;
    for (const t of touching) {
      if (t.data !== data) continue; // merely adjacent, different data: kept apart
      lo = Math.min(lo, t.start);
      hi = Math.max(hi, t.end);
      covered += t.end - t.start;
      this.tree.delete(t.start);
    }
    const n: Node = { start: lo, end: hi, data };
    this.tree.set(lo, n);
    this.total += hi - lo - covered;

    this.last = n;
    const next = this.tree.nextHigherPair(lo);
    if (next !== undefined) {
      this.lastNextStart = next[1].start;
      this.lastNextData = next[1].data;
    } else if (this.tn > 0) {
      this.lastNextStart = this.ts[0]!;
      this.lastNextData = this.td[0]!;
    } else {
      this.lastNextStart = Infinity;
      this.lastNextData = -1;
    }
  }

  /**
   * kho_preserve_phys - preserve a physically contiguous range across KHO.
   * @phys: physical address of the range, page aligned
   * @size: size of the range, page aligned, non-zero
   */
  khoPreservePhys(phys: number, size: number): void {
    this.khoPreserve(phys, size, KHO_DATA_PHYS);
  }

  /**
   * kho_preserve_folio - preserve one folio of @order at @phys across KHO.
   * @phys: physical address, aligned to PAGE_SIZE << @order
   * @order: folio order, 0..KHO_TRACK_MAX_ORDER
   */
  khoPreserveFolio(phys: number, order: number): void {
    /*
     * Checked here rather than via khoPreserve(): this is the hot call. An
     * integer or non-integer order outside 0..KHO_TRACK_MAX_ORDER has no
     * FOLIO_SIZES entry. Alignment: phys / size, as a multiply by the exact
     * reciprocal of a power of two, is a whole number exactly when phys is a
     * multiple of size (so an integer too); `>>>` on an address past 2^31 and
     * `%` on doubles both take slow paths in V8. The bound keeps phys + size
     * safe.
     */
    const size = FOLIO_SIZES[order];
    if (size === undefined) checkOrder(order);
    else {
      const q = phys * FOLIO_RECIP[order]!;
      if (!(q >= 0 && q === Math.floor(q) && phys <= Number.MAX_SAFE_INTEGER - size)) {
        checkFolio(phys, order);
        return;
      }
      // preserve()'s tail cases first, inline: fewer calls while the JIT warms up.
      const end = phys + size;
      const data = KHO_DATA_FOLIO | order;
      const ls = this.hs;
      const le = this.he;
      if (phys >= ls) {
        if (phys <= le && this.hd === data) {
          if (end > le) this.he = end;
          return;
        }
        const n = this.tn;
        if (phys >= le && n > 0 && n < this.ts.length) {
          // append() of a range past the last, inline: one function for V8 to compile before the loop runs fast.
          const lastSize = le - ls;
          this.tz[n - 1] = lastSize;
          this.ts[n] = phys;
          this.td[n] = data;
          this.tn = n + 1;
          this.hs = phys;
          this.he = end;
          this.hd = data;
          return;
        }
      }
      this.preserve(phys, end, data);
    }
  }

  /**
   * kho_unpreserve - stop preserving [@addr, @addr + @size).
   *
   * Removes the range from whatever stored ranges it intersects, splitting
   * them (both sides keep their data). Unpreserving memory that is not
   * preserved is harmless. Throws EINVAL on an unaligned or empty range, and
   * when a cut would fall inside a folio (a folio run may only be split at
   * folio boundaries).
   */
  khoUnpreserve(addr: number, size: number): void {
    khoCheckRange("kho_unpreserve", addr, size);
    this.sync();
    const end = addr + size;
    // Cutting is the tree's business: hand it the tail when the cut reaches it (rare, once per range).
    if (this.tn > 0 && end > this.ts[0]!) this.spill();

    const hits: Node[] = [];
    const left = this.tree.getPairOrNextLower(addr);
    if (left !== undefined && left[1].end > addr) hits.push(left[1]);
    this.tree.forRange(addr, end, false, (k, v) => {
      if (left === undefined || k !== left[0]) hits.push(v);
    });
    if (hits.length === 0) return;

    // Only the first and last hit can be cut; check both before changing anything.
    for (const h of [hits[0]!, hits[hits.length - 1]!]) {
      if (!khoDataIsFolio(h.data)) continue;
      const fsz = khoFolioSize(khoDataOrder(h.data));
      for (const cut of [addr, end]) {
        if (cut > h.start && cut < h.end && cut % fsz !== 0) {
          throw new KhoTrackError(
            "EINVAL",
            `kho_unpreserve [${hex(addr)}, ${hex(end)}) cuts the folio run ${fmtRange(h.start, h.end, h.data)} at ${hex(cut)}, inside a folio of ${hex(fsz)} bytes`,
          );
        }
      }
    }

    this.last = undefined;
    for (const h of hits) {
      const cutLo = Math.max(h.start, addr);
      const cutHi = Math.min(h.end, end);
      this.total -= cutHi - cutLo;
      if (h.end > end) this.tree.set(end, { start: end, end: h.end, data: h.data });
      if (h.start < addr) {
        h.end = addr; // key (start) unchanged: shrink in place
      } else {
        this.tree.delete(h.start);
      }
    }
  }

  /** kho_unpreserve_phys - stop preserving [@phys, @phys + @size). */
  khoUnpreservePhys(phys: number, size: number): void {
    this.khoUnpreserve(phys, size);
  }

  /** kho_unpreserve_folio - stop preserving the folio of @order at @phys. */
  khoUnpreserveFolio(phys: number, order: number): void {
    checkOrder(order);
    checkFolio(phys, order);
    this.khoUnpreserve(phys, khoFolioSize(order));
  }
}

/** khoCheckRange - EINVAL unless [addr, addr + size) is a non-empty, page-aligned, safe-integer range (shared by every tracker). */
export function khoCheckRange(fn: string, addr: number, size: number): void {
  if (!Number.isSafeInteger(addr) || addr < 0 || !Number.isSafeInteger(size) || !Number.isSafeInteger(addr + size)) {
    throw new KhoTrackError("EINVAL", `${fn}: range ${String(addr)}+${String(size)} is not a non-negative safe integer range`);
  }
  if (size <= 0) throw new KhoTrackError("EINVAL", `${fn}: size ${hex(size)} at ${hex(addr)} is not positive`);
  if (addr % PAGE_SIZE !== 0 || size % PAGE_SIZE !== 0) {
    throw new KhoTrackError("EINVAL", `${fn}: range ${hex(addr)}+${hex(size)} is not page aligned`);
  }
}

function checkOrder(order: number): void {
  if (!Number.isInteger(order) || order < 0 || order > KHO_DATA_ORDER_MASK || order > KHO_TRACK_MAX_ORDER) {
    throw new KhoTrackError("EINVAL", `folio order ${String(order)} is out of range 0..${KHO_TRACK_MAX_ORDER}`);
  }
}

/* Throws unless one folio of @order (a valid order) fits at @phys. */
function checkFolio(phys: number, order: number): void {
  const size = khoFolioSize(order);
  khoCheckRange("kho_preserve_folio", phys, size);
  if (phys % size !== 0) {
    throw new KhoTrackError("EINVAL", `folio at ${hex(phys)} is not aligned to its order-${order} folio size ${hex(size)}`);
  }
}

function checkData(addr: number, size: number, data: number): void {
  if (!Number.isInteger(data) || data < 0 || (data & ~KHO_DATA_VALID_MASK) !== 0 || data > KHO_DATA_VALID_MASK || (data !== 0 && (data & KHO_DATA_FOLIO) === 0)) {
    throw new KhoTrackError("EINVAL", `kho_preserve: data ${String(data)} has bits outside ${hex(KHO_DATA_VALID_MASK)}`);
  }
  if (khoDataIsFolio(data)) {
    const order = khoDataOrder(data);
    checkOrder(order);
    const fsz = khoFolioSize(order);
    // A folio run must consist of whole, naturally aligned folios.
    if (addr % fsz !== 0 || size % fsz !== 0) {
      throw new KhoTrackError(
        "EINVAL",
        `kho_preserve: folio run ${hex(addr)}+${hex(size)} is not aligned to its order-${order} folio size ${hex(fsz)}`,
      );
    }
  }
}

/**
 * khoFolioRuns - an upper bound on the ranges that preserving folios
 * [@from, @to) of @phys / @order in that order can add: the number of maximal
 * runs of adjacent folios of equal order (what KhoMemTrack.reserve() takes).
 */
export function khoFolioRuns(phys: Float64Array, order: Uint8Array, from: number, to: number): number {
  let n = 0;
  let prevEnd = -1;
  let prevOrder = -1;
  for (let i = from; i < to; i++) {
    const o = order[i]!;
    const p = phys[i]!;
    if (p !== prevEnd || o !== prevOrder) n++;
    prevEnd = p + KHO_FOLIO_SIZE[o]!;
    prevOrder = o;
  }
  return n;
}

/**
 * khoPhysBlocks - the blocks kho_preserve_phys() splits pages [@pfn, @endPfn)
 * into: order = min(ctz(pfn), ilog2(end_pfn - pfn)), then pfn += 1 << order
 * (kernel/kexec_handover.c, kho_preserve_phys(), commit
 * 00c010e130e58301db2ea0cec1eadc931e1cb8cf; kho-v2 splits the same way).
 */
export function khoPhysBlocks(pfn: number, endPfn: number): { pfn: number; order: number }[] {
  const out: { pfn: number; order: number }[] = [];
  while (pfn < endPfn) {
    const order = Math.min(ctz(pfn), ilog2(endPfn - pfn));
    out.push({ pfn, order });
    pfn += 2 ** order;
  }
  return out;
}
