/*
 * The one metadata walk: what every format's successor walk uses to read
 * untrusted memory. A format's walk claims each metadata object (chunk,
 * bitmap, radix node) through KhoMetaWalk.claim() before reading it, bounds
 * every count with bound() before using it, checks every preserved block
 * against RAM and scratch, and finally has checkNotPreserved() make sure no
 * metadata object lies in preserved memory (metadata is freed once walked).
 * The first problem is thrown as one KhoWalkError: a code from one list and
 * a location of one shape (object, index, phys, field, offset, entry, bit).
 *
 * The kernel's own walks trust the predecessor (kho_mem_deserialize() in
 * kernel/kexec_handover.c at 00c010e130e58301db2ea0cec1eadc931e1cb8cf reads
 * chunk->hdr.next and the bitmaps unchecked); khosim's successor does not.
 */
import { PAGE_SHIFT, PAGE_SIZE } from "../abi/page.js";
import { TWO53 } from "../lib/bits.js";
import { BTree } from "../lib/btree.js";
import { hex } from "../lib/bytes.js";
import type { PhysMem } from "../mm/physmem.js";
import type { KhoMemRange } from "./track.js";

/**
 * Base class of every metadata walk error: the successor treats any of them
 * as "the metadata is invalid, boot without KHO".
 */
export class KhoMetadataError extends Error {}

/** What the successor knows before walking: its RAM and the scratch areas. */
export interface KhoWalkContext {
  ramBase: number;
  ramSize: number;
  scratch: readonly { addr: number; size: number }[];
}

/**
 * Highest folio order the walk accepts: PAGE_SIZE << order must fit a u64.
 * Whether the successor supports the order is for the restore step to judge.
 */
export const KHO_WALK_MAX_ORDER = 63 - PAGE_SHIFT;

/** Kinds of metadata object. */
export type KhoWalkObject = "chunk" | "bitmap" | "node";

/** What a walk found wrong: one list for every format. */
export type KhoWalkErrorCode =
  /* A pointer to a metadata object: not aligned, not wholly in RAM (or 2^53 or more), in scratch. */
  | "CHUNK_UNALIGNED" | "BITMAP_UNALIGNED" | "NODE_UNALIGNED"
  | "CHUNK_OUTSIDE_RAM" | "BITMAP_OUTSIDE_RAM" | "NODE_OUTSIDE_RAM"
  | "CHUNK_IN_SCRATCH" | "BITMAP_IN_SCRATCH" | "NODE_IN_SCRATCH"
  /* ... leads to an object already walked: a list cycle, a bitmap used twice, a radix cycle or shared node. */
  | "CHUNK_CYCLE" | "BITMAP_REUSED" | "NODE_CYCLE" | "NODE_SHARED"
  /* ... to an object overlapping another metadata object. */
  | "METADATA_OVERLAP"
  /* More objects than RAM has pages (a backstop: cannot happen without a cycle or overlap). */
  | "METADATA_LIMIT"
  /* A metadata object lies in preserved memory (it is freed once walked). */
  | "CHUNK_IN_PRESERVED" | "BITMAP_IN_PRESERVED" | "NODE_IN_PRESERVED"
  /* A count or order above its bound: num_ranges, num_elms, a chunk's order, a root index. */
  | "NUM_RANGES" | "NUM_ELMS" | "CHUNK_ORDER" | "KEY_WIDTH"
  /* A range entry (ranges, posted). */
  | "RANGE_UNALIGNED" | "RANGE_EMPTY" | "RANGE_OVERFLOW" | "RANGE_OUTSIDE_RAM" | "RANGE_IN_SCRATCH"
  | "RANGE_ORDER" | "RANGE_OVERLAP" | "RANGE_DATA" | "FOLIO_ORDER" | "FOLIO_UNALIGNED"
  /* A bitmap entry's phys_start (bitmaps), a key without order bit (radix). */
  | "START_UNALIGNED" | "START_OUTSIDE_RAM" | "KEY_NO_ORDER"
  /* A preserved block (a set bit): not wholly in RAM, in scratch, overlapping another. */
  | "BLOCK_OUTSIDE_RAM" | "BLOCK_IN_SCRATCH" | "BLOCK_OVERLAP";

/** Where a {@link KhoWalkError} was found; absent fields do not apply. */
export interface KhoWalkWhere {
  /** Kind of the object holding the bad field (or of the bad object itself). */
  object?: KhoWalkObject;
  /** Its index in walk order (chunk list index, radix node index). */
  index?: number;
  /** Its phys. */
  phys?: number;
  /** A bitmaps chunk's hdr.order, once read. */
  order?: number;
  /** A radix node's level: 5 (root) .. 1 tables, 0 leaf. */
  level?: number;
  /**
   * Entry inside the object (ranges[i], bitmaps[i], table[i]); for
   * CHUNK_IN_PRESERVED the index of the covering range in the walk's list.
   */
  entry?: number;
  /** Name of the field: "metadata", "next", "num_ranges", "start", "bitmap", "bit", "table"... */
  field?: string;
  /** Byte offset of the field inside the object; for a bit, of its byte inside the bitmap or leaf. */
  offset?: number;
  /** For field "bit" (bitmaps) or "bitmap" (radix leaf): the bit number. */
  bit?: number;
}

