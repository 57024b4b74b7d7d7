/*
 * The memory-map walks of each kernel version, as that kernel does them:
 * trusting every pointer and count, but through KernelView, which reads
 * only RAM (bytes outside it read as 0) and counts every byte read outside
 * the object the predecessor wrote (the "bounded view"); and through
 * KernelReserves, which records each memblock_reserve() with the size the
 * kernel computes, clamps it as memblock_cap_size() does, and models the
 * page->private write that follows. Sources: docs/kernel-versions.md 2.2,
 * 3.1-3.5.
 */
import { KHOSER_BITMAPS_PER_CHUNK, KHOSER_BM_CHUNK_SIZE } from "../../abi/bitmaps.js";
import { PAGE_SIZE } from "../../abi/page.js";
import { KHOSER_CHUNK_SIZE, KHOSER_MEM_RANGE_SIZE, KHOSER_RANGES_PER_CHUNK, POSTED_CHUNK_SIZE, POSTED_RANGES_SIZE } from "../../abi/ranges.js";
import { hex } from "../../lib/bytes.js";
import type { Memblock } from "../../mm/memblock/index.js";
import type { PhysMem } from "../../mm/physmem.js";
import { khoKernelBlockSize, type KhoKernel } from "./versions.js";

const U64_MAX = (1n << 64n) - 1n;
/** KHO_PAGE_MAGIC ("KHOP"), the high 32 bits of page->private since 6.18 (kho_restore_page). */
export const KHO_PAGE_MAGIC = 0x4b484f50;

/**
 * KernelView - reads of physical memory as a trusting kernel does them.
 * read() returns @len bytes at @addr (a u64): bytes inside RAM as they are,
 * bytes outside RAM as 0; every byte outside [objStart, objStart + objSize)
 * (the object the predecessor wrote there) or outside RAM is counted in
 * oobBytes, and the first such address is kept.
 */
export class KernelView {
  oobBytes = 0;
  firstOob: bigint | undefined;
  private readonly ramBase: bigint;
  private readonly ramEnd: bigint;

  constructor(readonly mem: PhysMem) {
    this.ramBase = BigInt(mem.base);
    this.ramEnd = BigInt(mem.base + mem.size);
  }

  /**
   * countOob - count @n bytes at @addr as read out of bounds without reading
   * them. The count saturates at 2^53 - 1: a damaged u64 entry count asks
   * for more bytes than a JavaScript number holds exactly (or any machine).
   */
  countOob(addr: bigint, n: bigint | number): void {
    const b = BigInt(n);
    if (b <= 0n) return;
    const sum = BigInt(this.oobBytes) + b;
    this.oobBytes = sum > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(sum);
    this.firstOob ??= addr;
  }

  read(addr: bigint, len: number, objStart: bigint, objSize: number): Uint8Array {
    const out = new Uint8Array(len);
    const end = addr + BigInt(len);
    const objEnd = objStart + BigInt(objSize);
    // Bytes outside the object: before it and after it.
    if (addr < objStart) this.countOob(addr, (objStart < end ? objStart : end) - addr);
    if (end > objEnd) this.countOob(addr > objEnd ? addr : objEnd, end - (addr > objEnd ? addr : objEnd));
    const s = addr > this.ramBase ? addr : this.ramBase;
    const e = end < this.ramEnd ? end : this.ramEnd;
    if (s < e) out.set(this.mem.read(Number(s), Number(e - s)), Number(s - addr));
    // Bytes outside RAM that were inside the object (the object itself is not in RAM).
    const inObjS = addr > objStart ? addr : objStart;
    const inObjE = end < objEnd ? end : objEnd;
    if (inObjS < inObjE) {
      if (inObjS < this.ramBase) this.countOob(inObjS, (inObjE < this.ramBase ? inObjE : this.ramBase) - inObjS);
      if (inObjE > this.ramEnd) this.countOob(inObjS > this.ramEnd ? inObjS : this.ramEnd, inObjE - (inObjS > this.ramEnd ? inObjS : this.ramEnd));
    }
    return out;
  }

  u64(b: Uint8Array, off: number): bigint {
    return new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(off, true);
  }
}

/**
 * memblockCapSize - memblock_cap_size() (mm/memblock.c, called by
 * memblock_add_range() and memblock_isolate_range()): @size clamped so that
 * @base + size does not pass PHYS_ADDR_MAX (2^64 - 1).
 */
