/*
 * Sequential FDT writer, after libfdt's fdt_sw.c, producing the very bytes
 * the kernel's fdt_create() / fdt_finish_reservemap() / fdt_begin_node() /
 * fdt_property() / fdt_end_node() / fdt_finish() sequence produces:
 *
 *	0x00  header (40 bytes, big-endian), version 17, last_comp_version 16,
 *	      boot_cpuid_phys 0
 *	0x28  8 zero bytes: fdt_create() puts the reservation block at
 *	      FDT_ALIGN(sizeof(header), sizeof(struct fdt_reserve_entry)) = 0x30
 *	0x30  reservation entries, then the (0, 0) terminator
 *	      structure block, ending with FDT_END
 *	      strings block; totalsize is exactly its end (no padding)
 *
 * (dtc and fdt_pack() put the reservation block at 0x28 instead; fdtPack()
 * below gives that layout.)
 *
 * The strings block is built the way libfdt builds it: growing downwards
 * from the end of the buffer, so the final table lists names in reverse
 * order of first use, and a new name reuses any existing occurrence of
 * itself including as the tail of a longer name (fdt_find_string_()
 * memcmp()s name + NUL at every position, first position wins).
 */
import { ByteWriter, hex } from "../lib/bytes.js";
import {
  FDT_BEGIN_NODE,
  FDT_END,
  FDT_END_NODE,
  FDT_HDR,
  FDT_HEADER_SIZE,
  FDT_LAST_COMP_VERSION,
  FDT_MAGIC,
  FDT_MAX_DEPTH,
  FDT_PROP,
  FDT_RSV_ENTRY_SIZE,
  FDT_TAGSIZE,
  FDT_VERSION,
  fdtCheckFull,
  fdtCheckHeader,
  fdtReservations,
  fdtTagAlign,
} from "./check.js";
import { FdtError, fdtQuote } from "./errors.js";
import type { FdtNode } from "./ro.js";

/** Where fdt_create() puts the reservation block: ALIGN(40, 16). */
export const FDT_SW_RSVMAP_OFFSET = 0x30;
/** Where dtc and fdt_pack() put it: ALIGN(40, 8). */
export const FDT_PACKED_RSVMAP_OFFSET = 0x28;

const U64_LIMIT = 1n << 64n;
const utf8 = new TextEncoder();

/* Names go in as bytes 0x20..0x7e so that reading them back is lossless. */
function asciiName(what: string, name: string, at: number): Uint8Array {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) {
      throw new FdtError("BADVALUE", at, `${what} ${fdtQuote(name)} has character ${hex(c)} outside printable ASCII`);
    }
  }
  const b = new Uint8Array(name.length);
  for (let i = 0; i < name.length; i++) b[i] = name.charCodeAt(i);
  return b;
}

function u64(what: string, v: bigint | number, at: number): bigint {
  if (typeof v === "number" && !Number.isSafeInteger(v)) {
    throw new FdtError("BADVALUE", at, `${what} ${v} is not a safe integer`);
  }
  const b = BigInt(v);
  if (b < 0n || b >= U64_LIMIT) throw new FdtError("BADVALUE", at, `${what} ${hex(b)} does not fit in a u64`);
  return b;
}

function u32(what: string, v: number, at: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new FdtError("BADVALUE", at, `${what} ${v} does not fit in a u32 cell`);
  }
  return v;
}

/* A byte buffer that doubles when full. */
class Growable {
  bytes = new Uint8Array(256);
  length = 0;

  /* Reserve @n zeroed bytes at the end; returns their offset. */
  grab(n: number): number {
    if (this.length + n > this.bytes.length) {
      let cap = this.bytes.length * 2;
      while (cap < this.length + n) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.bytes.subarray(0, this.length));
      this.bytes = next;
    }
    const off = this.length;
    this.length += n;
    return off;
  }

  writer(): ByteWriter {
    return new ByteWriter(this.bytes);
  }
}

interface OpenNode {
  name: string;
  sawChild: boolean;
  props: Set<string>;
  children: Set<string>;
}

/**
 * FdtWriter - build a flattened device tree front to back, as libfdt's
 * sequential-write API does.
 *
 * States, as in fdt_sw.c: reservations (addReservation, finishReservemap)
 * -> structure (beginNode, property*, endNode) -> finished (finish). A call
 * in the wrong state throws BADSTATE; a call that would break the tree's
 * grammar (property outside a node or after a subnode, second root,
 * unbalanced endNode, duplicate names, nesting beyond FDT_MAX_DEPTH) throws
 * BADSTRUCTURE; a malformed name or value throws BADVALUE. So whatever
 * finish() returns passes fdtCheckFull().
 *
 * Error offsets are where the offending item would have gone in the blob.
 */
