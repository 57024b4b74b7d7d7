/*
 * The successor's reserve_mem= handling (mm/memblock.c reserve_mem() ->
 * reserve_mem_kho_revive(), reserve_mem_kho_retrieve_fdt(); v6.16 mainline
 * f99230780211, unchanged in its checks through 6.19):
 *
 *  - the `memblock` sub-FDT is fetched once; v6.16 restores its page with
 *    kho_restore_folio (so it must lie in preserved memory) and checks the
 *    root is memblock-v1; any failure: nothing is revived;
 *  - per name on this kernel's command line: child node by name,
 *    reserve-mem-v1, start and size 8 bytes each, start aligned to the
 *    requested alignment, size equal to the requested size. All pass: the
 *    range is taken as is (reserved_mem_add; it is already memblock-reserved
 *    by the KHO walk and never restored). Any fails: a fresh
 *    memblock_phys_alloc, which in the successor runs in scratch-only mode
 *    (the kernel's "TODO: Allocation must be outside of scratch region").
 *
 * The layout has no checksum, so the successor cannot judge the bytes;
 * it reports where each reservation is and whether that range lies wholly
 * in preserved memory, and tests compare the bytes with kernel-a's report.
 */
import { MEMBLOCK_KHO_FDT, MemblockFdt, MemblockFdtError } from "../../abi/memblock-fdt.js";
import { PAGE_SIZE } from "../../abi/page.js";
import { FdtError } from "../../fdt/index.js";
import { ByteReader, hex, u64ToNumber } from "../../lib/bytes.js";
import type { Logger } from "../../lib/log.js";
import type { Memblock } from "../../mm/memblock/index.js";
import type { PhysMem } from "../../mm/physmem.js";
import { reserveMemAlloc, type ReserveMemEntry, type ReserveMemParam } from "../../mm/reserve-mem.js";
import { KhoFdtError, khoRetrieveSubtree } from "../fdt.js";
import type { KhoFdt } from "../formats/types.js";
import type { KhoRestore } from "./restore.js";

/** What became of one reservation in the successor. */
export type ReserveMemOutcome = "revived" | "fresh: wrong size" | "fresh: wrong alignment" | "fresh: not in handoff" | "failed: no memory" | "unnamed";

/** One row of successor.json's reserveMem. */
export interface ReserveMemResult {
  name: string;
  outcome: ReserveMemOutcome;
  /** Where the reservation now is (null when the fresh allocation failed). */
  start: string | null;
  size: string;
  /** The range lies wholly in memory the handoff preserved (revived and unnamed rows). */
  preserved: boolean;
  /** The kernel's warning for a fresh or unnamed row; null when revived. */
  reason: string | null;
}

const FDT_HEADER_SIZE = 40;

/**
 * What reserve_mem= revival needs of the booted kernel's KHO state: the
 * faithful successor's (reserveMemKhoOf) or a version successor's
 * (kernels/boot.ts), which restores the sub-FDT page its own way.
 */
export interface ReserveMemKho {
  /** Set when this kernel has no KHO support for reserve_mem: why (it allocates fresh, in scratch-only mode). */
  unsupported?: string;
  /** kho_retrieve_subtree("memblock"): the raw pointer, undefined for -ENOENT; throws KhoFdtError when malformed. */
  retrieve(): bigint | undefined;
  /** The bytes of the sub-FDT at page-aligned @phys the kernel can read once it has the page, or why it has none. */
  fdtBytes(phys: number): number | string;
  /** [start, start + size) lies wholly in memory the handoff's walk reserved. */
  covered(start: number, size: number): boolean;
}

/** reserveMemKhoOf - the faithful successor's: v6.16's kho_restore_folio() of the sub-FDT page (it must be preserved). */
export function reserveMemKhoOf(kho: KhoFdt, restore: KhoRestore): ReserveMemKho {
  return {
    retrieve: () => khoRetrieveSubtree(kho, MEMBLOCK_KHO_FDT),
    fdtBytes: (phys) => {
      const ri = restore.findRange(phys);
      if (ri < 0) return "not a preserved page";
      const r = restore.rangeAt(ri);
      return Math.min(r.start + r.size - phys, PAGE_SIZE);
    },
    covered: (start, size) => restore.covered(start, size),
  };
}

/** reserve_mem_kho_retrieve_fdt: the checked sub-FDT, or the warning saying why there is none. */
function retrieveFdt(src: ReserveMemKho | undefined, mem: PhysMem): MemblockFdt | string {
  if (!src) return "KHO is not active";
  if (src.unsupported !== undefined) return src.unsupported;
  let raw: bigint | undefined;
  try {
    raw = src.retrieve();
  } catch (e) {
    if (e instanceof KhoFdtError) return `failed to retrieve FDT '${MEMBLOCK_KHO_FDT}' from KHO: ${e.message}`;
    throw e;
  }
  if (raw === undefined) return `no '${MEMBLOCK_KHO_FDT}' sub-tree in the KHO FDT`;
  const phys = u64ToNumber(raw);
  const avail = phys === undefined || phys % PAGE_SIZE !== 0 ? "not a page" : src.fdtBytes(phys);
  if (typeof avail === "string") return `failed to restore memblock KHO FDT (${hex(raw)}): ${avail}`;
  if (avail < FDT_HEADER_SIZE) return `memblock KHO FDT at ${hex(raw)}: less than a header of preserved memory`;
  const total = new ByteReader(mem.read(phys!, FDT_HEADER_SIZE)).u32be(4);
  if (total > avail) return `memblock KHO FDT at ${hex(raw)}: totalsize ${hex(total)} runs past its page`;
  try {
    return new MemblockFdt(mem.read(phys!, Math.max(total, FDT_HEADER_SIZE)));
  } catch (e) {
    if (e instanceof FdtError || e instanceof MemblockFdtError) return `FDT '${MEMBLOCK_KHO_FDT}' at ${hex(raw)}: ${e.message}`;
    throw e;
  }
}

