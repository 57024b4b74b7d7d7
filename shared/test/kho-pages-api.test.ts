/*
 * The page-level KHO API (kernel/liveupdate/kexec_handover.c @dd03dd60e8:
 * kho_preserve_pages, kho_unpreserve_pages, kho_alloc_preserve,
 * kho_unpreserve_free; 6.18 @a4a508df2a for -EBUSY after finalize) and the
 * scenario ops over it: the block split computed by hand, the errno table,
 * the 32-bit overlap length, rollback, partial unpreserve refused, and
 * "expect".
 */
import { beforeAll, describe, expect, it } from "vitest";
import { PAGE_SIZE } from "../src/abi/page.js";
import { KHO_DATA_FOLIO } from "../src/abi/ranges.js";
import { rangesFormat, bitmapsPageFormat } from "../src/kho/formats/index.js";
import { KhoErrnoError, khoAllocPreserve, khoPreservePages, khoUnpreserveFree, khoUnpreservePages } from "../src/kho/out/pages.js";
import { defaultScenario, parseScenario, ScenarioError } from "../src/kho/out/scenario.js";
import { runWorkload } from "../src/kho/out/workload.js";
import { coldBoot, type Machine } from "../src/mm/machine.js";
import { KhoRestore, KhoRestoreError, khoRangeTableOf } from "../src/kho/in/restore.js";
import { khoRestoreFree } from "../src/kho/in/vmalloc.js";
import { initCsum } from "../src/lib/csum.js";

beforeAll(async () => {
  await initCsum();
});

const machine = (): Machine => coldBoot(defaultScenario().machine);

function errnoOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof KhoErrnoError) return e.errno;
    throw e;
  }
  return "succeeded";
}

describe("kho_preserve_pages / kho_unpreserve_pages", () => {
  it("splits pfn 0x50003 + 13 into blocks of order 0, 2, 3 (min(ctz(pfn), ilog2(left)))", () => {
    const m = machine();
    const t = rangesFormat.createTracker();
    khoPreservePages(m, t, 0x5000_3000, 13);
    expect([...t.ranges()]).toEqual([
      { start: 0x5000_3000, size: PAGE_SIZE, data: KHO_DATA_FOLIO | 0 },
      { start: 0x5000_4000, size: 4 * PAGE_SIZE, data: KHO_DATA_FOLIO | 2 },
      { start: 0x5000_8000, size: 8 * PAGE_SIZE, data: KHO_DATA_FOLIO | 3 },
    ]);
    khoUnpreservePages(t, 0x5000_3000, 13);
    expect(t.totalBytes).toBe(0);
  });

  it("refuses a range touching scratch with EINVAL, but the 6.19 length is 32-bit: 2^20 pages (4 GiB) wrap to 0 and pass", () => {
    const m = coldBoot({ ...defaultScenario().machine, ram: 8 * 2 ** 30 });
    const s = m.scratch[0]!;
    const t = bitmapsPageFormat.createTracker();
    expect(errnoOf(() => khoPreservePages(m, t, s.addr + s.size - PAGE_SIZE, 2))).toBe("EINVAL");
    // A start 4 KiB below scratch: nr_pages << PAGE_SHIFT in 32 bits is 0 for 2^20 pages, 4 GiB - 4 KiB for one fewer.
    const below = s.addr - PAGE_SIZE;
    expect(errnoOf(() => khoPreservePages(m, t, below, 2 ** 20 - 1))).toBe("EINVAL");
    expect(t.totalBytes).toBe(0);
    expect(errnoOf(() => khoPreservePages(m, t, below, 2 ** 20))).toBe("succeeded");
    expect(t.totalBytes).toBe(2 ** 32);
  });

  it("after a 6.18 finalize returns EBUSY and leaves nothing preserved", () => {
    const m = machine();
    const t = rangesFormat.createTracker();
    expect(errnoOf(() => khoPreservePages(m, t, 0x5000_0000, 5, { finalized: true }))).toBe("EBUSY");
    expect(t.totalBytes).toBe(0);
  });

  it("rolls back the blocks before one the tracker refuses (EEXIST: the middle page preserved with other data)", () => {
    const m = machine();
    const t = rangesFormat.createTracker();
    t.khoPreservePhys(0x5000_4000, PAGE_SIZE);
    expect(errnoOf(() => khoPreservePages(m, t, 0x5000_3000, 13))).toBe("EEXIST");
    expect([...t.ranges()]).toEqual([{ start: 0x5000_4000, size: PAGE_SIZE, data: 0 }]);
  });
});

