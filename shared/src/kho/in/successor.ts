/*
 * The successor's boot, as a pure function of its inputs: the decoded boot DTB
 * and a view of physical memory. kernel-b's main does the I/O around it; the
 * fuzzer calls it in process.
 *
 * Order of events (mainline's, with the careful checks the seed lacks):
 *  1. validate the KHO FDT and the scratch array; any failure: boot without
 *     KHO ("disabling KHO revival") and say why;
 *  2. mark scratch, reserve the FDT and the scratch array, enter scratch-only
 *     mode and make the early allocations (memmap, page tables) from scratch;
 *  3. walk the chunk list completely before reserving anything, so that a
 *     damaged list leaves nothing half reserved;
 *  4. memblock_reserve + memblock_reserved_mark_noinit every range; the chunk
 *     pages were never reserved, so they are free memory again;
 *  5. leave scratch-only mode and release everything not reserved;
 *  6. restore every folio the kho_test sub-tree lists and verify checksums.
 */
import { KHO_TEST_FDT } from "../../abi/kho-test.js";
import { PAGE_SIZE } from "../../abi/page.js";
import { KhoFdtError, khoRetrieveSubtree } from "../fdt.js";
import { KhoPopulateError, khoPopulate } from "./populate.js";
import { KhoTestError, FolioTable, khoTestHeaderInfoSize, parseKhoTestFdt } from "../../abi/kho-test.js";
import { readKhoTestInfo } from "./test-info.js";
import { BoundsError, ByteReader, hex, u64ToNumber } from "../../lib/bytes.js";
import { KhoMetadataError, type KhoFdt } from "../formats/types.js";
import { Memblock, MEMBLOCK_RSRV_NOINIT } from "../../mm/memblock/index.js";
import { PhysMemError, physInRam, type PhysMem } from "../../mm/physmem.js";
import { csum64 } from "../../lib/csum.js";
import type { Logger } from "../../lib/log.js";
import { type KhoScratch } from "../../mm/machine.js";
import { UnusableInputError, earlyAllocations } from "./early.js";
import { BootDtbError, parseBootDtb, type BootInfo } from "../../abi/boot-dtb.js";
import { type KhoRangeTable } from "../track.js";
import { type PhysRecord } from "../out/workload.js";
import { KhoRestore, KhoRestoreError, khoRangeTableOf, khoRestoreFolioRuns, khoRestoreRecordedFolio } from "./restore.js";
import { OUTCOME_EXIT } from "../../abi/handoff.js";
import type { SuccessorReportJson, VerifyFailure } from "../../abi/handoff-json.js";
import { RangeJsonStream } from "../../abi/handoff.js";
import { kernelBootSuccessor } from "../kernels/boot.js";
import type { KhoKernelName } from "../kernels/versions.js";
import type { ReserveMemParam } from "../../mm/reserve-mem.js";
import { reserveMemRevive } from "./reserve-mem.js";
import { restorePageRecords } from "./verify-pages.js";
import type { CarriedPages } from "../out/workload-pages.js";
import { luoRestore } from "./luo.js";
import type { LuoCarried } from "../out/luo-scenario.js";

export type { Outcome } from "../../abi/handoff.js";
export { UnusableInputError } from "./early.js";

/**
 * parseSuccessorBootDtb - decode the boot DTB @bytes (read from @file) as the
 * successor does: a DTB it cannot boot from is UnusableInputError naming @file.
 */
export function parseSuccessorBootDtb(bytes: Uint8Array, file: string): BootInfo {
  try {
    return parseBootDtb(bytes);
  } catch (e) {
    if (e instanceof BootDtbError) throw new UnusableInputError(`${file}: ${e.message}`);
    throw e;
  }
}

