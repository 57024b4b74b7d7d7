/*
 * Simulated physical memory.
 *
 * PhysMem is what the pure cores (serializer, walker, restore) see: byte reads
 * and writes at physical addresses inside [base, base + size). Two backings:
 *  - SparseMem: pages held in a Map, created on first write; untouched pages
 *    read as zero and cost nothing (kernel-a, tests).
 *  - ImageMem (image.ts): read-only view of a memory.img on disk (kernel-b).
 * Memory use therefore grows with what is touched, never with RAM size.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PAGE_SIZE } from "../abi/page.js";
import { ByteReader, hex } from "../lib/bytes.js";
import { lastAtOrBelow } from "../lib/search.js";
import { ramContains, type RamBank } from "../abi/ram.js";

/** Thrown when an access falls outside RAM. */
export class PhysMemError extends Error {
  constructor(
    readonly phys: number,
    readonly length: number,
    message: string,
  ) {
    super(message);
    this.name = "PhysMemError";
  }
}

export interface PhysMem {
  /** First byte of RAM (the image's file offset 0). */
  readonly base: number;
  /** Bytes of RAM (with banks: the span up to the end of the highest bank, holes included). */
  readonly size: number;
  /** RAM banks (ram.ts), ascending; absent means one bank [base, base + size). */
  readonly banks?: readonly RamBank[] | undefined;
  /** Copy of [phys, phys + len); throws PhysMemError outside RAM. */
  read(phys: number, len: number): Uint8Array;
  /** Store @data at @phys; throws PhysMemError outside RAM. */
  write(phys: number, data: Uint8Array): void;
}

/**
 * A memory whose written pages can be enumerated: what writeImage() stores.
 * Pages it does not list are left as they are in the base image (or holes).
 */
export interface PageSource {
  readonly base: number;
  readonly size: number;
  readonly banks?: readonly RamBank[] | undefined;
  /** Number of pages written. */
  readonly touchedPages: number;
  /** Written pages as runs [pfn, count] of consecutive page frames, ascending. */
  touchedRuns(): [number, number][];
  /** The written page at @pfn, or undefined. */
  page(pfn: number): Uint8Array | undefined;
  /**
   * pagesInto - when pages [@pfn, @pfn + count) are all made on demand
   * (SparseMem.writeGenerated), make them into @out (count pages long) and
   * return true; otherwise false (read them with page()).
   */
  pagesInto?(pfn: number, count: number, out: Uint8Array): boolean;
}

/** Makes the bytes [offset, offset + out.length) of a generated span into @out. */
export type PageFill = (offset: number, out: Uint8Array) => void;

/* Pages [pfn, pfn + count) made on demand: page pfn + j is bytes [(skip + j) * PAGE_SIZE, ...) of fill's span. */
interface GeneratedRun {
  pfn: number;
  count: number;
  skip: number;
  fill: PageFill;
}

function runsOf(pfns: Iterable<number>): [number, number][] {
  const sorted = [...pfns].sort((a, b) => a - b);
  const runs: [number, number][] = [];
  for (const pfn of sorted) {
    const last = runs[runs.length - 1];
    if (last && last[0] + last[1] === pfn) last[1]++;
    else runs.push([pfn, 1]);
  }
  return runs;
}

/** Store @data at @phys into a page map, creating missing pages with @fresh(pfn). */
function writePages(pages: Map<number, Uint8Array>, phys: number, data: Uint8Array, fresh: (pfn: number) => Uint8Array): void {
  let done = 0;
  while (done < data.length) {
    const addr = phys + done;
    const pfn = Math.floor(addr / PAGE_SIZE);
    const off = addr - pfn * PAGE_SIZE;
    const n = Math.min(PAGE_SIZE - off, data.length - done);
    let page = pages.get(pfn);
    if (!page) {
      page = fresh(pfn);
      pages.set(pfn, page);
    }
    page.set(data.subarray(done, done + n), off);
    done += n;
  }
}

/** True when [phys, phys + len) lies inside RAM (inside its banks: never in a hole). */
export function physInRam(mem: { base: number; size: number; banks?: readonly RamBank[] | undefined }, phys: number, len: number): boolean {
  return ramContains(mem, phys, len);
}

