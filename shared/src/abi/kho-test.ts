/*
 * The test sub-tree ("kho_test"), after lib/test_kho.c: what the predecessor
 * preserved and each object's checksum, so that the successor can prove every
 * preserved byte survived. Layout below (KHO_TEST_*).
 */
import { PAGE_SIZE } from "./page.js";
import { ByteReader, ByteWriter, hex, u32leBytes, u64leBytes, u64ToNumber } from "../lib/bytes.js";
import { FdtError, FdtRo, FdtWriter, fdtStringlistContains } from "../fdt/index.js";
import { KHO_TEST_PAGES_PROP, KHO_TEST_PAGES_RECORD_SIZE, KHO_TEST_VMALLOC_PROP, KHO_TEST_VMALLOC_RECORD_SIZE } from "./kho-test-vmalloc.js";

/*
 * The test sub-tree, after lib/test_kho.c. The sub-FDT's root has
 * compatible = "kho-test-v1" and magic = <u32 native-endian 0x4b484f21>; its
 * node "data" has:
 *	nr_folios    u32 LE   entries in the folio table
 *	nr_ranges    u32 LE   entries in the range table
 *	folios_info  u64 LE   phys of the info blob (both tables, back to back)
 *	csum         u64 LE   xxhash64 (seed 0) of the whole info blob
 * The info blob (preserved with kho_preserve_phys) is:
 *	struct { u64 phys_order; u64 csum; } folios[nr_folios];  // phys | order, xxhash64 of the folio
 *	struct { u64 start; u64 size; u64 csum; } ranges[nr_ranges];
 * When the scenario did not fill its memory (bookkeeping-only runs at tens of
 * GiB), /data carries the empty property "unfilled" and every per-folio and
 * per-range csum is 0; the successor then checks orders and restores only.
 *
 * kho-test-v2 (a khosim extension, written when no live folio is filled):
 * compatible = "kho-test-v2", /data also has
 *	nr_runs      u32 LE   entries in the run table
 * and the blob's folio table is a run table instead:
 *	struct { u64 phys_order; u64 count; } runs[nr_runs];  // count folios of order at phys, phys + (PAGE_SIZE << order), ...
 *	struct { u64 start; u64 size; u64 csum; } ranges[nr_ranges];
 * nr_folios is the folios the runs list in all. A successor checks each run
 * before any work on it: count >= 1, the folio and the run no larger than
 * RAM, below 2^53, the running total within nr_folios (equal at the end),
 * no two runs overlapping. Adjacent folios of one order (in table order)
 * share one run: 48 GiB of order-0 folios is one 16-byte entry, not 192 MiB.
 * kho-test-v1 successors refuse v2 by its compatible.
 */
export const KHO_TEST_FDT = "kho_test";
export const KHO_TEST_COMPAT = "kho-test-v1";
/** The sub-tree's compatible when its folio table is runs (/data/nr_runs). */
export const KHO_TEST_COMPAT_RUNS = "kho-test-v2";
export const KHO_TEST_NR_RUNS_PROP = "nr_runs";
export const KHO_TEST_MAGIC = 0x4b484f21;
export const KHO_TEST_DATA_NODE = "data";
export const KHO_TEST_FOLIO_ENTRY_SIZE = 16;
export const KHO_TEST_RANGE_ENTRY_SIZE = 24;
/** Present (empty) on /data when the predecessor did not fill its memory. */
export const KHO_TEST_UNFILLED_PROP = "unfilled";

export interface KhoTestFolio {
  phys: number;
  order: number;
  csum: bigint;
}

export interface KhoTestRange {
  start: number;
  size: number;
  csum: bigint;
}

export interface KhoTestHeader {
  nrFolios: number;
  nrRanges: number;
  /** Raw u64 phys of the info blob (validated by the successor). */
  infoPhys: bigint;
  csum: bigint;
  unfilled: boolean;
  /** kho-test-v2: run entries of the folio table (nr_runs); undefined for kho-test-v1. */
  nrRuns?: number;
  /** The `vmalloc` and `pages` properties (abi/kho-test-vmalloc.ts), raw, when present; lengths are whole records. */
  vmalloc?: Uint8Array;
  pages?: Uint8Array;
}

/** The sub-tree or its info blob is malformed. */
export class KhoTestError extends Error {
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`kho_test ${field}: ${reason}`);
    this.name = "KhoTestError";
  }
}

/** Bytes of the info blob for the given counts (@nrFolios: entries of the folio table, runs in kho-test-v2). */
export function khoTestInfoSize(nrFolios: number, nrRanges: number): number {
  return nrFolios * KHO_TEST_FOLIO_ENTRY_SIZE + nrRanges * KHO_TEST_RANGE_ENTRY_SIZE;
}

/** khoTestHeaderInfoSize - bytes of the info blob @h describes (runs or folios, then ranges). */
export function khoTestHeaderInfoSize(h: Pick<KhoTestHeader, "nrFolios" | "nrRanges" | "nrRuns">): number {
  return khoTestInfoSize(h.nrRuns ?? h.nrFolios, h.nrRanges);
}

