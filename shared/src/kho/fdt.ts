/*
 * The KHO FDT: what the predecessor hands over and the successor validates,
 * built in one place for every format from its KhoFdtLayout:
 *
 *	/ {
 *		compatible = "kho-v1";			// kho-v2 for radix
 *		preserved-memory {			// ranges, posted: the map's node
 *			khosim,posted-layout;		// posted only
 *			metadata = [u64 LE phys of the first chunk, 0 if none];
 *		};
 *		preserved-memory-map = [u64 LE];	// bitmaps, radix: at the root
 *		kho_test {				// one node per kho_add_subtree()
 *			fdt = [u64 LE phys of the sub-tree's FDT];	// kho-v2: preserved-data
 *		};
 *	};
 *
 * Building is sequential (fdt/sw.ts, as kho_finalize uses libfdt's sw API);
 * parsing is strict and names what is wrong.
 */
import { KHO_FDT_COMPATIBLE, KHO_FDT_METADATA_PROP, KHO_FDT_MEMORY_NODE, KHO_FDT_SUB_FDT_PROP } from "../abi/kho-fdt.js";
import { ByteReader, u64leBytes } from "../lib/bytes.js";
import { FdtError } from "../fdt/errors.js";
import { FdtRo, propStringList } from "../fdt/ro.js";
import { FdtWriter } from "../fdt/sw.js";

/** A kho_add_subtree() entry: a named child of the root carrying `fdt`. */
export interface KhoSubtree {
  name: string;
  fdtPhys: number;
}

/** Why a KHO FDT was refused; `field` names the node/property at fault. */
export class KhoFdtError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
    readonly offset?: number,
  ) {
    super(`${field}: ${reason}`);
    this.name = "KhoFdtError";
  }
}

/** A property of the map's node: the u64 root pointer (no value) or a marker with a fixed value. */
export interface KhoFdtProp {
  name: string;
  /** Fixed value (a marker); absent for the root pointer. An empty marker is a flag. */
  value?: Uint8Array;
  /** What a marker's value means, for messages ("one-page bitmaps"). */
  note?: string;
}

/** How a format lays out its KHO FDT (abi/kho-fdt.ts names, abi/<format>.ts markers). */
export interface KhoFdtLayout {
  /** Root compatible. */
  compatible: string;
  /** Node holding the root pointer: a child of the root, or "" for the root itself. */
  mapNode: string;
  /** The map node's properties in FDT order; exactly one is the root pointer. */
  mapProps: readonly KhoFdtProp[];
  /** Markers that must be absent (another format's with the same compatible). */
  absent?: readonly string[];
  /** Property of a sub-tree node holding its FDT's phys. */
  subtreeProp: string;
  /**
   * Set when a root pointer of 0 is refused (the format's kernel then boots
   * without KHO): why, for the message. Unset: 0 means nothing preserved.
   */
  zeroRoot?: string;
}

/** The ranges format's layout: /preserved-memory/metadata in a kho-v1 FDT. */
export const KHO_RANGES_FDT_LAYOUT: KhoFdtLayout = {
  compatible: KHO_FDT_COMPATIBLE,
  mapNode: KHO_FDT_MEMORY_NODE,
  mapProps: [{ name: KHO_FDT_METADATA_PROP }],
  subtreeProp: KHO_FDT_SUB_FDT_PROP,
};

/**
 * buildKhoFdt - the KHO FDT for @root and @subtrees as kho_finalize() lays
 * it out: compatible, the map's properties (in a child node or at the root),
 * then one node per sub-tree in kho_add_subtree() order.
 */
export function buildKhoFdt(root: number, subtrees: readonly KhoSubtree[], layout: KhoFdtLayout = KHO_RANGES_FDT_LAYOUT): Uint8Array {
  const w = new FdtWriter();
  w.finishReservemap();
  w.beginNode("");
  w.propertyString("compatible", layout.compatible);
  if (layout.mapNode !== "") w.beginNode(layout.mapNode);
  for (const p of layout.mapProps) w.property(p.name, p.value ?? u64leBytes(root));
  if (layout.mapNode !== "") w.endNode();
  for (const s of subtrees) {
    w.beginNode(s.name);
    w.property(layout.subtreeProp, u64leBytes(s.fdtPhys));
    w.endNode();
  }
  w.endNode();
  return w.finish();
}

/* Offset of the layout's map node in @fdt, or undefined. */
function mapNodeOffset(fdt: FdtRo, layout: KhoFdtLayout): number | undefined {
  try {
    return layout.mapNode === "" ? 0 : fdt.pathOffset(`/${layout.mapNode}`);
  } catch {
    return undefined;
  }
}

/**
 * khoFdtMatches - true when @fdt (root compatible checked) carries
 * @layout: its map node exists (at the root: its root pointer does), its
 * markers are present and the markers in layout.absent are not.
 */
export function khoFdtMatches(fdt: FdtRo, layout: KhoFdtLayout): boolean {
  const node = mapNodeOffset(fdt, layout);
  if (node === undefined) return false;
  const has = (name: string): boolean => fdt.getProp(node, name) !== undefined;
  if (layout.mapNode === "" && !layout.mapProps.some((p) => p.value === undefined && has(p.name))) return false;
  return layout.mapProps.every((p) => p.value === undefined || has(p.name)) && !(layout.absent ?? []).some(has);
}

/**
 * khoFdtReadRoot - the raw u64 root pointer of @layout in @fdt after its
 * markers' values are checked; throws KhoFdtError naming the property.
 */