export class FdtWriter {
  private state: "memrsv" | "struct" | "done" = "memrsv";
  private readonly rsv: { addr: bigint; size: bigint }[] = [];
  private readonly struct = new Growable();
  /* Strings in order of addition; the blob holds them reversed. */
  private readonly strings: Uint8Array[] = [];
  private stringsSize = 0;
  /* Struct positions of nameoff fields, and their (negative) offset from the table's end. */
  private readonly nameoffs: { pos: number; fromEnd: number }[] = [];
  private readonly stack: OpenNode[] = [];
  private rootDone = false;

  /* Absolute offset where the next item goes (for error reports). */
  private cursor(): number {
    const structOff = FDT_SW_RSVMAP_OFFSET + FDT_RSV_ENTRY_SIZE * (this.rsv.length + (this.state === "memrsv" ? 0 : 1));
    return this.state === "memrsv" ? structOff : structOff + this.struct.length;
  }

  private need(state: "memrsv" | "struct", call: string): void {
    if (this.state !== state) {
      throw new FdtError("BADSTATE", this.cursor(), `${call}() in ${this.state} state (needs ${state})`);
    }
  }

  /**
   * addReservation - add a memory reservation entry (fdt_add_reservemap_entry).
   * @addr: start, u64
   * @size: length, u64; 0 would read as the terminator, so it is refused
   */
  addReservation(addr: bigint | number, size: bigint | number): void {
    this.need("memrsv", "addReservation");
    const a = u64("reservation address", addr, this.cursor());
    const s = u64("reservation size", size, this.cursor());
    if (s === 0n) throw new FdtError("BADVALUE", this.cursor(), "reservation of size 0 would end the block early");
    this.rsv.push({ addr: a, size: s });
  }

  /** finishReservemap - end the reservation block (fdt_finish_reservemap). */
  finishReservemap(): void {
    this.need("memrsv", "finishReservemap");
    this.state = "struct";
  }

  /**
   * beginNode - open a node (fdt_begin_node).
   * @name: "" for the root; otherwise non-empty printable ASCII without '/'
   */
  beginNode(name: string): void {
    this.need("struct", "beginNode");
    const at = this.cursor();
    const top = this.stack[this.stack.length - 1];
    const bytes = asciiName("node name", name, at);
    if (top === undefined) {
      if (this.rootDone) throw new FdtError("BADSTRUCTURE", at, "second root node");
      if (name !== "") throw new FdtError("BADVALUE", at, `root node name ${fdtQuote(name)} is not empty`);
      this.rootDone = true;
    } else {
      if (name === "" || name.includes("/")) {
        throw new FdtError("BADVALUE", at, `node name ${fdtQuote(name)} is empty or contains '/'`);
      }
      if (top.children.has(name)) throw new FdtError("BADSTRUCTURE", at, `duplicate node name ${fdtQuote(name)}`);
      top.children.add(name);
      top.sawChild = true;
    }
    if (this.stack.length >= FDT_MAX_DEPTH) {
      throw new FdtError("BADSTRUCTURE", at, `nodes nested deeper than ${FDT_MAX_DEPTH}`);
    }
    const off = this.struct.grab(FDT_TAGSIZE + fdtTagAlign(bytes.length + 1));
    const w = this.struct.writer();
    w.u32be(off, FDT_BEGIN_NODE);
    w.bytesAt(off + FDT_TAGSIZE, bytes);
    this.stack.push({ name, sawChild: false, props: new Set(), children: new Set() });
  }

  /** endNode - close the innermost open node (fdt_end_node). */
  endNode(): void {
    this.need("struct", "endNode");
    if (this.stack.length === 0) throw new FdtError("BADSTRUCTURE", this.cursor(), "endNode() with no open node");
    const off = this.struct.grab(FDT_TAGSIZE);
    this.struct.writer().u32be(off, FDT_END_NODE);
    this.stack.pop();
  }