export function checkPhysAccess(mem: PhysMem, phys: number, len: number): void {
  if (!physInRam(mem, phys, len)) {
    throw new PhysMemError(
      phys,
      len,
      `access of ${len} bytes at ${hex(phys)} outside RAM [${hex(mem.base)}, ${hex(mem.base + mem.size)})` +
        (mem.banks && phys >= mem.base && phys < mem.base + mem.size ? " (in or across a hole between RAM banks)" : ""),
    );
  }
}

/**
 * physReadInto - fill @out with the bytes at [phys, phys + out.length):
 * read() without a fresh array when the memory can read into one (ImageMem),
 * so that a large blob can be read piece by piece through one buffer.
 */
export function physReadInto(mem: PhysMem, phys: number, out: Uint8Array): void {
  const m = mem as PhysMem & { readInto?: (phys: number, out: Uint8Array) => void };
  if (typeof m.readInto === "function") m.readInto(phys, out);
  else out.set(mem.read(phys, out.length));
}

/** Read @len bytes at @phys and wrap them in a ByteReader. */
export function physReader(mem: PhysMem, phys: number, len: number): ByteReader {
  return new ByteReader(mem.read(phys, len));
}

/*
 * The page file SparseMem.storePages() keeps pages in: one per process,
 * created in the temporary directory and unlinked at once, so it lives only
 * as long as its descriptor (the process) and is never left behind. fd is
 * null until first needed, undefined when none can be made (pages are then
 * held in memory). Pages of a SparseMem that is garbage collected, and
 * pages written over, go on the free list and are reused, so a loop of
 * handoffs in one process (the fuzzer) neither leaks descriptors nor grows
 * the file without bound.
 */
const pageFile: { fd: number | undefined | null; end: number; free: number[] } = { fd: null, end: 0, free: [] };
const pageFileOwners = new FinalizationRegistry<SpillIndex>((spilled) => spilled.forEachSlot((slot) => pageFile.free.push(slot)));

/*
 * Where a SparseMem's stored pages are in the page file: pfn -> slot. A
 * serializer stores its chunk pages in ascending frames, 64 at a time, at
 * new slots at the file's end, so those go into runs (frames and slots
 * both consecutive: 6,169 chunk pages make one run), appended at O(1) per
 * batch without a map entry per page; anything else is a map entry. A
 * frame is in a run or in the map, never both; a run a change would split
 * becomes map entries first.
 */
class SpillIndex {
  private readonly map = new Map<number, number>();
  /* Run k: frames [rPfn[k], rPfn[k] + rCount[k]) at slots from rSlot[k]; ascending and apart. */
  private readonly rPfn: number[] = [];
  private readonly rCount: number[] = [];
  private readonly rSlot: number[] = [];
  /** Frames indexed. */
  size = 0;

  /* Index of the run holding @pfn, or -1. */
  private runAt(pfn: number): number {
    const k = lastAtOrBelow(this.rPfn, this.rPfn.length, pfn);
    return k >= 0 && pfn < this.rPfn[k]! + this.rCount[k]! ? k : -1;
  }

  get(pfn: number): number | undefined {
    if (this.rPfn.length > 0) {
      const k = this.runAt(pfn);
      if (k >= 0) return this.rSlot[k]! + (pfn - this.rPfn[k]!);
    }
    return this.map.size > 0 ? this.map.get(pfn) : undefined;
  }

  /* Drop @pfn; returns its slot, or undefined when it was not indexed. */
  delete(pfn: number): number | undefined {
    if (this.rPfn.length > 0) {
      const k = this.runAt(pfn);
      if (k >= 0) this.explode(k);
    }
    const slot = this.map.get(pfn);
    if (slot !== undefined) {
      this.map.delete(pfn);
      this.size--;
    }
    return slot;
  }

  /* Frame @pfn at @slot (the caller dropped what it had). */
  set(pfn: number, slot: number): void {
    this.map.set(pfn, slot);
    this.size++;
  }

  /*
   * Frames [@pfn, @pfn + @n) at slots from @slot, none of them indexed: a
   * run, joined to the last one when it continues it; false when the frames
   * do not all lie past the last run (the caller then uses set()).
   */
  appendRun(pfn: number, n: number, slot: number): boolean {
    const k = this.rPfn.length - 1;
    if (k >= 0) {
      const end = this.rPfn[k]! + this.rCount[k]!;
      if (pfn < end) return false;
      if (pfn === end && slot === this.rSlot[k]! + this.rCount[k]!) {
        this.rCount[k] = this.rCount[k]! + n;
        this.size += n;
        return true;
      }
    }
    this.rPfn.push(pfn);
    this.rCount.push(n);
    this.rSlot.push(slot);
    this.size += n;
    return true;
  }

