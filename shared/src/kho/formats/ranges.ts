/*
 * The "ranges" format: the April 2025 linux-mm design with the posting's bugs
 * fixed (the default). A maple-tree-like tracker of coalesced ranges, each
 * with its data, serialized into page-sized chunks of 170 {start, size, data}
 * entries; the KHO FDT has /preserved-memory/metadata = the first chunk.
 */
import { KHO_FDT_MEMORY_PATH, KHO_FDT_METADATA_PROP } from "../../abi/kho-fdt.js";
import { KHOSER_CHUNK_SIZE } from "../../abi/ranges.js";
import type { FdtRo } from "../../fdt/index.js";
import { buildKhoFdt, readU64Prop, type KhoSubtree } from "../fdt.js";
import type { PhysMem } from "../../mm/physmem.js";
import { khoMemSerialize } from "../serialize.js";
import { KhoMemTrack } from "../track.js";
import { khoMemWalk, type KhoWalkContext } from "../walk.js";
import type { AllocPage, KhoFormat, KhoFormatWalk, KhoSerialized, KhoTracker } from "./types.js";

/** Property of /preserved-memory that marks the posted layout (absent for ranges). */
export const KHO_POSTED_MARKER = "khosim,posted-layout";

export const rangesFormat: KhoFormat = {
  name: "ranges",
  compatible: "kho-v1",
  createTracker(): KhoTracker {
    return new KhoMemTrack();
  },
  serialize(track: KhoTracker, mem: PhysMem, allocPage: AllocPage): KhoSerialized {
    const s = khoMemSerialize(track as KhoMemTrack, mem, allocPage);
    return { root: s.metadata, metadataPages: s.chunks, metadataBytes: s.chunks.length * KHOSER_CHUNK_SIZE };
  },
  buildFdt(root: number, subtrees: readonly KhoSubtree[]): Uint8Array {
    return buildKhoFdt(root, subtrees);
  },
  matches(fdt: FdtRo): boolean {
    try {
      const node = fdt.pathOffset(KHO_FDT_MEMORY_PATH);
      return fdt.getProp(node, KHO_POSTED_MARKER) === undefined;
    } catch {
      return false;
    }
  },
  readRoot(fdt: FdtRo): bigint {
    return readU64Prop(fdt, KHO_FDT_MEMORY_PATH, KHO_FDT_METADATA_PROP, "no preserved-memory node");
  },
  walk(mem: PhysMem, root: bigint, ctx: KhoWalkContext): KhoFormatWalk {
    const w = khoMemWalk(mem, root, ctx);
    return {
      metadataPages: w.chunks,
      ranges: w.ranges,
      blockCount: w.ranges.length,
      forEachBlock(visit) {
        for (const r of w.ranges) visit(r.start, r.size, r.data);
      },
    };
  },
};
