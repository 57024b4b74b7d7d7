/*
 * KHO scratch sizing and placement on a machine with banks and NUMA nodes:
 * the kho_scratch= early parameter, scratch_size_update(),
 * scratch_size_node() and kho_reserve_scratch() of
 * kernel/liveupdate/kexec_handover.c (torvalds/linux
 * dd03dd60e8cdd5ef0f0cbc18276c45009bcc51f4, v6.19, and
 * 019fc36872374db6fd35e118c9e935374404bfbf, kho-v2), with the sizes
 * memblock_reserved_kern_size() (mm/memblock.c) reports.
 *
 * The array is in the kernel's order: [0] lowmem below
 * ARCH_LOW_ADDRESS_LIMIT, [1] global, [2..] one per node, allocated on that
 * node only (memblock_alloc_range_nid(..., nid, exact_nid = true)). Which
 * nodes get one is the version difference: 6.16-6.19 count every online node
 * (num_online_nodes() + 2, for_each_online_node), so a memoryless node's
 * exact-node allocation fails and KHO is disabled; "kho: skip memoryless
 * NUMA nodes when reserving scratch areas" (Fixes 3dc92c311498), present at
 * 019fc3687237, counts node_states[N_MEMORY] only
 * (nodes_weight(node_states[N_MEMORY]) + 2, for_each_node_state(nid, N_MEMORY)).
 */
import { PAGE_SIZE } from "../abi/page.js";
import { hex } from "../lib/bytes.js";
import type { Logger } from "../lib/log.js";
import { MEMBLOCK_RSRV_KERN, type Memblock } from "./memblock/index.js";
import type { RamBank } from "../abi/ram.js";
import { memparse } from "./reserve-mem.js";

/** CMA_MIN_ALIGNMENT_BYTES on x86-64: one pageblock, PAGE_SIZE << pageblock_order (9). */
export const CMA_MIN_ALIGNMENT_BYTES = PAGE_SIZE << 9;
/** ARCH_LOW_ADDRESS_LIMIT on x86-64 (arch/x86/include/asm/processor.h): 4 GiB. */
export const KHO_LOW_ADDRESS_LIMIT = 2 ** 32;
/** scratch_scale's initial value: 200 %. */
export const KHO_SCRATCH_DEFAULT_SCALE = 200;

const U64 = (1n << 64n) - 1n;
const U32_MAX = 0xffff_ffffn;

/** What kho_scratch= set: a scale in percent (explicit sizes unused), or scale 0 and three sizes (u64). */
export interface KhoScratchParam {
  scale: number;
  lowmem: bigint;
  global: bigint;
  pernode: bigint;
}

/** The parameters before any kho_scratch= word: scale 200 %, no sizes. */
export function khoScratchDefaults(): KhoScratchParam {
  return { scale: KHO_SCRATCH_DEFAULT_SCALE, lowmem: 0n, global: 0n, pernode: 0n };
}

/* kstrtouint(s, 10): an optional '+', decimal digits, an optional trailing newline; overflow is -ERANGE. */
function kstrtouint(s: string): number | undefined {
  let t = s.startsWith("+") ? s.slice(1) : s;
  if (t.endsWith("\n")) t = t.slice(0, -1);
  if (!/^[0-9]+$/.test(t)) return undefined;
  const v = BigInt(t);
  return v > U32_MAX ? undefined : Number(v);
}

/**
 * khoParseScratchSize - apply one kho_scratch= value to @param as
 * kho_parse_scratch_size() does. "N%": at most 10 characters before the
 * '%', kstrtouint base 10, sets only the scale. Otherwise exactly three
 * memparse() values separated by single commas, the string fully consumed
 * and their sum (size_t, wrapping) non-zero: sets the sizes and scale 0.
 * @param: updated in place on success only (a reject keeps what was set)
 * @value: the text after "kho_scratch=", or undefined for a bare word
 *
 * Return: the pr_notice() line on success, or undefined for -EINVAL/-ERANGE.
 */
