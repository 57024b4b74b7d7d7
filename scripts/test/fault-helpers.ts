/*
 * In-process handoffs for the fault tests: made by kernel-a's own code
 * (cold boot, workload, finalize) without writing files, damaged by the fault
 * catalogue copy-on-write, and booted by the successor's boot function as
 * kernel-b would boot the same bytes from files.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { HANDOFF_BOOT_DTB, HANDOFF_KHO_DTB, HANDOFF_MEMORY_IMG, HANDOFF_REPORT, MAX_PAGE_ORDER, OUTCOME_EXIT, ramTotal, type Outcome } from "@khosim/shared/abi";
import { type PredecessorReport } from "@khosim/shared/abi/handoff-json";
import { DEFAULT_FORMAT, UnusableInputError, bootSuccessor, coldBootMachine, defaultScenario, khoFormat, khoKernel, loadScenario, type KhoKernelName, parseScenario, parseSuccessorBootDtb, predecessorReport, runAndFinalize, successorHandOff, type SuccessorBoot, type SuccessorReport } from "@khosim/shared/kho";
import { createLogger, initCsum, type Logger } from "@khosim/shared/lib";
import { ImageMem, OverlayMem, PhysMemError, writeImage, type PageSource, type PhysMem } from "@khosim/shared/mm";
import { kernelOption, maxOrderOption, successorArgOptions, writeImageExtents, writeJsonFile, type SuccessorArgValues } from "@khosim/shared/proc";
import { MemHandoff } from "../src/faults/index.js";
import type { Handoff } from "./handoff-helpers.js";

const quiet = createLogger("test", "json", "silent");

/** kernel-a's name for its default scenario (no --scenario), in report.json. */
export const DEFAULT_SCENARIO = "(default scenario)";

/**
 * kernelAInProcess - what `kernel-a --scenario FILE [--seed @seed] [--kernel
 * @kernel]` writes, held in memory: @scenario is FILE, or its JSON content
 * (named @name), or undefined for kernel-a's default scenario. With
 * @kernel, that version's predecessor and its format (as kernel-a: @format
 * must then be unset or the same).
 */
export async function kernelAInProcess(scenario: string | object | undefined, seed?: number, format?: string, name = "(test scenario)", kernel?: KhoKernelName): Promise<{ handoff: MemHandoff; report: PredecessorReport }> {
  await initCsum();
  const file = scenario === undefined ? DEFAULT_SCENARIO : typeof scenario === "string" ? scenario : name;
  const s = scenario === undefined ? defaultScenario() : typeof scenario === "string" ? loadScenario(scenario) : parseScenario(scenario, name);
  const kfmt = kernel === undefined ? undefined : khoKernel(kernel)!.predecessor.format;
  if (kfmt && format !== undefined && format !== kfmt.name) throw new Error(`--kernel ${kernel} writes format ${kfmt.name}, not --format ${format}`);
  const m = coldBootMachine(s, quiet, kernel);
  const sd = seed ?? s.seed ?? 1;
  const { work, handoff } = runAndFinalize(m, s, sd, file, quiet, kfmt ?? khoFormat(format ?? DEFAULT_FORMAT)!);
  return { handoff: new MemHandoff(handoff.bootDtb, handoff.khoFdt, m.mem), report: predecessorReport("khosim kernel-a", s, file, sd, m, work, handoff) };
}

/** makeMemHandoff - the handoff of kernelAInProcess alone. */
export async function makeMemHandoff(file: string, seed?: number, format = DEFAULT_FORMAT): Promise<MemHandoff> {
  return (await kernelAInProcess(file, seed, format)).handoff;
}

/** damage - a copy of @h whose memory.img has @edit applied (copy-on-write: @h is unchanged). */
export function damage(h: MemHandoff, edit: (mem: OverlayMem) => void): MemHandoff {
  const d = h.clone();
  const mem = new OverlayMem(d.memory!);
  edit(mem);
  d.memory = mem;
  return d;
}

/** sha256 of every page @mem holds (a SparseMem or an overlay): changes when anything is written. */
export function pagesDigest(mem: PageSource): string {
  const h = createHash("sha256");
  for (const [pfn, count] of mem.touchedRuns()) {
    for (let i = 0; i < count; i++) {
      h.update(`${pfn + i}:`);
      h.update(mem.page(pfn + i)!);
    }
  }
  return h.digest("hex");
}

/** sha256 of a whole in-memory handoff: boot.dtb, kho.dtb, memory.img's length and written pages. */
export function handoffDigest(h: MemHandoff): string {
  const d = createHash("sha256");
  d.update(`boot:${h.bootDtb?.length}:`).update(h.bootDtb ?? new Uint8Array());
  d.update(`kho:${h.khoDtb?.length}:`).update(h.khoDtb ?? new Uint8Array());
  d.update(`img:${h.imageSize()}:`);
  const pages = h.memory as Partial<PageSource> | undefined;
  if (pages?.touchedRuns) d.update(pagesDigest(pages as PageSource));
  return d.digest("hex");
}

