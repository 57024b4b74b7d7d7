/* The predecessor's steps, between I/O: boot, workload, finalize. */
import { coldBoot, hex, khoFinalize, runWorkload, type Handoff,
  type KhoFormat, type Logger, type Machine, type Scenario, type WorkloadResult } from "@khosim/shared";

export function coldBootMachine(s: Scenario, log: Logger): Machine {
  return coldBoot(s.machine, log);
}

export function runAndFinalize(m: Machine, s: Scenario, seed: number, file: string, kho: Logger, format: KhoFormat): { work: WorkloadResult; handoff: Handoff } {
  const work = runWorkload(m, s, seed, file, undefined, format);
  kho.info(`KHO: preserved ${work.folios.live} folios and ${work.phys.length} phys ranges (${work.preserveCalls} preserve calls, seed ${seed})`);
  const handoff = khoFinalize(m, work);
  kho.info(`KHO: finalized: metadata ${hex(handoff.metadata)}, ${handoff.chunks.length} chunks, KHO FDT at ${hex(handoff.khoFdtPhys)} (${handoff.khoFdt.length} bytes)`);
  return { work, handoff };
}