/** Thrown by every format's walk on the first invalid value. */
export class KhoWalkError extends KhoMetadataError implements KhoWalkWhere {
  readonly object?: KhoWalkObject;
  readonly index?: number;
  readonly phys?: number;
  readonly order?: number;
  readonly level?: number;
  readonly entry?: number;
  readonly field?: string;
  readonly offset?: number;
  readonly bit?: number;

  constructor(
    readonly code: KhoWalkErrorCode,
    where: KhoWalkWhere,
    message: string,
  ) {
    super(message);
    this.name = "KhoWalkError";
    for (const [k, v] of Object.entries(where)) if (v !== undefined) Object.assign(this, { [k]: v });
  }
}

/** khoScratchHit - the scratch area [start, end) overlaps, if any. */
export function khoScratchHit(ctx: KhoWalkContext, start: number, end: number): { addr: number; size: number } | undefined {
  for (const s of ctx.scratch) {
    if (start < s.addr + s.size && s.addr < end) return s;
  }
  return undefined;
}

/** lastRangeAtOrBelow - index of the last range whose start is <= @addr, or -1 (@ranges ascending). */
export function lastRangeAtOrBelow(ranges: readonly KhoMemRange[], addr: number): number {
  let lo = 0;
  let hi = ranges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ranges[mid]!.start <= addr) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/** A claimed metadata object. */
export interface KhoMetaObject {
  kind: KhoWalkObject;
  /** Index among all claimed objects. */
  index: number;
  phys: number;
  size: number;
  /** How its own messages name it ("chunk 3", "leaf", "bitmap"). */
  label: string;
  /** How other messages name it ("node 4", "the bitmap of chunk 0 bitmaps[2]"); label when absent. */
  ref?: string;
  /** The field that pointed at it, and its name for messages. */
  holder: KhoWalkWhere;
  holderName: string;
}

/**
 * A claimed object. Its names are read from its claim when a message needs
 * them, so a claim may compute them lazily (getters): a walk of 6,169
 * well-formed chunks then formats none of them.
 */
class MetaObject implements KhoMetaObject {
  constructor(
    readonly kind: KhoWalkObject,
    readonly index: number,
    readonly phys: number,
    readonly size: number,
    private readonly claim: KhoMetaClaim,
  ) {}
  get label(): string {
    return this.claim.label;
  }
  get ref(): string | undefined {
    return this.claim.ref;
  }
  get holder(): KhoWalkWhere {
    return this.claim.holder;
  }
  get holderName(): string {
    return this.claim.holderName;
  }
}

/** What claim() needs to know about the object a pointer leads to (the names may be getters, read only for messages). */
export interface KhoMetaClaim {
  kind: KhoWalkObject;
  size: number;
  /** Required alignment (PAGE_SIZE when absent). */
  align?: number;
  label: string;
  ref?: string;
  /** The field holding the pointer, and how messages name it ("chunk 0 at 0x...: next at +0x0"). */
  holder: KhoWalkWhere;
  holderName: string;
  /** The error when the pointer leads to an object already claimed (default: KIND_CYCLE). */
  onSeen?: (prev: KhoMetaObject) => [KhoWalkErrorCode, string];
}

const KIND_CODE = { chunk: "CHUNK", bitmap: "BITMAP", node: "NODE" } as const;
const SEEN_CODE = { chunk: "CHUNK_CYCLE", bitmap: "BITMAP_REUSED", node: "NODE_CYCLE" } as const;

/**
 * struct KhoMetaWalk - one successor walk over untrusted metadata.
 *
 * Tracks every claimed object by address so that cycles, sharing and
 * overlap are found as they are followed; memory grows with objects only.
 */
export class KhoMetaWalk {
  readonly ramBase: number;
  readonly ramEnd: number;
  /** Every claimed object, in claim order. */
  readonly objects: KhoMetaObject[] = [];
  /* Claimed objects by address: built when the first claim leaves the fast path. */
  private byAddr: BTree<number, KhoMetaObject> | undefined;
  /* [lo, hi) spans every claimed object. */
  private lo = Infinity;
  private hi = -Infinity;
  private readonly maxObjects: number;

  constructor(readonly ctx: KhoWalkContext) {
    this.ramBase = ctx.ramBase;
    this.ramEnd = ctx.ramBase + ctx.ramSize;
    this.maxObjects = Math.floor(ctx.ramSize / PAGE_SIZE);
  }

