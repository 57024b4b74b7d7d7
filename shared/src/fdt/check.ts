/*
 * Strict FDT validation, after libfdt's fdt_check_header() (fdt.c) and
 * fdt_check_full() (fdt_check.c), and stricter than both where the
 * Devicetree Specification says "shall".
 *
 * The format constants live here because this file is where they are
 * enforced; the writer and the reader import them.
 *
 * Every read goes through ByteReader and every length is checked against
 * its container (buffer, totalsize, block) before use, so a hostile blob can
 * at worst earn an FdtError, never a read past the buffer or an unbounded
 * loop: each walk advances by at least one 4-byte token per step.
 */
import { ByteReader, hex } from "../lib/bytes.js";
import { FdtError, fdtQuote } from "./errors.js";

/** Header magic, big-endian at offset 0. */
export const FDT_MAGIC = 0xd00dfeed;
/** sizeof(struct fdt_header) for version 17. */
export const FDT_HEADER_SIZE = 40;
/** The version libfdt's sequential writer stamps (FDT_LAST_SUPPORTED_VERSION). */
export const FDT_VERSION = 17;
/** The last_comp_version it stamps (FDT_FIRST_SUPPORTED_VERSION in fdt_finish). */
export const FDT_LAST_COMP_VERSION = 16;
/** Lowest version we read: 17 is the first with size_dt_struct. */
export const FDT_MIN_VERSION = 17;

export const FDT_BEGIN_NODE = 0x1;
export const FDT_END_NODE = 0x2;
export const FDT_PROP = 0x3;
export const FDT_NOP = 0x4;
export const FDT_END = 0x9;
/** Tokens are u32 and every token starts 4-aligned within the struct block. */
export const FDT_TAGSIZE = 4;
/** struct fdt_reserve_entry: u64 address, u64 size. */
export const FDT_RSV_ENTRY_SIZE = 16;
/** Deepest node nesting accepted (root is depth 1); real trees stay under 10. */
export const FDT_MAX_DEPTH = 64;

/** Byte offsets of the header fields. */
export const FDT_HDR = {
  magic: 0x00,
  totalsize: 0x04,
  offDtStruct: 0x08,
  offDtStrings: 0x0c,
  offMemRsvmap: 0x10,
  version: 0x14,
  lastCompVersion: 0x18,
  bootCpuidPhys: 0x1c,
  sizeDtStrings: 0x20,
  sizeDtStruct: 0x24,
} as const;

/** The ten header fields, as read (host numbers). */
export interface FdtHeader {
  magic: number;
  totalsize: number;
  offDtStruct: number;
  offDtStrings: number;
  offMemRsvmap: number;
  version: number;
  lastCompVersion: number;
  bootCpuidPhys: number;
  sizeDtStrings: number;
  sizeDtStruct: number;
}

/** Round @n up to the next multiple of 4 (FDT_TAGALIGN). */
export function fdtTagAlign(n: number): number {
  return (n + FDT_TAGSIZE - 1) & ~(FDT_TAGSIZE - 1);
}

/** Bytes as ISO-8859-1: lossless, so names compare byte for byte. */
export function latin1(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 4096) {
    s += String.fromCharCode(...bytes.subarray(i, Math.min(i + 4096, bytes.length)));
  }
  return s;
}

/**
 * fdtReadHeader - the header fields of @blob, unchecked beyond the buffer
 * holding 40 bytes (TRUNCATED otherwise).
 */
export function fdtReadHeader(blob: Uint8Array): FdtHeader {
  if (blob.length < FDT_HEADER_SIZE) {
    throw new FdtError("TRUNCATED", 0, `buffer of ${blob.length} bytes is shorter than the ${FDT_HEADER_SIZE}-byte header`);
  }
  const r = new ByteReader(blob);
  return {
    magic: r.u32be(FDT_HDR.magic),
    totalsize: r.u32be(FDT_HDR.totalsize),
    offDtStruct: r.u32be(FDT_HDR.offDtStruct),
    offDtStrings: r.u32be(FDT_HDR.offDtStrings),
    offMemRsvmap: r.u32be(FDT_HDR.offMemRsvmap),
    version: r.u32be(FDT_HDR.version),
    lastCompVersion: r.u32be(FDT_HDR.lastCompVersion),
    bootCpuidPhys: r.u32be(FDT_HDR.bootCpuidPhys),
    sizeDtStrings: r.u32be(FDT_HDR.sizeDtStrings),
    sizeDtStruct: r.u32be(FDT_HDR.sizeDtStruct),
  };
}

/* True when the non-empty ranges [a, a + alen) and [b, b + blen) share a byte. */
function overlaps(a: number, alen: number, b: number, blen: number): boolean {
  return alen > 0 && blen > 0 && a < b + blen && b < a + alen;
}