export interface SuccessorOptions {
  /** MAX_PAGE_ORDER of this kernel: folios of higher order cannot be restored. */
  maxOrder: number;
  log?: Logger;
  /** Called as preserved bytes are read for verification (done, total). */
  progress?: (done: number, total: number) => void;
  /**
   * Leave report.ranges empty and give the reserved ranges only as
   * SuccessorBoot.rangeStream (kernel-b streams them into successor.json:
   * no object or string per range).
   */
  streamRanges?: boolean;
  /**
   * Read the handoff as this kernel version does (kho/kernels/boot.ts):
   * report.kernel says what that kernel would get wrong. Unset: the careful
   * successor.
   */
  kernel?: KhoKernelName;
  /** This kernel's reserve_mem= parameters (kernel-b --cmdline); report.reserveMem says what became of each. */
  reserveMem?: readonly ReserveMemParam[];
}

export type { VerifyFailure } from "../../abi/handoff-json.js";

/** Cap on failures listed in the report (the count is always exact). */
export const MAX_LISTED_FAILURES = 100;

/** successor.json (abi/handoff-json.ts), plus timings that are not written to it. */
export type SuccessorReport = SuccessorReportJson & {
  /** Nanoseconds of the chunk-list walk and of the reserve loop (bench only; not in the report file). */
  timing?: { walkNs: number; reserveNs: number };
};

const FDT_HEADER_SIZE = 40;

function pageSpan(addr: number, size: number): { start: number; size: number } {
  const start = Math.floor(addr / PAGE_SIZE) * PAGE_SIZE;
  return { start, size: Math.ceil((addr + size) / PAGE_SIZE) * PAGE_SIZE - start };
}

/**
 * What the successor restored and verified, in the predecessor's terms, so it
 * can preserve it again when it hands off (the next live update), plus the
 * pages consumed by then: kho_test's sub-tree FDT and info blob (freed after
 * restore, as test_kho vfree()s its array), the old KHO FDT and scratch array.
 */
export interface Carried extends Partial<CarriedPages> {
  folios: FolioTable;
  phys: PhysRecord[];
  consumed: { start: number; size: number }[];
  /** LUO sessions and memfds user space retrieved and verified (a daemon preserves them again). */
  luo?: LuoCarried;
}

/*
 * Why [phys, phys + len) cannot be restored because it is not RAM this kernel
 * has (a hole between /memory banks, or outside them), or undefined:
 * kho_restore_page()'s pfn_to_online_page() returns NULL there and the
 * restore fails (kernel/liveupdate/kexec_handover.c @ dd03dd60e8cd).
 */
function offlineReason(mem: PhysMem, phys: number, len: number): string | undefined {
  if (physInRam(mem, phys, len)) return undefined;
  const bad = physInRam(mem, phys, 1) ? phys + Math.max(0, len - 1) : phys;
  const where = bad >= mem.base && bad < mem.base + mem.size ? "lies in a hole between RAM banks" : "is outside RAM";
  return `pfn_to_online_page(${hex(Math.floor(bad / PAGE_SIZE))}) is NULL: ${hex(bad)} ${where}, restore fails`;
}

