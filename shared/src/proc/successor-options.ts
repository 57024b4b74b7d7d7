/*
 * kernel-b's boot options (--max-order, --kernel, --cmdline) as the
 * successor's: one mapping for kernel-b's command line and for the tests
 * that boot in process with kernel-b's argv.
 */
import { MAX_PAGE_ORDER } from "../abi/page.js";
import type { SuccessorOptions } from "../kho/in/successor.js";
import type { KhoKernelName } from "../kho/kernels/versions.js";
import { ReserveMemError, parseReserveMemCmdline } from "../mm/reserve-mem.js";
import { CliError, EXIT_USAGE, intOption } from "./cli.js";

/** maxOrderOption - a commander argument parser for kernel-b's --max-order: an integer in [0, 18]. */
export const maxOrderOption = intOption("--max-order", 0, 18);

/** kernel-b's option values: --max-order and --kernel as maxOrderOption and kernelOption return them, --cmdline as given. */
export interface SuccessorArgValues {
  maxOrder?: number;
  kernel?: KhoKernelName;
  cmdline?: string;
}

/**
 * successorArgOptions - bootSuccessor's options from kernel-b's option values
 * @o: maxOrder (MAX_PAGE_ORDER when unset), kernel, and reserveMem parsed
 * from --cmdline's reserve_mem= words. A bad --cmdline is a usage error
 * (CliError, exit 2) naming the option.
 */
export function successorArgOptions(o: SuccessorArgValues): Pick<SuccessorOptions, "maxOrder" | "kernel" | "reserveMem"> {
  let reserveMem;
  if (o.cmdline !== undefined) {
    try {
      reserveMem = parseReserveMemCmdline(o.cmdline);
    } catch (e) {
      if (e instanceof ReserveMemError) throw new CliError(EXIT_USAGE, `--cmdline: ${e.reason}`);
      throw e;
    }
  }
  return { maxOrder: o.maxOrder ?? MAX_PAGE_ORDER, ...(o.kernel !== undefined ? { kernel: o.kernel } : {}), ...(reserveMem ? { reserveMem } : {}) };
}