/*
 * One block [off, off + size) must start after the header and end inside
 * totalsize (libfdt's check_block_); @field is the header offset of its
 * off_* field, reported as the place of the fault.
 */
function checkBlock(h: FdtHeader, what: string, field: number, off: number, size: number): void {
  if (off < FDT_HEADER_SIZE) {
    throw new FdtError("BADLAYOUT", field, `${what} block at ${hex(off)} overlaps the ${FDT_HEADER_SIZE}-byte header`);
  }
  if (off + size > h.totalsize) {
    throw new FdtError(
      "TRUNCATED",
      field,
      `${what} block [${hex(off)}, ${hex(off + size)}) ends past totalsize ${hex(h.totalsize)}`,
    );
  }
}

/**
 * fdtCheckHeader - validate the header of @blob on its own.
 * @blob: the whole buffer the tree was found in
 *
 * Checks, in this order: the buffer holds a header; magic; the version pair
 * (version >= 17 and last_comp_version <= 17, which also gives libfdt's
 * last_comp_version <= version);
 * totalsize covers the header and fits in the buffer; rsvmap 8-aligned and
 * struct 4-aligned; rsvmap start, struct and strings blocks inside
 * [header end, totalsize]; struct and strings blocks disjoint.
 *
 * Does not look past the header (the reservation block's extent and the
 * token stream are fdtCheckFull's). Returns the header. Throws FdtError.
 */
export function fdtCheckHeader(blob: Uint8Array): FdtHeader {
  const h = fdtReadHeader(blob);
  if (h.magic !== FDT_MAGIC) {
    throw new FdtError("BADMAGIC", FDT_HDR.magic, `magic ${hex(h.magic)} is not ${hex(FDT_MAGIC)}`);
  }
  // libfdt takes version >= 2, but only v17+ headers carry size_dt_struct,
  // which every bound below relies on.
  if (h.version < FDT_MIN_VERSION) {
    throw new FdtError("BADVERSION", FDT_HDR.version, `version ${h.version} is below ${FDT_MIN_VERSION}`);
  }
  if (h.lastCompVersion > FDT_VERSION) {
    throw new FdtError(
      "BADVERSION",
      FDT_HDR.lastCompVersion,
      `last_comp_version ${h.lastCompVersion} is above ${FDT_VERSION}: this reader is too old`,
    );
  }
  if (h.totalsize < FDT_HEADER_SIZE) {
    throw new FdtError("TRUNCATED", FDT_HDR.totalsize, `totalsize ${hex(h.totalsize)} is smaller than the header`);
  }
  if (h.totalsize > blob.length) {
    throw new FdtError(
      "TRUNCATED",
      FDT_HDR.totalsize,
      `totalsize ${hex(h.totalsize)} is beyond the ${hex(blob.length)}-byte buffer`,
    );
  }
  // The spec wants 8-aligned u64 reservation entries and 4-aligned tokens.
  if (h.offMemRsvmap % 8 !== 0) {
    throw new FdtError("ALIGNMENT", FDT_HDR.offMemRsvmap, `off_mem_rsvmap ${hex(h.offMemRsvmap)} is not 8-aligned`);
  }
  if (h.offDtStruct % FDT_TAGSIZE !== 0) {
    throw new FdtError("ALIGNMENT", FDT_HDR.offDtStruct, `off_dt_struct ${hex(h.offDtStruct)} is not 4-aligned`);
  }
  checkBlock(h, "memory reservation", FDT_HDR.offMemRsvmap, h.offMemRsvmap, 0);
  checkBlock(h, "structure", FDT_HDR.offDtStruct, h.offDtStruct, h.sizeDtStruct);
  checkBlock(h, "strings", FDT_HDR.offDtStrings, h.offDtStrings, h.sizeDtStrings);
  if (overlaps(h.offDtStruct, h.sizeDtStruct, h.offDtStrings, h.sizeDtStrings)) {
    throw new FdtError(
      "BADLAYOUT",
      FDT_HDR.offDtStrings,
      `strings block [${hex(h.offDtStrings)}, ${hex(h.offDtStrings + h.sizeDtStrings)}) overlaps structure block ` +
        `[${hex(h.offDtStruct)}, ${hex(h.offDtStruct + h.sizeDtStruct)})`,
    );
  }
  return h;
}

/** One entry of the memory reservation block. */
export interface FdtReservation {
  addr: bigint;
  size: bigint;
}

/**
 * fdtReservations - the reservation entries before the terminator.
 * @blob: a blob whose header passed fdtCheckHeader
 * @h: that header
 *
 * Entries are read inside totalsize only; the terminator is the first entry
 * with size 0 (as libfdt's fdt_num_mem_rsv), and must have address 0 too.
 * Throws TRUNCATED when no terminator is found, BADVALUE for a terminator
 * with a non-zero address.
 */