export function memblockCapSize(base: bigint, size: bigint): bigint {
  return size < U64_MAX - base ? size : U64_MAX - base;
}

/**
 * PagePrivate - page->private of the pfns a walk wrote, in 64 Ki-page
 * blocks made on first use (a Map per pfn costs more than the walk).
 * Values are the walk's: order, plus 0x100 with KHO_PAGE_MAGIC.
 */
export class PagePrivate {
  private readonly blocks = new Map<number, Uint16Array>();

  /** get - the value at @pfn, undefined when never written (or cleared). */
  get(pfn: number): number | undefined {
    const v = this.blocks.get(Math.floor(pfn / 65536))?.[pfn % 65536] ?? 0;
    return v === 0 ? undefined : v - 1;
  }

  set(pfn: number, v: number): void {
    const key = Math.floor(pfn / 65536);
    let b = this.blocks.get(key);
    if (b === undefined) {
      b = new Uint16Array(65536);
      this.blocks.set(key, b);
    }
    b[pfn % 65536] = v + 1;
  }

  /** delete - clear @pfn (kho_restore_page's page->private = 0). */
  delete(pfn: number): void {
    const b = this.blocks.get(Math.floor(pfn / 65536));
    if (b !== undefined) b[pfn % 65536] = 0;
  }
}

/** A memblock_reserve() of the wrong size: where, what was reserved, what was meant. */
export interface WrongSize {
  addr: bigint;
  reserved: bigint;
  intended: bigint;
}

/**
 * KernelReserves - the walk's memblock_reserve() calls and page->private
 * writes. In-RAM parts go to @mb (memblock_cap_size() first: a size past
 * the top of the address space is clamped to PHYS_ADDR_MAX - base); the
 * reserved intervals inside RAM are kept for the lost/spurious arithmetic.
 */
export class KernelReserves {
  calls = 0;
  /** Reserved intervals inside RAM, [start, end) rounded out to pages, in call order. */
  readonly starts: number[] = [];
  readonly ends: number[] = [];
  /** The calls as made (start, size passed, order or -1), for successor.json's ranges. */
  readonly list: { start: bigint; size: bigint; data: number }[] = [];
  wrongSize = 0;
  firstWrong: WrongSize | undefined;
  /** Wrong-size reserves larger than meant, marked noinit: memory never preserved withheld with uninitialised struct pages. */
  oversizeNoinit = 0;
  outsideRam = 0;
  outsideRamPfns = 0;
  firstOutsideRamPfn: bigint | undefined;
  /** Set once calls reach budget (pages of RAM + 65536): a walk that gets there reads garbage, and stops. */
  exhausted = false;
  readonly budget: number;
  /** page->private of each pfn the walk wrote: order, plus 0x100 with KHO_PAGE_MAGIC. */
  readonly pagePrivate = new PagePrivate();
  private readonly ramBase: bigint;
  private readonly ramEnd: bigint;
  /* Per order: the size this kernel computes and the size meant (BigInt arithmetic once per order, not per block). */
  private readonly sizeOf: [bigint, bigint][] = [];

  constructor(
    readonly k: KhoKernel,
    readonly mb: Memblock,
    ram: { base: number; size: number },
  ) {
    this.ramBase = BigInt(ram.base);
    this.ramEnd = BigInt(ram.base + ram.size);
    this.budget = ram.size / PAGE_SIZE + 65536;
  }

  /** memblockReserve - memblock_reserve(@base, @size) as the kernel calls it (and mark_noinit when it does); @intended is the size meant. */
  memblockReserve(base: bigint, size: bigint, intended: bigint, data: number): void {
    if (this.calls >= this.budget) {
      this.exhausted = true;
      return;
    }
    this.calls++;
    this.list.push({ start: base, size, data });
    if (size !== intended) {
      this.wrongSize++;
      this.firstWrong ??= { addr: base, reserved: size, intended };
      if (size > intended && this.k.successor.markNoinit) this.oversizeNoinit++;
    }
    // memblock_cap_size(): size = min(size, PHYS_ADDR_MAX - base).
    const capped = memblockCapSize(base, size);
    const end = base + capped;
    const s = base > this.ramBase ? base : this.ramBase;
    const e = end < this.ramEnd ? end : this.ramEnd;
    if (s >= e) {
      if (capped > 0n) this.outsideRam++;
      return;
    }
    const ns = Number(s);
    const ne = Number(e);
    // A page any byte of which is reserved stays out of the page allocator (__free_memory_core frees PFN_UP(start)..PFN_DOWN(end)).
    this.starts.push(Math.floor(ns / PAGE_SIZE) * PAGE_SIZE);
    this.ends.push(Math.ceil(ne / PAGE_SIZE) * PAGE_SIZE);
    this.mb.memblockReserve(ns, ne - ns);
    if (this.k.successor.markNoinit) this.mb.memblockReservedMarkNoinit(ns, ne - ns);
  }

