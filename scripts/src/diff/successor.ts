/*
 * A handoff against the successor's view of it (`npm run diff -- --successor
 * DIR`): what kernel-b reserved, freed, restored and verified (successor.json)
 * versus what the image's chunk list says (walked here) and what kernel-a
 * reported (report.json). OK exactly when the successor revived KHO, reserved
 * exactly the walked ranges and restored and verified everything the kho_test
 * sub-tree lists.
 */
import { PAGE_SIZE } from "@khosim/shared/abi";
import { HandoffJsonError, PredecessorReportSchema, SuccessorJsonSchema, parseHandoffJson, type RangeJson as RangeJsonOfReport, type SuccessorReportJson } from "@khosim/shared/abi/handoff-json";
import { hex, u64ToNumber } from "@khosim/shared/lib";
import type { HandoffView } from "../inspect.js";
import { type KhoMemRange } from "@khosim/shared/kho";
import { diffRanges, type RangeInfo } from "./meta.js";
import type { RangeJson } from "./model.js";

export const SUCCESSOR_DIFF_SCHEMA = "khosim-diff-successor/1";

/** successor.json or report.json cannot be used. */
export class ReportFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ReportFormatError";
  }
}

/** successor.json (abi/handoff-json.ts) with its addresses as numbers. */
export type SuccessorView = Omit<SuccessorReportJson, "chunks" | "ranges"> & { chunks: number[]; ranges: KhoMemRange[] };

/** The parts of kernel-a's report.json this check reads, addresses as numbers. */
export interface PredecessorView {
  chunks: number[];
  ranges: KhoMemRange[];
  folios: number;
  physRanges: number;
}

/** A 0x hex string the schema accepted, as a number; @where names it when it is 2^53 or more. */
function hexNum(v: string, where: string): number {
  const n = u64ToNumber(BigInt(v));
  if (n === undefined) throw new ReportFormatError(`${where}: ${v} is 2^53 or more`);
  return n;
}

function numbers(where: string, chunks: readonly string[], ranges: readonly RangeJsonOfReport[]): { chunks: number[]; ranges: KhoMemRange[] } {
  return {
    chunks: chunks.map((c, i) => hexNum(c, `${where}: chunks[${i}]`)),
    ranges: ranges.map((r, i) => ({
      start: hexNum(r.start, `${where}: ranges[${i}].start`),
      size: hexNum(r.size, `${where}: ranges[${i}].size`),
      data: hexNum(r.data, `${where}: ranges[${i}].data`),
    })),
  };
}

/** Parse with @schema; a mismatch is one ReportFormatError line naming @where and the JSON path. */
function parse<S extends Parameters<typeof parseHandoffJson>[0]>(schema: S, json: unknown, where: string): ReturnType<typeof parseHandoffJson<S>> {
  try {
    return parseHandoffJson(schema, json, where);
  } catch (e) {
    if (e instanceof HandoffJsonError) throw new ReportFormatError(e.message);
    throw e;
  }
}

/** parseSuccessorReport - validate successor.json (@where names it in errors). Throws ReportFormatError. */
export function parseSuccessorReport(json: unknown, where = "successor.json"): SuccessorView {
  const any = parse(SuccessorJsonSchema, json, where);
  if (!("chunks" in any)) throw new ReportFormatError(`${where}: outcome unusable-input (the successor could not boot: ${any.reason}); nothing to check`);
  return { ...any, ...numbers(where, any.chunks, any.ranges) };
}

/** parsePredecessorReport - validate kernel-a's report.json. Throws ReportFormatError. */
export function parsePredecessorReport(json: unknown, where = "report.json"): PredecessorView {
  const r = parse(PredecessorReportSchema, json, where);
  return { ...numbers(where, r.chunks, r.ranges), folios: r.stats.folios, physRanges: r.stats.physRanges };
}