  /* Run @k as map entries. */
  private explode(k: number): void {
    const p = this.rPfn[k]!;
    const s = this.rSlot[k]!;
    for (let j = 0; j < this.rCount[k]!; j++) this.map.set(p + j, s + j);
    this.rPfn.splice(k, 1);
    this.rCount.splice(k, 1);
    this.rSlot.splice(k, 1);
  }

  /* Every indexed frame (in no particular order). */
  *keys(): Generator<number> {
    for (let k = 0; k < this.rPfn.length; k++) for (let j = 0; j < this.rCount[k]!; j++) yield this.rPfn[k]! + j;
    yield* this.map.keys();
  }

  forEachSlot(visit: (slot: number) => void): void {
    for (let k = 0; k < this.rPfn.length; k++) for (let j = 0; j < this.rCount[k]!; j++) visit(this.rSlot[k]! + j);
    for (const slot of this.map.values()) visit(slot);
  }
}

function openSpillFile(): number | undefined {
  const file = path.join(os.tmpdir(), `.khosim-pages-${process.pid}-${Math.random().toString(36).slice(2)}`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, "wx+", 0o600);
    fs.unlinkSync(file);
    return fd;
  } catch {
    // Never leave the file or its descriptor behind: pages are then held in memory.
    if (fd !== undefined) {
      fs.closeSync(fd);
      fs.rmSync(file, { force: true });
    }
    return undefined;
  }
}

/* All of @data at @pos of @fd. */
function pwriteAll(fd: number, data: Uint8Array, pos: number): void {
  let done = 0;
  while (done < data.length) done += fs.writeSync(fd, data, done, data.length - done, pos + done);
}

/** Pages carved from one ArrayBuffer by SparseMem (256 KiB): no backing store per page. */
const POOL_PAGES = 64;

/**
 * In-memory sparse RAM: a page exists once something is written to it.
 * New pages are carved in creation order from pools of POOL_PAGES pages,
 * so a page costs its 4 KiB plus a map entry and a view, not an
 * ArrayBuffer of its own; at most one pool is partly unused.
 */
export class SparseMem implements PhysMem, PageSource {
  private readonly pages = new Map<number, Uint8Array>();
  /** Written pages not held but made on demand (writeGenerated), ascending, never also in pages. */
  private generated: GeneratedRun[] = [];
  private generatedPages = 0;
  private pool: ArrayBuffer | undefined;
  private poolUsed = POOL_PAGES;
  /* Pages written by storePages(): pfn -> slot (page index) in the spill file; never also in pages or generated. */
  private readonly spilled = new SpillIndex();
  private spillOwned = false;
  private readonly fresh = (): Uint8Array => {
    if (this.poolUsed === POOL_PAGES) {
      this.pool = new ArrayBuffer(POOL_PAGES * PAGE_SIZE);
      this.poolUsed = 0;
    }
    return new Uint8Array(this.pool!, this.poolUsed++ * PAGE_SIZE, PAGE_SIZE);
  };

  constructor(
    readonly base: number,
    readonly size: number,
    /** RAM banks when there are holes (ram.ts); base and size are then their span. */
    readonly banks?: readonly RamBank[],
  ) {
    if (base % PAGE_SIZE !== 0 || size % PAGE_SIZE !== 0) {
      throw new PhysMemError(base, size, `RAM ${hex(base)}+${hex(size)} is not page aligned`);
    }
  }

  /** Number of pages that hold data. */
  get touchedPages(): number {
    return this.pages.size + this.generatedPages + this.spilled.size;
  }

