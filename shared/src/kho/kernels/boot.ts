/*
 * The version successor: kernel-b --kernel NAME, bootSuccessor(..., { kernel }).
 * It reads the handoff as kernel NAME does (docs/kernel-versions.md 2-3):
 *  1. kho_populate(): /chosen's properties, the KHO FDT's header and root
 *     compatible (fdt_node_check_compatible, exact string in the list); a
 *     scratch array of len / 16 entries, unchecked; v6.19 and kho-v2 also
 *     refuse a missing, short or zero map here. Refusal: boot without KHO.
 *  2. mark scratch, reserve the scratch array (not the KHO FDT: no mainline
 *     version does), scratch-only mode, early allocations from scratch;
 *  3. the version's walk (walk.ts): every reserve as that kernel computes it;
 *  4. v6.16/v6.18: kho_restore_folio() of the KHO FDT page;
 *  5. the consequences against what was preserved (truth.ts): pages lost,
 *     reads out of bounds, pfns outside RAM, wrong sizes, spurious pages;
 *  6. kho_test restored and verified with the version's restore (restore.ts).
 * It never crashes and never trusts a pointer: reads go through KernelView.
 */
import { KHO_POSTED_MARKER } from "../../abi/ranges.js";
import { PAGE_SIZE } from "../../abi/page.js";
import { OUTCOME_EXIT, RangeJsonStream } from "../../abi/handoff.js";
import { BOOT_KHO_FDT_PROP, BOOT_KHO_SCRATCH_PROP, KHO_SCRATCH_SIZE, type BootInfo } from "../../abi/boot-dtb.js";
import type { KernelReportJson, KernelVerdict, SuccessorReportJson } from "../../abi/handoff-json.js";
import { FolioTable } from "../../abi/kho-test.js";
import { FdtError } from "../../fdt/errors.js";
import { FdtRo, dtsValue, fdtStringlistContains } from "../../fdt/ro.js";
import { ByteReader, hex, u64ToNumber } from "../../lib/bytes.js";
import type { Logger } from "../../lib/log.js";
import { Memblock, MEMBLOCK_RSRV_NOINIT } from "../../mm/memblock/index.js";
import type { KhoScratch } from "../../mm/machine.js";
import { physInRam, type PhysMem } from "../../mm/physmem.js";
import type { KhoRangeTable } from "../track.js";
import type { PhysRecord } from "../out/workload.js";
import { earlyAllocations } from "../in/early.js";
import { coversRange, intervalBytes, mergeIntervals, subtractIntervals, type Intervals } from "./intervals.js";
import { MEMBLOCK_KHO_FDT } from "../../abi/memblock-fdt.js";
import type { ReserveMemParam } from "../../mm/reserve-mem.js";
import { khoRetrieveSubtree } from "../fdt.js";
import { reserveMemReviveFrom, type ReserveMemKho } from "../in/reserve-mem.js";
import { KernelRestore, kernelRestoreKhoTest } from "./restore.js";
import { khoPreservedTruth } from "./truth.js";
import { KHO_KERNELS, type KhoKernel, type KhoKernelName } from "./versions.js";
import { KernelReserves, KernelView, kernelBitmapsWalk, kernelPostingWalk, kernelRadixWalk, type KernelWalkResult } from "./walk.js";

/** Lost ranges listed in successor.json (the count and kernelLost are complete). */
export const MAX_LISTED_LOST = 100;
/** Largest KHO FDT the version successor copies out of memory. */
export const MAX_KHO_FDT_READ = 1 << 20;
/** Hazard lines listed in successor.json (the last says how many more there were). */
export const MAX_LISTED_HAZARDS = 100;

export interface KernelBootOptions {
  maxOrder: number;
  log?: Logger;
  /** Failures listed in the report. */
  maxListed: number;
  /** This kernel's reserve_mem= parameters (kernel-b --cmdline): revived as the version does (versionReserveMemKho). */
  reserveMem?: readonly ReserveMemParam[];
}

/**
 * versionReserveMemKho - reserve_mem= revival's view of kernel @k's boot:
 * the sub-tree read through @k's property, the sub-FDT page restored with
 * @k's kho_restore_folio() (restore-folio) or read as is (phys-to-virt,
 * RAM only: khosim reads nothing else), coverage by what @k reserved.
 */
