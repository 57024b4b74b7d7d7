/*
 * DOC: the ranges chunk list (the April 2025 linux-mm posting, fixed) and
 * its "posted" geometry (the same posting, bugs included).
 *
 * Follows the posting "kho: preserve memory as ranges" (linux-mm, April 2025;
 * the seed's seed/kho-ranges-code.c): struct khoser_mem_chunk and
 * kho_mem_serialize(). Mainline never merged it (mainline is abi/bitmaps.ts).
 *
 *	/ { compatible = "kho-v1";
 *	    preserved-memory { metadata = <u64 LE phys of chunk 0, 0 if none>;
 *	                       khosim,posted-layout;	// posted only, empty
 *	    }; };
 *
 *	struct khoser_mem_chunk {
 *		struct khoser_mem_chunk_hdr hdr;	// @0, 16 bytes
 *		struct khoser_mem_range ranges[N];	// @16 + 24 i
 *	};
 *
 * ranges: N = 170, a chunk is one page, full chunks, ranges ascending.
 * posted: N = 4096 (KHOSER_RANGES_SIZE mis-parenthesised), a chunk is
 * 98,320 bytes from an order-5 kmalloc_large block, one chunk per range.
 * The entries are ascending and non-overlapping in both. Any change to this
 * layout needs a new compatible (or, here, a new marker property).
 */
import { PAGE_SIZE } from "./page.js";

/*
 * struct khoser_mem_chunk_hdr {
 *	KHOSER_PTR(struct khoser_mem_chunk *) next;	// @0  u64 phys, 0 ends the list
 *	unsigned long num_ranges;			// @8  u64
 * };							// 16 bytes
 */
export const KHOSER_CHUNK_HDR_SIZE = 16;
export const KHOSER_CHUNK_HDR_NEXT = 0;
export const KHOSER_CHUNK_HDR_NUM_RANGES = 8;

/*
 * struct khoser_mem_range {
 *	phys_addr_t start;	// @0  u64, page aligned
 *	phys_addr_t size;	// @8  u64, page aligned, non-zero
 *	unsigned long data;	// @16 u64, see KHO_DATA_* below
 * };			// 24 bytes
 */
export const KHOSER_MEM_RANGE_SIZE = 24;
export const KHOSER_MEM_RANGE_START = 0;
export const KHOSER_MEM_RANGE_SIZE_FIELD = 8;
export const KHOSER_MEM_RANGE_DATA = 16;

/**
 * KHOSER_RANGES_SIZE as the posting meant it: (PAGE_SIZE - sizeof(hdr)) /
 * sizeof(range) = (4096 - 16) / 24 = 170. A chunk is exactly one page.
 */
export const KHOSER_RANGES_PER_CHUNK = Math.floor(
  (PAGE_SIZE - KHOSER_CHUNK_HDR_SIZE) / KHOSER_MEM_RANGE_SIZE,
);
/** sizeof(struct khoser_mem_chunk): one page; 16 + 170 * 24 = 4096, no tail. */
export const KHOSER_CHUNK_SIZE = PAGE_SIZE;

/** Byte offset of ranges[i] inside a chunk. */
export function khoserRangeOffset(i: number): number {
  return KHOSER_CHUNK_HDR_SIZE + i * KHOSER_MEM_RANGE_SIZE;
}

/*
 * khoser_mem_range.data: the seed leaves its meaning to the user
 * (kho_range_desc_t). khosim encodes:
 *
 *	bits 0..7   folio order, meaningful only with KHO_DATA_FOLIO
 *	bit  8      KHO_DATA_FOLIO: the range is a run of folios, each of
 *	            (PAGE_SIZE << order) bytes, naturally aligned inside the range
 *	bits 9..63  zero
 *
 * kho_preserve_phys() ranges have data 0 (order bits without KHO_DATA_FOLIO
 * are invalid). Adjacent ranges coalesce only when
 * their data is equal, so a phys range never merges with a folio run and
 * order-0 folios never merge with order-1 folios.
 */
