/*
 * The diff of two handoffs as one JSON-ready value (`npm run diff -- --json`
 * prints it as is; the human renderer reads the same value). Addresses and
 * sizes are "0x" hex strings as in report.json; counts are numbers. Every list
 * is capped at `limit` items; its exact length is in the section's `counts`.
 *
 * Schema "khosim-diff/1":
 *   identical            every byte of memory.img, boot.dtb and kho.dtb equal
 *   files                per file: true when byte-identical
 *   ram                  { a, b }: { base, size } from each boot.dtb
 *   format               { a, b }: preservation format of each KHO FDT
 *   pages                changed (pages), compared (bytes of data compared per image:
 *                        the written extents, or the non-zero pages; --read-all: the image),
 *                        holesSkipped, sizeDiff (images of different sizes), byKind,
 *                        runCount, runs [{ start, size, offset, pages, a, b, chunk? }]
 *   ranges               a, b (counts), counts, added, removed, resized, dataChanged
 *   chunks               a, b, metadata { a, b }, counts, added, removed, relinked, moved, changed
 *   fdt                  kho, boot: [{ change, path, a?, b? }]
 *   problems             a, b: what either side could not decode
 */
import { PAGE_SIZE, ramContains, ramFileOffset } from "@khosim/shared/abi";
import { hex } from "@khosim/shared/lib";
import type { RegionKind } from "../inspect.js";
import type { DiffView } from "./view.js";
import { lostSummary, type LostSummaryJson } from "./kernel.js";
import type { FdtChange } from "./fdt-diff.js";
import { diffFdtBlobs } from "./fdt-diff.js";
import {
  diffChunkPage,
  diffChunks,
  diffRanges,
  followChunks,
  type ChunkLink,
  type ChunkPageDiff,
  type ChunkRef,
  type RangeInfo,
  type RawEntry,
} from "./meta.js";
import { classifyRuns, countPages, pageCounter, pagesByKind, sidePhys, type ChangedRun, type OffsetRun, type PageSide } from "./pages.js";

/* Image offset <-> physical address on one side (abi/ram.ts: banks back to back; one bank: base + offset). */
function physOf(v: DiffView, off: number): number {
  return sidePhys({ base: v.ram.base, banks: v.boot.banks }, off).phys;
}
function offOf(v: DiffView, phys: number): number {
  const mem = { ...v.ram, banks: v.boot.banks };
  return v.boot.banks && !ramContains(mem, phys, 1) ? -1 : ramFileOffset(mem, phys);
}

export const DIFF_SCHEMA = "khosim-diff/1";

export interface SideJson {
  kind: RegionKind;
  label: string;
  index?: number;
  data?: string;
  order?: number;
}

export interface RawEntryJson {
  start: string;
  size: string;
  data: string;
}

export interface ChunkPageJson {
  addr: string;
  a: { index: number | null; next: string; numRanges: string };
  b: { index: number | null; next: string; numRanges: string };
  /** Header fields that differ: "next", "num_ranges". */
  header: string[];
  entriesChanged: number;
  entries: { index: number; a: RawEntryJson; b: RawEntryJson }[];
}

export interface RunJson {
  /** Physical address on A (equal to B's unless the RAM bases differ), and size. */
  start: string;
  size: string;
  /** Offset in memory.img. */
  offset: string;
  pages: number;
  a: SideJson;
  b: SideJson;
  /** When the page is a chunk on either side: both sides decoded. */
  chunk?: ChunkPageJson;
}

export interface RangeJson {
  start: string;
  size: string;
  data: string;
  label: string;
}

export interface ChunkRefJson {
  addr: string;
  index: number;
  /** null: not a linked chunk (a metadata page of another format). */
  next: string | null;
  numRanges: string | null;
}

