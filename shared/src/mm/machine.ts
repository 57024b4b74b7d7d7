/*
 * The predecessor's machine at cold boot: RAM, memblock, the kernel image,
 * the early allocations, KHO scratch (kho_reserve_scratch) and the buddy
 * allocator that receives everything memblock leaves free.
 */
import { PAGE_SIZE } from "../abi/page.js";
import { BuddyAllocator } from "./buddy.js";
import { hex } from "../lib/bytes.js";
import type { Logger } from "../lib/log.js";
import { Memblock } from "./memblock/index.js";
import { SparseMem, type PageSource, type PhysMem } from "./physmem.js";
import { formatSize } from "../lib/size.js";
import { reserveMemAlloc, type ReserveMemEntry, type ReserveMemParam } from "./reserve-mem.js";

/** The simulated machine as configured (a scenario's machine section). */
export interface MachineConfig {
  ram: number;
  ramBase: number;
  maxOrder: number;
  /** Reserved at the base of RAM for the kernel image at cold boot. */
  kernelSize: number;
  /** Scratch sizes; global undefined means the default (room for the successor's early allocations). */
  scratch: { lowmem: number; global?: number | undefined };
}

/** struct kho_scratch: one scratch area. */
export interface KhoScratch {
  addr: number;
  size: number;
}

export interface Machine {
  config: MachineConfig;
  /** RAM contents; writeImage() stores the pages written through it. */
  mem: PhysMem & PageSource;
  memblock: Memblock;
  buddy: BuddyAllocator;
  scratch: KhoScratch[];
  /** reserve_mem's table (reserve_mem=), when the command line had any. */
  reserveMem?: ReserveMemEntry[];
}

/** Thrown when the configured machine cannot boot (scratch does not fit...). */
export class MachineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MachineError";
  }
}

/** Scratch areas are CMA: aligned to a pageblock (2 MiB on x86-64). */
export const SCRATCH_ALIGN = 2 * 2 ** 20;
/** ARCH_LOW_ADDRESS_LIMIT on x86-64: lowmem scratch lies below 4 GiB. */
export const ARCH_LOW_ADDRESS_LIMIT = 2 ** 32;
/** sizeof(struct page): the memmap costs this much per page frame. */
export const STRUCT_PAGE_SIZE = 64;

/** Bytes of memmap for @ramSize bytes of RAM, page aligned. */
export function memmapSize(ramSize: number): number {
  return Math.ceil(((ramSize / PAGE_SIZE) * STRUCT_PAGE_SIZE) / PAGE_SIZE) * PAGE_SIZE;
}

/**
 * coldBoot - boot the predecessor from nothing: add RAM, reserve the kernel
 * image, allocate the memmap, reserve scratch as kho_reserve_scratch() does
 * (lowmem first, then global, top-down), then memblock_free_all() into the
 * buddy allocator. Scratch stays reserved: the buddy never hands it out.
 * @reserveMem: reserve_mem= parameters, allocated after scratch (setup_arch)
 * and before the buddy (mm_core_init), as start_kernel's parse_args runs them.
 */
export function coldBoot(config: MachineConfig, log?: Logger, reserveMem: readonly ReserveMemParam[] = []): Machine {
  const { ramBase, ram } = config;
  const memblock = new Memblock();
  memblock.memblockAdd(ramBase, ram);
  memblock.memblockReserve(ramBase, config.kernelSize);
  const memmap = memblock.memblockPhysAlloc(memmapSize(ram), PAGE_SIZE);
  if (memmap === 0) throw new MachineError(`no room for the memmap (${formatSize(memmapSize(ram))})`);

  const scratch: KhoScratch[] = [];
  const lowEnd = Math.min(ARCH_LOW_ADDRESS_LIMIT, ramBase + ram);
  const wanted: [string, number, number][] = [
    ["lowmem", config.scratch.lowmem, ramBase < ARCH_LOW_ADDRESS_LIMIT ? lowEnd : ramBase + ram],
    ["global", config.scratch.global ?? 0, ramBase + ram],
  ];
  for (const [name, size, end] of wanted) {
    if (size === 0) continue;
    const addr = memblock.memblockPhysAllocRange(size, SCRATCH_ALIGN, ramBase, end);
    if (addr === 0) throw new MachineError(`failed to reserve ${name} scratch of ${formatSize(size)}, disabling kexec handover`);
    memblock.memblockMarkKhoScratch(addr, size);
    scratch.push({ addr, size });
    log?.info(`KHO: reserved ${name} scratch [${hex(addr)}-${hex(addr + size - 1)}] (${formatSize(size)})`);
  }
  scratch.sort((a, b) => a.addr - b.addr);

  const table: ReserveMemEntry[] = [];
  for (const p of reserveMem) {
    const e = reserveMemAlloc(memblock, p);
    if (e === undefined) log?.error(`reserve_mem: memblock allocation failed (${p.name}, ${formatSize(p.size)})`);
    else table.push(e);
  }

  const buddy = new BuddyAllocator(config.maxOrder);
  for (const r of memblock.freeRanges()) buddy.freeRange(r.base, r.size);
  log?.info(
    `memblock: ${formatSize(ram)} RAM at ${hex(ramBase)}, ${formatSize(memblock.memblockReservedSize())} reserved, ` +
      `${formatSize(buddy.freeBytes)} to the page allocator`,
  );
  const m: Machine = { config, mem: new SparseMem(ramBase, ram), memblock, buddy, scratch };
  if (reserveMem.length > 0) m.reserveMem = table;
  return m;
}

/**
 * successorMachine - the successor as the predecessor of the next generation:
 * its memblock after boot, the scratch areas it inherited (reused for the next
 * kexec, as the kernel keeps them), and a buddy allocator holding everything
 * memblock left free outside scratch, plus the pages kho_test consumed while
 * restoring (@consumed: reserved until then, freed after).
 */
export function successorMachine(
  ram: { base: number; size: number },
  maxOrder: number,
  mem: PhysMem & PageSource,
  memblock: Memblock,
  scratch: KhoScratch[],
  consumed: readonly { start: number; size: number }[],
): Machine {
  for (const c of consumed) memblock.memblockPhysFree(c.start, c.size);
  const buddy = new BuddyAllocator(maxOrder);
  const sorted = [...scratch].sort((a, b) => a.addr - b.addr);
  for (const r of memblock.freeRanges()) {
    let start = Math.ceil(r.base / PAGE_SIZE) * PAGE_SIZE;
    const end = Math.floor((r.base + r.size) / PAGE_SIZE) * PAGE_SIZE;
    for (const s of sorted) {
      if (s.addr + s.size <= start || s.addr >= end) continue;
      if (s.addr > start) buddy.freeRange(start, s.addr - start);
      start = Math.max(start, s.addr + s.size);
    }
    if (end > start) buddy.freeRange(start, end - start);
  }
  const config: MachineConfig = {
    ram: ram.size,
    ramBase: ram.base,
    maxOrder,
    kernelSize: 0,
    scratch: { lowmem: 0, global: 0 },
  };
  return { config, mem, memblock, buddy, scratch: sorted };
}