/** True on a little-endian host: typed-array views then match the blob's byte order. */
const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Bytes of a folio of @order. */
const folioSize = (order: number): number => PAGE_SIZE * 2 ** order;

/** The live folios as maximal runs: run r is count[r] folios of order[r] at base[r], base[r] + size, ... */
export interface FolioRuns {
  n: number;
  base: Float64Array;
  order: Uint8Array;
  count: Float64Array;
}

/**
 * Folios in compact form (a 48 GiB run of order-0 folios is 12.6M entries:
 * no object per folio). A table starts as runs (entry i is folio i of the
 * run holding it; adjacent folios of one order merge into one run) and
 * becomes columns at the first filled folio, kill() or read of a column
 * (phys, order, alive): unfilled, never-killed tables (the 48 GiB case)
 * stay a handful of runs. csum 0 means "not filled, contents not checked";
 * alive 0 marks an entry that was unpreserved or failed to restore.
 * csum32 views csum as u32 halves (csum32[2i + lo], lo = 0 on little-endian
 * hosts), so hot paths test and copy checksums without making a BigInt.
 * Both are empty until the first non-zero checksum arrives; read checksums
 * through filled() and get(), or csum[i] when filled(i).
 */
export class FolioTable {
  private cPhys: Float64Array | undefined;
  private cOrder: Uint8Array | undefined;
  private cAlive: Uint8Array | undefined;
  /* Runs, while there are no columns. */
  private rBase = new Float64Array(4);
  private rOrder = new Uint8Array(4);
  private rCount = new Float64Array(4);
  private nRuns = 0;
  csum: BigUint64Array = new BigUint64Array(0);
  csum32: Uint32Array = new Uint32Array(0);
  length = 0;
  live = 0;

  constructor(readonly capacity: number) {}

  /** True while the table is held as runs (no column made yet). */
  get isRuns(): boolean {
    return this.cPhys === undefined;
  }

  /** Entry phys column (makes the columns: avoid on hot paths, see liveRuns). */
  get phys(): Float64Array {
    return this.columns(), this.cPhys!;
  }

  get order(): Uint8Array {
    return this.columns(), this.cOrder!;
  }

  get alive(): Uint8Array {
    return this.columns(), this.cAlive!;
  }

  /* Turn runs into columns of max(capacity, length) entries, once. */
  private columns(): void {
    if (this.cPhys !== undefined) return;
    const cap = Math.max(this.capacity, this.length);
    const phys = new Float64Array(cap);
    const order = new Uint8Array(cap);
    for (let r = 0, i = 0; r < this.nRuns; r++) {
      const o = this.rOrder[r]!;
      const size = folioSize(o);
      const end = i + this.rCount[r]!;
      order.fill(o, i, end);
      for (let p = this.rBase[r]!; i < end; i++, p += size) phys[i] = p;
    }
    this.cPhys = phys;
    this.cOrder = order;
    this.cAlive = new Uint8Array(cap).fill(1, 0, this.length);
    this.nRuns = 0;
  }

  /* Append @count folios of @order at @base as a run, merged into the last run when they follow it. */
  private appendRun(base: number, order: number, count: number, merge = true): void {
    const n = this.nRuns;
    if (merge && n > 0 && this.rOrder[n - 1] === order && this.rBase[n - 1]! + this.rCount[n - 1]! * folioSize(order) === base) {
      this.rCount[n - 1]! += count;
    } else {
      if (n === this.rBase.length) {
        // Straight to the table's capacity (a run per folio at most): its pages are touched only as runs are written.
        const cap = Math.max(2 * n, this.capacity);
        const base = new Float64Array(cap);
        const order = new Uint8Array(cap);
        const count = new Float64Array(cap);
        base.set(this.rBase);
        order.set(this.rOrder);
        count.set(this.rCount);
        this.rBase = base;
        this.rOrder = order;
        this.rCount = count;
      }
      this.rBase[n] = base;
      this.rOrder[n] = order;
      this.rCount[n] = count;
      this.nRuns = n + 1;
    }
    this.length += count;
    this.live += count;
  }

  /** push - append a live entry; a csum of 0n (unfilled) is not stored: the column starts zeroed. */
  push(phys: number, order: number, csum: bigint): void {
    if (csum === 0n && this.cPhys === undefined) return this.appendRun(phys, order, 1);
    this.columns();
    const i = this.length++;
    this.cPhys![i] = phys;
    this.cOrder![i] = order;
    if (csum !== 0n) this.csumColumn()[i] = csum;
    this.cAlive![i] = 1;
    this.live++;
  }

  /** csumColumn - the checksum column, made (zeroed, at full capacity) on first use. */
  csumColumn(): BigUint64Array {
    this.columns();
    if (this.csum.length === 0 && this.cPhys!.length > 0) {
      this.csum = new BigUint64Array(this.cPhys!.length);
      this.csum32 = new Uint32Array(this.csum.buffer);
    }
    return this.csum;
  }