  read(phys: number, len: number): Uint8Array {
    checkPhysAccess(this, phys, len);
    const out = new Uint8Array(len);
    let done = 0;
    while (done < len) {
      const addr = phys + done;
      const pfn = Math.floor(addr / PAGE_SIZE);
      const off = addr - pfn * PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - off, len - done);
      const slot = this.spilled.size > 0 ? this.spilled.get(pfn) : undefined;
      if (slot !== undefined) {
        this.spillRead(slot * PAGE_SIZE + off, out.subarray(done, done + n));
      } else {
        const page = this.pages.get(pfn) ?? (this.generated.length > 0 ? this.generatedPage(pfn) : undefined);
        if (page) out.set(page.subarray(off, off + n), done);
      }
      done += n;
    }
    return out;
  }

  write(phys: number, data: Uint8Array): void {
    checkPhysAccess(this, phys, data.length);
    this.materialize(phys, data.length);
    this.unspill(phys, data.length);
    writePages(this.pages, phys, data, this.fresh);
  }

  /**
   * storePages - write whole pages that are written once and seldom read
   * (kho_mem_serialize's chunks): page k of @data (@pfns.length pages) goes
   * to frame @pfns[k], as write() would put it, but is kept in an unlinked
   * temporary file instead of memory, all of @data in one pwrite. Reads,
   * page(), pagesInto() and the image writer see these pages as any other;
   * a later write() to one makes it an ordinary held page. Without a usable
   * temporary directory the pages are held as write() holds them.
   *
   * Why: on this project's VMs the first touch of a fresh anonymous page
   * cost ~20-25 us on a loaded day (6,169 chunk pages: ~150 ms; ~1.3 us on a
   * quiet one), a page written into the
   * page cache ~1-2 us, and the image writer copies the pages to memory.img
   * anyway.
   */
  storePages(pfns: readonly number[], data: Uint8Array): void {
    const n = pfns.length;
    if (data.length !== n * PAGE_SIZE) throw new RangeError(`storePages: ${data.length} bytes for ${n} pages`);
    // One check per run of consecutive frames; a run that fails is checked page by page, so the error names the page.
    for (let k = 0; k < n; ) {
      let e = k + 1;
      while (e < n && pfns[e] === pfns[e - 1]! + 1) e++;
      if (!physInRam(this, pfns[k]! * PAGE_SIZE, (e - k) * PAGE_SIZE)) for (let j = k; j < e; j++) checkPhysAccess(this, pfns[j]! * PAGE_SIZE, PAGE_SIZE);
      k = e;
    }
    if (pageFile.fd === null) pageFile.fd = openSpillFile();
    const fd = pageFile.fd;
    if (fd === undefined) return this.holdPages(pfns, data, 0);
    if (!this.spillOwned) {
      pageFileOwners.register(this, this.spilled);
      this.spillOwned = true;
    }
    // Free pages of the file first, one pwrite each (small writes); else n new ones at its end in one pwrite.
    const reuse = pageFile.free.length >= n;
    const slot0 = pageFile.end;
    // A failed write (a full temporary directory) holds the pages not yet in the file in memory instead.
    if (!reuse) {
      try {
        pwriteAll(fd, data, slot0 * PAGE_SIZE);
      } catch {
        return this.holdPages(pfns, data, 0);
      }
      pageFile.end += n;
    }
    // Consecutive frames at new slots (a serializer's chunk pages): one run, no index entry per page.
    if (!reuse && this.storeRun(pfns, slot0)) return;
    for (let k = 0; k < n; k++) {
      const pfn = pfns[k]!;
      let slot = slot0 + k;
      if (reuse) {
        slot = pageFile.free[pageFile.free.length - 1]!;
        try {
          pwriteAll(fd, data.subarray(k * PAGE_SIZE, (k + 1) * PAGE_SIZE), slot * PAGE_SIZE);
        } catch {
          return this.holdPages(pfns, data, k);
        }
        pageFile.free.pop();
      }
      this.materialize(pfn * PAGE_SIZE, PAGE_SIZE);
      this.pages.delete(pfn);
      const old = this.spilled.delete(pfn);
      if (old !== undefined) pageFile.free.push(old);
      this.spilled.set(pfn, slot);
    }
  }

  /*
   * storePages()'s bookkeeping when @pfns are consecutive and lie past every
   * stored run, their pages written at slots from @slot0: what they held
   * dropped, one run indexed. False (nothing changed) otherwise.
   */
  private storeRun(pfns: readonly number[], slot0: number): boolean {
    const n = pfns.length;
    const p0 = pfns[0]!;
    if (n === 0 || pfns[n - 1] !== p0 + n - 1) return false;
    for (let k = 1; k < n - 1; k++) if (pfns[k] !== p0 + k) return false;
    this.materialize(p0 * PAGE_SIZE, n * PAGE_SIZE);
    // Frames stored before give their slots back; the run then takes them all.
    for (let k = 0; k < n; k++) {
      this.pages.delete(p0 + k);
      const old = this.spilled.delete(p0 + k);
      if (old !== undefined) pageFile.free.push(old);
    }
    if (this.spilled.appendRun(p0, n, slot0)) return true;
    for (let k = 0; k < n; k++) this.spilled.set(p0 + k, slot0 + k);
    return true;
  }

  /* Pages @k.. of a storePages() call held in memory, as write() holds them. */
  private holdPages(pfns: readonly number[], data: Uint8Array, k: number): void {
    for (; k < pfns.length; k++) this.write(pfns[k]! * PAGE_SIZE, data.subarray(k * PAGE_SIZE, (k + 1) * PAGE_SIZE));
  }

  /* Bytes at @pos of the spill file into @out. */
  private spillRead(pos: number, out: Uint8Array): void {
    let done = 0;
    while (done < out.length) {
      const got = fs.readSync(pageFile.fd!, out, done, out.length - done, pos + done);
      if (got === 0) throw new Error(`SparseMem: spill file ends at ${hex(pos + done)}`);
      done += got;
    }
  }

  /* Make the spilled pages of [phys, phys + len) held pages (before they are written over or replaced). */
  private unspill(phys: number, len: number): void {
    if (this.spilled.size === 0 || len === 0) return;
    const last = Math.floor((phys + len - 1) / PAGE_SIZE);
    for (let pfn = Math.floor(phys / PAGE_SIZE); pfn <= last; pfn++) {
      const slot = this.spilled.get(pfn);
      if (slot === undefined) continue;
      const page = this.fresh();
      this.spillRead(slot * PAGE_SIZE, page);
      this.spilled.delete(pfn);
      pageFile.free.push(slot);
      this.pages.set(pfn, page);
    }
  }

  /**
   * writeGenerated - write the @size bytes @fill makes at @phys (page
   * aligned), without holding them: the pages are made when read and when
   * the image is written (pagesInto), the bytes of the last page past @size
   * are zero as after write(). @fill must give the same bytes every time.
   * A later write() to one of these pages makes it an ordinary held page.
   * For large blobs written once (kho_test's info blob: 192 MiB at 48 GiB).
   */
  writeGenerated(phys: number, size: number, fill: PageFill): void {
    checkPhysAccess(this, phys, size);
    if (phys % PAGE_SIZE !== 0) throw new PhysMemError(phys, size, `writeGenerated at ${hex(phys)}: not page aligned`);
    if (size === 0) return;
    const pfn = phys / PAGE_SIZE;
    const count = Math.ceil(size / PAGE_SIZE);
    this.materialize(phys, count * PAGE_SIZE);
    this.unspill(phys, count * PAGE_SIZE);
    const tail = size % PAGE_SIZE;
    // The last page, when partial, is written as write() would (so pagesInto() never reads past @size).
    const whole = tail === 0 ? count : count - 1;
    for (let j = 0; j < whole; j++) this.pages.delete(pfn + j);
    if (whole > 0) {
      this.generated.push({ pfn, count: whole, skip: 0, fill });
      this.generated.sort((a, b) => a.pfn - b.pfn);
      this.generatedPages += whole;
    }
    if (tail > 0) {
      const last = new Uint8Array(tail);
      fill(whole * PAGE_SIZE, last);
      writePages(this.pages, phys + whole * PAGE_SIZE, last, this.fresh);
    }
  }

  /* Index of the generated run holding @pfn, or -1. */
  private generatedRun(pfn: number): number {
    const g = this.generated;
    for (let j = 0; j < g.length; j++) if (pfn >= g[j]!.pfn && pfn < g[j]!.pfn + g[j]!.count) return j;
    return -1;
  }

  /* A copy of generated page @pfn, or undefined. */
  private generatedPage(pfn: number): Uint8Array | undefined {
    const j = this.generatedRun(pfn);
    if (j < 0) return undefined;
    const r = this.generated[j]!;
    const out = new Uint8Array(PAGE_SIZE);
    r.fill((r.skip + pfn - r.pfn) * PAGE_SIZE, out);
    return out;
  }

  /* Make the generated pages of [phys, phys + len) held pages (before they are written over). */
  private materialize(phys: number, len: number): void {
    if (this.generated.length === 0 || len === 0) return;
    const last = Math.floor((phys + len - 1) / PAGE_SIZE);
    // Most writes touch no generated run: then no per-page lookup.
    const first = Math.floor(phys / PAGE_SIZE);
    let touches = false;
    for (const r of this.generated) touches ||= r.pfn <= last && first < r.pfn + r.count;
    if (!touches) return;
    for (let pfn = first; pfn <= last; pfn++) {
      const j = this.generatedRun(pfn);
      if (j < 0) continue;
      const r = this.generated[j]!;
      const page = this.fresh();
      r.fill((r.skip + pfn - r.pfn) * PAGE_SIZE, page);
      this.pages.set(pfn, page);
      // Split the run around pfn.
      const before = pfn - r.pfn;
      const after = r.count - before - 1;
      const pieces: GeneratedRun[] = [];
      if (before > 0) pieces.push({ pfn: r.pfn, count: before, skip: r.skip, fill: r.fill });
      if (after > 0) pieces.push({ pfn: pfn + 1, count: after, skip: r.skip + before + 1, fill: r.fill });
      this.generated.splice(j, 1, ...pieces);
      this.generatedPages--;
    }
  }

  pagesInto(pfn: number, count: number, out: Uint8Array): boolean {
    const j = this.generatedRun(pfn);
    if (j >= 0) {
      const r = this.generated[j]!;
      if (pfn + count <= r.pfn + r.count) {
        r.fill((r.skip + pfn - r.pfn) * PAGE_SIZE, out.subarray(0, count * PAGE_SIZE));
        return true;
      }
    }
    if (this.spilled.size === 0) return false;
    let any = false;
    for (let k = 0; k < count && !any; k++) any = this.spilled.get(pfn + k) !== undefined;
    if (!any) return false;
    // Page by page; runs of consecutive spill slots in one read.
    for (let k = 0; k < count; ) {
      const slot = this.spilled.get(pfn + k);
      if (slot !== undefined) {
        let m = 1;
        while (k + m < count && this.spilled.get(pfn + k + m) === slot + m) m++;
        this.spillRead(slot * PAGE_SIZE, out.subarray(k * PAGE_SIZE, (k + m) * PAGE_SIZE));
        k += m;
        continue;
      }
      const page = this.page(pfn + k);
      if (page) out.set(page, k * PAGE_SIZE);
      else out.fill(0, k * PAGE_SIZE, (k + 1) * PAGE_SIZE);
      k++;
    }
    return true;
  }

  /**
   * writeOwned - write() that takes ownership of @data: whole pages of it
   * that are not held yet become pages of this memory without a copy (the
   * caller must not change @data afterwards); the rest is copied as write()
   * does. For large blobs written once (kho_test's info blob).
   */
  writeOwned(phys: number, data: Uint8Array): void {
    checkPhysAccess(this, phys, data.length);
    this.materialize(phys, data.length);
    this.unspill(phys, data.length);
    let done = 0;
    const head = (PAGE_SIZE - (phys % PAGE_SIZE)) % PAGE_SIZE;
    if (head > 0) {
      done = Math.min(head, data.length);
      writePages(this.pages, phys, data.subarray(0, done), this.fresh);
    }
    for (; done + PAGE_SIZE <= data.length; done += PAGE_SIZE) {
      const pfn = (phys + done) / PAGE_SIZE;
      const page = data.subarray(done, done + PAGE_SIZE);
      const held = this.pages.get(pfn);
      if (held) held.set(page);
      else this.pages.set(pfn, page);
    }
    if (done < data.length) writePages(this.pages, phys + done, data.subarray(done), this.fresh);
  }

  /**
   * Touched pages as runs of consecutive page frames, in address order, for
   * writing the image. Each run is [pfn, count].
   */
  touchedRuns(): [number, number][] {
    const runs = this.spilled.size === 0 ? runsOf(this.pages.keys()) : runsOf([...this.pages.keys(), ...this.spilled.keys()]);
    if (this.generated.length === 0) return runs;
    // Held and generated pages never share a frame: merge the two ascending lists, joining touching runs.
    const all = [...runs, ...this.generated.map((g): [number, number] => [g.pfn, g.count])].sort((a, b) => a[0] - b[0]);
    const out: [number, number][] = [];
    for (const [pfn, count] of all) {
      const last = out[out.length - 1];
      if (last && last[0] + last[1] === pfn) last[1] += count;
      else out.push([pfn, count]);
    }
    return out;
  }

  /** The page at @pfn (a copy when it is made on demand), or undefined when it was never written. */
  page(pfn: number): Uint8Array | undefined {
    const slot = this.spilled.size > 0 ? this.spilled.get(pfn) : undefined;
    if (slot !== undefined) {
      const out = new Uint8Array(PAGE_SIZE);
      this.spillRead(slot * PAGE_SIZE, out);
      return out;
    }
    return this.pages.get(pfn) ?? (this.generated.length > 0 ? this.generatedPage(pfn) : undefined);
  }
}

