/*
 * The "radix" format: KHO's 2026 "kho-v2" preserved-memory map, one radix
 * tree of page-sized nodes for pages of every order, with no finalize step.
 *
 * Sources (public, read for the layout only; nothing copied):
 *  - include/linux/kho/abi/kexec_handover.h as of "kho: adopt radix tree for
 *    preserved memory tracking" (Jason Miu, 2026-04-05; linux-mm tree),
 *    "DOC: KHO persistent memory tracker" and enum kho_radix_consts;
 *  - kernel/liveupdate/kho_radix.c (kho_radix_encode_key/decode_key,
 *    kho_radix_add_page, __kho_radix_walk_tree);
 *  - "kho: fix KHO_TREE_MAX_DEPTH for non-4KB page sizes" (depth unchanged
 *    for 4 KiB pages).
 *
 * Key. A block of 2^order pages at phys is the key
 *	key = (1 << (KHO_ORDER_0_LOG2 - order)) | (phys >> (PAGE_SHIFT + order))
 * with KHO_ORDER_0_LOG2 = 64 - PAGE_SHIFT = 52: the highest set bit (the
 * "order bit", bit 52 - order) says the order, the bits below it are the pfn
 * shifted right by the order. Keys are at most 53 bits wide (exact as JS
 * numbers). Decoding: order = 52 - (index of the highest set bit),
 * phys = (key without its order bit) << (PAGE_SHIFT + order).
 *
 * Tree. KHO_TREE_MAX_DEPTH = ceil((52 - 15) / 9) + 1 = 6 levels of 4 KiB
 * pages. Levels 5 (the root) to 1 are tables of 512 little-endian u64
 * physical addresses (0 = empty); level 5's entry i covers key bits 51..59,
 * level L's index is (key >> ((L - 1) * 9 + 15)) & 511. Level 0 is a leaf,
 * a 32,768-bit bitmap (bit n in byte n / 8, bit n % 8: DECLARE_BITMAP on a
 * little-endian machine) indexed by key & 32767. A set bit is one preserved
 * block. Only key bits up to 52 may be set, so a root entry at index 4 or
 * above is invalid.
 *
 * KHO FDT (kho-v2):
 *	/ {
 *		compatible = "kho-v2";
 *		preserved-memory-map = [u64 LE phys of the root table];
 *		kho_test {
 *			preserved-data = [u64 LE phys of the sub-tree's FDT];
 *		};
 *	};
 * The tree root is the ROOT property `preserved-memory-map` (as in kho-v2);
 * the sub-node property `preserved-data` replaced kho-v1's `fdt` for
 * sub-trees (kho-v2 later also gained `blob-size`; khosim's KhoSubtree has no
 * size, so it is not written). khoRetrieveSubtree() reads the property the
 * format names in `subtreeProp`.
 *
 * Costs (4 KiB pages): every non-empty tree has the root plus, per distinct
 * path, one table at each of levels 4..1 and a leaf: one isolated block of
 * any order is 6 pages (24,576 bytes: a 4 KiB leaf + 5 tables); dense
 * order-0 memory is one bit per page plus 1/512 of that in level-1 tables
 * (48 GiB of aligned order-0 folios: 384 leaves + 5 tables); one aligned
 * 1 GiB kho_preserve_phys range is a single order-18 bit, i.e. 6 pages.
 * metadataBytes is pages * 4096 (each node is a whole page, get_zeroed_page).
 *
 * Assumptions and simulator choices:
 *  - The kernel allocates the root table when KHO starts and nodes on each
 *    kho_preserve_*() (no finalize). khosim's KhoTracker API has no allocator
 *    at preserve time, so serialize() builds the same tree from the tracker:
 *    the bytes are those the kernel's incremental inserts produce, except that
 *    the kernel never frees nodes on unpreserve (kho_radix_del_page only clears
 *    the bit), whereas khosim's tree never holds empty nodes. The root table
 *    exists even with nothing preserved (1 page), as in the kernel.
 *    Pages are allocated in the walk's order (depth first, root first).
 *  - A root pointer of 0 walks as "nothing preserved" (the kernel never hands
 *    one over).
 *  - The tracker (KhoRadixTrack) holds, per order, runs of equal-order blocks
 *    in a KhoMemTrack (data = khoDataFolio(order)), so its state is
 *    proportional to the number of runs, never to pages. kho_preserve_phys
 *    splits a range into blocks as mainline does:
 *    order = min(ctz(pfn), ilog2(end_pfn - pfn)). The format carries no
 *    per-range data: a phys range and folios of the same order are the same
 *    bits, so ranges() and the walk report every run as khoDataFolio(order).
 *    Where KhoMemTrack's semantics cannot be expressed:
 *      * kho_preserve_phys over memory that is already preserved (by anything)
 *        preserves only the gaps (the kernel would set overlapping bits of
 *        another order, which a careful successor must reject); it never fails
 *        with EEXIST, even over a folio;
 *      * kho_preserve_folio overlapping blocks of another order is EEXIST
 *        (including blocks a phys range was split into); the same block again
 *        is harmless;
 *      * kho_unpreserve* may cut inside a block: the block is removed and its
 *        remaining parts re-preserved as smaller aligned blocks (a phys range
 *        may be cut anywhere; callers must not cut folios, which the format
 *        cannot tell apart).
 *
 * The walk is careful: every node pointer must be page aligned, a page
 * inside RAM, clear of scratch and of preserved memory, and reached once
 * (a tree: no sharing, no cycles); the depth is exactly 6 (a node's level is
 * its distance from the root); keys must carry an order bit at 52 or below
 * and decode to blocks inside RAM and clear of scratch; blocks of different
 * orders may not overlap (checked on per-order runs, so memory grows with
 * runs, never with pages). Errors are KhoRadixWalkError with code and
 * location (node level, walk index, phys, entry or bit, byte offset).
 */
