/*
 * reserve_mem= across generations: a successor with the same command line
 * revives each reservation by name (mm/memblock.c reserve_mem_kho_revive(),
 * v6.16 f99230780211) and, at its own finalize, preserves its whole table
 * again (reserve_mem_init() walks reserved_mem_table, revived rows included;
 * 6.19's version after "memblock: Unpreserve memory in case of error"), so
 * the bytes survive generation after generation. In process: kernel-a's and
 * kernel-b's own code (successorHandOff) on memory overlays, as chain.test.ts;
 * one kernel-a handoff shared by the tests (every successor boots it
 * copy-on-write). `npm run chain --cmdline` end to end, each generation its
 * own process, is in chain.test.ts (its one real chain run). What
 * successor.json says of the reservations is checked on the file too: written
 * as kernel-b writes it and read back through the contract's schema.
 */
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HANDOFF_BOOT_DTB, MAX_PAGE_ORDER, MemblockFdt } from "@khosim/shared/abi";
import type { PredecessorReport } from "@khosim/shared/abi/handoff-json";
import { DEFAULT_FORMAT, bootSuccessor, khoFormat, parseScenario, parseSuccessorBootDtb, predecessorReport, successorHandOff, type SuccessorBoot } from "@khosim/shared/kho";
import { createLogger, csum64, hex } from "@khosim/shared/lib";
import { OverlayMem, parseReserveMemCmdline } from "@khosim/shared/mm";
import { writtenSuccessorJson } from "@khosim/shared/test/successor-file";
import { MemHandoff } from "../src/faults/index.js";
import { handoffDigest, kernelAInProcess } from "./fault-helpers.js";
import { makeTmp, removeTmp } from "./handoff-helpers.js";

const quiet = createLogger("test", "json", "silent");
const CMDLINE = "console=ttyS0 reserve_mem=1M:4096:trace reserve_mem=2M:2M:oops";
const SCENARIO = { machine: { ram: "512M", cmdline: CMDLINE }, ops: [{ op: "folios", count: 4, order: 1 }] };

/* kernel-b --in H --cmdline @cmdline [--handoff-out NEXT --seed @seed], in process. */
function generation(h: MemHandoff, cmdline: string, seed: number, handOff: boolean): { sb: SuccessorBoot; mem: OverlayMem; next?: { handoff: MemHandoff; report: PredecessorReport } } {
  const boot = parseSuccessorBootDtb(h.bootDtb!, HANDOFF_BOOT_DTB);
  const mem = new OverlayMem(h.openImage(boot.ram.base));
  const sb = bootSuccessor(boot, mem, { maxOrder: MAX_PAGE_ORDER, log: quiet, reserveMem: parseReserveMemCmdline(cmdline) });
  if (!handOff || sb.report.outcome !== "revived") return { sb, mem };
  const file = "(no scenario)";
  const scenario = parseScenario({ ops: [], machine: { ram: boot.ram.size, ramBase: boot.ram.base, maxOrder: MAX_PAGE_ORDER, kernelSize: "4K", scratch: { lowmem: "4K", global: "4K" } } }, file);
  const { m, work, handoff } = successorHandOff({ ram: boot.ram, maxOrder: MAX_PAGE_ORDER, mem, sb, scenario, file, seed, format: khoFormat(sb.report.format ?? DEFAULT_FORMAT)! });
  return { sb, mem, next: { handoff: new MemHandoff(handoff.bootDtb, handoff.khoFdt, mem), report: predecessorReport("khosim kernel-b", scenario, file, seed, m, work, handoff) } };
}

/* successor.json as kernel-b writes it (its ranges streamed) into @name, read back through the contract's schema. */
let first: { handoff: MemHandoff; report: PredecessorReport };
let firstDigest: string;
let tmp: string | undefined;
const inTmp = (name: string): string => path.join(tmp!, name);
beforeAll(async () => {
  tmp = makeTmp("reserve-mem-chain");
  first = await kernelAInProcess(SCENARIO, 7);
  firstDigest = handoffDigest(first.handoff);
});
afterAll(() => removeTmp(tmp));