  /** filled - true when entry @i has a checksum (csum != 0), without reading it as a BigInt. */
  filled(i: number): boolean {
    // No column, nothing filled: a read past an empty column's end (undefined) would leave the fast path.
    if (this.csum32.length === 0) return false;
    return (this.csum32[2 * i]! | this.csum32[2 * i + 1]!) !== 0;
  }

  /** csumOf - the checksum of entry @i (0n when unfilled). */
  csumOf(i: number): bigint {
    return this.filled(i) ? this.csum[i]! : 0n;
  }

  /** anyLiveFilled - true when some live entry has a checksum. */
  anyLiveFilled(): boolean {
    if (this.csum32.length === 0) return false;
    const alive = this.cAlive!;
    for (let i = 0; i < this.length; i++) if (alive[i] && this.filled(i)) return true;
    return false;
  }

  /** anyLiveUnfilled - true when some live entry has no checksum. */
  anyLiveUnfilled(): boolean {
    if (this.csum32.length === 0) return this.live > 0;
    const alive = this.cAlive!;
    for (let i = 0; i < this.length; i++) if (alive[i] && !this.filled(i)) return true;
    return false;
  }

  /**
   * pushRun - append @count live, unfilled entries of order @order at
   * @base, @base + @stride, ...: push() for each (one run when @stride is
   * the folio size and the table is still runs). @merge false keeps the run
   * apart from an adjacent previous one (the decoder: one run per blob
   * entry, so that run k names entry k).
   */
  pushRun(base: number, stride: number, order: number, count: number, merge = true): void {
    const first = this.length;
    const end = first + count;
    if (end > Math.max(this.capacity, this.cPhys?.length ?? 0)) throw new RangeError(`FolioTable: ${count} entries do not fit (${first} of ${this.capacity} used)`);
    if (this.cPhys === undefined) {
      if (stride === folioSize(order)) this.appendRun(base, order, count, merge);
      else for (let k = 0, p = base; k < count; k++, p += stride) this.appendRun(p, order, 1, merge);
      return;
    }
    const phys = this.cPhys;
    for (let i = first, p = base; i < end; i++, p += stride) phys[i] = p;
    this.cOrder!.fill(order, first, end);
    this.cAlive!.fill(1, first, end);
    this.length = end;
    this.live += count;
  }

  kill(i: number): void {
    this.columns();
    if (this.cAlive![i]) this.live--;
    this.cAlive![i] = 0;
  }

  /**
   * killEntries - kill the entries @dead (ascending, distinct) of a table
   * held as runs without making its columns (12.6M entries at 48 GiB): the
   * runs are rebuilt around them in one pass, and the entries after each
   * dead one move down (a run table holds no dead entries). A table with
   * columns kills each in place.
   */
  killEntries(dead: readonly number[]): void {
    if (dead.length === 0) return;
    if (this.cPhys !== undefined) {
      for (const i of dead) this.kill(i);
      return;
    }
    for (let d = 0; d < dead.length; d++) {
      if (!(dead[d]! >= 0 && dead[d]! < this.length && (d === 0 || dead[d]! > dead[d - 1]!))) throw new RangeError(`FolioTable.killEntries: entry ${dead[d]} is not ascending within ${this.length}`);
    }
    const cap = this.nRuns + dead.length;
    const base = new Float64Array(cap);
    const order = new Uint8Array(cap);
    const count = new Float64Array(cap);
    let m = 0;
    let d = 0;
    for (let r = 0, first = 0; r < this.nRuns; first += this.rCount[r++]!) {
      const o = this.rOrder[r]!;
      const size = folioSize(o);
      const c = this.rCount[r]!;
      // Pieces of run r between its dead entries.
      let from = 0;
      const piece = (to: number): void => {
        if (to <= from) return;
        base[m] = this.rBase[r]! + from * size;
        order[m] = o;
        count[m++] = to - from;
      };
      for (; d < dead.length && dead[d]! < first + c; d++) {
        piece(dead[d]! - first);
        from = dead[d]! - first + 1;
      }
      piece(c);
    }
    this.rBase = base;
    this.rOrder = order;
    this.rCount = count;
    this.nRuns = m;
    this.length -= dead.length;
    this.live -= dead.length;
  }