function versionReserveMemKho(k: KhoKernel, fdt: FdtRo, mem: PhysMem, pr: KernelRestore, reserved: Intervals): ReserveMemKho {
  const how = k.successor.reserveMem;
  return {
    ...(how === "none" ? { unsupported: `${k.name} has no KHO support for reserve_mem (mm/memblock.c reserve_mem_kho_revive() is v6.16's, f99230780211)` } : {}),
    retrieve: () => khoRetrieveSubtree({ fdt, format: { compatible: k.successor.compatible, fdtLayout: { ...k.predecessor.format.fdtLayout, subtreeProp: k.successor.subtreeProp } }, metadata: 0n }, MEMBLOCK_KHO_FDT),
    fdtBytes: (phys) => {
      if (how === "phys-to-virt") return physInRam(mem, phys, PAGE_SIZE) ? PAGE_SIZE : "outside RAM";
      const got = pr.khoRestoreFolio(phys, 0);
      return typeof got === "string" ? `kho_restore_folio: ${got}` : PAGE_SIZE;
    },
    covered: (start, size) => coversRange(reserved, start, size),
  };
}

/** kernelBootSuccessor's result: SuccessorBoot's shape (in/successor.ts) plus every lost range. */
export interface KernelBoot {
  report: SuccessorReportJson;
  memblock: Memblock;
  scratch: KhoScratch[];
  carried: { folios: FolioTable; phys: PhysRecord[]; consumed: { start: number; size: number }[] };
  rangeStream: RangeJsonStream;
  kernelLost: KhoRangeTable;
}

class Refused extends Error {}

function tableOf(iv: Intervals): KhoRangeTable {
  const n = iv.start.length;
  const t = { count: n, start: new Float64Array(n), size: new Float64Array(n), data: new Uint16Array(n) };
  for (let i = 0; i < n; i++) {
    t.start[i] = iv.start[i]!;
    t.size[i] = iv.end[i]! - iv.start[i]!;
  }
  return t;
}

/**
 * kernelBootSuccessor - boot from @boot and @mem as kernel @name reads a
 * handoff (see the file comment). Never throws for bad KHO data; throws
 * UnusableInputError when the machine cannot boot (early allocations).
 */
