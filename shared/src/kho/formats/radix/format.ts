/*
 * The "radix" format: KHO's "kho-v2" preserved-memory map (abi/radix.ts),
 * one radix tree of page-sized nodes for blocks of every order, with no
 * finalize step (include/linux/kho/abi/kexec_handover.h and
 * kernel/liveupdate/kho_radix.c; see abi/radix.ts for the commits).
 *
 * Costs (4 KiB pages): a non-empty tree has the root plus, per distinct
 * path, a table at each of levels 4..1 and a leaf: one isolated block of any
 * order (one aligned 1 GiB range is one order-18 bit) is 6 pages; dense
 * order-0 memory is one bit per page plus 1/512 of that in level-1 tables.
 * metadataBytes is pages * 4096 (each node is a get_zeroed_page()).
 *
 * serialize() builds from the tracker the tree the kernel's incremental
 * inserts produce, except that the kernel never frees nodes on unpreserve
 * (khosim's tree never holds empty nodes). The root table exists even with
 * nothing preserved (1 page); nodes are allocated depth first, root first. A
 * preserved-memory-map of 0 is refused before the walk, as kho_populate()
 * does (kho_get_mem_map_phys() returns 0: "disabling KHO revival"; torvalds/
 * linux 019fc36872374db6fd35e118c9e935374404bfbf, kernel/liveupdate/
 * kexec_handover.c): the successor boots without KHO.
 *
 * The walk claims every node through the shared walk (page aligned, in RAM,
 * clear of scratch and of preserved memory, reached once: a tree, no
 * cycles), at depth exactly 6; keys must carry an order bit at 52 or below
 * and decode to blocks in RAM and clear of scratch; blocks of different
 * orders may not overlap (checked on per-order runs, so memory grows with
 * runs, never with pages).
 */
import { PAGE_SHIFT, PAGE_SIZE } from "../../../abi/page.js";
import { KHO_FDT_MEMORY_MAP_PROP } from "../../../abi/kho-fdt.js";
import {
  KHO_ORDER_0_LOG2, KHO_RADIX_COMPATIBLE, KHO_RADIX_LEAF_BITS, KHO_RADIX_ROOT_LEVEL, KHO_RADIX_ROOT_MAX_INDEX, KHO_RADIX_SUB_TREE_PROP,
  KHO_RADIX_TABLE_ENTRIES, KHO_TABLE_SIZE_LOG2, KHO_BITMAP_SIZE_LOG2, khoRadixDecodeKey, khoRadixEncodeKey,
} from "../../../abi/radix.js";
import { khoDataFolio, khoDataIsFolio, khoDataOrder } from "../../../abi/ranges.js";
import { ByteWriter, hex } from "../../../lib/bytes.js";
import { lastAtOrBelow } from "../../../lib/search.js";
import type { PhysMem } from "../../../mm/physmem.js";
import { KhoSerializeError } from "../../serialize.js";
import { khoFolioSize, khoPhysBlocks, type KhoMemRange } from "../../track.js";
import { KhoMetaWalk, KhoWalkError, type KhoWalkContext, type KhoWalkWhere } from "../../walk.js";
import { defineKhoFormat, type AllocPage, type KhoFormat, type KhoTracker } from "../types.js";
import { KhoRadixTrack } from "./track.js";

export { KhoRadixTrack };

/* Set bits [bit, bit + n) of a leaf bitmap. */
function setBits(leaf: Uint8Array, bit: number, n: number): void {
  let b = bit;
  const end = bit + n;
  while (b < end && b % 8 !== 0) {
    leaf[b >>> 3]! |= 1 << (b & 7);
    b++;
  }
  const full = Math.floor((end - b) / 8);
  if (full > 0) {
    leaf.fill(0xff, b >>> 3, (b >>> 3) + full);
    b += full * 8;
  }
  while (b < end) {
    leaf[b >>> 3]! |= 1 << (b & 7);
    b++;
  }
}

