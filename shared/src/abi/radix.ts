/*
 * DOC: KHO's "kho-v2" preserved-memory map, one radix tree of page-sized nodes.
 *
 * Follows include/linux/kho/abi/kexec_handover.h ("DOC: KHO persistent
 * memory tracker", enum kho_radix_consts, struct kho_radix_node and
 * kho_radix_leaf) and kernel/liveupdate/kho_radix.c (kho_radix_encode_key,
 * kho_radix_decode_key, __kho_radix_walk_tree) as of "kho: adopt radix tree
 * for preserved memory tracking" (linux-mm, 2026) and torvalds/linux commit
 * d64b0372760e09de6d18a0616d7bc652c8c6891d ("kho: fix KHO_TREE_MAX_DEPTH for
 * non-4KB page sizes": depth unchanged for 4 KiB pages).
 *
 * Key of a block of 2^order pages at phys:
 *	key = (1 << (KHO_ORDER_0_LOG2 - order)) | (phys >> (PAGE_SHIFT + order))
 * KHO_ORDER_0_LOG2 = 52; keys are at most 53 bits (exact JS numbers).
 *
 *	struct kho_radix_node { u64 table[512]; };	// levels 5 (root) .. 1, 0 = empty
 *	struct kho_radix_leaf { DECLARE_BITMAP(bitmap, 32768); };	// level 0
 *
 * Level L's index is (key >> ((L - 1) * 9 + 15)) & 511; a leaf's bit is
 * key & 32767 (bit n in byte n / 8, bit n % 8). Root entries at index 4 or
 * above would set key bits above 52. The KHO FDT: compatible "kho-v2", root
 * preserved-memory-map = phys of the root table (abi/kho-fdt.ts), sub-tree
 * nodes carry preserved-data. Any change = a new compatible.
 */
import { PAGE_SHIFT, PAGE_SIZE } from "./page.js";
import { ilog2 } from "../lib/bits.js";

/** Root compatible of the radix KHO FDT. */
export const KHO_RADIX_COMPATIBLE = "kho-v2";
/** Sub-tree node property in kho-v2: u64 LE phys of the sub-tree's blob. */
export const KHO_RADIX_SUB_TREE_PROP = "preserved-data";
/** Bit position of the order bit of an order-0 key: 64 - PAGE_SHIFT. */
export const KHO_ORDER_0_LOG2 = 64 - PAGE_SHIFT;
/** log2 of the entries of a table node (512 u64s per page). */
export const KHO_TABLE_SIZE_LOG2 = Math.log2(PAGE_SIZE / 8);
/** log2 of the bits of a leaf bitmap (32,768 per page). */
export const KHO_BITMAP_SIZE_LOG2 = PAGE_SHIFT + 3;
/** Levels: 5 tables and one bitmap level. */
export const KHO_TREE_MAX_DEPTH = Math.ceil((KHO_ORDER_0_LOG2 - KHO_BITMAP_SIZE_LOG2) / KHO_TABLE_SIZE_LOG2) + 1;
/** Level of the root table. */
export const KHO_RADIX_ROOT_LEVEL = KHO_TREE_MAX_DEPTH - 1;
/** Entries of a table node. */
export const KHO_RADIX_TABLE_ENTRIES = 2 ** KHO_TABLE_SIZE_LOG2;
/** Bits of a leaf. */
export const KHO_RADIX_LEAF_BITS = 2 ** KHO_BITMAP_SIZE_LOG2;
/** Root entries at this index or above would set key bits above the order-0 bit. */
export const KHO_RADIX_ROOT_MAX_INDEX = 2 ** (KHO_ORDER_0_LOG2 + 1 - ((KHO_RADIX_ROOT_LEVEL - 1) * KHO_TABLE_SIZE_LOG2 + KHO_BITMAP_SIZE_LOG2));

/** kho_radix_encode_key: the key of the order-@order block at @phys. */
export function khoRadixEncodeKey(phys: number, order: number): number {
  return 2 ** (KHO_ORDER_0_LOG2 - order) + phys / 2 ** (PAGE_SHIFT + order);
}

/** kho_radix_decode_key: the block of @key, or undefined when it has no order bit (key 0) or one above bit 52. */
export function khoRadixDecodeKey(key: number): { phys: number; order: number } | undefined {
  if (!(key > 0) || key >= 2 ** (KHO_ORDER_0_LOG2 + 1)) return undefined;
  const top = ilog2(key);
  const order = KHO_ORDER_0_LOG2 - top;
  return { phys: (key - 2 ** top) * 2 ** (PAGE_SHIFT + order), order };
}

/** Table index of @key at table level @level (1..5). */
export function khoRadixTableIndex(key: number, level: number): number {
  return Math.floor(key / 2 ** ((level - 1) * KHO_TABLE_SIZE_LOG2 + KHO_BITMAP_SIZE_LOG2)) % KHO_RADIX_TABLE_ENTRIES;
}

/** Bit index of @key in its leaf. */
export function khoRadixBitmapIndex(key: number): number {
  return key % KHO_RADIX_LEAF_BITS;
}
