/*
 * The "bitmaps" formats: mainline Linux's KHO memory preservation, byte for
 * byte as an x86-64 kernel lays it out (abi/bitmaps.ts: the chunk list of
 * bitmap pointers, kernel/kexec_handover.c kho_mem_serialize() and
 * kho_mem_deserialize() at 00c010e130e58301db2ea0cec1eadc931e1cb8cf for
 * "bitmaps" (6.16, 512-byte bitmaps) and a4a508df2aa34f8650afde54ea804321c618f45f
 * for "bitmaps-page" (one-page bitmaps, FDT marker khosim,preserve-bits)).
 *
 * Chunks follow xa_for_each over the orders (ascending), then the bitmaps
 * (ascending index); each order starts a new chunk and a full chunk (255
 * entries) continues in a new one. The bitmaps are not copied: the chunk
 * entries point at the tracker's own bitmaps. Nothing of it is preserved:
 * chunks and bitmaps become free memory once the successor has walked them.
 */
import { PAGE_SHIFT, PAGE_SIZE } from "../../../abi/page.js";
import {
  KHOSER_BITMAPS_PER_CHUNK, KHOSER_BM_CHUNK_SIZE, KHOSER_BM_HDR_NEXT, KHOSER_BM_HDR_NUM_ELMS, KHOSER_BM_HDR_ORDER,
  KHOSER_BM_PTR_BITMAP, KHOSER_BM_PTR_PHYS_START, KHO_BITMAPS_PAGE_MARKER, PRESERVE_BITS_6_16, PRESERVE_BITS_PAGE, khoserBitmapPtrOffset,
} from "../../../abi/bitmaps.js";
import { KHO_FDT_COMPATIBLE, KHO_FDT_MEMORY_MAP_PROP, KHO_FDT_SUB_FDT_PROP } from "../../../abi/kho-fdt.js";
import { khoDataFolio } from "../../../abi/ranges.js";
import { u64Safe } from "../../../lib/bits.js";
import { ByteReader, ByteWriter, hex, u32leBytes } from "../../../lib/bytes.js";
import type { PhysMem } from "../../../mm/physmem.js";
import type { KhoFdtLayout } from "../../fdt.js";
import { KhoSerializeError } from "../../serialize.js";
import type { KhoMemRange } from "../../track.js";
import { KHO_WALK_MAX_ORDER, KhoMetaReader, KhoMetaWalk, KhoWalkError, type KhoWalkContext, type KhoWalkErrorCode, type KhoWalkWhere } from "../../walk.js";
import { defineKhoFormat, ownTracker, type AllocPage, type KhoFormat, type KhoFormatName, type KhoFormatWalk, type KhoSerialized } from "../types.js";
import { KhoBitmapTrack, POW2, forEachRun, popcount } from "./track.js";

export { KhoBitmapTrack, type KhoBitmapEntry } from "./track.js";

/**
 * kho_mem_serialize - write the chunk list for @track into @mem.
 *
 * Allocation, in this order (deterministic for a deterministic allocator):
 *  1. the bitmaps, in walk order. In the kernel they were allocated at
 *     preserve time and stay where they are; khosim gives them their place
 *     now. 6.16: kzalloc(512) comes from the kmalloc-512 slab, objects
 *     512-aligned, several per slab page; khosim packs 8 bitmaps into each
 *     page from @allocPage (an order-0 slab; a real slab may span 2-8
 *     pages, which changes no byte of the format). One-page bitmaps
 *     (get_zeroed_page) take one page each.
 *  2. the chunks, one page each from @allocPage, in list order (new_chunk).
 *
 * metadataPages: chunk pages and bitmap pages in walk order (each chunk, then
 * the bitmap pages its entries reach first), each page once.
 * metadataBytes: the exact allocations: 4096 per chunk + PRESERVE_BITS / 8
 * per bitmap (512 in 6.16, 4096 for one-page bitmaps). A page shared by
 * several 512-byte bitmaps counts 512 per bitmap, not 4096; the unused slots
 * of the last bitmap page are not counted (they belong to the slab).
 */
