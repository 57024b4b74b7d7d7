/*
 * npm run map -- DIR [DIR2] [--out FILE.html] [--detail N] [--kernel NAME]
 *
 * Draw the physical memory of a handoff directory (two: both, and the pages
 * whose classification differs) as one self-contained HTML file: inline SVG,
 * CSS and a small script that zooms; no network access. Default output:
 * out/map.html (relative to the current directory). Prints the path.
 *
 * Exit codes: 0 written; 2 bad options or a directory that is not a handoff
 * (no usable boot.dtb / memory.img); 70 internal error. A handoff whose KHO
 * data cannot be fully decoded is still drawn, with what could not be decoded
 * listed on the page and on stderr.
 *
 * --kernel NAME also draws, in a colour of their own, the preserved pages
 * that kernel version would not reserve (the faithful successor of that
 * version booted in process from boot.dtb and memory.img:
 * inspect.ts kernelLostRanges, docs/kernel-versions.md).
 */
import { CliError, EXIT_USAGE, intOption, kernelOption, newCommand, runMain, withExitCodes } from "@khosim/shared/proc";
import { KHO_KERNEL_NAMES, type KhoKernelName } from "@khosim/shared/kho";
import { initCsum } from "@khosim/shared/lib";
import { InspectError } from "./inspect.js";
import { MAP_DEFAULT_DETAIL } from "./map/layout.js";
import { mapSize } from "./map/view.js";
import { MAP_DEFAULT_OUT, writeMap } from "./map/write.js";

async function main(): Promise<number> {
  const cmd = newCommand("map", "draw the physical memory of a khosim handoff (or two, and their difference) as a self-contained HTML file")
    .argument("<dir>", "a handoff directory (kernel-a's --out)")
    .argument("[dir2]", "a second handoff directory: draw both and the pages whose classification differs")
    .option("--out <file>", `the HTML file to write (default ${MAP_DEFAULT_OUT})`)
    .option("--kernel <name>", `also draw the preserved pages this kernel version would not reserve (${KHO_KERNEL_NAMES.join(", ")})`, kernelOption)
    .option("--detail <n>", `at most this many segments embedded per map; finer detail is aggregated (default ${MAP_DEFAULT_DETAIL})`, intOption("--detail", 100, 10_000_000), MAP_DEFAULT_DETAIL);
  withExitCodes(cmd, [
    [0, "written (KHO data that could not be decoded is drawn as such and listed on stderr)"],
    [2, "bad options, or a directory that is not a handoff (no usable boot.dtb / memory.img)"],
  ]);
  cmd.parse(process.argv);
  const dirs = cmd.args;
  const o = cmd.opts<{ out?: string; detail: number; kernel?: KhoKernelName }>();
  const out = o.out ?? MAP_DEFAULT_OUT;
  if (!out.endsWith(".html") && !out.endsWith(".htm")) throw new CliError(EXIT_USAGE, `--out: ${JSON.stringify(out)} should end in .html`);
  // The version successor verifies what it restores (xxhash64, loaded asynchronously).
  if (o.kernel !== undefined) await initCsum();
  const r = writeMap(dirs, out, o.detail, o.kernel);
  for (const p of r.problems) process.stderr.write(`map: warning: ${p}\n`);
  process.stdout.write(`${out}\n`);
  process.stderr.write(`map: wrote ${out} (${mapSize(r.bytes)})\n`);
  return 0;
}

runMain("map", main, (e) => (e instanceof InspectError ? EXIT_USAGE : undefined));