  /** setPagePrivate - phys_to_page(@phys)->private = order (| KHO_PAGE_MAGIC): no check that the pfn has a struct page. */
  setPagePrivate(phys: bigint, order: number): void {
    const how = this.k.successor.pagePrivate;
    if (how === "none") return;
    if (phys < this.ramBase || phys >= this.ramEnd) {
      this.outsideRamPfns++;
      this.firstOutsideRamPfn ??= phys >> 12n;
      return;
    }
    this.pagePrivate.set(Number(phys) / PAGE_SIZE, order | (how === "magic" ? 0x100 : 0));
  }

  /** reserveBlock - the per-block step of deserialize_bitmap() / kho_preserved_memory_reserve(). */
  reserveBlock(phys: bigint, order: number): void {
    const sizes = (this.sizeOf[order] ??= [khoKernelBlockSize(this.k, order), 1n << BigInt(order + 12)]);
    this.memblockReserve(phys, sizes[0], sizes[1], 0x100 | (order & 0xff));
    this.setPagePrivate(phys, order);
  }
}

/** What a walk reports besides the reserves. */
export interface KernelWalkResult {
  /** Metadata objects walked (chunks, bitmaps, nodes), in walk order. */
  objects: bigint[];
  /** The khosim format the written metadata looks like (bitmap size inferred), for the report. */
  written: string;
  /** One line per hazard met (cycle, undefined shift...). */
  hazards: string[];
  /** Set when the walk could not end as the kernel's would (it would loop forever, shift by an undefined amount, or was cut short): the hazard line saying so. */
  corrupt: string | undefined;
}

/** Entries read past their chunk object, over a whole walk, before the walk is cut short (memory stays bounded). */
export const MAX_ENTRIES_PAST_CHUNK = 65536;

/* Entries of a list that lie inside RAM (entries past RAM read as zeros: pointer 0, no bits). */
/* At most @cap entries plus what is left of the walk's budget for entries past the chunk. */
function capEntries(n: bigint, cap: bigint, past: { left: bigint }, chunk: bigint, hazards: string[]): bigint {
  if (n <= cap) return n;
  const extra = n - cap < past.left ? n - cap : past.left;
  past.left -= extra;
  if (extra < n - cap) hazards.push(`chunk ${hex(chunk)}: more than ${MAX_ENTRIES_PAST_CHUNK} entries past the chunks: walk cut short`);
  return cap + extra;
}

function entriesInRam(view: KernelView, first: bigint, n: bigint, size: number): bigint {
  const ramEnd = BigInt(view.mem.base + view.mem.size);
  if (first >= ramEnd) return 0n;
  const fit = (ramEnd - first + BigInt(size) - 1n) / BigInt(size);
  return fit < n ? fit : n;
}

/* Enter chunk @ptr of a list walk; a chunk entered twice is a loop the kernel's walk never leaves: its hazard line. */
function enterChunk(seen: Set<bigint>, objects: bigint[], ptr: bigint): string | undefined {
  if (seen.has(ptr)) return `chunk list: next leads back to chunk ${hex(ptr)}: kho_mem_deserialize() would walk it forever`;
  seen.add(ptr);
  objects.push(ptr);
  return undefined;
}

/**
 * kernelBitmapsWalk - kho_mem_deserialize() + deserialize_bitmap() of a
 * bitmaps kernel (v6.16 00c010e1, v6.18 a4a508df, v6.19 dd03dd60): follow
 * next from @map without a cycle check, read num_elms entries with no
 * bound, read PRESERVE_BITS / 8 bytes at each bitmap pointer, and for each
 * set bit memblock_reserve(phys, int sz), mark noinit, write page->private.
 * The size of the bitmaps the predecessor wrote is inferred from the list
 * (a 6.16 bitmap pointer that is not page aligned, two in one page, or a
 * phys_start on the 512-byte geometry only), so that reads past a 512-byte
 * object are counted.
 */
