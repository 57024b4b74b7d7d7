/*
 * Read a handoff directory the way a tool (not a kernel) does: decode as much
 * as possible, note what could not be decoded instead of giving up, and label
 * every page of RAM with what it is (preserved range, chunk page, KHO FDT,
 * sub-tree, scratch, free). diff and map are built on this.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { HANDOFF_BOOT_DTB, HANDOFF_MEMORY_IMG, KHO_TEST_FDT, MAX_PAGE_ORDER, PAGE_SIZE, SUCCESSOR_REPORT, khoDataIsFolio, khoDataOrder, parseBootDtb, BootDtbError, type BootInfo, khoTestHeaderInfoSize, parseKhoTestFdt, type KhoTestHeader } from "@khosim/shared/abi";
import { SuccessorJsonSchema, readHandoffJson, type KernelReportJson, type SuccessorJson } from "@khosim/shared/abi/handoff-json";
import { ByteReader, hex, u64ToNumber } from "@khosim/shared/lib";
import { ImageMem } from "@khosim/shared/mm";
import { bootSuccessor, khoRetrieveSubtree, khoPopulate, UnusableInputError, type KhoKernelName, type KhoPopulated, type SuccessorReport, type KhoMemRange } from "@khosim/shared/kho";

/** What a page is, most specific first ("lost": preserved, but not reserved by the kernel version read as, see kernelLostRanges). */
export type RegionKind = "lost" | "kho-fdt" | "scratch-array" | "subtree-fdt" | "subtree-info" | "chunk" | "preserved" | "scratch" | "hole" | "free";

/** Higher wins when labels overlap (the KHO FDT page lies inside a preserved range). */
export const PRIORITY: Record<RegionKind, number> = {
  lost: 8,
  "kho-fdt": 7,
  "scratch-array": 6,
  "subtree-fdt": 5,
  "subtree-info": 4,
  chunk: 3,
  preserved: 2,
  scratch: 1,
  // A hole between RAM banks: above free only, so that anything claimed there (a corrupt handoff) still shows.
  hole: 0.5,
  free: 0,
};

export interface Region {
  start: number;
  end: number;
  kind: RegionKind;
  /** Short human description ("order-0 folios", "chunk 2 (170 ranges)", ...). */
  label: string;
  /** khoser_mem_range.data for preserved ranges. */
  data?: number;
  /** Index of the chunk (chunk regions) or of the range in list order (preserved). */
  index?: number;
}

export interface HandoffView {
  dir: string;
  bootDtb: Uint8Array;
  boot: BootInfo;
  ram: { base: number; size: number };
  mem: ImageMem;
  populated?: KhoPopulated;
  chunks: number[];
  ranges: KhoMemRange[];
  subtree?: { fdtPhys: number; fdtSize: number; header: KhoTestHeader; infoPhys: number; infoSize: number };
  /** What could not be decoded, in order (empty for a good handoff). */
  problems: string[];
  /** Disjoint labelled regions covering all of RAM, ascending. */
  regions: Region[];
  /** With a kernel version: the preserved pages it does not reserve (kernelLostRanges). */
  lost?: KernelLost;
}

/** The preserved pages a kernel version does not reserve in a handoff. */
export interface KernelLost {
  kernel: KhoKernelName;
  /** Ascending, disjoint, page-granular. */
  ranges: { start: number; size: number }[];
  /** Pages in `ranges`. */
  pages: number;
  /** What the version successor reported: outcome, exit code and its `kernel` object (verdict, reads, hazards). */
  outcome: SuccessorReport["outcome"];
  exitCode: number;
  reason: string | null;
  report: KernelReportJson | undefined;
}

/** The directory cannot be read as a handoff at all. */
export class InspectError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InspectError";
  }
}

function pageUp(n: number): number {
  return Math.ceil(n / PAGE_SIZE) * PAGE_SIZE;
}

/** describeData - "order-3 folios" or "phys range" for a khoser_mem_range.data. */
export function describeData(data: number): string {
  return khoDataIsFolio(data) ? `order-${khoDataOrder(data)} folios` : data === 0 ? "phys range" : `data ${hex(data)}`;
}

