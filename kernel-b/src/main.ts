/*
 * kernel-b, the successor: boot from a handoff directory alone, revive what
 * KHO preserved, verify it, and report. This file does I/O only; the boot
 * itself is successor.ts.
 *
 * Exit codes: 0 revived and verified; 1 revived but verification failed;
 * 2 unusable input (cannot boot at all, or a usage error); 3 booted without
 * KHO (the KHO data was absent or invalid, or --kernel's version refuses
 * it; the reason is printed); 4 revived unsafely (--kernel: that version
 * revived but lost preserved pages, read out of bounds or would corrupt).
 * With --handoff-out it then hands off again like kernel-a (the next live
 * update); a bad --scenario or an existing --handoff-out is exit 2.
 * --cmdline gives this kernel's reserve_mem= words (revived by name from the
 * memblock sub-tree, successor.json reserveMem; with --kernel as that version
 * does; with --handoff-out handed off again); a bad one is exit 2.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { MAX_PAGE_ORDER, OUTCOME_EXIT, HANDOFF_REPORT, HANDOFF_BOOT_DTB, HANDOFF_KHO_DTB, HANDOFF_MEMORY_IMG, SUCCESSOR_REPORT } from "@khosim/shared/abi";
import { CliError, EXIT_USAGE, INTERRUPT_EXIT_CODES, formatOption, kernelOption, HandoffError, checkHandoffOut, writeHandoffDir, createProgress, intOption, newCommand, runMain, toJson, withExitCodes, writeFileAtomic, writeJsonFile, writeSuccessorJson, memoryFigures, baseImageExtents, writeImageExtents, maxOrderOption, successorArgOptions, type SuccessorArgValues, startupMs as processStartupMs } from "@khosim/shared/proc";
import { DEFAULT_FORMAT, FinalizeError, KHO_KERNEL_NAMES, khoFormat, ScenarioError, parseScenario, predecessorReportStream, successorHandOff, type SuccessorNext, type Scenario, UnusableInputError, bootSuccessor, parseSuccessorBootDtb } from "@khosim/shared/kho";
import { OverlayMem, writeImage, ImageError, ImageMem } from "@khosim/shared/mm";
import { createLogger, hex, initCsum, type LogFormat, type Logger } from "@khosim/shared/lib";

/*
 * kho.dtb is for people and tools; like a real kernel, kernel-b reads the KHO
 * FDT from memory. Say so when the copy and the image disagree, so that
 * someone who edited kho.dtb is not misled.
 */
function checkKhoDtbCopy(file: string, mem: ImageMem, fdt: { addr: string; size: string } | null, log: Logger): void {
  if (!fdt || !fs.existsSync(file)) return;
  const inImage = mem.read(Number(fdt.addr), Number(fdt.size));
  if (!Buffer.from(inImage).equals(fs.readFileSync(file))) {
    log.warn(`${file} differs from the KHO FDT in memory.img at ${fdt.addr}; the successor used the image's, as a kernel would`);
  }
}

/**
 * The scenario for the next generation: its ops run on the machine this
 * kernel booted, so its machine section is replaced by the real one.
 */
function loadNextScenario(file: string | undefined, ram: { base: number; size: number }, maxOrder: number, log: Logger): Scenario {
  let json: Record<string, unknown> = { ops: [] };
  if (file !== undefined) {
    let text: string;
    try {
      text = fs.readFileSync(file, "utf8");
      json = JSON.parse(text) as Record<string, unknown>;
    } catch (e) {
      throw new ScenarioError(file, "", `cannot read as JSON: ${(e as Error).message}`);
    }
    if (typeof json !== "object" || json === null || Array.isArray(json)) throw new ScenarioError(file, "", "not a JSON object");
    if ("machine" in json) log.warn(`${file}: machine section ignored: the successor hands off on the machine it booted`);
  }
  const { machine: _ignored, ...rest } = json;
  return parseScenario({ ...rest, machine: { ram: ram.size, ramBase: ram.base, maxOrder, kernelSize: "4K", scratch: { lowmem: "4K", global: "4K" } } }, file ?? "(no scenario)");
}