/** A read-only view of @mem that counts attempted writes (the successor must make none). */
export function readOnly(mem: PhysMem): PhysMem & { writes: number } {
  const view = {
    base: mem.base,
    size: mem.size,
    banks: mem.banks,
    writes: 0,
    read: (phys: number, len: number) => mem.read(phys, len),
    write: (phys: number, data: Uint8Array): void => {
      view.writes++;
      throw new PhysMemError(phys, data.length, "the successor wrote its input");
    },
  };
  return view;
}

/**
 * successorOptionsOf - kernel-b's --max-order N, --kernel NAME and --cmdline
 * STRING in @args as bootSuccessor's options, by kernel-b's own parsers
 * (maxOrderOption, kernelOption) and mapping (successorArgOptions). A bad
 * value throws kernel-b's usage error; any other option throws (kernel-b's
 * other options are tested on the real process).
 */
export function successorOptionsOf(args: readonly string[]): ReturnType<typeof successorArgOptions> {
  const o: SuccessorArgValues = {};
  for (let i = 0; i < args.length; i += 2) {
    const [opt, val] = [args[i]!, args[i + 1]];
    if (val === undefined) throw new Error(`kernel-b option ${opt} without a value`);
    if (opt === "--max-order") o.maxOrder = maxOrderOption(val);
    else if (opt === "--kernel") o.kernel = kernelOption(val) as KhoKernelName;
    else if (opt === "--cmdline") o.cmdline = val;
    else throw new Error(`kernel-b options ${args.join(" ")}: only --max-order, --kernel and --cmdline are modelled in process`);
  }
  return successorArgOptions(o);
}

export interface InProcessBoot {
  outcome: Outcome;
  exitCode: number;
  reason: string;
  /** successor.json's content (absent when the machine could not boot). */
  report?: SuccessorReport;
  /** Writes the successor attempted on its memory view. */
  writes: number;
}

/**
 * bootMemHandoff - boot the successor on @h as kernel-b does with the same
 * files and options @kernelBArgs (successorOptionsOf): the boot DTB (an
 * unusable one is unusable-input naming boot.dtb), then bootSuccessor on
 * memory.img's bytes, read-only. An image whose length
 * is not the RAM size is a file-level case (kernel-b's ImageMem refuses it):
 * those are tested by spawning kernel-b, so it throws here. @log gets the
 * successor's log lines (kernel-b's stderr), if given.
 */
export function bootMemHandoff(h: MemHandoff, kernelBArgs: readonly string[], log?: Logger): InProcessBoot {
  const unusable = (e: Error, writes = 0): InProcessBoot => ({ outcome: "unusable-input", exitCode: OUTCOME_EXIT["unusable-input"], reason: e.message, writes });
  if (!h.bootDtb) throw new Error("no boot.dtb: a file-level case");
  let boot;
  try {
    boot = parseSuccessorBootDtb(h.bootDtb, HANDOFF_BOOT_DTB);
  } catch (e) {
    if (e instanceof UnusableInputError) return unusable(e);
    throw e;
  }
  const ramBytes = ramTotal({ ...boot.ram, banks: boot.banks });
  if (h.imageSize() !== ramBytes) throw new Error(`memory.img is ${h.imageSize()} bytes for ${ramBytes} of RAM: a file-level case`);
  const mem = readOnly(h.openImage(boot.ram.base, boot.banks));
  try {
    const rep = bootSuccessor(boot, mem, { ...successorOptionsOf(kernelBArgs), ...(log ? { log } : {}) }).report;
    return { outcome: rep.outcome, exitCode: rep.exitCode, reason: rep.reason ?? "", report: rep, writes: mem.writes };
  } catch (e) {
    if (e instanceof UnusableInputError) return unusable(e, mem.writes);
    throw e;
  }
}

export interface NextGeneration {
  /** The successor's boot of @h: its report and what it carried. */
  boot: SuccessorBoot;
  /** The handoff it wrote when it revived: what `kernel-b --handoff-out` writes, held in memory. */
  next?: { handoff: MemHandoff; report: PredecessorReport };
}

/**
 * successorHandOffInProcess - `kernel-b --in H --handoff-out NEXT --seed @seed
 * [--format @format]` without a scenario, in process: boot @h copy-on-write
 * (its memory is never written), and when it revived, preserve again what was
 * restored, finalize and hand off on the same machine (kernel-b's
 * handOffAgain: successorHandOff on an empty scenario, predecessorReport).
 */