export function khoBitmapsSerialize(track: KhoBitmapTrack, mem: PhysMem, allocPage: AllocPage): KhoSerialized {
  const list = track.bitmapsInWalkOrder();
  if (list.length === 0) return { root: 0, metadataPages: [], metadataBytes: 0 };
  const bmBytes = track.preserveBits / 8;
  const perPage = Math.max(1, Math.floor(PAGE_SIZE / bmBytes));
  const seenAlloc = new Set<number>();
  const alloc = (what: string, i: number): number => {
    const phys = allocPage();
    // 0 ends the list, so no chunk can live there; a repeat would overwrite metadata.
    if (!Number.isSafeInteger(phys) || phys <= 0 || phys % PAGE_SIZE !== 0 || seenAlloc.has(phys)) {
      throw new KhoSerializeError("EINVAL", i, `kho_mem_serialize: ${what}: allocator returned unusable page ${hex(phys)}`);
    }
    if (track.intersects(phys, PAGE_SIZE)) {
      throw new KhoSerializeError("EINVAL", i, `kho_mem_serialize: ${what}: allocator returned preserved page ${hex(phys)}`);
    }
    seenAlloc.add(phys);
    return phys;
  };

  // 1. The bitmaps, packed perPage to a page.
  const bmPhys: number[] = new Array<number>(list.length);
  let page = 0;
  let buf: Uint8Array | undefined;
  list.forEach((e, i) => {
    const slot = i % perPage;
    if (slot === 0) {
      if (buf !== undefined) mem.write(page, buf);
      page = alloc(`bitmap page ${i / perPage}`, i / perPage);
      buf = new Uint8Array(PAGE_SIZE);
    }
    buf!.set(e.bits, slot * bmBytes);
    bmPhys[i] = page + slot * bmBytes;
  });
  mem.write(page, buf!);

  // 2. The chunks: a new one per order and whenever one is full.
  const chunkFirst: number[] = [];
  list.forEach((e, i) => {
    const f = chunkFirst[chunkFirst.length - 1];
    if (f === undefined || list[f]!.order !== e.order || i - f === KHOSER_BITMAPS_PER_CHUNK) chunkFirst.push(i);
  });
  const chunkPhys = chunkFirst.map((_, c) => alloc(`chunk ${c}`, c));

  const metadataPages: number[] = [];
  const seen = new Set<number>();
  chunkFirst.forEach((first, c) => {
    const end = chunkFirst[c + 1] ?? list.length;
    const b = new Uint8Array(KHOSER_BM_CHUNK_SIZE);
    const w = new ByteWriter(b);
    w.u64le(KHOSER_BM_HDR_NEXT, chunkPhys[c + 1] ?? 0);
    w.u32le(KHOSER_BM_HDR_ORDER, list[first]!.order);
    w.u32le(KHOSER_BM_HDR_NUM_ELMS, end - first);
    metadataPages.push(chunkPhys[c]!);
    for (let i = first; i < end; i++) {
      const e = list[i]!;
      const off = khoserBitmapPtrOffset(i - first);
      w.u64le(off + KHOSER_BM_PTR_PHYS_START, e.index * track.preserveBits * POW2[e.order]! * PAGE_SIZE);
      w.u64le(off + KHOSER_BM_PTR_BITMAP, bmPhys[i]!);
      const pg = bmPhys[i]! - (bmPhys[i]! % PAGE_SIZE);
      if (!seen.has(pg)) {
        seen.add(pg);
        metadataPages.push(pg);
      }
    }
    mem.write(chunkPhys[c]!, b);
  });

  return { root: chunkPhys[0]!, metadataPages, metadataBytes: chunkPhys.length * KHOSER_BM_CHUNK_SIZE + list.length * bmBytes };
}

/**
 * khoBitmapsWalk - walk and validate the chunk list and bitmaps at @root.
 * @preserveBits: PRESERVE_BITS of the format (the bitmap size is an eighth of it)
 *
 * Every chunk and bitmap is claimed through the shared walk before it is
 * read; the first problem throws a KhoWalkError naming the chunk (index,
 * phys, order), the entry, the field and its byte offset, or the bit. Memory
 * used is proportional to the chunks, entries and runs of set bits, never to
 * the blocks.
 */
