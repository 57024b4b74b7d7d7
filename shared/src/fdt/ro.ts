/*
 * Read-only FDT access, after libfdt's fdt_ro.c.
 *
 * FdtRo validates the blob with fdtCheckFull() once, then indexes the nodes
 * so that lookups are map reads rather than token walks. Node offsets are
 * those libfdt uses: the offset of the node's FDT_BEGIN_NODE token relative
 * to the start of the structure block, so the root is always 0. Offsets in
 * FdtError are absolute byte offsets in the blob.
 *
 * The indexing walk still goes through fdtNextTag() and ByteReader, so this
 * file is bounds-safe on its own even if the check were skipped.
 */
import {
  FDT_BEGIN_NODE,
  FDT_END,
  FDT_END_NODE,
  FDT_PROP,
  type FdtHeader,
  type FdtReservation,
  fdtCheckFull,
  fdtCheckHeader,
  fdtNextTag,
  fdtPropName,
  fdtReservations,
} from "./check.js";
import { FdtError, fdtQuote } from "./errors.js";

/** A node in document order: properties first, then children. */
export interface FdtNode {
  name: string;
  props: { name: string; value: Uint8Array }[];
  children: FdtNode[];
}

/** A property as FdtRo.properties() lists it. */
export interface FdtProperty {
  name: string;
  /** A view into the blob, not a copy. */
  value: Uint8Array;
  /** Struct-relative offset of the property's FDT_PROP token. */
  offset: number;
}

interface PropInfo {
  name: string;
  offset: number;
  valueAt: number;
  len: number;
}

interface NodeInfo {
  name: string;
  parent: number | undefined;
  props: PropInfo[];
  children: number[];
}

/**
 * FdtRo - a validated, read-only view of a flattened device tree.
 * @blob: the buffer; it is not copied, so do not change it while in use
 *
 * The constructor runs fdtCheckFull() and throws its FdtError.
 */
export class FdtRo {
  readonly header: FdtHeader;
  private readonly nodes = new Map<number, NodeInfo>();

  constructor(readonly blob: Uint8Array) {
    fdtCheckFull(blob);
    this.header = fdtCheckHeader(blob);
    const h = this.header;
    const stack: number[] = [];
    for (let off = 0; ; ) {
      const t = fdtNextTag(blob, h, off);
      if (t.tag === FDT_END) break;
      if (t.tag === FDT_BEGIN_NODE) {
        const parent = stack[stack.length - 1];
        this.nodes.set(t.off, { name: t.name, parent, props: [], children: [] });
        if (parent !== undefined) this.node(parent).children.push(t.off);
        stack.push(t.off);
      } else if (t.tag === FDT_END_NODE) {
        stack.pop();
      } else if (t.tag === FDT_PROP) {
        const cur = stack[stack.length - 1];
        if (cur === undefined) throw new FdtError("BADSTRUCTURE", h.offDtStruct + t.off, "property outside any node");
        const name = fdtPropName(blob, h, t.nameoff, h.offDtStruct + t.off);
        this.node(cur).props.push({ name, offset: t.off, valueAt: h.offDtStruct + t.valueOff, len: t.len });
      }
      off = t.next;
    }
  }

  private node(off: number): NodeInfo {
    const n = this.nodes.get(off);
    if (n === undefined) {
      const at = Number.isInteger(off) && off >= 0 ? this.header.offDtStruct + off : -1;
      throw new FdtError("BADOFFSET", at, `no node begins at struct offset ${off}`);
    }
    return n;
  }

  /**
   * subnodeOffset - the child of @parent named exactly @name (unit address
   * included; libfdt's "name without @unit" fallback is not applied).
   * Throws NOTFOUND, or BADOFFSET when @parent is not a node.
   */
  subnodeOffset(parent: number, name: string): number {
    for (const c of this.node(parent).children) {
      if (this.node(c).name === name) return c;
    }
    throw new FdtError("NOTFOUND", this.header.offDtStruct + parent, `node ${fdtQuote(this.path(parent))} has no subnode ${fdtQuote(name)}`);
  }