export function kernelBitmapsWalk(k: KhoKernel, view: KernelView, res: KernelReserves, map: bigint): KernelWalkResult {
  const hazards: string[] = [];
  const objects: bigint[] = [];
  const seen = new Set<bigint>();
  const ent: { order: number; start: bigint; bitmap: bigint }[] = [];
  const past = { left: BigInt(MAX_ENTRIES_PAST_CHUNK) };
  let corrupt: string | undefined;
  for (let ptr = map; ptr !== 0n; ) {
    const loop = enterChunk(seen, objects, ptr);
    if (loop) {
      hazards.push(loop);
      corrupt ??= loop;
      break;
    }
    const hdr = view.read(ptr, 16, ptr, KHOSER_BM_CHUNK_SIZE);
    const order = new DataView(hdr.buffer).getUint32(8, true);
    const num = BigInt(new DataView(hdr.buffer).getUint32(12, true));
    if (num > BigInt(KHOSER_BITMAPS_PER_CHUNK)) hazards.push(`chunk ${hex(ptr)}: num_elms ${num} > ${KHOSER_BITMAPS_PER_CHUNK}: entries read past the chunk page`);
    let inRam = entriesInRam(view, ptr + 16n, num, 16);
    inRam = capEntries(inRam, BigInt(KHOSER_BITMAPS_PER_CHUNK), past, ptr, hazards);
    for (let i = 0n; i < inRam; i++) {
      const e = view.read(ptr + 16n + 16n * i, 16, ptr, KHOSER_BM_CHUNK_SIZE);
      ent.push({ order, start: view.u64(e, 0), bitmap: view.u64(e, 8) });
    }
    if (inRam < num) {
      // Entries beyond RAM read as zeros: phys_start 0, bitmap pointer 0, whose bytes are read too (no bits).
      hazards.push(`chunk ${hex(ptr)}: num_elms ${num}: entries from ${hex(ptr + 16n + 16n * inRam)} not walked (past RAM, or the walk cut short), counted as read out of bounds`);
      view.countOob(ptr + 16n + 16n * inRam, (num - inRam) * 16n);
      view.countOob(0n, (num - inRam) * BigInt(k.successor.preserveBits / 8));
    }
    ptr = view.u64(hdr, 0);
  }
  // Which bitmap size was written: 512-byte bitmaps betray themselves by their placement or geometry.
  const pages = new Set<bigint>();
  let small = false;
  for (const e of ent) {
    const pg = e.bitmap & ~0xfffn;
    if (e.bitmap % 4096n !== 0n || pages.has(pg) || e.start % (32768n << BigInt((e.order + 12) & 63)) !== 0n) small = true;
    pages.add(pg);
  }
  const written = small ? 512 : 4096;
  const bytes = k.successor.preserveBits / 8;
  const seenBm = new Set<bigint>();
  for (const e of ent) {
    if (!seenBm.has(e.bitmap)) {
      seenBm.add(e.bitmap);
      objects.push(e.bitmap);
    }
    const bits = view.read(e.bitmap, bytes, e.bitmap, written);
    const shift = BigInt((e.order + 12) & 63);
    for (let i = 0; i < bytes; i++) {
      const v = bits[i]!;
      if (v === 0) continue;
      for (let b = 0; b < 8; b++) {
        if (!(v & (1 << b))) continue;
        // phys = phys_start + (bit << (order + PAGE_SHIFT)) in unsigned long.
        const phys = BigInt.asUintN(64, e.start + (BigInt(i * 8 + b) << shift));
        res.reserveBlock(phys, e.order);
      }
    }
  }
  return { objects, written: small ? "bitmaps" : "bitmaps-page", hazards, corrupt };
}

/**
 * kernelPostingWalk - the posting's kho_mem_deserialize() (seed
 * kho-ranges-code.c): metadata 0 is walked as page 0 (phys_to_virt(0) is
 * not NULL); every chunk memblock_reserve()d with sizeof(struct
 * khoser_mem_chunk) = 98,320 bytes and kept; num_ranges entries with no
 * bound; per entry mark_noinit (before the reserve: no effect) and
 * memblock_reserve(start, size) with a full phys_addr_t size. @posted: the
 * predecessor wrote the posted geometry (98,320-byte chunks), else 4 KiB
 * ranges chunks.
 */