  /**
   * claim - validate the pointer @ptr to a metadata object before it is read.
   * @ptr: the raw u64 read from the holder field
   * @c: the object's kind, size, alignment, names and holder
   *
   * The object must be aligned, below 2^53 and wholly in RAM, clear of
   * scratch, not claimed before and clear of every other claimed object; at
   * most one object per page of RAM is claimed.
   *
   * Return: the object's phys (a safe integer).
   */
  claim(ptr: bigint, c: KhoMetaClaim): number {
    /*
     * Fast path, plain numbers: an aligned object inside RAM, clear of the
     * scratch areas, past the span of every object claimed so far (so it can
     * be neither a cycle nor an overlap) and under the limit, as every
     * well-formed list of chunks allocated in order is. Anything else takes
     * claimSlow(), which judges it in the documented order and words the error.
     */
    if (ptr < TWO53) {
      const phys = Number(ptr);
      const end = phys + c.size;
      if (
        phys % (c.align ?? PAGE_SIZE) === 0 && phys >= this.ramBase && end <= this.ramEnd && (end <= this.lo || phys >= this.hi) &&
        this.objects.length < this.maxObjects && khoScratchHit(this.ctx, phys, end) === undefined
      ) {
        this.record(phys, c);
        return phys;
      }
    }
    return this.claimSlow(ptr, c);
  }

  /* Record a claimed object (all checks passed). */
  private record(phys: number, c: KhoMetaClaim): void {
    const o = new MetaObject(c.kind, this.objects.length, phys, c.size, c);
    this.byAddr?.set(phys, o);
    this.objects.push(o);
    if (phys < this.lo) this.lo = phys;
    if (phys + c.size > this.hi) this.hi = phys + c.size;
  }

  /* claim() with every check in order and its message; the B+ tree of objects is built on first need. */
  private claimSlow(ptr: bigint, c: KhoMetaClaim): number {
    if (this.byAddr === undefined) {
      this.byAddr = new BTree<number, KhoMetaObject>();
      for (const o of this.objects) this.byAddr.set(o.phys, o);
    }
    const K = KIND_CODE[c.kind];
    const bad = (code: KhoWalkErrorCode, why: string): KhoWalkError => new KhoWalkError(code, c.holder, `${c.holderName} is ${hex(ptr)}: ${why}`);
    const align = c.align ?? PAGE_SIZE;
    if (ptr % BigInt(align) !== 0n) {
      throw bad(`${K}_UNALIGNED`, `${c.label} address is not ${align === PAGE_SIZE ? "page aligned" : `aligned to its ${align}-byte size`}`);
    }
    const size = BigInt(c.size);
    const noun = c.size === PAGE_SIZE ? `${c.label} page` : `${c.label} [${hex(ptr)}, ${hex(ptr + size)})`;
    if (ptr >= TWO53 || ptr < BigInt(this.ramBase) || ptr + size > BigInt(this.ramEnd)) {
      throw bad(`${K}_OUTSIDE_RAM`, `${noun} is outside RAM [${hex(this.ramBase)}, ${hex(this.ramEnd)})`);
    }
    const phys = Number(ptr);
    const end = phys + c.size;
    const s = khoScratchHit(this.ctx, phys, end);
    if (s !== undefined) throw bad(`${K}_IN_SCRATCH`, `${noun} overlaps scratch [${hex(s.addr)}, ${hex(s.addr + s.size)})`);
    const prev = this.byAddr.get(phys);
    // The same kind again is a cycle (or sharing); another kind at the same address is an overlap.
    if (prev !== undefined && prev.kind === c.kind) {
      if (c.onSeen !== undefined) throw bad(...c.onSeen(prev));
      throw bad(SEEN_CODE[c.kind], `that is ${prev.ref ?? prev.label} again (cycle)`);
    }
    const lower = this.byAddr.getPairOrNextLower(phys)?.[1];
    const higher = this.byAddr.nextHigherPair(phys)?.[1];
    const other = lower !== undefined && lower.phys + lower.size > phys ? lower : higher !== undefined && higher.phys < end ? higher : undefined;
    if (other !== undefined) {
      throw bad("METADATA_OVERLAP", `${noun} overlaps ${other.ref ?? other.label} [${hex(other.phys)}, ${hex(other.phys + other.size)})`);
    }
    if (this.objects.length >= this.maxObjects) throw bad("METADATA_LIMIT", `more metadata objects than RAM has pages (${this.maxObjects})`);
    this.record(phys, c);
    return phys;
  }