export function successorHandOffInProcess(h: MemHandoff, seed: number, format?: string): NextGeneration {
  if (!h.bootDtb) throw new Error("no boot.dtb");
  const boot = parseSuccessorBootDtb(h.bootDtb, HANDOFF_BOOT_DTB);
  const mem = new OverlayMem(h.openImage(boot.ram.base, boot.banks));
  const sb = bootSuccessor(boot, mem, { maxOrder: MAX_PAGE_ORDER, log: quiet });
  if (sb.report.outcome !== "revived") return { boot: sb };
  const file = "(no scenario)";
  const scenario = parseScenario({ ops: [], machine: { ram: boot.ram.size, ramBase: boot.ram.base, maxOrder: MAX_PAGE_ORDER, kernelSize: "4K", scratch: { lowmem: "4K", global: "4K" } } }, file);
  const fmt = khoFormat(format ?? sb.report.format ?? DEFAULT_FORMAT)!;
  const { m, work, handoff } = successorHandOff({ ram: { ...boot.ram, numa: boot.numa }, maxOrder: MAX_PAGE_ORDER, mem, sb, scenario, file, seed, format: fmt });
  const report = predecessorReport("khosim kernel-b", scenario, file, seed, m, work, handoff);
  return { boot: sb, next: { handoff: new MemHandoff(handoff.bootDtb, handoff.khoFdt, mem), report } };
}

/**
 * writeMemHandoff - write @h as a handoff directory @dir (which must not
 * exist) with the files kernel-a writes: memory.img (writeImage, sparse),
 * its extents file, boot.dtb, kho.dtb and @report as report.json. For tests
 * that need the files for a real kernel-b (or an outside oracle) without a
 * kernel-a process; kernel-a's own writing is tested on the real process.
 */
export function writeMemHandoff(h: MemHandoff, report: PredecessorReport, dir: string): string {
  const mem = h.memory as PageSource & PhysMem;
  // An overlay's touched pages are only what it changed: its image would lose what lies below.
  if (!mem?.touchedRuns || mem instanceof OverlayMem || !h.bootDtb || !h.khoDtb) throw new Error("writeMemHandoff: a whole, undamaged in-memory handoff only");
  fs.mkdirSync(dir);
  writeImage(path.join(dir, HANDOFF_MEMORY_IMG), mem);
  writeImageExtents(path.join(dir, HANDOFF_MEMORY_IMG), mem);
  fs.writeFileSync(path.join(dir, HANDOFF_BOOT_DTB), h.bootDtb);
  fs.writeFileSync(path.join(dir, HANDOFF_KHO_DTB), h.khoDtb);
  writeJsonFile(path.join(dir, HANDOFF_REPORT), report);
  return dir;
}

/**
 * writtenHandoff - @k (an in-process kernel-a's handoff and report) written
 * by writeMemHandoff into @dir, as a Handoff that a real kernel-a run with
 * exit 0 and no output would have made.
 */
export function writtenHandoff(k: { handoff: MemHandoff; report: PredecessorReport }, dir: string): Handoff {
  return { dir: writeMemHandoff(k.handoff, k.report, dir), a: { status: 0, stdout: "", stderr: "" }, report: k.report };
}

/**
 * readHandoffDir - the handoff directory @dir as a MemHandoff, memory.img
 * opened read-only as kernel-b opens it (ImageMem, the boot DTB's RAM and
 * banks). Close it with closeHandoff.
 */
export function readHandoffDir(dir: string): MemHandoff {
  const bootDtb = new Uint8Array(fs.readFileSync(path.join(dir, HANDOFF_BOOT_DTB)));
  const khoDtb = new Uint8Array(fs.readFileSync(path.join(dir, HANDOFF_KHO_DTB)));
  const boot = parseSuccessorBootDtb(bootDtb, path.join(dir, HANDOFF_BOOT_DTB));
  return new MemHandoff(bootDtb, khoDtb, ImageMem.open(path.join(dir, HANDOFF_MEMORY_IMG), boot.ram.base, boot.ram.size, boot.banks));
}

/** closeHandoff - close the image readHandoffDir opened. */
export function closeHandoff(h: MemHandoff): void {
  if (h.memory instanceof ImageMem) h.memory.close();
}

/**
 * recordingLogger - a logger that keeps each call's message (and any object
 * before it, as JSON) in @lines, for what kernel-b would print on stderr.
 */
export function recordingLogger(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const log: Logger = new Proxy({} as Logger, {
    get: (_t, key) => {
      if (typeof key === "symbol" || key === "then") return undefined;
      if (key === "child") return () => log;
      if (key === "level") return "info";
      if (key === "isLevelEnabled") return () => true;
      return (...args: unknown[]) => void lines.push(args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" "));
    },
  });
  return { log, lines };
}
