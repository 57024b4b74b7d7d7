/*
 * In-process handoffs for the fault tests: made by kernel-a's own code
 * (cold boot, workload, finalize) without writing files, damaged by the fault
 * catalogue copy-on-write, and booted by the successor's boot function as
 * kernel-b would boot the same bytes from files.
 */
import { createHash } from "node:crypto";
import { HANDOFF_BOOT_DTB, MAX_PAGE_ORDER, OUTCOME_EXIT, ramTotal, type Outcome } from "@khosim/shared/abi";
import { type PredecessorReport } from "@khosim/shared/abi/handoff-json";
import { DEFAULT_FORMAT, UnusableInputError, bootSuccessor, coldBootMachine, khoFormat, loadScenario, parseScenario, parseSuccessorBootDtb, predecessorReport, runAndFinalize, successorHandOff, type SuccessorBoot, type SuccessorReport } from "@khosim/shared/kho";
import { createLogger, initCsum } from "@khosim/shared/lib";
import { OverlayMem, PhysMemError, type PageSource, type PhysMem } from "@khosim/shared/mm";
import { MemHandoff } from "../src/faults/index.js";

const quiet = createLogger("test", "json", "silent");

/**
 * kernelAInProcess - what `kernel-a --scenario FILE [--seed @seed]` writes,
 * held in memory: @scenario is FILE, or its JSON content (named @name).
 */
export async function kernelAInProcess(scenario: string | object, seed?: number, format = DEFAULT_FORMAT, name = "(test scenario)"): Promise<{ handoff: MemHandoff; report: PredecessorReport }> {
  await initCsum();
  const file = typeof scenario === "string" ? scenario : name;
  const s = typeof scenario === "string" ? loadScenario(scenario) : parseScenario(scenario, name);
  const m = coldBootMachine(s, quiet);
  const sd = seed ?? s.seed ?? 1;
  const { work, handoff } = runAndFinalize(m, s, sd, file, quiet, khoFormat(format)!);
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

/** kernel-b's options as far as the successor's boot uses them (--max-order). */
export function maxOrderOf(args: readonly string[]): number {
  if (args.length === 0) return MAX_PAGE_ORDER;
  if (args.length === 2 && args[0] === "--max-order" && /^\d+$/.test(args[1]!)) return Number(args[1]);
  throw new Error(`kernel-b options ${args.join(" ")}: only --max-order N is modelled in process`);
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
 * files: the boot DTB (an unusable one is unusable-input naming boot.dtb),
 * then bootSuccessor on memory.img's bytes, read-only. An image whose length
 * is not the RAM size is a file-level case (kernel-b's ImageMem refuses it):
 * those are tested by spawning kernel-b, so it throws here.
 */
export function bootMemHandoff(h: MemHandoff, kernelBArgs: readonly string[]): InProcessBoot {
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
    const rep = bootSuccessor(boot, mem, { maxOrder: maxOrderOf(kernelBArgs) }).report;
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
  const mem = new OverlayMem(h.openImage(boot.ram.base));
  const sb = bootSuccessor(boot, mem, { maxOrder: MAX_PAGE_ORDER, log: quiet });
  if (sb.report.outcome !== "revived") return { boot: sb };
  const file = "(no scenario)";
  const scenario = parseScenario({ ops: [], machine: { ram: boot.ram.size, ramBase: boot.ram.base, maxOrder: MAX_PAGE_ORDER, kernelSize: "4K", scratch: { lowmem: "4K", global: "4K" } } }, file);
  const fmt = khoFormat(format ?? sb.report.format ?? DEFAULT_FORMAT)!;
  const { m, work, handoff } = successorHandOff({ ram: boot.ram, maxOrder: MAX_PAGE_ORDER, mem, sb, scenario, file, seed, format: fmt });
  const report = predecessorReport("khosim kernel-b", scenario, file, seed, m, work, handoff);
  return { boot: sb, next: { handoff: new MemHandoff(handoff.bootDtb, handoff.khoFdt, mem), report } };
}
