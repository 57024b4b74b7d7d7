/*
 * DOC: mainline KHO's preserved-memory map: a chunk list of bitmap pointers.
 *
 * Follows kernel/kexec_handover.c of torvalds/linux, kho_mem_serialize() and
 * kho_mem_deserialize(): commit 00c010e130e58301db2ea0cec1eadc931e1cb8cf
 * (6.16: PRESERVE_BITS = 512 * 8, bitmaps from kzalloc(512)) and commit
 * a4a508df2aa34f8650afde54ea804321c618f45f (late 2025: PRESERVE_BITS =
 * PAGE_SIZE * 8, bitmaps from get_zeroed_page(); same chunk and FDT). x86-64
 * bytes: 4 KiB pages, little-endian.
 *
 *	struct khoser_mem_chunk_hdr {
 *		KHOSER_PTR(struct khoser_mem_chunk *) next;	// @0  u64, 0 ends the list
 *		unsigned int order;				// @8  u32
 *		unsigned int num_elms;				// @12 u32, 0..255
 *	};
 *	struct khoser_mem_bitmap_ptr {
 *		phys_addr_t phys_start;	// @0 (index * PRESERVE_BITS) << (order + PAGE_SHIFT)
 *		DECLARE_KHOSER_PTR(bitmap, struct kho_mem_phys_bits *);	// @8 u64 phys
 *	};
 *	struct khoser_mem_chunk {				// one page
 *		struct khoser_mem_chunk_hdr hdr;
 *		struct khoser_mem_bitmap_ptr bitmaps[KHOSER_BITMAP_SIZE];	// 255
 *	};
 *
 * Bit n of a bitmap (bit n % 8 of byte n / 8) is the block of 2^order pages
 * at phys_start + (n << (order + PAGE_SHIFT)). The KHO FDT is kho-v1 with the
 * root property preserved-memory-map (abi/kho-fdt.ts); khosim's bitmaps-page
 * format adds the root u32 khosim,preserve-bits = 32768 (not in mainline,
 * which never tells the two sizes apart). Any change = a new compatible.
 */
import { PAGE_SIZE } from "./page.js";

/** khosim's root property marking one-page bitmaps: u32 LE PRESERVE_BITS (32768). Not in mainline. */
export const KHO_BITMAPS_PAGE_MARKER = "khosim,preserve-bits";
/** PRESERVE_BITS in 6.16: 512-byte bitmaps. */
export const PRESERVE_BITS_6_16 = 512 * 8;
/** PRESERVE_BITS from late 2025: one-page bitmaps. */
export const PRESERVE_BITS_PAGE = PAGE_SIZE * 8;

export const KHOSER_BM_HDR_SIZE = 16;
export const KHOSER_BM_HDR_NEXT = 0;
export const KHOSER_BM_HDR_ORDER = 8;
export const KHOSER_BM_HDR_NUM_ELMS = 12;
export const KHOSER_BM_PTR_SIZE = 16;
export const KHOSER_BM_PTR_PHYS_START = 0;
export const KHOSER_BM_PTR_BITMAP = 8;
/** KHOSER_BITMAP_SIZE: (4096 - 16) / 16 = 255 entries per chunk. */
export const KHOSER_BITMAPS_PER_CHUNK = Math.floor((PAGE_SIZE - KHOSER_BM_HDR_SIZE) / KHOSER_BM_PTR_SIZE);
/** A chunk is exactly one page. */
export const KHOSER_BM_CHUNK_SIZE = PAGE_SIZE;

/** Byte offset of bitmaps[i] inside a chunk. */
export function khoserBitmapPtrOffset(i: number): number {
  return KHOSER_BM_HDR_SIZE + i * KHOSER_BM_PTR_SIZE;
}