  /*
   * fdt_find_add_string_(): reuse the first occurrence of name + NUL in the
   * table as laid out in memory (newest string first), else prepend it.
   * Returns the name's offset from the end of the table (negative).
   */
  private findAddString(name: Uint8Array): number {
    let fromEnd = 0;
    // Walk from the oldest string (highest address) down, remembering the
    // lowest-address hit, which is what a forward memcmp scan finds first.
    let hit: number | undefined;
    for (const s of this.strings) {
      fromEnd -= s.length;
      const tail = s.length - (name.length + 1);
      if (tail >= 0 && s[s.length - 1] === 0 && name.every((c, i) => s[tail + i] === c)) {
        hit = fromEnd + tail;
      }
    }
    if (hit !== undefined) return hit;
    const s = new Uint8Array(name.length + 1);
    s.set(name);
    this.strings.push(s);
    this.stringsSize += s.length;
    return -this.stringsSize;
  }

  /**
   * property - add a property to the innermost open node (fdt_property).
   * @name: non-empty printable ASCII
   * @value: raw bytes, copied
   */
  property(name: string, value: Uint8Array): void {
    this.need("struct", "property");
    const at = this.cursor();
    const top = this.stack[this.stack.length - 1];
    if (top === undefined) throw new FdtError("BADSTRUCTURE", at, `property ${fdtQuote(name)} outside any node`);
    const bytes = asciiName("property name", name, at);
    if (name === "") throw new FdtError("BADVALUE", at, "empty property name");
    if (top.sawChild) throw new FdtError("BADSTRUCTURE", at, `property ${fdtQuote(name)} after a subnode of ${fdtQuote(top.name)}`);
    if (top.props.has(name)) throw new FdtError("BADSTRUCTURE", at, `duplicate property ${fdtQuote(name)}`);
    top.props.add(name);
    const fromEnd = this.findAddString(bytes);
    const off = this.struct.grab(3 * FDT_TAGSIZE + fdtTagAlign(value.length));
    const w = this.struct.writer();
    w.u32be(off, FDT_PROP);
    w.u32be(off + 4, value.length);
    this.nameoffs.push({ pos: off + 8, fromEnd });
    w.bytesAt(off + 12, value);
  }

  /** propertyString - a NUL-terminated UTF-8 string (fdt_property_string); @s may not contain NUL. */
  propertyString(name: string, s: string): void {
    this.propertyStrings(name, s);
  }

  /** propertyStrings - a string list: each string UTF-8, NUL-terminated, concatenated. */
  propertyStrings(name: string, ...strs: string[]): void {
    const parts = strs.map((s) => {
      if (s.includes("\0")) throw new FdtError("BADVALUE", this.cursor(), `string value of ${fdtQuote(name)} contains NUL`);
      return utf8.encode(s);
    });
    const value = new Uint8Array(parts.reduce((n, p) => n + p.length + 1, 0));
    let off = 0;
    for (const p of parts) {
      value.set(p, off);
      off += p.length + 1;
    }
    this.property(name, value);
  }

  /** propertyU32 - one big-endian cell (fdt_property_u32 / fdt_property_cell). */
  propertyU32(name: string, v: number): void {
    this.propertyCells(name, v);
  }

  /** propertyU64 - a u64 as two big-endian cells, high first (fdt_property_u64). */
  propertyU64(name: string, v: bigint | number): void {
    const b = new Uint8Array(8);
    new ByteWriter(b).u64be(0, u64("value", v, this.cursor()));
    this.property(name, b);
  }

  /** propertyCells - big-endian u32 cells. */
  propertyCells(name: string, ...cells: number[]): void {
    const b = new Uint8Array(4 * cells.length);
    const w = new ByteWriter(b);
    cells.forEach((c, i) => w.u32be(4 * i, u32("cell", c, this.cursor())));
    this.property(name, b);
  }