import { PAGE_SHIFT, PAGE_SIZE } from "../../abi/page.js";
import { khoDataFolio, khoDataIsFolio, khoDataOrder } from "../../abi/ranges.js";
import { ByteWriter, hex, u64leBytes } from "../../lib/bytes.js";
import { FdtWriter, type FdtRo } from "../../fdt/index.js";
import { readU64Prop, type KhoSubtree } from "../fdt.js";
import type { PhysMem } from "../../mm/physmem.js";
import { KhoSerializeError } from "../serialize.js";
import { KHO_TRACK_MAX_ORDER, KhoMemTrack, KhoTrackError, khoCheckRange, khoFolioSize, type KhoMemRange } from "../track.js";
import { khoScratchHit, type KhoWalkContext } from "../walk.js";
import { KhoMetadataError, type AllocPage, type KhoFormat, type KhoFormatWalk, type KhoSerialized, type KhoTracker } from "./types.js";

/** Root compatible of the radix KHO FDT. */
export const KHO_RADIX_COMPATIBLE = "kho-v2";
/** Root property: u64 LE phys of the radix tree's root table. */
export const KHO_RADIX_MEMORY_MAP_PROP = "preserved-memory-map";
/** Sub-tree node property in kho-v2: u64 LE phys of the sub-tree's blob. */
export const KHO_RADIX_SUB_TREE_PROP = "preserved-data";
/** Sub-tree property khoRetrieveSubtree() reads (kho-v1's name), written as well. */

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

const TABLE_ENTRIES = 1 << KHO_TABLE_SIZE_LOG2;
const LEAF_BITS = 2 ** KHO_BITMAP_SIZE_LOG2;
/* Root entries at this index or above would set key bits above the order-0 bit. */
const ROOT_MAX_INDEX = 2 ** (KHO_ORDER_0_LOG2 + 1 - ((KHO_RADIX_ROOT_LEVEL - 1) * KHO_TABLE_SIZE_LOG2 + KHO_BITMAP_SIZE_LOG2));