/** The next live update: preserve again what was restored, run @scenario, finalize, write @out. */
async function handOffAgain(out: string, force: boolean, imageFile: string, next: SuccessorNext, log: Logger): Promise<void> {
  const { scenario, file, seed, mem } = next;
  const { m, work, handoff } = successorHandOff(next);
  const report = predecessorReportStream("khosim kernel-b", scenario, file, seed, m, work, handoff);
  await writeHandoffDir(out, force, (dir) => {
    const bar = createProgress("kernel-b: writing memory.img", "pages");
    writeImage(path.join(dir, HANDOFF_MEMORY_IMG), mem, imageFile, (done, total) => bar.update(done, total));
    bar.stop();
    const baseExtents = baseImageExtents(imageFile);
    if (baseExtents) writeImageExtents(path.join(dir, HANDOFF_MEMORY_IMG), mem, baseExtents);
    fs.writeFileSync(path.join(dir, HANDOFF_BOOT_DTB), handoff.bootDtb);
    fs.writeFileSync(path.join(dir, HANDOFF_KHO_DTB), handoff.khoFdt);
    writeJsonFile(path.join(dir, HANDOFF_REPORT), report);
  });
  log.info(
    `KHO: handed off again to ${out}: ${report.stats.folios} folios, ${report.stats.physRanges} phys ranges, ` +
      `${report.stats.ranges} ranges in ${report.stats.chunks} chunks, metadata ${report.metadata}`,
  );
}