describe("kho_alloc_preserve / kho_unpreserve_free", () => {
  it("errno table: size 0 EINVAL; get_order(size) > MAX_PAGE_ORDER E2BIG; exactly 4 MiB is order 10", () => {
    const m = machine();
    const t = rangesFormat.createTracker();
    expect(errnoOf(() => khoAllocPreserve(m, t, 0))).toBe("EINVAL");
    expect(errnoOf(() => khoAllocPreserve(m, t, 4 * 2 ** 20 + 1))).toBe("E2BIG");
    expect(khoAllocPreserve(m, t, 4 * 2 ** 20).order).toBe(10);
    expect(khoAllocPreserve(m, t, 4097).order).toBe(1);
    expect(khoAllocPreserve(m, t, 1).order).toBe(0);
  });

  it("hands out a zeroed folio even where the memory held data, and kho_unpreserve_free gives it back", () => {
    const m = machine();
    const t = rangesFormat.createTracker();
    const p = m.buddy.allocFolio(1)!;
    m.mem.write(p, new Uint8Array(2 * PAGE_SIZE).fill(0xa5));
    m.buddy.freeFolio(p, 1);
    const free = m.buddy.freeBytes;
    const r = khoAllocPreserve(m, t, 5000);
    expect(r).toEqual({ phys: p, order: 1 });
    expect(m.mem.read(p, 2 * PAGE_SIZE).every((b) => b === 0)).toBe(true);
    expect([...t.ranges()]).toEqual([{ start: p, size: 2 * PAGE_SIZE, data: KHO_DATA_FOLIO | 1 }]);
    khoUnpreserveFree(m, t, r.phys, r.order);
    expect(t.totalBytes).toBe(0);
    expect(m.buddy.freeBytes).toBe(free);
  });

  it("kho_restore_free restores the folio once and returns its whole span; a second call fails", () => {
    const m = machine();
    const t = rangesFormat.createTracker();
    const r = khoAllocPreserve(m, t, 3 * PAGE_SIZE);
    const restore = new KhoRestore(khoRangeTableOf([...t.ranges()]), 10, true);
    expect(khoRestoreFree(restore, r.phys)).toEqual({ start: r.phys, size: 4 * PAGE_SIZE });
    expect(() => khoRestoreFree(restore, r.phys)).toThrow(KhoRestoreError);
    expect(() => khoRestoreFree(restore, r.phys + PAGE_SIZE)).toThrow(/not the head/);
  });

  it("EBUSY after finalize frees the folio again (folio_put)", () => {
    const m = machine();
    const free = m.buddy.freeBytes;
    expect(errnoOf(() => khoAllocPreserve(m, rangesFormat.createTracker(), 4096, { finalized: true }))).toBe("EBUSY");
    expect(m.buddy.freeBytes).toBe(free);
  });
});

