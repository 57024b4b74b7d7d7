/*
 * DOC: KHO kernel versions as first-class names (issue 12).
 *
 * Each descriptor says what that kernel's predecessor writes (as one of
 * khosim's formats) and how its successor reads a handoff. The facts, with
 * file, function and commit for each, are docs/kernel-versions.md sections
 * 2-3; the successor that follows them is kernels/boot.ts and kernels/walk.ts.
 *
 *   posting  linux-mm April 2025 "preserve memory as ranges" (the seed,
 *            /work/shared/seed/kho-ranges-code.c: kho_mem_serialize(),
 *            kho_mem_deserialize(), deserialize_range())
 *   v6.16    torvalds/linux 00c010e130e58301db2ea0cec1eadc931e1cb8cf
 *            kernel/kexec_handover.c (512-byte bitmaps)
 *   v6.18    torvalds/linux a4a508df2aa34f8650afde54ea804321c618f45f
 *            kernel/kexec_handover.c (one-page bitmaps from 85b9957f73e9,
 *            KHO_PAGE_MAGIC restore check)
 *   v6.19    torvalds/linux dd03dd60e8cdd5ef0f0cbc18276c45009bcc51f4
 *            kernel/liveupdate/kexec_handover.c (liveupdate; refuses a
 *            missing or zero map in kho_populate())
 *   kho-v2   torvalds/linux 019fc36872374db6fd35e118c9e935374404bfbf
 *            kernel/liveupdate/kexec_handover.c + ABI 3f2ad90060f6
 *            include/linux/kho/abi/kexec_handover.h (radix tree)
 */
import { PRESERVE_BITS_6_16, PRESERVE_BITS_PAGE } from "../../abi/bitmaps.js";
import { KHO_FDT_COMPATIBLE, KHO_FDT_MEMORY_MAP_PROP, KHO_FDT_SUB_FDT_PROP } from "../../abi/kho-fdt.js";
import { KHO_RADIX_COMPATIBLE, KHO_RADIX_SUB_TREE_PROP } from "../../abi/radix.js";
import { khoBitmapsSerialize, khoBitmapsWalk, KhoBitmapTrack } from "../formats/bitmaps/format.js";
import { bitmapsFormat, postedFormat, radixFormat } from "../formats/index.js";
import { defineKhoFormat, ownTracker, type KhoFormat } from "../formats/types.js";

/** The kernel names, oldest first (also the matrix's row and column order). */
export const KHO_KERNEL_NAMES = ["posting", "v6.16", "v6.18", "v6.19", "kho-v2"] as const;

export type KhoKernelName = (typeof KHO_KERNEL_NAMES)[number];

/** Which memory map a successor reads. */
export type KhoKernelMap = "posting-chunks" | "bitmaps" | "radix";

/** What a successor does with a map property that is missing, not 8 bytes, or 0. */
export type KhoMapPolicy = "revive-empty" | "refuse" | "read-page-0";

export interface KhoKernelSuccessor {
  /** The root compatible kho_populate() asks fdt_node_check_compatible() for. */
  compatible: string;
  map: KhoKernelMap;
  /** Node ("" = root) and property holding the map's root pointer. */
  mapNode: string;
  mapProp: string;
  /** Property of a sub-tree node holding its FDT (kho_retrieve_subtree()). */
  subtreeProp: string;
  /** Map property missing or of a length other than 8. */
  missingMap: KhoMapPolicy;
  /** Map value 0. */
  zeroMap: KhoMapPolicy;
  /** PRESERVE_BITS: bits read at each bitmap pointer (bitmaps kernels; radix leaves are 32768). */
  preserveBits: number;
  /** sz = 1 << (order + PAGE_SHIFT) in a 32-bit int (docs/kernel-versions.md 2.2); false: phys_addr_t sizes. */
  intShiftSize: boolean;
  /** memblock_reserved_mark_noinit() after memblock_reserve() (posting marks before: no effect). */
  markNoinit: boolean;
  /** page->private written by the walk: "order" (v6.16), "magic" (KHO_PAGE_MAGIC | order), "none" (posting). */
  pagePrivate: "order" | "magic" | "none";
  /** kho_restore_folio() of the same folio twice succeeds (nothing cleared). */
  restoreTwice: boolean;
  /** kho_memory_init() calls kho_restore_folio(kho_in.fdt_phys) (v6.16, v6.18). */
  restoresFdtFolio: boolean;
  /** The posting's chunks stay memblock_reserve()d for good (sizeof(struct khoser_mem_chunk) each). */
  keepsChunks: boolean;
  /**
   * reserve_mem= revival (mm/memblock.c reserve_mem_kho_revive(), from v6.16
   * f99230780211): "none" (the posting predates it: always a fresh
   * allocation), "restore-folio" (reserve_mem_kho_retrieve_fdt() calls
   * kho_restore_folio() on the sub-FDT page, as merged), "phys-to-virt"
   * (later memblock.c reads it with phys_to_virt(); the changing commit is
   * UNCERTAIN, docs/kernels.md).
   */
  reserveMem: "none" | "restore-folio" | "phys-to-virt";
}

