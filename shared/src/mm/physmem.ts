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
import { PAGE_SIZE } from "../abi/page.js";
import { ByteReader, hex } from "../lib/bytes.js";

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
  /** Bytes of RAM. */
  readonly size: number;
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
  /** Number of pages written. */
  readonly touchedPages: number;
  /** Written pages as runs [pfn, count] of consecutive page frames, ascending. */
  touchedRuns(): [number, number][];
  /** The written page at @pfn, or undefined. */
  page(pfn: number): Uint8Array | undefined;
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

/** True when [phys, phys + len) lies inside RAM. */
export function physInRam(mem: { base: number; size: number }, phys: number, len: number): boolean {
  return (
    Number.isSafeInteger(phys) && Number.isSafeInteger(len) && len >= 0 && phys >= mem.base && phys + len <= mem.base + mem.size
  );
}

export function checkPhysAccess(mem: PhysMem, phys: number, len: number): void {
  if (!physInRam(mem, phys, len)) {
    throw new PhysMemError(
      phys,
      len,
      `access of ${len} bytes at ${hex(phys)} outside RAM [${hex(mem.base)}, ${hex(mem.base + mem.size)})`,
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
  private pool: ArrayBuffer | undefined;
  private poolUsed = POOL_PAGES;
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
  ) {
    if (base % PAGE_SIZE !== 0 || size % PAGE_SIZE !== 0) {
      throw new PhysMemError(base, size, `RAM ${hex(base)}+${hex(size)} is not page aligned`);
    }
  }

  /** Number of pages that hold data. */
  get touchedPages(): number {
    return this.pages.size;
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
      const page = this.pages.get(pfn);
      if (page) out.set(page.subarray(off, off + n), done);
      done += n;
    }
    return out;
  }

  write(phys: number, data: Uint8Array): void {
    checkPhysAccess(this, phys, data.length);
    writePages(this.pages, phys, data, this.fresh);
  }

  /**
   * writeOwned - write() that takes ownership of @data: whole pages of it
   * that are not held yet become pages of this memory without a copy (the
   * caller must not change @data afterwards); the rest is copied as write()
   * does. For large blobs written once (kho_test's info blob).
   */
  writeOwned(phys: number, data: Uint8Array): void {
    checkPhysAccess(this, phys, data.length);
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
    return runsOf(this.pages.keys());
  }

  /** The page at @pfn, or undefined when it was never written. */
  page(pfn: number): Uint8Array | undefined {
    return this.pages.get(pfn);
  }
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
  private readonly pages = new Map<number, Uint8Array>();

  constructor(private readonly lower: PhysMem) {
    this.base = lower.base;
    this.size = lower.size;
  }

  read(phys: number, len: number): Uint8Array {
    checkPhysAccess(this, phys, len);
    const out = this.lower.read(phys, len);
    if (this.pages.size === 0) return out;
    for (let pfn = Math.floor(phys / PAGE_SIZE); pfn * PAGE_SIZE < phys + len; pfn++) {
      const page = this.pages.get(pfn);
      if (!page) continue;
      const from = Math.max(phys, pfn * PAGE_SIZE);
      const to = Math.min(phys + len, (pfn + 1) * PAGE_SIZE);
      out.set(page.subarray(from - pfn * PAGE_SIZE, to - pfn * PAGE_SIZE), from - phys);
    }
    return out;
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