export function fdtReservations(blob: Uint8Array, h: FdtHeader): FdtReservation[] {
  const r = new ByteReader(blob);
  const out: FdtReservation[] = [];
  for (let off = h.offMemRsvmap; ; off += FDT_RSV_ENTRY_SIZE) {
    if (off + FDT_RSV_ENTRY_SIZE > h.totalsize) {
      throw new FdtError(
        "TRUNCATED",
        off,
        `memory reservation block has no (0, 0) terminator before totalsize ${hex(h.totalsize)}`,
      );
    }
    const addr = r.u64be(off);
    const size = r.u64be(off + 8);
    if (size === 0n) {
      if (addr !== 0n) {
        throw new FdtError("BADVALUE", off, `reservation terminator has size 0 but address ${hex(addr)}`);
      }
      return out;
    }
    out.push({ addr, size });
  }
}

/** A decoded structure-block token; offsets are relative to the struct block. */
export type FdtToken =
  | { tag: typeof FDT_BEGIN_NODE; off: number; next: number; name: string }
  | { tag: typeof FDT_PROP; off: number; next: number; len: number; nameoff: number; valueOff: number }
  | { tag: typeof FDT_END_NODE | typeof FDT_NOP | typeof FDT_END; off: number; next: number };

/**
 * fdtNextTag - decode the token at struct offset @off, as libfdt's
 * fdt_next_tag(), bounds-checked against the structure block.
 * @blob: a blob whose header passed fdtCheckHeader
 * @h: that header
 * @off: 4-aligned offset relative to off_dt_struct
 *
 * Returns the token and the (4-aligned) offset of the next one. Throws
 * TRUNCATED when the token, a node name's NUL or a property value runs past
 * the struct block, BADSTRUCTURE for an unknown token.
 */
export function fdtNextTag(blob: Uint8Array, h: FdtHeader, off: number): FdtToken {
  const r = new ByteReader(blob);
  const base = h.offDtStruct;
  const size = h.sizeDtStruct;
  const at = base + off;
  if (off + FDT_TAGSIZE > size) {
    throw new FdtError("TRUNCATED", at, `structure block (size ${hex(size)}) ends without FDT_END`);
  }
  const tag = r.u32be(at);
  switch (tag) {
    case FDT_BEGIN_NODE: {
      const nameStart = off + FDT_TAGSIZE;
      const nul = blob.subarray(base + nameStart, base + size).indexOf(0);
      if (nul < 0) {
        throw new FdtError("TRUNCATED", at, "node name is not NUL-terminated inside the structure block");
      }
      const name = latin1(r.slice(base + nameStart, nul));
      return { tag, off, next: fdtTagAlign(nameStart + nul + 1), name };
    }
    case FDT_PROP: {
      if (off + 12 > size) {
        throw new FdtError("TRUNCATED", at, "property header runs past the structure block");
      }
      const len = r.u32be(at + 4);
      const nameoff = r.u32be(at + 8);
      const valueOff = off + 12;
      if (valueOff + len > size) {
        throw new FdtError(
          "TRUNCATED",
          at,
          `property value of ${hex(len)} bytes runs past the structure block (size ${hex(size)})`,
        );
      }
      return { tag, off, next: fdtTagAlign(valueOff + len), len, nameoff, valueOff };
    }
    case FDT_END_NODE:
    case FDT_NOP:
    case FDT_END:
      return { tag, off, next: off + FDT_TAGSIZE };
    default:
      throw new FdtError("BADSTRUCTURE", at, `unknown token ${hex(tag)}`);
  }
}

/**
 * fdtPropName - the name a property's @nameoff points at in the strings
 * block, as libfdt's fdt_get_string(): the offset must lie inside the block
 * and the name must be NUL-terminated inside it. @at is the property token's
 * absolute offset, reported on failure (BADSTRUCTURE).
 */
export function fdtPropName(blob: Uint8Array, h: FdtHeader, nameoff: number, at: number): string {
  if (nameoff >= h.sizeDtStrings) {
    throw new FdtError(
      "BADSTRUCTURE",
      at,
      `property nameoff ${hex(nameoff)} outside strings block (size ${hex(h.sizeDtStrings)})`,
    );
  }
  const start = h.offDtStrings + nameoff;
  const nul = blob.subarray(start, h.offDtStrings + h.sizeDtStrings).indexOf(0);
  if (nul < 0) {
    throw new FdtError(
      "BADSTRUCTURE",
      at,
      `property name at nameoff ${hex(nameoff)} is not NUL-terminated inside the strings block`,
    );
  }
  return latin1(new ByteReader(blob).slice(start, nul));
}