export interface DiffJson {
  schema: typeof DIFF_SCHEMA;
  a: string;
  b: string;
  identical: boolean;
  files: { "memory.img": boolean; "boot.dtb": boolean; "kho.dtb": boolean };
  ram: { a: { base: string; size: string }; b: { base: string; size: string } };
  /** Preservation format of each side's KHO FDT (null: not decoded). */
  format: { a: string | null; b: string | null };
  limit: number;
  pages: {
    changed: number;
    compared: string;
    /** Holes and zero pages were left out of `compared` (false: --read-all compared every byte). */
    holesSkipped: boolean;
    /** Images of different sizes: only the common prefix is compared page by page. */
    sizeDiff: { a: string; b: string; longer: "a" | "b"; dataPastEnd: string } | null;
    byKind: { a: RegionKind; b: RegionKind; pages: number }[];
    runCount: number;
    runs: RunJson[];
  };
  ranges: {
    a: number;
    b: number;
    counts: { added: number; removed: number; resized: number; dataChanged: number; unchanged: number };
    added: RangeJson[];
    removed: RangeJson[];
    resized: { start: string; a: RangeJson; b: RangeJson; changedPages: number }[];
    dataChanged: { start: string; size: string; a: RangeJson; b: RangeJson; dataField: boolean; changedPages: number }[];
  };
  chunks: {
    a: number;
    b: number;
    metadata: { a: string | null; b: string | null };
    counts: { added: number; removed: number; relinked: number; moved: number; changed: number };
    added: ChunkRefJson[];
    removed: ChunkRefJson[];
    relinked: { addr: string; a: ChunkRefJson; b: ChunkRefJson }[];
    moved: { addr: string; a: ChunkRefJson; b: ChunkRefJson }[];
    /** Chunk pages (a chunk on either side) whose bytes differ: summary; details in pages.runs[].chunk. */
    changed: { addr: string; indexA: number | null; indexB: number | null; header: string[]; entriesChanged: number }[];
  };
  fdt: { kho: FdtChange[]; boot: FdtChange[] };
  /** Only with --kernel: the preserved pages of each side that version would not reserve. */
  lost?: { a: LostSummaryJson; b: LostSummaryJson };
  problems: { a: string[]; b: string[] };
}

/** One side of the diff, as the CLI read it. */
export interface DiffSide {
  /** Name to print (the directory or image given). */
  name: string;
  view: DiffView;
  /** memory.img's size in bytes. */
  imageSize: number;
  /** kho.dtb's bytes, or undefined when there is none (the image's KHO FDT is used for the structural diff). */
  khoDtb?: Uint8Array;
}

export interface BuildDiffInput {
  a: DiffSide;
  b: DiffSide;
  /** Changed pages over the common prefix of both images (image offsets). */
  changed: readonly OffsetRun[];
  /** Bytes compared per image. */
  compared: number;
  /** Whether holes and zero pages were left out (default true; false with --read-all). */
  holesSkipped?: boolean;
  /** Bytes of data the longer image holds past the shorter one's end. */
  dataPastEnd?: number;
  /** Max items per list (0: all). */
  limit: number;
}

const take = <T>(xs: readonly T[], limit: number): T[] => (limit > 0 ? xs.slice(0, limit) : [...xs]);

function sideJson(s: PageSide): SideJson {
  const o: SideJson = { kind: s.kind, label: s.label };
  if (s.index !== undefined) o.index = s.index;
  if (s.data !== undefined) o.data = hex(s.data);
  if (s.order !== undefined) o.order = s.order;
  return o;
}

function rawJson(e: RawEntry): RawEntryJson {
  return { start: hex(e.start), size: hex(e.size), data: hex(e.data) };
}

function rangeJson(r: RangeInfo): RangeJson {
  return { start: hex(r.start), size: hex(r.size), data: hex(r.data), label: r.label };
}

function chunkRefJson(c: ChunkRef): ChunkRefJson {
  return { addr: hex(c.addr), index: c.index, next: c.next === undefined ? null : hex(c.next), numRanges: c.numRanges === undefined ? null : hex(c.numRanges) };
}

function chunkPageJson(addr: number, d: ChunkPageDiff): ChunkPageJson {
  return {
    addr: hex(addr),
    a: { index: d.indexA ?? null, next: hex(d.next.a), numRanges: hex(d.numRanges.a) },
    b: { index: d.indexB ?? null, next: hex(d.next.b), numRanges: hex(d.numRanges.b) },
    header: d.header,
    entriesChanged: d.entriesChanged,
    entries: d.entries.map((e) => ({ index: e.index, a: rawJson(e.a), b: rawJson(e.b) })),
  };
}

function readPage(v: DiffView, phys: number): Uint8Array | undefined {
  if (phys < v.ram.base || phys + PAGE_SIZE > v.ram.base + v.ram.size) return undefined;
  return v.reader.read(phys, PAGE_SIZE);
}

/* The ranges format: a linked list of khoser_mem_chunk pages, decoded here. */
function linkedChunks(v: DiffView): boolean {
  return v.populated?.kho.format.name === "ranges";
}

/*
 * The chunk list as the pointers say (the careful walk's list when it
 * succeeded); for other formats the walked metadata pages, unlinked.
 */