  /**
   * liveRuns - the live entries from entry @from on, as maximal runs: the
   * table's own runs while it has no columns (views of them, valid until
   * the table changes; a run cut at @from is copied), else merged from the
   * columns, skipping dead entries. For a run table, run 0 starts at entry
   * @from and each run's entries follow the previous run's.
   */
  liveRuns(from = 0): FolioRuns {
    if (this.cPhys === undefined) {
      // Skip whole runs before @from, cut the one holding it.
      let r = 0;
      let e = 0;
      while (r < this.nRuns && e + this.rCount[r]! <= from) e += this.rCount[r++]!;
      const n = this.nRuns - r;
      if (n === 0 || e === from) return { n, base: this.rBase.subarray(r, this.nRuns), order: this.rOrder.subarray(r, this.nRuns), count: this.rCount.subarray(r, this.nRuns) };
      const out = { n, base: this.rBase.slice(r, this.nRuns), order: this.rOrder.slice(r, this.nRuns), count: this.rCount.slice(r, this.nRuns) };
      out.base[0] = out.base[0]! + (from - e) * folioSize(out.order[0]!);
      out.count[0] = out.count[0]! - (from - e);
      return out;
    }
    const { cPhys: phys, cOrder: order, cAlive: alive } = this;
    let n = 0;
    let prevEnd = -1;
    let prevOrder = -1;
    for (let i = from; i < this.length; i++) {
      if (!alive![i]) continue;
      if (phys[i] !== prevEnd || order![i] !== prevOrder) n++;
      prevOrder = order![i]!;
      prevEnd = phys[i]! + folioSize(prevOrder);
    }
    const out = { n, base: new Float64Array(n), order: new Uint8Array(n), count: new Float64Array(n) };
    let r = -1;
    prevEnd = -1;
    prevOrder = -1;
    for (let i = from; i < this.length; i++) {
      if (!alive![i]) continue;
      if (phys[i] !== prevEnd || order![i] !== prevOrder) {
        r++;
        out.base[r] = phys[i]!;
        out.order[r] = order![i]!;
      }
      out.count[r]!++;
      prevOrder = order![i]!;
      prevEnd = phys[i]! + folioSize(prevOrder);
    }
    return out;
  }

  /** Entry @i as an object (for tools and tests; hot paths use the columns or liveRuns). */
  get(i: number): KhoTestFolio {
    if (this.cPhys === undefined) {
      for (let r = 0, e = 0; r < this.nRuns; e += this.rCount[r++]!) {
        if (i < e + this.rCount[r]!) return { phys: this.rBase[r]! + (i - e) * folioSize(this.rOrder[r]!), order: this.rOrder[r]!, csum: 0n };
      }
      throw new RangeError(`FolioTable: no entry ${i} of ${this.length}`);
    }
    return { phys: this.cPhys[i]!, order: this.cOrder![i]!, csum: this.csumOf(i) };
  }

  /** The live entries as objects, in order. */
  *entries(): Generator<KhoTestFolio> {
    if (this.cPhys === undefined) {
      for (let r = 0; r < this.nRuns; r++) {
        const order = this.rOrder[r]!;
        for (let k = 0; k < this.rCount[r]!; k++) yield { phys: this.rBase[r]! + k * folioSize(order), order, csum: 0n };
      }
      return;
    }
    for (let i = 0; i < this.length; i++) if (this.cAlive![i]) yield this.get(i);
  }
}

/**
 * KhoTestInfoEncoder - the info blob (the live folios, then the range table,
 * little-endian) made piece by piece: encodeInto() gives any byte span of
 * it, so the blob need not exist whole (kernel-a checksums it and writes it
 * to memory.img in pieces; a 48 GiB run of order-0 folios makes 192 MiB).
 * Folio entries are written through a Uint32Array view (phys | order split
 * into halves without BigInt: phys is page aligned, order < 4096; the
 * checksum copied as its two u32 halves). @folios must not change while the
 * encoder is in use. Ascending pieces cost O(their size); a piece before
 * the previous one restarts the walk over killed entries.
 */
export class KhoTestInfoEncoder {
  /** Bytes of the blob. */
  readonly size: number;
  /** Bytes of the folio table (the range table follows). */
  private readonly folioBytes: number;
  private readonly rangeBytes: Uint8Array;
  /** The run table, when encoding runs (KHO_TEST_COMPAT_RUNS). */
  private readonly runs: FolioRuns | undefined;
  /* Cursor: live entry k is table entry i. */
  private k = 0;
  private i = 0;

  /** @runs: write the folio table as runs (kho-test-v2; every live folio must be unfilled). */
  constructor(
    private readonly folios: FolioTable,
    ranges: readonly KhoTestRange[],
    runs = false,
  ) {
    if (runs && folios.anyLiveFilled()) throw new RangeError("KhoTestInfoEncoder: a run table cannot carry filled folios' checksums");
    this.runs = runs ? folios.liveRuns() : undefined;
    const entries = this.runs ? this.runs.n : folios.live;
    this.folioBytes = entries * KHO_TEST_FOLIO_ENTRY_SIZE;
    this.size = khoTestInfoSize(entries, ranges.length);
    this.rangeBytes = new Uint8Array(ranges.length * KHO_TEST_RANGE_ENTRY_SIZE);
    const w = new ByteWriter(this.rangeBytes);
    ranges.forEach((r, j) => {
      const off = j * KHO_TEST_RANGE_ENTRY_SIZE;
      w.u64le(off, r.start);
      w.u64le(off + 8, r.size);
      w.u64le(off + 16, r.csum);
    });
  }

