/*
 * kho_restore_folio() for the successor: after the walk every preserved range
 * is reserved and, for folio runs, each head page "remembers" its order (the
 * kernel keeps it in page->private). Restoring checks the order against what
 * this kernel supports and refuses a second restore of the same folio.
 *
 * The runs are columns (KhoRangeTable), as the ranges walk hands them over:
 * no object per run. State is one bitmap over all folio runs (a bit per folio; each run's first
 * bit found by a prefix sum made at the first restore), so the cost follows
 * what was preserved, not RAM size, with no object per run. Lookups start
 * at the run the previous one found: the restores of a folio table come in
 * address order.
 */
import { PAGE_SIZE } from "../../abi/page.js";
import { khoDataIsFolio, khoDataOrder } from "../../abi/ranges.js";
import { hex } from "../../lib/bytes.js";
import { type KhoMemRange, type KhoRangeTable } from "../track.js";

export type RestoreErrorCode = "NOT_PRESERVED" | "NOT_FOLIO" | "NOT_HEAD" | "ORDER_TOO_HIGH" | "ALREADY_RESTORED" | "NOT_COVERED";

export class KhoRestoreError extends Error {
  constructor(
    readonly code: RestoreErrorCode,
    readonly phys: number,
    message: string,
  ) {
    super(message);
    this.name = "KhoRestoreError";
  }
}

export class KhoRestore {
  /** Bit per folio of every folio run, run i's from firstBit[i]; made at the first restore. */
  private restored: Uint8Array | undefined;
  private firstBit: Float64Array | undefined;
  /** Index of the run the last findRange() returned (a hint, checked before use). */
  private hint = 0;

  private readonly start: Float64Array;
  private readonly size: Float64Array;
  private readonly data: Uint16Array;
  private readonly count: number;

  /**
   * @runs: the walked ranges, ascending and non-overlapping; @maxOrder: this
   * kernel's MAX_PAGE_ORDER; @physHasData: the format records phys ranges
   * with data 0 (ranges, posted) rather than as blocks of some order (bitmaps, radix).
   */
  constructor(
    runs: KhoRangeTable,
    readonly maxOrder: number,
    private readonly physHasData = true,
  ) {
    this.start = runs.start;
    this.size = runs.size;
    this.data = runs.data;
    this.count = runs.count;
  }

  /** Index of the range containing @phys, or -1. */
  findRange(phys: number): number {
    const { start, size } = this;
    const h = this.hint;
    if (h < this.count && phys >= start[h]!) {
      if (phys < start[h]! + size[h]!) return h;
      const n = h + 1;
      if (n < this.count && phys >= start[n]! && phys < start[n]! + size[n]!) return (this.hint = n);
    }
    let lo = 0;
    let hi = this.count - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (phys < start[mid]!) hi = mid - 1;
      else if (phys >= start[mid]! + size[mid]!) lo = mid + 1;
      else return (this.hint = mid);
    }
    return -1;
  }

  /** The restored-bit array and each folio run's first bit. */
  private makeBitmap(): void {
    const first = new Float64Array(this.count);
    let n = 0;
    for (let i = 0; i < this.count; i++) {
      const d = this.data[i]!;
      first[i] = n;
      if (khoDataIsFolio(d)) n += Math.ceil(this.size[i]! / (PAGE_SIZE * 2 ** khoDataOrder(d)));
    }
    this.firstBit = first;
    this.restored = new Uint8Array(Math.ceil(n / 8));
  }

  /**
   * khoRestoreFolio - claim the preserved folio whose head is @phys and return
   * its order. Throws KhoRestoreError when @phys is not the head of a
   * preserved folio, the order is above this kernel's maximum, or the folio
   * was restored already.
   */
  khoRestoreFolio(phys: number): number {
    const i = this.findRange(phys);
    if (i < 0) throw new KhoRestoreError("NOT_PRESERVED", phys, `${hex(phys)} is not preserved memory`);
    const rStart = this.start[i]!;
    const rData = this.data[i]!;
    if (!khoDataIsFolio(rData)) throw new KhoRestoreError("NOT_FOLIO", phys, `${hex(phys)} lies in a physical range, not a folio run`);
    const order = khoDataOrder(rData);
    if (order > this.maxOrder) {
      throw new KhoRestoreError("ORDER_TOO_HIGH", phys, `folio ${hex(phys)} has order ${order}, above this kernel's MAX_PAGE_ORDER ${this.maxOrder}`);
    }
    // Division by a power of two is exact: a fraction means phys is not a head (no floating-point remainder per folio).
    const rel = (phys - rStart) / (PAGE_SIZE * 2 ** order);
    if (rel !== Math.floor(rel)) {
      throw new KhoRestoreError("NOT_HEAD", phys, `${hex(phys)} is not the head of an order-${order} folio of run ${hex(rStart)}`);
    }
    if (this.restored === undefined) this.makeBitmap();
    const bits = this.restored!;
    const n = this.firstBit![i]! + rel;
    const byte = Math.floor(n / 8);
    // n & 7: the low three bits survive ToInt32 for any n below 2^53.
    const mask = 1 << (n & 7);
    if (bits[byte]! & mask) throw new KhoRestoreError("ALREADY_RESTORED", phys, `folio ${hex(phys)} was restored already`);
    bits[byte] = bits[byte]! | mask;
    return order;
  }

  /** True when every byte of [start, start + size) lies in preserved runs. */
  covered(start: number, size: number): boolean {
    const end = start + size;
    let i = this.findRange(start);
    if (i < 0) return false;
    let at = start;
    while (at < end) {
      if (i >= this.count || this.start[i]! > at) return false;
      at = this.start[i]! + this.size[i]!;
      i++;
    }
    return true;
  }

  /**
   * khoRestorePhys - check that [start, start + size) is preserved: inside one
   * physical range (data 0), or, for formats that record phys ranges as
   * blocks, covered by consecutive preserved runs.
   */
  khoRestorePhys(start: number, size: number): void {
    const end = start + size;
    const fail = (): never => {
      throw new KhoRestoreError("NOT_COVERED", start, `[${hex(start)}, ${hex(end)}) is not a preserved physical range`);
    };
    let i = this.findRange(start);
    if (i < 0) fail();
    if (this.physHasData) {
      if (khoDataIsFolio(this.data[i]!) || end > this.start[i]! + this.size[i]!) fail();
      return;
    }
    if (!this.covered(start, size)) fail();
  }

  /** The walked range at index @i. */
  rangeAt(i: number): KhoMemRange {
    return { start: this.start[i]!, size: this.size[i]!, data: this.data[i]! };
  }

  /** Pages in folio runs (@folio true) or in physical ranges (false): bounds for table sizes. */
  totalPages(folio: boolean): number {
    let n = 0;
    // Formats without per-range data record phys ranges as blocks: any preserved page may hold one.
    for (let i = 0; i < this.count; i++) if (khoDataIsFolio(this.data[i]!) === folio || (!folio && !this.physHasData)) n += this.size[i]! / PAGE_SIZE;
    return n;
  }
}

/** khoRangeTableOf - @ranges (ascending objects) as columns, for formats whose walk hands over objects. */
export function khoRangeTableOf(ranges: readonly KhoMemRange[]): KhoRangeTable {
  const n = ranges.length;
  const t = { count: n, start: new Float64Array(n), size: new Float64Array(n), data: new Uint16Array(n) };
  for (let i = 0; i < n; i++) {
    const r = ranges[i]!;
    t.start[i] = r.start;
    t.size[i] = r.size;
    t.data[i] = r.data;
  }
  return t;
}