function chain(v: DiffView): { links: ChunkLink[]; metadata?: bigint; stop?: string } {
  const md = v.populated?.kho.metadata;
  if (md === undefined) return { links: [] };
  if (!linkedChunks(v)) return { links: v.chunks.map((addr) => ({ addr })), metadata: md };
  const r = followChunks(md, (p) => readPage(v, p), Math.floor(v.ram.size / PAGE_SIZE));
  return r.stop === undefined ? { links: r.chunks, metadata: md } : { links: r.chunks, metadata: md, stop: r.stop };
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

/** The KHO FDT to diff structurally: kho.dtb, else the one in the image. */
function khoBlob(s: DiffSide): Uint8Array | undefined {
  return s.khoDtb ?? s.view.populated?.kho.fdt.blob;
}

/*
 * A page on the pointer chain that the walk did not accept (the walk failed)
 * is labelled free or preserved by inspect; say what it is instead:
 * "chunk N (not walked)". Runs are split around such pages.
 */
function markUnwalkedChunks(runs: ChangedRun[], v: DiffView, links: readonly ChunkLink[], side: "a" | "b"): ChangedRun[] {
  const walked = new Set(v.chunks);
  const extra = links.map((c, i) => ({ addr: offOf(v, c.addr), phys: c.addr, index: i })).filter((c) => c.addr >= 0 && !walked.has(c.phys));
  if (extra.length === 0) return runs;
  extra.sort((x, y) => x.addr - y.addr);
  const out: ChangedRun[] = [];
  let k = 0; // runs and extra are both ascending: one pass over each
  for (const r of runs) {
    let cur = r.start;
    while (k < extra.length && extra[k]!.addr < r.start) k++;
    for (; k < extra.length && extra[k]!.addr < r.end; k++) {
      const c = extra[k]!;
      if (c.addr > cur) out.push({ ...r, start: cur, end: c.addr });
      const label: PageSide = { kind: "chunk", label: `chunk ${c.index} (not walked)`, index: c.index };
      out.push({ ...r, start: c.addr, end: c.addr + PAGE_SIZE, [side]: label });
      cur = c.addr + PAGE_SIZE;
    }
    if (cur < r.end) out.push({ ...r, start: cur, end: r.end });
  }
  return out;
}

/** buildDiff - everything the diff reports, from both sides and the changed pages. */
export function buildDiff(input: BuildDiffInput): DiffJson {
  const { a, b, changed, limit } = input;
  const va = a.view;
  const vb = b.view;
  const problems = { a: [...va.problems], b: [...vb.problems] };

  // The chunk lists as the pointers say (the walked lists unless a walk failed).
  const ca = chain(va);
  const cb = chain(vb);

  // Pages.
  let runs: ChangedRun[] = classifyRuns(changed, { base: va.ram.base, regions: va.regions, banks: va.boot.banks }, { base: vb.ram.base, regions: vb.regions, banks: vb.boot.banks });
  runs = markUnwalkedChunks(runs, va, ca.links, "a");
  runs = markUnwalkedChunks(runs, vb, cb.links, "b");
  const chunkIndexA = new Map(ca.links.map((c, i) => [c.addr, i]));
  const chunkIndexB = new Map(cb.links.map((c, i) => [c.addr, i]));
  const changedChunks: DiffJson["chunks"]["changed"] = [];
  const runJson: RunJson[] = [];
  runs.forEach((r, i) => {
    const isChunk = (r.a.kind === "chunk" && linkedChunks(va)) || (r.b.kind === "chunk" && linkedChunks(vb));
    let chunk: ChunkPageJson | undefined;
    if (isChunk) {
      const physA = physOf(va, r.start);
      const physB = physOf(vb, r.start);
      const pa = readPage(va, physA);
      const pb = readPage(vb, physB);
      if (pa && pb) {
        // Entries are listed only for runs that are listed themselves.
        const listed = limit === 0 || i < limit;
        const d = diffChunkPage(pa, pb, chunkIndexA.get(physA), chunkIndexB.get(physB), !listed ? 0 : limit > 0 ? limit : Infinity);
        chunk = chunkPageJson(physA, d);
        changedChunks.push({ addr: hex(physA), indexA: d.indexA ?? null, indexB: d.indexB ?? null, header: d.header, entriesChanged: d.entriesChanged });
      }
    }
    if (limit > 0 && i >= limit) return;
    const j: RunJson = {
      start: hex(physOf(va, r.start)),
      size: hex(r.end - r.start),
      offset: hex(r.start),
      pages: (r.end - r.start) / PAGE_SIZE,
      a: sideJson(r.a),
      b: sideJson(r.b),
    };
    if (chunk) j.chunk = chunk;
    runJson.push(j);
  });

  // Ranges, compared at the same physical address.
  const inA = pageCounter(changed);
  const rd = diffRanges(va.ranges, vb.ranges, (s, e) => (va.boot.banks ? inA(offOf(va, s), offOf(va, s) + (e - s)) : inA(s - va.ram.base, e - va.ram.base)), limit);

  // Chunks.
  if (ca.stop !== undefined && va.problems.length === 0) problems.a.push(`chunk list pointers: ${ca.stop}`);
  if (cb.stop !== undefined && vb.problems.length === 0) problems.b.push(`chunk list pointers: ${cb.stop}`);
  const cd = diffChunks(ca.links, cb.links, ca.metadata, cb.metadata);

  // FDTs.
  const kho = diffFdtBlobs(khoBlob(a), khoBlob(b), "KHO FDT");
  const boot = diffFdtBlobs(va.bootDtb, vb.bootDtb, "boot.dtb");
  for (const p of [...kho.problems, ...boot.problems]) (p.startsWith("A:") ? problems.a : problems.b).push(p.slice(3));

  const sizeEqual = a.imageSize === b.imageSize;
  const files = {
    "memory.img": sizeEqual && changed.length === 0,
    "boot.dtb": sameBytes(va.bootDtb, vb.bootDtb),
    "kho.dtb": sameBytes(a.khoDtb, b.khoDtb),
  };
  const d: DiffJson = {
    schema: DIFF_SCHEMA,
    a: a.name,
    b: b.name,
    identical: files["memory.img"] && files["boot.dtb"] && files["kho.dtb"],
    files,
    ram: { a: { base: hex(va.ram.base), size: hex(va.ram.size) }, b: { base: hex(vb.ram.base), size: hex(vb.ram.size) } },
    format: { a: va.populated?.kho.format.name ?? null, b: vb.populated?.kho.format.name ?? null },
    limit,
    pages: {
      changed: countPages(changed),
      compared: hex(input.compared),
      holesSkipped: input.holesSkipped ?? true,
      sizeDiff: sizeEqual
        ? null
        : { a: hex(a.imageSize), b: hex(b.imageSize), longer: a.imageSize > b.imageSize ? "a" : "b", dataPastEnd: hex(input.dataPastEnd ?? 0) },
      byKind: pagesByKind(runs),
      runCount: runs.length,
      runs: runJson,
    },
    ranges: {
      a: rd.countA,
      b: rd.countB,
      counts: { ...rd.counts, unchanged: rd.unchanged },
      added: take(rd.added, limit).map(rangeJson),
      removed: take(rd.removed, limit).map(rangeJson),
      resized: take(rd.resized, limit).map((r) => ({ start: hex(r.start), a: rangeJson(r.a), b: rangeJson(r.b), changedPages: r.changedPages })),
      dataChanged: take(rd.dataChanged, limit).map((r) => ({
        start: hex(r.start),
        size: hex(r.size),
        a: rangeJson(r.a),
        b: rangeJson(r.b),
        dataField: r.dataField,
        changedPages: r.changedPages,
      })),
    },
    chunks: {
      a: cd.countA,
      b: cd.countB,
      metadata: { a: cd.metadataA === undefined ? null : hex(cd.metadataA), b: cd.metadataB === undefined ? null : hex(cd.metadataB) },
      counts: { added: cd.added.length, removed: cd.removed.length, relinked: cd.relinked.length, moved: cd.moved.length, changed: changedChunks.length },
      added: take(cd.added, limit).map(chunkRefJson),
      removed: take(cd.removed, limit).map(chunkRefJson),
      relinked: take(cd.relinked, limit).map((r) => ({ addr: hex(r.addr), a: chunkRefJson(r.a), b: chunkRefJson(r.b) })),
      moved: take(cd.moved, limit).map((r) => ({ addr: hex(r.addr), a: chunkRefJson(r.a), b: chunkRefJson(r.b) })),
      changed: take(changedChunks, limit),
    },
    fdt: { kho: kho.changes, boot: boot.changes },
    problems,
  };
  if (va.lost && vb.lost) d.lost = { a: lostSummary(va.lost, va.sources.lost ?? [], limit), b: lostSummary(vb.lost, vb.sources.lost ?? [], limit) };
  return d;
}
