/*
 * The boot DTB the successor starts with, as arm64 passes KHO:
 *
 *	/ {
 *		#address-cells = <2>;
 *		#size-cells = <2>;
 *		compatible = "khosim,machine";
 *		memory@40000000 {
 *			device_type = "memory";
 *			reg = <base-hi base-lo size-hi size-lo>;	// big-endian cells
 *			numa-node-id = <node>;		// only on a NUMA machine
 *		};
 *		memory@...				// one node per RAM bank
 *
 * A machine with holes has one memory node per bank, ascending, as
 * drivers/of/fdt.c early_init_dt_scan_memory() reads them (every node with
 * device_type "memory", each reg pair memblock_add()ed) and numa-node-id as
 * Documentation/devicetree/bindings/numa.txt defines it (one u32 cell;
 * drivers/of/of_numa.c of_numa_parse_memory_nodes(); torvalds/linux
 * 019fc36872374db6fd35e118c9e935374404bfbf). khosim's machines put one reg
 * pair in each node.
 *		chosen {
 *			linux,kho-fdt = <addr-hi addr-lo size-hi size-lo>;
 *			linux,kho-scratch = <addr-hi addr-lo size-hi size-lo>;
 *		};
 *	};
 */
import { hex, u64beCells, u64ToNumber } from "../lib/bytes.js";
import { checkRamBanks, MAX_NUMNODES, MAX_RAM_BANKS, ramSpan, type RamBank } from "./ram.js";
import { FdtError, FdtRo, FdtWriter, propString, propU32be } from "../fdt/index.js";

/*
 * struct kho_scratch {
 *	phys_addr_t addr;	// @0 u64
 *	phys_addr_t size;	// @8 u64
 * };			// 16 bytes; /chosen/linux,kho-scratch points at an array of them
 */
export const KHO_SCRATCH_SIZE = 16;
export const KHO_SCRATCH_ADDR = 0;
export const KHO_SCRATCH_SIZE_FIELD = 8;

/* The boot DTB (what the successor boots with, as on arm64). */
export const BOOT_ADDRESS_CELLS = 2;
export const BOOT_SIZE_CELLS = 2;
export const BOOT_CHOSEN_PATH = "/chosen";
/** /chosen property: <u64 addr, u64 size> big-endian cells, the KHO FDT in RAM. */
export const BOOT_KHO_FDT_PROP = "linux,kho-fdt";
/** /chosen property: <u64 addr, u64 size> big-endian cells, the kho_scratch array. */
export const BOOT_KHO_SCRATCH_PROP = "linux,kho-scratch";

export const BOOT_COMPATIBLE = "khosim,machine";
/** Memory node property: the bank's NUMA node, one big-endian u32 cell (bindings/numa.txt). */
export const BOOT_NUMA_NODE_ID_PROP = "numa-node-id";

export interface AddrSize {
  addr: number;
  size: number;
}

export interface BootInfo {
  /** RAM's span: the lowest bank's base to the highest bank's end. */
  ram: { base: number; size: number };
  /** The banks, ascending (node 0 without numa-node-id); set only when there is more than one or any numa-node-id. */
  banks?: RamBank[];
  /** True when the memory nodes carry numa-node-id. */
  numa?: boolean;
  /** /chosen/linux,kho-fdt, raw (validated against RAM by the successor). */
  khoFdt?: { addr: bigint; size: bigint };
  /** /chosen/linux,kho-scratch, raw. */
  khoScratch?: { addr: bigint; size: bigint };
  /** Set when a /chosen KHO property exists but cannot be decoded. */
  khoPropError?: string;
}

/** The boot DTB cannot be used at all (the machine cannot boot). */
export class BootDtbError extends Error {
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = "BootDtbError";
  }
}

/**
 * buildBootDtb - the DTB a kexec loader would hand the successor.
 * @ram: RAM's span, with @ram.banks one memory node per bank (and
 *       numa-node-id on each when @ram.numa)
 * @khoFdt: /chosen/linux,kho-fdt
 * @khoScratch: /chosen/linux,kho-scratch
 */
export function buildBootDtb(
  ram: { base: number; size: number; banks?: readonly RamBank[] | undefined; numa?: boolean | undefined },
  khoFdt?: AddrSize,
  khoScratch?: AddrSize,
): Uint8Array {
  const w = new FdtWriter();
  w.finishReservemap();
  w.beginNode("");
  w.propertyU32("#address-cells", BOOT_ADDRESS_CELLS);
  w.propertyU32("#size-cells", BOOT_SIZE_CELLS);
  w.propertyString("compatible", BOOT_COMPATIBLE);
  for (const b of ram.banks ?? [{ base: ram.base, size: ram.size, node: 0 }]) {
    w.beginNode(`memory@${b.base.toString(16)}`);
    w.propertyString("device_type", "memory");
    w.property("reg", u64beCells(b.base, b.size));
    if (ram.numa) w.propertyU32(BOOT_NUMA_NODE_ID_PROP, b.node);
    w.endNode();
  }
  w.beginNode("chosen");
  if (khoFdt) w.property(BOOT_KHO_FDT_PROP, u64beCells(khoFdt.addr, khoFdt.size));
  if (khoScratch) w.property(BOOT_KHO_SCRATCH_PROP, u64beCells(khoScratch.addr, khoScratch.size));
  w.endNode();
  w.endNode();
  return w.finish();
}

