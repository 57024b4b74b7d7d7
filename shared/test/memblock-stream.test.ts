/*
 * memblock under a successor's reserve stream, checked like
 * tools/testing/memblock (base, size and flags of the regions, cnt,
 * total_size) after every step: a reserve that extends the last region, a
 * 6.16-style memblock_reserve() + memblock_reserved_mark_noinit() of each
 * block below early allocations (the block is held aside between the two
 * calls, regions.ts), and every kind of access in between those two calls,
 * which must see the region inserted as the kernel's array has it. Isolated
 * blocks are also queued and stored together (regions.ts): the queue's
 * length is made tiny (queueMax) so that it fills, and accesses land with
 * it empty, partly full, full and just flushed.
 */
import { describe, expect, it } from "vitest";
import { Memblock, MemblockError, MEMBLOCK_RSRV_KERN, MEMBLOCK_RSRV_NOINIT, type MemblockRegion } from "../src/mm/memblock/index.js";

const P = 4096;
const BASE = 2 ** 32;

/* A memblock with RAM and two early allocations high up (flags RSRV_KERN), as a successor's boot leaves it. */
function boot(chunkMax?: number, queueMax?: number): { m: Memblock; top: number } {
  const m = new Memblock({ ...(chunkMax === undefined ? {} : { chunkMax }), ...(queueMax === undefined ? {} : { queueMax }) });
  m.memblockAdd(BASE, 2 ** 32);
  const top = BASE + 2 ** 31;
  m.memblockReserveKern(top, 16 * P);
  m.memblockReserveKern(top + 64 * P, 16 * P);
  return { m, top };
}

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
  regions(): MemblockRegion[] {
    const out: MemblockRegion[] = [];
    for (const p of [...this.pages.keys()].sort((a, b) => a - b)) {
      const f = this.pages.get(p)!;
      const last = out[out.length - 1];
      if (last && last.base + last.size === p && last.flags === f) last.size += P;
      else out.push({ base: p, size: P, flags: f });
    }
    return out;
  }
}

/*
 * The reserved list of @m is @model's: base, size and flags of every region,
 * cnt and total_size; then the invariants memblockSelfCheck() verifies.
 */
