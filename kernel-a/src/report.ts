/* kernel-a's report.json: what was preserved, in list order. No timings: same inputs, same bytes. */
import { PAGE_SIZE, formatSize, hex, type Handoff, type Machine, type Scenario, type WorkloadResult } from "@khosim/shared";

export function predecessorReport(s: Scenario, file: string, seed: number, m: Machine, w: WorkloadResult, h: Handoff) {
  const ranges = [...w.track.ranges()];
  return {
    tool: "khosim kernel-a",
    scenario: file,
    description: s.description ?? null,
    seed,
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
      metadataBytes: h.chunks.length * PAGE_SIZE,
      preservedBytes: hex(w.track.totalBytes),
      preserved: formatSize(w.track.totalBytes),
      filledBytes: w.filledBytes,
      imagePages: m.mem.touchedPages,
    },
    chunks: h.chunks.map(hex),
    ranges: ranges.map((r) => ({ start: hex(r.start), size: hex(r.size), data: hex(r.data) })),
  };
}
