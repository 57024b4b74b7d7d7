/*
 * vmalloc, kho_preserve_pages() and kho_alloc_preserve() through the whole
 * handoff, in process: kernel-a's workload and finalize, kernel-b's boot
 * (restore and verify each record), the chain (each generation preserves the
 * restored areas again), and damaged records getting the kernel's outcome.
 * What successor.json says is checked on the file too: written as kernel-b
 * writes it (its ranges streamed) and read back through the contract's schema.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as path from "node:path";
import { HANDOFF_BOOT_DTB, MAX_PAGE_ORDER } from "@khosim/shared/abi";
import { bootSuccessor, parseSuccessorBootDtb } from "@khosim/shared/kho";
import { OverlayMem } from "@khosim/shared/mm";
import { writtenSuccessorJson } from "@khosim/shared/test/successor-file";
import { ROOT } from "../src/run.js";
import { kernelAInProcess, successorHandOffInProcess } from "./fault-helpers.js";
import { makeTmp, removeTmp } from "./handoff-helpers.js";

let tmp: string | undefined;
const inTmp = (name: string): string => path.join(tmp!, name);
beforeAll(() => {
  tmp = makeTmp("vmalloc-json");
});
afterAll(() => removeTmp(tmp));

/* successor.json as kernel-b writes it (its ranges streamed) into @name, read back through the contract's schema. */
export const VMALLOC_SCENARIO = {
  description: "vmalloc areas (small, 511 and 512 blocks, huge order 9), kho_preserve_pages and kho_alloc_preserve",
  machine: { ram: "512M" },
  ops: [
    { op: "folios", count: 4, order: 2 },
    { op: "vmalloc", pages: 5 },
    { op: "vmalloc", pages: 511 },
    { op: "vmalloc", pages: 512 },
    { op: "vmalloc", pages: 1024, order: 9 },
    { op: "preserve-pages", pages: 37 },
    { op: "alloc-preserve", size: 5000 },
    { op: "vmalloc", pages: 3, flags: 6, expect: "EOPNOTSUPP" },
    { op: "alloc-preserve", size: 0, expect: "EINVAL" },
    { op: "alloc-preserve", size: "8M", expect: "E2BIG" },
  ],
};

describe("vmalloc and the page API across a handoff", () => {
  it("kernel-b restores every area, range and folio and verifies their bytes", async () => {
    const { handoff } = await kernelAInProcess(VMALLOC_SCENARIO);
    // kernel-b's boot: its memory.img copy-on-write, ranges streamed into successor.json.
    const boot = parseSuccessorBootDtb(handoff.bootDtb!, HANDOFF_BOOT_DTB);
    const mem = new OverlayMem(handoff.openImage(boot.ram.base, boot.banks));
    const sb = bootSuccessor(boot, mem, { maxOrder: MAX_PAGE_ORDER, streamRanges: true });
    expect(mem.touchedPages, "the successor's boot writes nothing").toBe(0);
    const file = writtenSuccessorJson(sb, inTmp("successor.json"));
    expect(file.ranges).toHaveLength(sb.rangeStream.length);
    expect(file.ranges.length).toBeGreaterThan(0);
    for (const [what, rep] of [["in memory", sb.report], ["successor.json", file]] as const) {
      expect(rep.outcome, `${what}: ${rep.reason}`).toBe("revived");
      expect(rep.vmalloc!.map((v) => [v.totalPages, v.order, v.flags, v.pages, v.outcome]), what).toEqual([
        [5, 0, "0x1", 5, "verified"],
        [511, 0, "0x1", 511, "verified"],
        [512, 0, "0x1", 512, "verified"],
        [1024, 9, "0x3", 1024, "verified"],
      ]);
      expect(rep.pages!.map((p) => [p.nrPages, p.outcome]), what).toEqual([[37, "verified"]]);
      // 4 folios + the alloc-preserve folio (order 1 for 5000 bytes).
      expect(rep.restored.folios, what).toBe(5);
      expect(rep.verified.folios, what).toBe(5);
    }
  });

  it("the chain carries every area, range and folio generation to generation (chunks allocated afresh by each generation, the area pages and checksums unchanged)", async () => {
    const first = await kernelAInProcess(path.join(ROOT, "scenarios/vmalloc.json"));
    const firstRep = first.report;
    let h = first.handoff;
    let prevFirsts: string[] | undefined;
    for (let gen = 2; gen <= 5; gen++) {
      const g = successorHandOffInProcess(h, gen);
      const file = writtenSuccessorJson(g.boot, inTmp(`successor-${gen}.json`));
      for (const [what, s] of [["in memory", g.boot.report], ["successor.json", file]] as const) {
        expect(s.outcome, `generation ${gen}, ${what}: ${s.reason}`).toBe("revived");
        expect(s.vmalloc!.map((v) => [v.totalPages, v.order, v.outcome]), what).toEqual(firstRep.vmalloc!.map((v) => [v.totalPages, v.order, "verified"]));
        expect(s.pages!.map((p) => [p.phys, p.outcome]), what).toEqual(firstRep.pages!.map((p) => [p.phys, "verified"]));
        expect(s.restored.folios, what).toBe(firstRep.stats.folios);
      }
      // What generation gen hands on: the same areas and checksums, described by freshly allocated chunks.
      const next = g.next!.report;
      expect(next.vmalloc!.map((v) => [v.totalPages, v.flags, v.order, v.csum])).toEqual(firstRep.vmalloc!.map((v) => [v.totalPages, v.flags, v.order, v.csum]));
      expect(next.pages).toEqual(firstRep.pages);
      const firsts = next.vmalloc!.map((v) => v.first);
      if (prevFirsts) expect(firsts).toEqual(prevFirsts);
      prevFirsts = firsts;
      h = g.next!.handoff;
    }
  });
});