/** Result of {@link khoRadixSerialize}. */
export interface KhoRadixSerialized {
  /** preserved-memory-map: phys of the root table (always allocated). */
  root: number;
  /** Every node, depth first from the root (the walk's order). */
  nodes: number[];
  /** Number of preserved blocks (set bits). */
  blocks: number;
}

/**
 * khoRadixSerialize - write the radix tree of everything @track preserves.
 * @track: runs with data khoDataFolio(order) (a radix tracker), or any
 *         tracker: phys ranges (data 0) are split as kho_preserve_phys does
 * @mem: memory the nodes are written to
 * @allocPage: one free page per node (neither scratch nor preserved)
 *
 * Every node page is written once, whole. Throws KhoSerializeError (EINVAL,
 * node index) when the allocator hands out an unusable page.
 */
export function khoRadixSerialize(track: KhoTracker, mem: PhysMem, allocPage: AllocPage): KhoRadixSerialized {
  const leaves = new Map<number, Uint8Array>();
  const starts: number[] = [];
  const ends: number[] = [];
  let blocks = 0;
  const addKeys = (key0: number, count: number): void => {
    blocks += count;
    let k = key0;
    let left = count;
    while (left > 0) {
      const prefix = Math.floor(k / KHO_RADIX_LEAF_BITS);
      const bit = k % KHO_RADIX_LEAF_BITS;
      const n = Math.min(left, KHO_RADIX_LEAF_BITS - bit);
      let leaf = leaves.get(prefix);
      if (leaf === undefined) {
        leaf = new Uint8Array(PAGE_SIZE);
        leaves.set(prefix, leaf);
      }
      setBits(leaf, bit, n);
      k += n;
      left -= n;
    }
  };
  for (const r of track.ranges()) {
    starts.push(r.start);
    ends.push(r.start + r.size);
    if (khoDataIsFolio(r.data)) {
      const order = khoDataOrder(r.data);
      addKeys(khoRadixEncodeKey(r.start, order), r.size / khoFolioSize(order));
    } else {
      for (const b of khoPhysBlocks(r.start / PAGE_SIZE, (r.start + r.size) / PAGE_SIZE)) addKeys(khoRadixEncodeKey(b.pfn * PAGE_SIZE, b.order), 1);
    }
  }

  const nodes: number[] = [];
  const seen = new Set<number>();
  const alloc = (what: string): number => {
    const i = nodes.length;
    const phys = allocPage();
    if (!Number.isSafeInteger(phys) || phys <= 0 || phys % PAGE_SIZE !== 0 || seen.has(phys)) {
      throw new KhoSerializeError("EINVAL", i, `kho radix: node ${i} (${what}): allocator returned unusable page ${hex(phys)}`);
    }
    // Preserved ranges are ascending: the last one starting at or below phys is the only candidate.
    const k = lastAtOrBelow(starts, starts.length, phys);
    if (k >= 0 && ends[k]! > phys) {
      throw new KhoSerializeError("EINVAL", i, `kho radix: node ${i} (${what}): allocator returned preserved page ${hex(phys)}`);
    }
    seen.add(phys);
    nodes.push(phys);
    return phys;
  };

  const tables: { phys: number; buf: Uint8Array }[] = [];
  const newTable = (phys: number): Uint8Array => {
    const buf = new Uint8Array(PAGE_SIZE);
    tables.push({ phys, buf });
    return buf;
  };
  const root = alloc(`level-${KHO_RADIX_ROOT_LEVEL} root table`);
  const rootBuf = newTable(root);
  const leafWrites: { phys: number; buf: Uint8Array }[] = [];
  /* The open table at each level below the root: its identity (key bits above it) and contents. */
  const open: ({ id: number; buf: Uint8Array } | undefined)[] = [];
  const prefixes = [...leaves.keys()].sort((a, b) => a - b);
  for (const prefix of prefixes) {
    let parent = rootBuf;
    for (let level = KHO_RADIX_ROOT_LEVEL; level >= 1; level--) {
      // prefix = key >> 15, so the level-L index is prefix >> ((L - 1) * 9).
      const scale = 2 ** ((level - 1) * KHO_TABLE_SIZE_LOG2);
      const idx = Math.floor(prefix / scale) % KHO_RADIX_TABLE_ENTRIES;
      if (level === 1) {
        const phys = alloc(`leaf for keys ${hex(prefix * KHO_RADIX_LEAF_BITS)}..`);
        new ByteWriter(parent).u64le(idx * 8, phys);
        leafWrites.push({ phys, buf: leaves.get(prefix)! });
        break;
      }
      const id = Math.floor(prefix / scale);
      let child = open[level - 1];
      if (child === undefined || child.id !== id) {
        const phys = alloc(`level-${level - 1} table`);
        child = { id, buf: newTable(phys) };
        open[level - 1] = child;
        new ByteWriter(parent).u64le(idx * 8, phys);
      }
      parent = child.buf;
    }
  }
  for (const t of tables) mem.write(t.phys, t.buf);
  for (const l of leafWrites) mem.write(l.phys, l.buf);
  return { root, nodes, blocks };
}

