/*
 * The memblock faults of the catalogue (faults/memblock.ts: Fault.needs
 * "reserve-mem"), in process: each applied to a kernel-a handoff with two
 * reserve_mem= rows and booted as kernel-b --cmdline boots it. None stops the
 * boot (reserve_mem_kho_revive() in mm/memblock.c, v6.16 f99230780211, warns
 * and allocates afresh): the outcome is revived, exit 0, and successor.json's
 * reserveMem gives the damaged name the fault's row outcome with the kernel's
 * warning, while the other name is still revived where the fault leaves it.
 */
import fc from "fast-check";
import { beforeAll, describe, expect, test } from "vitest";
import { HANDOFF_BOOT_DTB, MAX_PAGE_ORDER } from "@khosim/shared/abi";
import { bootSuccessor, khoRetrieveSubtree, parseKhoFdt, KHO_FORMATS, parseSuccessorBootDtb } from "@khosim/shared/kho";
import { OverlayMem, parseReserveMemCmdline } from "@khosim/shared/mm";
import { FAULTS, applyFault, listFaults, type MemHandoff } from "../src/faults/index.js";
import { handoffDigest, kernelAInProcess } from "./fault-helpers.js";
import { FUZZ_FORMATS, applyMutations, makeFuzzHandoff, runCase, targetsOf } from "../src/fuzz-core.js";

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

describe("memblock sub-FDT fuzzed through the whole boot", () => {
  const OUTCOMES = new Set(["revived", "fresh: wrong size", "fresh: wrong alignment", "fresh: not in handoff", "unnamed"]);
  const ARGS = ["--cmdline", "reserve_mem=1M:4096:trace reserve_mem=2M:2M:oops"];

  test("random bytes over the memblock FDT page: the boot revives, each name revived only as its (damaged) row says, else fresh in scratch", () => {
    const b = parseSuccessorBootDtb(good.bootDtb!, HANDOFF_BOOT_DTB);
    const image = good.openImage(b.ram.base);
    const kho = parseKhoFdt(image.read(Number(b.khoFdt!.addr), Number(b.khoFdt!.size)), KHO_FORMATS);
    const page = Number(khoRetrieveSubtree(kho, "memblock")!);
    const total = new DataView(image.read(page + 4, 4).buffer).getUint32(0, false);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(total + 63), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), (edits) => {
        const mem = new OverlayMem(image);
        for (const [off, v] of edits) mem.write(page + off, new Uint8Array([v]));
        const rep = bootSuccessor(b, mem, { maxOrder: MAX_PAGE_ORDER, reserveMem: parseReserveMemCmdline(ARGS[1]!) }).report;
        expect(rep.outcome).toBe("revived");
        const scratch = rep.scratch.map((x) => [Number(x.addr), Number(x.addr) + Number(x.size)] as const);
        const asked = new Map([["trace", { size: 0x10_0000, align: 4096 }], ["oops", { size: 0x20_0000, align: 0x20_0000 }]]);
        for (const r of rep.reserveMem!) {
          expect(OUTCOMES.has(r.outcome), r.outcome).toBe(true);
          const want = asked.get(r.name);
          if (r.outcome === "unnamed") {
            expect(want).toBeUndefined();
            continue;
          }
          expect(want, r.name).toBeDefined();
          expect(Number(r.size)).toBe(want!.size);
          if (r.outcome === "revived") {
            expect(Number(r.start) % want!.align).toBe(0);
          } else {
            expect(r.reason).toBeTruthy();
            expect(scratch.some(([s, e]) => Number(r.start) >= s && Number(r.start) + want!.size <= e), `${r.name} fresh in scratch`).toBe(true);
          }
        }
        expect(rep.reserveMem!.filter((r) => asked.has(r.name)).map((r) => r.name)).toEqual(["trace", "oops"]);
      }),
      { numRuns: 200, seed: 20261130 },
    );
    expect(handoffDigest(good)).toBe(digest);
  });
});

describe("npm run fuzz damages the memblock sub-FDT too", () => {
  test("every format's fuzz handoff carries one; a memblock mutation writes inside it and the case still boots", async () => {
    for (const f of FUZZ_FORMATS) expect(targetsOf(f)).toContain("memblock");
    const h = await makeFuzzHandoff(1, "ranges");
    expect(h.reserveMem.map((p) => p.name)).toEqual(["fuzz"]);
    const mut = { target: "memblock" as const, pick: 0, pick2: 0, value: { u64: 0n } };
    const { mem } = applyMutations(h, [mut]);
    expect(Buffer.from(mem.read(h.memblockPhys, h.memblockSize)).equals(Buffer.from(h.mem.read(h.memblockPhys, h.memblockSize)))).toBe(false);
    expect(runCase(h, [mut]).outcome).toBe("revived");
  });
});