export interface KhoKernel {
  name: KhoKernelName;
  /** Where the code is: tree, commit, file, functions. */
  source: string;
  /** What its predecessor writes. */
  predecessor: {
    /** The khosim format it writes (kernel-a --format equivalent). */
    format: KhoFormat;
    compatible: string;
    /** Bytes per bitmap (bitmap formats), else 0. */
    bitmapBytes: number;
  };
  successor: KhoKernelSuccessor;
}

/*
 * One-page bitmaps exactly as a4a508df / dd03dd60 write them: kho_finalize()
 * writes the same FDT names as 6.16 (compatible "kho-v1", root
 * preserved-memory-map, sub-nodes "fdt") and no marker, unlike khosim's
 * bitmaps-page format (khosim,preserve-bits). A successor cannot tell it from
 * 6.16's, which is the point.
 */
const mainlinePageBitmaps: KhoFormat = defineKhoFormat({
  name: "bitmaps-page",
  fdtLayout: { compatible: KHO_FDT_COMPATIBLE, mapNode: "", mapProps: [{ name: KHO_FDT_MEMORY_MAP_PROP }], subtreeProp: KHO_FDT_SUB_FDT_PROP },
  createTracker: () => new KhoBitmapTrack(PRESERVE_BITS_PAGE),
  serialize: (track, mem, allocPage) => khoBitmapsSerialize(ownTracker(track, KhoBitmapTrack, "bitmaps-page", (t) => t.preserveBits === PRESERVE_BITS_PAGE), mem, allocPage),
  walk: (mem, root, ctx) => khoBitmapsWalk(mem, root, ctx, PRESERVE_BITS_PAGE),
});

const v1Bitmaps = (bits: number): Pick<KhoKernelSuccessor, "compatible" | "map" | "mapNode" | "mapProp" | "subtreeProp" | "preserveBits" | "intShiftSize" | "markNoinit" | "keepsChunks"> => ({
  compatible: KHO_FDT_COMPATIBLE,
  map: "bitmaps",
  mapNode: "",
  mapProp: KHO_FDT_MEMORY_MAP_PROP,
  subtreeProp: KHO_FDT_SUB_FDT_PROP,
  preserveBits: bits,
  intShiftSize: true,
  markNoinit: true,
  keepsChunks: false,
});