/** Restore and verify what the kho_test sub-tree lists. */
function restoreKhoTest(kho: KhoFdt, mem: PhysMem, restore: KhoRestore, rep: SuccessorReport, carried: Carried, opts: SuccessorOptions): void {
  const { log, progress } = opts;
  const fail = (f: VerifyFailure): void => {
    rep.failureCount++;
    if (rep.failures.length < MAX_LISTED_FAILURES) rep.failures.push(f);
  };
  let subPhysRaw: bigint | undefined;
  try {
    subPhysRaw = khoRetrieveSubtree(kho, KHO_TEST_FDT);
  } catch (e) {
    if (e instanceof KhoFdtError) return fail({ kind: "subtree", reason: e.message });
    throw e;
  }
  if (subPhysRaw === undefined) {
    log?.info(`KHO: no ${KHO_TEST_FDT} sub-tree, nothing to verify`);
    return;
  }
  const subPhys = u64ToNumber(subPhysRaw);
  const ri = subPhys === undefined ? -1 : restore.findRange(subPhys);
  if (ri < 0) return fail({ kind: "subtree", phys: hex(subPhysRaw), reason: `${KHO_TEST_FDT} FDT at ${hex(subPhysRaw)} is not in preserved memory` });
  const range = restore.rangeAt(ri);
  const offSub = offlineReason(mem, subPhys!, 1);
  if (offSub) return fail({ kind: "subtree", phys: hex(subPhys!), reason: `${KHO_TEST_FDT} FDT: ${offSub}` });
  const avail = range.start + range.size - subPhys!;
  if (avail < FDT_HEADER_SIZE) {
    return fail({ kind: "subtree", phys: hex(subPhys!), reason: `${KHO_TEST_FDT} FDT at ${hex(subPhys!)}: only ${avail} bytes of preserved memory left, less than the ${FDT_HEADER_SIZE}-byte FDT header` });
  }
  const total = new ByteReader(mem.read(subPhys!, Math.min(FDT_HEADER_SIZE, avail))).u32be(4);
  if (total > avail) return fail({ kind: "subtree", phys: hex(subPhys!), reason: `${KHO_TEST_FDT} FDT totalsize ${hex(total)} runs past its preserved range` });
  let h;
  try {
    h = parseKhoTestFdt(mem.read(subPhys!, total));
  } catch (e) {
    if (e instanceof KhoTestError) return fail({ kind: "subtree", phys: hex(subPhys!), reason: e.message });
    throw e;
  }
  // Bound the info blob by what was preserved before reading it.
  if (h.nrFolios > restore.totalPages(true) || h.nrRanges > restore.totalPages(false)) {
    return fail({ kind: "subtree", reason: `nr_folios ${h.nrFolios} / nr_ranges ${h.nrRanges} exceed the preserved pages` });
  }
  const infoSize = khoTestHeaderInfoSize(h);
  let infoPhys = 0;
  if (infoSize > 0) {
    const p = u64ToNumber(h.infoPhys);
    // Formats without per-range data split the blob into blocks of several orders: check coverage across runs.
    if (p === undefined || !restore.covered(p, infoSize)) {
      return fail({ kind: "subtree", phys: hex(h.infoPhys), reason: `folios_info [${hex(h.infoPhys)}, +${hex(infoSize)}) is not in preserved memory` });
    }
    const off = offlineReason(mem, p, infoSize);
    if (off) return fail({ kind: "subtree", phys: hex(p), reason: `folios_info: ${off}` });
    infoPhys = p;
  }
  // Read, checksummed and decoded in pieces (no blob-sized array); the checksum is judged first, as before.
  const info = readKhoTestInfo(mem, infoPhys, h.nrFolios, h.nrRanges, h.nrRuns);
  if (info.csum !== h.csum) {
    return fail({ kind: "subtree", phys: hex(h.infoPhys), reason: `folios_info checksum ${hex(info.csum)} does not match csum ${hex(h.csum)}` });
  }
  let table;
  let toRead = 0;
  let readBytes = 0;
  try {
    if (info.error) throw info.error;
    table = info.table!;
    const t = table.folios;
    // A run table (kho-test-v2) has no filled folio.
    if (!t.isRuns) for (let i = 0; i < t.length; i++) if (t.filled(i)) toRead += PAGE_SIZE * 2 ** t.order[i]!;
    for (const r of table.ranges) if (r.csum !== 0n) toRead += r.size;
  } catch (e) {
    if (e instanceof KhoTestError) return fail({ kind: "subtree", reason: e.message });
    throw e;
  }
  // The table is carried as is; entries that fail are killed (not preserved again).
  const t = table.folios;
  carried.folios = t;
  // Defined once: a closure per folio costs more than the restore itself at 12.6M folios.
  const bad = (i: number, why: string, order = t.order[i]!): void => {
    fail({ kind: "folio", phys: hex(t.phys[i]!), order, reason: why });
    t.kill(i);
  };
  const offline = (p: number, len: number): string | undefined => offlineReason(mem, p, len);
  if (t.isRuns) {
    // Unfilled runs (kho-test-v2): every folio restored, a run at a time (in/restore.ts); failed entries are killed afterwards, the table kept as runs.
    const dead: number[] = [];
    const n = khoRestoreFolioRuns(t, restore, {
      offline,
      bad: (i, why, phys, order) => {
        fail({ kind: "folio", phys: hex(phys), order, reason: why });
        dead.push(i);
      },
    });
    t.killEntries(dead);
    rep.restored.folios += n.restored;
    rep.verified.unchecked += n.unchecked;
  } else for (let i = 0; i < t.length; i++) {
    const phys = t.phys[i]!;
    const order = t.order[i]!;
    const failed = khoRestoreRecordedFolio(restore, phys, order, offline);
    if (failed) {
      if (failed.restored) rep.restored.folios++;
      bad(i, failed.why);
      continue;
    }
    rep.restored.folios++;
    if (!t.filled(i)) {
      rep.verified.unchecked++;
      continue;
    }
    const csum = t.csum[i]!;
    const bytes = mem.read(phys, PAGE_SIZE * 2 ** order);
    readBytes += bytes.length;
    progress?.(readBytes, toRead);
    const got = csum64(bytes);
    if (got !== csum) {
      bad(i, `order-${order} folio checksum ${hex(got)} does not match recorded ${hex(csum)}`, order);
      continue;
    }
    rep.verified.folios++;
    rep.verified.bytes += bytes.length;
  }
  for (const r of table.ranges) {
    const off = offlineReason(mem, r.start, r.size);
    if (off) {
      fail({ kind: "range", phys: hex(r.start), reason: off });
      continue;
    }
    try {
      restore.khoRestorePhys(r.start, r.size);
    } catch (e) {
      if (e instanceof KhoRestoreError) {
        fail({ kind: "range", phys: hex(r.start), reason: e.message });
        continue;
      }
      throw e;
    }
    rep.restored.ranges++;
    if (r.csum === 0n) {
      rep.verified.unchecked++;
      carried.phys.push({ ...r });
      continue;
    }
    const bytes = mem.read(r.start, r.size);
    readBytes += bytes.length;
    progress?.(readBytes, toRead);
    const got = csum64(bytes);
    if (got !== r.csum) {
      fail({ kind: "range", phys: hex(r.start), reason: `range [${hex(r.start)}, +${hex(r.size)}) checksum ${hex(got)} does not match recorded ${hex(r.csum)}` });
      continue;
    }
    rep.verified.ranges++;
    rep.verified.bytes += bytes.length;
    carried.phys.push({ ...r });
  }
  if (h.vmalloc !== undefined || h.pages !== undefined) {
    // kho_test's vmalloc areas and kho_preserve_pages() ranges (in/verify-pages.ts).
    const pr = restorePageRecords(h, mem, restore);
    if (h.vmalloc) rep.vmalloc = pr.vmalloc;
    if (h.pages) rep.pages = pr.pages;
    pr.failures.forEach(fail);
    rep.verified.bytes += pr.verifiedBytes;
    rep.verified.unchecked += pr.unchecked;
    Object.assign(carried, pr.carried);
    carried.consumed.push(...pr.consumed);
  }
  carried.consumed.push({ start: subPhys!, size: PAGE_SIZE });
  if (infoSize > 0) carried.consumed.push({ start: Number(h.infoPhys), size: Math.ceil(infoSize / PAGE_SIZE) * PAGE_SIZE });
}