  /** encodeInto - fill @out with the blob's bytes [@offset, @offset + out.length) (zeros past its end). */
  encodeInto(offset: number, out: Uint8Array): void {
    const end = offset + out.length;
    const fEnd = Math.min(end, this.folioBytes);
    if (offset < fEnd) {
      const e0 = Math.floor(offset / KHO_TEST_FOLIO_ENTRY_SIZE);
      const e1 = Math.ceil(fEnd / KHO_TEST_FOLIO_ENTRY_SIZE);
      const whole = offset % KHO_TEST_FOLIO_ENTRY_SIZE === 0 && fEnd % KHO_TEST_FOLIO_ENTRY_SIZE === 0 && out.byteOffset % 4 === 0;
      const entries = (a: number, b: number, o: Uint8Array): void => (this.runs ? this.runEntries(a, b, o) : this.folioEntries(a, b, o));
      if (whole) entries(e0, e1, out);
      else {
        const tmp = new Uint8Array((e1 - e0) * KHO_TEST_FOLIO_ENTRY_SIZE);
        entries(e0, e1, tmp);
        const from = offset - e0 * KHO_TEST_FOLIO_ENTRY_SIZE;
        out.set(tmp.subarray(from, from + (fEnd - offset)));
      }
    }
    const rStart = Math.max(offset, this.folioBytes);
    const rEnd = Math.min(end, this.size);
    if (rStart < rEnd) out.set(this.rangeBytes.subarray(rStart - this.folioBytes, rEnd - this.folioBytes), rStart - offset);
    const zeroFrom = Math.max(offset, this.size);
    if (zeroFrom < end) out.fill(0, zeroFrom - offset);
  }

  /** Run entries in the table (undefined: the blob lists folios). */
  get nrRuns(): number | undefined {
    return this.runs?.n;
  }

  /* Run entries [e0, e1) into the start of @out: { u64 phys | order; u64 count }. */
  private runEntries(e0: number, e1: number, out: Uint8Array): void {
    const { base, order, count } = this.runs!;
    const d = new DataView(out.buffer, out.byteOffset, (e1 - e0) * KHO_TEST_FOLIO_ENTRY_SIZE);
    for (let r = e0, off = 0; r < e1; r++, off += KHO_TEST_FOLIO_ENTRY_SIZE) {
      const p = base[r]!;
      const c = count[r]!;
      d.setUint32(off, (p % 2 ** 32) + order[r]!, true);
      d.setUint32(off + 4, Math.floor(p / 2 ** 32), true);
      d.setUint32(off + 8, c % 2 ** 32, true);
      d.setUint32(off + 12, Math.floor(c / 2 ** 32), true);
    }
  }

  /* Live folio entries [e0, e1) into the start of @out. */
  private folioEntries(e0: number, e1: number, out: Uint8Array): void {
    const { phys, order, csum32, alive } = this.folios;
    const dense = this.folios.live === this.folios.length;
    // Position the cursor at live entry e0 (the table index is the live index when nothing was killed).
    if (dense) {
      this.k = e0;
      this.i = e0;
    } else {
      if (e0 < this.k) this.k = this.i = 0;
      while (!alive[this.i]) this.i++;
      while (this.k < e0) {
        this.i++;
        while (!alive[this.i]) this.i++;
        this.k++;
      }
    }
    let i = this.i;
    const n = e1 - e0;
    // Without a checksum column (unfilled) the checksum words are zero: reading past an empty column's end would leave the fast path.
    const hasCsum = csum32.length > 0;
    if (HOST_LE && dense && !hasCsum) {
      // The 48 GiB case: every entry live, no checksums.
      const o32 = new Uint32Array(out.buffer, out.byteOffset, n * 4);
      for (let k = 0; k < 4 * n; k += 4, i++) {
        const p = phys[i]!;
        const lo = p >>> 0;
        o32[k] = lo + order[i]!;
        o32[k + 1] = (p - lo) / 2 ** 32;
        o32[k + 2] = 0;
        o32[k + 3] = 0;
      }
    } else if (HOST_LE) {
      const o32 = new Uint32Array(out.buffer, out.byteOffset, n * 4);
      for (let k = 0; k < 4 * n; k += 4) {
        if (!dense) while (!alive[i]) i++;
        const p = phys[i]!;
        const lo = p >>> 0;
        o32[k] = lo + order[i]!;
        o32[k + 1] = (p - lo) / 2 ** 32;
        o32[k + 2] = hasCsum ? csum32[2 * i]! : 0;
        o32[k + 3] = hasCsum ? csum32[2 * i + 1]! : 0;
        i++;
      }
    } else {
      const d = new DataView(out.buffer, out.byteOffset, n * KHO_TEST_FOLIO_ENTRY_SIZE);
      for (let off = 0; off < n * KHO_TEST_FOLIO_ENTRY_SIZE; off += KHO_TEST_FOLIO_ENTRY_SIZE) {
        if (!dense) while (!alive[i]) i++;
        const p = phys[i]!;
        d.setUint32(off, (p % 2 ** 32) + order[i]!, true);
        d.setUint32(off + 4, Math.floor(p / 2 ** 32), true);
        d.setBigUint64(off + 8, this.folios.csumOf(i), true);
        i++;
      }
    }
    // i is one past the table index of live entry e1 - 1.
    this.k = e1;
    this.i = i;
  }
}