export function khoBitmapsWalk(mem: PhysMem, root: bigint, ctx: KhoWalkContext, preserveBits: number): KhoFormatWalk {
  const B = preserveBits;
  const bmBytes = B / 8;
  const mw = new KhoMetaWalk(ctx);
  const { ramBase, ramEnd } = mw;
  const chunks: number[] = [];
  const metadataPages: number[] = [];
  const seenPage = new Set<number>();
  /* Entries, for forEachBlock and for locating overlaps. */
  const eOrder: number[] = [];
  const eStart: number[] = [];
  const eBitmap: number[] = [];
  const eChunk: number[] = [];
  const eIndex: number[] = [];
  /* Each entry's bitmap as read (views of the reader's windows: read once, kept for forEachBlock). */
  const eBits: Uint8Array[] = [];
  const rd = new KhoMetaReader(mem, ramBase, ramEnd);
  /* Runs of set bits per order: start, end (bytes) and the entry the run starts in. */
  const runs: { s: number[]; e: number[]; ent: number[]; sorted: boolean }[] = [];
  /* The same runs in metadata order (forEachBlock's order), merged while consecutive with equal block size. */
  const vStart: number[] = [];
  const vEnd: number[] = [];
  const vOrder: number[] = [];
  let blockCount = 0;

  let ptr = root;
  let holder: KhoWalkWhere = { field: KHO_FDT_MEMORY_MAP_PROP };
  let holderName = KHO_FDT_MEMORY_MAP_PROP;
  while (ptr !== 0n) {
    const ci = chunks.length;
    const phys = mw.claim(ptr, { kind: "chunk", size: KHOSER_BM_CHUNK_SIZE, label: `chunk ${ci}`, holder, holderName });
    chunks.push(phys);
    metadataPages.push(phys);
    seenPage.add(phys);

    const r = new ByteReader(rd.read(phys, KHOSER_BM_CHUNK_SIZE));
    const hdrAt = (field: string, offset: number, order?: number): KhoWalkWhere & { field: string; offset: number } =>
      order === undefined ? { object: "chunk", index: ci, phys, field, offset } : { object: "chunk", index: ci, phys, order, field, offset };
    const order = mw.bound(r.u32le(KHOSER_BM_HDR_ORDER), KHO_WALK_MAX_ORDER, "CHUNK_ORDER", hdrAt("order", KHOSER_BM_HDR_ORDER), `chunk ${ci} at ${hex(phys)}`, "above");
    const where = `chunk ${ci} (order ${order}) at ${hex(phys)}`;
    const num = mw.bound(r.u32le(KHOSER_BM_HDR_NUM_ELMS), KHOSER_BITMAPS_PER_CHUNK, "NUM_ELMS", hdrAt("num_elms", KHOSER_BM_HDR_NUM_ELMS, order), where);
    const bsize = PAGE_SIZE * POW2[order]!;
    const span = B * bsize;
    const ord = (runs[order] ??= { s: [], e: [], ent: [], sorted: true });

    for (let i = 0; i < num; i++) {
      const base = khoserBitmapPtrOffset(i);
      const at = (field: "phys_start" | "bitmap"): KhoWalkWhere & { field: string; offset: number } => ({
        object: "chunk", index: ci, phys, order, entry: i, field, offset: base + (field === "bitmap" ? KHOSER_BM_PTR_BITMAP : KHOSER_BM_PTR_PHYS_START),
      });
      const fail = (code: KhoWalkErrorCode, field: "phys_start" | "bitmap", why: string): KhoWalkError =>
        new KhoWalkError(code, at(field), `${where}: bitmaps[${i}].${field} at +${hex(at(field).offset)} is ${hex(r.u64le(at(field).offset))}: ${why}`);
      const start = u64Safe(r.u32le(base + KHOSER_BM_PTR_PHYS_START), r.u32le(base + KHOSER_BM_PTR_PHYS_START + 4));
      if (start === undefined) throw fail("START_OUTSIDE_RAM", "phys_start", `outside RAM [${hex(ramBase)}, ${hex(ramEnd)})`);
      // A multiple of 2^53 or more below 2^53 can only be 0; % is exact for these doubles.
      if (start % span !== 0) {
        throw fail("START_UNALIGNED", "phys_start", `not aligned to PRESERVE_BITS << (order + PAGE_SHIFT) = ${hex(BigInt(B) << BigInt(order + PAGE_SHIFT))}`);
      }
      if (start >= ramEnd) throw fail("START_OUTSIDE_RAM", "phys_start", `at or past RAM end ${hex(ramEnd)}`);

      const bm = mw.claim(r.u64le(at("bitmap").offset), {
        kind: "bitmap", size: bmBytes, align: bmBytes, label: "bitmap", ref: `the bitmap of chunk ${ci} bitmaps[${i}]`,
        holder: at("bitmap"), holderName: `${where}: bitmaps[${i}].bitmap at +${hex(at("bitmap").offset)}`,
        onSeen: (prev) => ["BITMAP_REUSED", `already ${prev.ref ?? prev.label}`],
      });
      const bmPage = bm - (bm % PAGE_SIZE);
      if (!seenPage.has(bmPage)) {
        seenPage.add(bmPage);
        metadataPages.push(bmPage);
      }

      const bits = rd.read(bm, bmBytes);
      const ent = eOrder.length;
      eBits.push(bits);
      eOrder.push(order);
      eStart.push(start);
      eBitmap.push(bm);
      eChunk.push(ci);
      eIndex.push(i);
      blockCount += popcount(bits);

      const bitFail = (code: KhoWalkErrorCode, k: number, why: string): KhoWalkError => {
        const a = BigInt(start) + (BigInt(k) << BigInt(order + PAGE_SHIFT));
        return new KhoWalkError(
          code,
          { object: "chunk", index: ci, phys, order, entry: i, field: "bit", offset: k >>> 3, bit: k },
          `${where}: bitmaps[${i}] (bitmap ${hex(bm)}) bit ${k} at byte +${hex(k >>> 3)}: block [${hex(a)}, ${hex(a + BigInt(bsize))}) ${why}`,
        );
      };
      forEachRun(bits, B, (b0, b1) => {
        // Doubles may round past 2^53, but only upwards of RAM's end: the comparisons stay right.
        const rs = start + b0 * bsize;
        const re = start + b1 * bsize;
        const f = mw.blockFault(rs, re);
        if (f === "OUTSIDE_RAM") {
          if (rs < ramBase) throw bitFail("BLOCK_OUTSIDE_RAM", b0, `starts below RAM base ${hex(ramBase)}`);
          throw bitFail("BLOCK_OUTSIDE_RAM", Math.max(b0, Math.floor((ramEnd - start) / bsize)), `is not inside RAM [${hex(ramBase)}, ${hex(ramEnd)})`);
        }
        if (f !== undefined) throw bitFail("BLOCK_IN_SCRATCH", Math.max(b0, Math.floor((f.addr - start) / bsize)), `overlaps scratch [${hex(f.addr)}, ${hex(f.addr + f.size)})`);
        const v = vStart.length;
        if (v > 0 && vEnd[v - 1] === rs && vOrder[v - 1] === order) {
          vEnd[v - 1] = re;
        } else {
          vStart.push(rs);
          vEnd.push(re);
          vOrder.push(order);
        }
        const n = ord.s.length;
        if (n > 0 && ord.e[n - 1] === rs) {
          ord.e[n - 1] = re;
        } else {
          if (n > 0 && rs < ord.s[n - 1]!) ord.sorted = false;
          ord.s.push(rs);
          ord.e.push(re);
          ord.ent.push(ent);
        }
      });
    }

    ptr = r.u64le(KHOSER_BM_HDR_NEXT);
    holder = hdrAt("next", KHOSER_BM_HDR_NEXT, order);
    holderName = `${where}: next at +${hex(KHOSER_BM_HDR_NEXT)}`;
  }

  /* The entry of @order whose set bit covers byte @addr, and that bit. */
  const locate = (order: number, addr: number, not = -1): { ent: number; bit: number } | undefined => {
    const bsize = PAGE_SIZE * POW2[order]!;
    for (let ent = 0; ent < eOrder.length; ent++) {
      if (ent === not || eOrder[ent] !== order || addr < eStart[ent]! || addr >= eStart[ent]! + B * bsize) continue;
      const k = Math.floor((addr - eStart[ent]!) / bsize);
      const bits = eBits[ent]!;
      if (bits[k >>> 3]! & (1 << (k & 7))) return { ent, bit: k };
    }
    return undefined;
  };
  const describe = (ent: number, bit: number): string => {
    const o = eOrder[ent]!;
    const a = BigInt(eStart[ent]!) + (BigInt(bit) << BigInt(o + PAGE_SHIFT));
    return `chunk ${eChunk[ent]} (order ${o}) bitmaps[${eIndex[ent]}] bit ${bit}: block [${hex(a)}, ${hex(a + (1n << BigInt(o + PAGE_SHIFT)))})`;
  };

  // Merge the per-order runs by start (orders are few), checking overlap as we go.
  const heads: { o: number; order: number[]; k: number }[] = [];
  runs.forEach((ord, o) => {
    if (ord === undefined || ord.s.length === 0) return;
    const idx = Array.from({ length: ord.s.length }, (_, k) => k);
    if (!ord.sorted) idx.sort((a, b) => ord.s[a]! - ord.s[b]!);
    heads.push({ o, order: idx, k: 0 });
  });
  const ranges: KhoMemRange[] = [];
  let prevEnd = -1;
  let prevOrder = -1;
  for (;;) {
    let best: (typeof heads)[number] | undefined;
    let bestStart = Infinity;
    for (const h of heads) {
      if (h.k >= h.order.length) continue;
      const s = runs[h.o]!.s[h.order[h.k]!]!;
      if (s < bestStart) {
        bestStart = s;
        best = h;
      }
    }
    if (best === undefined) break;
    const ord = runs[best.o]!;
    const j = best.order[best.k++]!;
    const s = ord.s[j]!;
    const e = ord.e[j]!;
    if (s < prevEnd) {
      // Blame the run that starts inside the other; locate both blocks covering s.
      // The run starts at a set bit of the entry it was first read from.
      const ent = ord.ent[j]!;
      const mine = { ent, bit: Math.floor((s - eStart[ent]!) / (PAGE_SIZE * POW2[best.o]!)) };
      const other = locate(prevOrder, s, prevOrder === best.o ? mine.ent : -1);
      const o = eOrder[mine.ent]!;
      const offB = mine.bit >>> 3;
      throw new KhoWalkError(
        "BLOCK_OVERLAP",
        { object: "chunk", index: eChunk[mine.ent]!, phys: chunks[eChunk[mine.ent]!]!, order: o, entry: eIndex[mine.ent]!, field: "bit", offset: offB, bit: mine.bit },
        `${describe(mine.ent, mine.bit)} (bitmap ${hex(eBitmap[mine.ent]!)} byte +${hex(offB)}) overlaps ` +
          (other ? describe(other.ent, other.bit) : `preserved order-${prevOrder} memory ending at ${hex(prevEnd)}`),
      );
    }
    const data = khoDataFolio(best.o);
    const last = ranges[ranges.length - 1];
    if (last !== undefined && last.data === data && last.start + last.size === s) last.size = e - last.start;
    else ranges.push({ start: s, size: e - s, data });
    prevEnd = e;
    prevOrder = best.o;
  }

  // Metadata is free memory once walked: none of it may lie in preserved memory.
  mw.checkNotPreserved(ranges, (o, hit) => {
    const what = `preserved run [${hex(hit.start)}, ${hex(hit.start + hit.size)}) of order ${hit.data & 0xff}`;
    if (o.kind === "chunk") return { where: { object: "chunk", index: chunks.indexOf(o.phys), phys: o.phys }, message: `${o.label} at ${hex(o.phys)}: page lies inside ${what}` };
    const pg = o.phys - (o.phys % PAGE_SIZE);
    return { message: `${o.holderName} is ${hex(o.phys)}: its page ${hex(pg)} lies inside ${what}` };
  });

  return {
    metadataPages,
    ranges,
    blockCount,
    forEachBlock(visit) {
      // One tight loop per run of set bits: the blocks, in the walk's (bit) order.
      for (let r = 0; r < vStart.length; r++) {
        const bsize = PAGE_SIZE * POW2[vOrder[r]!]!;
        const data = khoDataFolio(vOrder[r]!);
        const end = vEnd[r]!;
        for (let a = vStart[r]!; a < end; a += bsize) visit(a, bsize, data);
      }
    },
  };
}

