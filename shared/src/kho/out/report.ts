/* report.json of a handoff (kernel-a, or kernel-b handing off again): what was preserved, in list order. No timings: same inputs, same bytes. */
import { PAGE_SIZE } from "../../abi/page.js";
import { hex } from "../../lib/bytes.js";
import type { Handoff } from "./finalize.js";
import type { Machine } from "../../mm/machine.js";
import { formatSize } from "../../lib/size.js";
import type { Scenario } from "./scenario.js";
import type { WorkloadResult } from "./workload.js";
import type { PredecessorReport, RangeJson, WithRangeStream } from "../../abi/handoff-json.js";
import { RangeJsonStream } from "../../abi/handoff.js";
import { reserveMemJson } from "./reserve-mem.js";
import { luoJson } from "./luo.js";

/** Bytes of what is still preserved and was filled (checksummed), i.e. what a successor verifies. */
function liveFilledBytes(w: WorkloadResult): number {
  let n = 0;
  // A table still held as runs has no filled folio (and reading its columns would make them).
  if (!w.folios.isRuns) for (let i = 0; i < w.folios.length; i++) if (w.folios.alive[i] && w.folios.filled(i)) n += PAGE_SIZE * 2 ** w.folios.order[i]!;
  for (const r of w.phys) if (r.csum !== 0n) n += r.size;
  return n;
}

/** The tracker's ranges as a RangeJsonStream: counted once, then visited again when written; no copy is kept. */
function trackerRangeStream(w: WorkloadResult): RangeJsonStream {
  const t = w.track;
  if (t.forEachRange) {
    const n = t.forEachRange(() => undefined);
    return new RangeJsonStream(n, (visit) => void t.forEachRange!(visit));
  }
  let n = 0;
  for (const _ of t.ranges()) n++;
  return new RangeJsonStream(n, (visit) => {
    for (const r of t.ranges()) visit(r.start, r.size, r.data);
  });
}

/**
 * predecessorReportStream - the report.json written beside a handoff by
 * @tool (abi/handoff-json.ts; its key order is the file's), with its ranges
 * as a RangeJsonStream over the tracker: what the kernels hand to
 * writeJsonFile(), holding nothing per range.
 */
export function predecessorReportStream(tool: string, s: Scenario, file: string, seed: number, m: Machine, w: WorkloadResult, h: Handoff): WithRangeStream<PredecessorReport> & { ranges: RangeJsonStream } {
  const ranges = trackerRangeStream(w);
  return {
    tool,
    scenario: file,
    description: s.description ?? null,
    seed,
    format: w.format.name,
    machine: { ramBase: hex(m.config.ramBase), ram: hex(m.config.ram), maxOrder: m.config.maxOrder },
    scratch: m.scratch.map((x) => ({ addr: hex(x.addr), size: hex(x.size) })),
    khoFdt: { addr: hex(h.khoFdtPhys), size: hex(h.khoFdt.length) },
    scratchArray: { addr: hex(h.scratchPhys), size: hex(m.scratch.length * 16) },
    subtree: { name: "kho_test", fdt: hex(h.subtreePhys), info: hex(h.infoPhys), infoSize: hex(h.infoSize) },
    metadata: hex(h.metadata),
    stats: {
      folios: w.folios.live,
      physRanges: w.phys.length,
      preserveCalls: w.preserveCalls,
      ranges: ranges.length,
      chunks: h.chunks.length,
      metadataBytes: h.metadataBytes,
      metadataPages: h.metadataPageCount,
      preservedBytes: hex(w.track.totalBytes),
      preserved: formatSize(w.track.totalBytes),
      filledBytes: liveFilledBytes(w),
      imagePages: m.mem.touchedPages,
    },
    ...(h.reserveMem ? { reserveMem: reserveMemJson(h.reserveMem) } : {}),
    ...pageRecordsJson(w),
    ...(h.luo ? { luo: luoJson(h.luo) } : {}),
    chunks: h.chunks.map(hex),
    ranges,
  };
}

/* The vmalloc areas and kho_preserve_pages() ranges kho_test records, when there are any. */
function pageRecordsJson(w: WorkloadResult): Pick<PredecessorReport, "vmalloc" | "pages"> {
  const { vmalloc, pages } = w.pageOps.records();
  return {
    ...(vmalloc.length > 0 ? { vmalloc: vmalloc.map((v) => ({ first: hex(v.desc.first), totalPages: v.desc.totalPages, flags: hex(v.desc.flags), order: v.desc.order, csum: hex(v.csum) })) } : {}),
    ...(pages.length > 0 ? { pages: pages.map((p) => ({ phys: hex(p.phys), nrPages: p.nrPages, csum: hex(p.csum) })) } : {}),
  };
}

/** predecessorReport - predecessorReportStream() with the ranges as RangeJson objects (tools, tests). */
export function predecessorReport(tool: string, s: Scenario, file: string, seed: number, m: Machine, w: WorkloadResult, h: Handoff): PredecessorReport {
  const r = predecessorReportStream(tool, s, file, seed, m, w, h);
  const ranges: RangeJson[] = r.ranges.toJSON();
  return { ...r, ranges };
}
