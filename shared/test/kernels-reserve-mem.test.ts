/*
 * reserve_mem= in the version successors (kernel-b --kernel NAME --cmdline):
 * v6.16 and later revive by name (mm/memblock.c reserve_mem_kho_revive(),
 * f99230780211), v6.16/v6.18 restoring the sub-FDT page with their own
 * kho_restore_folio(), v6.19 and kho-v2 reading it as is; the posting
 * predates it and always allocates fresh. In process, on each version's own
 * predecessor output.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseBootDtb } from "../src/abi/boot-dtb.js";
import { bootSuccessor } from "../src/kho/in/successor.js";
import { KHO_KERNELS, type KhoKernelName } from "../src/kho/kernels/versions.js";
import { coldBootMachine, runAndFinalize } from "../src/kho/out/predecessor.js";
import { parseScenario } from "../src/kho/out/scenario.js";
import { csum64, initCsum } from "../src/lib/csum.js";
import { hex } from "../src/lib/bytes.js";
import { parseReserveMemCmdline } from "../src/mm/reserve-mem.js";
import { quiet } from "./kernels-helpers.js";
import { writtenSuccessorJson } from "./successor-file.js";

const CMDLINE = "reserve_mem=1M:4096:trace reserve_mem=2M:2M:oops";

/* `kernel-a --kernel @name` with CMDLINE's reservations, in memory. */
async function predecessor(name: KhoKernelName) {
  await initCsum();
  const s = parseScenario({ machine: { ram: "512M", cmdline: CMDLINE }, ops: [{ op: "folios", count: 4, order: 1 }] }, "(test)");
  const m = coldBootMachine(s, quiet);
  const { handoff } = runAndFinalize(m, s, 5, "(test)", quiet, KHO_KERNELS[name].predecessor.format);
  return { m, h: handoff, boot: parseBootDtb(handoff.bootDtb) };
}

describe("version successors run reserve_mem= as their version does", () => {
  it.each(["v6.16", "v6.18", "v6.19", "kho-v2"] as const)("%s revives each name at kernel-a's range, wholly in memory it reserved", async (name) => {
    const p = await predecessor(name);
    const sb = bootSuccessor(p.boot, p.m.mem, { maxOrder: 10, kernel: name, log: quiet, reserveMem: parseReserveMemCmdline(CMDLINE) });
    expect(sb.report.kernel!.verdict).toBe("intact");
    const want = p.h.reserveMem!.entries.map((e) => ({ name: e.name, outcome: "revived", start: hex(e.start), size: hex(e.size), preserved: true, reason: null }));
    expect(sb.report.reserveMem).toEqual(want);
    // And in successor.json as kernel-b --kernel writes it (the version's own report, through the contract's schema).
    const dir = mkdtempSync(join(tmpdir(), "khosim-kresmem-"));
    try {
      const file = writtenSuccessorJson(sb, join(dir, "successor.json"));
      expect([file.kernel?.name, file.reserveMem]).toEqual([name, want]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    for (const e of p.h.reserveMem!.entries) expect(csum64(p.m.mem.read(e.start, e.size))).toBe(e.csum);
    // The revived ranges are not handed to the allocator: the version's memblock keeps them reserved.
    const free = sb.memblock.freeRanges();
    for (const e of p.h.reserveMem!.entries) expect(free.some((f) => f.base < e.start + e.size && e.start < f.base + f.size)).toBe(false);
  });

  it("the posting has no revival: a fresh allocation in scratch for each name, kernel-a's ranges unnamed", async () => {
    const p = await predecessor("posting");
    const sb = bootSuccessor(p.boot, p.m.mem, { maxOrder: 10, kernel: "posting", log: quiet, reserveMem: parseReserveMemCmdline(CMDLINE) });
    const rows = sb.report.reserveMem!;
    expect(rows.map((r) => [r.name, r.outcome])).toEqual([["trace", "fresh: not in handoff"], ["oops", "fresh: not in handoff"]]);
    expect(rows[0]!.reason).toMatch(/^posting has no KHO support for reserve_mem/);
    const scratch = sb.report.scratch.map((s) => [Number(s.addr), Number(s.addr) + Number(s.size)] as const);
    for (const r of rows) {
      expect(r.start).not.toBe(hex(p.h.reserveMem!.entries.find((e) => e.name === r.name)!.start));
      expect(scratch.some(([s, e]) => Number(r.start) >= s && Number(r.start) + Number(r.size) <= e)).toBe(true);
    }
  });

  it("v6.18 restores the sub-FDT page with kho_restore_folio(): a page without KHO_PAGE_MAGIC is refused; v6.19 reads it as is", async () => {
    const p = await predecessor("v6.18");
    // Point the memblock node at a copy of its FDT in a page nobody preserved: a restore-folio version finds no magic there.
    const page = p.m.buddy.allocFolio(0)!;
    p.m.mem.write(page, p.m.mem.read(p.h.reserveMem!.fdtPhys, 4096));
    const kho = p.m.mem.read(p.h.khoFdtPhys, p.h.khoFdt.length);
    const at = Buffer.from(kho).indexOf(Buffer.from(new BigUint64Array([BigInt(p.h.reserveMem!.fdtPhys)]).buffer));
    expect(at).toBeGreaterThan(0);
    const moved = new Uint8Array(kho);
    moved.set(new Uint8Array(new BigUint64Array([BigInt(page)]).buffer), at);
    p.m.mem.write(p.h.khoFdtPhys, moved);
    const boot = (name: KhoKernelName) => bootSuccessor(p.boot, p.m.mem, { maxOrder: 10, kernel: name, log: quiet, reserveMem: parseReserveMemCmdline(CMDLINE) }).report.reserveMem!;
    const r618 = boot("v6.18");
    // No sub-FDT at all: both names allocated afresh, none listed as unnamed.
    expect(r618.map((r) => r.outcome)).toEqual(["fresh: not in handoff", "fresh: not in handoff"]);
    expect(r618[0]!.reason).toMatch(/^failed to restore memblock KHO FDT \(0x[0-9a-f]+\): kho_restore_folio: WARN: page->private of pfn .* lacks KHO_PAGE_MAGIC/);
    expect(boot("v6.19").map((r) => r.outcome)).toEqual(["revived", "revived"]);
  });
});