/** floor(log2(@n)) for a positive integer below 2^53, exactly. */
function ilog2(n: number): number {
  const hi = Math.floor(n / 2 ** 32);
  return hi > 0 ? 63 - Math.clz32(hi) : 31 - Math.clz32(n >>> 0);
}

/** Trailing zero bits of a non-negative integer below 2^53 (64 for 0). */
function ctz(n: number): number {
  if (n === 0) return 64;
  const lo = n % 2 ** 32;
  if (lo !== 0) return 31 - Math.clz32(lo & -lo);
  const hi = n / 2 ** 32;
  return 32 + 31 - Math.clz32(hi & -hi);
}

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
  return Math.floor(key / 2 ** ((level - 1) * KHO_TABLE_SIZE_LOG2 + KHO_BITMAP_SIZE_LOG2)) % TABLE_ENTRIES;
}

/** Bit index of @key in its leaf. */
export function khoRadixBitmapIndex(key: number): number {
  return key % LEAF_BITS;
}

/**
 * khoRadixBlocks - split [@start, @end) (page aligned) into the blocks
 * mainline preserves: order = min(ctz(pfn), ilog2(end_pfn - pfn)).
 */
export function khoRadixBlocks(start: number, end: number, visit: (phys: number, order: number) => void): void {
  let pfn = start / PAGE_SIZE;
  const endPfn = end / PAGE_SIZE;
  while (pfn < endPfn) {
    const order = Math.min(ctz(pfn), ilog2(endPfn - pfn));
    visit(pfn * PAGE_SIZE, order);
    pfn += 2 ** order;
  }
}

/**
 * The radix format's tracker: preserved blocks as runs of equal order (see
 * the file comment for where its semantics differ from KhoMemTrack's).
 */
export class KhoRadixTrack implements KhoTracker {
  private readonly runs = new KhoMemTrack();

  /** Bytes preserved. */
  get totalBytes(): number {
    return this.runs.totalBytes;
  }

  /** Number of runs of equal-order blocks. */
  get count(): number {
    return this.runs.count;
  }

  /** Maximal runs of equal-order blocks, ascending; data = khoDataFolio(order). */
  ranges(): IterableIterator<KhoMemRange> {
    return this.runs.ranges();
  }

  /** True when any byte of [@addr, @addr + @size) is preserved. */
  intersects(addr: number, size: number): boolean {
    return this.runs.intersects(addr, size);
  }

  khoPreserveFolio(phys: number, order: number): void {
    this.runs.khoPreserveFolio(phys, order);
  }

  khoPreservePhys(phys: number, size: number): void {
    khoCheckRange("kho_preserve_phys", phys, size);
    const end = phys + size;
    if (!this.runs.intersects(phys, size)) {
      this.addBlocks(phys, end);
      return;
    }
    // Preserve only the gaps between what is preserved already.
    let cur = phys;
    while (cur < end) {
      const r = this.runs.rangeAt(cur);
      if (r !== undefined) {
        cur = r.start + r.size;
        continue;
      }
      let gapEnd = end;
      if (this.runs.intersects(cur, end - cur)) {
        // Smallest n with a preserved byte in [cur, cur + n pages): the gap is n - 1 pages.
        let lo = 1;
        let hi = (end - cur) / PAGE_SIZE;
        while (lo < hi) {
          const mid = Math.floor((lo + hi) / 2);
          if (this.runs.intersects(cur, mid * PAGE_SIZE)) hi = mid;
          else lo = mid + 1;
        }
        gapEnd = cur + (lo - 1) * PAGE_SIZE;
      }
      this.addBlocks(cur, gapEnd);
      cur = gapEnd;
    }
  }