/**
 * physStorePages - page k of @data at frame @pfns[k], for pages written once
 * and seldom read: SparseMem keeps them out of memory (storePages), any
 * other memory takes a write() per page.
 */
export function physStorePages(mem: PhysMem, pfns: readonly number[], data: Uint8Array): void {
  if (mem instanceof SparseMem) mem.storePages(pfns, data);
  else for (let k = 0; k < pfns.length; k++) mem.write(pfns[k]! * PAGE_SIZE, data.subarray(k * PAGE_SIZE, (k + 1) * PAGE_SIZE));
}


/**
 * physWriteOwned - store @data at @phys in @mem, handing @data over where
 * the memory can keep it without a copy (SparseMem.writeOwned); the caller
 * must not change @data afterwards.
 */
export function physWriteOwned(mem: PhysMem, phys: number, data: Uint8Array): void {
  if (mem instanceof SparseMem) mem.writeOwned(phys, data);
  else mem.write(phys, data);
}

/**
 * OverlayMem - copy-on-write view of another PhysMem: writes land in private
 * pages, reads see them over the lower layer. The fuzzer damages memory this
 * way without copying a whole image, and a successor that hands off again
 * writes its own changes without touching its input image.
 */
export class OverlayMem implements PhysMem, PageSource {
  readonly base: number;
  readonly size: number;
  readonly banks?: readonly RamBank[] | undefined;
  private readonly pages = new Map<number, Uint8Array>();

