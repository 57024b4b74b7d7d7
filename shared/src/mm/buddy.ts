/*
 * The predecessor's page allocator: a deterministic buddy allocator.
 *
 * Modelled on mm/page_alloc.c: free memory is a set of naturally aligned
 * blocks of order 0..maxOrder (PAGE_SIZE << order bytes, aligned to their own
 * size in physical address space), one sorted set of block addresses per
 * order, and two free blocks that are buddies of the same order are always
 * merged. The free lists are therefore canonical: they are exactly the maximal
 * aligned blocks (capped at maxOrder) of the set of free pages, whatever
 * sequence of calls produced it.
 *
 * Unlike the kernel, which hands out whatever sits at the head of a free
 * list, every allocation here takes the LOWEST free address that fits, so two
 * runs with the same inputs allocate the same addresses.
 *
 * Costs: state is one B+ tree entry per free block (a 1 TiB machine with
 * nothing allocated is 2^18 entries of order 10), never per page. allocFolio,
 * freeFolio and allocAt are O(maxOrder * log n) (allocAt also walks the
 * blocks it claims); allocContig scans free blocks in address order from the
 * bottom until a run fits, so it is linear in the free blocks below the run
 * it returns, and claims max-order blocks in bulk.
 *
 * Fast path: the pieces expand() splits off are each below every other free
 * block of their order (the split block was the lowest free block of any
 * order >= the request, and free blocks do not overlap). They go on a
 * per-order stack (a Float64Array, lowest on top) in front of that order's
 * tree instead of into it, so a run of allocFolio calls pops and pushes in
 * O(1) without touching a tree; every other operation first moves the
 * stacks into the trees (flush). The blocks, and so every result, are the
 * same as with the trees alone.
 *
 * Addresses and sizes are JS numbers (byte addresses, safe integers).
 */
import { MAX_PAGE_ORDER, PAGE_SIZE } from "../abi/page.js";
import { BTree } from "../lib/btree.js";
import { hex } from "../lib/bytes.js";

/** Misuse of the allocator: bad arguments, double free, freeing unmanaged memory. */
export class BuddyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BuddyError";
  }
}

/** One free block: [base, base + (PAGE_SIZE << order)). */
export interface FreeBlock {
  base: number;
  order: number;
}

const numCmp = (a: number, b: number): number => a - b;

/** Largest maxOrder accepted (block sizes stay exact safe integers). */
const MAX_SUPPORTED_ORDER = 40;

export class BuddyAllocator {
  readonly maxOrder: number;
  /** free[o]: addresses of the free blocks of order o. */
  private readonly free: BTree<number, undefined>[] = [];
  /** lowest[o]: smallest free block of order o (stack top, else smallest key of free[o]), Infinity when none. */
  private readonly lowest: number[] = [];
  /** treeLowest[o]: smallest key of free[o], Infinity when empty (cache). */
  private readonly treeLowest: number[] = [];
  /** front[o][0 .. frontLen[o]): free order-o blocks not in free[o], descending, all below its keys. */
  private readonly front: Float64Array[] = [];
  private readonly frontLen: Int32Array;
  /** Total entries on the front stacks (0: the trees hold every block). */
  private frontCount = 0;
  /** blockBytes[o] = PAGE_SIZE << o. */
  private readonly blockBytes: number[] = [];
  /** Memory handed over with freeRange: coalesced, disjoint [start -> end). */
  private readonly managed: BTree<number, number> = new BTree<number, number>(undefined, numCmp);
  private freePages = 0;
  private managedPages = 0;

  constructor(maxOrder: number = MAX_PAGE_ORDER) {
    if (!Number.isInteger(maxOrder) || maxOrder < 0 || maxOrder > MAX_SUPPORTED_ORDER) {
      throw new BuddyError(`maxOrder ${maxOrder} must be an integer in 0..${MAX_SUPPORTED_ORDER}`);
    }
    this.maxOrder = maxOrder;
    this.frontLen = new Int32Array(maxOrder + 1);
    for (let o = 0; o <= maxOrder; o++) {
      this.free.push(new BTree<number, undefined>(undefined, numCmp));
      this.lowest.push(Infinity);
      this.treeLowest.push(Infinity);
      this.front.push(new Float64Array(4));
      this.blockBytes.push(PAGE_SIZE * 2 ** o);
    }
  }

  /** Bytes currently free. */
  get freeBytes(): number {
    return this.freePages * PAGE_SIZE;
  }

  /** Bytes handed to the allocator with freeRange and not free now. */
  get allocatedBytes(): number {
    return (this.managedPages - this.freePages) * PAGE_SIZE;
  }