  /**
   * finish - append FDT_END, lay out the blob and return it (fdt_finish).
   * Needs every node closed and a root written. The writer is spent after.
   */
  finish(): Uint8Array {
    this.need("struct", "finish");
    if (this.stack.length > 0) {
      throw new FdtError("BADSTRUCTURE", this.cursor(), `finish() with ${this.stack.length} node(s) open`);
    }
    if (!this.rootDone) throw new FdtError("BADSTRUCTURE", this.cursor(), "finish() before any root node");
    const endOff = this.struct.grab(FDT_TAGSIZE);
    this.struct.writer().u32be(endOff, FDT_END);

    const rsvOff = FDT_SW_RSVMAP_OFFSET;
    const structOff = rsvOff + FDT_RSV_ENTRY_SIZE * (this.rsv.length + 1);
    const structSize = this.struct.length;
    const stringsOff = structOff + structSize;
    const totalsize = stringsOff + this.stringsSize;
    const blob = new Uint8Array(totalsize);
    const w = new ByteWriter(blob);

    w.u32be(FDT_HDR.magic, FDT_MAGIC);
    w.u32be(FDT_HDR.totalsize, totalsize);
    w.u32be(FDT_HDR.offDtStruct, structOff);
    w.u32be(FDT_HDR.offDtStrings, stringsOff);
    w.u32be(FDT_HDR.offMemRsvmap, rsvOff);
    w.u32be(FDT_HDR.version, FDT_VERSION);
    w.u32be(FDT_HDR.lastCompVersion, FDT_LAST_COMP_VERSION);
    w.u32be(FDT_HDR.bootCpuidPhys, 0);
    w.u32be(FDT_HDR.sizeDtStrings, this.stringsSize);
    w.u32be(FDT_HDR.sizeDtStruct, structSize);

    this.rsv.forEach((e, i) => {
      w.u64be(rsvOff + FDT_RSV_ENTRY_SIZE * i, e.addr);
      w.u64be(rsvOff + FDT_RSV_ENTRY_SIZE * i + 8, e.size);
    });
    // The terminator is already zero.

    w.bytesAt(structOff, this.struct.bytes.subarray(0, structSize));
    // fdt_finish() rebases every nameoff from "end of table" to "start of table".
    for (const n of this.nameoffs) w.u32be(structOff + n.pos, this.stringsSize + n.fromEnd);

    // Newest string sits lowest: lay the table out from the end backwards.
    let s = totalsize;
    for (const str of this.strings) {
      s -= str.length;
      w.bytesAt(s, str);
    }
    this.state = "done";
    return blob;
  }
}

function writeNode(w: FdtWriter, node: FdtNode): void {
  w.beginNode(node.name);
  for (const p of node.props) w.property(p.name, p.value);
  for (const c of node.children) writeNode(w, c);
  w.endNode();
}

/**
 * fdtFromTree - write @tree (the root, named "") with FdtWriter, in
 * document order: each node's properties, then its children.
 * @reservations: memory reservation entries, in order
 */
export function fdtFromTree(tree: FdtNode, reservations: readonly { addr: bigint | number; size: bigint | number }[] = []): Uint8Array {
  const w = new FdtWriter();
  for (const r of reservations) w.addReservation(r.addr, r.size);
  w.finishReservemap();
  writeNode(w, tree);
  return w.finish();
}

/**
 * fdtPack - @blob re-laid out as libfdt's fdt_pack() and dtc do: header,
 * reservation block at 0x28, structure block, strings block, no gaps,
 * totalsize the end of strings. Other header fields are kept, except a
 * version above 17 becomes 17 (as fdt_rw_probe_()). Validates @blob with
 * fdtCheckFull first. Returns a new buffer.
 */
export function fdtPack(blob: Uint8Array): Uint8Array {
  fdtCheckFull(blob);
  const h = fdtCheckHeader(blob);
  const rsvLen = FDT_RSV_ENTRY_SIZE * (fdtReservations(blob, h).length + 1);
  const rsvOff = FDT_PACKED_RSVMAP_OFFSET;
  const structOff = rsvOff + rsvLen;
  const stringsOff = structOff + h.sizeDtStruct;
  const totalsize = stringsOff + h.sizeDtStrings;
  const out = new Uint8Array(totalsize);
  const w = new ByteWriter(out);
  w.bytesAt(0, blob.subarray(0, FDT_HEADER_SIZE));
  w.u32be(FDT_HDR.totalsize, totalsize);
  w.u32be(FDT_HDR.offDtStruct, structOff);
  w.u32be(FDT_HDR.offDtStrings, stringsOff);
  w.u32be(FDT_HDR.offMemRsvmap, rsvOff);
  if (h.version > FDT_VERSION) w.u32be(FDT_HDR.version, FDT_VERSION);
  w.bytesAt(rsvOff, blob.subarray(h.offMemRsvmap, h.offMemRsvmap + rsvLen));
  w.bytesAt(structOff, blob.subarray(h.offDtStruct, h.offDtStruct + h.sizeDtStruct));
  w.bytesAt(stringsOff, blob.subarray(h.offDtStrings, h.offDtStrings + h.sizeDtStrings));
  return out;
}
