/* The predecessor's steps, between I/O: boot, workload, finalize. */
import { coldBoot, type Machine } from "../../mm/machine.js";
import { hex } from "../../lib/bytes.js";
import type { Logger } from "../../lib/log.js";
import { khoFinalize, type Handoff } from "./finalize.js";
import { runWorkload, type WorkloadResult } from "./workload.js";
import { type KhoFormat } from "../formats/types.js";
import { type Scenario } from "./scenario.js";
import { reserveMemPreserve } from "./reserve-mem.js";
import type { KhoKernelName } from "../kernels/versions.js";
import { luoReboot, luoRun } from "./luo-scenario.js";

/**
 * khoScratchNodes - which NUMA nodes kernel @kernel's kho_reserve_scratch()
 * gives a scratch area: 6.16-6.19 every online node (num_online_nodes() + 2,
 * kernel/liveupdate/kexec_handover.c @ dd03dd60e8cdd5ef0f0cbc18276c45009bcc51f4),
 * kho-v2 (@ 019fc36872374db6fd35e118c9e935374404bfbf) and khosim's own
 * default the N_MEMORY nodes of the fix "kho: skip memoryless NUMA nodes when
 * reserving scratch areas".
 */
export function khoScratchNodes(kernel: KhoKernelName | undefined): "online" | "memory" {
  return kernel === undefined || kernel === "kho-v2" ? "memory" : "online";
}

/** coldBootMachine - the scenario's machine at cold boot, its scratch placed as @kernel does (khoScratchNodes). */
export function coldBootMachine(s: Scenario, log: Logger, kernel?: KhoKernelName): Machine {
  return coldBoot({ ...s.machine, scratchNodes: khoScratchNodes(kernel) }, log, s.reserveMem);
}

export function runAndFinalize(m: Machine, s: Scenario, seed: number, file: string, kho: Logger, format: KhoFormat): { work: WorkloadResult; handoff: Handoff } {
  const work = runWorkload(m, s, seed, file, undefined, format);
  kho.info(`KHO: preserved ${work.folios.live} folios and ${work.phys.length} phys ranges (${work.preserveCalls} preserve calls, seed ${seed})`);
  // reserve_mem_init() runs at late_initcall, after test_kho's module init.
  const rm = reserveMemPreserve(m, work.track, seed);
  if (rm) kho.info(`KHO: reserve_mem: preserving ${rm.entries.map((e) => `'${e.name}' [${hex(e.start)}, +${hex(e.size)})`).join(", ")} and the memblock FDT at ${hex(rm.fdtPhys)}`);
  // luo_fdt_setup is a late_initcall too; user space runs after every initcall, then reboot(KEXEC).
  let luo;
  if (s.luo) {
    luo = luoReboot(m, luoRun(m, work.track, s.luo, seed, file), file);
    kho.info(`LUO: liveupdate-number ${luo.liveupdateNum}, ${luo.sessions.length} sessions serialized, LUO FDT at ${hex(luo.fdtPhys)}`);
  }
  const handoff = khoFinalize(m, work, rm, luo);
  kho.info(`KHO: finalized: metadata ${hex(handoff.metadata)}, ${handoff.chunks.length} chunks, KHO FDT at ${hex(handoff.khoFdtPhys)} (${handoff.khoFdt.length} bytes)`);
  return { work, handoff };
}