export function khoParseScratchSize(param: KhoScratchParam, value: string | undefined): string | undefined {
  if (value === undefined || value.length === 0) return undefined;
  if (value.endsWith("%")) {
    // char s_scale[11]: len > 11 is refused before the copy.
    if (value.length > 11) return undefined;
    const scale = kstrtouint(value.slice(0, -1));
    if (scale === undefined) return undefined;
    param.scale = scale;
    return `KHO: scratch scale is ${scale | 0}%`;
  }
  const sizes: bigint[] = [];
  let at = 0;
  let total = 0n;
  for (let i = 0; i < 3; i++) {
    if (i > 0) {
      if (value[at] !== ",") return undefined;
      at++;
    }
    const m = memparse(value, at);
    if (m.end === at) return undefined;
    at = m.end;
    sizes.push(m.value);
    total = (total + m.value) & U64;
  }
  if (total === 0n) return undefined;
  if (at !== value.length) return undefined;
  [param.lowmem, param.global, param.pernode] = sizes as [bigint, bigint, bigint];
  param.scale = 0;
  const mib = (v: bigint): string => String(v >> 20n);
  return `KHO: scratch areas: lowmem: ${mib(param.lowmem)}MiB global: ${mib(param.global)}MiB pernode: ${mib(param.pernode)}MiB`;
}

/**
 * parseKhoScratchCmdline - run every kho_scratch word of @cmdline through
 * khoParseScratchSize() in order, as do_early_param() (init/main.c) does:
 * a reject logs "Malformed early option 'kho_scratch'" and keeps the values
 * set so far. Return: the parameters, or undefined when no word names kho_scratch.
 */
export function parseKhoScratchCmdline(cmdline: string, log?: Logger): KhoScratchParam | undefined {
  let param: KhoScratchParam | undefined;
  for (const word of cmdline.split(/\s+/)) {
    const eq = word.indexOf("=");
    const key = eq < 0 ? word : word.slice(0, eq);
    if (key !== "kho_scratch") continue;
    param ??= khoScratchDefaults();
    const notice = khoParseScratchSize(param, eq < 0 ? undefined : word.slice(eq + 1));
    if (notice === undefined) log?.warn(`Malformed early option 'kho_scratch'`);
    else log?.info(notice);
  }
  return param;
}

/* round_up(x, align) on a u64 (align a power of two): wraps to 0 past 2^64, as in C. */
function roundUp64(x: bigint, align: number): bigint {
  const a = BigInt(align);
  return (((x - 1n) & U64) | (a - 1n)) + 1n & U64;
}

/**
 * memblockReservedKernSize - memblock_reserved_kern_size(@limit, nid): bytes
 * of MEMBLOCK_RSRV_KERN reservations below @limit, only those in @banks when
 * given (a region's node is its address's node: reserved regions get their
 * nid by address, as x86's numa_clear_kernel_node_hotplug() sets them).
 */
export function memblockReservedKernSize(mb: Memblock, limit: number, banks?: readonly RamBank[]): number {
  let total = 0;
  for (const r of mb.regions("reserved")) {
    if (!(r.flags & MEMBLOCK_RSRV_KERN) || r.base >= limit) continue;
    const end = Math.min(limit, r.base + r.size);
    if (!banks) total += end - r.base;
    else for (const b of banks) total += Math.max(0, Math.min(end, b.base + b.size) - Math.max(r.base, b.base));
  }
  return total;
}

/**
 * scratchSizeUpdate - scratch_size_update(): in percent mode lowmem =
 * round_up(kern below 4 GiB * scale / 100), global = round_up(all kern *
 * scale / 100 - lowmem) (u64: when everything lies below 4 GiB the
 * difference wraps and round_up takes it back to 0); in explicit mode the
 * sizes given. Rounding is to CMA_MIN_ALIGNMENT_BYTES.
 */
export function scratchSizeUpdate(p: KhoScratchParam, mb: Memblock): { lowmem: bigint; global: bigint } {
  if (p.scale === 0) return { lowmem: p.lowmem, global: p.global };
  const scale = BigInt(p.scale);
  const lowmem = roundUp64((BigInt(memblockReservedKernSize(mb, KHO_LOW_ADDRESS_LIMIT)) * scale) / 100n, CMA_MIN_ALIGNMENT_BYTES);
  const all = (BigInt(memblockReservedKernSize(mb, Number.MAX_SAFE_INTEGER)) * scale) / 100n;
  return { lowmem, global: roundUp64((all - lowmem) & U64, CMA_MIN_ALIGNMENT_BYTES) };
}

/**
 * scratchSizeNode - scratch_size_node(nid): round_up(the node's kern *
 * scale / 100), or the explicit per-node size rounded up. Called as each
 * node's turn comes, so it counts the scratch areas and the array already
 * reserved on that node, as the kernel's does.
 */
