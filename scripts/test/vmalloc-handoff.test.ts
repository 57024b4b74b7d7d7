/*
 * vmalloc, kho_preserve_pages() and kho_alloc_preserve() through the whole
 * handoff, in process: kernel-a's workload and finalize, kernel-b's boot
 * (restore and verify each record), the chain (each generation preserves the
 * restored areas again), and damaged records getting the kernel's outcome.
 */
import { describe, expect, it } from "vitest";
import { bootMemHandoff, kernelAInProcess } from "./fault-helpers.js";

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
    const b = bootMemHandoff(handoff, []);
    expect(b.outcome, b.reason).toBe("revived");
    const rep = b.report!;
    expect(rep.vmalloc!.map((v) => [v.totalPages, v.order, v.flags, v.pages, v.outcome])).toEqual([
      [5, 0, "0x1", 5, "verified"],
      [511, 0, "0x1", 511, "verified"],
      [512, 0, "0x1", 512, "verified"],
      [1024, 9, "0x3", 1024, "verified"],
    ]);
    expect(rep.pages!.map((p) => [p.nrPages, p.outcome])).toEqual([[37, "verified"]]);
    // 4 folios + the alloc-preserve folio (order 1 for 5000 bytes).
    expect(rep.restored.folios).toBe(5);
    expect(rep.verified.folios).toBe(5);
  });
});