/** Result of {@link khoRadixWalk}. */
export interface KhoRadixWalkResult {
  /** Every node, depth first from the root. */
  nodes: number[];
  /** Leaves in key order: phys and key of their bit 0. */
  leaves: { phys: number; base: number }[];
  /** Preserved memory: sorted runs of equal order, adjacent equal orders merged. */
  ranges: KhoMemRange[];
  /** Set bits (preserved blocks). */
  blocks: number;
}

function nodeName(level: number, index: number, phys: number): string {
  return level === 0 ? `leaf (node ${index}) at ${hex(phys)}` : `level-${level} table (node ${index}) at ${hex(phys)}`;
}

interface Run {
  start: number;
  end: number;
  order: number;
}

/**
 * khoRadixWalk - walk and validate the radix tree rooted at @root in @mem.
 * @mem: the successor's view of RAM
 * @root: preserved-memory-map (0: nothing to walk; the FDT layout refuses 0 before this)
 * @ctx: RAM bounds and the scratch areas
 *
 * Reads every node once, depth first. Throws KhoWalkError on the first
 * invalid value. Memory grows with nodes and with runs of equal-order
 * blocks, never with pages.
 */
export function khoRadixWalk(mem: PhysMem, root: bigint, ctx: KhoWalkContext): KhoRadixWalkResult {
  const mw = new KhoMetaWalk(ctx);
  const nodes: number[] = [];
  const leaves: { phys: number; base: number }[] = [];
  const path: number[] = [];
  /* Runs per order, ascending (keys of one order ascend with phys). */
  const perOrder: Run[][] = [];
  let blocks = 0;

  if (root === 0n) return { nodes, leaves, ranges: [], blocks };
  const { ramBase, ramEnd } = mw;

  /* Claim the node @v held at @holder; returns its phys. */
  const claim = (v: bigint, level: number, holder: KhoWalkWhere, holderName: string): number => {
    const phys = mw.claim(v, {
      kind: "node", size: PAGE_SIZE, label: level === 0 ? "leaf" : `level-${level} table`, ref: `node ${nodes.length}`, holder, holderName,
      onSeen: (prev) =>
        path.includes(prev.phys)
          ? ["NODE_CYCLE", `that is ${prev.ref}, on this node's own path from the root (cycle)`]
          : ["NODE_SHARED", `that is ${prev.ref} again (shared: not a tree)`],
    });
    nodes.push(phys);
    return phys;
  };

  const addRun = (start: number, end: number, order: number): void => {
    const list = (perOrder[order] ??= []);
    const last = list[list.length - 1];
    if (last !== undefined && last.end === start) last.end = end;
    else list.push({ start, end, order });
  };

  /* Check the run of @count blocks of @order from bit @b0 of leaf @li; throws at the first bad block. */
  const checkRun = (li: number, lphys: number, b0: number, key0: number, count: number): void => {
    const blk = khoRadixDecodeKey(key0);
    const where = (bit: number): KhoWalkWhere => ({ object: "node", level: 0, index: li, phys: lphys, bit, field: "bitmap", offset: bit >>> 3 });
    const name = (bit: number, k: number): string => `${nodeName(0, li, lphys)}: bitmap bit ${bit} (byte +${hex(bit >>> 3)}) is key ${hex(k)}`;
    if (blk === undefined) {
      throw new KhoWalkError("KEY_NO_ORDER", where(b0), `${name(b0, key0)}: no order bit (key 0)`);
    }
    const { phys: start, order } = blk;
    const bsize = 2 ** (PAGE_SHIFT + order);
    const end = start + count * bsize;
    const blockAt = (j: number): string => `order-${order} block [${hex(start + j * bsize)}, ${hex(start + (j + 1) * bsize)})`;
    if (mw.blockFault(start, end) === "OUTSIDE_RAM") {
      const j = start < ramBase || start >= ramEnd ? 0 : Math.floor((ramEnd - start) / bsize);
      throw new KhoWalkError("BLOCK_OUTSIDE_RAM", where(b0 + j), `${name(b0 + j, key0 + j)}: ${blockAt(j)} is not inside RAM [${hex(ramBase)}, ${hex(ramEnd)})`);
    }
    let firstBad = -1;
    let sc: { addr: number; size: number } | undefined;
    for (const s of ctx.scratch) {
      if (start < s.addr + s.size && s.addr < end) {
        const j = Math.max(0, Math.floor((s.addr - start) / bsize));
        if (firstBad < 0 || j < firstBad) {
          firstBad = j;
          sc = s;
        }
      }
    }
    if (sc !== undefined) {
      const j = firstBad;
      throw new KhoWalkError(
        "BLOCK_IN_SCRATCH",
        where(b0 + j),
        `${name(b0 + j, key0 + j)}: ${blockAt(j)} overlaps scratch [${hex(sc.addr)}, ${hex(sc.addr + sc.size)})`,
      );
    }
    blocks += count;
    addRun(start, end, order);
  };

  const scanLeaf = (li: number, lphys: number, base: number, bytes: Uint8Array): void => {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    // Below bit 15 the order bit lies inside the leaf: each bit is its own order, taken one by one.
    const mixed = base === 0;
    let runStart = -1;
    const flush = (endBit: number): void => {
      if (runStart < 0) return;
      if (mixed) {
        for (let b = runStart; b < endBit; b++) checkRun(li, lphys, b, base + b, 1);
      } else {
        checkRun(li, lphys, runStart, base + runStart, endBit - runStart);
      }
      runStart = -1;
    };
    for (let w = 0; w < PAGE_SIZE / 4; w++) {
      const word = view.getUint32(w * 4, true);
      const bit0 = w * 32;
      if (word === 0) {
        flush(bit0);
        continue;
      }
      if (word === 0xffffffff) {
        if (runStart < 0) runStart = bit0;
        continue;
      }
      for (let b = 0; b < 32; b++) {
        if ((word >>> b) & 1) {
          if (runStart < 0) runStart = bit0 + b;
        } else {
          flush(bit0 + b);
        }
      }
    }
    flush(KHO_RADIX_LEAF_BITS);
  };

  const visit = (phys: number, level: number, keyBase: number): void => {
    const index = nodes.length - 1;
    const bytes = mem.read(phys, PAGE_SIZE);
    if (level === 0) {
      leaves.push({ phys, base: keyBase });
      scanLeaf(index, phys, keyBase, bytes);
      return;
    }
    path.push(phys);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const shift = 2 ** ((level - 1) * KHO_TABLE_SIZE_LOG2 + KHO_BITMAP_SIZE_LOG2);
    for (let i = 0; i < KHO_RADIX_TABLE_ENTRIES; i++) {
      const lo = view.getUint32(i * 8, true);
      const hi = view.getUint32(i * 8 + 4, true);
      if (lo === 0 && hi === 0) continue;
      const v = (BigInt(hi) << 32n) | BigInt(lo);
      const where: KhoWalkWhere = { object: "node", level, index, phys, entry: i, field: "table", offset: i * 8 };
      const holder = `${nodeName(level, index, phys)}: table[${i}] at +${hex(i * 8)}`;
      if (level === KHO_RADIX_ROOT_LEVEL && i >= KHO_RADIX_ROOT_MAX_INDEX) {
        throw new KhoWalkError(
          "KEY_WIDTH",
          where,
          `${holder} is ${hex(v)}: root index ${i} sets key bits above the order-0 bit ${KHO_ORDER_0_LOG2} (valid indices 0..${KHO_RADIX_ROOT_MAX_INDEX - 1})`,
        );
      }
      const child = claim(v, level - 1, where, holder);
      visit(child, level - 1, keyBase + i * shift);
    }
    path.pop();
  };

  const rootPhys = claim(root, KHO_RADIX_ROOT_LEVEL, { field: KHO_FDT_MEMORY_MAP_PROP }, KHO_FDT_MEMORY_MAP_PROP);
  visit(rootPhys, KHO_RADIX_ROOT_LEVEL, 0);

  // All runs by start; blocks of different orders may not overlap.
  const all: Run[] = [];
  for (const list of perOrder) if (list !== undefined) for (const r of list) all.push(r);
  all.sort((a, b) => a.start - b.start || a.order - b.order);
  for (let i = 1; i < all.length; i++) {
    const a = all[i - 1]!;
    const b = all[i]!;
    if (b.start >= a.end) continue;
    // The first block of b lies inside a block of a.
    const key = khoRadixEncodeKey(b.start, b.order);
    const li = leafIndexOf(leaves, key);
    const leaf = leaves[li]!;
    const bit = key - leaf.base;
    const asz = 2 ** (PAGE_SHIFT + a.order);
    const aBlock = a.start + Math.floor((b.start - a.start) / asz) * asz;
    const aKey = khoRadixEncodeKey(aBlock, a.order);
    throw new KhoWalkError(
      "BLOCK_OVERLAP",
      { object: "node", level: 0, index: nodes.indexOf(leaf.phys), phys: leaf.phys, bit, field: "bitmap", offset: bit >>> 3 },
      `${nodeName(0, nodes.indexOf(leaf.phys), leaf.phys)}: bitmap bit ${bit} (byte +${hex(bit >>> 3)}) is key ${hex(key)}: ` +
        `order-${b.order} block [${hex(b.start)}, ${hex(b.start + 2 ** (PAGE_SHIFT + b.order))}) overlaps ` +
        `order-${a.order} block [${hex(aBlock)}, ${hex(aBlock + asz)}) (key ${hex(aKey)})`,
    );
  }

  const ranges: KhoMemRange[] = [];
  for (const r of all) {
    const data = khoDataFolio(r.order);
    const last = ranges[ranges.length - 1];
    if (last !== undefined && last.start + last.size === r.start && last.data === data) last.size += r.end - r.start;
    else ranges.push({ start: r.start, size: r.end - r.start, data });
  }
  // Node pages are free memory once walked: none may lie inside a preserved block.
  mw.checkNotPreserved(ranges, (o, r) => {
    const order = khoDataOrder(r.data);
    const bsz = 2 ** (PAGE_SHIFT + order);
    const blk = r.start + Math.floor((o.phys - r.start) / bsz) * bsz;
    return { message: `${o.holderName} is ${hex(o.phys)}: ${o.ref} page lies inside preserved order-${order} block [${hex(blk)}, ${hex(blk + bsz)}) (key ${hex(khoRadixEncodeKey(blk, order))})` };
  });
  return { nodes, leaves, ranges, blocks };
}