/* What the walk remembers about each open node. */
interface OpenNode {
  sawChild: boolean;
  props: Set<string>;
  children: Set<string>;
}

/**
 * fdtCheckFull - validate a whole blob, strictly.
 * @blob: the buffer the tree was found in (it may extend past totalsize)
 *
 * fdtCheckHeader, then: the reservation block ends with a (0, 0) entry
 * inside totalsize and overlaps neither the structure nor the strings
 * block; the token stream is one root node (named "") followed directly by
 * exactly one FDT_END, the last token of the structure block; no
 * FDT_END_NODE or property outside a node; a node's properties come before
 * its subnodes;
 * every nameoff lands inside the strings block on a NUL-terminated name;
 * non-root node names are non-empty and without '/'; no two properties or
 * sibling nodes share a name; nesting at most FDT_MAX_DEPTH. FDT_NOP is
 * accepted anywhere from before the root to before the root's END_NODE.
 *
 * Anything this accepts, libfdt's fdt_check_full() accepts too.
 * Throws FdtError naming the first rule broken and where.
 */
export function fdtCheckFull(blob: Uint8Array): void {
  const h = fdtCheckHeader(blob);
  const nrsv = fdtReservations(blob, h).length;
  const rsvLen = (nrsv + 1) * FDT_RSV_ENTRY_SIZE;
  if (
    overlaps(h.offMemRsvmap, rsvLen, h.offDtStruct, h.sizeDtStruct) ||
    overlaps(h.offMemRsvmap, rsvLen, h.offDtStrings, h.sizeDtStrings)
  ) {
    throw new FdtError(
      "BADLAYOUT",
      FDT_HDR.offMemRsvmap,
      `memory reservation block [${hex(h.offMemRsvmap)}, ${hex(h.offMemRsvmap + rsvLen)}) overlaps the structure or strings block`,
    );
  }

  const stack: OpenNode[] = [];
  let seenRoot = false;
  let off = 0;
  // Each step advances at least 4 bytes, so this ends within size/4 steps.
  for (;;) {
    const t = fdtNextTag(blob, h, off);
    const at = h.offDtStruct + off;
    const top = stack[stack.length - 1];
    // As libfdt's expect_end: once the root closes only FDT_END may follow.
    if (seenRoot && top === undefined && t.tag !== FDT_END) {
      const what = t.tag === FDT_BEGIN_NODE ? "second root node" : `token ${hex(t.tag)} after the root node closed`;
      throw new FdtError("BADSTRUCTURE", at, what);
    }
    switch (t.tag) {
      case FDT_BEGIN_NODE:
        if (top === undefined) {
          if (t.name !== "") throw new FdtError("BADSTRUCTURE", at, `root node name ${fdtQuote(t.name)} is not empty`);
          seenRoot = true;
        } else {
          if (t.name === "") throw new FdtError("BADSTRUCTURE", at, "empty node name below the root");
          if (t.name.includes("/")) throw new FdtError("BADSTRUCTURE", at, `node name ${fdtQuote(t.name)} contains '/'`);
          if (top.children.has(t.name)) throw new FdtError("BADSTRUCTURE", at, `duplicate node name ${fdtQuote(t.name)}`);
          top.children.add(t.name);
          top.sawChild = true;
        }
        if (stack.length >= FDT_MAX_DEPTH) {
          throw new FdtError("BADSTRUCTURE", at, `nodes nested deeper than ${FDT_MAX_DEPTH}`);
        }
        stack.push({ sawChild: false, props: new Set(), children: new Set() });
        break;
      case FDT_END_NODE:
        if (top === undefined) throw new FdtError("BADSTRUCTURE", at, "FDT_END_NODE outside any node");
        stack.pop();
        break;
      case FDT_PROP: {
        if (top === undefined) throw new FdtError("BADSTRUCTURE", at, "property outside any node");
        const name = fdtPropName(blob, h, t.nameoff, at);
        if (top.sawChild) throw new FdtError("BADSTRUCTURE", at, `property ${fdtQuote(name)} after a subnode`);
        if (top.props.has(name)) throw new FdtError("BADSTRUCTURE", at, `duplicate property ${fdtQuote(name)}`);
        top.props.add(name);
        break;
      }
      case FDT_NOP:
        break;
      case FDT_END:
        if (top !== undefined) throw new FdtError("BADSTRUCTURE", at, `FDT_END with ${stack.length} node(s) open`);
        if (!seenRoot) throw new FdtError("BADSTRUCTURE", at, "FDT_END before any root node");
        if (t.next !== h.sizeDtStruct) {
          throw new FdtError(
            "BADSTRUCTURE",
            at,
            `${hex(h.sizeDtStruct - t.next)} bytes after FDT_END in the structure block`,
          );
        }
        return;
    }
    off = t.next;
  }
}