/** encodeKhoTestInfo - the whole info blob at once (KhoTestInfoEncoder in one piece; @runs as there). */
export function encodeKhoTestInfo(folios: FolioTable, ranges: readonly KhoTestRange[], runs = false): Uint8Array {
  const enc = new KhoTestInfoEncoder(folios, ranges, runs);
  const out = new Uint8Array(enc.size);
  enc.encodeInto(0, out);
  return out;
}

/**
 * KhoTestInfoDecoder - decode the info blob piece by piece into columns, so
 * that a reader can take it in pieces (a 48 GiB table is 192 MiB: read into
 * one reused buffer, not one fresh allocation). Feed folios() the folio
 * table in order, in pieces of whole entries, then ranges() the range
 * table. Addresses are checked to be JS-safe and page aligned here; whether
 * they are preserved is the successor's check. Folio entries are read
 * through a Uint32Array view and their checksums copied as u32 halves: no
 * BigInt per folio. The first malformed entry throws KhoTestError.
 */
export class KhoTestInfoDecoder {
  readonly folios: FolioTable;
  ranges: KhoTestRange[] = [];
  /** Folio entries decoded so far (run entries when the table is runs). */
  private done = 0;
  /* Runs: the previous run's start and end, whether they ascend (folios listed so far: folios.length). */
  private prevStart = -1;
  private prevEnd = 0;
  private ascending = true;

  /**
   * @nrRuns: the blob's folio table is @nrRuns run entries (kho-test-v2)
   * listing @nrFolios folios in all; @ramBytes bounds each run (no run may
   * span more than RAM), checked before any work on it.
   */
  constructor(
    readonly nrFolios: number,
    readonly nrRanges: number,
    readonly nrRuns?: number,
    readonly ramBytes: number = 2 ** 53,
  ) {
    this.folios = new FolioTable(nrFolios);
  }

  /** Entries of the folio table (runs or folios). */
  get nrEntries(): number {
    return this.nrRuns ?? this.nrFolios;
  }

  /* A KhoTestError naming run entry @j and its byte offset in the blob. */
  private runError(j: number, reason: string): KhoTestError {
    return new KhoTestError(`folio_runs[${j}] (info +${hex(j * KHO_TEST_FOLIO_ENTRY_SIZE)})`, reason);
  }

  /* Run entries: each checked (order, count against RAM, 2^53, the nr_folios total, overlap with the previous run) before it is added. */
  private decodeRuns(bytes: Uint8Array, n: number): void {
    const d = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    for (let j = 0, off = 0; j < n; j++, off += KHO_TEST_FOLIO_ENTRY_SIZE) {
      const at = this.done + j;
      const lo = d.getUint32(off, true);
      const hi = d.getUint32(off + 4, true);
      if (hi >= 2 ** 21) throw this.runError(at, `phys ${hex(d.getBigUint64(off, true))} is beyond 2^53`);
      const order = lo & (PAGE_SIZE - 1);
      const phys = hi * 2 ** 32 + (lo - order);
      const size = folioSize(order);
      if (size > this.ramBytes) throw this.runError(at, `order ${order}: a ${hex(size)}-byte folio is larger than RAM (${hex(this.ramBytes)} bytes)`);
      const cLo = d.getUint32(off + 8, true);
      const cHi = d.getUint32(off + 12, true);
      if ((cLo | cHi) === 0) throw this.runError(at, "count 0: a run lists at least one folio");
      // No BigInt per run: a high word of 2^21 or more is past 2^53 folios, more than any RAM holds.
      const count = cHi * 2 ** 32 + cLo;
      if (cHi >= 2 ** 21 || count > Math.floor(this.ramBytes / size)) throw this.runError(at, `count ${d.getBigUint64(off + 8, true)} order-${order} folios span more than RAM (${hex(this.ramBytes)} bytes)`);
      const end = phys + count * size;
      if (end > 2 ** 53) throw this.runError(at, `[${hex(phys)}, +${hex(count * size)}) ends beyond 2^53`);
      if (this.folios.length + count > this.nrFolios) throw this.runError(at, `count ${count} brings the runs past nr_folios ${this.nrFolios}`);
      if (phys < this.prevEnd) {
        if (phys >= this.prevStart) throw this.runError(at, `[${hex(phys)}, ${hex(end)}) overlaps the previous run [${hex(this.prevStart)}, ${hex(this.prevEnd)})`);
        this.ascending = false;
      }
      this.prevStart = phys;
      this.prevEnd = end;
      this.folios.pushRun(phys, size, order, count, false);
    }
  }

