/*
 * Section 7 of the facts file, for reserve_mem: "[PATCH v9 4/9] memblock:
 * Unpreserve memory in case of error" (6.19) rolls everything back when the
 * memblock sub-FDT cannot be made, so a failed preservation leaves nothing
 * preserved and no sub-tree. khosim's reserveMemPreserve() must fail the same
 * way: one FinalizeError, the tracker and the reservations' bytes untouched.
 */
import { describe, expect, it } from "vitest";
import { coldBootMachine } from "../src/kho/out/predecessor.js";
import { FinalizeError } from "../src/kho/out/finalize.js";
import { reserveMemPreserve } from "../src/kho/out/reserve-mem.js";
import { parseScenario } from "../src/kho/out/scenario.js";
import { rangesFormat } from "../src/kho/formats/index.js";
import { csum64, initCsum } from "../src/lib/csum.js";
import { quiet } from "./kernels-helpers.js";

describe("reserve_mem preservation that cannot get its FDT page", () => {
  it("throws one FinalizeError and leaves nothing preserved, no byte filled", async () => {
    await initCsum();
    const s = parseScenario({ machine: { ram: "256M", cmdline: "reserve_mem=1M:4096:trace" } }, "(test)");
    const m = coldBootMachine(s, quiet);
    const [e] = m.reserveMem!;
    const before = csum64(m.mem.read(e!.start, e!.size));
    // Exhaust the page allocator: prepare_kho_fdt()'s alloc_page() fails.
    const taken: number[] = [];
    for (let p = m.buddy.allocFolio(0); p !== undefined; p = m.buddy.allocFolio(0)) taken.push(p);
    const track = rangesFormat.createTracker();
    expect(() => reserveMemPreserve(m, track, 1)).toThrow(new FinalizeError("out of memory allocating the memblock FDT"));
    expect(track.totalBytes).toBe(0);
    expect([...track.ranges()]).toEqual([]);
    expect(csum64(m.mem.read(e!.start, e!.size))).toBe(before);
    // With one page free again the same call preserves the range and the FDT page.
    m.buddy.freeFolio(taken[0]!, 0);
    const h = reserveMemPreserve(m, track, 1)!;
    expect(h.fdtPhys).toBe(taken[0]);
    expect(track.totalBytes).toBe(e!.size + 4096);
  });
});
