/*
 * One handoff, kernel-a then kernel-b, each its own process, and a short,
 * readable summary of it (kernel-a's report + kernel-b's): the library of
 * npm run handoff and npm run demo.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { HANDOFF_REPORT, SUCCESSOR_REPORT } from "@khosim/shared/abi";
import { KERNEL_A, KERNEL_B, preloadKernel, readJson, runKernel } from "./run.js";

/**
 * runHandoff - kernel-a with @aArgs (which must include --out @out), then
 * kernel-b with --in @out and @bArgs; prints the summary. Returns kernel-a's
 * exit code when it fails, else kernel-b's. kernel-b's process is started
 * first and held before its command runs (preloadKernel, as kexec -l), so
 * its node start-up overlaps kernel-a; it reads nothing until kernel-a exited.
 */
export async function runHandoff(out: string, aArgs: string[], bArgs: string[] = []): Promise<number> {
  const kb = preloadKernel(KERNEL_B, ["--in", out, ...bArgs]);
  const a = runKernel(KERNEL_A, aArgs, "inherit");
  if (a.status !== 0) {
    await kb.abort();
    process.stderr.write(`handoff: kernel-a exited ${a.status}\n`);
    return a.status;
  }
  const b = await kb.exec();
  process.stdout.write(b.stdout);
  const succ = path.join(out, SUCCESSOR_REPORT);
  process.stdout.write(handoffSummary(out, readJson(path.join(out, HANDOFF_REPORT)), fs.existsSync(succ) ? readJson(succ) : undefined, b.status));
  return b.status;
}

export function handoffSummary(dir: string, a: any, b: any | undefined, bExit: number): string {
  const L: string[] = [];
  const rel = path.relative(process.cwd(), dir) || ".";
  L.push(`khosim handoff in ${rel}/`);
  L.push(
    `  kernel-a  preserved ${a.stats.folios} folios and ${a.stats.physRanges} phys ranges (${a.stats.preserved}, ${a.stats.preserveCalls} preserve calls)`,
  );
  L.push(`            tracker: ${a.stats.ranges} ranges -> ${a.stats.chunks} chunk(s), ${a.stats.metadataBytes} bytes of metadata; metadata = ${a.metadata}`);
  L.push(`            KHO FDT at ${a.khoFdt.addr} (${Number(a.khoFdt.size)} bytes), ${a.scratch.length} scratch areas`);
  if (b) {
    L.push(`  kernel-b  outcome: ${b.outcome} (exit ${bExit})${b.reason ? ": " + b.reason : ""}`);
    L.push(`            walked ${b.chunks.length} chunk(s), reserved ${b.ranges.length} ranges; restored ${b.restored.folios} folios and ${b.restored.ranges} ranges`);
    L.push(
      `            verified ${b.verified.folios} folios + ${b.verified.ranges} ranges (${b.verified.bytes} bytes)` +
        (b.verified.unchecked ? `, ${b.verified.unchecked} unfilled not checked` : "") +
        `; ${b.failureCount} failure(s)`,
    );
    L.push(`            memblock: reserved ${b.memblock.reserved} in ${b.memblock.reservedRegions} regions, free ${b.memblock.free}`);
  } else {
    L.push(`  kernel-b  did not produce a report (exit ${bExit})`);
  }
  L.push(`  files     ${rel}/{memory.img,boot.dtb,kho.dtb,report.json,successor.json}`);
  L.push(`  inspect   dtc -I dtb -O dts ${rel}/kho.dtb`);
  L.push(`            fdtget -t x ${rel}/kho.dtb /preserved-memory metadata`);
  return L.join("\n") + "\n";
}
