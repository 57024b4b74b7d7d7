/*
 * The `memblock` KHO sub-tree (Documentation/core-api/kho/bindings/memblock/
 * memblock.yaml and reserve-mem.yaml, mainline a3d2e34dce20):
 *
 *   / { compatible = "memblock-v1";
 *       <name> { compatible = "reserve-mem-v1"; start = <u64>; size = <u64>; }; };
 *
 * start and size are the raw phys_addr_t bytes (native endian: little-endian
 * on x86-64), 8 bytes each. Built as mm/memblock.c prepare_kho_fdt() builds it
 * (v6.16, mainline f99230780211): fdt_create(PAGE_SIZE) sequential writer,
 * one child per reserve_mem table row in table order, properties in the
 * order compatible, start, size. The layout is the same in every version
 * since (6.19's prepare_kho_fdt writes the same calls).
 */
import { FdtError, FdtRo, FdtWriter, fdtStringlistContains } from "../fdt/index.js";
import { ByteReader, u64leBytes } from "../lib/bytes.js";

/** MEMBLOCK_KHO_FDT: the KHO sub-tree name. */
export const MEMBLOCK_KHO_FDT = "memblock";
/** MEMBLOCK_KHO_NODE_COMPATIBLE: the sub-FDT root's compatible. */
export const MEMBLOCK_KHO_NODE_COMPATIBLE = "memblock-v1";
/** RESERVE_MEM_KHO_NODE_COMPATIBLE: each reservation node's compatible. */
export const RESERVE_MEM_KHO_NODE_COMPATIBLE = "reserve-mem-v1";

/**
 * buildMemblockFdt - the sub-FDT of @entries as prepare_kho_fdt() writes it.
 * At most RESERVE_MEM_MAX_ENTRIES rows of names under 16 bytes: well under
 * the page fdt_create() is given (about 100 bytes a row).
 */
export function buildMemblockFdt(entries: readonly { name: string; start: number | bigint; size: number | bigint }[]): Uint8Array {
  const w = new FdtWriter();
  w.finishReservemap();
  w.beginNode("");
  w.propertyString("compatible", MEMBLOCK_KHO_NODE_COMPATIBLE);
  for (const e of entries) {
    w.beginNode(e.name);
    w.propertyString("compatible", RESERVE_MEM_KHO_NODE_COMPATIBLE);
    w.property("start", u64leBytes(e.start));
    w.property("size", u64leBytes(e.size));
    w.endNode();
  }
  w.endNode();
  return w.finish();
}

/** What reserve_mem_kho_revive() finds for one name (start/size as raw u64). */
export type MemblockFdtLookup =
  | { ok: true; start: bigint; size: bigint }
  | { ok: false; message: string };

/**
 * MemblockFdt - the successor's view of the sub-FDT
 * (reserve_mem_kho_retrieve_fdt): opened once and checked for memblock-v1;
 * constructing it throws FdtError (bad blob) or MemblockFdtError (not
 * memblock-v1), with the kernel's warning as the message.
 */
export class MemblockFdt {
  private readonly fdt: FdtRo;

  constructor(blob: Uint8Array) {
    this.fdt = new FdtRo(blob);
    const c = this.fdt.getProp(0, "compatible");
    if (!c || !fdtStringlistContains(c, MEMBLOCK_KHO_NODE_COMPATIBLE)) {
      throw new MemblockFdtError(`FDT '${MEMBLOCK_KHO_FDT}' is incompatible with '${MEMBLOCK_KHO_NODE_COMPATIBLE}'`);
    }
  }

  /** Names of the root's children, in blob order. */
  names(): string[] {
    return this.fdt.subnodes(0).map((o) => this.fdt.nodeName(o));
  }

  /**
   * lookup - reserve_mem_kho_revive()'s checks before alignment and size:
   * child @name exists, is reserve-mem-v1, start and size are 8 bytes each.
   */
  lookup(name: string): MemblockFdtLookup {
    let off: number;
    try {
      off = this.fdt.subnodeOffset(0, name);
    } catch (e) {
      if (e instanceof FdtError) return { ok: false, message: `FDT '${MEMBLOCK_KHO_FDT}' has no child '${name}'` };
      throw e;
    }
    const c = this.fdt.getProp(off, "compatible");
    if (!c || !fdtStringlistContains(c, RESERVE_MEM_KHO_NODE_COMPATIBLE)) {
      return { ok: false, message: `Node '${name}' is incompatible with '${RESERVE_MEM_KHO_NODE_COMPATIBLE}'` };
    }
    const start = this.fdt.getProp(off, "start");
    const size = this.fdt.getProp(off, "size");
    // The kernel returns false here without a message; say which property was wrong.
    if (!start || start.length !== 8 || !size || size.length !== 8) {
      return { ok: false, message: `Node '${name}': start/size missing or not 8 bytes` };
    }
    return { ok: true, start: new ByteReader(start).u64le(0), size: new ByteReader(size).u64le(0) };
  }
}

/** The sub-FDT is not memblock-v1. */
export class MemblockFdtError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MemblockFdtError";
  }
}