  /** Bytes ever handed to the allocator with freeRange. */
  get managedBytes(): number {
    return this.managedPages * PAGE_SIZE;
  }

  /** Number of free blocks of @order. */
  nrFreeBlocks(order: number): number {
    this.checkOrder(order);
    this.flush();
    return this.free[order]!.size;
  }

  /** All free blocks, ascending by address. */
  freeBlocks(): FreeBlock[] {
    this.flush();
    const out: FreeBlock[] = [];
    for (let o = 0; o <= this.maxOrder; o++) {
      for (const base of this.free[o]!.keys()) out.push({ base, order: o });
    }
    return out.sort((a, b) => a.base - b.base);
  }

  /**
   * freeRange - give [base, base + size) to the allocator (memblock_free_all).
   * The range must be page aligned and must not overlap memory given earlier.
   * It is split into maximal naturally aligned blocks of order <= maxOrder,
   * each merged with free buddies.
   */
  freeRange(base: number, size: number): void {
    const end = this.checkRange(base, size, "freeRange");
    this.flush();
    const prev = this.managed.nextLowerPair(end);
    if (prev && prev[1] > base) {
      throw new BuddyError(
        `freeRange [${hex(base)}, ${hex(end)}) overlaps managed memory [${hex(prev[0])}, ${hex(prev[1])})`,
      );
    }
    // Coalesce with the neighbours in the managed set.
    let start = base;
    let stop = end;
    if (prev && prev[1] === base) {
      start = prev[0];
      this.managed.delete(prev[0]);
    }
    const next = this.managed.get(end);
    if (next !== undefined) {
      stop = next;
      this.managed.delete(end);
    }
    this.managed.set(start, stop);
    this.managedPages += size / PAGE_SIZE;
    this.insertRange(base, end, true);
  }

  /**
   * allocFolio - allocate 2^order pages naturally aligned: the lowest-address
   * free block of that order, splitting the lowest larger block if none is
   * lower (expand(): the upper halves go back as blocks of order-1 .. @order).
   * Returns the physical address, or undefined when nothing fits.
   */
  allocFolio(order: number): number | undefined {
    this.checkOrder(order);
    let best = Infinity;
    let from = -1;
    for (let o = order; o <= this.maxOrder; o++) {
      const a = this.lowest[o]!;
      if (a < best) {
        best = a;
        from = o;
      }
    }
    if (from < 0) return undefined;
    // Take the lowest block: the top of its order's stack, else the tree's smallest key.
    const n = this.frontLen[from]!;
    if (n > 0) {
      this.frontLen[from] = n - 1;
      this.frontCount--;
      this.lowest[from] = n > 1 ? this.front[from]![n - 2]! : this.treeLowest[from]!;
      this.freePages -= 2 ** from;
    } else {
      this.removeBlock(best, from);
    }
    // expand(): each upper half is the new lowest block of its order.
    for (let o = from - 1; o >= order; o--) {
      const addr = best + this.blockBytes[o]!;
      let st = this.front[o]!;
      const len = this.frontLen[o]!;
      if (len === st.length) {
        const grown = new Float64Array(len * 2);
        grown.set(st);
        this.front[o] = st = grown;
      }
      st[len] = addr;
      this.frontLen[o] = len + 1;
      this.frontCount++;
      this.lowest[o] = addr;
      this.freePages += 2 ** o;
    }
    return best;
  }

  /**
   * allocPages - @n order-0 pages, the ones @n calls of allocFolio(0) would
   * hand out, in the same order, appended to @out; the allocator ends in the
   * same state. Those calls use up the lowest free block before any other
   * (each split leaves the lowest free blocks in its upper halves), so a
   * block no larger than the pages still wanted is taken whole: a step per
   * block, not per page. Returns the number of pages appended, below @n only
   * when memory ran out.
   */
  allocPages(n: number, out: number[]): number {
    let got = 0;
    while (got < n) {
      let best = Infinity;
      let from = -1;
      for (let o = 0; o <= this.maxOrder; o++) {
        const a = this.lowest[o]!;
        if (a < best) {
          best = a;
          from = o;
        }
      }
      if (from < 0) break;
      // The lowest block is whole when it fits (allocFolio(from) takes it, unsplit), else one page of it is split off.
      const take = 2 ** from <= n - got ? 2 ** from : 1;
      this.allocFolio(take === 1 ? 0 : from);
      for (let k = 0; k < take; k++) out.push(best + k * PAGE_SIZE);
      got += take;
    }
    return got;
  }