export function kernelPostingWalk(view: KernelView, res: KernelReserves, map: bigint, posted: boolean): KernelWalkResult {
  const hazards: string[] = [];
  const objects: bigint[] = [];
  const seen = new Set<bigint>();
  const objSize = posted ? POSTED_CHUNK_SIZE : KHOSER_CHUNK_SIZE;
  const past = { left: BigInt(MAX_ENTRIES_PAST_CHUNK) };
  let corrupt: string | undefined;
  let ptr = map;
  do {
    const loop = enterChunk(seen, objects, ptr);
    if (loop) {
      hazards.push(loop);
      corrupt ??= loop;
      break;
    }
    res.memblockReserve(ptr, BigInt(POSTED_CHUNK_SIZE), BigInt(POSTED_CHUNK_SIZE), 0);
    const hdr = view.read(ptr, 16, ptr, objSize);
    const num = view.u64(hdr, 8);
    let inRam = entriesInRam(view, ptr + 16n, num, KHOSER_MEM_RANGE_SIZE);
    inRam = capEntries(inRam, BigInt(posted ? POSTED_RANGES_SIZE : KHOSER_RANGES_PER_CHUNK), past, ptr, hazards);
    for (let i = 0n; i < inRam; i++) {
      const e = view.read(ptr + 16n + 24n * i, 24, ptr, objSize);
      const size = view.u64(e, 8);
      res.memblockReserve(view.u64(e, 0), size, size, Number(view.u64(e, 16) & 0xffffn));
    }
    if (inRam < num) {
      hazards.push(`chunk ${hex(ptr)}: num_ranges ${num}: entries from ${hex(ptr + 16n + 24n * inRam)} not walked (past RAM, or the walk cut short), counted as read out of bounds`);
      view.countOob(ptr + 16n + 24n * inRam, (num - inRam) * 24n);
    }
    ptr = view.u64(hdr, 0);
  } while (ptr !== 0n);
  return { objects, written: posted ? "posted" : "ranges", hazards, corrupt };
}

/**
 * kernelRadixWalk - kho-v2's kho_mem_retrieve() -> __kho_radix_walk_tree()
 * from the root (level 5) (019fc368): every non-zero table entry is
 * followed (no alignment, RAM or sharing check; all 512 root entries), each
 * set leaf bit decoded to (phys, order) and handed to
 * kho_preserved_memory_reserve() (int sz, noinit, page->private). Nodes are
 * pages; node visits are bounded by the pages of RAM (a tree that shares
 * nodes could otherwise make the walk exponential).
 */
export function kernelRadixWalk(view: KernelView, res: KernelReserves, root: bigint): KernelWalkResult {
  const hazards: string[] = [];
  const objects: bigint[] = [];
  let visits = 0;
  const maxVisits = view.mem.size / PAGE_SIZE;
  let corrupt: string | undefined;
  const walk = (node: bigint, level: number, prefix: bigint): void => {
    if (++visits > maxVisits) {
      if (!corrupt) hazards.push(`radix tree: more than ${maxVisits} node visits (shared nodes): the walk would not end in reasonable time`);
      corrupt ??= hazards[hazards.length - 1];
      return;
    }
    objects.push(node);
    const b = view.read(node, PAGE_SIZE, node, PAGE_SIZE);
    if (level === 0) {
      for (let i = 0; i < PAGE_SIZE; i++) {
        const v = b[i]!;
        if (v === 0) continue;
        for (let j = 0; j < 8; j++) if (v & (1 << j)) leaf(prefix | BigInt(i * 8 + j));
      }
      return;
    }
    for (let i = 0; i < 512; i++) {
      const e = view.u64(b, i * 8);
      if (e !== 0n && !corrupt) walk(e, level - 1, prefix | (BigInt(i) << BigInt((level - 1) * 9 + 15)));
    }
  };
  const leaf = (key: bigint): void => {
    // kho_radix_decode_key(): order = 52 - fls64(key) + 1; a key above bit 52 underflows the order.
    const top = key.toString(2).length - 1;
    if (top > 52) {
      hazards.push(`radix key ${hex(key)}: bit ${top} above 52 (root entry >= 4): order underflows, shift undefined`);
      corrupt ??= hazards[hazards.length - 1];
      return;
    }
    const order = 52 - top;
    res.reserveBlock((key ^ (1n << BigInt(top))) << BigInt(12 + order), order);
  };
  walk(root, 5, 0n);
  return { objects, written: "radix", hazards, corrupt };
}