/** KHO_KERNELS - every version khosim models, by name. */
export const KHO_KERNELS: Readonly<Record<KhoKernelName, KhoKernel>> = {
  posting: {
    name: "posting",
    source:
      "linux-mm, April 2025, \"kho: preserve memory as ranges\" on KHO v5 (seed kho-ranges-code.c: kho_mem_serialize, kho_mem_deserialize, deserialize_range)",
    // The seed's chunk list as posted (98,320-byte chunks, one range each); khosim's posted format.
    predecessor: { format: postedFormat, compatible: KHO_FDT_COMPATIBLE, bitmapBytes: 0 },
    successor: {
      compatible: KHO_FDT_COMPATIBLE,
      map: "posting-chunks",
      mapNode: "preserved-memory",
      mapProp: "metadata",
      subtreeProp: KHO_FDT_SUB_FDT_PROP,
      // kho_mem_deserialize(): pr_err and return when the node or property is missing (after populate: derived, UNCERTAIN v5).
      missingMap: "revive-empty",
      // No NULL check: phys_to_virt(0) is walked as a chunk.
      zeroMap: "read-page-0",
      preserveBits: 0,
      intShiftSize: false,
      // deserialize_range(): mark_noinit before memblock_reserve, so nothing carries NOINIT.
      markNoinit: false,
      pagePrivate: "none",
      restoreTwice: false,
      restoresFdtFolio: false,
      keepsChunks: true,
      reserveMem: "none",
    },
  },
  "v6.16": {
    name: "v6.16",
    source: "torvalds/linux 00c010e130e58301db2ea0cec1eadc931e1cb8cf kernel/kexec_handover.c (kho_populate, kho_mem_deserialize, deserialize_bitmap, kho_restore_folio)",
    predecessor: { format: bitmapsFormat, compatible: KHO_FDT_COMPATIBLE, bitmapBytes: PRESERVE_BITS_6_16 / 8 },
    successor: {
      ...v1Bitmaps(PRESERVE_BITS_6_16),
      missingMap: "revive-empty",
      zeroMap: "revive-empty",
      pagePrivate: "order",
      restoreTwice: true,
      restoresFdtFolio: true,
      reserveMem: "restore-folio",
    },
  },
  "v6.18": {
    name: "v6.18",
    source: "torvalds/linux a4a508df2aa34f8650afde54ea804321c618f45f kernel/kexec_handover.c (kho_populate, kho_mem_deserialize, deserialize_bitmap, kho_restore_page; PRESERVE_BITS from 85b9957f73e9)",
    predecessor: { format: mainlinePageBitmaps, compatible: KHO_FDT_COMPATIBLE, bitmapBytes: PRESERVE_BITS_PAGE / 8 },
    successor: {
      ...v1Bitmaps(PRESERVE_BITS_PAGE),
      missingMap: "revive-empty",
      zeroMap: "revive-empty",
      pagePrivate: "magic",
      restoreTwice: false,
      restoresFdtFolio: true,
      reserveMem: "restore-folio",
    },
  },
  "v6.19": {
    name: "v6.19",
    source: "torvalds/linux dd03dd60e8cdd5ef0f0cbc18276c45009bcc51f4 kernel/liveupdate/kexec_handover.c (kho_populate, kho_get_mem_map_phys, kho_mem_deserialize, deserialize_bitmap, kho_restore_page)",
    predecessor: { format: mainlinePageBitmaps, compatible: KHO_FDT_COMPATIBLE, bitmapBytes: PRESERVE_BITS_PAGE / 8 },
    successor: {
      ...v1Bitmaps(PRESERVE_BITS_PAGE),
      missingMap: "refuse",
      zeroMap: "refuse",
      pagePrivate: "magic",
      restoreTwice: false,
      restoresFdtFolio: false,
      reserveMem: "phys-to-virt",
    },
  },
  "kho-v2": {
    name: "kho-v2",
    source:
      "torvalds/linux 019fc36872374db6fd35e118c9e935374404bfbf kernel/liveupdate/kexec_handover.c (kho_populate, kho_mem_retrieve, __kho_radix_walk_tree, kho_preserved_memory_reserve) + 3f2ad90060f65d6f66414b8a67c569154bafec7b include/linux/kho/abi/kexec_handover.h",
    predecessor: { format: radixFormat, compatible: KHO_RADIX_COMPATIBLE, bitmapBytes: 0 },
    successor: {
      compatible: KHO_RADIX_COMPATIBLE,
      map: "radix",
      mapNode: "",
      mapProp: KHO_FDT_MEMORY_MAP_PROP,
      subtreeProp: KHO_RADIX_SUB_TREE_PROP,
      missingMap: "refuse",
      zeroMap: "refuse",
      preserveBits: 0,
      intShiftSize: true,
      markNoinit: true,
      pagePrivate: "magic",
      restoreTwice: false,
      restoresFdtFolio: false,
      keepsChunks: false,
      reserveMem: "phys-to-virt",
    },
  },
};

/** isKhoKernelName - true when @name is one of KHO_KERNEL_NAMES. */
export function isKhoKernelName(name: string): name is KhoKernelName {
  return (KHO_KERNEL_NAMES as readonly string[]).includes(name);
}

/** khoKernel - the descriptor of kernel @name, or undefined for an unknown name. */
export function khoKernel(name: string): KhoKernel | undefined {
  return isKhoKernelName(name) ? KHO_KERNELS[name] : undefined;
}

/**
 * khoKernelBlockSize - the size kernel @k hands memblock_reserve() for a
 * block of 2^@order pages, as a u64: 1 << (order + PAGE_SHIFT) computed in a
 * 32-bit int by gcc on x86-64 (sall masks the count to 5 bits, cltq
 * sign-extends: order 19 -> 0xffffffff80000000, order 20+k -> 2^k), or the
 * exact size when the kernel uses phys_addr_t (docs/kernel-versions.md 2.2).
 */
export function khoKernelBlockSize(k: KhoKernel, order: number): bigint {
  if (!k.successor.intShiftSize) return 1n << BigInt(order + 12);
  const count = (order + 12) & 31;
  const v = (1 << count) | 0; // a JS int32: 1 << 31 is -2^31, as in C
  return BigInt.asUintN(64, BigInt(v));
}
