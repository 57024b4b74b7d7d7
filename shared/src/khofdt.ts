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
import {
  KHO_FDT_COMPATIBLE,
  KHO_FDT_MEMORY_NODE,
  KHO_FDT_MEMORY_PATH,
  KHO_FDT_METADATA_PROP,
  KHO_FDT_SUB_FDT_PROP,
} from "./abi.js";
import { u64leBytes } from "./bytes.js";
import { FdtError, FdtRo, FdtWriter, propStringList } from "./fdt/index.js";

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
 * buildKhoFdt - the KHO FDT for @metadata and @subtrees, as kho_finalize()
 * would lay it out.
 */
export function buildKhoFdt(metadata: number, subtrees: readonly KhoSubtree[]): Uint8Array {
  const w = new FdtWriter();
  w.finishReservemap();
  w.beginNode("");
  w.propertyString("compatible", KHO_FDT_COMPATIBLE);
  w.beginNode(KHO_FDT_MEMORY_NODE);
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
  /** Raw u64 of /preserved-memory/metadata; validated by the walk. */
  metadata: bigint;
}

function u64le(v: Uint8Array): bigint {
  return new DataView(v.buffer, v.byteOffset, v.byteLength).getBigUint64(0, true);
}

/**
 * parseKhoFdt - validate the KHO FDT the way a careful successor does before
 * trusting it: structure (fdt_check_full), root compatible, /preserved-memory
 * and an 8-byte `metadata`. Throws KhoFdtError.
 */
export function parseKhoFdt(blob: Uint8Array): KhoFdt {
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
  if (!compats.includes(KHO_FDT_COMPATIBLE)) {
    throw new KhoFdtError("/compatible", `root compatible ${JSON.stringify(compats.join(","))} is not "${KHO_FDT_COMPATIBLE}"`);
  }
  let node: number;
  try {
    node = fdt.pathOffset(KHO_FDT_MEMORY_PATH);
  } catch (e) {
    if (e instanceof FdtError) throw new KhoFdtError(KHO_FDT_MEMORY_PATH, "no preserved-memory node");
    throw e;
  }
  const meta = fdt.getProp(node, KHO_FDT_METADATA_PROP);
  if (meta === undefined) throw new KhoFdtError(`${KHO_FDT_MEMORY_PATH}/${KHO_FDT_METADATA_PROP}`, "missing");
  if (meta.length !== 8) {
    throw new KhoFdtError(`${KHO_FDT_MEMORY_PATH}/${KHO_FDT_METADATA_PROP}`, `length ${meta.length}, expected 8`);
  }
  return { fdt, metadata: u64le(meta) };
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
  const v = kho.fdt.getProp(node, KHO_FDT_SUB_FDT_PROP);
  if (v === undefined || v.length !== 8) {
    throw new KhoFdtError(`/${name}/${KHO_FDT_SUB_FDT_PROP}`, v === undefined ? "missing" : `length ${v.length}, expected 8`);
  }
  return u64le(v);
}