  /**
   * bound - throw @code unless the count @v read at @field is at most @max.
   * @at: where the field is, and how messages name its object ("chunk 1 at 0x...")
   * @relation: "more than" (counts) or "above" (orders, indices)
   *
   * Every count read from metadata goes through here before it is used.
   */
  bound(v: bigint | number, max: number, code: KhoWalkErrorCode, at: KhoWalkWhere & { field: string; offset: number }, name: string, relation = "more than"): number {
    if (v <= max) return Number(v);
    throw new KhoWalkError(code, at, `${name}: ${at.field} at +${hex(at.offset)} is ${typeof v === "bigint" ? hex(v) : v}, ${relation} ${max}`);
  }

  /**
   * blockFault - why the preserved block [@start, @end) may not be reserved:
   * "OUTSIDE_RAM", a scratch area it overlaps, or undefined when it is fine.
   * Callers name the block (entry, bit, key) in the message.
   */
  blockFault(start: number, end: number): "OUTSIDE_RAM" | { addr: number; size: number } | undefined {
    if (start < this.ramBase || end > this.ramEnd) return "OUTSIDE_RAM";
    return khoScratchHit(this.ctx, start, end);
  }

  /**
   * checkNotPreservedBy - metadata is free memory once walked: throw
   * KIND_IN_PRESERVED for the first claimed object that overlaps a preserved
   * range (ascending, non-overlapping; @lastAtOrBelow(addr) gives the index
   * of the last one starting at or below addr, -1 for none, and @at(i) range
   * i), with the message @say gives and the object's holder as location
   * unless @say gives one.
   */
  checkNotPreservedBy(
    lastAtOrBelow: (addr: number) => number,
    at: (ri: number) => KhoMemRange,
    say: (o: KhoMetaObject, r: KhoMemRange, ri: number) => { where?: KhoWalkWhere; message: string },
  ): void {
    for (const o of this.objects) {
      const ri = lastAtOrBelow(o.phys + o.size - 1);
      if (ri < 0) continue;
      const r = at(ri);
      if (r.start + r.size <= o.phys) continue;
      const { where, message } = say(o, r, ri);
      throw new KhoWalkError(`${KIND_CODE[o.kind]}_IN_PRESERVED`, where ?? o.holder, message);
    }
  }

  /** checkNotPreserved - as checkNotPreservedBy, for @ranges as objects. */
  checkNotPreserved(ranges: readonly KhoMemRange[], say: (o: KhoMetaObject, r: KhoMemRange, ri: number) => { where?: KhoWalkWhere; message: string }): void {
    for (const o of this.objects) {
      const ri = lastRangeAtOrBelow(ranges, o.phys + o.size - 1);
      if (ri < 0) continue;
      const r = ranges[ri]!;
      if (r.start + r.size <= o.phys) continue;
      const { where, message } = say(o, r, ri);
      throw new KhoWalkError(`${KIND_CODE[o.kind]}_IN_PRESERVED`, where ?? o.holder, message);
    }
  }
}

/*
 * Bytes a KhoMetaReader reads at once: one page. Windows of 16 and 64 pages
 * made the 48 GiB bitmaps walk no faster (22 ms at 1 and 16 pages, 30 ms at
 * 64; 7 interleaved runs on 2026-12-01), so each page is read on its own.
 */
const META_WINDOW = 1 * PAGE_SIZE;

/**
 * struct KhoMetaReader - reads metadata objects for a walk through aligned
 * windows of RAM, one PhysMem read per window.
 *
 * Metadata pages a predecessor allocates one after the other sit next to
 * each other (ascending or descending), so a window larger than an object
 * would also read the next ones (META_WINDOW says why it is one page).
 * Objects are returned as views of the window (a PhysMem read is a
 * copy, so nothing changes them later); an object crossing a window edge is
 * read on its own. Callers claim an object before reading it; reading the
 * rest of its window reads RAM only, never judges it.
 */
export class KhoMetaReader {
  private base = -1;
  private win: Uint8Array | undefined;

  constructor(
    private readonly mem: PhysMem,
    private readonly ramBase: number,
    private readonly ramEnd: number,
  ) {}

  /** read - [@phys, @phys + @len), inside RAM: a view of its window, or a copy when it crosses one. */
  read(phys: number, len: number): Uint8Array {
    const off = phys - this.base;
    if (this.win !== undefined && off >= 0 && off + len <= this.win.length) return this.win.subarray(off, off + len);
    const start = this.ramBase + Math.floor((phys - this.ramBase) / META_WINDOW) * META_WINDOW;
    const end = Math.min(start + META_WINDOW, this.ramEnd);
    if (phys + len > end) return this.mem.read(phys, len);
    let win: Uint8Array;
    try {
      win = this.mem.read(start, end - start);
    } catch {
      // The window is unreadable (a short image?): the object alone, which throws if it is.
      return this.mem.read(phys, len);
    }
    this.base = start;
    this.win = win;
    return win.subarray(phys - start, phys - start + len);
  }
}