  /**
   * allocContig - allocate @nrPages contiguous pages whose first page is
   * aligned to @alignPages pages, i.e. its pfn is a multiple of @alignPages
   * (alloc_contig_pages). @alignPages need not be a power of two. Takes the lowest such
   * run, which may span any number of blocks. Returns the physical address,
   * or undefined when no free run is long enough.
   */
  allocContig(nrPages: number, alignPages = 1): number | undefined {
    if (!Number.isSafeInteger(nrPages) || nrPages <= 0) {
      throw new BuddyError(`allocContig: nrPages ${nrPages} must be a positive integer`);
    }
    if (!Number.isSafeInteger(alignPages) || alignPages <= 0) {
      throw new BuddyError(`allocContig: alignPages ${alignPages} must be a positive integer`);
    }
    if (nrPages > this.freePages) return undefined;
    this.flush();
    const len = nrPages * PAGE_SIZE;
    const align = alignPages * PAGE_SIZE;
    if (!Number.isSafeInteger(len) || !Number.isSafeInteger(align)) {
      throw new BuddyError(`allocContig: ${nrPages} pages aligned to ${alignPages} is too large`);
    }

    // Merge the per-order sets into one ascending stream of blocks and grow
    // runs of adjacent blocks until one holds an aligned window of len bytes.
    const n = this.maxOrder + 1;
    const iters = this.free.map((t) => t.keys());
    const heads = new Array<number>(n);
    for (let o = 0; o < n; o++) {
      const r = iters[o]!.next();
      heads[o] = r.done ? Infinity : r.value;
    }
    let runEnd = -1;
    let cand = 0;
    for (;;) {
      let a = Infinity;
      let o = -1;
      for (let k = 0; k < n; k++) {
        if (heads[k]! < a) {
          a = heads[k]!;
          o = k;
        }
      }
      if (o < 0) return undefined;
      const r = iters[o]!.next();
      heads[o] = r.done ? Infinity : r.value;
      if (a !== runEnd) {
        const rem = a % align;
        cand = rem === 0 ? a : a - rem + align;
      }
      runEnd = a + this.blockBytes[o]!;
      if (cand + len <= runEnd) {
        this.claim(cand, cand + len);
        return cand;
      }
    }
  }

  /**
   * allocAt - claim [base, base + size) if every page of it is free.
   * Returns false, changing nothing, when any page is not free.
   */
  allocAt(base: number, size: number): boolean {
    const end = this.checkRange(base, size, "allocAt");
    this.flush();
    let p = base;
    while (p < end) {
      let next = -1;
      for (let o = this.maxOrder; o >= 0; o--) {
        const bytes = this.blockBytes[o]!;
        const k = p - (p % bytes);
        if (this.free[o]!.has(k)) {
          next = k + bytes;
          break;
        }
      }
      if (next < 0) return false;
      p = next;
    }
    this.claim(base, end);
    return true;
  }

  /**
   * freeFolio - free the 2^order pages at @phys (naturally aligned), merging
   * with free buddies. Throws BuddyError unless every page is allocated.
   */
  freeFolio(phys: number, order: number): void {
    this.checkOrder(order);
    const bytes = this.blockBytes[order]!;
    if (!Number.isSafeInteger(phys) || phys < 0 || phys % bytes !== 0 || !Number.isSafeInteger(phys + bytes)) {
      throw new BuddyError(`freeFolio: ${phys < 0 ? phys : hex(phys)} is not a valid order-${order} folio address`);
    }
    this.flush();
    this.checkAllocated(phys, phys + bytes, "freeFolio");
    this.freeBlock(phys, order);
  }

  /**
   * freeContig - free @nrPages pages at @base (free_contig_range), merging
   * with free buddies. Throws BuddyError unless every page is allocated.
   */
  freeContig(base: number, nrPages: number): void {
    if (!Number.isSafeInteger(nrPages) || nrPages <= 0) {
      throw new BuddyError(`freeContig: nrPages ${nrPages} must be a positive integer`);
    }
    const end = this.checkRange(base, nrPages * PAGE_SIZE, "freeContig");
    this.flush();
    this.checkAllocated(base, end, "freeContig");
    this.insertRange(base, end, true);
  }

  /* ---- internals ---- */

  private checkOrder(order: number): void {
    if (!Number.isInteger(order) || order < 0 || order > this.maxOrder) {
      throw new BuddyError(`order ${order} outside 0..${this.maxOrder}`);
    }
  }

