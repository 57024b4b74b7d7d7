/*
 * Where each field of a format's metadata sits in a handoff kernel-a wrote:
 * chunk headers and entries (ranges, posted, bitmaps), bitmap pointers and
 * bitmaps, radix tables, their entries and leaves. Read from the undamaged
 * handoff, which faults and the fuzzer then damage one field at a time.
 *
 * The input is trusted to be well formed (it is checked by the successor's
 * own walk first, khoFdt() in context.ts); every loop is still bounded by the
 * format's own limits, so a bad input cannot make this loop.
 */
import {
  KHOSER_BITMAPS_PER_CHUNK, KHOSER_BM_HDR_NEXT, KHOSER_BM_HDR_NUM_ELMS, KHOSER_BM_HDR_ORDER, KHOSER_BM_PTR_BITMAP, KHOSER_BM_PTR_PHYS_START,
  KHOSER_CHUNK_HDR_NEXT, KHOSER_CHUNK_HDR_NUM_RANGES, KHOSER_RANGES_PER_CHUNK, KHO_RADIX_LEAF_BITS, KHO_RADIX_ROOT_LEVEL, KHO_RADIX_TABLE_ENTRIES,
  PAGE_SIZE, PRESERVE_BITS_6_16, PRESERVE_BITS_PAGE, POSTED_RANGES_SIZE, khoserBitmapPtrOffset, khoserRangeOffset,
} from "@khosim/shared/abi";
import { ByteReader } from "@khosim/shared/lib";
import type { PhysMem } from "@khosim/shared/mm";

/** A chunk of the ranges and posted formats: its header and its range entries. */
export interface RangeChunkMap {
  phys: number;
  next: bigint;
  numRanges: number;
  /** phys of each entry's start field (size at +8, data at +16). */
  entries: number[];
}

/** A chunk of the bitmaps formats: header and bitmap pointers. */
export interface BitmapChunkMap {
  phys: number;
  next: bigint;
  order: number;
  numElms: number;
  /** Each pointer: where it is, its phys_start and the bitmap it points at. */
  ptrs: { at: number; physStart: bigint; bitmap: number }[];
}

/** A radix node: a table (level 1..5: entries in use) or a leaf (level 0: set bits). */
export interface RadixNodeMap {
  phys: number;
  level: number;
  /** Tables: the index and value of every non-zero entry. */
  entries: { index: number; value: number }[];
  /** Leaves: the set bits. */
  bits: number[];
}

export type FormatMap =
  | { kind: "ranges"; format: "ranges" | "posted"; chunks: RangeChunkMap[] }
  | { kind: "bitmaps"; format: "bitmaps" | "bitmaps-page"; bitmapBytes: number; chunks: BitmapChunkMap[]; bitmaps: number[] }
  | { kind: "radix"; format: "radix"; nodes: RadixNodeMap[] };

/* Chunks are never more than RAM pages; a bound for loops over pointers. */
function maxObjects(mem: PhysMem): number {
  return Math.ceil(mem.size / PAGE_SIZE);
}

/**
 * mapFormat - the metadata of format @format rooted at @root in @mem.
 * @mem: the handoff's RAM
 * @format: a registered format name
 * @root: the root pointer the KHO FDT carries
 *
 * Return: every object with its fields' locations, in walk order.
 */
export function mapFormat(mem: PhysMem, format: string, root: number): FormatMap {
  const limit = maxObjects(mem);
  switch (format) {
    case "ranges":
    case "posted": {
      const per = format === "ranges" ? KHOSER_RANGES_PER_CHUNK : POSTED_RANGES_SIZE;
      const chunks: RangeChunkMap[] = [];
      for (let p = root; p !== 0 && chunks.length < limit; ) {
        const h = new ByteReader(mem.read(p, 16));
        const next = h.u64le(KHOSER_CHUNK_HDR_NEXT);
        const numRanges = Math.min(Number(h.u64le(KHOSER_CHUNK_HDR_NUM_RANGES)), per);
        chunks.push({ phys: p, next, numRanges, entries: Array.from({ length: numRanges }, (_, i) => p + khoserRangeOffset(i)) });
        p = Number(next);
      }
      return { kind: "ranges", format, chunks };
    }
    case "bitmaps":
    case "bitmaps-page": {
      const bitmapBytes = (format === "bitmaps" ? PRESERVE_BITS_6_16 : PRESERVE_BITS_PAGE) / 8;
      const chunks: BitmapChunkMap[] = [];
      const bitmaps: number[] = [];
      for (let p = root; p !== 0 && chunks.length < limit; ) {
        const page = new ByteReader(mem.read(p, PAGE_SIZE));
        const next = page.u64le(KHOSER_BM_HDR_NEXT);
        const numElms = Math.min(page.u32le(KHOSER_BM_HDR_NUM_ELMS), KHOSER_BITMAPS_PER_CHUNK);
        const ptrs = Array.from({ length: numElms }, (_, i) => {
          const o = khoserBitmapPtrOffset(i);
          return { at: p + o, physStart: page.u64le(o + KHOSER_BM_PTR_PHYS_START), bitmap: Number(page.u64le(o + KHOSER_BM_PTR_BITMAP)) };
        });
        for (const q of ptrs) bitmaps.push(q.bitmap);
        chunks.push({ phys: p, next, order: page.u32le(KHOSER_BM_HDR_ORDER), numElms, ptrs });
        p = Number(next);
      }
      return { kind: "bitmaps", format, bitmapBytes, chunks, bitmaps };
    }
    case "radix": {
      const nodes: RadixNodeMap[] = [];
      const visit = (phys: number, level: number): void => {
        if (nodes.length >= limit) return;
        const page = new ByteReader(mem.read(phys, PAGE_SIZE));
        if (level === 0) {
          const bits: number[] = [];
          for (let w = 0; w < KHO_RADIX_LEAF_BITS / 32; w++) {
            const word = page.u32le(w * 4);
            if (word === 0) continue;
            for (let b = 0; b < 32; b++) if ((word >>> b) & 1) bits.push(w * 32 + b);
          }
          nodes.push({ phys, level, entries: [], bits });
          return;
        }
        const entries: { index: number; value: number }[] = [];
        for (let i = 0; i < KHO_RADIX_TABLE_ENTRIES; i++) {
          const v = page.u64le(i * 8);
          if (v !== 0n) entries.push({ index: i, value: Number(v) });
        }
        nodes.push({ phys, level, entries, bits: [] });
        for (const e of entries) visit(e.value, level - 1);
      };
      if (root !== 0) visit(root, KHO_RADIX_ROOT_LEVEL);
      return { kind: "radix", format: "radix", nodes };
    }
    default:
      throw new Error(`mapFormat: unknown format ${format}`);
  }
}