function cells2(v: Uint8Array): { addr: bigint; size: bigint } {
  const d = new DataView(v.buffer, v.byteOffset, v.byteLength);
  return { addr: d.getBigUint64(0, false), size: d.getBigUint64(8, false) };
}

/**
 * parseBootDtb - what the successor learns from its boot DTB. Throws
 * BootDtbError when the machine cannot boot (bad DTB, no usable /memory);
 * a bad KHO property only sets khoPropError (the machine boots without KHO).
 */
export function parseBootDtb(blob: Uint8Array): BootInfo {
  let fdt: FdtRo;
  try {
    fdt = new FdtRo(blob);
  } catch (e) {
    if (e instanceof FdtError) throw new BootDtbError("boot.dtb", e.message);
    throw e;
  }
  for (const [prop, want] of [
    ["#address-cells", BOOT_ADDRESS_CELLS],
    ["#size-cells", BOOT_SIZE_CELLS],
  ] as const) {
    const v = fdt.getProp(0, prop);
    let got: number | undefined;
    try {
      got = v === undefined ? undefined : propU32be(v);
    } catch {
      got = undefined;
    }
    if (got !== want) throw new BootDtbError(`/${prop}`, `must be <${want}>`);
  }
  const mems = fdt.subnodes(0).filter((n) => {
    const t = fdt.getProp(n, "device_type");
    try {
      return t !== undefined && propString(t) === "memory";
    } catch {
      return false;
    }
  });
  if (mems.length === 0) throw new BootDtbError("/memory", "no node with device_type = \"memory\"");
  if (mems.length > MAX_RAM_BANKS) throw new BootDtbError("/memory", `${mems.length} memory nodes, more than ${MAX_RAM_BANKS}`);
  const banks: RamBank[] = [];
  let numa = 0;
  for (const memNode of mems) {
    const memName = `/${fdt.nodeName(memNode)}`;
    const reg = fdt.getProp(memNode, "reg");
    if (reg === undefined || reg.length !== 16) {
      throw new BootDtbError(`${memName}/reg`, reg === undefined ? "missing" : `length ${reg.length}, expected 16 (one <addr size> pair)`);
    }
    const r = cells2(reg);
    const base = u64ToNumber(r.addr);
    const size = u64ToNumber(r.size);
    if (base === undefined || size === undefined || base + size > Number.MAX_SAFE_INTEGER) {
      throw new BootDtbError(`${memName}/reg`, `RAM ${hex(r.addr)}+${hex(r.size)} is beyond 2^53`);
    }
    if (size === 0 || base % 4096 !== 0 || size % 4096 !== 0) {
      throw new BootDtbError(`${memName}/reg`, `RAM ${hex(base)}+${hex(size)} is empty or not page aligned`);
    }
    const nid = fdt.getProp(memNode, BOOT_NUMA_NODE_ID_PROP);
    let node = 0;
    if (nid !== undefined) {
      if (nid.length !== 4) throw new BootDtbError(`${memName}/${BOOT_NUMA_NODE_ID_PROP}`, `length ${nid.length}, expected 4 (one u32 cell)`);
      node = propU32be(nid);
      if (node >= MAX_NUMNODES) throw new BootDtbError(`${memName}/${BOOT_NUMA_NODE_ID_PROP}`, `node ${node} is not below MAX_NUMNODES (${MAX_NUMNODES})`);
      numa++;
    }
    const prev = banks[banks.length - 1];
    if (prev && base < prev.base + prev.size) {
      throw new BootDtbError(`${memName}/reg`, `RAM ${hex(base)}+${hex(size)} overlaps or precedes the memory node before it (ends ${hex(prev.base + prev.size)}); khosim needs them sorted and disjoint`);
    }
    banks.push({ base, size, node });
  }
  if (numa !== 0 && numa !== banks.length) throw new BootDtbError(`/memory`, `${numa} of ${banks.length} memory nodes have ${BOOT_NUMA_NODE_ID_PROP}: all or none must`);
  const bad = checkRamBanks(banks, Number.MAX_SAFE_INTEGER, (i) => `/memory[${i}]`);
  if (bad !== undefined) throw new BootDtbError("/memory", bad);
  const { base, size } = ramSpan(banks);
  const info: BootInfo = { ram: { base, size } };
  if (banks.length > 1 || numa > 0) info.banks = banks;
  if (numa > 0) info.numa = true;
  let chosen: number | undefined;
  try {
    chosen = fdt.pathOffset("/chosen");
  } catch (e) {
    if (!(e instanceof FdtError)) throw e;
  }
  if (chosen === undefined) return info;
  for (const [prop, key] of [
    [BOOT_KHO_FDT_PROP, "khoFdt"],
    [BOOT_KHO_SCRATCH_PROP, "khoScratch"],
  ] as const) {
    const v = fdt.getProp(chosen, prop);
    if (v === undefined) continue;
    if (v.length !== 16) {
      info.khoPropError ??= `/chosen/${prop}: length ${v.length}, expected 16 (<addr size> in 2+2 cells)`;
      continue;
    }
    info[key] = cells2(v);
  }
  return info;
}