/** flattenRegions - disjoint regions over [base, end) from overlapping labelled ones. */
export function flattenRegions(base: number, end: number, labelled: readonly Region[]): Region[] {
  // Boundaries as a typed array (a handoff can have 1M+ ranges): numeric sort, then dedupe.
  const raw = new Float64Array(2 * labelled.length + 2);
  raw[0] = base;
  raw[1] = end;
  labelled.forEach((r, i) => {
    raw[2 + 2 * i] = Math.max(base, Math.min(end, r.start));
    raw[3 + 2 * i] = Math.max(base, Math.min(end, r.end));
  });
  raw.sort();
  let n = 0;
  for (let i = 0; i < raw.length; i++) if (i === 0 || raw[i] !== raw[n - 1]) raw[n++] = raw[i]!;
  const xs = raw.subarray(0, n);
  // Preserved ranges come from the walk already sorted; sort only when needed.
  let sorted = labelled as Region[];
  for (let i = 1; i < labelled.length; i++) {
    if (labelled[i]!.start < labelled[i - 1]!.start) {
      sorted = [...labelled].sort((a, b) => a.start - b.start);
      break;
    }
  }
  const out: Region[] = [];
  // Active set kept small: labelled regions are few per point except preserved ranges, which never overlap each other.
  let j = 0;
  const active: Region[] = [];
  for (let i = 0; i + 1 < xs.length; i++) {
    const s = xs[i]!;
    const e = xs[i + 1]!;
    while (j < sorted.length && sorted[j]!.start <= s) active.push(sorted[j++]!);
    for (let k = active.length - 1; k >= 0; k--) if (active[k]!.end <= s) active.splice(k, 1);
    let best: Region | undefined;
    for (const r of active) if (r.start <= s && r.end >= e && (!best || PRIORITY[r.kind] > PRIORITY[best.kind])) best = r;
    const last = out[out.length - 1];
    const kind = best ? best.kind : "free";
    const label = best ? best.label : "free";
    if (last && last.end === s && last.kind === kind && last.label === label && last.index === best?.index) {
      last.end = e;
      continue;
    }
    const piece: Region = { start: s, end: e, kind, label };
    if (best?.data !== undefined) piece.data = best.data;
    if (best?.index !== undefined) piece.index = best.index;
    out.push(piece);
  }
  return out;
}

/** A handoff's boot.dtb, read and parsed, and its memory.img, opened. */
export interface HandoffFiles {
  dir: string;
  bootDtb: Uint8Array;
  boot: BootInfo;
  mem: ImageMem;
}

/**
 * openHandoffFiles - read and parse @dir's boot.dtb and open its memory.img
 * (which must be the RAM size boot.dtb says). Throws InspectError naming the
 * file. The caller closes `mem`. openHandoff and diff start here.
 */