  /**
   * pathOffset - the node at absolute @path ("/" is the root; repeated
   * slashes are skipped, as fdt_path_offset()). Aliases are not supported.
   * Throws NOTFOUND.
   */
  pathOffset(path: string): number {
    if (!path.startsWith("/")) {
      throw new FdtError("NOTFOUND", -1, `path ${fdtQuote(path)} is not absolute (aliases are not supported)`);
    }
    let off = 0;
    for (const part of path.split("/")) {
      if (part !== "") off = this.subnodeOffset(off, part);
    }
    return off;
  }

  /** getProp - the value of property @name of node @nodeOffset (a view), or undefined. */
  getProp(nodeOffset: number, name: string): Uint8Array | undefined {
    const p = this.node(nodeOffset).props.find((q) => q.name === name);
    return p === undefined ? undefined : this.blob.subarray(p.valueAt, p.valueAt + p.len);
  }

  /** nodeName - the node's name as stored ("" for the root). */
  nodeName(nodeOffset: number): string {
    return this.node(nodeOffset).name;
  }

  /** parentOffset - the parent node, or undefined for the root. */
  parentOffset(nodeOffset: number): number | undefined {
    return this.node(nodeOffset).parent;
  }

  /** path - the node's full path ("/" for the root). */
  path(nodeOffset: number): string {
    const parts: string[] = [];
    // Climbs at most FDT_MAX_DEPTH parents; only the root has none.
    for (let n = this.node(nodeOffset); n.parent !== undefined; n = this.node(n.parent)) parts.unshift(n.name);
    return "/" + parts.join("/");
  }

  /** subnodes - offsets of the node's children, in document order. */
  subnodes(nodeOffset: number): number[] {
    return [...this.node(nodeOffset).children];
  }

  /** properties - the node's properties, in document order; values are views. */
  properties(nodeOffset: number): FdtProperty[] {
    return this.node(nodeOffset).props.map((p) => ({
      name: p.name,
      value: this.blob.subarray(p.valueAt, p.valueAt + p.len),
      offset: p.offset,
    }));
  }

  /** reservations - the memory reservation entries, terminator excluded. */
  reservations(): FdtReservation[] {
    return fdtReservations(this.blob, this.header);
  }

  /** toTree - the whole tree as FdtNode values (copies, not views). */
  toTree(nodeOffset = 0): FdtNode {
    const n = this.node(nodeOffset);
    return {
      name: n.name,
      props: n.props.map((p) => ({ name: p.name, value: this.blob.slice(p.valueAt, p.valueAt + p.len) })),
      children: n.children.map((c) => this.toTree(c)),
    };
  }
}

/** fdtToTree - validate @blob and return its tree, root first. Throws FdtError. */
export function fdtToTree(blob: Uint8Array): FdtNode {
  return new FdtRo(blob).toTree();
}

/**
 * propU64le - a property holding exactly one little-endian u64 (KHO's raw
 * native-endian values). Throws BADVALUE for any other length.
 */
export function propU64le(value: Uint8Array): bigint {
  if (value.length !== 8) throw new FdtError("BADVALUE", -1, `u64 property has ${value.length} bytes, expected 8`);
  return new DataView(value.buffer, value.byteOffset, 8).getBigUint64(0, true);
}

/** propU32be - a property holding exactly one big-endian cell. Throws BADVALUE. */
export function propU32be(value: Uint8Array): number {
  if (value.length !== 4) throw new FdtError("BADVALUE", -1, `u32 property has ${value.length} bytes, expected 4`);
  return new DataView(value.buffer, value.byteOffset, 4).getUint32(0, false);
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function decode(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new FdtError("BADVALUE", -1, "string property is not valid UTF-8");
  }
}

/**
 * propString - a property holding exactly one NUL-terminated string (one
 * NUL, at the end). Throws BADVALUE otherwise.
 */
export function propString(value: Uint8Array): string {
  const nul = value.indexOf(0);
  if (nul < 0 || nul !== value.length - 1) {
    throw new FdtError(
      "BADVALUE",
      -1,
      nul < 0 ? "string property is not NUL-terminated" : `string property has a NUL at ${nul} before its end`,
    );
  }
  return decode(value.subarray(0, nul));
}

/**
 * propStringList - a string-list property ("a\0b\0"): every string
 * NUL-terminated, the last byte a NUL. An empty value is an empty list.
 * Throws BADVALUE otherwise.
 */