export function khoFdtReadRoot(fdt: FdtRo, layout: KhoFdtLayout): bigint {
  const path = layout.mapNode === "" ? "/" : `/${layout.mapNode}`;
  const node = mapNodeOffset(fdt, layout);
  for (const p of layout.mapProps) {
    if (p.value === undefined || p.value.length === 0 || node === undefined) continue;
    const where = path === "/" ? `/${p.name}` : `${path}/${p.name}`;
    const v = fdt.getProp(node, p.name);
    if (v === undefined) throw new KhoFdtError(where, "missing");
    if (v.length !== p.value.length) throw new KhoFdtError(where, `length ${v.length}, expected ${p.value.length}`);
    if (v.some((b, i) => b !== p.value![i])) {
      const show = (b: Uint8Array): string => (b.length === 4 ? String(new ByteReader(b).u32le(0)) : `[${[...b].join(" ")}]`);
      throw new KhoFdtError(where, `is ${show(v)}, expected ${show(p.value)}${p.note ? ` (${p.note})` : ""}`);
    }
  }
  const ptr = layout.mapProps.find((p) => p.value === undefined)!;
  const root = readU64Prop(fdt, path, ptr.name, layout.mapNode === "" ? "no root node" : `no ${layout.mapNode} node`);
  if (root === 0n && layout.zeroRoot !== undefined) throw new KhoFdtError(path === "/" ? `/${ptr.name}` : `${path}/${ptr.name}`, `is 0: ${layout.zeroRoot}`);
  return root;
}

/** What parseKhoFdt needs of a format. */
export interface KhoFdtFormat {
  readonly compatible: string;
  readonly fdtLayout: KhoFdtLayout;
}

/** A parsed KHO FDT; formats/types.ts names the usual one KhoFdt. */
export interface KhoFdtOf<F extends KhoFdtFormat> {
  fdt: FdtRo;
  /** The preservation format the FDT says it carries. */
  format: F;
  /** Raw u64 root pointer of that format (ranges: /preserved-memory/metadata); validated by the walk. */
  metadata: bigint;
}

/** Decode a raw little-endian u64 property value (KHO's native-endian values). */
export function u64le(v: Uint8Array): bigint {
  return new DataView(v.buffer, v.byteOffset, v.byteLength).getBigUint64(0, true);
}

/**
 * parseKhoFdt - validate the KHO FDT the way a careful successor does before
 * trusting it: structure (fdt_check_full), root compatible, then the format
 * among @formats that the FDT carries, and its root pointer (for ranges:
 * /preserved-memory with an 8-byte `metadata`). Throws KhoFdtError.
 */
export function parseKhoFdt<F extends KhoFdtFormat>(blob: Uint8Array, formats: readonly F[]): KhoFdtOf<F> {
  let fdt: FdtRo;
  try {
    fdt = new FdtRo(blob);
  } catch (e) {
    if (e instanceof FdtError) throw new KhoFdtError("header/structure", e.message, e.offset);
    throw e;
  }
  const compat = fdt.getProp(0, "compatible");
  if (compat === undefined) throw new KhoFdtError("/compatible", "missing root compatible");
  let compats: string[];
  try {
    compats = propStringList(compat);
  } catch {
    throw new KhoFdtError("/compatible", "root compatible is not a string list");
  }
  const candidates = formats.filter((f) => compats.includes(f.compatible));
  if (candidates.length === 0) {
    const known = [...new Set(formats.map((f) => `"${f.compatible}"`))].join(" or ");
    throw new KhoFdtError("/compatible", `root compatible ${JSON.stringify(compats.join(","))} is not ${known}`);
  }
  // The first candidate whose layout is present; otherwise let the first say what is missing.
  const format = candidates.find((f) => khoFdtMatches(fdt, f.fdtLayout)) ?? candidates[0]!;
  return { fdt, format, metadata: khoFdtReadRoot(fdt, format.fdtLayout) };
}

/** readU64Prop - the 8-byte property @prop of node @path, or KhoFdtError naming it. */
export function readU64Prop(fdt: FdtRo, path: string, prop: string, missingNode: string): bigint {
  let node: number;
  try {
    node = fdt.pathOffset(path);
  } catch (e) {
    if (e instanceof FdtError) throw new KhoFdtError(path, missingNode);
    throw e;
  }
  const v = fdt.getProp(node, prop);
  const where = path === "/" ? `/${prop}` : `${path}/${prop}`;
  if (v === undefined) throw new KhoFdtError(where, "missing");
  if (v.length !== 8) throw new KhoFdtError(where, `length ${v.length}, expected 8`);
  return u64le(v);
}

/**
 * khoRetrieveSubtree - the raw u64 `fdt` phys of sub-tree @name, or undefined
 * when there is no such node (-ENOENT). Throws KhoFdtError when the node
 * exists but its `fdt` property is malformed.
 */
export function khoRetrieveSubtree(kho: KhoFdtOf<KhoFdtFormat>, name: string): bigint | undefined {
  let node: number;
  try {
    node = kho.fdt.pathOffset(`/${name}`);
  } catch (e) {
    if (e instanceof FdtError) return undefined;
    throw e;
  }
  const prop = kho.format.fdtLayout.subtreeProp;
  const v = kho.fdt.getProp(node, prop);
  if (v === undefined || v.length !== 8) {
    throw new KhoFdtError(`/${name}/${prop}`, v === undefined ? "missing" : `length ${v.length}, expected 8`);
  }
  return u64le(v);
}