  /** Validate a page-aligned non-empty range; returns its end. */
  private checkRange(base: number, size: number, what: string): number {
    const end = base + size;
    if (
      !Number.isSafeInteger(base) ||
      !Number.isSafeInteger(size) ||
      !Number.isSafeInteger(end) ||
      base < 0 ||
      size <= 0 ||
      base % PAGE_SIZE !== 0 ||
      size % PAGE_SIZE !== 0
    ) {
      throw new BuddyError(`${what}: range base ${base} size ${size} is not a non-empty page-aligned range`);
    }
    return end;
  }

  /** Throw unless [a, b) lies in managed memory and overlaps no free block. */
  private checkAllocated(a: number, b: number, what: string): void {
    const m = this.managed.getPairOrNextLower(a);
    if (!m || m[1] < b) {
      throw new BuddyError(`${what}: [${hex(a)}, ${hex(b)}) was never given to the allocator`);
    }
    for (let o = 0; o <= this.maxOrder; o++) {
      const bytes = this.blockBytes[o]!;
      const k = this.free[o]!.nextHigherKey(a - bytes);
      if (k !== undefined && k < b) {
        throw new BuddyError(
          `${what}: [${hex(a)}, ${hex(b)}) is not allocated: overlaps free order-${o} block at ${hex(k)}`,
        );
      }
    }
  }

  /** Move the front stacks into the trees (the caller needs the trees whole). */
  private flush(): void {
    if (this.frontCount === 0) return;
    for (let o = 0; o <= this.maxOrder; o++) {
      const n = this.frontLen[o]!;
      if (n === 0) continue;
      const t = this.free[o]!;
      const st = this.front[o]!;
      for (let i = 0; i < n; i++) t.set(st[i]!, undefined);
      this.treeLowest[o] = st[n - 1]!;
      this.frontLen[o] = 0;
    }
    this.frontCount = 0;
  }

  /* addBlock, removeBlock and claim run with the stacks empty (flushed). */
  private addBlock(addr: number, order: number): void {
    this.free[order]!.set(addr, undefined);
    if (addr < this.lowest[order]!) this.lowest[order] = this.treeLowest[order] = addr;
    this.freePages += 2 ** order;
  }

  private removeBlock(addr: number, order: number): void {
    const t = this.free[order]!;
    t.delete(addr);
    if (addr === this.lowest[order]) this.lowest[order] = this.treeLowest[order] = t.minKey() ?? Infinity;
    this.freePages -= 2 ** order;
  }

  /** __free_one_page(): add a block, merging with its buddy while it is free. */
  private freeBlock(addr: number, order: number): void {
    while (order < this.maxOrder) {
      const bytes = this.blockBytes[order]!;
      const buddy = (addr / bytes) % 2 === 0 ? addr + bytes : addr - bytes;
      if (!this.free[order]!.has(buddy)) break;
      this.removeBlock(buddy, order);
      if (buddy < addr) addr = buddy;
      order++;
    }
    this.addBlock(addr, order);
  }

  /** Largest order <= maxOrder of an aligned block at @p inside [p, end). */
  private orderAt(p: number, end: number): number {
    let o = 0;
    while (o < this.maxOrder) {
      const next = this.blockBytes[o + 1]!;
      if (p % next !== 0 || p + next > end) break;
      o++;
    }
    return o;
  }

  /**
   * Add the free pages [base, end) as maximal aligned blocks. With @merge
   * false the caller guarantees no block can merge with an existing one.
   */
  private insertRange(base: number, end: number, merge: boolean): void {
    let p = base;
    while (p < end) {
      const o = this.orderAt(p, end);
      if (merge) this.freeBlock(p, o);
      else this.addBlock(p, o);
      p += this.blockBytes[o]!;
    }
  }

  /** Allocate [a, b), known to be entirely free. */
  private claim(a: number, b: number): void {
    const leftovers: [number, number][] = [];
    for (let o = 0; o <= this.maxOrder; o++) {
      const t = this.free[o]!;
      if (t.size === 0) continue;
      const bytes = this.blockBytes[o]!;
      const lo = a - (a % bytes);
      let first = -1;
      let last = -1;
      const count = t.forRange(lo, b, false, (k) => {
        if (first < 0) first = k;
        last = k;
      });
      if (count === 0) continue;
      t.deleteRange(lo, b, false);
      this.freePages -= count * 2 ** o;
      if (this.lowest[o]! >= lo && this.lowest[o]! < b) this.lowest[o] = this.treeLowest[o] = t.minKey() ?? Infinity;
      // Blocks straddling an end of [a, b) give back the part outside it.
      // Those parts cannot merge: their buddies lie inside the old block.
      if (first < a) leftovers.push([first, a]);
      if (last + bytes > b) leftovers.push([b, last + bytes]);
    }
    for (const [s, e] of leftovers) this.insertRange(s, e, false);
  }
}