export function kernelBootSuccessor(boot: BootInfo, mem: PhysMem, name: KhoKernelName, opts: KernelBootOptions): KernelBoot {
  const k = KHO_KERNELS[name];
  const { log } = opts;
  const { base, size } = boot.ram;
  const mb = new Memblock();
  for (const b of boot.banks ?? [{ base, size }]) mb.memblockAdd(b.base, b.size);
  const rep: SuccessorReportJson = {
    outcome: "revived", exitCode: 0, reason: null, format: null, ram: { base: hex(base), size: hex(size) }, scratch: [], khoFdt: null, metadata: null,
    chunks: [], ranges: [], reserveCalls: 0, restored: { folios: 0, ranges: 0 }, verified: { folios: 0, ranges: 0, bytes: 0, unchecked: 0 }, failureCount: 0, failures: [],
    memblock: { memory: "0x0", reserved: "0x0", reservedRegions: 0, noinitReserved: "0x0", free: "0x0", earlyAllocations: "0x0" },
  };
  const kr: KernelReportJson = {
    name, source: k.source, verdict: "intact", preservedPages: 0, lostPages: 0, firstLost: null, lost: [], oobReadBytes: 0, firstOobRead: null, outsideRamPfns: 0,
    firstOutsideRam: null, wrongSizeReserves: 0, firstWrongSize: null, spuriousPages: 0, firstSpurious: null, doubleRestores: 0, hazards: [],
  };
  const view = new KernelView(mem);
  const res = new KernelReserves(k, mb, boot.ram);
  const scratch: KhoScratch[] = [];
  let lost: Intervals = { start: [], end: [] };
  let early = 0;
  let verdictLine: string | undefined;
  let rmKho: ReserveMemKho | undefined;
  const refuse = (why: string): never => {
    throw new Refused(why);
  };
  try {
    if (boot.khoPropError) refuse(boot.khoPropError);
    if (!boot.khoFdt || !boot.khoScratch) refuse(`no /chosen/${!boot.khoFdt ? BOOT_KHO_FDT_PROP : BOOT_KHO_SCRATCH_PROP}: nothing was handed over`);
    const fdtAddr = u64ToNumber(boot.khoFdt!.addr);
    const fdtSize = u64ToNumber(boot.khoFdt!.size);
    // khosim reads only RAM; a kernel would early_memremap() anything (a deviation on unusable inputs only).
    if (fdtAddr === undefined || fdtSize === undefined || fdtSize === 0 || !physInRam(mem, fdtAddr, fdtSize)) refuse(`/chosen/${BOOT_KHO_FDT_PROP}: [${hex(boot.khoFdt!.addr)}, +${hex(boot.khoFdt!.size)}) is outside RAM`);
    const saAddr = u64ToNumber(boot.khoScratch!.addr);
    const saSize = u64ToNumber(boot.khoScratch!.size);
    if (saAddr === undefined || saSize === undefined || !physInRam(mem, saAddr, saSize)) refuse(`/chosen/${BOOT_KHO_SCRATCH_PROP}: [${hex(boot.khoScratch!.addr)}, +${hex(boot.khoScratch!.size)}) is outside RAM`);
    // Mainline maps fdt_len bytes, however many; khosim bounds the copy (every predecessor's KHO FDT is one page).
    if (fdtSize! > MAX_KHO_FDT_READ) refuse(`/chosen/${BOOT_KHO_FDT_PROP}: size ${hex(fdtSize!)} is more than the ${hex(MAX_KHO_FDT_READ)} bytes khosim reads`);
    rep.khoFdt = { addr: hex(fdtAddr!), size: hex(fdtSize!) };
    let fdt: FdtRo;
    try {
      fdt = new FdtRo(mem.read(fdtAddr!, fdtSize!));
    } catch (e) {
      if (e instanceof FdtError) return refuse(`KHO FDT at ${hex(fdtAddr!)}: ${e.message}`);
      throw e;
    }
    // fdt_node_check_compatible(fdt, 0, KHO_FDT_COMPATIBLE): one entry of the list equal to it.
    const compat = fdt.getProp(0, "compatible");
    if (!compat || !fdtStringlistContains(compat, k.successor.compatible)) {
      refuse(`KHO FDT at ${hex(fdtAddr!)}: /compatible ${compat ? dtsValue(compat) : "missing"} does not list "${k.successor.compatible}" (kho_populate, fdt_node_check_compatible)`);
    }
    // The map pointer, read where this version reads it.
    const mapPath = k.successor.mapNode === "" ? `/${k.successor.mapProp}` : `/${k.successor.mapNode}/${k.successor.mapProp}`;
    let mapVal: Uint8Array | undefined;
    try {
      mapVal = fdt.getProp(k.successor.mapNode === "" ? 0 : fdt.pathOffset(`/${k.successor.mapNode}`), k.successor.mapProp);
    } catch {
      mapVal = undefined;
    }
    let map: bigint | undefined;
    let mapNote: string | undefined;
    if (mapVal === undefined || mapVal.length !== 8) {
      mapNote = `${mapPath} ${mapVal === undefined ? "missing" : `is ${mapVal.length} bytes, not 8`}`;
      if (k.successor.missingMap === "refuse") refuse(`${mapNote} (kho_get_mem_map_phys returns 0: kho_populate refuses)`);
    } else {
      map = new ByteReader(mapVal).u64le(0);
      rep.metadata = hex(map);
      if (map === 0n) {
        mapNote = `${mapPath} is 0`;
        if (k.successor.zeroMap === "refuse") refuse(`${mapNote} (kho_populate refuses a zero map)`);
        if (k.successor.zeroMap === "revive-empty") map = undefined;
      }
    }

    // Revive: scratch_cnt = len / 16, each area memblock_add()ed and marked, the array reserved.
    const sa = new ByteReader(mem.read(saAddr!, saSize!));
    for (let i = 0; i + KHO_SCRATCH_SIZE <= saSize!; i += KHO_SCRATCH_SIZE) {
      const a = u64ToNumber(sa.u64le(i));
      const z = u64ToNumber(sa.u64le(i + 8));
      // Size 0 (a percent size that rounded to 0): memblock_add()/mark of nothing, as the kernel does.
      if (z === 0 && a !== undefined) continue;
      if (a === undefined || z === undefined || z === 0 || !physInRam(mem, a, z) || a % PAGE_SIZE !== 0 || z % PAGE_SIZE !== 0) {
        kr.hazards.push(`kho_scratch[${i / KHO_SCRATCH_SIZE}] [${hex(sa.u64le(i))}, +${hex(sa.u64le(i + 8))}) is not page-aligned RAM: the kernel would memblock_add() it as scratch anyway (khosim skips it)`);
        continue;
      }
      scratch.push({ addr: a, size: z });
      mb.memblockMarkKhoScratch(a, z);
    }
    scratch.sort((x, y) => x.addr - y.addr);
    rep.scratch = scratch.map((s) => ({ addr: hex(s.addr), size: hex(s.size) }));
    mb.memblockReserve(saAddr!, saSize!);
    mb.memblockSetKhoScratchOnly();
    early = earlyAllocations(mb, mb.memblockPhysMemSize());
    let walk: KernelWalkResult | undefined;
    if (map !== undefined) {
      if (k.successor.map === "bitmaps") walk = kernelBitmapsWalk(k, view, res, map);
      else if (k.successor.map === "radix") walk = kernelRadixWalk(view, res, map);
      else {
        let posted = false;
        try {
          posted = fdt.getProp(fdt.pathOffset(`/${k.successor.mapNode}`), KHO_POSTED_MARKER) !== undefined;
        } catch {
          posted = false;
        }
        walk = kernelPostingWalk(view, res, map, posted);
      }
      if (res.exhausted) {
        const line = `more than ${res.budget} memblock_reserve() calls (pages of RAM + 65536): the walk reads garbage and was cut short`;
        walk.hazards.push(line);
        walk.corrupt ??= line;
      }
      rep.format = walk.written;
      rep.chunks = walk.objects.map(hex);
      kr.hazards.push(...walk.hazards);
    } else {
      kr.hazards.push(`${mapNote}: revived with nothing reserved (kho_mem_deserialize returns early)`);
    }
    mb.memblockClearKhoScratchOnly();
    rep.reserveCalls = res.calls;
    rep.ranges = res.list.map((r) => ({ start: hex(r.start), size: hex(r.size), data: hex(r.data) }));
    log?.info(`KHO (${name}): ${res.calls} memblock_reserve calls from ${rep.chunks.length} metadata objects`);

    const reserved = mergeIntervals(res.starts, res.ends);
    const pr = new KernelRestore(k, mem, res.pagePrivate, reserved, opts.maxOrder);
    rmKho = versionReserveMemKho(k, fdt, mem, pr, reserved);
    if (k.successor.restoresFdtFolio) {
      const page = Math.floor(fdtAddr! / PAGE_SIZE) * PAGE_SIZE;
      const got = pr.khoRestoreFolio(page, 0);
      if (typeof got === "string" || !reserved.start.some((s, i) => s <= page && page < reserved.end[i]!)) {
        kr.hazards.push(`kho_restore_folio(${hex(page)}) of the KHO FDT page: ${typeof got === "string" ? got : "the page was not reserved: memblock frees it too"}`);
      }
    }
    // The consequences, against what was preserved.
    const truth = khoPreservedTruth(mem, fdt, fdtAddr!, fdtSize!);
    if (truth.note) kr.hazards.push(`preserved pages: ${truth.note}`);
    kr.preservedPages = intervalBytes(truth.preserved) / PAGE_SIZE;
    lost = subtractIntervals(truth.preserved, reserved);
    const spurious = subtractIntervals(reserved, truth.preserved);
    kr.lostPages = intervalBytes(lost) / PAGE_SIZE;
    kr.firstLost = lost.start.length > 0 ? hex(lost.start[0]!) : null;
    kr.lost = lost.start.slice(0, MAX_LISTED_LOST).map((s, i) => ({ start: hex(s), size: hex(lost.end[i]! - s) }));
    kr.spuriousPages = Math.round(intervalBytes(spurious) / PAGE_SIZE);
    kr.firstSpurious = spurious.start.length > 0 ? hex(spurious.start[0]!) : null;
    kr.oobReadBytes = view.oobBytes;
    kr.firstOobRead = view.firstOob === undefined ? null : hex(view.firstOob);
    kr.outsideRamPfns = res.outsideRamPfns;
    kr.firstOutsideRam = res.firstOutsideRamPfn === undefined ? null : hex(res.firstOutsideRamPfn << 12n);
    kr.wrongSizeReserves = res.wrongSize;
    const w = res.firstWrong;
    kr.firstWrongSize = w ? { addr: hex(w.addr), reserved: hex(w.reserved), intended: hex(w.intended) } : null;
    const mark = kr.hazards.length;
    if (res.outsideRamPfns > 0) kr.hazards.push(`page->private written for ${res.outsideRamPfns} pfns outside RAM (first ${kr.firstOutsideRam}): no struct page there`);
    if (res.oversizeNoinit > 0) kr.hazards.push(`${res.oversizeNoinit} memblock_reserve() larger than the block (first ${hex(w!.addr)}: ${hex(w!.reserved)} for ${hex(w!.intended)}), marked noinit: memory never preserved withheld with uninitialised struct pages`);
    if (res.outsideRam > 0) kr.hazards.push(`${res.outsideRam} memblock_reserve() calls entirely outside RAM`);
    if (kr.lostPages > 0) kr.hazards.push(`${kr.lostPages} of ${kr.preservedPages} preserved pages not reserved (first ${kr.firstLost}): freed to the page allocator`);
    if (view.oobBytes > 0) kr.hazards.push(`${view.oobBytes} bytes read outside the metadata the predecessor wrote (first ${kr.firstOobRead})`);

    const v = kernelRestoreKhoTest(fdt, mem, pr, opts.maxListed);
    rep.restored = v.restored;
    rep.verified = v.verified;
    rep.failures = v.failures;
    rep.failureCount = v.failureCount;
    kr.doubleRestores = pr.doubleRestores;
    kr.verdict = res.outsideRamPfns > 0 || res.oversizeNoinit > 0 || walk?.corrupt !== undefined ? "would-corrupt" : view.oobBytes > 0 ? "read-out-of-bounds" : kr.lostPages > 0 ? "pages-lost" : "intact";
    // The reason names the consequence that decided the verdict: the walk's own hazard first, then in the order pushed above.
    const ranked = kr.hazards.slice(mark);
    verdictLine = kr.verdict === "would-corrupt" ? (walk?.corrupt ?? ranked[0]) : kr.verdict === "read-out-of-bounds" ? ranked.find((h) => h.includes("bytes read outside")) : ranked.find((h) => h.includes("preserved pages not reserved"));
  } catch (e) {
    if (!(e instanceof Refused)) throw e;
    rep.outcome = "booted-without-kho";
    rep.reason = e.message;
    kr.verdict = "refused";
    scratch.length = 0;
    log?.warn(`KHO (${name}): disabling KHO revival: ${e.message}`);
    if (early === 0) early = earlyAllocations(mb, mb.memblockPhysMemSize());
  }
  // reserve_mem= after the walk, as the faithful successor (in/successor.ts) runs it.
  if (opts.reserveMem) rep.reserveMem = reserveMemReviveFrom(mb, rmKho, mem, opts.reserveMem, log);
  const unsafe: readonly KernelVerdict[] = ["pages-lost", "read-out-of-bounds", "would-corrupt"];
  if (unsafe.includes(kr.verdict)) {
    rep.outcome = "revived-unsafely";
    rep.reason = `${name}: ${kr.verdict}: ${verdictLine ?? kr.hazards[kr.hazards.length - 1]}`;
  } else if (kr.verdict === "intact" && rep.failureCount > 0) {
    rep.outcome = "verification-failed";
    rep.reason = `${rep.failureCount} verification failure(s); first: ${rep.failures[0]!.phys ? rep.failures[0]!.phys + ": " : ""}${rep.failures[0]!.reason}`;
  }
  rep.exitCode = OUTCOME_EXIT[rep.outcome];
  rep.memblock = {
    memory: hex(mb.memblockPhysMemSize()),
    reserved: hex(mb.memblockReservedSize()),
    reservedRegions: mb.regionCount("reserved"),
    noinitReserved: hex(mb.sizeWithFlag("reserved", MEMBLOCK_RSRV_NOINIT)),
    free: hex(mb.freeSize()),
    earlyAllocations: hex(early),
  };
  // Hazards are one line per consequence, but a damaged list can repeat one per chunk: keep the report bounded.
  if (kr.hazards.length > MAX_LISTED_HAZARDS) kr.hazards = [...kr.hazards.slice(0, MAX_LISTED_HAZARDS - 1), `... and ${kr.hazards.length - MAX_LISTED_HAZARDS + 1} more`];
  rep.kernel = kr;
  return {
    report: rep,
    memblock: mb,
    scratch,
    carried: { folios: new FolioTable(0), phys: [], consumed: [] },
    // The reserve calls are rep.ranges (sizes may pass 2^53); the stream is left empty.
    rangeStream: new RangeJsonStream(0, () => undefined),
    kernelLost: tableOf(lost),
  };
}