export function scratchSizeNode(p: KhoScratchParam, mb: Memblock, banks: readonly RamBank[]): bigint {
  const size = p.scale === 0 ? p.pernode : (BigInt(memblockReservedKernSize(mb, Number.MAX_SAFE_INTEGER, banks)) * BigInt(p.scale)) / 100n;
  return roundUp64(size, CMA_MIN_ALIGNMENT_BYTES);
}

/** One area of the kho_scratch array, with what it is for. */
export interface KhoScratchArea {
  addr: number;
  size: number;
  /** "lowmem", "global" or the node id. */
  kind: "lowmem" | "global" | number;
}

/* Top-down allocation in [start, end) (memblock_phys_alloc_range); size 0 reserves nothing but still finds an address, as memblock does. */
function allocRange(mb: Memblock, size: bigint, start: number, end: number): number {
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) return 0;
  const n = Number(size);
  if (n > 0) return mb.memblockPhysAllocRange(n, CMA_MIN_ALIGNMENT_BYTES, start, end);
  for (const r of mb.freeRanges().reverse()) {
    const top = Math.min(r.base + r.size, end);
    const cand = Math.floor(top / CMA_MIN_ALIGNMENT_BYTES) * CMA_MIN_ALIGNMENT_BYTES;
    if (cand >= Math.max(r.base, start) && cand > 0) return cand;
  }
  return 0;
}

/**
 * khoReserveScratch - kho_reserve_scratch() on @mb: scratchSizeUpdate(),
 * the array itself (memblock_alloc(count * 16, PAGE_SIZE)), then lowmem,
 * global and one area per node of @nodes (ascending id; a node with no banks
 * is memoryless), all freed again and KHO disabled on the first failure. @onlineNodes: the 6.16-6.19 rule (every node, memoryless or not);
 * false counts memory-bearing nodes only.
 *
 * Return: the areas in array order, or a reason when KHO is disabled.
 */
export function khoReserveScratch(
  mb: Memblock,
  param: KhoScratchParam,
  nodes: ReadonlyMap<number, readonly RamBank[]>,
  onlineNodes: boolean,
): { areas: KhoScratchArea[]; array: number } | { failed: string } {
  const used = new Map([...nodes].filter(([, b]) => onlineNodes || b.length > 0).sort((a, b) => a[0] - b[0]));
  const sizes = scratchSizeUpdate(param, mb);
  // memblock_alloc() reserves count * 16 bytes; khosim reserves the whole page, since memblock_free_all() frees only whole pages anyway.
  const arraySize = Math.ceil(((used.size + 2) * 16) / PAGE_SIZE) * PAGE_SIZE;
  const array = mb.memblockPhysAlloc(arraySize, PAGE_SIZE);
  if (!array) return { failed: "no room for the scratch array: Failed to reserve scratch area, disabling kexec handover" };
  const areas: KhoScratchArea[] = [];
  const fail = (what: string, size: bigint): { failed: string } => {
    for (const a of areas) if (a.size > 0) mb.memblockPhysFree(a.addr, a.size);
    mb.memblockPhysFree(array, arraySize);
    return { failed: `${what} scratch of ${hex(size)} bytes could not be allocated: Failed to reserve scratch area, disabling kexec handover` };
  };
  const low = allocRange(mb, sizes.lowmem, 0, KHO_LOW_ADDRESS_LIMIT);
  if (!low) return fail("lowmem", sizes.lowmem);
  areas.push({ addr: low, size: Number(sizes.lowmem), kind: "lowmem" });
  const glob = allocRange(mb, sizes.global, 0, Number.MAX_SAFE_INTEGER);
  if (!glob) return fail("global", sizes.global);
  areas.push({ addr: glob, size: Number(sizes.global), kind: "global" });
  for (const [nid, banks] of used) {
    const size = scratchSizeNode(param, mb, banks);
    let addr = 0;
    // exact_nid: only this node's memory, top-down (its highest bank first).
    for (let i = banks.length - 1; i >= 0 && !addr; i--) addr = allocRange(mb, size, banks[i]!.base, banks[i]!.base + banks[i]!.size);
    if (!addr) return fail(`node ${nid}${banks.length === 0 ? " (memoryless)" : ""}`, size);
    areas.push({ addr, size: Number(size), kind: nid });
  }
  return { areas, array };
}