/** The successor after boot: its report, and the state a further handoff starts from. */
export interface SuccessorBoot {
  report: SuccessorReport;
  memblock: Memblock;
  /** Scratch areas inherited from the predecessor (empty without KHO). */
  scratch: KhoScratch[];
  carried: Carried;
  /** The reserved ranges (report.ranges) as a stream, whatever streamRanges says. */
  rangeStream: RangeJsonStream;
  /** With opts.kernel: every preserved range that version did not reserve (report.kernel.lost lists the first 100). */
  kernelLost?: KhoRangeTable;
}

/**
 * bootSuccessor - boot kernel-b on @mem as @boot describes it.
 * Never throws for bad KHO data: the report says what happened. Throws
 * UnusableInputError when the machine itself cannot boot.
 */
export function bootSuccessor(boot: BootInfo, mem: PhysMem, opts: SuccessorOptions): SuccessorBoot {
  if (opts.kernel !== undefined) return kernelBootSuccessor(boot, mem, opts.kernel, { maxOrder: opts.maxOrder, log: opts.log, maxListed: MAX_LISTED_FAILURES, ...(opts.reserveMem ? { reserveMem: opts.reserveMem } : {}) });
  const { log } = opts;
  const { base, size } = boot.ram;
  const mb = new Memblock();
  // One memblock_add per /memory bank (early_init_dt_scan_memory): holes stay out of memblock.memory.
  for (const b of boot.banks ?? [{ base, size }]) mb.memblockAdd(b.base, b.size);
  const rep: SuccessorReport = {
    outcome: "revived",
    exitCode: 0,
    reason: null,
    format: null,
    ram: { base: hex(base), size: hex(size) },
    scratch: [],
    khoFdt: null,
    metadata: null,
    chunks: [],
    ranges: [],
    reserveCalls: 0,
    restored: { folios: 0, ranges: 0 },
    verified: { folios: 0, ranges: 0, bytes: 0, unchecked: 0 },
    failureCount: 0,
    failures: [],
    memblock: { memory: "0x0", reserved: "0x0", reservedRegions: 0, noinitReserved: "0x0", free: "0x0", earlyAllocations: "0x0" },
  };
  let early = 0;
  /* The walked ranges as columns (the ranges walk hands them over so; block formats give objects). */
  let runs: KhoRangeTable = khoRangeTableOf([]);
  let kho: KhoFdt | undefined;
  let scratch: KhoScratch[] = [];
  let fdtPage: { start: number; size: number } | undefined;
  let saPage: { start: number; size: number } | undefined;
  const carried: Carried = { folios: new FolioTable(0), phys: [], consumed: [] };
  const timing = { walkNs: 0, reserveNs: 0 };
  try {
    const p = khoPopulate(boot, mem);
    kho = p.kho;
    scratch = p.scratch;
    fdtPage = pageSpan(p.fdtAddr, p.fdtSize);
    saPage = pageSpan(p.saAddr, p.saSize);
    rep.khoFdt = { addr: hex(p.fdtAddr), size: hex(p.fdtSize) };
    rep.scratch = p.scratch.map((s) => ({ addr: hex(s.addr), size: hex(s.size) }));
    rep.metadata = hex(p.kho.metadata);
    for (const s of p.scratch) if (s.size > 0) mb.memblockMarkKhoScratch(s.addr, s.size);
    mb.memblockReserve(p.fdtAddr, p.fdtSize);
    mb.memblockReserve(p.saAddr, p.saSize);
    mb.memblockSetKhoScratchOnly();
    early = earlyAllocations(mb, mb.memblockPhysMemSize());
    log?.info(`KHO: ${p.scratch.length} scratch areas, scratch-only mode, ${hex(early)} bytes of early allocations from scratch`);
    let walked;
    const t0 = process.hrtime.bigint();
    try {
      walked = p.kho.format.walk(mem, p.kho.metadata, { ramBase: base, ramSize: size, scratch: p.scratch });
    } catch (e) {
      if (e instanceof KhoMetadataError || e instanceof PhysMemError || e instanceof BoundsError) {
        mb.memblockClearKhoScratchOnly();
        mb.memblockPhysFree(p.fdtAddr, p.fdtSize);
        mb.memblockPhysFree(p.saAddr, p.saSize);
        const what = p.kho.format.name === "ranges" || p.kho.format.name === "posted" ? "chunk list" : `${p.kho.format.name} metadata`;
        throw new KhoPopulateError(`${what}: ${e.message}`);
      }
      throw e;
    }
    timing.walkNs = Number(process.hrtime.bigint() - t0);
    runs = walked.table ?? khoRangeTableOf(walked.ranges);
    rep.format = p.kho.format.name;
    rep.chunks = (walked.objects ?? walked.metadataPages).map(hex);
    // Everything validated: now reserve, one memblock_reserve per preserved block as the kernel does.
    const t1 = process.hrtime.bigint();
    walked.forEachBlock((start, bsize) => {
      mb.memblockReserve(start, bsize);
      mb.memblockReservedMarkNoinit(start, bsize);
    });
    timing.reserveNs = Number(process.hrtime.bigint() - t1);
    rep.reserveCalls = walked.blockCount;
    if (!opts.streamRanges) rep.ranges = Array.from({ length: runs.count }, (_, i) => ({ start: hex(runs.start[i]!), size: hex(runs.size[i]!), data: hex(runs.data[i]!) }));
    log?.info(
      `KHO: ${p.kho.format.name}: walked ${walked.metadataPages.length} metadata pages, reserved ${walked.blockCount} blocks ` +
        `(${runs.count} ranges); metadata pages are free again`,
    );
    mb.memblockClearKhoScratchOnly();
  } catch (e) {
    if (!(e instanceof KhoPopulateError)) throw e;
    kho = undefined;
    scratch = [];
    rep.outcome = "booted-without-kho";
    rep.reason = e.message;
    log?.warn(`KHO: disabling KHO revival: ${e.message}`);
    if (early === 0) early = earlyAllocations(mb, mb.memblockPhysMemSize());
  }

  let restore: KhoRestore | undefined;
  if (kho) {
    restore = new KhoRestore(runs, opts.maxOrder, kho.format.name === "ranges" || kho.format.name === "posted");
    restoreKhoTest(kho, mem, restore, rep, carried, opts);
    // LUO's incoming side and user space's stage 2 (in/luo.ts): its folios are disjoint from kho_test's, so running
    // it after them changes nothing; it adds failures of kind luo, or panics (luo_restore_fail).
    const luo = luoRestore(kho, mem, restore);
    if (luo.json) rep.luo = luo.json;
    for (const f of luo.failures) {
      rep.failureCount++;
      if (rep.failures.length < MAX_LISTED_FAILURES) rep.failures.push({ kind: "luo", reason: f });
    }
    carried.consumed.push(...luo.consumed);
    if (luo.carried) carried.luo = luo.carried;
    // Once everything is restored the old KHO FDT and scratch array are not needed again.
    if (fdtPage) carried.consumed.push(fdtPage, saPage!);
    if (luo.panic) {
      rep.outcome = "kernel-panic";
      rep.reason = luo.panic;
      log?.error(`Kernel panic - not syncing: ${luo.panic}`);
    } else if (rep.failureCount > 0) {
      rep.outcome = "verification-failed";
      rep.reason = `${rep.failureCount} verification failure(s); first: ${rep.failures[0]!.phys ? rep.failures[0]!.phys + ": " : ""}${rep.failures[0]!.reason}`;
      log?.error(`KHO: restore failed: ${rep.reason}`);
    } else {
      log?.info(
        `KHO: restore succeeded: ${rep.restored.folios} folios and ${rep.restored.ranges} ranges restored, ` +
          `${rep.verified.bytes} bytes verified, ${rep.verified.unchecked} unfilled objects not checked`,
      );
    }
  }
  // reserve_mem= runs from parse_args, before the memblock totals below are taken.
  if (opts.reserveMem) rep.reserveMem = reserveMemRevive(mb, kho, mem, restore, opts.reserveMem, log);
  rep.exitCode = OUTCOME_EXIT[rep.outcome];
  const free = mb.freeSize();
  const noinit = mb.sizeWithFlag("reserved", MEMBLOCK_RSRV_NOINIT);
  rep.memblock = {
    memory: hex(mb.memblockPhysMemSize()),
    reserved: hex(mb.memblockReservedSize()),
    reservedRegions: mb.regionCount("reserved"),
    noinitReserved: hex(noinit),
    free: hex(free),
    earlyAllocations: hex(early),
  };
  Object.defineProperty(rep, "timing", { value: timing, enumerable: false });
  return { report: rep, memblock: mb, scratch, carried, rangeStream: rangeTableStream(runs) };
}

/* The reserved ranges of @t, streamed into successor.json. */
function rangeTableStream(t: KhoRangeTable): RangeJsonStream {
  return new RangeJsonStream(t.count, (visit) => {
    for (let i = 0; i < t.count; i++) visit(t.start[i]!, t.size[i]!, t.data[i]!);
  });
}
