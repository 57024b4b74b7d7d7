/*
 * kho_mem_serialize: record the preserved ranges for the successor.
 *
 * The seed's code, fixed: ranges go in ascending order into page-sized chunks
 * of KHOSER_RANGES_PER_CHUNK (170, not the mis-parenthesised 4096) entries,
 * a new chunk is started only when there is none yet or the current one is
 * full (the seed started one per range), and with nothing preserved no chunk
 * is allocated and the metadata is 0 (the seed handed over virt_to_phys(NULL)).
 *
 * Chunk pages are ordinary memory, not preserved: the successor walks them
 * while confined to scratch and then frees them. The posted geometry
 * (abi/ranges.ts) reproduces the posting's bugs: one 98,320-byte chunk per
 * range.
 */
import { KHOSER_CHUNK_HDR_NEXT, KHOSER_CHUNK_HDR_NUM_RANGES, KHOSER_CHUNK_HDR_SIZE, KHOSER_CHUNK_SIZE, KHOSER_MEM_RANGE_SIZE, KHOSER_GEOMETRY, KHOSER_MEM_RANGE_DATA, KHOSER_MEM_RANGE_SIZE_FIELD, KHOSER_MEM_RANGE_START, KHOSER_RANGES_PER_CHUNK, khoserRangeOffset, type KhoserGeometry } from "../abi/ranges.js";
import { PAGE_SIZE } from "../abi/page.js";
import { BTree } from "../lib/btree.js";
import { TWO32 } from "../lib/bits.js";
import { ByteReader, ByteWriter, HOST_LE, hex, u64Writer } from "../lib/bytes.js";
import { physStorePages, type PhysMem } from "../mm/physmem.js";
import type { KhoMemRange, KhoMemTrack } from "./track.js";

/* Chunk pages encoded before they are handed to memory at once: 64 (256 KiB). */
const SERIALIZE_STAGE_PAGES = 64;

/** Thrown when the chunk allocator hands out an unusable page. */
export class KhoSerializeError extends Error {
  constructor(
    readonly code: "EINVAL",
    readonly chunkIndex: number,
    message: string,
  ) {
    super(message);
    this.name = "KhoSerializeError";
  }
}

/** Result of {@link khoMemSerialize}. */
export interface KhoMemSerialized {
  /** Value of /preserved-memory/metadata: phys of the first chunk, 0 if none. */
  metadata: number;
  /** Phys of every chunk, in list order. */
  chunks: number[];
}

/** A chunk as stored, fields as raw u64s (nothing is validated). */
export interface KhoserMemChunk {
  next: bigint;
  numRanges: bigint;
  /** The first min(numRanges, KHOSER_RANGES_PER_CHUNK) entries. */
  ranges: { start: bigint; size: bigint; data: bigint }[];
}

/** khoserChunkCount - chunks needed for @nRanges ranges (0 for none). */
export function khoserChunkCount(nRanges: number): number {
  return Math.ceil(nRanges / KHOSER_RANGES_PER_CHUNK);
}

/**
 * encodeChunk - the bytes of one struct khoser_mem_chunk.
 * @next: phys of the next chunk, 0 for the last
 * @ranges: at most KHOSER_RANGES_PER_CHUNK entries
 *
 * Returns a fresh page; bytes past the last entry are zero.
 */
export function encodeChunk(next: number, ranges: readonly KhoMemRange[]): Uint8Array {
  if (ranges.length > KHOSER_RANGES_PER_CHUNK) {
    throw new RangeError(`a chunk holds at most ${KHOSER_RANGES_PER_CHUNK} ranges, not ${ranges.length}`);
  }
  const page = new Uint8Array(KHOSER_CHUNK_SIZE);
  const w = new ByteWriter(page);
  w.u64le(KHOSER_CHUNK_HDR_NEXT, next);
  w.u64le(KHOSER_CHUNK_HDR_NUM_RANGES, ranges.length);
  ranges.forEach((r, i) => {
    const off = khoserRangeOffset(i);
    w.u64le(off + KHOSER_MEM_RANGE_START, r.start);
    w.u64le(off + KHOSER_MEM_RANGE_SIZE_FIELD, r.size);
    w.u64le(off + KHOSER_MEM_RANGE_DATA, r.data);
  });
  return page;
}

