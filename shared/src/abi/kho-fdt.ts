/*
 * DOC: the KHO FDT's names (what the predecessor hands over).
 *
 * Any change to a name or value here needs a new compatible.
 */
import { PAGE_SIZE } from "./page.js";

export const KHO_FDT_COMPATIBLE = "kho-v1";
export const KHO_FDT_MEMORY_NODE = "preserved-memory";
export const KHO_FDT_MEMORY_PATH = "/preserved-memory";
/** Property of /preserved-memory: u64 little-endian phys of the first chunk, 0 if none. */
export const KHO_FDT_METADATA_PROP = "metadata";
/** Property of every sub-tree node (kho_add_subtree): u64 little-endian phys of its FDT. */
export const KHO_FDT_SUB_FDT_PROP = "fdt";
/** Size the predecessor reserves for the KHO FDT (one page, as kho_fdt_size would). */
export const KHO_FDT_MAX_SIZE = PAGE_SIZE;