  khoUnpreserve(addr: number, size: number): void {
    khoCheckRange("kho_unpreserve", addr, size);
    this.splitAt(addr);
    this.splitAt(addr + size);
    this.runs.khoUnpreserve(addr, size);
  }

  khoUnpreservePhys(phys: number, size: number): void {
    this.khoUnpreserve(phys, size);
  }

  khoUnpreserveFolio(phys: number, order: number): void {
    if (!Number.isInteger(order) || order < 0 || order > KHO_TRACK_MAX_ORDER) {
      throw new KhoTrackError("EINVAL", `folio order ${String(order)} is out of range 0..${KHO_TRACK_MAX_ORDER}`);
    }
    const fsz = khoFolioSize(order);
    khoCheckRange("kho_unpreserve_folio", phys, fsz);
    if (phys % fsz !== 0) {
      throw new KhoTrackError("EINVAL", `folio at ${hex(phys)} is not aligned to its order-${order} folio size ${hex(fsz)}`);
    }
    this.khoUnpreserve(phys, fsz);
  }

  /* Preserve [start, end), known to be free, as mainline's blocks. */
  private addBlocks(start: number, end: number): void {
    khoRadixBlocks(start, end, (p, o) => this.runs.khoPreserveFolio(p, o));
  }

  /* Make @c a block boundary: a block containing it is replaced by smaller blocks. */
  private splitAt(c: number): void {
    const r = this.runs.rangeAt(c);
    if (r === undefined || r.start === c) return;
    const fsz = khoFolioSize(khoDataOrder(r.data));
    const off = (c - r.start) % fsz;
    if (off === 0) return;
    const bs = c - off;
    this.runs.khoUnpreserve(bs, fsz);
    this.addBlocks(bs, c);
    this.addBlocks(c, bs + fsz);
  }
}

