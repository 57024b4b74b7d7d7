/* The next live update: a successor that revived becomes the next predecessor. */
import { successorMachine, type Machine } from "../../mm/machine.js";
import { type OverlayMem } from "../../mm/physmem.js";
import { khoFinalize, type Handoff } from "../out/finalize.js";
import { runWorkload, type WorkloadResult } from "../out/workload.js";
import { type Scenario } from "../out/scenario.js";
import { type KhoFormat } from "../formats/types.js";
import { type SuccessorBoot } from "./successor.js";
import { luoReboot, luoRun } from "../out/luo-scenario.js";
import { reserveMemTable } from "./reserve-mem.js";
import { reserveMemPreserve } from "../out/reserve-mem.js";

/** What the next live update starts from and runs. */
export interface SuccessorNext {
  /** RAM and MAX_PAGE_ORDER of the booted machine. */
  ram: { base: number; size: number; numa?: boolean | undefined };
  maxOrder: number;
  /** Its memory, with what the successor wrote on top. */
  mem: OverlayMem;
  sb: SuccessorBoot;
  /** The scenario to run before handing off (@file names it in messages), its seed, and the format to write. */
  scenario: Scenario;
  file: string;
  seed: number;
  format: KhoFormat;
}

/**
 * successorHandOff - hand off again from the machine a successor booted: on
 * @next.mem with its memblock, scratch and what restore consumed, preserve
 * again what was restored, run the scenario with its seed, preserve its
 * reserve_mem= table again (revived rows keep their bytes, fresh ones are
 * filled from the seed) and finalize in the format. Kernel-b's --handoff-out and the in-process chain tests both go
 * through here.
 */
export function successorHandOff(next: SuccessorNext): { m: Machine; work: WorkloadResult; handoff: Handoff } {
  const { ram, maxOrder, mem, sb, scenario, file, seed, format } = next;
  const m = successorMachine(ram, maxOrder, mem, sb.memblock, sb.scratch, sb.carried.consumed);
  // Its reserve_mem= table, revived or fresh, is preserved again at its finalize (as kernel-a's: after the workload).
  const rm = reserveMemTable(sb.report.reserveMem ?? []);
  if (rm.table.length > 0) m.reserveMem = rm.table;
  const work = runWorkload(m, scenario, seed, file, sb.carried, format);
  // The daemon that retrieved the LUO sessions preserves them again; liveupdate-number counts on.
  // reserve_mem_init() (late_initcall) runs before user space, as in kernel-a's runAndFinalize.
  const rmh = reserveMemPreserve(m, work.track, seed, rm.revived);
  const luo = sb.carried.luo || scenario.luo ? luoReboot(m, luoRun(m, work.track, scenario.luo ?? [], seed, file, sb.carried.luo), file) : undefined;
  return { m, work, handoff: khoFinalize(m, work, rmh, luo) };
}
