/*
 * npm run debugfs -- DIR [--kernel NAME] [--json] [--write DIR2]
 *
 * What /sys/kernel/debug/kho/out/ of the predecessor held at kexec and what
 * /sys/kernel/debug/kho/in/ of the successor would hold, for the handoff in
 * DIR (kernel-a's --out or kernel-b's --handoff-out): fdt, sub_fdts/NAME,
 * scratch_phys, scratch_len and, where the version has it, finalize
 * (debugfs/view.ts has the kernel sources). --write DIR2 lays the files out
 * as DIR2/kho/{out,in}/..., all or nothing, never over an existing DIR2.
 *
 * Exit codes: 0 shown (and written); 2 bad options, DIR not a handoff (no
 * usable boot.dtb / memory.img) or DIR2 exists; 3 the handoff's KHO data
 * cannot be shown (one line: file, offset, field); 70 internal error.
 */
import { CliError, EXIT_USAGE, HandoffError, kernelOption, newCommand, runMain, withExitCodes } from "@khosim/shared/proc";
import { KHO_KERNEL_NAMES, type KhoKernelName } from "@khosim/shared/kho";
import { InspectError } from "./inspect.js";
import { DebugfsError, debugfsView } from "./debugfs/view.js";
import { DebugfsWriteError, debugfsJson, debugfsListing, debugfsWrite } from "./debugfs/render.js";

/** Exit code of a handoff whose KHO data cannot be shown. */
export const EXIT_DEBUGFS_CORRUPT = 3;

async function main(): Promise<number> {
  const cmd = newCommand("debugfs", "show what /sys/kernel/debug/kho/{out,in} hold for a khosim handoff (fdt, sub_fdts, scratch_phys, scratch_len, finalize)")
    .argument("<dir>", "a handoff directory (kernel-a's --out or kernel-b's --handoff-out)")
    .option("--kernel <name>", `the kernel version whose debugfs is shown (${KHO_KERNEL_NAMES.join(", ")}; default: the version that writes the handoff's format: posting for ranges and posted, v6.16 bitmaps, v6.19 bitmaps-page, kho-v2 radix)`, kernelOption)
    .option("--json", "print the view as JSON (schema khosim-debugfs/1) instead of the listing", false)
    .option("--write <dir2>", "also lay the files out under DIR2/kho/{out,in}/ (all or nothing; DIR2 must not exist)");
  withExitCodes(cmd, [
    [0, "shown (and written with --write); warnings are the kernel's skips"],
    [2, "bad options, a directory that is not a handoff (no usable boot.dtb / memory.img), or --write's DIR2 exists"],
    [EXIT_DEBUGFS_CORRUPT, "the handoff's KHO data cannot be shown: one line naming file, offset and field"],
  ]);
  cmd.parse(process.argv);
  const dir = cmd.args[0]!;
  const o = cmd.opts<{ kernel?: KhoKernelName; json: boolean; write?: string }>();
  const v = debugfsView(dir, o.kernel);
  if (o.write !== undefined) {
    try {
      await debugfsWrite(v, o.write);
    } catch (e) {
      if (e instanceof DebugfsWriteError || e instanceof HandoffError) throw new CliError(EXIT_USAGE, e.message);
      throw e;
    }
  }
  process.stdout.write(o.json ? debugfsJson(v, dir) : debugfsListing(v, dir));
  if (o.write !== undefined) process.stderr.write(`debugfs: wrote ${o.write}/kho (${v.files.length} files)\n`);
  return 0;
}

runMain("debugfs", main, (e) => (e instanceof InspectError ? EXIT_USAGE : e instanceof DebugfsError ? EXIT_DEBUGFS_CORRUPT : undefined));
