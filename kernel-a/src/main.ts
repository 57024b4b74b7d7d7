/*
 * kernel-a, the predecessor: cold boot, run the scenario, kho_finalize, and
 * write the handoff directory (memory.img, boot.dtb, kho.dtb, report.json)
 * all or nothing. This file does I/O only; the work is in @khosim/shared.
 *
 * Exit codes: 0 handoff written; 2 bad input (options, scenario, a scenario
 * that exhausts the machine, --out exists without --force); 70 internal error.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { setFlagsFromString } from "node:v8";
import { CliError, EXIT_USAGE, INTERRUPT_EXIT_CODES, formatOption, kernelOption, HandoffError, checkHandoffOut, crashPoint, createProgress, intOption, newCommand, runMain, withExitCodes, writeHandoffDir, writeJsonFile, memoryFigures, writeImageExtents, startupMs as processStartupMs } from "@khosim/shared/proc";
import { HANDOFF_BOOT_DTB, HANDOFF_KHO_DTB, HANDOFF_MEMORY_IMG, HANDOFF_REPORT } from "@khosim/shared/abi";
import { DEFAULT_FORMAT, FinalizeError, KHO_FORMATS, KHO_KERNEL_NAMES, khoFormat, khoKernel, type KhoFormat, type KhoKernelName, ScenarioError, defaultScenario, loadScenario, predecessorReportStream, coldBootMachine, runAndFinalize } from "@khosim/shared/kho";
import { MachineError, writeImage } from "@khosim/shared/mm";
import { createLogger, initCsum, type LogFormat } from "@khosim/shared/lib";


async function main(): Promise<number> {
  const cmd = newCommand("kernel-a", "khosim predecessor: preserve memory and write a KHO handoff directory")
    .requiredOption("--out <dir>", "handoff directory to write")
    .option("--scenario <file>", "scenario JSON (default: test_kho's default workload)")
    .option("--seed <n>", "PRNG seed (overrides the scenario's; default 1)", intOption("--seed", 0, 2 ** 32 - 1))
    .option("--format <name>", `preservation format (${KHO_FORMATS.map((f) => f.name).join(", ")}; default ${DEFAULT_FORMAT})`, formatOption)
    .option("--kernel <name>", `write the handoff as this kernel version's predecessor does (${KHO_KERNEL_NAMES.join(", ")}); --format, if given, must name the same format`, kernelOption)
    .option("--force", "replace an existing --out directory", false);
  withExitCodes(cmd, [
    [0, "handoff written"],
    [EXIT_USAGE, "bad input: options, the scenario (one line naming the JSON path), a scenario the machine cannot hold, --out exists without --force"],
    ...INTERRUPT_EXIT_CODES,
  ]);
  cmd.parse(process.argv);
  // Compile the checksum's WebAssembly while the rest starts up (awaited before the first checksum).
  const csumReady = initCsum();
  csumReady.catch(() => undefined);
  const o = cmd.opts<{ out: string; scenario?: string; seed?: number; format?: string; kernel?: string; force: boolean; logFormat?: LogFormat }>();
  let format: KhoFormat = khoFormat(o.format ?? DEFAULT_FORMAT)!;
  if (o.kernel !== undefined) {
    const k = khoKernel(o.kernel)!;
    if (o.format !== undefined && o.format !== k.predecessor.format.name) {
      throw new CliError(EXIT_USAGE, `--kernel ${k.name} writes format ${k.predecessor.format.name}, not --format ${o.format}: give one of them`);
    }
    format = k.predecessor.format;
  }
  const log = createLogger("kernel-a", o.logFormat);

  checkHandoffOut(o.out, o.force);
  const scenario = o.scenario ? loadScenario(o.scenario) : defaultScenario();
  const file = o.scenario ?? "(default scenario)";
  const seed = o.seed ?? scenario.seed ?? 1;
  await csumReady;

  const t0 = process.hrtime.bigint();
  // Time from process start to the first line of work: node's own start-up plus module loading, options, scenario.
  const startupMs = processStartupMs();
  const startRss = process.memoryUsage.rss();
  const m = coldBootMachine(scenario, log, o.kernel as KhoKernelName | undefined);
  const { work, handoff } = runAndFinalize(m, scenario, seed, file, log, format);
  const report = predecessorReportStream("khosim kernel-a", scenario, file, seed, m, work, handoff);

  await writeHandoffDir(o.out, o.force, (dir, sync) => {
    const bar = createProgress("kernel-a: writing memory.img", "pages");
    writeImage(path.join(dir, HANDOFF_MEMORY_IMG), m.mem, undefined, (done, total) => {
      bar.update(done, total);
      crashPoint("mid-image", done * 2 >= total);
    });
    bar.stop();
    writeImageExtents(path.join(dir, HANDOFF_MEMORY_IMG), m.mem);
    // The image's flush runs in the thread pool while report.json is made.
    sync(path.join(dir, HANDOFF_MEMORY_IMG));
    fs.writeFileSync(path.join(dir, HANDOFF_BOOT_DTB), handoff.bootDtb);
    fs.writeFileSync(path.join(dir, HANDOFF_KHO_DTB), handoff.khoFdt);
    writeJsonFile(path.join(dir, HANDOFF_REPORT), report);
  });
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  log.info(
    { wallMs, startupMs, maxRssKiB: process.resourceUsage().maxRSS, ...memoryFigures(startRss, report.stats.ranges, m.mem.touchedPages), format: work.format.name, metadataBytes: handoff.metadataBytes, metadataPages: handoff.metadataPageCount, preserveNs: Number(work.preserveNs), preserveCalls: work.preserveCalls, serializeNs: Number(handoff.serializeNs), ranges: report.stats.ranges, chunks: report.stats.chunks, touchedPages: m.mem.touchedPages },
    `KHO: handoff written to ${o.out}: ${report.stats.folios} folios, ${report.stats.physRanges} phys ranges, ${report.stats.ranges} ranges in ${report.stats.chunks} chunks, metadata ${report.metadata}`,
  );
  return 0;
}

/*
 * On-stack replacement compiled at once on the main thread (V8's
 * --no-concurrent-osr): with V8's default, the 1M-call preserve loop ran
 * slow code until two background compiles had finished one after the other
 * (khoPreserveFolio alone, ~1.4 ms, then the loop with it inlined, 1-2 ms).
 * (b) preserve 6.46 -> 5.88 ns a call, serialize 11.6 -> 12.0 ms (its
 * loops' compiles now stop the main thread); 48 GiB radix preserve 4.28 ->
 * 3.60, bitmaps 6.83 -> 6.31 ns (interleaved rounds,
 * bench/profile-whole-handoff.md, fifth round). kernel-b keeps the default:
 * its walk was 2 ms slower this way. Set before any loop runs.
 */
setFlagsFromString("--no-concurrent-osr");

runMain("kernel-a", main, (e) =>
  e instanceof ScenarioError || e instanceof HandoffError || e instanceof MachineError || e instanceof FinalizeError ? EXIT_USAGE : undefined,
);
