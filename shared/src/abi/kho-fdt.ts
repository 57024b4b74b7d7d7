/*
 * DOC: the KHO FDT's names (what the predecessor hands over).
 *
 * kho-v1 as the ranges posting lays it out (/preserved-memory/metadata) and
 * as mainline does (root preserved-memory-map, kernel/kexec_handover.c
 * kho_finalize() at commit 00c010e130e58301db2ea0cec1eadc931e1cb8cf); kho-v2
 * (radix) keeps preserved-memory-map. Any change to a name or value here
 * needs a new compatible.
 */
import { PAGE_SIZE } from "./page.js";

export const KHO_FDT_COMPATIBLE = "kho-v1";
export const KHO_FDT_MEMORY_NODE = "preserved-memory";
export const KHO_FDT_MEMORY_PATH = "/preserved-memory";
/** Property of /preserved-memory: u64 little-endian phys of the first chunk, 0 if none. */
export const KHO_FDT_METADATA_PROP = "metadata";
/** Root property (mainline kho-v1 and kho-v2): u64 LE phys of the memory map's root object. */
export const KHO_FDT_MEMORY_MAP_PROP = "preserved-memory-map";
/** Property of every sub-tree node (kho_add_subtree): u64 little-endian phys of its FDT. */
export const KHO_FDT_SUB_FDT_PROP = "fdt";
/** Size the predecessor reserves for the KHO FDT (one page, as kho_fdt_size would). */
export const KHO_FDT_MAX_SIZE = PAGE_SIZE;