  /* After the last run: the counts add up to nr_folios and no two runs overlap (sorted once when they did not ascend). */
  private finishRuns(): void {
    if (this.folios.length !== this.nrFolios) throw new KhoTestError("nr_folios", `${this.nrFolios}, but the ${this.nrRuns} runs list ${this.folios.length} folios`);
    if (this.ascending) return;
    const r = this.folios.liveRuns();
    const idx = Array.from({ length: r.n }, (_, k) => k).sort((a, b) => r.base[a]! - r.base[b]!);
    for (let k = 1; k < idx.length; k++) {
      const a = idx[k - 1]!;
      const b = idx[k]!;
      const aEnd = r.base[a]! + r.count[a]! * folioSize(r.order[a]!);
      if (r.base[b]! < aEnd) {
        const j = Math.max(a, b);
        throw this.runError(j, `[${hex(r.base[j]!)}, +${hex(r.count[j]! * folioSize(r.order[j]!))}) overlaps run ${Math.min(a, b)}`);
      }
    }
  }

  /** decodeFolios - the next bytes.length / 16 folio entries (a whole number of them). */
  decodeFolios(bytes: Uint8Array): void {
    const n = bytes.length / KHO_TEST_FOLIO_ENTRY_SIZE;
    if (!Number.isInteger(n) || this.done + n > this.nrEntries) throw new RangeError(`KhoTestInfoDecoder: ${bytes.length} bytes is not a whole run of the ${this.nrEntries - this.done} folio entries left`);
    if (this.nrRuns !== undefined) {
      this.decodeRuns(bytes, n);
      this.done += n;
      return;
    }
    const folios = this.folios;
    const first = this.done;
    if (HOST_LE) {
      const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
      const i32 = new Uint32Array(aligned.buffer, aligned.byteOffset, n * 4);
      const { phys, order } = folios;
      let csum32 = folios.csum32;
      for (let j = 0, i = first, k = 0; j < n; j++, i++, k += 4) {
        const lo = i32[k]!;
        const hi = i32[k + 1]!;
        if (hi >= 2 ** 21) throw new KhoTestError(`folios[${i}]`, `phys ${hex(new ByteReader(aligned).u64le(k * 4))} is beyond 2^53`);
        const o = lo & (PAGE_SIZE - 1);
        phys[i] = hi * 2 ** 32 + (lo - o);
        order[i] = o;
        const c0 = i32[k + 2]!;
        const c1 = i32[k + 3]!;
        if ((c0 | c1) === 0) continue;
        if (csum32.length === 0) {
          folios.csumColumn();
          csum32 = folios.csum32;
        }
        csum32[2 * i] = c0;
        csum32[2 * i + 1] = c1;
      }
      folios.alive.fill(1, first, first + n);
      folios.length = first + n;
      folios.live += n;
    } else {
      const d = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
      for (let j = 0, off = 0; j < n; j++, off += KHO_TEST_FOLIO_ENTRY_SIZE) {
        const lo = d.getUint32(off, true);
        const hi = d.getUint32(off + 4, true);
        if (hi >= 2 ** 21) throw new KhoTestError(`folios[${first + j}]`, `phys ${hex(d.getBigUint64(off, true))} is beyond 2^53`);
        const order = lo & (PAGE_SIZE - 1);
        folios.push(hi * 2 ** 32 + (lo - order), order, d.getBigUint64(off + 8, true));
      }
    }
    this.done += n;
  }

  /** decodeRanges - the whole range table (after every folio entry). */
  decodeRanges(bytes: Uint8Array): void {
    if (this.done !== this.nrEntries || bytes.length !== this.nrRanges * KHO_TEST_RANGE_ENTRY_SIZE) throw new RangeError("KhoTestInfoDecoder: range table out of order or of the wrong size");
    if (this.nrRuns !== undefined) this.finishRuns();
    const r = new ByteReader(bytes);
    const ranges: KhoTestRange[] = [];
    for (let i = 0, off = 0; i < this.nrRanges; i++, off += KHO_TEST_RANGE_ENTRY_SIZE) {
      const start = u64ToNumber(r.u64le(off));
      const size = u64ToNumber(r.u64le(off + 8));
      if (start === undefined || size === undefined || start % PAGE_SIZE !== 0 || size % PAGE_SIZE !== 0 || size === 0) {
        throw new KhoTestError(`ranges[${i}]`, `${hex(r.u64le(off))}+${hex(r.u64le(off + 8))} is not a page-aligned range below 2^53`);
      }
      ranges.push({ start, size, csum: r.u64le(off + 16) });
    }
    this.ranges = ranges;
  }
}

/**
 * decodeKhoTestInfo - parse the whole info blob @bytes into columns
 * (KhoTestInfoDecoder in one piece). Throws KhoTestError when it is shorter
 * than the tables need or an entry is malformed.
 */
export function decodeKhoTestInfo(bytes: Uint8Array, nrFolios: number, nrRanges: number, nrRuns?: number, ramBytes?: number): { folios: FolioTable; ranges: KhoTestRange[] } {
  const entries = nrRuns ?? nrFolios;
  if (bytes.length < khoTestInfoSize(entries, nrRanges)) throw new KhoTestError("folios_info", `${bytes.length} bytes, less than the tables need`);
  const dec = new KhoTestInfoDecoder(nrFolios, nrRanges, nrRuns, ramBytes);
  const fbytes = entries * KHO_TEST_FOLIO_ENTRY_SIZE;
  if (entries > 0) dec.decodeFolios(bytes.subarray(0, fbytes));
  dec.decodeRanges(bytes.subarray(fbytes, fbytes + nrRanges * KHO_TEST_RANGE_ENTRY_SIZE));
  return { folios: dec.folios, ranges: dec.ranges };
}

