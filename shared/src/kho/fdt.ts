/*
 * The KHO FDT: what the predecessor hands over and the successor validates.
 *
 *	/ {
 *		compatible = "kho-v1";
 *		preserved-memory {
 *			metadata = [u64 LE phys of the first chunk, 0 if none];
 *		};
 *		kho_test {				// one node per kho_add_subtree()
 *			fdt = [u64 LE phys of the sub-tree's FDT];
 *		};
 *	};
 *
 * Building is sequential (fdt/sw.ts, as kho_finalize uses libfdt's sw API);
 * parsing is strict and names what is wrong.
 */
import { KHO_FDT_COMPATIBLE, KHO_FDT_MEMORY_NODE, KHO_FDT_METADATA_PROP, KHO_FDT_SUB_FDT_PROP } from "../abi/kho-fdt.js";
import { u64leBytes } from "../lib/bytes.js";
import { FdtError, FdtRo, FdtWriter, propStringList } from "../fdt/index.js";
import type { KhoFormat } from "./formats/types.js";

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

/**
 * buildKhoFdt - the ranges format's KHO FDT for @metadata and @subtrees, as
 * kho_finalize() would lay it out. @memoryProps are extra properties of
 * /preserved-memory (the posted format's marker).
 */
export function buildKhoFdt(metadata: number, subtrees: readonly KhoSubtree[], memoryProps: readonly { name: string; value: Uint8Array }[] = [], compatible = KHO_FDT_COMPATIBLE): Uint8Array {
  const w = new FdtWriter();
  w.finishReservemap();
  w.beginNode("");
  w.propertyString("compatible", compatible);
  w.beginNode(KHO_FDT_MEMORY_NODE);
  for (const p of memoryProps) w.property(p.name, p.value);
  w.property(KHO_FDT_METADATA_PROP, u64leBytes(metadata));
  w.endNode();
  for (const s of subtrees) {
    w.beginNode(s.name);
    w.property(KHO_FDT_SUB_FDT_PROP, u64leBytes(s.fdtPhys));
    w.endNode();
  }
  w.endNode();
  return w.finish();
}

export interface KhoFdt {
  fdt: FdtRo;
  /** The preservation format the FDT says it carries. */
  format: KhoFormat;
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
export function parseKhoFdt(blob: Uint8Array, formats: readonly KhoFormat[]): KhoFdt {
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
  const format = candidates.find((f) => f.matches(fdt)) ?? candidates[0]!;
  return { fdt, format, metadata: format.readRoot(fdt) };
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
export function khoRetrieveSubtree(kho: KhoFdt, name: string): bigint | undefined {
  let node: number;
  try {
    node = kho.fdt.pathOffset(`/${name}`);
  } catch (e) {
    if (e instanceof FdtError) return undefined;
    throw e;
  }
  const prop = kho.format.subtreeProp ?? KHO_FDT_SUB_FDT_PROP;
  const v = kho.fdt.getProp(node, prop);
  if (v === undefined || v.length !== 8) {
    throw new KhoFdtError(`/${name}/${prop}`, v === undefined ? "missing" : `length ${v.length}, expected 8`);
  }
  return u64le(v);
}