function makeBitmapsFormat(name: KhoFormatName, bits: number, marker: boolean): KhoFormat {
  const fdtLayout: KhoFdtLayout = {
    compatible: KHO_FDT_COMPATIBLE,
    mapNode: "",
    mapProps: marker ? [{ name: KHO_FDT_MEMORY_MAP_PROP }, { name: KHO_BITMAPS_PAGE_MARKER, value: u32leBytes(bits), note: "one-page bitmaps" }] : [{ name: KHO_FDT_MEMORY_MAP_PROP }],
    absent: marker ? [] : [KHO_BITMAPS_PAGE_MARKER],
    subtreeProp: KHO_FDT_SUB_FDT_PROP,
  };
  return defineKhoFormat({
    name,
    fdtLayout,
    createTracker: () => new KhoBitmapTrack(bits),
    serialize: (track, mem, allocPage) => khoBitmapsSerialize(ownTracker(track, KhoBitmapTrack, name, (t) => t.preserveBits === bits), mem, allocPage),
    walk: (mem, root, ctx) => khoBitmapsWalk(mem, root, ctx, bits),
  });
}

/** Linux 6.16: 512-byte bitmaps (PRESERVE_BITS 4096), mainline FDT exactly. */
export const bitmapsFormat: KhoFormat = makeBitmapsFormat("bitmaps", PRESERVE_BITS_6_16, false);

/** Late-2025 mainline: one-page bitmaps (PRESERVE_BITS 32768); FDT adds khosim,preserve-bits. */
export const bitmapsPageFormat: KhoFormat = makeBitmapsFormat("bitmaps-page", PRESERVE_BITS_PAGE, true);