/* ------------------------------------------------------------ serialize */

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
      const prefix = Math.floor(k / LEAF_BITS);
      const bit = k % LEAF_BITS;
      const n = Math.min(left, LEAF_BITS - bit);
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
      khoRadixBlocks(r.start, r.start + r.size, (p, o) => addKeys(khoRadixEncodeKey(p, o), 1));
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
    let lo = 0;
    let hi = starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (starts[mid]! <= phys) lo = mid + 1;
      else hi = mid;
    }
    if (lo > 0 && ends[lo - 1]! > phys) {
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
      const idx = Math.floor(prefix / scale) % TABLE_ENTRIES;
      if (level === 1) {
        const phys = alloc(`leaf for keys ${hex(prefix * LEAF_BITS)}..`);
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

/* ----------------------------------------------------------------- walk */

/** What the radix walk found wrong. */
export type KhoRadixWalkErrorCode =
  /** A node pointer (preserved-memory-map or a table entry) is not page aligned. */
  | "NODE_UNALIGNED"
  /** A node pointer is 2^53 or more, or its page is not wholly inside RAM. */
  | "NODE_OUTSIDE_RAM"
  /** A node page overlaps a scratch area. */
  | "NODE_IN_SCRATCH"
  /** A table entry points back at a node on its own path from the root (cycle). */
  | "NODE_CYCLE"
  /** A table entry points at a node already reached another way (shared, not a tree). */
  | "NODE_SHARED"
  /** A node page lies inside a preserved block (metadata is not preserved). */
  | "NODE_IN_PRESERVED"
  /** A root entry at index 4 or above: keys would have bits above the order-0 bit (52). */
  | "KEY_WIDTH"
  /** A set bit whose key has no order bit (key 0). */
  | "KEY_NO_ORDER"
  /** A key decodes to a block not wholly inside RAM. */
  | "BLOCK_OUTSIDE_RAM"
  /** A key decodes to a block that overlaps a scratch area. */
  | "BLOCK_IN_SCRATCH"
  /** Blocks of two orders overlap. */
  | "BLOCK_OVERLAP";

/** Where a {@link KhoRadixWalkError} was found; absent fields do not apply. */
export interface KhoRadixWalkErrorWhere {
  /** Level of the node holding the bad field: 5 (root) .. 1 tables, 0 leaf. */
  level?: number;
  /** Index of that node in walk order (metadataPages). */
  nodeIndex?: number;
  /** Phys of that node. */
  nodePhys?: number;
  /** Table index (tables) or bit index (leaves). */
  entry?: number;
  /** "preserved-memory-map", "table" or "bitmap". */
  field?: string;
  /** Byte offset of the field inside the node page. */
  offset?: number;
}

/** Thrown by {@link khoRadixWalk} on the first invalid value. */
export class KhoRadixWalkError extends KhoMetadataError implements KhoRadixWalkErrorWhere {
  readonly level?: number;
  readonly nodeIndex?: number;
  readonly nodePhys?: number;
  readonly entry?: number;
  readonly field?: string;
  readonly offset?: number;

  constructor(
    readonly code: KhoRadixWalkErrorCode,
    where: KhoRadixWalkErrorWhere,
    message: string,
  ) {
    super(message);
    this.name = "KhoRadixWalkError";
    if (where.level !== undefined) this.level = where.level;
    if (where.nodeIndex !== undefined) this.nodeIndex = where.nodeIndex;
    if (where.nodePhys !== undefined) this.nodePhys = where.nodePhys;
    if (where.entry !== undefined) this.entry = where.entry;
    if (where.field !== undefined) this.field = where.field;
    if (where.offset !== undefined) this.offset = where.offset;
  }
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
 * @root: preserved-memory-map (0: nothing preserved)
 * @ctx: RAM bounds and the scratch areas
 *
 * Reads every node once, depth first. Throws KhoRadixWalkError on the first
 * invalid value. Memory grows with nodes and with runs of equal-order
 * blocks, never with pages.
 */
export function khoRadixWalk(mem: PhysMem, root: bigint, ctx: KhoWalkContext): KhoRadixWalkResult {
  const ramBase = ctx.ramBase;
  const ramEnd = ctx.ramBase + ctx.ramSize;
  const nodes: number[] = [];
  const leaves: { phys: number; base: number }[] = [];
  /* Node phys -> its walk index; and for each node the entry that points at it. */
  const nodeIndex = new Map<number, number>();
  const parentOf: KhoRadixWalkErrorWhere[] = [];
  const parentName: string[] = [];
  const path: number[] = [];
  /* Runs per order, ascending (keys of one order ascend with phys). */
  const perOrder: Run[][] = [];
  let blocks = 0;

  if (root === 0n) return { nodes, leaves, ranges: [], blocks };

  /* Validate the pointer @v held at @where; returns the node's phys. */
  const checkPtr = (v: bigint, level: number, where: KhoRadixWalkErrorWhere, holder: string): number => {
    const bad = (code: KhoRadixWalkErrorCode, why: string): KhoRadixWalkError =>
      new KhoRadixWalkError(code, where, `${holder} is ${hex(v)}: ${why}`);
    const what = level === 0 ? "leaf" : `level-${level} table`;
    if (v % BigInt(PAGE_SIZE) !== 0n) throw bad("NODE_UNALIGNED", `${what} address is not page aligned`);
    if (v >= 1n << 53n || v < BigInt(ramBase) || v + BigInt(PAGE_SIZE) > BigInt(ramEnd)) {
      throw bad("NODE_OUTSIDE_RAM", `${what} page is outside RAM [${hex(ramBase)}, ${hex(ramEnd)})`);
    }
    const phys = Number(v);
    const s = khoScratchHit(ctx, phys, phys + PAGE_SIZE);
    if (s !== undefined) throw bad("NODE_IN_SCRATCH", `${what} page overlaps scratch [${hex(s.addr)}, ${hex(s.addr + s.size)})`);
    const again = nodeIndex.get(phys);
    if (again !== undefined) {
      if (path.includes(phys)) throw bad("NODE_CYCLE", `that is node ${again}, on this node's own path from the root (cycle)`);
      throw bad("NODE_SHARED", `that is node ${again} again (shared: not a tree)`);
    }
    nodeIndex.set(phys, nodes.length);
    parentOf.push(where);
    parentName.push(holder);
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
    const where = (bit: number): KhoRadixWalkErrorWhere => ({ level: 0, nodeIndex: li, nodePhys: lphys, entry: bit, field: "bitmap", offset: bit >>> 3 });
    const name = (bit: number, k: number): string => `${nodeName(0, li, lphys)}: bitmap bit ${bit} (byte +${hex(bit >>> 3)}) is key ${hex(k)}`;
    if (blk === undefined) {
      throw new KhoRadixWalkError("KEY_NO_ORDER", where(b0), `${name(b0, key0)}: no order bit (key 0)`);
    }
    const { phys: start, order } = blk;
    const bsize = 2 ** (PAGE_SHIFT + order);
    const end = start + count * bsize;
    const blockAt = (j: number): string => `order-${order} block [${hex(start + j * bsize)}, ${hex(start + (j + 1) * bsize)})`;
    if (start < ramBase || end > ramEnd) {
      const j = start < ramBase || start >= ramEnd ? 0 : Math.floor((ramEnd - start) / bsize);
      throw new KhoRadixWalkError("BLOCK_OUTSIDE_RAM", where(b0 + j), `${name(b0 + j, key0 + j)}: ${blockAt(j)} is not inside RAM [${hex(ramBase)}, ${hex(ramEnd)})`);
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
      throw new KhoRadixWalkError(
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
    flush(LEAF_BITS);
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
    for (let i = 0; i < TABLE_ENTRIES; i++) {
      const lo = view.getUint32(i * 8, true);
      const hi = view.getUint32(i * 8 + 4, true);
      if (lo === 0 && hi === 0) continue;
      const v = (BigInt(hi) << 32n) | BigInt(lo);
      const where: KhoRadixWalkErrorWhere = { level, nodeIndex: index, nodePhys: phys, entry: i, field: "table", offset: i * 8 };
      const holder = `${nodeName(level, index, phys)}: table[${i}] at +${hex(i * 8)}`;
      if (level === KHO_RADIX_ROOT_LEVEL && i >= ROOT_MAX_INDEX) {
        throw new KhoRadixWalkError(
          "KEY_WIDTH",
          where,
          `${holder} is ${hex(v)}: root index ${i} sets key bits above the order-0 bit ${KHO_ORDER_0_LOG2} (valid indices 0..${ROOT_MAX_INDEX - 1})`,
        );
      }
      const child = checkPtr(v, level - 1, where, holder);
      visit(child, level - 1, keyBase + i * shift);
    }
    path.pop();
  };

  const rootPhys = checkPtr(root, KHO_RADIX_ROOT_LEVEL, { field: KHO_RADIX_MEMORY_MAP_PROP }, KHO_RADIX_MEMORY_MAP_PROP);
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
    throw new KhoRadixWalkError(
      "BLOCK_OVERLAP",
      { level: 0, nodeIndex: nodeIndex.get(leaf.phys)!, nodePhys: leaf.phys, entry: bit, field: "bitmap", offset: bit >>> 3 },
      `${nodeName(0, nodeIndex.get(leaf.phys)!, leaf.phys)}: bitmap bit ${bit} (byte +${hex(bit >>> 3)}) is key ${hex(key)}: ` +
        `order-${b.order} block [${hex(b.start)}, ${hex(b.start + 2 ** (PAGE_SHIFT + b.order))}) overlaps ` +
        `order-${a.order} block [${hex(aBlock)}, ${hex(aBlock + asz)}) (key ${hex(aKey)})`,
    );
  }

  // Node pages are free memory once walked: none may lie inside a preserved block.
  nodes.forEach((phys, ni) => {
    let lo = 0;
    let hi = all.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (all[mid]!.start <= phys) lo = mid + 1;
      else hi = mid;
    }
    const r = all[lo - 1];
    if (r === undefined || r.end <= phys) return;
    const bsz = 2 ** (PAGE_SHIFT + r.order);
    const blk = r.start + Math.floor((phys - r.start) / bsz) * bsz;
    throw new KhoRadixWalkError(
      "NODE_IN_PRESERVED",
      parentOf[ni]!,
      `${parentName[ni]} is ${hex(phys)}: node ${ni} page lies inside preserved order-${r.order} block [${hex(blk)}, ${hex(blk + bsz)}) (key ${hex(khoRadixEncodeKey(blk, r.order))})`,
    );
  });

  const ranges: KhoMemRange[] = [];
  for (const r of all) {
    const data = khoDataFolio(r.order);
    const last = ranges[ranges.length - 1];
    if (last !== undefined && last.start + last.size === r.start && last.data === data) last.size += r.end - r.start;
    else ranges.push({ start: r.start, size: r.end - r.start, data });
  }
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
    const bsize = first ? 2 ** (PAGE_SHIFT + first.order) : 0;
    const data = first ? khoDataFolio(first.order) : 0;
    for (let w = 0; w < PAGE_SIZE / 4; w++) {
      const word = view.getUint32(w * 4, true);
      if (word === 0) continue;
      for (let b = 0; b < 32; b++) {
        if (((word >>> b) & 1) === 0) continue;
        if (first) {
          visit(first.phys + (w * 32 + b) * bsize, bsize, data);
        } else {
          const blk = khoRadixDecodeKey(w * 32 + b)!;
          visit(blk.phys, 2 ** (PAGE_SHIFT + blk.order), khoDataFolio(blk.order));
        }
      }
    }
  }
}

export const radixFormat: KhoFormat = {
  name: "radix",
  compatible: KHO_RADIX_COMPATIBLE,
  createTracker(): KhoTracker {
    return new KhoRadixTrack();
  },
  serialize(track: KhoTracker, mem: PhysMem, allocPage: AllocPage): KhoSerialized {
    const s = khoRadixSerialize(track, mem, allocPage);
    return { root: s.root, metadataPages: s.nodes, metadataBytes: s.nodes.length * PAGE_SIZE };
  },
  subtreeProp: KHO_RADIX_SUB_TREE_PROP,
  buildFdt(root: number, subtrees: readonly KhoSubtree[]): Uint8Array {
    const w = new FdtWriter();
    w.finishReservemap();
    w.beginNode("");
    w.propertyString("compatible", KHO_RADIX_COMPATIBLE);
    w.property(KHO_RADIX_MEMORY_MAP_PROP, u64leBytes(root));
    for (const s of subtrees) {
      w.beginNode(s.name);
      w.property(KHO_RADIX_SUB_TREE_PROP, u64leBytes(s.fdtPhys));
      w.endNode();
    }
    w.endNode();
    return w.finish();
  },
  matches(fdt: FdtRo): boolean {
    try {
      return fdt.getProp(0, KHO_RADIX_MEMORY_MAP_PROP) !== undefined;
    } catch {
      return false;
    }
  },
  readRoot(fdt: FdtRo): bigint {
    return readU64Prop(fdt, "/", KHO_RADIX_MEMORY_MAP_PROP, "no root node");
  },
  walk(mem: PhysMem, root: bigint, ctx: KhoWalkContext): KhoFormatWalk {
    const w = khoRadixWalk(mem, root, ctx);
    return {
      metadataPages: w.nodes,
      ranges: w.ranges,
      blockCount: w.blocks,
      forEachBlock(visit) {
        khoRadixForEachBlock(mem, w.leaves, visit);
      },
    };
  },
};
