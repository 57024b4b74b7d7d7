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
import { khoReserveScratch, khoScratchDefaults, parseKhoScratchCmdline, type KhoScratchParam } from "./kho-scratch.js";
import { ramSpan, type RamBank } from "../abi/ram.js";

/** The simulated machine as configured (a scenario's machine section). */
export interface MachineConfig {
  ram: number;
  ramBase: number;
  maxOrder: number;
  /** Reserved at the base of RAM for the kernel image at cold boot. */
  kernelSize: number;
  /** Scratch sizes; global undefined means the default (room for the successor's early allocations). */
  scratch: { lowmem: number; global?: number | undefined };
  /**
   * RAM banks with holes (ram.ts); ramBase and ram are then their span. With
   * banks or khoScratch the machine boots as coldBootBanked() describes and
   * @scratch is unused.
   */
  banks?: RamBank[] | undefined;
  /** NUMA nodes 0..nodes-1 (a node without banks is memoryless); set, the boot DTB carries numa-node-id. */
  nodes?: number | undefined;
  /** The kernel command line: kho_scratch= (kho-scratch.ts) is read from it at boot. */
  cmdline?: string | undefined;
  /** Which nodes get a scratch area: "online" (6.16-6.19: memoryless ones too, which fails) or "memory" (N_MEMORY, the fix); default "memory". */
  scratchNodes?: "online" | "memory" | undefined;
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
  const khoScratch = config.cmdline === undefined ? undefined : parseKhoScratchCmdline(config.cmdline, log);
  if (config.banks !== undefined || khoScratch !== undefined) return coldBootBanked(config, khoScratch, log, reserveMem);
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

  return finishBoot(config, memblock, scratch, new SparseMem(ramBase, ram), log, reserveMem);
}

/* reserve_mem= (after scratch, in setup_arch) and memblock_free_all() into the buddy. */
function finishBoot(config: MachineConfig, memblock: Memblock, scratch: KhoScratch[], mem: SparseMem, log: Logger | undefined, reserveMem: readonly ReserveMemParam[]): Machine {
  const table: ReserveMemEntry[] = [];
  for (const p of reserveMem) {
    const e = reserveMemAlloc(memblock, p);
    if (e === undefined) log?.error(`reserve_mem: memblock allocation failed (${p.name}, ${formatSize(p.size)})`);
    else table.push(e);
  }

  const buddy = new BuddyAllocator(config.maxOrder);
  for (const r of memblock.freeRanges()) buddy.freeRange(r.base, r.size);
  log?.info(
    `memblock: ${formatSize(memblock.memblockPhysMemSize())} RAM at ${hex(config.ramBase)}, ${formatSize(memblock.memblockReservedSize())} reserved, ` +
      `${formatSize(buddy.freeBytes)} to the page allocator`,
  );
  const m: Machine = { config, mem, memblock, buddy, scratch };
  if (reserveMem.length > 0) m.reserveMem = table;
  return m;
}

/** x86 reserves the first 1 MiB (BIOS data, real-mode trampoline): arch/x86/kernel/setup.c early_reserve_memory(). */
export const X86_LOW_RESERVE = 2 ** 20;
/** Where x86-64 loads the kernel image: LOAD_PHYSICAL_ADDR, CONFIG_PHYSICAL_START's default 16 MiB. */
export const X86_LOAD_PHYSICAL_ADDR = 16 * 2 ** 20;

/** machineNodes - node id -> its banks, for nodes 0..max(nodes, highest bank node + 1) - 1 (memoryless ones with none). */
export function machineNodes(banks: readonly RamBank[], nodes = 1): Map<number, RamBank[]> {
  const map = new Map<number, RamBank[]>();
  const n = Math.max(nodes, ...banks.map((b) => b.node + 1));
  for (let i = 0; i < n; i++) map.set(i, []);
  for (const b of banks) map.get(b.node)!.push(b);
  return map;
}