/**
 * reserveMemRevive - reserveMemReviveFrom for the faithful successor
 * (@kho, @restore: its KHO FDT and walked ranges, undefined without KHO).
 */
export function reserveMemRevive(
  mb: Memblock,
  kho: KhoFdt | undefined,
  mem: PhysMem,
  restore: KhoRestore | undefined,
  params: readonly ReserveMemParam[],
  log?: Logger,
): ReserveMemResult[] {
  return reserveMemReviveFrom(mb, kho && restore ? reserveMemKhoOf(kho, restore) : undefined, mem, params, log);
}

/**
 * reserveMemReviveFrom - run this kernel's reserve_mem= @params against the
 * handoff: revive by name or allocate afresh in @mb (in scratch-only mode
 * when KHO is active), then list the preserved reservations no parameter
 * named (they stay reserved, unnamed). Never throws for bad handoff data.
 * @src: the booted kernel's KHO state (undefined when it booted without KHO)
 */
export function reserveMemReviveFrom(mb: Memblock, src: ReserveMemKho | undefined, mem: PhysMem, params: readonly ReserveMemParam[], log?: Logger): ReserveMemResult[] {
  const kho = src !== undefined;
  const fdt = retrieveFdt(src, mem);
  // As the kernel: a missing sub-tree (-ENOENT) is silent, anything else is warned about once.
  if (typeof fdt === "string" && kho && !fdt.startsWith("no ") && src.unsupported === undefined) log?.warn(`reserve_mem: ${fdt}`);
  const out: ReserveMemResult[] = [];
  const inPreserved = (start: number, size: number): boolean => src !== undefined && src.covered(start, size);
  for (const p of params) {
    let outcome: ReserveMemOutcome = "fresh: not in handoff";
    let reason = typeof fdt === "string" ? fdt : "";
    if (typeof fdt !== "string") {
      const l = fdt.lookup(p.name);
      const start = l.ok ? u64ToNumber(l.start) : undefined;
      if (!l.ok) reason = l.message;
      else if (l.start & BigInt(p.align - 1)) {
        outcome = "fresh: wrong alignment";
        reason = `KHO reserve-mem '${p.name}' has wrong alignment (${hex(p.align)}, ${hex(l.start)})`;
      } else if (l.size !== BigInt(p.size)) {
        outcome = "fresh: wrong size";
        reason = `KHO reserve-mem '${p.name}' has wrong size (${hex(l.size)} != ${hex(p.size)})`;
      } else if (start === undefined) {
        reason = `KHO reserve-mem '${p.name}' start ${hex(l.start)} is beyond what khosim addresses (2^53)`;
      } else {
        log?.info(`Revived memory reservation '${p.name}' from KHO`);
        out.push({ name: p.name, outcome: "revived", start: hex(start), size: hex(p.size), preserved: inPreserved(start, p.size), reason: null });
        continue;
      }
    }
    if (typeof fdt !== "string") log?.warn(reason);
    if (kho) mb.memblockSetKhoScratchOnly();
    const e = reserveMemAlloc(mb, p);
    if (kho) mb.memblockClearKhoScratchOnly();
    if (e === undefined) {
      log?.error(`reserve_mem: memblock allocation failed (${p.name})`);
      out.push({ name: p.name, outcome: "failed: no memory", start: null, size: hex(p.size), preserved: false, reason });
    } else {
      out.push({ name: p.name, outcome, start: hex(e.start), size: hex(e.size), preserved: false, reason });
    }
  }
  if (typeof fdt !== "string") {
    for (const name of fdt.names()) {
      if (params.some((p) => p.name === name)) continue;
      const l = fdt.lookup(name);
      const start = l.ok ? u64ToNumber(l.start) : undefined;
      const size = l.ok ? u64ToNumber(l.size) : undefined;
      const ok = start !== undefined && size !== undefined;
      out.push({
        name,
        outcome: "unnamed",
        start: l.ok ? hex(l.start) : null,
        size: l.ok ? hex(l.size) : "0x0",
        preserved: ok && inPreserved(start, size),
        reason: l.ok ? "not on this kernel's command line: stays reserved, unnamed" : l.message,
      });
    }
  }
  return out;
}

/**
 * reserveMemTable - the successor's reserved_mem_table after reserve_mem=
 * ran (@rows: reserveMemRevive's result): every revived or freshly allocated
 * row in command-line order, and the names of the revived ones (their bytes
 * are the predecessor's). Unnamed rows stay memblock-reserved but are in no
 * table, so nothing preserves them again; failed rows have no range.
 */
export function reserveMemTable(rows: readonly ReserveMemResult[]): { table: ReserveMemEntry[]; revived: Set<string> } {
  const table: ReserveMemEntry[] = [];
  const revived = new Set<string>();
  for (const r of rows) {
    if (r.start === null || r.outcome === "unnamed" || r.outcome === "failed: no memory") continue;
    table.push({ name: r.name, start: Number(BigInt(r.start)), size: Number(BigInt(r.size)) });
    if (r.outcome === "revived") revived.add(r.name);
  }
  return { table, revived };
}
