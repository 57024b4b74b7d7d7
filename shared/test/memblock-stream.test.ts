/*
 * memblock under a successor's reserve stream, checked like
 * tools/testing/memblock (base, size and flags of the regions, cnt,
 * total_size) after every step: a reserve that extends the last region, a
 * 6.16-style memblock_reserve() + memblock_reserved_mark_noinit() of each
 * block below early allocations (the block is held aside between the two
 * calls, regions.ts), and every kind of access in between those two calls,
 * which must see the region inserted as the kernel's array has it.
 */
import { describe, expect, it } from "vitest";
import { Memblock, MEMBLOCK_RSRV_KERN, MEMBLOCK_RSRV_NOINIT } from "../src/mm/memblock/index.js";

const P = 4096;
const BASE = 2 ** 32;

/* A memblock with RAM and two early allocations high up (flags RSRV_KERN), as a successor's boot leaves it. */
function boot(chunkMax?: number): { m: Memblock; top: number } {
  const m = new Memblock(chunkMax === undefined ? {} : { chunkMax });
  m.memblockAdd(BASE, 2 ** 32);
  const top = BASE + 2 ** 31;
  m.memblockReserveKern(top, 16 * P);
  m.memblockReserveKern(top + 64 * P, 16 * P);
  return { m, top };
}

describe("memblock reserve streams", () => {
  it("a reserve touching the end of the last region extends it (cnt 1, base, size, total)", () => {
    const m = new Memblock();
    m.memblockReserve(BASE, P);
    for (let i = 1; i < 1000; i++) {
      m.memblockReserve(BASE + i * P, P);
      expect(m.regionCount("reserved")).toBe(1);
      expect(m.regions("reserved")[0]).toEqual({ base: BASE, size: (i + 1) * P, flags: 0 });
      expect(m.memblockReservedSize()).toBe((i + 1) * P);
    }
    m.memblockSelfCheck();
  });

  it("reserve + mark_noinit of contiguous blocks below early allocations: one NOINIT region, checked after each call", () => {
    for (const chunkMax of [2, 4, 1024]) {
      const { m, top } = boot(chunkMax);
      for (let i = 0; i < 2000; i++) {
        const b = BASE + i * P;
        m.memblockReserve(b, P);
        // Between the two calls: the block is its own region (flags 0) after the run, as memblock_insert_region() left it.
        if (i % 97 === 0) {
          const r = m.regions("reserved");
          expect(m.regionCount("reserved")).toBe(i === 0 ? 3 : 4);
          if (i > 0) expect(r[0]).toEqual({ base: BASE, size: i * P, flags: MEMBLOCK_RSRV_NOINIT });
          expect(r[i === 0 ? 0 : 1]).toEqual({ base: b, size: P, flags: 0 });
          expect(m.memblockReservedSize()).toBe((i + 1) * P + 32 * P);
          m.memblockSelfCheck();
        }
        m.memblockReservedMarkNoinit(b, P);
        expect(m.regionCount("reserved")).toBe(3);
        expect(m.memblockReservedSize()).toBe((i + 1) * P + 32 * P);
      }
      expect(m.regions("reserved")).toEqual([
        { base: BASE, size: 2000 * P, flags: MEMBLOCK_RSRV_NOINIT },
        { base: top, size: 16 * P, flags: MEMBLOCK_RSRV_KERN },
        { base: top + 64 * P, size: 16 * P, flags: MEMBLOCK_RSRV_KERN },
      ]);
      m.memblockSelfCheck();
    }
  });

  it("any access between the reserve and its mark sees the block inserted; the mark then still merges or flags it (against a page model)", () => {
    /* The reserved list as a page -> flags map: what the region list must describe, merged. */
    class PageModel {
      readonly pages = new Map<number, number>();
      reserve(b: number, size: number, flags = 0): void {
        for (let p = b; p < b + size; p += P) if (!this.pages.has(p)) this.pages.set(p, flags);
      }
      free(b: number, size: number): void {
        for (let p = b; p < b + size; p += P) this.pages.delete(p);
      }
      mark(b: number, size: number): void {
        for (let p = b; p < b + size; p += P) if (this.pages.has(p)) this.pages.set(p, this.pages.get(p)! | MEMBLOCK_RSRV_NOINIT);
      }
      regions(): { base: number; size: number; flags: number }[] {
        const out: { base: number; size: number; flags: number }[] = [];
        for (const p of [...this.pages.keys()].sort((a, b) => a - b)) {
          const f = this.pages.get(p)!;
          const last = out[out.length - 1];
          if (last && last.base + last.size === p && last.flags === f) last.size += P;
          else out.push({ base: p, size: P, flags: f });
        }
        return out;
      }
    }
    const accesses: [string, (m: Memblock, b: number, model: PageModel) => unknown][] = [
      ["isReserved", (m, b) => expect(m.memblockIsReserved(b)).toBe(true)],
      ["isRegionReserved", (m, b) => expect(m.memblockIsRegionReserved(b, P)).toBe(true)],
      ["regions", (m, _b, model) => expect(m.regions("reserved")).toEqual(model.regions())],
      ["alloc", (m, _b, model) => model.reserve(m.memblockPhysAlloc(P, P), P, MEMBLOCK_RSRV_KERN)],
      ["free the block", (m, b, model) => (m.memblockPhysFree(b, P), model.free(b, P))],
      ["free half the run", (m, _b, model) => (m.memblockPhysFree(BASE, 4 * P), model.free(BASE, 4 * P))],
      ["reserve the next block", (m, b, model) => (m.memblockReserve(b + P, P), model.reserve(b + P, P))],
      ["mark another range", (m, _b, model) => (m.memblockReservedMarkNoinit(BASE, P), model.mark(BASE, P))],
      ["reserve up to the early allocation", (m, b, model) => (m.memblockReserveKern(b + P, 64 * P), model.reserve(b + P, 64 * P, MEMBLOCK_RSRV_KERN))],
    ];
    for (const [what, access] of accesses) {
      for (const chunkMax of [2, 1024]) {
        const { m, top } = boot(chunkMax);
        const model = new PageModel();
        model.reserve(top, 16 * P, MEMBLOCK_RSRV_KERN);
        model.reserve(top + 64 * P, 16 * P, MEMBLOCK_RSRV_KERN);
        for (let i = 0; i < 8; i++) {
          m.memblockReserve(BASE + i * P, P);
          m.memblockReservedMarkNoinit(BASE + i * P, P);
          model.reserve(BASE + i * P, P);
          model.mark(BASE + i * P, P);
        }
        const b = BASE + 8 * P;
        m.memblockReserve(b, P);
        model.reserve(b, P);
        access(m, b, model);
        m.memblockReservedMarkNoinit(b, P);
        model.mark(b, P);
        m.memblockSelfCheck();
        const want = model.regions();
        expect(m.regions("reserved"), `${what}, chunkMax ${chunkMax}`).toEqual(want);
        expect(m.regionCount("reserved")).toBe(want.length);
        expect(m.memblockReservedSize()).toBe(model.pages.size * P);
      }
    }
  });
});