export interface SuccessorDiffJson {
  schema: typeof SUCCESSOR_DIFF_SCHEMA;
  dir: string;
  /** Reserved exactly the walked ranges, and restored and verified everything. */
  ok: boolean;
  /** Why ok is false (empty when ok). */
  why: string[];
  outcome: string;
  exitCode: number;
  reason: string | null;
  /** Format kernel-b found, and the one in the image's KHO FDT as decoded here. */
  format: { successor: string | null; image: string | null };
  reserved: {
    ranges: number;
    /** memblock_reserve() calls (one per preserved block; null when not reported). */
    calls: number | null;
    bytes: string;
    /** The chunk list in the image, walked here. */
    walked: { ranges: number; bytes: string; chunks: number };
    exact: boolean;
    counts: { missing: number; extra: number; differ: number };
    /** Walked but not reserved. */
    missing: RangeJson[];
    /** Reserved but not walked. */
    extra: RangeJson[];
    /** Same start, another size or data. */
    differ: { start: string; walked: RangeJson; reserved: RangeJson }[];
  };
  freed: {
    chunkPages: number;
    chunkBytes: string;
    /** The successor walked the same chunk pages as the image's list. */
    chunksMatchWalk: boolean;
    /** Chunk pages that lie inside a reserved range (would not be free). */
    chunksInReserved: string[];
    /** memblock totals after boot: everything not reserved is free. */
    memory: string | null;
    reserved: string | null;
    free: string | null;
  };
  restored: {
    folios: { restored: number; expected: number | null };
    ranges: { restored: number; expected: number | null };
    /** Where `expected` comes from. */
    expectedFrom: "kho_test sub-tree" | "report.json" | "unknown";
    complete: boolean;
  };
  verified: { folios: number; ranges: number; bytes: number; unchecked: number; failureCount: number; failures: SuccessorView["failures"] };
  /** kernel-a's report.json against the image (null without report.json). */
  predecessor: {
    rangesMatch: boolean;
    chunksMatch: boolean;
    counts: { added: number; removed: number; resized: number; dataChanged: number };
  } | null;
  problems: string[];
}

function rj(r: RangeInfo): RangeJson {
  return { start: hex(r.start), size: hex(r.size), data: hex(r.data), label: r.label };
}

const sum = (rs: readonly KhoMemRange[]): number => rs.reduce((n, r) => n + r.size, 0);

function sameList(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/* Does [start, end) overlap a range of @rs (sorted copy searched by binary search)? */
function overlapsAny(rs: readonly KhoMemRange[], start: number, end: number): boolean {
  let lo = 0;
  let hi = rs.length;
  // First range whose end is past start.
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (rs[mid]!.start + rs[mid]!.size <= start) lo = mid + 1;
    else hi = mid;
  }
  return lo < rs.length && rs[lo]!.start < end;
}

