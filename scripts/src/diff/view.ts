/*
 * One side of a diff, decoded the way inspect.ts's openHandoff() decodes a
 * handoff (boot.dtb, kho_populate, the format's careful walk, the kho_test
 * sub-tree; what cannot be decoded goes to `problems`), with the same errors,
 * but without labelling every region of RAM up front: `regions` answers per
 * address (regions.ts), so a handoff of 1M ranges costs its walk and no
 * million labelled objects.
 */
import { KHO_TEST_FDT, PAGE_SIZE, khoTestHeaderInfoSize, parseKhoTestFdt } from "@khosim/shared/abi";
import { ByteReader, hex, u64ToNumber } from "@khosim/shared/lib";
import { type PhysMem } from "@khosim/shared/mm";
import { khoPopulate, khoRetrieveSubtree } from "@khosim/shared/kho";
import type { KhoKernelName } from "@khosim/shared/kho";
import { kernelLostRanges, lostRegions, openHandoffFiles, type HandoffFiles, type HandoffView, type Region } from "../inspect.js";
import { ReadaheadMem } from "./readahead.js";
import { regionIndex, type RegionLookup, type RegionSources } from "./regions.js";

/** A handoff as diff reads it: openHandoff()'s view with `regions` as a lookup. */
export interface DiffView extends Omit<HandoffView, "regions"> {
  /** What each page of RAM is (same answers as HandoffView.regions + regionAt). */
  regions: RegionLookup;
  /** What the lookup is built from. */
  sources: RegionSources;
  /** `mem` with sequential read-ahead: what the decoding read through, for further metadata reads. */
  reader: PhysMem;
}

function pageUp(n: number): number {
  return Math.ceil(n / PAGE_SIZE) * PAGE_SIZE;
}

/** A handoff's files, opened and checked, not yet decoded. */
export type DiffFiles = HandoffFiles;

/**
 * openDiffView - decode the handoff in @dir (its boot.dtb and memory.img).
 * Throws InspectError when boot.dtb or memory.img cannot be used, with
 * openHandoff()'s messages; everything past that is best effort (see
 * `problems`). The caller closes `mem`.
 */
export function openDiffView(dir: string): DiffView {
  return decodeDiffView(openDiffFiles(dir));
}

/** openDiffFiles - @dir's boot.dtb parsed and memory.img opened (inspect's openHandoffFiles). */
export const openDiffFiles: (dir: string) => DiffFiles = openHandoffFiles;

/**
 * reuseDiffView - @files decoded as @view was, for files with the same bytes
 * as @view's (byte-identical boot.dtb and memory.img): decoding reads only
 * those, so it would find the same. Only `dir`, `mem` and `reader` are
 * @files' own.
 */
export function reuseDiffView(view: DiffView, files: DiffFiles): DiffView {
  return { ...view, dir: files.dir, mem: files.mem, reader: new ReadaheadMem(files.mem) };
}

/**
 * decodeDiffView - decode the opened @files: kho_populate, the format's
 * careful walk, the kho_test sub-tree. Never throws for bad data: what
 * cannot be decoded goes to `problems`. With @kernel, the preserved pages
 * that version would not reserve are a region class of their own ("lost",
 * inspect.ts kernelLostRanges; initCsum() must have run).
 */
export function decodeDiffView(files: DiffFiles, kernel?: KhoKernelName): DiffView {
  const { dir, bootDtb, boot, mem } = files;
  const sources: RegionSources = { base: boot.ram.base, end: boot.ram.base + boot.ram.size, others: [], chunks: [], chunkName: "chunk", ranges: [] };
  const others: Region[] = [];
  const reader = new ReadaheadMem(mem);
  const v: DiffView = { dir, bootDtb, boot, ram: boot.ram, mem, reader, chunks: [], ranges: [], problems: [], regions: { labelAt: () => undefined }, sources };
  try {
    v.populated = khoPopulate(boot, reader);
  } catch (e) {
    v.problems.push(`KHO data: ${(e as Error).message}`);
  }
  const p = v.populated;
  if (p) {
    p.scratch.forEach((s, i) => others.push({ start: s.addr, end: s.addr + s.size, kind: "scratch", label: `scratch area ${i}`, index: i }));
    // Whole pages: a page is the unit of diff.
    others.push({ start: p.fdtAddr, end: pageUp(p.fdtAddr + p.fdtSize), kind: "kho-fdt", label: "KHO FDT" });
    others.push({ start: p.saAddr, end: pageUp(p.saAddr + p.saSize), kind: "scratch-array", label: "kho_scratch array" });
    try {
      const w = p.kho.format.walk(reader, p.kho.metadata, { ramBase: boot.ram.base, ramSize: boot.ram.size, scratch: p.scratch });
      v.chunks = w.metadataPages;
      v.ranges = w.ranges;
    } catch (e) {
      v.problems.push(`chunk list: ${(e as Error).message}`);
    }
    const fmt = p.kho.format.name;
    sources.chunkName = fmt === "ranges" || fmt === "posted" ? "chunk" : `${fmt} metadata page`;
    try {
      const raw = khoRetrieveSubtree(p.kho, KHO_TEST_FDT);
      const fdtPhys = raw === undefined ? undefined : u64ToNumber(raw);
      if (fdtPhys !== undefined && fdtPhys % PAGE_SIZE === 0 && fdtPhys >= boot.ram.base && fdtPhys + PAGE_SIZE <= boot.ram.base + boot.ram.size) {
        const fdtSize = Math.min(PAGE_SIZE, new ByteReader(reader.read(fdtPhys, 40)).u32be(4));
        const header = parseKhoTestFdt(reader.read(fdtPhys, fdtSize));
        const infoPhys = u64ToNumber(header.infoPhys) ?? 0;
        const infoSize = khoTestHeaderInfoSize(header);
        v.subtree = { fdtPhys, fdtSize, header, infoPhys, infoSize };
        others.push({ start: fdtPhys, end: fdtPhys + PAGE_SIZE, kind: "subtree-fdt", label: "kho_test FDT" });
        if (infoSize > 0) others.push({ start: infoPhys, end: pageUp(infoPhys + infoSize), kind: "subtree-info", label: "kho_test info blob" });
      } else if (raw !== undefined) {
        v.problems.push(`kho_test: fdt ${hex(raw)} is not a page in RAM`);
      }
    } catch (e) {
      v.problems.push(`kho_test: ${(e as Error).message}`);
    }
  }
  sources.others = others;
  sources.chunks = v.chunks;
  sources.ranges = v.ranges;
  v.regions = regionIndex(sources);
  if (kernel !== undefined) {
    const lost = kernelLostRanges(files, kernel);
    const plain = v.regions;
    sources.lost = lostRegions(lost, (p) => plain.labelAt(p));
    v.regions = regionIndex(sources);
    v.lost = lost;
  }
  return v;
}