  constructor(private readonly lower: PhysMem) {
    this.base = lower.base;
    this.size = lower.size;
    if (lower.banks) this.banks = lower.banks;
  }

  read(phys: number, len: number): Uint8Array {
    checkPhysAccess(this, phys, len);
    const out = this.lower.read(phys, len);
    this.overlay(phys, out);
    return out;
  }

  /** readInto - read() into @out (the lower memory's readInto when it has one): no fresh array per call. */
  readInto(phys: number, out: Uint8Array): void {
    checkPhysAccess(this, phys, out.length);
    physReadInto(this.lower, phys, out);
    this.overlay(phys, out);
  }

  /* Copy this overlay's pages over @out, the lower memory's bytes at @phys. */
  private overlay(phys: number, out: Uint8Array): void {
    const len = out.length;
    if (this.pages.size === 0) return;
    for (let pfn = Math.floor(phys / PAGE_SIZE); pfn * PAGE_SIZE < phys + len; pfn++) {
      const page = this.pages.get(pfn);
      if (!page) continue;
      const from = Math.max(phys, pfn * PAGE_SIZE);
      const to = Math.min(phys + len, (pfn + 1) * PAGE_SIZE);
      out.set(page.subarray(from - pfn * PAGE_SIZE, to - pfn * PAGE_SIZE), from - phys);
    }
  }

  write(phys: number, data: Uint8Array): void {
    checkPhysAccess(this, phys, data.length);
    writePages(this.pages, phys, data, (pfn) => this.lower.read(pfn * PAGE_SIZE, PAGE_SIZE));
  }

  /** Page frames written through this overlay. */
  get touchedPages(): number {
    return this.pages.size;
  }

  touchedRuns(): [number, number][] {
    return runsOf(this.pages.keys());
  }

  page(pfn: number): Uint8Array | undefined {
    return this.pages.get(pfn);
  }
}
