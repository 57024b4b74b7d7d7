/*
 * In-process handoffs for the kernel-version tests: kernel-a's own code
 * (cold boot, workload, finalize) with a version's predecessor format, and
 * bootSuccessor with a version's successor, without files.
 */
import { parseBootDtb } from "../src/abi/boot-dtb.js";
import { defaultScenario, type Scenario } from "../src/kho/out/scenario.js";
import { coldBootMachine, runAndFinalize } from "../src/kho/out/predecessor.js";
import { bootSuccessor, type SuccessorBoot } from "../src/kho/in/successor.js";
import { KHO_KERNELS, type KhoKernelName } from "../src/kho/kernels/versions.js";
import { createLogger, initCsum } from "../src/lib/index.js";
import type { PhysMem } from "../src/mm/physmem.js";

export const quiet = createLogger("test", "json", "silent");

export interface InProcessHandoff {
  bootDtb: Uint8Array;
  mem: PhysMem;
}

/** predecessorInProcess - what `kernel-a --kernel @name` writes for @scenario (default: test_kho's default), in memory. */
export async function predecessorInProcess(name: KhoKernelName, scenario: Scenario = defaultScenario(), seed = 1): Promise<InProcessHandoff> {
  await initCsum();
  const s = scenario;
  const m = coldBootMachine(s, quiet);
  const { handoff } = runAndFinalize(m, s, seed, "(test)", quiet, KHO_KERNELS[name].predecessor.format);
  return { bootDtb: handoff.bootDtb, mem: m.mem };
}

/** successorInProcess - `kernel-b --kernel @name` on @h, in process. */
export function successorInProcess(h: InProcessHandoff, name: KhoKernelName | undefined, maxOrder = 10): SuccessorBoot {
  return bootSuccessor(parseBootDtb(h.bootDtb), h.mem, { maxOrder, kernel: name });
}