/** diffSuccessor - check @succ (successor.json) against the handoff @view and kernel-a's @pred. */
export function diffSuccessor(dir: string, view: HandoffView, succ: SuccessorView, pred: PredecessorView | undefined, limit: number): SuccessorDiffJson {
  const take = <T>(xs: readonly T[]): T[] => (limit > 0 ? xs.slice(0, limit) : [...xs]);
  const why: string[] = [];
  const problems = [...view.problems];

  // Reserved vs walked: "removed" = walked only, "added" = reserved only.
  const rd = diffRanges(view.ranges, succ.ranges, () => 0);
  const exact = rd.added.length + rd.removed.length + rd.resized.length + rd.dataChanged.length === 0 && view.problems.length === 0;
  if (view.problems.length > 0) why.push("the image's KHO data could not be fully decoded here");
  if (rd.removed.length) why.push(`${rd.removed.length} walked range(s) not reserved`);
  if (rd.added.length) why.push(`${rd.added.length} reserved range(s) not in the chunk list`);
  if (rd.resized.length + rd.dataChanged.length) why.push(`${rd.resized.length + rd.dataChanged.length} range(s) reserved with another size or data`);

  // Freed chunk pages (the successor's ranges, sorted: its list order is not trusted here).
  const sortedReserved = [...succ.ranges].sort((x, y) => x.start - y.start);
  const inReserved = succ.chunks.filter((c) => overlapsAny(sortedReserved, c, c + PAGE_SIZE));
  const chunksMatchWalk = sameList(succ.chunks, view.chunks);

  // Restored: what the sub-tree lists, else what kernel-a reported.
  let expectedFrom: SuccessorDiffJson["restored"]["expectedFrom"] = "unknown";
  let ef: number | null = null;
  let er: number | null = null;
  if (view.subtree) {
    expectedFrom = "kho_test sub-tree";
    ef = view.subtree.header.nrFolios;
    er = view.subtree.header.nrRanges;
  } else if (pred) {
    expectedFrom = "report.json";
    ef = pred.folios;
    er = pred.physRanges;
  }
  const complete = ef !== null && er !== null && succ.restored.folios === ef && succ.restored.ranges === er;
  if (succ.outcome !== "revived") why.push(`outcome ${succ.outcome}${succ.reason ? ": " + succ.reason : ""}`);
  if (!complete) why.push(ef === null ? "nothing to say what should be restored" : `restored ${succ.restored.folios}/${ef} folios and ${succ.restored.ranges}/${er} ranges`);
  if (succ.failureCount > 0) why.push(`${succ.failureCount} verification failure(s)`);

  let predecessor: SuccessorDiffJson["predecessor"] = null;
  if (pred) {
    const pd = diffRanges(pred.ranges, view.ranges, () => 0);
    predecessor = {
      rangesMatch: pd.added.length + pd.removed.length + pd.resized.length + pd.dataChanged.length === 0,
      chunksMatch: sameList(pred.chunks, view.chunks),
      counts: { added: pd.added.length, removed: pd.removed.length, resized: pd.resized.length, dataChanged: pd.dataChanged.length },
    };
    if (!predecessor.rangesMatch) problems.push("report.json's ranges differ from the chunk list in the image");
    if (!predecessor.chunksMatch) problems.push("report.json's chunks differ from the chunk list in the image");
  }

  return {
    schema: SUCCESSOR_DIFF_SCHEMA,
    dir,
    ok: why.length === 0,
    why,
    outcome: succ.outcome,
    exitCode: succ.exitCode,
    reason: succ.reason,
    format: { successor: succ.format, image: view.populated?.kho.format.name ?? null },
    reserved: {
      ranges: succ.ranges.length,
      calls: succ.reserveCalls,
      bytes: hex(sum(succ.ranges)),
      walked: { ranges: view.ranges.length, bytes: hex(sum(view.ranges)), chunks: view.chunks.length },
      exact,
      counts: { missing: rd.removed.length, extra: rd.added.length, differ: rd.resized.length + rd.dataChanged.length },
      missing: take(rd.removed).map(rj),
      extra: take(rd.added).map(rj),
      differ: take([...rd.resized, ...rd.dataChanged].sort((x, y) => x.start - y.start)).map((d) => ({ start: hex(d.start), walked: rj(d.a), reserved: rj(d.b) })),
    },
    freed: {
      chunkPages: succ.chunks.length,
      chunkBytes: hex(succ.chunks.length * PAGE_SIZE),
      chunksMatchWalk,
      chunksInReserved: take(inReserved).map((c) => hex(c)),
      memory: succ.memblock?.memory ?? null,
      reserved: succ.memblock?.reserved ?? null,
      free: succ.memblock?.free ?? null,
    },
    restored: { folios: { restored: succ.restored.folios, expected: ef }, ranges: { restored: succ.restored.ranges, expected: er }, expectedFrom, complete },
    verified: { ...succ.verified, failureCount: succ.failureCount, failures: take(succ.failures) },
    predecessor,
    problems,
  };
}
