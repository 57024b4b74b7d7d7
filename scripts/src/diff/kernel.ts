/*
 * A handoff against what one kernel version makes of it (`npm run diff --
 * --kernel NAME DIR`): the preserved pages that version would not reserve
 * (lost: the page allocator may hand them out and overwrite them), listed as
 * runs labelled with what each page is ("lost under v6.16: KHO FDT"), and
 * what else that version's successor reported (verdict, reads out of
 * bounds, wrong-size reserves, hazards). The pages come from the faithful
 * successor of the version booted in process from boot.dtb and memory.img
 * alone (inspect.ts kernelLostRanges); the versions and their sources:
 * docs/kernel-versions.md. With two handoffs, the same lost pages are a
 * region class of each side (see lostSummary). Output: render.ts.
 */
import { PAGE_SIZE } from "@khosim/shared/abi";
import { hex } from "@khosim/shared/lib";
import type { HandoffView, KernelLost } from "../inspect.js";

export const KERNEL_DIFF_SCHEMA = "khosim-diff-kernel/1";

/** One run of lost pages that are the same kind of thing. */
export interface LostRunJson {
  start: string;
  /** Last byte. */
  end: string;
  pages: number;
  /** "lost under v6.16: preserved order-0 folios", "lost under v6.16: KHO FDT", ... */
  label: string;
}

/** The lost pages of one handoff under one version. */
export interface LostSummaryJson {
  kernel: string;
  pages: number;
  /** Disjoint runs of lost pages (merged over what they are). */
  runs: number;
  first: string | null;
  /** Lost pages split by what they are, in address order (at most --limit). */
  list: LostRunJson[];
  /** Entries of `list` before --limit. */
  listed: number;
}

export interface KernelDiffJson {
  schema: typeof KERNEL_DIFF_SCHEMA;
  dir: string;
  kernel: { name: string; source: string | null };
  /** The version successor's verdict (null when it did not report one). */
  verdict: string | null;
  outcome: string;
  exitCode: number;
  reason: string | null;
  /** Pages preserved as the version successor counts them (the truth its losses are counted against; null: not reported), and as this tool's careful walk reads the image. */
  preserved: { pages: number | null; walked: { ranges: number; pages: number } };
  lost: LostSummaryJson;
  oobReadBytes: number;
  firstOobRead: string | null;
  outsideRamPfns: number;
  wrongSizeReserves: number;
  spuriousPages: number;
  doubleRestores: number;
  hazards: string[];
  problems: string[];
}

/**
 * lostSummary - @lost as runs labelled with what the pages are: the
 * regions of kind "lost" of @regions (openHandoff with a kernel labels them).
 * @limit caps the list (0: all).
 */
export function lostSummary(lost: KernelLost, regions: readonly { start: number; end: number; kind: string; label: string }[], limit: number): LostSummaryJson {
  const pieces = regions.filter((r) => r.kind === "lost");
  const shown = limit > 0 ? pieces.slice(0, limit) : pieces;
  return {
    kernel: lost.kernel,
    pages: lost.pages,
    runs: lost.ranges.length,
    first: lost.ranges.length ? hex(lost.ranges[0]!.start) : null,
    list: shown.map((r) => ({ start: hex(r.start), end: hex(r.end - 1), pages: (r.end - r.start) / PAGE_SIZE, label: r.label })),
    listed: pieces.length,
  };
}

/** diffKernel - what version @view.lost.kernel makes of the handoff @view (opened with that kernel). */
export function diffKernel(dir: string, view: HandoffView, limit: number): KernelDiffJson {
  const lost = view.lost;
  if (!lost) throw new Error("diffKernel: the view was opened without a kernel");
  const k = lost.report;
  return {
    schema: KERNEL_DIFF_SCHEMA,
    dir,
    kernel: { name: lost.kernel, source: k?.source ?? null },
    verdict: k?.verdict ?? null,
    outcome: lost.outcome,
    exitCode: lost.exitCode,
    reason: lost.reason,
    preserved: { pages: k?.preservedPages ?? null, walked: { ranges: view.ranges.length, pages: view.ranges.reduce((n, r) => n + r.size / PAGE_SIZE, 0) } },
    lost: lostSummary(lost, view.regions, limit),
    oobReadBytes: k?.oobReadBytes ?? 0,
    firstOobRead: k?.firstOobRead ?? null,
    outsideRamPfns: k?.outsideRamPfns ?? 0,
    wrongSizeReserves: k?.wrongSizeReserves ?? 0,
    spuriousPages: k?.spuriousPages ?? 0,
    doubleRestores: k?.doubleRestores ?? 0,
    hazards: k?.hazards ?? [],
    problems: [...view.problems],
  };
}
