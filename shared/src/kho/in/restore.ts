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
import type { FolioTable } from "../../abi/kho-test.js";

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
    if (!claimBit(this.restored!, this.firstBit![i]! + rel)) throw new KhoRestoreError("ALREADY_RESTORED", phys, `folio ${hex(phys)} was restored already`);
    return order;
  }

  /**
   * khoRestoreFolioRun - khoRestoreFolio() for the @count folios of @order
   * at @base, @base + (PAGE_SIZE << @order), ... in turn, in a tight loop:
   * each is checked (preserved, a folio run of that order, a head, within
   * this kernel's maximum) and claimed (refused when claimed already) as
   * khoRestoreFolio() does. Stops before the first folio that
   * khoRestoreFolio() would refuse or would restore with another order;
   * returns how many were restored.
   */
  khoRestoreFolioRun(base: number, order: number, count: number): number {
    const fsize = PAGE_SIZE * 2 ** order;
    let done = 0;
    while (done < count) {
      const phys = base + done * fsize;
      const i = this.findRange(phys);
      if (i < 0) return done;
      const d = this.data[i]!;
      if (!khoDataIsFolio(d) || khoDataOrder(d) !== order || order > this.maxOrder) return done;
      const rStart = this.start[i]!;
      const rel = (phys - rStart) / fsize;
      if (rel !== Math.floor(rel)) return done;
      // The run's folios that lie in range i.
      const here = Math.min(count - done, Math.floor((rStart + this.size[i]! - phys) / fsize));
      if (here <= 0) return done;
      if (this.restored === undefined) this.makeBitmap();
      const claimed = claimBits(this.restored!, this.firstBit![i]! + rel, here);
      done += claimed;
      if (claimed < here) return done;
    }
    return done;
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

/**
 * khoRestoreRecordedFolio - kho_restore_folio() of the folio a kho_test
 * entry records at @phys with order @recorded, with the successor's checks
 * around it: the folio's span is online RAM (@offline gives the reason when
 * not), the restore is not refused, and it comes back with the recorded
 * order. Returns undefined on success (nothing allocated on that path), else
 * whether the folio was restored all the same (a wrong order) and why it
 * failed. Shared by the successor's per-folio loop and khoRestoreFolioRuns().
 */
export function khoRestoreRecordedFolio(restore: KhoRestore, phys: number, recorded: number, offline: (phys: number, len: number) => string | undefined): { restored: boolean; why: string } | undefined {
  const off = offline(phys, PAGE_SIZE * 2 ** recorded);
  if (off) return { restored: false, why: off };
  let order: number;
  try {
    order = restore.khoRestoreFolio(phys);
  } catch (e) {
    if (e instanceof KhoRestoreError) return { restored: false, why: e.message };
    throw e;
  }
  if (order !== recorded) return { restored: true, why: `restored with order ${order}, recorded order ${recorded}` };
  return undefined;
}

/** What khoRestoreFolioRuns() needs from its caller: why a span cannot be restored (not online RAM), and how to record a failed entry. */
export interface FolioRunHooks {
  offline(phys: number, len: number): string | undefined;
  /** Entry @entry (the folio at @phys, recorded order @order) failed: @why. */
  bad(entry: number, why: string, phys: number, order: number): void;
}

/**
 * khoRestoreFolioRuns - restore every folio of @t, held as runs (unfilled,
 * none killed), as the per-folio loop does: kho_restore_folio() per folio,
 * through KhoRestore.khoRestoreFolioRun() a run at a time, and the per-folio
 * checks (online RAM, refusal, recorded order) for any folio it stops at.
 * Failures go to @hooks.bad in entry order. Returns the folios restored and
 * those of them left unchecked (all that restored with their recorded order).
 */
export function khoRestoreFolioRuns(t: FolioTable, restore: KhoRestore, hooks: FolioRunHooks): { restored: number; unchecked: number } {
  if (!t.isRuns) throw new RangeError("khoRestoreFolioRuns: the table is not held as runs");
  const r = t.liveRuns();
  let restored = 0;
  let unchecked = 0;
  // One folio by the per-folio path (the successor's, for an unfilled folio).
  const one = (entry: number, phys: number, recorded: number): void => {
    const failed = khoRestoreRecordedFolio(restore, phys, recorded, hooks.offline);
    if (failed) {
      if (failed.restored) restored++;
      return hooks.bad(entry, failed.why, phys, recorded);
    }
    restored++;
    unchecked++;
  };
  // Entry index of run k's first folio: a run table has no dead entries.
  for (let k = 0, first = 0; k < r.n; first += r.count[k++]!) {
    const base = r.base[k]!;
    const order = r.order[k]!;
    const count = r.count[k]!;
    const fsize = PAGE_SIZE * 2 ** order;
    if (hooks.offline(base, count * fsize) !== undefined) {
      for (let j = 0; j < count; j++) one(first + j, base + j * fsize, order);
      continue;
    }
    for (let j = 0; j < count; ) {
      const n = restore.khoRestoreFolioRun(base + j * fsize, order, count - j);
      restored += n;
      unchecked += n;
      j += n;
      if (j < count) one(first + j, base + j * fsize, order), j++;
    }
  }
  return { restored, unchecked };
}

/* Claim bit @n of @bits; false when it was claimed already (n & 7: the low three bits survive ToInt32 for any n below 2^53). */
function claimBit(bits: Uint8Array, n: number): boolean {
  const byte = Math.floor(n / 8);
  const mask = 1 << (n & 7);
  if (bits[byte]! & mask) return false;
  bits[byte] = bits[byte]! | mask;
  return true;
}

/*
 * Claim bits @n, @n + 1, ... for up to @count folios: one at a time up to a
 * byte boundary, then eight at a time (a byte of 0: none of its folios
 * claimed), then the rest. Returns how many were claimed before the first
 * one claimed already.
 */
function claimBits(bits: Uint8Array, n: number, count: number): number {
  let k = 0;
  for (const head = Math.min(count, (8 - (n & 7)) & 7); k < head; k++, n++) if (!claimBit(bits, n)) return k;
  for (; k + 8 <= count && bits[n / 8] === 0; k += 8, n += 8) bits[n / 8] = 0xff;
  for (; k < count; k++, n++) if (!claimBit(bits, n)) return k;
  return k;
}