/**
 * coldBootBanked - cold boot of a machine given as banks or with
 * kho_scratch= (@khoScratch, else the 200 % default): one memblock_add per bank, [0, 1 MiB) reserved as x86 does,
 * the kernel image (MEMBLOCK_RSRV_KERN, as x86 setup_arch reserves it since
 * the KHO series) at 16 MiB or the start of the first bank above that which
 * holds it, each node's
 * memmap on that node, then kho_reserve_scratch() (kho-scratch.ts): sizes by
 * the kernel's rule and the array in its order, lowmem, global, per node.
 * Scratch that cannot be reserved disables KHO; khosim's predecessor has
 * then nothing to hand over and stops with the kernel's line (MachineError).
 */
function coldBootBanked(config: MachineConfig, khoScratch: KhoScratchParam | undefined, log: Logger | undefined, reserveMem: readonly ReserveMemParam[]): Machine {
  const banks = config.banks ?? [{ base: config.ramBase, size: config.ram, node: 0 }];
  const memblock = new Memblock();
  for (const b of banks) memblock.memblockAdd(b.base, b.size);
  for (const b of banks) if (b.base < X86_LOW_RESERVE) memblock.memblockReserve(b.base, Math.min(b.size, X86_LOW_RESERVE - b.base));
  const kbank = banks.find((b) => b.base + b.size - Math.max(b.base, X86_LOAD_PHYSICAL_ADDR) >= config.kernelSize);
  if (!kbank) throw new MachineError(`no RAM bank holds the ${formatSize(config.kernelSize)} kernel image at or above 16 MiB`);
  memblock.memblockReserveKern(Math.max(kbank.base, X86_LOAD_PHYSICAL_ADDR), config.kernelSize);
  const nodes = machineNodes(banks, config.nodes);
  for (const [nid, nb] of nodes) {
    const size = memmapSize(nb.reduce((n, b) => n + b.size, 0));
    if (nb.length === 0) continue;
    let at = 0;
    for (let i = nb.length - 1; i >= 0 && !at; i--) at = memblock.memblockPhysAllocRange(size, PAGE_SIZE, nb[i]!.base, nb[i]!.base + nb[i]!.size);
    if (!at) throw new MachineError(`no room on node ${nid} for its memmap (${formatSize(size)})`);
  }
  const got = khoReserveScratch(memblock, khoScratch ?? khoScratchDefaults(), nodes, config.scratchNodes === "online");
  if ("failed" in got) throw new MachineError(`KHO: ${got.failed}`);
  for (const a of got.areas) {
    if (a.size > 0) memblock.memblockMarkKhoScratch(a.addr, a.size);
    const what = typeof a.kind === "number" ? `node ${a.kind}` : a.kind;
    log?.info(`KHO: reserved ${what} scratch [${hex(a.addr)}-${hex(a.addr + a.size - 1)}] (${formatSize(a.size)})`);
  }
  const span = ramSpan(banks);
  const cfg: MachineConfig = { ...config, banks, ramBase: span.base, ram: span.size };
  return finishBoot(cfg, memblock, got.areas.map((a) => ({ addr: a.addr, size: a.size })), new SparseMem(span.base, span.size, banks), log, reserveMem);
}

/**
 * successorMachine - the successor as the predecessor of the next generation:
 * its memblock after boot, the scratch areas it inherited (reused for the next
 * kexec, as the kernel keeps them), and a buddy allocator holding everything
 * memblock left free outside scratch, plus the pages kho_test consumed while
 * restoring (@consumed: reserved until then, freed after).
 */
export function successorMachine(
  ram: { base: number; size: number; numa?: boolean | undefined },
  maxOrder: number,
  mem: PhysMem & PageSource,
  memblock: Memblock,
  scratch: KhoScratch[],
  consumed: readonly { start: number; size: number }[],
): Machine {
  for (const c of consumed) memblock.memblockPhysFree(c.start, c.size);
  // A banked (x86-layout) machine keeps [0, 1 MiB) out of the page allocator in every boot, as coldBootBanked() does.
  for (const b of mem.banks ?? []) if (b.base < X86_LOW_RESERVE) memblock.memblockReserve(b.base, Math.min(b.size, X86_LOW_RESERVE - b.base));
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
  // The boot DTB's banks and nodes carry over to the next handoff (memoryless nodes are not in it).
  if (mem.banks) config.banks = [...mem.banks];
  if (ram.numa && mem.banks) config.nodes = Math.max(...mem.banks.map((b) => b.node)) + 1;
  return { config, mem, memblock, buddy, scratch: sorted };
}