/**
 * decodeChunk - parse one chunk page without judging it.
 *
 * For tests and dumps; the successor uses khoMemWalk(), which validates.
 * Reads at most KHOSER_RANGES_PER_CHUNK entries whatever num_ranges says.
 */
export function decodeChunk(bytes: Uint8Array): KhoserMemChunk {
  const r = new ByteReader(bytes);
  const next = r.u64le(KHOSER_CHUNK_HDR_NEXT);
  const numRanges = r.u64le(KHOSER_CHUNK_HDR_NUM_RANGES);
  const n = numRanges < BigInt(KHOSER_RANGES_PER_CHUNK) ? Number(numRanges) : KHOSER_RANGES_PER_CHUNK;
  const ranges: KhoserMemChunk["ranges"] = [];
  for (let i = 0; i < n; i++) {
    const off = khoserRangeOffset(i);
    ranges.push({
      start: r.u64le(off + KHOSER_MEM_RANGE_START),
      size: r.u64le(off + KHOSER_MEM_RANGE_SIZE_FIELD),
      data: r.u64le(off + KHOSER_MEM_RANGE_DATA),
    });
  }
  return { next, numRanges, ranges };
}

/*
 * encodeEntries - ranges [@from, @to) of the columns as khoser_mem_range
 * entries into @w32 from u32 @o on (little-endian host: u32 0-1 are start,
 * 2-3 size, 4-5 data, as KHOSER_MEM_RANGE_START/SIZE_FIELD/DATA = 0/8/16,
 * pinned by the serialize tests). The serializer's hot loop, in a function
 * of its own so that V8 optimizes it alone. The halves by multiply and
 * floor: `>>> 0` of an address past 2^31 takes V8's slow path.
 */
function encodeEntries(w32: Uint32Array, o: number, start: Float64Array, size: Float64Array, data: Uint16Array, from: number, to: number): void {
  for (let r = from; r < to; r++, o += KHOSER_MEM_RANGE_SIZE >>> 2) {
    const st = start[r]!;
    const sh = Math.floor(st * TWO32_INV);
    const sz = size[r]!;
    const zh = Math.floor(sz * TWO32_INV);
    w32[o] = st - sh * TWO32;
    w32[o + 1] = sh;
    w32[o + 2] = sz - zh * TWO32;
    w32[o + 3] = zh;
    w32[o + 4] = data[r]!;
    w32[o + 5] = 0;
  }
}

/*
 * encodeStage - chunks [@c0, @c0 + @cnt) of @chunks, whole, into pages 0 ..
 * @cnt - 1 of @w32: each chunk's header (next: the chunk after it, 0 for
 * the last of @chunks), then up to @fill entries from ranges @r0 on of the
 * columns (@left ranges remain), then zeros to the page's end. Every chunk
 * of a stage in one call, so that V8 optimizes the per-chunk work with the
 * entries instead of running it once per chunk unoptimized.
 */
function encodeStage(w32: Uint32Array, chunks: readonly number[], c0: number, cnt: number, fill: number, start: Float64Array, size: Float64Array, data: Uint16Array, r0: number, left: number): void {
  const PAGE_U32 = KHOSER_CHUNK_SIZE >>> 2;
  let r = r0;
  for (let j = 0; j < cnt; j++) {
    const c = c0 + j;
    const o = j * PAGE_U32;
    const next = c + 1 < chunks.length ? chunks[c + 1]! : 0;
    const nh = Math.floor(next * TWO32_INV);
    w32[o + (KHOSER_CHUNK_HDR_NEXT >>> 2)] = next - nh * TWO32;
    w32[o + (KHOSER_CHUNK_HDR_NEXT >>> 2) + 1] = nh;
    const n = Math.min(fill, left);
    w32[o + (KHOSER_CHUNK_HDR_NUM_RANGES >>> 2)] = n;
    w32[o + (KHOSER_CHUNK_HDR_NUM_RANGES >>> 2) + 1] = 0;
    const e0 = o + (KHOSER_CHUNK_HDR_SIZE >>> 2);
    encodeEntries(w32, e0, start, size, data, r, r + n);
    const end = e0 + n * (KHOSER_MEM_RANGE_SIZE >>> 2);
    if (end < o + PAGE_U32) w32.fill(0, end, o + PAGE_U32);
    r += n;
    left -= n;
  }
}

/* 2^-32, exact: a multiply by it splits off a u64's high half. */
const TWO32_INV = 1 / TWO32;