export function openHandoffFiles(dir: string): HandoffFiles {
  const bootFile = path.join(dir, HANDOFF_BOOT_DTB);
  let bootDtb: Uint8Array;
  try {
    bootDtb = fs.readFileSync(bootFile);
  } catch (e) {
    throw new InspectError(`${bootFile}: cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  let boot: BootInfo;
  try {
    boot = parseBootDtb(bootDtb);
  } catch (e) {
    if (e instanceof BootDtbError) throw new InspectError(`${bootFile}: ${e.message}`);
    throw e;
  }
  let mem: ImageMem;
  try {
    mem = ImageMem.open(path.join(dir, HANDOFF_MEMORY_IMG), boot.ram.base, boot.ram.size, boot.banks);
  } catch (e) {
    throw new InspectError((e as Error).message);
  }
  return { dir, bootDtb, boot, mem };
}

/**
 * kernelLostRanges - the preserved pages kernel version @kernel would not
 * reserve when it boots from @files: the faithful successor of that version
 * (bootSuccessor with opts.kernel, in process, from boot.dtb and memory.img
 * alone) and its SuccessorBoot.kernelLost, sorted and merged. initCsum()
 * must have run. Throws InspectError when the machine cannot boot at all.
 */
export function kernelLostRanges(files: Pick<HandoffFiles, "boot" | "mem">, kernel: KhoKernelName): KernelLost {
  let sb;
  try {
    sb = bootSuccessor(files.boot, files.mem, { maxOrder: MAX_PAGE_ORDER, kernel });
  } catch (e) {
    if (e instanceof UnusableInputError) throw new InspectError(`${kernel} successor cannot boot: ${e.message}`);
    throw e;
  }
  const table = sb.kernelLost;
  const raw: { start: number; size: number }[] = [];
  for (let i = 0; i < (table?.count ?? 0); i++) if (table!.size[i]! > 0) raw.push({ start: table!.start[i]!, size: table!.size[i]! });
  raw.sort((x, y) => x.start - y.start);
  const ranges: { start: number; size: number }[] = [];
  let pages = 0;
  for (const r of raw) {
    const last = ranges[ranges.length - 1];
    if (last && r.start <= last.start + last.size) last.size = Math.max(last.size, r.start + r.size - last.start);
    else ranges.push({ ...r });
  }
  for (const r of ranges) pages += r.size / PAGE_SIZE;
  return { kernel, ranges, pages, outcome: sb.report.outcome, exitCode: sb.report.exitCode, reason: sb.report.reason, report: sb.report.kernel };
}

/**
 * lostRegions - @lost as regions of kind "lost", split where what the pages
 * are changes (@labelAt: the labels without the lost pages), each labelled
 * "lost under KERNEL: what it is". Work: the lost ranges plus the regions
 * they cross.
 */
export function lostRegions(lost: KernelLost, labelAt: (phys: number) => Pick<Region, "kind" | "label" | "end"> | undefined): Region[] {
  const out: Region[] = [];
  for (const r of lost.ranges) {
    const end = r.start + r.size;
    for (let phys = r.start; phys < end; ) {
      const hit = labelAt(phys);
      const stop = hit ? Math.min(end, Math.max(hit.end, phys + PAGE_SIZE)) : end;
      // A lost page is a preserved one; "free" only means the careful walk here did not find it (one-page bitmaps without khosim's marker).
      const what = !hit ? "outside RAM" : hit.kind === "preserved" ? `preserved ${hit.label}` : hit.kind === "free" ? "preserved, not found by the careful walk" : hit.label;
      out.push({ start: phys, end: stop, kind: "lost", label: `lost under ${lost.kernel}: ${what}` });
      phys = stop;
    }
  }
  return out;
}

/** Options of openHandoff. */
export interface OpenHandoffOptions {
  /** Also label the preserved pages this kernel version does not reserve ("lost"). */
  kernel?: KhoKernelName;
}

/**
 * openHandoff - decode @dir. Throws InspectError when boot.dtb or memory.img
 * cannot be used; everything past that is best effort (see `problems`).
 */
export function openHandoff(dir: string, opts: OpenHandoffOptions = {}): HandoffView {
  const { bootDtb, boot, mem } = openHandoffFiles(dir);
  const v: HandoffView = { dir, bootDtb, boot, ram: boot.ram, mem, chunks: [], ranges: [], problems: [], regions: [] };
  const labelled: Region[] = [];
  try {
    v.populated = khoPopulate(boot, mem);
  } catch (e) {
    v.problems.push(`KHO data: ${(e as Error).message}`);
  }
  const p = v.populated;
  if (p) {
    p.scratch.forEach((s, i) => labelled.push({ start: s.addr, end: s.addr + s.size, kind: "scratch", label: `scratch area ${i}`, index: i }));
    // Whole pages: a page is the unit of diff and of the map.
    labelled.push({ start: p.fdtAddr, end: pageUp(p.fdtAddr + p.fdtSize), kind: "kho-fdt", label: "KHO FDT" });
    labelled.push({ start: p.saAddr, end: pageUp(p.saAddr + p.saSize), kind: "scratch-array", label: "kho_scratch array" });
    try {
      const w = p.kho.format.walk(mem, p.kho.metadata, { ramBase: boot.ram.base, ramSize: boot.ram.size, scratch: p.scratch });
      v.chunks = w.metadataPages;
      v.ranges = w.ranges;
    } catch (e) {
      v.problems.push(`chunk list: ${(e as Error).message}`);
    }
    v.ranges.forEach((r, i) => labelled.push({ start: r.start, end: r.start + r.size, kind: "preserved", label: describeData(r.data), data: r.data, index: i }));
    const fmt = p.kho.format.name;
    const what = fmt === "ranges" || fmt === "posted" ? "chunk" : `${fmt} metadata page`;
    v.chunks.forEach((c, i) => labelled.push({ start: c, end: c + PAGE_SIZE, kind: "chunk", label: `${what} ${i}`, index: i }));
    try {
      const raw = khoRetrieveSubtree(p.kho, KHO_TEST_FDT);
      const fdtPhys = raw === undefined ? undefined : u64ToNumber(raw);
      if (fdtPhys !== undefined && fdtPhys % PAGE_SIZE === 0 && fdtPhys >= boot.ram.base && fdtPhys + PAGE_SIZE <= boot.ram.base + boot.ram.size) {
        const fdtSize = Math.min(PAGE_SIZE, new ByteReader(mem.read(fdtPhys, 40)).u32be(4));
        const header = parseKhoTestFdt(mem.read(fdtPhys, fdtSize));
        const infoPhys = u64ToNumber(header.infoPhys) ?? 0;
        const infoSize = khoTestHeaderInfoSize(header);
        v.subtree = { fdtPhys, fdtSize, header, infoPhys, infoSize };
        labelled.push({ start: fdtPhys, end: fdtPhys + PAGE_SIZE, kind: "subtree-fdt", label: "kho_test FDT" });
        if (infoSize > 0) labelled.push({ start: infoPhys, end: pageUp(infoPhys + infoSize), kind: "subtree-info", label: "kho_test info blob" });
      } else if (raw !== undefined) {
        v.problems.push(`kho_test: fdt ${hex(raw)} is not a page in RAM`);
      }
    } catch (e) {
      v.problems.push(`kho_test: ${(e as Error).message}`);
    }
  }
  const banks = boot.banks ?? [];
  for (let i = 1; i < banks.length; i++) {
    const lo = banks[i - 1]!.base + banks[i - 1]!.size;
    const hi = banks[i]!.base;
    if (hi > lo) labelled.push({ start: lo, end: hi, kind: "hole", label: `hole [${hex(lo)}, ${hex(hi)}) between RAM banks` });
  }
  v.regions = flattenRegions(boot.ram.base, boot.ram.base + boot.ram.size, labelled);
  if (opts.kernel !== undefined) {
    v.lost = kernelLostRanges({ boot, mem }, opts.kernel);
    const regions = v.regions;
    v.regions = flattenRegions(boot.ram.base, boot.ram.base + boot.ram.size, [...labelled, ...lostRegions(v.lost, (p) => regionAt(regions, p))]);
  }
  return v;
}

/** regionAt - the region containing @phys (binary search), or undefined outside RAM. */
export function regionAt(regions: readonly Region[], phys: number): Region | undefined {
  let lo = 0;
  let hi = regions.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const r = regions[mid]!;
    if (phys < r.start) hi = mid - 1;
    else if (phys >= r.end) lo = mid + 1;
    else return r;
  }
  return undefined;
}

/**
 * readSuccessorReport - the successor's report beside a handoff, if kernel-b
 * has run on it. Throws HandoffJsonError (file and JSON path) for a bad file.
 */
export function readSuccessorReport(dir: string): SuccessorJson | undefined {
  const f = path.join(dir, SUCCESSOR_REPORT);
  return fs.existsSync(f) ? readHandoffJson(SuccessorJsonSchema, fs.readFileSync(f, "utf8"), f) : undefined;
}