describe("scenario ops over the page API", () => {
  const run = (ops: unknown[]) => {
    const s = parseScenario({ machine: { ram: "512M" }, ops }, "t.json");
    const m = coldBoot(s.machine);
    return { m, w: runWorkload(m, s, 1, "t.json") };
  };
  const refusal = (ops: unknown[]): string => {
    try {
      run(ops);
    } catch (e) {
      if (e instanceof ScenarioError) return e.message;
      throw e;
    }
    return "ran";
  };

  it("an errno without expect stops the scenario with one line naming the op and the errno", () => {
    expect(refusal([{ op: "alloc-preserve", size: 0 }])).toBe("t.json: ops[0]: kho_alloc_preserve: size 0 (-EINVAL)");
    expect(refusal([{ op: "vmalloc", pages: 4, flags: 4 }])).toBe("t.json: ops[0]: kho_preserve_vmalloc: vm flags 0x4 outside 0x402 (-EOPNOTSUPP)");
  });

  it("expect: the named errno passes, another errno or success is refused", () => {
    expect(refusal([{ op: "alloc-preserve", size: "8M", expect: "E2BIG" }])).toBe("ran");
    expect(refusal([{ op: "alloc-preserve", size: "8M", expect: "EINVAL" }])).toMatch(/^t\.json: ops\[0\]: expected -EINVAL, but kho_alloc_preserve: .* \(-E2BIG\)$/);
    expect(refusal([{ op: "alloc-preserve", size: 4096, expect: "EINVAL" }])).toBe("t.json: ops[0].expect: expected -EINVAL, but the alloc-preserve call succeeded");
    expect(refusal([{ op: "alloc-preserve", size: 1, expect: "ENOENT" }])).toMatch(/^t\.json: ops\[0\]\.expect: expected one of "EINVAL", .*got the string "ENOENT"$/);
  });

  it("finalize: later preserves are EBUSY (page ops, folios, phys), a second finalize EEXIST", () => {
    expect(refusal([{ op: "finalize" }, { op: "preserve-pages", pages: 1, expect: "EBUSY" }, { op: "vmalloc", pages: 2, expect: "EBUSY" }, { op: "finalize", expect: "EEXIST" }])).toBe("ran");
    expect(refusal([{ op: "finalize" }, { op: "folios", count: 1, order: 0 }])).toBe("t.json: ops[1]: folios: KHO is finalized (-EBUSY)");
    const { m, w } = run([{ op: "vmalloc", pages: 3 }, { op: "finalize" }, { op: "vmalloc", pages: 2, expect: "EBUSY" }]);
    // The refused vmalloc was vfree()d and left nothing preserved: only the first area (3 pages + 1 chunk).
    expect(w.track.totalBytes).toBe(4 * PAGE_SIZE);
    expect(m.buddy.allocatedBytes).toBeGreaterThan(0);
  });

  it("unpreserve-pages must repeat the preserve call: a sub-range is refused, the whole call unpreserves every block", () => {
    expect(refusal([{ op: "preserve-pages", pages: 8 }, { op: "unpreserve-pages", index: 0, pages: 4 }])).toMatch(
      /^t\.json: ops\[1\]: kho_unpreserve_pages\(0x[0-9a-f]+, 4\) does not repeat kho_preserve_pages\(0x[0-9a-f]+, 8\): unpreserving a sub-range is not supported/,
    );
    expect(refusal([{ op: "preserve-pages", pages: 8 }, { op: "unpreserve-pages", index: 0, offset: 2 }])).toMatch(/does not repeat/);
    expect(refusal([{ op: "unpreserve-pages", index: 0 }])).toBe("t.json: ops[0].index: no preserved preserve-pages 0 (0 so far)");
    const { w } = run([{ op: "preserve-pages", pages: 13 }, { op: "unpreserve-pages", index: 0 }]);
    expect(w.track.totalBytes).toBe(0);
    expect(w.pageOps.records().pages).toEqual([]);
  });

  it("unpreserve-vmalloc and unpreserve-free remove the record and every preserved page of it", () => {
    const { w } = run([{ op: "vmalloc", pages: 1024, order: 9 }, { op: "alloc-preserve", size: "64K" }, { op: "unpreserve-vmalloc", index: 0 }, { op: "unpreserve-free", index: 0 }]);
    expect(w.track.totalBytes).toBe(0);
    expect(w.pageOps.records()).toEqual({ vmalloc: [], pages: [] });
    expect(w.folios.live).toBe(0);
  });
});