export const KHO_DATA_FOLIO = 0x100;
export const KHO_DATA_ORDER_MASK = 0xff;
export const KHO_DATA_PHYS = 0;
/** Every bit a valid data value may have set. */
export const KHO_DATA_VALID_MASK = KHO_DATA_FOLIO | KHO_DATA_ORDER_MASK;

/** data for a run of folios of @order (0..255). */
export function khoDataFolio(order: number): number {
  if (!Number.isInteger(order) || order < 0 || order > KHO_DATA_ORDER_MASK) throw new RangeError(`folio order ${order} does not fit khoser_mem_range.data`);
  return KHO_DATA_FOLIO | order;
}

/** True when @data marks a folio run. */
export function khoDataIsFolio(data: number): boolean {
  return (data & KHO_DATA_FOLIO) !== 0;
}

/** Folio order carried by @data (only meaningful when khoDataIsFolio()). */
export function khoDataOrder(data: number): number {
  return data & KHO_DATA_ORDER_MASK;
}

/** Property of /preserved-memory that marks the posted geometry (absent for ranges). */
export const KHO_POSTED_MARKER = "khosim,posted-layout";

/**
 * KHOSER_RANGES_SIZE as posted: PAGE_SIZE - sizeof(hdr) / sizeof(range)
 * = 4096 - (16 / 24) = 4096 - 0 = 4096 entries per chunk.
 */
export const POSTED_RANGES_SIZE = PAGE_SIZE - Math.floor(KHOSER_CHUNK_HDR_SIZE / KHOSER_MEM_RANGE_SIZE);
/** sizeof(struct khoser_mem_chunk) as posted: 16 + 4096 * 24 = 98,320 bytes. */
export const POSTED_CHUNK_SIZE = KHOSER_CHUNK_HDR_SIZE + POSTED_RANGES_SIZE * KHOSER_MEM_RANGE_SIZE;
/** get_order(98,320): kmalloc_large's page order for one chunk (5). */
export const POSTED_CHUNK_ORDER = Math.ceil(Math.log2(Math.ceil(POSTED_CHUNK_SIZE / PAGE_SIZE)));
/** Pages kmalloc_large really takes for one chunk: 1 << 5 = 32. */
export const POSTED_CHUNK_ALLOC_PAGES = 2 ** POSTED_CHUNK_ORDER;
/** Bytes kmalloc_large really takes for one chunk: 131,072. */
export const POSTED_CHUNK_ALLOC_BYTES = POSTED_CHUNK_ALLOC_PAGES * PAGE_SIZE;
/** Pages the 98,320-byte chunk object spans (what the successor reads and frees): 25. */
export const POSTED_CHUNK_SPAN_PAGES = Math.ceil(POSTED_CHUNK_SIZE / PAGE_SIZE);

/** The geometry of a chunk list: the fixed one or the posted one. */
export interface KhoserGeometry {
  /** Entries a chunk holds (bound of num_ranges). */
  rangesPerChunk: number;
  /** sizeof(struct khoser_mem_chunk): bytes the successor reads and frees. */
  chunkSize: number;
  /** Pages the predecessor allocates per chunk (1, or 32 for posted's order-5 block). */
  allocPages: number;
  /** Ranges per chunk the serializer writes (rangesPerChunk, or 1 as posted). */
  fill: number;
}

/** The fixed layout: one-page chunks, full. */
export const KHOSER_GEOMETRY: KhoserGeometry = { rangesPerChunk: KHOSER_RANGES_PER_CHUNK, chunkSize: KHOSER_CHUNK_SIZE, allocPages: 1, fill: KHOSER_RANGES_PER_CHUNK };
/** The posted layout: 98,320-byte chunks of 4096 entries, one range per chunk. */
export const POSTED_GEOMETRY: KhoserGeometry = { rangesPerChunk: POSTED_RANGES_SIZE, chunkSize: POSTED_CHUNK_SIZE, allocPages: POSTED_CHUNK_ALLOC_PAGES, fill: 1 };
