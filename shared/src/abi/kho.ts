/*
 * khosim handoff ABI: the binary contract between kernel-a and kernel-b.
 *
 * Everything a successor reads from the handoff files is defined here and only
 * here: page size, byte order, struct layouts, FDT node and property names.
 * Any change to this file is a format break: a successor built from the old
 * file would misread what a predecessor built from the new one writes. Bump
 * KHO_FDT_COMPATIBLE (and say so in docs/handoff-format.md) when that happens.
 *
 * Layouts are those the kernel code would produce on x86-64: 4 KiB pages,
 * little-endian u64 fields, no padding.
 */

/** PAGE_SHIFT / PAGE_SIZE of the simulated machine (x86-64). */
export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;

/** Highest folio order the predecessor's buddy allocator hands out by default. */
export const MAX_PAGE_ORDER = 10;

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

/*
 * struct kho_scratch {
 *	phys_addr_t addr;	// @0 u64
 *	phys_addr_t size;	// @8 u64
 * };			// 16 bytes; /chosen/linux,kho-scratch points at an array of them
 */
export const KHO_SCRATCH_SIZE = 16;
export const KHO_SCRATCH_ADDR = 0;
export const KHO_SCRATCH_SIZE_FIELD = 8;

/* The KHO FDT (the one the predecessor hands over). */
export const KHO_FDT_COMPATIBLE = "kho-v1";
export const KHO_FDT_MEMORY_NODE = "preserved-memory";
export const KHO_FDT_MEMORY_PATH = "/preserved-memory";
/** Property of /preserved-memory: u64 little-endian phys of the first chunk, 0 if none. */
export const KHO_FDT_METADATA_PROP = "metadata";
/** Property of every sub-tree node (kho_add_subtree): u64 little-endian phys of its FDT. */
export const KHO_FDT_SUB_FDT_PROP = "fdt";
/** Size the predecessor reserves for the KHO FDT (one page, as kho_fdt_size would). */
export const KHO_FDT_MAX_SIZE = PAGE_SIZE;

/* The boot DTB (what the successor boots with, as on arm64). */
export const BOOT_ADDRESS_CELLS = 2;
export const BOOT_SIZE_CELLS = 2;
export const BOOT_CHOSEN_PATH = "/chosen";
/** /chosen property: <u64 addr, u64 size> big-endian cells, the KHO FDT in RAM. */
export const BOOT_KHO_FDT_PROP = "linux,kho-fdt";
/** /chosen property: <u64 addr, u64 size> big-endian cells, the kho_scratch array. */
export const BOOT_KHO_SCRATCH_PROP = "linux,kho-scratch";

/*
 * The test sub-tree, after lib/test_kho.c. The sub-FDT's root has
 * compatible = "kho-test-v1" and magic = <u32 native-endian 0x4b484f21>; its
 * node "data" has:
 *	nr_folios    u32 LE   entries in the folio table
 *	nr_ranges    u32 LE   entries in the range table
 *	folios_info  u64 LE   phys of the info blob (both tables, back to back)
 *	csum         u64 LE   xxhash64 (seed 0) of the whole info blob
 * The info blob (preserved with kho_preserve_phys) is:
 *	struct { u64 phys_order; u64 csum; } folios[nr_folios];  // phys | order, xxhash64 of the folio
 *	struct { u64 start; u64 size; u64 csum; } ranges[nr_ranges];
 * When the scenario did not fill its memory (bookkeeping-only runs at tens of
 * GiB), /data carries the empty property "unfilled" and every per-folio and
 * per-range csum is 0; the successor then checks orders and restores only.
 */
export const KHO_TEST_FDT = "kho_test";
export const KHO_TEST_COMPAT = "kho-test-v1";
export const KHO_TEST_MAGIC = 0x4b484f21;
export const KHO_TEST_DATA_NODE = "data";
export const KHO_TEST_FOLIO_ENTRY_SIZE = 16;
export const KHO_TEST_RANGE_ENTRY_SIZE = 24;
/** Present (empty) on /data when the predecessor did not fill its memory. */
export const KHO_TEST_UNFILLED_PROP = "unfilled";
