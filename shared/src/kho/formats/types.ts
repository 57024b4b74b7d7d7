/*
 * A preservation format: how the predecessor tracks what it preserves, how it
 * serializes that into memory and the KHO FDT, and how a successor recognises
 * and walks it. Every format shares the tracker API, the image, the FDT
 * builder (fdt.ts), the metadata walk (walk.ts) and memblock; each format is
 * one module in this directory, registered in index.ts.
 */
import type { FdtRo } from "../../fdt/ro.js";
import { buildKhoFdt, khoFdtMatches, khoFdtReadRoot, type KhoFdtLayout, type KhoFdtOf, type KhoSubtree } from "../fdt.js";
import type { PhysMem } from "../../mm/physmem.js";
import type { KhoMemRange, KhoRangeTable } from "../track.js";
import type { KhoWalkContext } from "../walk.js";

export { KhoMetadataError } from "../walk.js";

export type KhoFormatName = "ranges" | "posted" | "bitmaps" | "radix" | "bitmaps-page";

/**
 * The predecessor's tracker: kho_preserve_* / kho_unpreserve_* with the
 * semantics of KhoMemTrack (overlap with other data is EEXIST; the same thing
 * twice is harmless; unpreserve of what is not preserved is harmless).
 */
export interface KhoTracker {
  khoPreservePhys(phys: number, size: number): void;
  khoPreserveFolio(phys: number, order: number): void;
  khoUnpreserve(addr: number, size: number): void;
  khoUnpreservePhys(phys: number, size: number): void;
  khoUnpreserveFolio(phys: number, order: number): void;
  /** Preserved memory as maximal runs of equal data, ascending (reports, tests). */
  ranges(): Iterable<KhoMemRange>;
  /** Optional: ranges() as calls of @visit, no object per range; returns how many. */
  forEachRange?(visit: (start: number, size: number, data: number) => void): number;
  /** Bytes preserved. */
  readonly totalBytes: number;
  /**
   * Optional: make room for @ranges more ranges (khoFolioRuns() of the folios
   * about to be preserved) before a timed preserve loop, so that it neither
   * allocates nor first-touches memory. Changes nothing preserved.
   */
  reserve?(ranges: number): void;
}

/** What serialize() left in memory. */
export interface KhoSerialized {
  /** The root pointer the KHO FDT carries (first chunk, tree root...), 0 when nothing. */
  root: number;
  /** Every page of metadata written (chunks, bitmaps, tree nodes), in walk order. */
  metadataPages: number[];
  /** Exact bytes of metadata in memory (allocation sizes, not rounded to pages unless allocated so). */
  metadataBytes: number;
  /**
   * Start of every metadata object (chunk, node) when an object spans several
   * pages (posted's 32-page chunks), for reports; metadataPages otherwise.
   */
  objects?: number[];
}

/** What a successor's walk found: validated, before anything is reserved. */
export interface KhoFormatWalk {
  /** Metadata pages read (free memory once walked), in walk order. */
  metadataPages: number[];
  /** Preserved memory as sorted, non-overlapping runs; adjacent runs with equal data merged (may be made on first use). */
  readonly ranges: KhoMemRange[];
  /**
   * The blocks as typed arrays, when the format has them at hand (ranges):
   * the same entries forEachBlock visits, without an object each.
   */
  table?: KhoRangeTable;
  /** Start of every metadata object when objects span several pages (see KhoSerialized.objects). */
  objects?: number[];
  /** Number of preserved blocks (one memblock_reserve each). */
  blockCount: number;
  /** Visit every preserved block in metadata order (what the kernel memblock_reserve()s). */
  forEachBlock(visit: (start: number, size: number, data: number) => void): void;
}

/** allocPage() hands out a zeroed-or-not page that is neither scratch nor preserved. */
export type AllocPage = () => number;

/** allocPages(n) hands out the @n pages @n allocPage() calls would, in that order, at once. */
export type AllocPages = (n: number) => number[];

export interface KhoFormat {
  readonly name: KhoFormatName;
  /** Root compatible of its KHO FDT. */
  readonly compatible: string;
  /** How its KHO FDT is laid out (the one builder and parser in fdt.ts read it). */
  readonly fdtLayout: KhoFdtLayout;
  createTracker(): KhoTracker;
  /**
   * Serialize @track into @mem using pages from @allocPage (contiguous runs
   * via @allocContig; many pages at once via @allocPages, where given and
   * the format knows up front how many it needs).
   */
  serialize(track: KhoTracker, mem: PhysMem, allocPage: AllocPage, allocContig: (pages: number) => number, allocPages?: AllocPages): KhoSerialized;
  /** The whole KHO FDT for @root and @subtrees. */
  buildFdt(root: number, subtrees: readonly KhoSubtree[]): Uint8Array;
  /** True when @fdt (structurally valid, root compatible checked) is in this format. */
  matches(fdt: FdtRo): boolean;
  /** The root pointer from @fdt; throws KhoFdtError naming the node/property. */
  readRoot(fdt: FdtRo): bigint;
  /** Walk and validate everything; throws KhoWalkError (with location) on bad data. */
  walk(mem: PhysMem, root: bigint, ctx: KhoWalkContext): KhoFormatWalk;
}

/** A parsed KHO FDT of one of the registered formats. */
export type KhoFdt = KhoFdtOf<KhoFormat>;

/** What a format module defines; defineKhoFormat() adds the FDT methods from fdtLayout. */
export type KhoFormatSpec = Omit<KhoFormat, "compatible" | "buildFdt" | "matches" | "readRoot">;

/** defineKhoFormat - a registered format from @spec. */
export function defineKhoFormat(spec: KhoFormatSpec): KhoFormat {
  const layout = spec.fdtLayout;
  return {
    ...spec,
    compatible: layout.compatible,
    buildFdt: (root, subtrees) => buildKhoFdt(root, subtrees, layout),
    matches: (fdt) => khoFdtMatches(fdt, layout),
    readRoot: (fdt) => khoFdtReadRoot(fdt, layout),
  };
}

/**
 * ownTracker - @track as the class @cls its format's createTracker() makes,
 * or a TypeError naming @format (a tracker of another format was handed in).
 */
export function ownTracker<T extends KhoTracker>(track: KhoTracker, cls: abstract new (...args: never[]) => T, format: string, ok: (t: T) => boolean = () => true): T {
  if (!(track instanceof cls) || !ok(track)) throw new TypeError(`${format}.serialize: the tracker was not made by ${format}.createTracker()`);
  return track;
}
