/*
 * struct memblock_type: one sorted region list and the operations
 * mm/memblock.c performs on it (memblock_add_range, memblock_remove_range,
 * memblock_isolate_range, memblock_setclr_flag, memblock_merge_regions).
 *
 * The kernel's list is one array; here it is cut into chunks found by
 * binary search, so an update only touches the regions it overlaps plus
 * their two neighbours: a random insertion costs O(log n + chunk size).
 * A reserve at or past the end of the last region, and a flag change of
 * exactly the last region, are O(1) (addAtTail, setClrFlagAtTail), as
 * memblock's append-and-merge is. So is a reserve that lands right after
 * the region the previous update touched (the insertion hint: a successor
 * reserving preserved ranges in ascending order below its own early
 * allocations), and a flag change of exactly that region: one region
 * inserted, extended or merged, at most one chunk's tail moved by one, as
 * the kernel's memblock_insert_region() memmove()s the array's tail. The
 * hint is a position, checked against the regions before every use and
 * dropped by any other update. Results are those of the kernel's linear
 * scans.
 *
 * A successor's 6.16-style stream (memblock_reserve() then
 * memblock_reserved_mark_noinit() of each block, ascending, below its own
 * allocations) costs O(1) per call without moving any region: the kernel
 * inserts the block after the NOINIT run (memblock_insert_region(): flags
 * differ, no merge), then memblock_setclr_flag() sets NOINIT and
 * memblock_merge_regions() folds it into the run (torvalds/linux
 * mm/memblock.c @ 00974b9a83cb, memblock_add_range, memblock_setclr_flag,
 * memblock_merge_regions). Here the inserted block is held aside (pending)
 * until the mark merges it; any other access stores it first, so every
 * observer sees the kernel's array. Once a block has merged so, the next
 * block's pair (streamReserve, streamMark) reads no region: the bounds are
 * cached, and every other update drops them. Isolated blocks (a gap before
 * each, as 1M isolated folios make) take the same pair: the block is held
 * aside at the reserve and stored after the previous one, with its final
 * flags, at the mark; the kernel's array is the same after both calls.
 * Such stored blocks are queued (up to QUEUE_MAX, columns of their own)
 * and stored after H together, one move per chunk instead of one per
 * block; like the pending block, the queue is stored before any other
 * access, so every observer still sees the kernel's array.
 */
import { hex } from "../../lib/bytes.js";
import { Chunk } from "./chunk.js";
import { PHYS_ADDR_MAX, type MemblockRegion, type MemblockTypeName } from "./types.js";

/** A chunk is split when it grows past this many regions (default). */
export const CHUNK_MAX = 1024;

/** Isolated stream blocks queued before they are stored together (default). */
export const QUEUE_MAX = 1024;

/** Position of a region: chunk index and index inside the chunk. */
export interface Pos {
  c: number;
  i: number;
}