/** Index of the leaf holding @key (leaves ascending by base). */
function leafIndexOf(leaves: readonly { base: number }[], key: number): number {
  let lo = 0;
  let hi = leaves.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (leaves[mid]!.base <= key) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/**
 * khoRadixForEachBlock - visit every set bit of the (validated) leaves in key
 * order as (phys, size, khoDataFolio(order)), re-reading each leaf.
 */
export function khoRadixForEachBlock(
  mem: PhysMem,
  leaves: readonly { phys: number; base: number }[],
  visit: (start: number, size: number, data: number) => void,
): void {
  for (const leaf of leaves) {
    const bytes = mem.read(leaf.phys, PAGE_SIZE);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    // Above the mixed leaf (base 0) every bit of a leaf has the order its base says.
    const first = leaf.base > 0 ? khoRadixDecodeKey(leaf.base)! : undefined;
    if (first) forEachUniformBlock(view, first.phys, first.order, visit);
    else forEachMixedBlock(view, visit);
  }
}

/*
 * The blocks of a leaf whose bits all have @order, bit k at @phys + k
 * blocks: set bits lowest first. One call of @visit in the loop, so that the
 * loop's optimized code inlines memblock's stream path once (three call
 * sites overran V8's inlining budget).
 */
function forEachUniformBlock(view: DataView, phys: number, order: number, visit: (start: number, size: number, data: number) => void): void {
  const bsize = 2 ** (PAGE_SHIFT + order);
  const data = khoDataFolio(order);
  for (let w = 0; w < PAGE_SIZE / 4; w++) {
    let word = view.getUint32(w * 4, true) | 0;
    const a = phys + w * 32 * bsize;
    // Set bits lowest first: ctz of the lowest set bit, then clear it (a full word: 32 blocks in a row).
    while (word !== 0) {
      visit(a + (31 - Math.clz32(word & -word)) * bsize, bsize, data);
      word &= word - 1;
    }
  }
}

/* The blocks of the mixed leaf (base 0): each set bit's key gives its order and address. */
function forEachMixedBlock(view: DataView, visit: (start: number, size: number, data: number) => void): void {
  for (let w = 0; w < PAGE_SIZE / 4; w++) {
    let word = view.getUint32(w * 4, true) | 0;
    while (word !== 0) {
      const blk = khoRadixDecodeKey(w * 32 + 31 - Math.clz32(word & -word))!;
      visit(blk.phys, 2 ** (PAGE_SHIFT + blk.order), khoDataFolio(blk.order));
      word &= word - 1;
    }
  }
}

export const radixFormat: KhoFormat = defineKhoFormat({
  name: "radix",
  fdtLayout: {
    compatible: KHO_RADIX_COMPATIBLE, mapNode: "", mapProps: [{ name: KHO_FDT_MEMORY_MAP_PROP }], subtreeProp: KHO_RADIX_SUB_TREE_PROP,
    zeroRoot: "no radix tree root (kho_populate: the kernel always hands one over, and refuses 0)",
  },
  createTracker: () => new KhoRadixTrack(),
  serialize(track, mem, allocPage) {
    const s = khoRadixSerialize(track, mem, allocPage);
    return { root: s.root, metadataPages: s.nodes, metadataBytes: s.nodes.length * PAGE_SIZE };
  },
  walk(mem, root, ctx) {
    const w = khoRadixWalk(mem, root, ctx);
    return { metadataPages: w.nodes, ranges: w.ranges, blockCount: w.blocks, forEachBlock: (visit) => khoRadixForEachBlock(mem, w.leaves, visit) };
  },
});
