/*
 * kho_populate for the successor (and for tools that inspect a handoff): read
 * /chosen's KHO properties, validate them against RAM, read the scratch array
 * and the KHO FDT. Any failure means "boot without KHO": KhoPopulateError says
 * exactly why.
 */
import { BOOT_KHO_FDT_PROP, BOOT_KHO_SCRATCH_PROP, KHO_SCRATCH_SIZE } from "../../abi/boot-dtb.js";
import { KHO_FDT_MAX_SIZE } from "../../abi/kho-fdt.js";
import { PAGE_SIZE } from "../../abi/page.js";
import type { BootInfo } from "../../abi/boot-dtb.js";
import { ByteReader, hex, u64ToNumber } from "../../lib/bytes.js";
import { KHO_FORMATS } from "../formats/index.js";
import { KhoFdtError, parseKhoFdt } from "../fdt.js";
import type { KhoFdt } from "../formats/types.js";
import type { KhoScratch } from "../../mm/machine.js";
import { physInRam, type PhysMem } from "../../mm/physmem.js";

/** The KHO data cannot be used; the successor boots without KHO. */
export class KhoPopulateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KhoPopulateError";
  }
}

const FDT_HEADER_SIZE = 40;

export interface KhoPopulated {
  kho: KhoFdt;
  fdtAddr: number;
  fdtSize: number;
  saAddr: number;
  saSize: number;
  /** Scratch areas, sorted by address. */
  scratch: KhoScratch[];
}

/** Bound on scratch areas accepted from the boot DTB. */
const MAX_SCRATCH_AREAS = 1024;

function overlaps(a: number, as: number, b: number, bs: number): boolean {
  return a < b + bs && b < a + as;
}

/**
 * khoPopulate - validate /chosen's KHO properties and read the KHO FDT and
 * the scratch array from @mem. Throws KhoPopulateError.
 */
export function khoPopulate(boot: BootInfo, mem: PhysMem): KhoPopulated {
  const noKho = (why: string): never => {
    throw new KhoPopulateError(why);
  };
  if (boot.khoPropError) noKho(boot.khoPropError);
  if (!boot.khoFdt) noKho(`no /chosen/${BOOT_KHO_FDT_PROP}: nothing was handed over`);
  if (!boot.khoScratch) noKho(`no /chosen/${BOOT_KHO_SCRATCH_PROP}`);
  const f = boot.khoFdt!;
  const s = boot.khoScratch!;
  const fdtAddr = u64ToNumber(f.addr);
  const fdtSize = u64ToNumber(f.size);
  if (fdtAddr === undefined || fdtSize === undefined || !physInRam(mem, fdtAddr, fdtSize)) {
    noKho(`/chosen/${BOOT_KHO_FDT_PROP}: [${hex(f.addr)}, +${hex(f.size)}) is outside RAM`);
  }
  if (fdtSize! < FDT_HEADER_SIZE || fdtSize! > KHO_FDT_MAX_SIZE) {
    noKho(`/chosen/${BOOT_KHO_FDT_PROP}: size ${hex(fdtSize!)} is not between ${FDT_HEADER_SIZE} and ${hex(KHO_FDT_MAX_SIZE)}`);
  }
  const saAddr = u64ToNumber(s.addr);
  const saSize = u64ToNumber(s.size);
  if (saAddr === undefined || saSize === undefined || !physInRam(mem, saAddr, saSize)) {
    noKho(`/chosen/${BOOT_KHO_SCRATCH_PROP}: [${hex(s.addr)}, +${hex(s.size)}) is outside RAM`);
  }
  if (saSize! === 0 || saSize! % KHO_SCRATCH_SIZE !== 0 || saSize! / KHO_SCRATCH_SIZE > MAX_SCRATCH_AREAS) {
    noKho(`/chosen/${BOOT_KHO_SCRATCH_PROP}: size ${hex(saSize!)} is not 1..${MAX_SCRATCH_AREAS} kho_scratch entries of ${KHO_SCRATCH_SIZE} bytes`);
  }
  const sa = new ByteReader(mem.read(saAddr!, saSize!));
  const scratch: KhoScratch[] = [];
  for (let i = 0; i < saSize! / KHO_SCRATCH_SIZE; i++) {
    const a = sa.u64le(i * KHO_SCRATCH_SIZE);
    const z = sa.u64le(i * KHO_SCRATCH_SIZE + 8);
    const addr = u64ToNumber(a);
    const size = u64ToNumber(z);
    const at = `kho_scratch[${i}] at ${hex(saAddr! + i * KHO_SCRATCH_SIZE)}`;
    // A size-0 area is what kho_reserve_scratch() writes when a percent size rounds to 0 (global, when all
    // kernel memory lies below 4 GiB); kho_populate()'s memblock_add()/memblock_mark_kho_scratch() do nothing with it.
    if (size === 0 && addr !== undefined) {
      scratch.push({ addr, size });
      continue;
    }
    if (addr === undefined || size === undefined || !physInRam(mem, addr, size)) noKho(`${at}: [${hex(a)}, +${hex(z)}) is outside RAM`);
    if (size! === 0 || addr! % PAGE_SIZE !== 0 || size! % PAGE_SIZE !== 0) noKho(`${at}: [${hex(addr!)}, +${hex(size!)}) is empty or not page aligned`);
    for (const o of scratch) if (overlaps(addr!, size!, o.addr, o.size)) noKho(`${at}: overlaps scratch area ${hex(o.addr)}`);
    scratch.push({ addr: addr!, size: size! });
  }
  for (const sc of scratch) {
    if (overlaps(fdtAddr!, fdtSize!, sc.addr, sc.size)) noKho(`/chosen/${BOOT_KHO_FDT_PROP}: KHO FDT at ${hex(fdtAddr!)} lies in scratch ${hex(sc.addr)}`);
    if (overlaps(saAddr!, saSize!, sc.addr, sc.size)) noKho(`/chosen/${BOOT_KHO_SCRATCH_PROP}: scratch array at ${hex(saAddr!)} lies in scratch ${hex(sc.addr)}`);
  }
  let kho: KhoFdt;
  try {
    kho = parseKhoFdt(mem.read(fdtAddr!, fdtSize!), KHO_FORMATS);
  } catch (e) {
    if (e instanceof KhoFdtError) noKho(`KHO FDT at ${hex(fdtAddr!)}: ${e.message}`);
    throw e;
  }
  scratch.sort((a, b) => a.addr - b.addr);
  return { kho: kho!, fdtAddr: fdtAddr!, fdtSize: fdtSize!, saAddr: saAddr!, saSize: saSize!, scratch };
}