function expectModel(m: Memblock, model: PageModel, what: string): void {
  const want = model.regions();
  expect(m.regions("reserved"), what).toEqual(want);
  expect(m.regionCount("reserved")).toBe(want.length);
  expect(m.memblockReservedSize()).toBe(model.pages.size * P);
  m.memblockSelfCheck();
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

  it("reserve + mark_noinit of isolated blocks (a page apart) below early allocations: one NOINIT region each, checked after each call", () => {
    for (const chunkMax of [2, 4, 1024]) {
      const { m, top } = boot(chunkMax);
      const n = 2000;
      for (let i = 0; i < n; i++) {
        const b = BASE + 2 * i * P;
        m.memblockReserve(b, P);
        // Between the two calls: the block is its own region (flags 0) after the previous block.
        if (i % 97 === 0) {
          const r = m.regions("reserved");
          expect(m.regionCount("reserved")).toBe(i + 3);
          if (i > 0) expect(r[i - 1]).toEqual({ base: b - 2 * P, size: P, flags: MEMBLOCK_RSRV_NOINIT });
          expect(r[i]).toEqual({ base: b, size: P, flags: 0 });
          m.memblockSelfCheck();
        }
        m.memblockReservedMarkNoinit(b, P);
        expect(m.regionCount("reserved")).toBe(i + 3);
        expect(m.memblockReservedSize()).toBe((i + 1) * P + 32 * P);
        if (i % 89 === 0) expect(m.regions("reserved")[i]).toEqual({ base: b, size: P, flags: MEMBLOCK_RSRV_NOINIT });
      }
      expect(m.regions("reserved")).toEqual([
        ...Array.from({ length: n }, (_, i) => ({ base: BASE + 2 * i * P, size: P, flags: MEMBLOCK_RSRV_NOINIT })),
        { base: top, size: 16 * P, flags: MEMBLOCK_RSRV_KERN },
        { base: top + 64 * P, size: 16 * P, flags: MEMBLOCK_RSRV_KERN },
      ]);
      m.memblockSelfCheck();
    }
  });

  it("any access between the reserve and its mark sees the block inserted; the mark then still merges or flags it (against a page model)", () => {
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
    // stride 1: contiguous blocks (the block touches the run); 2: isolated ones (a page apart).
    for (const [what, access] of accesses) {
      for (const [chunkMax, stride] of [[2, 1], [1024, 1], [2, 2], [4, 2], [1024, 2]] as const) {
        const { m, top } = boot(chunkMax);
        const model = new PageModel();
        model.reserve(top, 16 * P, MEMBLOCK_RSRV_KERN);
        model.reserve(top + 64 * P, 16 * P, MEMBLOCK_RSRV_KERN);
        for (let i = 0; i < 8; i++) {
          m.memblockReserve(BASE + i * stride * P, P);
          m.memblockReservedMarkNoinit(BASE + i * stride * P, P);
          model.reserve(BASE + i * stride * P, P);
          model.mark(BASE + i * stride * P, P);
        }
        const b = BASE + 8 * stride * P;
        m.memblockReserve(b, P);
        model.reserve(b, P);
        access(m, b, model);
        m.memblockReservedMarkNoinit(b, P);
        model.mark(b, P);
        expectModel(m, model, `${what}, chunkMax ${chunkMax}, stride ${stride}`);
      }
    }
  });

  it("the stream's O(1) path (cached bounds) against a page model: random block sizes, gaps, skipped or odd marks, other calls, bad sizes", () => {
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    // gapOdds: one reserve in gapOdds starts past a gap (2: the isolated stream's cached path half the time).
    // queueMax 1 and 3: the queue of isolated blocks fills and is stored between the model's checks.
    for (const [chunkMax, gapOdds, queueMax] of [[2, 10, undefined], [4, 10, undefined], [1024, 10, undefined], [2, 2, undefined], [4, 2, undefined], [1024, 2, undefined], [2, 2, 1], [4, 2, 3], [1024, 2, 3], [4, 10, 3]] as const) {
      const { m, top } = boot(chunkMax, queueMax);
      const model = new PageModel();
      model.reserve(top, 16 * P, MEMBLOCK_RSRV_KERN);
      model.reserve(top + 64 * P, 16 * P, MEMBLOCK_RSRV_KERN);
      let cursor = BASE;
      let nextCheck = 1;
      for (let step = 0; step < 2500; step++) {
        const a = rnd(100);
        if (a < 80) {
          if (rnd(gapOdds) === 0) cursor += P * (1 + rnd(3));
          const size = P << [0, 0, 0, 1, 3][rnd(5)]!;
          m.memblockReserve(cursor, size);
          model.reserve(cursor, size);
          const k = rnd(20);
          // Mostly the exact block; sometimes no mark, half of it, or more than it.
          const msize = k === 0 ? 0 : k === 1 && size > P ? size / 2 : k === 2 ? size + P : size;
          if (msize > 0) {
            m.memblockReservedMarkNoinit(cursor, msize);
            model.mark(cursor, msize);
          }
          cursor += size;
        } else if (a < 86) {
          m.memblockReserveKern(cursor, P);
          model.reserve(cursor, P, MEMBLOCK_RSRV_KERN);
          cursor += P;
        } else if (a < 90) {
          const p = BASE + rnd((cursor - BASE) / P + 1) * P;
          m.memblockPhysFree(p, P);
          model.free(p, P);
        } else if (a < 92) {
          // A hole of 8 pages below: the stream restarts in it and runs into (and over) the regions after it.
          const p = BASE + rnd((cursor - BASE) / P + 1) * P;
          m.memblockPhysFree(p, 8 * P);
          model.free(p, 8 * P);
          cursor = Math.max(BASE, p - P * rnd(2));
        } else if (a < 95) {
          const p = BASE + rnd((cursor - BASE) / P + 1) * P;
          expect(m.memblockIsReserved(p)).toBe(model.pages.has(p));
        } else {
          // Bad sizes right where the stream continues: the same error as anywhere else, nothing changed.
          const bad = [P + 0.5, Number.NaN, -P, 2 ** 53][rnd(4)]!;
          expect(() => m.memblockReserve(cursor, bad)).toThrow(MemblockError);
        }
        if (step === nextCheck || step === 2499) {
          nextCheck = step + 1 + rnd(100);
          expectModel(m, model, `chunkMax ${chunkMax}, queueMax ${queueMax}, step ${step}`);
        }
      }
      expect(cursor).toBeLessThan(top);
    }
  });

  it("isolated blocks queued and stored together: the same regions, cnt and total_size whether the queue is stored after every block, every 3, or every 1024", () => {
    for (const chunkMax of [2, 4, 1024]) {
      const n = 5000;
      const want: MemblockRegion[] = [];
      const ms = [1, 3, 1024].map((queueMax) => boot(chunkMax, queueMax));
      for (let i = 0; i < n; i++) {
        // Mostly a page apart; every 7th block touches the one before (it merges into the queued block).
        const b = BASE + 2 * i * P - (i % 7 === 6 ? P : 0);
        for (const { m } of ms) {
          m.memblockReserve(b, P);
          m.memblockReservedMarkNoinit(b, P);
        }
        const last = want[want.length - 1];
        if (last && last.base + last.size === b) last.size += P;
        else want.push({ base: b, size: P, flags: MEMBLOCK_RSRV_NOINIT });
      }
      for (const { m, top } of ms) {
        // Nothing looked at the list until now: whatever is still queued is stored by this read.
        expect(m.regionCount("reserved")).toBe(want.length + 2);
        expect(m.memblockReservedSize()).toBe(n * P + 32 * P);
        expect(m.regions("reserved")).toEqual([
          ...want,
          { base: top, size: 16 * P, flags: MEMBLOCK_RSRV_KERN },
          { base: top + 64 * P, size: 16 * P, flags: MEMBLOCK_RSRV_KERN },
        ]);
        m.memblockSelfCheck();
      }
    }
  });

  it("any access with the queue empty, partly full, full or just stored, before or between a reserve and its mark, sees the kernel's array (against a page model)", () => {
    const accesses: [string, (m: Memblock, b: number, model: PageModel) => unknown][] = [
      ["isReserved", (m, b) => expect(m.memblockIsReserved(b - 2 * P)).toBe(true)],
      ["regions", (m, _b, model) => expect(m.regions("reserved")).toEqual(model.regions())],
      ["alloc", (m, _b, model) => model.reserve(m.memblockPhysAlloc(P, P), P, MEMBLOCK_RSRV_KERN)],
      ["free the last queued block", (m, b, model) => (m.memblockPhysFree(b - 2 * P, P), model.free(b - 2 * P, P))],
      ["reserve in the last gap", (m, b, model) => (m.memblockReserve(b - P, P), model.reserve(b - P, P))],
      ["mark the first block", (m, _b, model) => (m.memblockReservedMarkNoinit(BASE, P), model.mark(BASE, P))],
      ["reserve_kern in the last gap", (m, b, model) => (m.memblockReserveKern(b - P, P), model.reserve(b - P, P, MEMBLOCK_RSRV_KERN))],
    ];
    for (const [what, access] of accesses) {
      for (const [chunkMax, queueMax] of [[2, 4], [1024, 4], [4, 1]] as const) {
        // Blocks before the access: queue empty (1: the first block is not queued), partly full, full, one past full.
        for (const before of [1, 3, 5, 6, 9]) {
          for (const between of [false, true]) {
            const { m, top } = boot(chunkMax, queueMax);
            const model = new PageModel();
            model.reserve(top, 16 * P, MEMBLOCK_RSRV_KERN);
            model.reserve(top + 64 * P, 16 * P, MEMBLOCK_RSRV_KERN);
            for (let i = 0; i < before; i++) {
              const b = BASE + 2 * i * P;
              m.memblockReserve(b, P);
              m.memblockReservedMarkNoinit(b, P);
              model.reserve(b, P);
              model.mark(b, P);
            }
            const b = BASE + 2 * before * P;
            if (between) {
              // The next block is pending (reserved, not marked) behind the queue.
              m.memblockReserve(b, P);
              model.reserve(b, P);
            }
            access(m, b, model);
            if (between) {
              m.memblockReservedMarkNoinit(b, P);
              model.mark(b, P);
            }
            // The stream goes on after the access.
            for (let i = 1; i <= 6; i++) {
              m.memblockReserve(b + 2 * i * P, P);
              m.memblockReservedMarkNoinit(b + 2 * i * P, P);
              model.reserve(b + 2 * i * P, P);
              model.mark(b + 2 * i * P, P);
            }
            expectModel(m, model, `${what}, chunkMax ${chunkMax}, queueMax ${queueMax}, ${before} blocks before, ${between ? "between reserve and mark" : "after a mark"}`);
          }
        }
      }
    }
  });
});