export function propStringList(value: Uint8Array): string[] {
  if (value.length === 0) return [];
  if (value[value.length - 1] !== 0) throw new FdtError("BADVALUE", -1, "string list is not NUL-terminated");
  const out: string[] = [];
  for (let start = 0; start < value.length; ) {
    const nul = value.indexOf(0, start);
    out.push(decode(value.subarray(start, nul)));
    start = nul + 1;
  }
  return out;
}

/**
 * fdtStringlistContains - whether the string-list property @value has an
 * entry equal to @str, compared with its terminating NUL, as libfdt's
 * fdt_stringlist_contains() (dgibson/dtc libfdt/fdt_ro.c) decides it: a last
 * entry without its NUL never matches, and the entries before it still do.
 * fdt_node_check_compatible() is this over the node's "compatible".
 */
export function fdtStringlistContains(value: Uint8Array, str: string): boolean {
  const want = new TextEncoder().encode(str);
  for (let start = 0; start + want.length < value.length; ) {
    let same = value[start + want.length] === 0;
    for (let i = 0; same && i < want.length; i++) same = value[start + i] === want[i];
    if (same) return true;
    const nul = value.indexOf(0, start);
    if (nul < 0) return false;
    start = nul + 1;
  }
  return false;
}

/* dtc's isstring(): isprint() in the C locale, NUL, or a C escape. */
function isDtsStringByte(c: number): boolean {
  return (c >= 0x20 && c <= 0x7e) || c === 0 || (c >= 0x07 && c <= 0x0d);
}

const DTS_ESCAPES: Record<number, string> = {
  0x00: "\\0",
  0x07: "\\a",
  0x08: "\\b",
  0x09: "\\t",
  0x0a: "\\n",
  0x0b: "\\v",
  0x0c: "\\f",
  0x0d: "\\r",
  0x22: '\\"',
  0x5c: "\\\\",
};

/*
 * A property value as dtc 1.6.1 prints it (treesource.c guess_value_type):
 * a string when it ends in NUL, every byte is string-like and NULs are no
 * more than half; else cells when the length is a multiple of 4; else bytes.
 */
export function dtsValue(v: Uint8Array): string {
  const len = v.length;
  if (len === 0) return "";
  let nnul = 0;
  let notString = 0;
  for (const c of v) {
    if (c === 0) nnul++;
    if (!isDtsStringByte(c)) notString++;
  }
  if (v[len - 1] === 0 && notString === 0 && nnul <= len - nnul) {
    let s = "";
    for (const c of v.subarray(0, len - 1)) s += DTS_ESCAPES[c] ?? String.fromCharCode(c);
    return `"${s}"`;
  }
  if (len % 4 === 0) {
    const dv = new DataView(v.buffer, v.byteOffset, len);
    const cells: string[] = [];
    for (let i = 0; i < len; i += 4) cells.push("0x" + dv.getUint32(i, false).toString(16).padStart(2, "0"));
    return `<${cells.join(" ")}>`;
  }
  return `[${Array.from(v, (c) => c.toString(16).padStart(2, "0")).join(" ")}]`;
}

function dtsNode(fdt: FdtRo, off: number, level: number, out: string[]): void {
  const tabs = "\t".repeat(level);
  const name = fdt.nodeName(off);
  out.push(`${tabs}${name === "" ? "/" : name} {\n`);
  for (const p of fdt.properties(off)) {
    out.push(`${tabs}\t${p.name}${p.value.length === 0 ? "" : " = " + dtsValue(p.value)};\n`);
  }
  for (const c of fdt.subnodes(off)) {
    out.push("\n");
    dtsNode(fdt, c, level + 1, out);
  }
  out.push(`${tabs}};\n`);
}

/**
 * fdtToDts - @blob as source text, laid out as `dtc -I dtb -O dts` (dtc
 * 1.6.1) prints it: /memreserve/ lines, then the tree, tab-indented, a
 * blank line before each subnode, values as strings, <cells> or [bytes].
 * Meant for structural diffs. Validates first; throws FdtError.
 */
export function fdtToDts(blob: Uint8Array): string {
  const fdt = new FdtRo(blob);
  const out: string[] = ["/dts-v1/;\n\n"];
  for (const r of fdt.reservations()) {
    out.push(`/memreserve/\t0x${r.addr.toString(16).padStart(16, "0")} 0x${r.size.toString(16).padStart(16, "0")};\n`);
  }
  dtsNode(fdt, 0, 0, out);
  return out.join("");
}
