/*
 * RAM as firmware describes it (memory.img's layout is part of the handoff ABI): banks with holes between them, each on a
 * NUMA node. The boot DTB has one /memory node per bank (drivers/of/fdt.c
 * early_init_dt_scan_memory() memblock_adds every reg pair, and
 * of_numa_parse_memory_nodes() in drivers/of/of_numa.c sets its node from
 * numa-node-id; torvalds/linux 019fc36872374db6fd35e118c9e935374404bfbf).
 *
 * memory.img maps the banks back to back: a bank's file offset is the sum of
 * the sizes of the banks below it, so a hole costs neither file length nor
 * disk. ramFileOffset() is the one place that maps phys to file offset; with
 * one bank it is phys - base, the layout khosim always had.
 */
import { PAGE_SIZE } from "./page.js";
import { hex } from "../lib/bytes.js";

/** One RAM bank: [base, base + size) on NUMA node @node (0 when not NUMA). */
export interface RamBank {
  base: number;
  size: number;
  node: number;
}

/** Memory described by banks (SparseMem, ImageMem and OverlayMem carry one). */
export interface RamBanked {
  /** First byte of the lowest bank. */
  readonly base: number;
  /** Span from base to the end of the highest bank (holes included). */
  readonly size: number;
  /** The banks, ascending; absent means one bank [base, base + size). */
  readonly banks?: readonly RamBank[] | undefined;
}

/** Highest NUMA node id a DTB may give (MAX_NUMNODES with NODES_SHIFT 10, x86-64 MAXSMP). */
export const MAX_NUMNODES = 1024;

/** Bound on banks accepted from a DTB or a scenario (work stays bounded by the input). */
export const MAX_RAM_BANKS = 1024;

/** ramBanksOf - the banks of @mem (one bank when it has none). */
export function ramBanksOf(mem: RamBanked): readonly RamBank[] {
  return mem.banks ?? [{ base: mem.base, size: mem.size, node: 0 }];
}

/** ramSpan - base and span size of @banks (sorted, non-empty). */
export function ramSpan(banks: readonly RamBank[]): { base: number; size: number } {
  const first = banks[0]!;
  const last = banks[banks.length - 1]!;
  return { base: first.base, size: last.base + last.size - first.base };
}

/** ramTotal - bytes of RAM in @mem's banks (holes excluded): memory.img's length. */
export function ramTotal(mem: RamBanked): number {
  if (!mem.banks) return mem.size;
  let n = 0;
  for (const b of mem.banks) n += b.size;
  return n;
}

/* Index of the bank holding @phys, or -1 (binary search over the sorted banks). */
function bankIndex(banks: readonly RamBank[], phys: number): number {
  let lo = 0;
  let hi = banks.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const b = banks[mid]!;
    if (phys < b.base) hi = mid - 1;
    else if (phys >= b.base + b.size) lo = mid + 1;
    else return mid;
  }
  return -1;
}

/**
 * ramContains - true when [@phys, @phys + @len) lies in RAM: inside one bank,
 * or across banks that touch (no hole in between).
 */
export function ramContains(mem: RamBanked, phys: number, len: number): boolean {
  if (!Number.isSafeInteger(phys) || !Number.isSafeInteger(len) || len < 0) return false;
  if (phys < mem.base || phys + len > mem.base + mem.size) return false;
  const banks = mem.banks;
  if (!banks) return true;
  let i = bankIndex(banks, phys);
  if (i < 0) return false;
  let end = banks[i]!.base + banks[i]!.size;
  while (end < phys + len) {
    const next = banks[++i];
    if (next === undefined || next.base !== end) return false;
    end = next.base + next.size;
  }
  return true;
}

/** ramRunEnd - end of the RAM that continues from @phys without a hole (the span's end with one bank); @phys if it lies in a hole. */
export function ramRunEnd(mem: RamBanked, phys: number): number {
  const banks = mem.banks;
  if (!banks) return mem.base + mem.size;
  let i = bankIndex(banks, phys);
  if (i < 0) return phys;
  let end = banks[i]!.base + banks[i]!.size;
  while (banks[i + 1]?.base === end) end = banks[++i]!.base + banks[i]!.size;
  return end;
}

/** ramNodeOf - the NUMA node of the bank holding @phys, or undefined in a hole. */
export function ramNodeOf(mem: RamBanked, phys: number): number | undefined {
  if (!mem.banks) return phys >= mem.base && phys < mem.base + mem.size ? 0 : undefined;
  const i = bankIndex(mem.banks, phys);
  return i < 0 ? undefined : mem.banks[i]!.node;
}

/**
 * ramFileOffset - memory.img offset of @phys, which must lie in RAM: the
 * banks below it back to back, then its offset in its bank.
 */
export function ramFileOffset(mem: RamBanked, phys: number): number {
  const banks = mem.banks;
  if (!banks) return phys - mem.base;
  const i = bankIndex(banks, phys);
  if (i < 0) throw new RangeError(`${hex(phys)} lies in a RAM hole: it has no memory.img offset`);
  let off = 0;
  for (let j = 0; j < i; j++) off += banks[j]!.size;
  return off + phys - banks[i]!.base;
}

/** ramPhysOfFileOffset - the physical address at memory.img offset @off (< ramTotal), the inverse of ramFileOffset. */
export function ramPhysOfFileOffset(mem: RamBanked, off: number): number {
  const banks = mem.banks;
  if (!banks) return mem.base + off;
  for (const b of banks) {
    if (off < b.size) return b.base + off;
    off -= b.size;
  }
  throw new RangeError(`memory.img offset beyond the last bank`);
}

/**
 * checkRamBanks - why @banks cannot be RAM, or undefined when they can:
 * at least one, each page aligned and non-empty, ascending and
 * non-overlapping, ending at or below @limit, nodes in [0, MAX_NUMNODES).
 * @what names a bank in the message (e.g. `machine.banks[2]`).
 */
export function checkRamBanks(banks: readonly RamBank[], limit: number, what: (i: number) => string): string | undefined {
  if (banks.length === 0) return `${what(0)}: no RAM bank`;
  if (banks.length > MAX_RAM_BANKS) return `${what(MAX_RAM_BANKS)}: more than ${MAX_RAM_BANKS} banks`;
  let prevEnd = -1;
  for (let i = 0; i < banks.length; i++) {
    const b = banks[i]!;
    if (!Number.isSafeInteger(b.base) || !Number.isSafeInteger(b.size) || b.base + b.size > limit) {
      return `${what(i)}: [${hex(b.base)}, +${hex(b.size)}) ends above ${hex(limit)}`;
    }
    if (b.size === 0 || b.base % PAGE_SIZE !== 0 || b.size % PAGE_SIZE !== 0) {
      return `${what(i)}: [${hex(b.base)}, +${hex(b.size)}) is empty or not page aligned`;
    }
    if (b.base < prevEnd) return `${what(i)}: base ${hex(b.base)} overlaps or precedes the bank before it (ends ${hex(prevEnd)}); banks must be sorted and disjoint`;
    if (!Number.isInteger(b.node) || b.node < 0 || b.node >= MAX_NUMNODES) return `${what(i)}: node ${b.node} is not in [0, ${MAX_NUMNODES})`;
    prevEnd = b.base + b.size;
  }
  return undefined;
}