/** Read boot.dtb and memory.img and boot; UnusableInputError/ImageError when the machine cannot boot. */
async function bootFromFiles(dir: string, opts: ReturnType<typeof successorArgOptions>, log: Logger) {
  const bootFile = path.join(dir, HANDOFF_BOOT_DTB);
  let bootBytes: Uint8Array;
  try {
    bootBytes = fs.readFileSync(bootFile);
  } catch (e) {
    throw new UnusableInputError(`${bootFile}: cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  const boot = parseSuccessorBootDtb(bootBytes, bootFile);
  const image = ImageMem.open(path.join(dir, HANDOFF_MEMORY_IMG), boot.ram.base, boot.ram.size, boot.banks);
  // Copy-on-write: what the successor writes (a next handoff) never reaches its input.
  const mem = new OverlayMem(image);
  await initCsum();
  log.info(`Booting kernel-b: ${hex(boot.ram.size)} bytes of RAM at ${hex(boot.ram.base)}, MAX_PAGE_ORDER ${opts.maxOrder}`);
  const t0 = process.hrtime.bigint();
  // Time from process start to the first line of work (the boot): node's own start-up plus module loading, options, files.
  const startupMs = processStartupMs();
  const startRss = process.memoryUsage.rss();
  const bar = createProgress("kernel-b: verifying", "MiB");
  try {
    const sb = bootSuccessor(boot, mem, { ...opts, log, streamRanges: true, progress: (done, total) => bar.update(Math.floor(done / 2 ** 20), Math.ceil(total / 2 ** 20)) });
    return { boot, image, mem, sb, t0, startupMs, startRss };
  } catch (e) {
    image.close();
    throw e;
  } finally {
    bar.stop();
  }
}

/** The report for a machine that could not boot, where it can be written. */
function writeUnusableReport(file: string, reason: string): void {
  if (!fs.existsSync(path.dirname(path.resolve(file)))) return;
  writeFileAtomic(file, toJson({ outcome: "unusable-input", exitCode: OUTCOME_EXIT["unusable-input"], reason }));
}

async function main(): Promise<number> {
  const cmd = newCommand("kernel-b", "khosim successor: boot from a KHO handoff directory, restore and verify")
    .requiredOption("--in <dir>", "handoff directory written by kernel-a")
    .option("--report <file>", "where to write the successor report (default: DIR/successor.json)")
    .option("--max-order <n>", "this kernel's MAX_PAGE_ORDER", maxOrderOption, MAX_PAGE_ORDER)
    .option("--handoff-out <dir>", "after reviving, hand off again (next live update) into this directory")
    .option("--scenario <file>", "with --handoff-out: ops to run before handing off (its machine section is ignored)")
    .option("--seed <n>", "with --handoff-out: PRNG seed for the scenario (default 1)", intOption("--seed", 0, 2 ** 32 - 1))
    .option("--format <name>", "with --handoff-out: preservation format of the new handoff (default: the one it booted with)", formatOption)
    .option("--force", "with --handoff-out: replace an existing directory", false)
    .option("--cmdline <string>", "this kernel's command line; its reserve_mem=nn:align:name words revive the predecessor's reservations by name (successor.json reserveMem); with --kernel, as that version does (the posting has no revival)")
    .option("--kernel <name>", `read the handoff as this kernel version does and report what it gets wrong (${KHO_KERNEL_NAMES.join(", ")}); not with --handoff-out`, kernelOption);
  withExitCodes(cmd, [
    [OUTCOME_EXIT.revived, "revived: every preserved folio and range restored and verified"],
    [OUTCOME_EXIT["verification-failed"], "verification failed: revived, but the report names what did not verify"],
    [OUTCOME_EXIT["unusable-input"], "unusable input: cannot boot at all (missing or short files, no usable /memory, scratch too small), or a usage error"],
    [OUTCOME_EXIT["booted-without-kho"], "booted without KHO: the KHO data was absent or invalid (the reason names object, field and offset), or --kernel's version refuses it"],
    [OUTCOME_EXIT["revived-unsafely"], "revived unsafely (--kernel): that version revived but lost preserved pages, read out of bounds or would corrupt memory (successor.json kernel)"],
    [OUTCOME_EXIT["kernel-panic"], "kernel panic: the LUO sub-tree is malformed and luo_restore_fail() panics (the reason names the structure and field)"],
    ...INTERRUPT_EXIT_CODES,
  ]);
  cmd.parse(process.argv);
  // Compile the checksum's WebAssembly while the rest starts up (awaited before the first checksum).
  const csumReady = initCsum();
  csumReady.catch(() => undefined);
  const o = cmd.opts<
    SuccessorArgValues & {
      in: string;
      report?: string;
      maxOrder: number;
      handoffOut?: string;
      scenario?: string;
      seed?: number;
      format?: string;
      force: boolean;
      logFormat?: LogFormat;
    }
  >();
  const log = createLogger("kernel-b", o.logFormat);
  const reportFile = o.report ?? path.join(o.in, SUCCESSOR_REPORT);
  if (!o.handoffOut && (o.scenario !== undefined || o.seed !== undefined || o.format !== undefined)) {
    throw new CliError(EXIT_USAGE, "--scenario, --seed and --format need --handoff-out");
  }
  if (o.handoffOut && o.kernel !== undefined) throw new CliError(EXIT_USAGE, "--kernel and --handoff-out together are not supported: a version successor carries nothing to hand off again");
  if (o.handoffOut) checkHandoffOut(o.handoffOut, o.force);
  const successor = successorArgOptions(o);

  let booted;
  try {
    booted = await bootFromFiles(o.in, successor, log);
  } catch (e) {
    if (e instanceof UnusableInputError || e instanceof ImageError) writeUnusableReport(reportFile, e.message);
    throw e;
  }
  const { boot, image, mem, sb, t0, startupMs, startRss } = booted;
  const scenario = o.handoffOut ? loadNextScenario(o.scenario, boot.ram, o.maxOrder, log) : undefined;
  const rep = sb.report;
  checkKhoDtbCopy(path.join(o.in, HANDOFF_KHO_DTB), image, rep.khoFdt, log);
  // A version successor's reserve calls may pass 2^53: they are in rep.ranges as hex strings.
  writeSuccessorJson(reportFile, sb);
  if (o.handoffOut && scenario) {
    if (rep.outcome !== "revived") {
      image.close();
      throw new CliError(rep.exitCode, `not handing off to ${o.handoffOut}: ${rep.outcome}: ${rep.reason}`);
    }
    await handOffAgain(
      o.handoffOut,
      o.force,
      path.join(o.in, HANDOFF_MEMORY_IMG),
      { ram: { ...boot.ram, numa: boot.numa }, maxOrder: o.maxOrder, mem, sb, scenario, file: o.scenario ?? "(no scenario)", seed: o.seed ?? scenario.seed ?? 1, format: khoFormat(o.format ?? rep.format ?? DEFAULT_FORMAT)! },
      log,
    );
  }
  image.close();
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  log.info({ wallMs, startupMs, maxRssKiB: process.resourceUsage().maxRSS, ...memoryFigures(startRss, sb.rangeStream.length, Math.ceil(image.bytesRead / 4096)), format: rep.format, chunks: rep.chunks.length, ranges: sb.rangeStream.length, reserveCalls: rep.reserveCalls, walkNs: rep.timing?.walkNs, reserveNs: rep.timing?.reserveNs, outcome: rep.outcome }, `report written to ${reportFile}`);
  process.stdout.write(
    rep.outcome === "revived"
      ? `KHO restore succeeded: ${rep.restored.folios} folios, ${rep.restored.ranges} ranges, ${rep.kernel ? `${rep.reserveCalls} blocks` : `${sb.rangeStream.length} ranges`} reserved from ${rep.chunks.length} chunks\n`
      : rep.outcome === "verification-failed"
        ? `KHO restore failed: ${rep.reason}\n`
        : rep.outcome === "revived-unsafely"
          ? `revived unsafely: ${rep.reason}\n`
          : rep.outcome === "kernel-panic"
            ? `Kernel panic - not syncing: ${rep.reason}\n`
            : `booted without KHO: ${rep.reason}\n`,
  );
  return rep.exitCode;
}

runMain("kernel-b", main, (e) =>
  e instanceof UnusableInputError || e instanceof ImageError || e instanceof ScenarioError || e instanceof HandoffError || e instanceof FinalizeError
    ? OUTCOME_EXIT["unusable-input"]
    : undefined,
);