/** buildKhoTestFdt - the sub-tree FDT, laid out as kho_test_prepare_fdt() does. */
export function buildKhoTestFdt(h: KhoTestHeader): Uint8Array {
  const w = new FdtWriter();
  w.finishReservemap();
  w.beginNode("");
  w.propertyString("compatible", h.nrRuns === undefined ? KHO_TEST_COMPAT : KHO_TEST_COMPAT_RUNS);
  w.property("magic", u32leBytes(KHO_TEST_MAGIC));
  w.beginNode(KHO_TEST_DATA_NODE);
  w.property("nr_folios", u32leBytes(h.nrFolios));
  w.property("nr_ranges", u32leBytes(h.nrRanges));
  w.property("folios_info", u64leBytes(h.infoPhys));
  w.property("csum", u64leBytes(h.csum));
  if (h.nrRuns !== undefined) w.property(KHO_TEST_NR_RUNS_PROP, u32leBytes(h.nrRuns));
  if (h.unfilled) w.property(KHO_TEST_UNFILLED_PROP, new Uint8Array(0));
  if (h.vmalloc && h.vmalloc.length > 0) w.property(KHO_TEST_VMALLOC_PROP, h.vmalloc);
  if (h.pages && h.pages.length > 0) w.property(KHO_TEST_PAGES_PROP, h.pages);
  w.endNode();
  w.endNode();
  return w.finish();
}

/** parseKhoTestFdt - validate the sub-tree as kho_test_restore() does, strictly. */
export function parseKhoTestFdt(blob: Uint8Array): KhoTestHeader {
  let fdt: FdtRo;
  try {
    fdt = new FdtRo(blob);
  } catch (e) {
    if (e instanceof FdtError) throw new KhoTestError("fdt", e.message);
    throw e;
  }
  const compat = fdt.getProp(0, "compatible");
  const runs = compat !== undefined && fdtStringlistContains(compat, KHO_TEST_COMPAT_RUNS);
  if (!compat || (!runs && !fdtStringlistContains(compat, KHO_TEST_COMPAT))) throw new KhoTestError("/compatible", `is not "${KHO_TEST_COMPAT}" or "${KHO_TEST_COMPAT_RUNS}"`);
  const magic = fdt.getProp(0, "magic");
  if (!magic || magic.length !== 4) throw new KhoTestError("/magic", "missing or not 4 bytes");
  const m = new ByteReader(magic).u32le(0);
  if (m !== KHO_TEST_MAGIC) throw new KhoTestError("/magic", `${hex(m)} is not ${hex(KHO_TEST_MAGIC)}`);
  let data: number;
  try {
    data = fdt.pathOffset(`/${KHO_TEST_DATA_NODE}`);
  } catch (e) {
    if (e instanceof FdtError) throw new KhoTestError(`/${KHO_TEST_DATA_NODE}`, "missing");
    throw e;
  }
  const prop = (name: string, len: number): ByteReader => {
    const v = fdt.getProp(data, name);
    if (!v || v.length !== len) throw new KhoTestError(`/${KHO_TEST_DATA_NODE}/${name}`, `missing or not ${len} bytes`);
    return new ByteReader(v);
  };
  const h: KhoTestHeader = {
    nrFolios: prop("nr_folios", 4).u32le(0),
    nrRanges: prop("nr_ranges", 4).u32le(0),
    infoPhys: prop("folios_info", 8).u64le(0),
    csum: prop("csum", 8).u64le(0),
    unfilled: fdt.getProp(data, KHO_TEST_UNFILLED_PROP) !== undefined,
  };
  if (runs) {
    h.nrRuns = prop(KHO_TEST_NR_RUNS_PROP, 4).u32le(0);
    if (h.nrRuns > h.nrFolios || (h.nrRuns === 0) !== (h.nrFolios === 0)) throw new KhoTestError(`/${KHO_TEST_DATA_NODE}/${KHO_TEST_NR_RUNS_PROP}`, `${h.nrRuns} runs cannot list nr_folios ${h.nrFolios} folios`);
  }
  for (const [name, size] of [[KHO_TEST_VMALLOC_PROP, KHO_TEST_VMALLOC_RECORD_SIZE], [KHO_TEST_PAGES_PROP, KHO_TEST_PAGES_RECORD_SIZE]] as const) {
    const v = fdt.getProp(data, name);
    if (v === undefined) continue;
    if (v.length === 0 || v.length % size !== 0) throw new KhoTestError(`/${KHO_TEST_DATA_NODE}/${name}`, `${v.length} bytes, not a non-zero multiple of ${size}`);
    h[name === KHO_TEST_VMALLOC_PROP ? "vmalloc" : "pages"] = v.slice();
  }
  return h;
}