describe("reserve_mem= through a chain of generations", () => {
  it("5 generations with the same cmdline: every reservation revived at the same place with kernel-a's bytes", { timeout: 120_000 }, async () => {
    const rows = first.report.reserveMem!.entries;
    expect(rows.map((r) => r.name)).toEqual(["trace", "oops"]);
    let h = first.handoff;
    // Generations 2..5 hand off again (seed k + 1, as npm run chain does); a sixth kernel only boots generation 5.
    for (let k = 1; k <= 5; k++) {
      const g = generation(h, CMDLINE, k + 1, k < 5);
      const file = writtenSuccessorJson(g.sb, inTmp(`successor-${k}.json`));
      for (const [what, rep] of [["in memory", g.sb.report], ["successor.json", file]] as const) {
        expect(rep.outcome, `generation ${k}, ${what}: ${rep.reason}`).toBe("revived");
        expect(rep.reserveMem, `generation ${k}, ${what}`).toEqual(rows.map((r) => ({ name: r.name, outcome: "revived", start: r.start, size: r.size, preserved: true, reason: null })));
      }
      for (const r of rows) expect(hex(csum64(g.mem.read(Number(r.start), Number(r.size)))), `generation ${k}: ${r.name}`).toBe(r.csum);
      if (k < 5) {
        // The next handoff's memblock sub-tree lists the same rows; report.json the same checksums.
        expect(g.next!.report.reserveMem!.entries).toEqual(rows);
        expect(g.next!.report.reserveMem!.fdt).not.toBe(first.report.reserveMem!.fdt);
        h = g.next!.handoff;
      }
    }
  });

  it("a changed cmdline: the fresh row is preserved with the successor's bytes, the unnamed one is not preserved again", async () => {
    const [trace, oops] = first.report.reserveMem!.entries;
    // trace asked with another size: a fresh allocation; oops not asked for: stays reserved, unnamed.
    const g = generation(first.handoff, "reserve_mem=2M:4096:trace", 9, true);
    expect(g.sb.report.reserveMem!.map((r) => [r.name, r.outcome])).toEqual([["trace", "fresh: wrong size"], ["oops", "unnamed"]]);
    const fresh = g.sb.report.reserveMem![0]!;
    // successor.json says the same of both rows: trace's fresh range, oops still preserved but unnamed.
    expect(writtenSuccessorJson(g.sb, inTmp("successor-changed.json")).reserveMem).toEqual(g.sb.report.reserveMem);
    const next = g.next!.report.reserveMem!;
    expect(next.entries.map((e) => [e.name, e.start, e.size])).toEqual([["trace", fresh.start, "0x200000"]]);
    expect(next.entries[0]!.start).not.toBe(trace!.start);
    expect(next.entries[0]!.csum).toBe(hex(csum64(g.mem.read(Number(fresh.start), 0x20_0000))));
    // The memblock FDT in the next generation's memory: one child, trace, at the fresh range.
    const fdt = new MemblockFdt(g.mem.read(Number(next.fdt), 4096));
    expect(fdt.names()).toEqual(["trace"]);
    // The old oops range is not preserved by generation 2: a third kernel asking for it does not find it.
    const g3 = generation(g.next!.handoff, "reserve_mem=2M:2M:oops", 10, false);
    expect(g3.sb.report.reserveMem![0]).toMatchObject({ name: "oops", outcome: "fresh: not in handoff" });
    expect(writtenSuccessorJson(g3.sb, inTmp("successor-g3.json")).reserveMem![0]).toMatchObject({ name: "oops", outcome: "fresh: not in handoff" });
    expect(oops).toBeDefined();
  });

  it("a successor without reserve_mem= hands off no memblock sub-tree", async () => {
    const g = generation(first.handoff, "quiet", 2, true);
    expect(g.sb.report.reserveMem!.every((r) => r.outcome === "unnamed")).toBe(true);
    expect(writtenSuccessorJson(g.sb, inTmp("successor-quiet.json")).reserveMem!.map((r) => [r.name, r.outcome, r.preserved])).toEqual([["trace", "unnamed", true], ["oops", "unnamed", true]]);
    expect(g.next!.report.reserveMem).toBeUndefined();
  });

  it("the successors left the shared first handoff as kernel-a wrote it", () => {
    expect(handoffDigest(first.handoff)).toBe(firstDigest);
  });
});
