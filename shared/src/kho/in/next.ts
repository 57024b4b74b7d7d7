/* The next live update: a successor that revived becomes the next predecessor. */
import { successorMachine, type Machine } from "../../mm/machine.js";
import { type OverlayMem } from "../../mm/physmem.js";
import { khoFinalize, type Handoff } from "../out/finalize.js";
import { runWorkload, type WorkloadResult } from "../out/workload.js";
import { type Scenario } from "../out/scenario.js";
import { type KhoFormat } from "../formats/types.js";
import { type SuccessorBoot } from "./successor.js";

/**
 * successorHandOff - hand off again from the machine a successor booted: on
 * @mem with its memblock, scratch and what restore consumed, preserve again
 * what was restored, run @scenario with @seed and finalize in @format.
 * @ram and @maxOrder are the booted machine's. Kernel-b's --handoff-out and
 * the in-process chain tests both go through here.
 */
export function successorHandOff(
  ram: { base: number; size: number },
  maxOrder: number,
  mem: OverlayMem,
  sb: SuccessorBoot,
  scenario: Scenario,
  file: string,
  seed: number,
  format: KhoFormat,
): { m: Machine; work: WorkloadResult; handoff: Handoff } {
  const m = successorMachine(ram, maxOrder, mem, sb.memblock, sb.scratch, sb.carried.consumed);
  const work = runWorkload(m, scenario, seed, file, sb.carried, format);
  return { m, work, handoff: khoFinalize(m, work) };
}
