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
 *		};
 *		chosen {
 *			linux,kho-fdt = <addr-hi addr-lo size-hi size-lo>;
 *			linux,kho-scratch = <addr-hi addr-lo size-hi size-lo>;
 *		};
 *	};
 */
import { hex, u64beCells, u64ToNumber } from "../lib/bytes.js";
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

export interface AddrSize {
  addr: number;
  size: number;
}

export interface BootInfo {
  ram: { base: number; size: number };
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

/** buildBootDtb - the DTB a kexec loader would hand the successor. */
export function buildBootDtb(ram: { base: number; size: number }, khoFdt?: AddrSize, khoScratch?: AddrSize): Uint8Array {
  const w = new FdtWriter();
  w.finishReservemap();
  w.beginNode("");
  w.propertyU32("#address-cells", BOOT_ADDRESS_CELLS);
  w.propertyU32("#size-cells", BOOT_SIZE_CELLS);
  w.propertyString("compatible", BOOT_COMPATIBLE);
  w.beginNode(`memory@${ram.base.toString(16)}`);
  w.propertyString("device_type", "memory");
  w.property("reg", u64beCells(ram.base, ram.size));
  w.endNode();
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
  if (mems.length > 1) throw new BootDtbError("/memory", `${mems.length} memory nodes; khosim machines have one`);
  const memNode = mems[0]!;
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
  const info: BootInfo = { ram: { base, size } };
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
