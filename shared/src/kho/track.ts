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
 * Ranges are [start, start + size) with page-aligned start and size, held in
 * a B+ tree keyed by start. Stored ranges never overlap and no two adjacent
 * ranges have equal data, so the stored set is canonical: the maximal runs of
 * equal data over the preserved pages.
 */
import { KHO_DATA_ORDER_MASK, KHO_DATA_PHYS, KHO_DATA_FOLIO, KHO_DATA_VALID_MASK, khoDataFolio, khoDataIsFolio, khoDataOrder } from "../abi/ranges.js";
import { PAGE_SIZE } from "../abi/page.js";
import { BTree } from "../lib/btree.js";
import { ctz, ilog2 } from "../lib/bits.js";
import { hex } from "../lib/bytes.js";

/** One preserved range as handed out by the tracker and the walker. */
export interface KhoMemRange {
  /** Physical start, page aligned. */
  start: number;
  /** Bytes, page aligned, non-zero. */
  size: number;
  /** khoser_mem_range.data: KHO_DATA_PHYS or khoDataFolio(order). */
  data: number;
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

/** Highest folio order the tracker accepts: PAGE_SIZE << order must be below 2^53. */
export const KHO_TRACK_MAX_ORDER = FOLIO_SIZES.length - 1;

/**
 * khoFolioSize - bytes of one folio of @order (PAGE_SIZE << order without the
 * 32-bit overflow of `<<`); NaN for an order above KHO_TRACK_MAX_ORDER.
 */
export function khoFolioSize(order: number): number {
  return FOLIO_SIZES[order] ?? NaN;
}

/**
 * struct kho_mem_track - the set of ranges to preserve across KHO.
 *
 * Not thread safe (nothing here is). All methods throw {@link KhoTrackError}
 * and leave the tracker unchanged on failure.
 */
export class KhoMemTrack {
  private readonly tree: BTree<number, Node> = new BTree<number, Node>();
  private total = 0;

  /*
   * Fast-path cache: the range the last successful preserve stored, and the
   * start and data of the range right after it (Infinity / -1 when none).
   * Valid only while `last` is set; anything that may change the
   * neighbourhood other than through the fast path clears it.
   */
  private last: Node | undefined;
  private lastNextStart = Infinity;
  private lastNextData = -1;

  /** Number of stored (coalesced) ranges. */
  get count(): number {
    return this.tree.size;
  }

  /** Bytes preserved in total. */
  get totalBytes(): number {
    return this.total;
  }

  /**
   * ranges - the stored ranges in ascending address order.
   *
   * Yields copies; the tracker must not be modified while iterating.
   */
  *ranges(): IterableIterator<KhoMemRange> {
    for (const [, n] of this.tree.entries()) {
      yield { start: n.start, size: n.end - n.start, data: n.data };
    }
  }

  /**
   * rangeAt - the stored range containing byte @addr, if any.
   */
  rangeAt(addr: number): KhoMemRange | undefined {
    const p = this.tree.getPairOrNextLower(addr);
    if (p === undefined || p[1].end <= addr) return undefined;
    return { start: p[1].start, size: p[1].end - p[1].start, data: p[1].data };
  }

  /**
   * intersects - true when any byte of [@addr, @addr + @size) is preserved.
   * Lets allocators (e.g. for serialization chunks) avoid preserved memory.
   */
  intersects(addr: number, size: number): boolean {
    if (size <= 0) return false;
    const p = this.tree.getPairOrNextLower(addr);
    if (p !== undefined && p[1].end > addr) return true;
    const n = this.tree.nextHigherPair(addr);
    return n !== undefined && n[0] < addr + size;
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
    /*
     * Fast path: the range starts inside, at the end of, or after the range
     * the previous preserve stored, and ends before the next stored range
     * (or right at it when that one's data differs, so no merge is due).
     * Ascending preserves of contiguous or isolated pages all take it.
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
    this.lastNextStart = next === undefined ? Infinity : next[1].start;
    this.lastNextData = next === undefined ? -1 : next[1].data;
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
    // Checked here rather than via khoPreserve(): this is the hot call.
    const size = FOLIO_SIZES[order];
    if (size === undefined || !Number.isInteger(order)) checkOrder(order);
    else if (!(phys >= 0 && phys % size === 0 && phys + size <= Number.MAX_SAFE_INTEGER)) checkFolio(phys, order);
    else this.preserve(phys, phys + size, khoDataFolio(order));
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
    const end = addr + size;

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
