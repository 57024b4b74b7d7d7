/*
 * DOC: the ranges chunk list (the April 2025 linux-mm design, fixed).
 *
 * The KHO FDT's /preserved-memory/metadata points at the first chunk; each
 * chunk is one page holding a header and up to 170 {start, size, data}
 * entries, little-endian u64s, ascending and non-overlapping. Any change to
 * this layout needs a new compatible.
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