/** regionEnd - end of region @r (base + size). */
export function regionEnd(r: MemblockRegion): number {
  return r.base + r.size;
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

/**
 * MemblockType - one memblock_type: regions sorted by base, non-overlapping
 * and merged, held in chunks of at most chunkMax so that insertions and
 * removals move at most one chunk. Concatenating the chunks gives the
 * kernel's array. Positions are valid until the next modification; the end
 * position is { c: chunks.length, i: 0 }. Regions read through at() are
 * copies.
 */
export class MemblockType {
  private cs: Chunk[] = [];
  /** Base of each chunk's first region: a flat number array the searches bisect. */
  private fb: number[] = [];
  /*
   * A region added right after the hinted one and not yet stored
   * (addAtHint): memblock_reserve() of the block after a NOINIT run, which
   * the memblock_reserved_mark_noinit() that follows merges into that run
   * (setClrFlagPending). Counted in cnt and totalSize already; any other
   * access to the chunks stores it first (flush).
   */
  private pending = false;
  private pBase = 0;
  private pSize = 0;
  private pFlags = 0;
  /* The pending region lies past a gap after the hinted one (streamReserve of an isolated block): it never merges into it. */
  private pGap = false;
  cnt = 0;
  totalSize = 0;
  /** A chunk this small is merged into a neighbour when they fit together. */
  private readonly chunkMin: number;
  /** Insertion hint: chunk and index of the region the last update touched; hintC -1 when none. */
  private hintC = -1;
  private hintI = 0;
  /*
   * The stream (streamReserve, streamMark): set when a pending block has
   * just merged into the hinted region H; cleared by every other update and
   * by any access that stores the pending region. sEnd: H's end; sNext,
   * sNextFlags: the region after H; sFlags: H's flags.
   */
  private sOn = false;
  private sEnd = 0;
  private sNext = 0;
  private sNextFlags = 0;
  private sFlags = 0;
  /* H's size, as a column and index: its chunk's, or the queue's when H is queued (chunks do not change while the stream is on). */
  private hSize: Float64Array = new Float64Array(1);
  private hIdx = 0;
  /*
   * The queue: qn isolated stream blocks, ascending, with their final
   * flags, that belong right after H (hintC, hintI) in this order and are
   * not stored yet (counted in cnt and totalSize). The last one is then
   * the stream's H, and the pending block, if any, comes after it.
   * Columns made on first use, QUEUE_MAX long.
   */
  private qn = 0;
  private qBase: Float64Array | undefined;
  private qSize: Float64Array | undefined;
  private qFlags: Int32Array | undefined;

  constructor(
    readonly name: MemblockTypeName,
    private readonly chunkMax: number,
    private readonly queueMax = QUEUE_MAX,
  ) {
    this.chunkMin = Math.max(1, chunkMax >>> 3);
  }

  /** The chunks (the queue and the pending region stored first). */
  get chunks(): Chunk[] {
    this.sOn = false;
    if (this.pending || this.qn > 0) this.flush();
    return this.cs;
  }

  private get firstBase(): number[] {
    if (this.pending || this.qn > 0) this.flush();
    return this.fb;
  }

  /* Store the queue, then the pending region where memblock_insert_region() put it: after the hinted region. */
  private flush(): void {
    this.sOn = false;
    if (this.qn > 0) this.flushQueue();
    if (!this.pending) return;
    this.pending = false;
    this.pGap = false;
    this.insertAfterHint(this.hintC, this.hintI, this.pBase, this.pSize, this.pFlags);
  }

  /*
   * Store the queued blocks after H, as that many insertAfterHint() calls
   * would (same chunks, same hint after): into the room H's chunk has, in
   * one move; a full chunk takes one insertAfterHint(), which splits it.
   */
  private flushQueue(): void {
    const n = this.qn;
    const qb = this.qBase!;
    const qs = this.qSize!;
    const qf = this.qFlags!;
    this.qn = 0;
    // A pending block comes after the queue: hidden meanwhile, so that a search inside (a split chunk) does not store it first.
    const pending = this.pending;
    this.pending = false;
    for (let k = 0; k < n; ) {
      const chunk = this.cs[this.hintC]!;
      const room = this.chunkMax - chunk.len;
      if (room > 0) {
        const m = Math.min(room, n - k);
        chunk.insertRun(this.hintI + 1, qb, qs, qf, k, m);
        this.hintI += m;
        k += m;
      } else {
        this.insertAfterHint(this.hintC, this.hintI, qb[k]!, qs[k]!, qf[k]!);
        k++;
      }
    }
    this.pending = pending;
  }

  /* A chunk with room for @capacity regions (it grows by doubling up to chunkMax + 1). */
  private newChunk(capacity = this.chunkMax + 1): Chunk {
    return new Chunk(Math.min(this.chunkMax + 1, Math.max(16, capacity)));
  }

  /* ------------------------------ positions ----------------------------- */

  /** isEnd - true when @p is the end position (past the last region). */
  isEnd(p: Pos): boolean {
    return p.c >= this.chunks.length;
  }

  /** at - a copy of the region at @p. */
  at(p: Pos): MemblockRegion {
    return this.chunks[p.c]!.get(p.i);
  }

  /** next - the position after @p (the end position after the last region). */
  next(p: Pos): Pos {
    const chunk = this.chunks[p.c]!;
    return p.i + 1 < chunk.len ? { c: p.c, i: p.i + 1 } : { c: p.c + 1, i: 0 };
  }

  /** prev - the position before @p, or null at the start. */
  prev(p: Pos): Pos | null {
    if (p.i > 0) return { c: p.c, i: p.i - 1 };
    if (p.c === 0) return null;
    return { c: p.c - 1, i: this.chunks[p.c - 1]!.len - 1 };
  }

  /** first - a copy of the first region, if any. */
  first(): MemblockRegion | undefined {
    return this.chunks[0]?.get(0);
  }

  /** last - a copy of the last region, if any. */
  last(): MemblockRegion | undefined {
    const chunk = this.chunks[this.chunks.length - 1];
    return chunk?.get(chunk.len - 1);
  }

  /* ------------------------------- search ------------------------------- */

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
   * firstEndingAbove - position of the first region that ends above
   * @addr: the first that can overlap [addr, ...). Bases and ends both
   * increase along the list: find the chunk by its first base, then bisect
   * inside it; if all its regions end at or below @addr, the answer is the
   * next chunk's first region.
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

  /** lastStartingBelow - position of the last region that starts below @addr, or null. */
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

  /** search - a copy of the region containing @addr, or undefined (memblock_search()). */
  search(addr: number): MemblockRegion | undefined {
    const p = this.firstEndingAbove(addr);
    if (this.isEnd(p)) return undefined;
    const r = this.at(p);
    return r.base <= addr ? r : undefined;
  }

  /* ------------------------------- update ------------------------------- */

  /** Number of regions in [from, to). */
  private distance(from: Pos, to: Pos): number {
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
  private replace(from: Pos, to: Pos, items: readonly MemblockRegion[]): void {
    this.hintC = -1;
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
    this.hintC = -1;
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
      // The chunk keeps its first half; the rest moves to new chunks after it, in
      // halves, the last taking whatever fits (no one-region leftovers), each
      // sized for twice what it holds: an ascending stream of inserts refills them.
      const half = Math.max(1, this.chunkMax >>> 1);
      const pieces: Chunk[] = [];
      for (let k = half; k < chunk.len; ) {
        const n = chunk.len - k <= this.chunkMax ? chunk.len - k : half;
        const piece = this.newChunk(2 * n);
        piece.appendFrom(chunk, k, k + n);
        pieces.push(piece);
        k += n;
      }
      chunk.len = half;
      this.firstBase[c] = chunk.base[0]!;
      this.spliceChunks(c + 1, 0, pieces);
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

  /* ---------------------- mm/memblock.c operations ---------------------- */

  /**
   * addRange - memblock_add_range(): add [base, base + size) with @flags.
   *
   * Parts already covered by a region keep that region and its flags; only
   * the uncovered parts are inserted. If anything was inserted, touching
   * regions with equal flags are merged around the insertion.
   */
  addRange(base: number, size: number, flags: number): void {
    this.sOn = false;
    if (size === 0) return;
    if (this.pending || this.qn > 0) this.flush();
    // The hint first: a successor's stream lands below its own allocations (addAtHint fails fast at the tail).
    if (this.addAtHint(base, size, flags)) return;
    if (this.addAtTail(base, size, flags)) return;
    const end = base + size;
    const from = this.firstEndingAbove(base);
    const run: MemblockRegion[] = [];
    let cursor = base;
    let added = 0;
    let to = from;
    while (!this.isEnd(to)) {
      const r = this.at(to);
      if (r.base >= end) break;
      if (r.base > cursor) {
        run.push({ base: cursor, size: r.base - cursor, flags });
        added += r.base - cursor;
      }
      run.push(r);
      cursor = Math.min(regionEnd(r), end);
      to = this.next(to);
    }
    if (cursor < end) {
      run.push({ base: cursor, size: end - cursor, flags });
      added += end - cursor;
    }
    if (added === 0) return;
    this.totalSize += added;
    this.mergeAndReplace(from, to, run);
    this.setHint(this.firstEndingAbove(base));
  }

  private setHint(p: Pos): void {
    if (this.isEnd(p)) {
      this.hintC = -1;
    } else {
      this.hintC = p.c;
      this.hintI = p.i;
    }
  }

  /**
   * The O(1) case of addRange() below the tail: [base, base + size) starts
   * at or past the end of the hinted region H and ends at or before the
   * start of the region after it, N. The kernel inserts one region after H
   * (memblock_insert_region()) and memblock_merge_regions() folds it into H
   * when they touch with equal flags; do that directly. A range that also
   * touches N with equal flags (it fills the gap exactly) takes the general
   * path, which merges all three.
   * Return: false when the general path must run.
   */
  private addAtHint(base: number, size: number, flags: number): boolean {
    const c = this.hintC;
    if (c < 0 || c >= this.cs.length) return false;
    const chunk = this.cs[c]!;
    const i = this.hintI;
    if (i >= chunk.len) return false;
    const hEnd = chunk.end(i);
    if (base < hEnd) return false;
    const end = base + size;
    let nBase: number;
    let nFlags: number;
    if (i + 1 < chunk.len) {
      nBase = chunk.base[i + 1]!;
      nFlags = chunk.flags[i + 1]!;
    } else {
      const nc = this.cs[c + 1];
      if (nc === undefined) return false; // the tail: addAtTail's case
      nBase = nc.base[0]!;
      nFlags = nc.flags[0]!;
    }
    if (end > nBase || (end === nBase && nFlags === flags)) return false;
    if (base === hEnd && chunk.flags[i] === flags) {
      chunk.size[i] = chunk.size[i]! + size;
    } else {
      this.cnt++;
      this.totalSize += size;
      if (base === hEnd) {
        // Touching H with other flags (a reserve after a NOINIT run): held until the mark_noinit that merges it.
        this.pending = true;
        this.pBase = base;
        this.pSize = size;
        this.pFlags = flags;
      } else this.insertAfterHint(c, i, base, size, flags);
      return true;
    }
    this.totalSize += size;
    return true;
  }

  /* memblock_insert_region() after region @i of chunk @c (the hint); cnt and totalSize are the caller's. */
  private insertAfterHint(c: number, i: number, base: number, size: number, flags: number): void {
    const chunk = this.cs[c]!;
    chunk.insert(i + 1, base, size, flags);
    if (chunk.len > this.chunkMax && i + 1 >= this.chunkMax >>> 1) {
      // An ascending stream: split at the new region, which starts the next
      // chunk with what followed it; the chunk before stays nearly full
      // (halving would leave every chunk of the stream half empty).
      const p = i + 1;
      const piece = this.newChunk();
      piece.appendFrom(chunk, p, chunk.len);
      chunk.len = p;
      this.spliceChunks(c + 1, 0, [piece]);
      this.hintC = c + 1;
      this.hintI = 0;
    } else if (chunk.len > this.chunkMax) {
      this.fix(c);
      this.setHint(this.firstEndingAbove(base));
    } else {
      this.hintI = i + 1;
    }
  }

  /**
   * setClrFlag() of exactly the pending region: it takes the new flags;
   * when they equal those of the hinted region before it, it merges into
   * that region (memblock_merge_regions()) and is never stored. A change
   * that would merge it with the region after it takes the general path.
   * Return: false when the general path must run (after a flush).
   */
  private setClrFlagPending(base: number, size: number, set: boolean, flag: number): boolean {
    if (this.pGap || base !== this.pBase || size !== this.pSize) return false;
    const flags = set ? this.pFlags | flag : this.pFlags & ~flag;
    if (flags === this.pFlags) return true;
    const chunk = this.cs[this.hintC]!;
    const i = this.hintI;
    const end = base + size;
    const nc = i + 1 < chunk.len ? chunk : this.cs[this.hintC + 1]!;
    const ni = i + 1 < chunk.len ? i + 1 : 0;
    if (nc.base[ni] === end && nc.flags[ni] === flags) return false;
    if (chunk.flags[i] === flags) {
      chunk.size[i] = chunk.size[i]! + size;
      this.cnt--;
      this.pending = false;
      // H grew by the block: the next block of the stream may take the O(1) path below.
      this.sOn = true;
      this.hSize = chunk.size;
      this.hIdx = i;
      this.sEnd = end;
      this.sNext = nc.base[ni]!;
      this.sNextFlags = nc.flags[ni]!;
      this.sFlags = flags;
    } else this.pFlags = flags;
    return true;
  }

  /**
   * streamReserve - addRange(@base, @size, @flags) of the block at or past
   * the end of H, the region the stream last merged into or stored (a
   * successor's 6.16-style stream, contiguous or isolated blocks), from
   * cached bounds: the pending state addAtHint() makes, with no region
   * read. @base and @size need no other check: @base is H's end or an
   * integer past it, and @size a positive integer that keeps the block
   * below the next region (and not touching it with equal flags).
   * Return: false when addRange() must run.
   */
  streamReserve(base: number, size: number, flags: number): boolean {
    if (!this.sOn || this.pending || !(size > 0) || Math.floor(size) !== size) return false;
    // Touching H with equal flags merges into it at once: the general path's case.
    if (base === this.sEnd ? flags === this.sFlags : !(base > this.sEnd && Math.floor(base) === base)) return false;
    const end = base + size;
    if (end > this.sNext || (end === this.sNext && this.sNextFlags === flags)) return false;
    this.cnt++;
    this.totalSize += size;
    this.pending = true;
    this.pGap = base !== this.sEnd;
    this.pBase = base;
    this.pSize = size;
    this.pFlags = flags;
    return true;
  }

  /**
   * streamMark - setClrFlag(@base, @size, true, @flag) of exactly the block
   * streamReserve() just held aside: a block touching H whose flags become
   * H's merges into it (setClrFlagPending()'s merge, from cached bounds); a
   * block past a gap is stored after H with its new flags (streamMarkGap).
   * Return: false when setClrFlag() must run.
   */
  streamMark(base: number, size: number, flag: number): boolean {
    if (!this.sOn || !this.pending || base !== this.pBase || size !== this.pSize) return false;
    const flags = this.pFlags | flag;
    const end = base + size;
    if (end === this.sNext && this.sNextFlags === flags) return false;
    if (this.pGap) return this.streamMarkGap(flags);
    if (flags !== this.sFlags) return false;
    // H grows by the block (hSize: the last queued block's column, or its chunk's).
    this.hSize[this.hIdx] = this.hSize[this.hIdx]! + size;
    this.cnt--;
    this.pending = false;
    this.sEnd = end;
    return true;
  }

  /*
   * streamMark() of a pending block past a gap: queued to be stored after H
   * with its final @flags (memblock_insert_region() then the flag change),
   * and it becomes H. Apart from streamMark so that the contiguous stream's
   * path stays small enough for V8 to inline into a format's block loop.
   */
  private streamMarkGap(flags: number): boolean {
    const base = this.pBase;
    const size = this.pSize;
    this.pending = false;
    this.pGap = false;
    if (this.qBase === undefined) {
      this.qBase = new Float64Array(this.queueMax);
      this.qSize = new Float64Array(this.queueMax);
      this.qFlags = new Int32Array(this.queueMax);
    }
    if (this.qn === this.queueMax) this.flushQueue();
    const q = this.qn++;
    this.qBase[q] = base;
    this.qSize![q] = size;
    this.qFlags![q] = flags;
    this.sOn = true;
    this.hSize = this.qSize!;
    this.hIdx = q;
    this.sEnd = base + size;
    this.sFlags = flags;
    return true;
  }

  /**
   * The O(1) case of addRange(): [base, base + size) starts at or past the
   * end of the last region, as a successor's ascending walk reserves. The
   * kernel then appends a region, which memblock_merge_regions() folds
   * into the last one when they touch with equal flags; do that directly.
   * Return: false when the general path must run (empty list, full chunk).
   */
  private addAtTail(base: number, size: number, flags: number): boolean {
    const lc = this.cs[this.cs.length - 1];
    if (lc === undefined) return false;
    const li = lc.len - 1;
    const lastEnd = lc.end(li);
    if (base < lastEnd) return false;
    if (base === lastEnd && lc.flags[li] === flags) {
      lc.size[li] = lc.size[li]! + size;
    } else if (lc.len >= this.chunkMax) {
      // The last chunk is full: the region starts a new last chunk.
      const piece = this.newChunk();
      piece.push(base, size, flags);
      this.spliceChunks(this.cs.length, 0, [piece]);
      this.cnt++;
      this.totalSize += size;
      this.hintC = this.cs.length - 1;
      this.hintI = 0;
      return true;
    } else {
      lc.push(base, size, flags);
      this.cnt++;
    }
    this.totalSize += size;
    this.hintC = this.cs.length - 1;
    this.hintI = lc.len - 1;
    return true;
  }

  /**
   * Replace [from, to) by @run merged together with the regions just
   * before and after it (memblock_merge_regions() on the touched span).
   */
  private mergeAndReplace(from: Pos, to: Pos, run: MemblockRegion[]): void {
    let start = from;
    const before = this.prev(from);
    if (before) {
      const b = this.at(before);
      const first = run[0];
      if (first && regionEnd(b) === first.base && b.flags === first.flags) {
        run.unshift(b);
        start = before;
      }
    }
    let stop = to;
    if (!this.isEnd(to)) {
      const a = this.at(to);
      const last = run[run.length - 1];
      if (last && regionEnd(last) === a.base && last.flags === a.flags) {
        run.push(a);
        stop = this.next(to);
      }
    }
    this.replace(start, stop, mergeRun(run));
  }

  /**
   * removeRange - memblock_remove_range(): drop [base, base + size).
   * Regions crossing a boundary are split (memblock_isolate_range()) and
   * the parts inside are removed.
   */
  removeRange(base: number, size: number): void {
    this.sOn = false;
    if (size === 0) return;
    const end = base + size;
    const from = this.firstEndingAbove(base);
    let to = from;
    let removed = 0;
    let first: MemblockRegion | undefined;
    let last: MemblockRegion | undefined;
    while (!this.isEnd(to)) {
      const r = this.at(to);
      if (r.base >= end) break;
      first ??= r;
      last = r;
      removed += Math.min(regionEnd(r), end) - Math.max(r.base, base);
      to = this.next(to);
    }
    if (!first || !last) return;
    const keep: MemblockRegion[] = [];
    if (first.base < base) keep.push({ base: first.base, size: base - first.base, flags: first.flags });
    if (regionEnd(last) > end) keep.push({ base: end, size: regionEnd(last) - end, flags: last.flags });
    this.totalSize -= removed;
    this.replace(from, to, keep);
  }

  /**
   * setClrFlag - memblock_setclr_flag(): set or clear @flag on
   * [base, base + size). Regions are isolated first, so only the part
   * inside the range changes; parts of the range that no region covers stay
   * uncovered. Touching regions with equal flags are merged afterwards.
   */
  setClrFlag(base: number, size: number, set: boolean, flag: number): void {
    this.sOn = false;
    if (size === 0) return;
    // The pending block's own path reads H: the queue is stored first (the pending block stays held).
    if (this.qn > 0) this.flushQueue();
    if (this.pending && this.setClrFlagPending(base, size, set, flag)) return;
    if (this.setClrFlagAtTail(base, size, set, flag)) return;
    if (this.setClrFlagAtHint(base, size, set, flag)) return;
    const end = base + size;
    const from = this.firstEndingAbove(base);
    let to = from;
    let changes = false;
    const run: MemblockRegion[] = [];
    while (!this.isEnd(to)) {
      const r = this.at(to);
      if (r.base >= end) break;
      const newFlags = set ? r.flags | flag : r.flags & ~flag;
      if (newFlags !== r.flags) changes = true;
      const rend = regionEnd(r);
      const lo = Math.max(r.base, base);
      const hi = Math.min(rend, end);
      if (r.base < lo) run.push({ base: r.base, size: lo - r.base, flags: r.flags });
      run.push({ base: lo, size: hi - lo, flags: newFlags });
      if (rend > hi) run.push({ base: hi, size: rend - hi, flags: r.flags });
      to = this.next(to);
    }
    // Splitting and merging back with unchanged flags is the identity.
    if (!changes) return;
    this.mergeAndReplace(from, to, run);
    this.setHint(this.firstEndingAbove(base));
  }

  /**
   * The O(1) case of setClrFlag() below the tail: the range is exactly the
   * hinted region (memblock_reserved_mark_noinit() right after the
   * memblock_reserve() of the same block). Only that region changes; it
   * merges with the region before and/or after it when they touch with
   * the new flags, as memblock_merge_regions() would.
   * Return: false when the general path must run (a merge across chunks).
   */
  private setClrFlagAtHint(base: number, size: number, set: boolean, flag: number): boolean {
    const c = this.hintC;
    if (c < 0 || c >= this.chunks.length) return false;
    const chunk = this.chunks[c]!;
    const i = this.hintI;
    if (i >= chunk.len || chunk.base[i] !== base || chunk.end(i) !== base + size) return false;
    const old = chunk.flags[i]!;
    const flags = set ? old | flag : old & ~flag;
    if (flags === old) return true;
    const prevTouches = i > 0 ? chunk.end(i - 1) === base && chunk.flags[i - 1] === flags : this.touchesPrevChunk(c, base, flags);
    let nextTouches = false;
    if (i + 1 < chunk.len) nextTouches = chunk.base[i + 1] === base + size && chunk.flags[i + 1] === flags;
    else {
      const nc = this.chunks[c + 1];
      if (nc !== undefined && nc.base[0] === base + size && nc.flags[0] === flags) return false;
    }
    if (prevTouches && i === 0) return false;
    chunk.flags[i] = flags;
    let at = i;
    if (prevTouches) {
      chunk.size[i - 1] = chunk.size[i - 1]! + chunk.size[i]!;
      chunk.remove(i);
      this.cnt--;
      at = i - 1;
    }
    if (nextTouches) {
      chunk.size[at] = chunk.size[at]! + chunk.size[at + 1]!;
      chunk.remove(at + 1);
      this.cnt--;
    }
    this.hintI = at;
    if (!prevTouches && !nextTouches) {
      // The region stands alone: a next block past a gap after it can take the stream (streamReserve).
      const nc = i + 1 < chunk.len ? chunk : this.cs[c + 1];
      if (nc !== undefined) {
        const ni = nc === chunk ? i + 1 : 0;
        this.sOn = true;
        this.hSize = chunk.size;
        this.hIdx = i;
        this.sEnd = base + size;
        this.sFlags = flags;
        this.sNext = nc.base[ni]!;
        this.sNextFlags = nc.flags[ni]!;
      }
      return true;
    }
    // Only a merge shrinks the chunk (a chunk just split off an ascending stream is small and stays so until it fills).
    if (chunk.len < this.chunkMin && this.chunks.length > 1) {
      this.fix(c);
      this.setHint(this.firstEndingAbove(base));
    }
    return true;
  }

  /** True when the last region of the chunk before @c ends at @base with @flags. */
  private touchesPrevChunk(c: number, base: number, flags: number): boolean {
    const pc = this.chunks[c - 1];
    return pc !== undefined && pc.end(pc.len - 1) === base && pc.flags[pc.len - 1] === flags;
  }

  /**
   * The O(1) case of setClrFlag(): the range starts at the last region and
   * covers it (memblock_reserved_mark_noinit() right after the
   * memblock_reserve() of the same block). Only that region changes, and
   * it can only merge with the one before it.
   * Return: false when the general path must run.
   */
  private setClrFlagAtTail(base: number, size: number, set: boolean, flag: number): boolean {
    const lc = this.chunks[this.chunks.length - 1];
    if (lc === undefined) return false;
    const li = lc.len - 1;
    if (base !== lc.base[li] || base + size < lc.end(li)) return false;
    const old = lc.flags[li]!;
    const flags = set ? old | flag : old & ~flag;
    if (flags === old) return true;
    const pc = li > 0 ? lc : this.chunks[this.chunks.length - 2];
    const pi = li > 0 ? li - 1 : pc ? pc.len - 1 : -1;
    if (pc === undefined || pc.end(pi) !== base || pc.flags[pi] !== flags) {
      lc.flags[li] = flags;
      return true;
    }
    // Merging empties the last chunk when the region is its only one.
    if (li === 0) return false;
    lc.size[li - 1] = lc.size[li - 1]! + lc.size[li]!;
    lc.len--;
    this.cnt--;
    return true;
  }

  /**
   * check - the invariants the kernel keeps plus the store's own: regions
   * sorted, non-empty, non-overlapping, fully merged, cnt and totalSize
   * consistent, no empty chunk. Throws an Error naming the first violation.
   */
  check(): void {
    let cnt = 0;
    let total = 0;
    let prevEnd = -1;
    let prevFlags = 0;
    for (const chunk of this.chunks) {
      if (chunk.len === 0) throw new Error(`${this.name}: empty chunk`);
    }
    for (const chunk of this.chunks) {
      for (let i = 0; i < chunk.len; i++) {
        const base = chunk.base[i]!;
        const size = chunk.size[i]!;
        const flags = chunk.flags[i]!;
        let what: string | undefined;
        if (!(size > 0)) what = "empty region";
        else if (base + size > PHYS_ADDR_MAX) what = "passes PHYS_ADDR_MAX";
        else if (cnt > 0 && prevEnd > base) what = "overlaps or is out of order";
        else if (cnt > 0 && prevEnd === base && prevFlags === flags) what = "not merged";
        if (what !== undefined) throw new Error(`${this.name}[${cnt}] [${hex(base)}, +${hex(size)}): ${what}`);
        cnt++;
        total += size;
        prevEnd = base + size;
        prevFlags = flags;
      }
    }
    if (cnt !== this.cnt) throw new Error(`${this.name}: cnt ${this.cnt} but ${cnt} regions`);
    if (total !== this.totalSize) throw new Error(`${this.name}: total_size ${this.totalSize} but ${total}`);
  }

  /** forEach - visit every region in order as numbers, without a copy per region. */
  forEach(visit: (base: number, size: number, flags: number) => void): void {
    for (const chunk of this.chunks) {
      const { base, size, flags } = chunk;
      for (let i = 0; i < chunk.len; i++) visit(base[i]!, size[i]!, flags[i]!);
    }
  }

  /** Walk copies of every region in order. */
  *[Symbol.iterator](): Generator<MemblockRegion> {
    for (const chunk of this.chunks) for (let i = 0; i < chunk.len; i++) yield chunk.get(i);
  }
}
