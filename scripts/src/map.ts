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
import * as fs from "node:fs";
import * as path from "node:path";
import { CliError, EXIT_USAGE, intOption, kernelOption, newCommand, runMain, withExitCodes } from "@khosim/shared/proc";
import { KHO_KERNEL_NAMES, type KhoKernelName } from "@khosim/shared/kho";
import { initCsum } from "@khosim/shared/lib";
import { InspectError, openHandoff } from "./inspect.js";
import { MAP_DEFAULT_DETAIL } from "./map/layout.js";
import { mapHtml, type MapSource } from "./map/html.js";
import { mapSize } from "./map/view.js";

export const MAP_DEFAULT_OUT = path.join("out", "map.html");

/**
 * writeMap - draw @dirs (one or two handoffs) into @out, with the pages
 * @kernel would lose when given; returns the byte size and what could not be
 * decoded. With @kernel, initCsum() must have run (the successor verifies).
 */
export function writeMap(dirs: readonly string[], out: string, detail = MAP_DEFAULT_DETAIL, kernel?: KhoKernelName): { bytes: number; problems: string[] } {
  const sources: MapSource[] = [];
  const problems: string[] = [];
  for (const dir of dirs) {
    const v = openHandoff(dir, kernel === undefined ? {} : { kernel });
    try {
      const src: MapSource = { title: dir, ram: v.ram, regions: v.regions, chunks: v.chunks, ranges: v.ranges, problems: v.problems, banks: v.boot.banks, numa: v.boot.numa };
      if (v.lost) src.lost = v.lost;
      sources.push(src);
      for (const p of v.problems) problems.push(`${dir}: ${p}`);
    } finally {
      v.mem.close();
    }
  }
  const html = mapHtml(sources, { detail });
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, html);
  fs.renameSync(tmp, out);
  return { bytes: Buffer.byteLength(html), problems };
}

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
