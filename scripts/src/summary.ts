/* A short, readable summary of one handoff (kernel-a's report + kernel-b's). */
import * as path from "node:path";

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
