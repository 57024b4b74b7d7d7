/*
 * The memblock faults of the catalogue (faults/memblock.ts: Fault.needs
 * "reserve-mem"), in process: each applied to a kernel-a handoff with two
 * reserve_mem= rows and booted as kernel-b --cmdline boots it. None stops the
 * boot (reserve_mem_kho_revive() in mm/memblock.c, v6.16 f99230780211, warns
 * and allocates afresh): the outcome is revived, exit 0, and successor.json's
 * reserveMem gives the damaged name the fault's row outcome with the kernel's
 * warning, while the other name is still revived where the fault leaves it.
 */
import { beforeAll, describe, expect, test } from "vitest";
import { HANDOFF_BOOT_DTB, MAX_PAGE_ORDER } from "@khosim/shared/abi";
import { bootSuccessor, parseSuccessorBootDtb } from "@khosim/shared/kho";
import { OverlayMem, parseReserveMemCmdline } from "@khosim/shared/mm";
import { FAULTS, applyFault, listFaults, type MemHandoff } from "../src/faults/index.js";
import { handoffDigest, kernelAInProcess } from "./fault-helpers.js";

const MEMBLOCK = FAULTS.filter((f) => f.needs === "reserve-mem");
const SCENARIO = { machine: { ram: "256M", cmdline: "reserve_mem=1M:4096:trace reserve_mem=2M:2M:oops" }, ops: [{ op: "folios", count: 4, order: 1 }] };

let good: MemHandoff;
let digest = "";
beforeAll(async () => {
  good = (await kernelAInProcess(SCENARIO, 3, "ranges", "(memblock faults)")).handoff;
  digest = handoffDigest(good);
});

function boot(h: MemHandoff, args: readonly string[]) {
  expect(args[0]).toBe("--cmdline");
  const b = parseSuccessorBootDtb(h.bootDtb!, HANDOFF_BOOT_DTB);
  return bootSuccessor(b, new OverlayMem(h.openImage(b.ram.base)), { maxOrder: MAX_PAGE_ORDER, reserveMem: parseReserveMemCmdline(args[1]!) }).report;
}

describe("memblock faults: the damaged name is allocated afresh, the boot goes on", () => {
  test("the catalogue has them, listed with group memblock", () => {
    expect(MEMBLOCK.map((f) => f.kind)).toEqual(["memblock-compatible", "memblock-row-compatible", "memblock-start-length", "memblock-size-length", "memblock-start-misaligned", "memblock-size-value"]);
    for (const f of MEMBLOCK) expect(listFaults()).toMatch(new RegExp(`memblock\\s+${f.kind}\\s`));
  });

  test("the undamaged handoff with the faults' --cmdline revives every row", () => {
    const applied = applyFault(good.clone(), MEMBLOCK[1]!, 1);
    expect(boot(good, applied.kernelBArgs).reserveMem!.map((r) => r.outcome)).toEqual(["revived", "revived"]);
    expect(handoffDigest(good)).toBe(digest);
  });

  for (const fault of MEMBLOCK) {
    test(`${fault.kind} -> revived (exit 0), reserveMem ${fault.expect.reserveMem}`, () => {
      for (const seed of [1, 2]) {
        const damaged = good.clone();
        const applied = applyFault(damaged, fault, seed);
        expect(applied.details.length).toBeGreaterThan(0);
        const rep = boot(damaged, applied.kernelBArgs);
        expect(rep.outcome, rep.reason ?? "").toBe("revived");
        expect(rep.exitCode).toBe(0);
        const rows = new Map(rep.reserveMem!.map((r) => [r.name, r]));
        const hit = rows.get(applied.reserveMemName!)!;
        expect(hit.outcome).toBe(fault.expect.reserveMem);
        for (const s of applied.reasonIncludes) expect(hit.reason).toContain(s);
        // A root fault loses every row; a row fault only its own.
        for (const [name, r] of rows) if (name !== applied.reserveMemName) expect(r.outcome).toBe(fault.kind === "memblock-compatible" ? fault.expect.reserveMem : "revived");
        expect(handoffDigest(good), "the undamaged handoff is unchanged").toBe(digest);
      }
    });
  }

  test("a handoff without reserve_mem= is refused with one line naming what to use", async () => {
    const plain = (await kernelAInProcess({ machine: { ram: "256M" }, ops: [{ op: "folios", count: 4, order: 1 }] }, 3, "ranges", "(plain)")).handoff;
    for (const f of MEMBLOCK) {
      expect(() => applyFault(plain.clone(), f, 1)).toThrow(`${f.kind}: needs a 'memblock' sub-tree; the input has none (use a scenario with reserve_mem= in machine.cmdline)`);
    }
  });
});