/**
 * kho_mem_serialize - write the preserved ranges as a chunk list into @mem.
 * @track: the ranges to record (read only)
 * @mem: memory the chunks are written to
 * @allocChunk: returns the phys of free memory for one chunk (@geo.allocPages
 *              pages); the caller guarantees it is neither scratch nor preserved
 * @geo: KHOSER_GEOMETRY (full one-page chunks) or POSTED_GEOMETRY (one
 *       98,320-byte chunk per range, in an order-5 block, as posted)
 * @allocChunks: optional; returns the addresses @allocChunk would return
 *               on @n calls, at once (BuddyAllocator.allocPages); each is
 *               checked all the same
 *
 * All chunks are allocated first and each chunk's first page is then written
 * once, whole, with its final next pointer, so the bytes depend only on the
 * ranges and on the addresses handed out. A posted chunk's other 31 pages are
 * left as they are: never-written memory reads as zero, as kzalloc leaves it.
 * Throws KhoSerializeError (EINVAL, chunk index) for an unusable allocation.
 *
 * Return: the metadata value (first chunk phys, 0 when nothing is preserved)
 * and the chunks in list order.
 */
export function khoMemSerialize(track: KhoMemTrack, mem: PhysMem, allocChunk: () => number, geo: KhoserGeometry = KHOSER_GEOMETRY, allocChunks?: (n: number) => number[]): KhoMemSerialized {
  const parts = track.rangeParts();
  const total = track.count;
  const nChunks = Math.ceil(total / geo.fill);
  const bytes = geo.allocPages * PAGE_SIZE;
  const fn = geo === KHOSER_GEOMETRY ? "kho_mem_serialize" : "kho_mem_serialize (posted)";
  const what = geo.allocPages === 1 ? "page" : "block";
  // Every chunk's address first, from @allocChunks in one call when given.
  const given = allocChunks?.(nChunks);
  if (given !== undefined && given.length !== nChunks) {
    throw new KhoSerializeError("EINVAL", Math.min(given.length, nChunks), `${fn}: asked for ${nChunks} chunk ${what}${nChunks === 1 ? "" : "s"} at once, the allocator returned ${given.length}`);
  }
  const chunks: number[] = [];
  /*
   * Overlap between chunks: [lo, hi) spans every chunk so far, so a chunk
   * outside it (an allocator handing out ascending or descending addresses)
   * needs no lookup; a set of chunk addresses (one-page chunks) or a B+
   * tree of chunk starts (larger ones) is built only when one falls inside.
   */
  let lo = Infinity;
  let hi = -Infinity;
  let taken: BTree<number, number> | undefined;
  // One-page chunks overlap only when equal: a set of their addresses does (a B+ tree step costs ~10x a set lookup).
  let takenPages: Set<number> | undefined;
  // [gapLo, gapHi): memory known to hold no preserved range.
  let gapLo = 0;
  let gapHi = 0;
  for (let i = 0; i < nChunks; i++) {
    const phys = given !== undefined ? given[i]! : allocChunk();
    const end = phys + bytes;
    // 0 ends the list, so no chunk can live there; an overlap would overwrite a chunk.
    if (!Number.isSafeInteger(phys) || phys <= 0 || phys % PAGE_SIZE !== 0 || !Number.isSafeInteger(end)) {
      throw new KhoSerializeError("EINVAL", i, `${fn}: chunk ${i}: allocator returned unusable ${what} ${hex(phys)}`);
    }
    if (end > lo && phys < hi) {
      let clash: boolean;
      if (bytes === PAGE_SIZE) {
        takenPages ??= new Set(chunks);
        clash = takenPages.has(phys);
      } else {
        if (taken === undefined) {
          taken = new BTree<number, number>();
          chunks.forEach((c, k) => taken!.set(c, k));
        }
        const lower = taken.getPairOrNextLower(phys);
        const higher = taken.nextHigherPair(phys);
        clash = (lower !== undefined && lower[0] + bytes > phys) || (higher !== undefined && higher[0] < end);
      }
      if (clash) throw new KhoSerializeError("EINVAL", i, `${fn}: chunk ${i}: allocator returned unusable ${what} ${hex(phys)}: it overlaps another chunk`);
    }
    // Inside the gap the last lookup found clear: no lookup (an allocator's consecutive pages ask once per gap).
    if (phys < gapLo || end > gapHi) {
      const clear = track.clearUntil(phys);
      if (clear < end) throw new KhoSerializeError("EINVAL", i, `${fn}: chunk ${i}: allocator returned ${what} [${hex(phys)}, ${hex(end)}) that overlaps preserved memory`);
      gapLo = phys;
      gapHi = clear;
    }
    taken?.set(phys, i);
    takenPages?.add(phys);
    if (phys < lo) lo = phys;
    if (end > hi) hi = end;
    chunks.push(phys);
  }

  /*
   * Each chunk's first page, encoded whole (the tail of a short chunk
   * zeroed) in place in a reused staging buffer of SERIALIZE_STAGE_PAGES
   * pages, handed to memory a full buffer at a time (physStorePages: with
   * SparseMem one pwrite into its page file, no fresh page touched per chunk).
   */
  const stagePages = Math.max(1, Math.min(SERIALIZE_STAGE_PAGES, nChunks));
  const stage = new Uint8Array(stagePages * KHOSER_CHUNK_SIZE);
  const stagePfns: number[] = [];
  const put = u64Writer(stage);
  // Ranges come from the parts in order: p is the current part, r the next entry in it.
  let p = 0;
  let part = parts[0]!;
  let r = 0;
  let done = 0;
  // Little-endian hosts store the halves straight into a u32 view of the page (encodeEntries).
  const w32 = HOST_LE ? new Uint32Array(stage.buffer, stage.byteOffset, stage.byteLength >>> 2) : undefined;
  for (let c = 0; c < nChunks; c++) {
    // A whole stage whose entries are all in the current part: encoded in one call, no per-chunk work out here.
    const cnt = Math.min(stagePages, nChunks - c);
    const want = Math.min(cnt * geo.fill, total - done);
    if (w32 !== undefined && stagePfns.length === 0 && part.count - r >= want) {
      encodeStage(w32, chunks, c, cnt, geo.fill, part.start, part.size, part.data, r, total - done);
      r += want;
      done += want;
      for (let j = 0; j < cnt; j++) stagePfns.push(chunks[c + j]! / PAGE_SIZE);
      physStorePages(mem, stagePfns, stage.subarray(0, cnt * KHOSER_CHUNK_SIZE));
      stagePfns.length = 0;
      c += cnt - 1;
      continue;
    }
    const n = Math.min(geo.fill, total - done);
    // This chunk's page is bytes [p0, p0 + KHOSER_CHUNK_SIZE) of the stage.
    const p0 = stagePfns.length * KHOSER_CHUNK_SIZE;
    put(p0 + KHOSER_CHUNK_HDR_NEXT, c + 1 < nChunks ? chunks[c + 1]! : 0);
    put(p0 + KHOSER_CHUNK_HDR_NUM_RANGES, n);
    let off = p0 + KHOSER_CHUNK_HDR_SIZE;
    for (let k = 0; k < n; ) {
      if (r === part.count) {
        part = parts[++p]!;
        r = 0;
      }
      // As many entries as this part still has for this chunk, in one tight loop.
      const m = Math.min(n - k, part.count - r);
      const { start, size, data } = part;
      if (w32 !== undefined) {
        encodeEntries(w32, off >>> 2, start, size, data, r, r + m);
        r += m;
      } else {
        for (let e = r + m, q = off; r < e; r++, q += KHOSER_MEM_RANGE_SIZE) {
          put(q + KHOSER_MEM_RANGE_START, start[r]!);
          put(q + KHOSER_MEM_RANGE_SIZE_FIELD, size[r]!);
          put(q + KHOSER_MEM_RANGE_DATA, data[r]!);
        }
      }
      off += m * KHOSER_MEM_RANGE_SIZE;
      k += m;
    }
    done += n;
    if (off < p0 + KHOSER_CHUNK_SIZE) stage.fill(0, off, p0 + KHOSER_CHUNK_SIZE);
    stagePfns.push(chunks[c]! / PAGE_SIZE);
    if (stagePfns.length === stagePages || c + 1 === nChunks) {
      physStorePages(mem, stagePfns, stage.subarray(0, stagePfns.length * KHOSER_CHUNK_SIZE));
      stagePfns.length = 0;
    }
  }

  return { metadata: chunks[0] ?? 0, chunks };
}
