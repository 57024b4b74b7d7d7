/*
 * memblock against a brute-force model, plus large region counts.
 *
 * The model keeps one entry per page of a small address space: the memory
 * flags of the page (or absent) and the reserved flags of the page (or
 * absent). Every memblock operation has an obvious page-wise meaning there;
 * after each step the region lists must be sorted, non-overlapping, fully
 * merged and cover exactly the model's pages with the model's flags, and
 * allocations must return the address the kernel's search would.
 */
import { fc, test } from "./fc-prop.js";
import { describe, expect, it } from "vitest";
import { expectBe, expectEqual } from "./fast-expect.js";
import { PAGE_SIZE } from "../src/abi/page.js";
import {
  MEMBLOCK_KHO_SCRATCH,
  MEMBLOCK_NONE,
  MEMBLOCK_NOMAP,
  MEMBLOCK_RSRV_KERN,
  MEMBLOCK_RSRV_NOINIT,
  Memblock,
  type PhysRange,
} from "../src/mm/memblock/index.js";

/** Pages in the model's address space (operations may reach past PAGES). */
const PAGES = 48;
const SPACE = 64;
const ABSENT = -1;

type Op =
  | { op: "add" | "remove" | "markScratch" | "clearScratch" | "markNomap" | "clearNomap"; p: number; n: number }
  | { op: "reserve" | "reserveKern" | "free" | "noinit"; p: number; n: number }
  | { op: "alloc"; n: number; alignShift: number; start: number; end: number; bottomUp: boolean }
  | { op: "scratchOnly"; on: boolean };

const range = { p: fc.integer({ min: 0, max: PAGES - 1 }), n: fc.integer({ min: 0, max: 12 }) };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant("add" as const), ...range }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("remove" as const), ...range }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("markScratch" as const), ...range }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("clearScratch" as const), ...range }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constantFrom("markNomap" as const, "clearNomap" as const), ...range }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant("reserve" as const), ...range }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("reserveKern" as const), ...range }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("free" as const), ...range }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("noinit" as const), ...range }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant("alloc" as const),
      n: fc.integer({ min: 1, max: 6 }),
      alignShift: fc.integer({ min: 0, max: 3 }),
      start: fc.integer({ min: 0, max: PAGES }),
      end: fc.integer({ min: 0, max: SPACE }),
      bottomUp: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("scratchOnly" as const), on: fc.boolean() }) },
);

class Model {
  readonly mem = new Array<number>(SPACE).fill(ABSENT);
  readonly rsv = new Array<number>(SPACE).fill(ABSENT);
  scratchOnly = false;

  pages(p: number, n: number): number[] {
    const out: number[] = [];
    for (let q = p; q < p + n && q < SPACE; q++) out.push(q);
    return out;
  }

  /** Highest (or lowest) page where n free pages of one memory region fit; -1 if none. */
  alloc(n: number, alignPages: number, startPage: number, endPage: number, bottomUp: boolean): number {
    const lo = Math.max(startPage, 1); // the first page is never allocated
    const hi = Math.max(lo, endPage === 0 ? SPACE : endPage);
    const fits = (p: number): boolean => {
      if (p % alignPages !== 0) return false;
      const first = this.mem[p]!;
      for (let q = p; q < p + n; q++) {
        const f = this.mem[q]!;
        if (f === ABSENT || f !== first || this.rsv[q] !== ABSENT) return false;
        if (f & MEMBLOCK_NOMAP) return false;
        if (this.scratchOnly && !(f & MEMBLOCK_KHO_SCRATCH)) return false;
      }
      return true;
    };
    if (bottomUp) {
      for (let p = lo; p + n <= hi; p++) if (fits(p)) return p;
    } else {
      for (let p = hi - n; p >= lo; p--) if (fits(p)) return p;
    }
    return -1;
  }

  /** Free ranges as the kernel yields them: per memory region, minus reserved. */
  freeRanges(): PhysRange[] {
    const out: PhysRange[] = [];
    let runStart = -1;
    for (let q = 0; q <= SPACE; q++) {
      const f = q < SPACE ? this.mem[q]! : ABSENT;
      const free = f !== ABSENT && !(f & MEMBLOCK_NOMAP) && this.rsv[q] === ABSENT;
      const sameRegion = runStart >= 0 && free && this.mem[q - 1] === f;
      if (runStart >= 0 && !sameRegion) {
        out.push({ base: runStart * PAGE_SIZE, size: (q - runStart) * PAGE_SIZE });
        runStart = -1;
      }
      if (free && runStart < 0) runStart = q;
    }
    return out;
  }
}

/** Expand a region list into per-page flags, checking page granularity. */
function pagesOf(m: Memblock, type: "memory" | "reserved"): number[] {
  const out = new Array<number>(SPACE).fill(ABSENT);
  for (const r of m.regions(type)) {
    expectBe(r.base % PAGE_SIZE, 0);
    expectBe(r.size % PAGE_SIZE, 0);
    for (let q = r.base / PAGE_SIZE; q < (r.base + r.size) / PAGE_SIZE; q++) out[q] = r.flags;
  }
  return out;
}

function step(m: Memblock, model: Model, op: Op): void {
  switch (op.op) {
    case "scratchOnly":
      model.scratchOnly = op.on;
      if (op.on) m.memblockSetKhoScratchOnly();
      else m.memblockClearKhoScratchOnly();
      return;
    case "alloc": {
      const align = PAGE_SIZE << op.alignShift;
      m.memblockSetBottomUp(op.bottomUp);
      const want = model.alloc(op.n, 1 << op.alignShift, op.start, op.end, op.bottomUp);
      const got = m.memblockPhysAllocRange(op.n * PAGE_SIZE, align, op.start * PAGE_SIZE, op.end * PAGE_SIZE);
      expectBe(got, want < 0 ? 0 : want * PAGE_SIZE);
      if (want >= 0) for (const q of model.pages(want, op.n)) model.rsv[q] = MEMBLOCK_RSRV_KERN;
      return;
    }
    default:
      break;
  }
  const base = op.p * PAGE_SIZE;
  const size = op.n * PAGE_SIZE;
  const pages = model.pages(op.p, op.n);
  switch (op.op) {
    case "add":
      m.memblockAdd(base, size);
      for (const q of pages) if (model.mem[q] === ABSENT) model.mem[q] = MEMBLOCK_NONE;
      break;
    case "remove":
      m.memblockRemove(base, size);
      for (const q of pages) model.mem[q] = ABSENT;
      break;
    case "markScratch":
    case "clearScratch":
    case "markNomap":
    case "clearNomap": {
      const flag = op.op.endsWith("Scratch") ? MEMBLOCK_KHO_SCRATCH : MEMBLOCK_NOMAP;
      const set = op.op.startsWith("mark");
      if (op.op === "markScratch") m.memblockMarkKhoScratch(base, size);
      else if (op.op === "clearScratch") m.memblockClearKhoScratch(base, size);
      else if (op.op === "markNomap") m.memblockMarkNomap(base, size);
      else m.memblockClearNomap(base, size);
      for (const q of pages) {
        const f = model.mem[q]!;
        if (f !== ABSENT) model.mem[q] = set ? f | flag : f & ~flag;
      }
      break;
    }
    case "reserve":
    case "reserveKern": {
      const flags = op.op === "reserve" ? MEMBLOCK_NONE : MEMBLOCK_RSRV_KERN;
      if (op.op === "reserve") m.memblockReserve(base, size);
      else m.memblockReserveKern(base, size);
      for (const q of pages) if (model.rsv[q] === ABSENT) model.rsv[q] = flags;
      break;
    }
    case "free":
      m.memblockPhysFree(base, size);
      for (const q of pages) model.rsv[q] = ABSENT;
      break;
    case "noinit":
      m.memblockReservedMarkNoinit(base, size);
      for (const q of pages) {
        const f = model.rsv[q]!;
        if (f !== ABSENT) model.rsv[q] = f | MEMBLOCK_RSRV_NOINIT;
      }
      break;
  }
  if (op.n > 0) {
    const anyReserved = pages.some((q) => model.rsv[q] !== ABSENT);
    expectBe(m.memblockIsRegionReserved(base, size), anyReserved);
  }
}

function check(m: Memblock, model: Model): void {
  // sorted, non-overlapping, fully merged, counts and totals consistent
  m.memblockSelfCheck();
  expectEqual(pagesOf(m, "memory"), model.mem);
  expectEqual(pagesOf(m, "reserved"), model.rsv);
  const memPages = model.mem.filter((f) => f !== ABSENT).length;
  const rsvPages = model.rsv.filter((f) => f !== ABSENT).length;
  expectBe(m.memblockPhysMemSize(), memPages * PAGE_SIZE);
  expectBe(m.memblockReservedSize(), rsvPages * PAGE_SIZE);
  expectEqual(m.freeRanges(), model.freeRanges());
  const isMem: boolean[] = [];
  const isRsv: boolean[] = [];
  for (let q = 0; q < SPACE; q++) {
    isMem.push(m.memblockIsMemory(q * PAGE_SIZE + 1));
    isRsv.push(m.memblockIsReserved(q * PAGE_SIZE));
  }
  expectEqual(isMem, model.mem.map((f) => f !== ABSENT));
  expectEqual(isRsv, model.rsv.map((f) => f !== ABSENT));
}

describe("memblock vs a page-set model", () => {
  test.prop([fc.constantFrom(2, 3, 4, 1024), fc.array(opArb, { minLength: 1, maxLength: 40 })], { numRuns: 800 })(
    "random add/remove/mark/reserve/free/mark_noinit/alloc sequences",
    (chunkMax, ops) => {
      const m = new Memblock({ chunkMax });
      const model = new Model();
      for (const op of ops) {
        step(m, model, op);
        check(m, model);
      }
    },
  );

  /**
   * A successor's stream: blocks at increasing addresses, touching the last
   * one, after a gap or overlapping it by a page, each reserved (maybe for
   * the kernel) and maybe marked NOINIT right after. Most steps take the
   * O(1) paths at the tail of the list, including at chunk boundaries.
   */
  const tailStreamArb = fc.array(
    fc.record({
      gap: fc.integer({ min: -1, max: 2 }),
      n: fc.integer({ min: 1, max: 3 }),
      kind: fc.constantFrom("reserve" as const, "reserveKern" as const, "reserve+noinit" as const, "noinit" as const),
    }),
    { minLength: 1, maxLength: 12 },
  );

  test.prop([fc.constantFrom(2, 3, 4, 1024), tailStreamArb], { numRuns: 400 })(
    "ascending reserve / reserve_kern / mark_noinit streams at the tail match the model",
    (chunkMax, stream) => {
      const m = new Memblock({ chunkMax });
      const model = new Model();
      let p = 0;
      for (const { gap, n, kind } of stream) {
        p = Math.max(0, p + gap);
        if (kind === "reserveKern") step(m, model, { op: "reserveKern", p, n });
        if (kind === "reserve" || kind === "reserve+noinit") step(m, model, { op: "reserve", p, n });
        if (kind === "reserve+noinit" || kind === "noinit") step(m, model, { op: "noinit", p, n });
        check(m, model);
        p += n;
      }
    },
  );

  /** Disjoint (possibly touching) page ranges, in a random order. */
  const preservedArb = fc
    .uniqueArray(fc.integer({ min: 0, max: 400 }), { minLength: 2, maxLength: 40 })
    .chain((cuts) => {
      const sorted = [...cuts].sort((x, y) => x - y);
      return fc.array(fc.boolean(), { minLength: sorted.length - 1, maxLength: sorted.length - 1 }).chain((keep) => {
        const ranges = keep.flatMap((k, i) => (k ? [{ p: sorted[i]!, n: sorted[i + 1]! - sorted[i]! }] : []));
        return fc.shuffledSubarray(ranges, { minLength: ranges.length, maxLength: ranges.length });
      });
    });

  test.prop([preservedArb], { numRuns: 200 })(
    "the seed's order (mark_noinit, reserve) leaves no NOINIT region; reserve, mark_noinit marks them all",
    (preserved) => {
      const seed = new Memblock({ chunkMax: 3 });
      const fixed = new Memblock({ chunkMax: 3 });
      for (const r of preserved) {
        seed.memblockReservedMarkNoinit(r.p * PAGE_SIZE, r.n * PAGE_SIZE);
        seed.memblockReserve(r.p * PAGE_SIZE, r.n * PAGE_SIZE);
        fixed.memblockReserve(r.p * PAGE_SIZE, r.n * PAGE_SIZE);
        fixed.memblockReservedMarkNoinit(r.p * PAGE_SIZE, r.n * PAGE_SIZE);
      }
      seed.memblockSelfCheck();
      fixed.memblockSelfCheck();
      const total = preserved.reduce((t, r) => t + r.n * PAGE_SIZE, 0);
      expect(seed.memblockReservedSize()).toBe(total);
      expect(fixed.memblockReservedSize()).toBe(total);
      expect(seed.regions("reserved").every((r) => r.flags === MEMBLOCK_NONE)).toBe(true);
      expect(fixed.regions("reserved").every((r) => r.flags === MEMBLOCK_RSRV_NOINIT)).toBe(true);
      // Same coverage, same merging (all regions of each list share one flag value).
      expect(fixed.regions("reserved").map(({ base, size }) => ({ base, size }))).toEqual(
        seed.regions("reserved").map(({ base, size }) => ({ base, size })),
      );
    },
  );
});

/** Deterministic PRNG (mulberry32) for the large tests. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("large region counts", () => {
  const N = 200_000;
  const STRIDE = 2 * PAGE_SIZE;
  const BASE = 2 ** 32;

  it("reserve + mark_noinit of 200,000 isolated pages in ascending order", () => {
    const m = new Memblock();
    m.memblockAdd(BASE, N * STRIDE);
    for (let i = 0; i < N; i++) {
      m.memblockReserve(BASE + i * STRIDE, PAGE_SIZE);
      m.memblockReservedMarkNoinit(BASE + i * STRIDE, PAGE_SIZE);
    }
    expect(m.regionCount("reserved")).toBe(N);
    expect(m.memblockReservedSize()).toBe(N * PAGE_SIZE);
    const regions = m.regions("reserved");
    expect(regions[0]).toEqual({ base: BASE, size: PAGE_SIZE, flags: MEMBLOCK_RSRV_NOINIT });
    expect(regions[N - 1]).toEqual({ base: BASE + (N - 1) * STRIDE, size: PAGE_SIZE, flags: MEMBLOCK_RSRV_NOINIT });
    expect(regions.every((r) => r.flags === MEMBLOCK_RSRV_NOINIT)).toBe(true);
    m.memblockSelfCheck();
    // Every other page is free, one range each.
    const free = m.freeRanges();
    expect(free.length).toBe(N);
    expect(free[0]).toEqual({ base: BASE + PAGE_SIZE, size: PAGE_SIZE });
    // An allocation has to skip nothing: the top page is free.
    expect(m.memblockPhysAlloc(PAGE_SIZE, PAGE_SIZE)).toBe(BASE + N * STRIDE - PAGE_SIZE);
    // Two free pages in a row exist nowhere.
    expect(m.memblockPhysAlloc(2 * PAGE_SIZE, PAGE_SIZE)).toBe(0);
  });

  it("ascending reserve + mark_noinit below early allocations (the insertion hint), isolated and touching, small chunks", () => {
    for (const chunkMax of [4, 1024]) {
      const m = new Memblock({ chunkMax });
      const top = BASE + 4 * N * STRIDE;
      m.memblockAdd(BASE, 8 * N * STRIDE);
      // Early allocations above every preserved range, as the successor makes them.
      m.memblockReserveKern(top, 16 * PAGE_SIZE);
      m.memblockReserveKern(top + 32 * PAGE_SIZE, 16 * PAGE_SIZE);
      const n = 20_000;
      // Isolated pages, then a run of touching pages (each merged into the previous), then one that fills a gap exactly.
      for (let i = 0; i < n; i++) {
        m.memblockReserve(BASE + i * STRIDE, PAGE_SIZE);
        m.memblockReservedMarkNoinit(BASE + i * STRIDE, PAGE_SIZE);
      }
      // The stream fills its chunks (split at the insertion point, not in halves): memory follows the regions held.
      const chunks = (m as unknown as { reserved: { chunks: unknown[] } }).reserved.chunks.length;
      expect(chunks).toBeLessThanOrEqual(Math.ceil(n / (chunkMax - 2)) + 2);
      const run = BASE + n * STRIDE;
      for (let i = 0; i < n; i++) {
        m.memblockReserve(run + i * PAGE_SIZE, PAGE_SIZE);
        m.memblockReservedMarkNoinit(run + i * PAGE_SIZE, PAGE_SIZE);
      }
      m.memblockReserve(top - PAGE_SIZE, PAGE_SIZE);
      m.memblockReserve(top - 2 * PAGE_SIZE, PAGE_SIZE);
      m.memblockSelfCheck();
      const regions = m.regions("reserved");
      expect(regions.length).toBe(n + 4);
      expect(regions[n - 1]).toEqual({ base: BASE + (n - 1) * STRIDE, size: PAGE_SIZE, flags: MEMBLOCK_RSRV_NOINIT });
      expect(regions[n]).toEqual({ base: run, size: n * PAGE_SIZE, flags: MEMBLOCK_RSRV_NOINIT });
      // The two plain reserves touch each other but not the RSRV_KERN region above (different flags).
      expect(regions[n + 1]).toEqual({ base: top - 2 * PAGE_SIZE, size: 2 * PAGE_SIZE, flags: 0 });
      expect(regions[n + 2]).toEqual({ base: top, size: 16 * PAGE_SIZE, flags: MEMBLOCK_RSRV_KERN });
      expect(m.memblockReservedSize()).toBe(2 * n * PAGE_SIZE + 2 * PAGE_SIZE + 32 * PAGE_SIZE);
      // A reserve that fills the gap between the two early allocations merges all three.
      m.memblockReserveKern(top + 16 * PAGE_SIZE, 16 * PAGE_SIZE);
      expect(m.regions("reserved").at(-1)).toEqual({ base: top, size: 48 * PAGE_SIZE, flags: MEMBLOCK_RSRV_KERN });
      m.memblockSelfCheck();
    }
  });

  it("200,000 isolated reserves in random order, then frees, then one covering reserve", () => {
    const rand = mulberry32(0x6b686f);
    const order = Array.from({ length: N }, (_, i) => i);
    for (let i = N - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const m = new Memblock();
    for (const i of order) m.memblockReserve(BASE + i * STRIDE, PAGE_SIZE);
    expect(m.regionCount("reserved")).toBe(N);
    m.memblockSelfCheck();
    const regions = m.regions("reserved");
    for (let i = 0; i < N; i += 997) expect(regions[i]).toEqual({ base: BASE + i * STRIDE, size: PAGE_SIZE, flags: 0 });

    // free every odd-numbered page, in random order
    for (const i of order) if (i % 2 === 1) m.memblockPhysFree(BASE + i * STRIDE, PAGE_SIZE);
    expect(m.regionCount("reserved")).toBe(N / 2);
    m.memblockSelfCheck();

    // fill the holes after the first 2000 even pages: they merge into one
    for (let i = 0; i < 2000; i++) m.memblockReserve(BASE + i * STRIDE + PAGE_SIZE, STRIDE);
    // even pages 0, 2, ..., 2000 and the holes between them are now one region
    expect(m.regionCount("reserved")).toBe(N / 2 - 1001 + 1);
    m.memblockSelfCheck();

    // one reserve over everything collapses the list to a single region
    m.memblockReserve(BASE, N * STRIDE);
    expect(m.regions("reserved")).toEqual([{ base: BASE, size: N * STRIDE, flags: 0 }]);
    m.memblockSelfCheck();

    // and one free of everything empties it
    m.memblockPhysFree(0, 2 ** 40);
    expect(m.regionCount("reserved")).toBe(0);
    expect(m.memblockReservedSize()).toBe(0);
    m.memblockSelfCheck();
  });

  it("mark_noinit over 100,000 regions at once, and reserve over 100,000 holes at once", () => {
    const n = 100_000;
    const m = new Memblock();
    for (let i = 0; i < n; i++) m.memblockReserve(BASE + i * STRIDE, PAGE_SIZE);
    m.memblockReservedMarkNoinit(BASE, n * STRIDE);
    expect(m.regionCount("reserved")).toBe(n);
    expect(m.regions("reserved").every((r) => r.flags === MEMBLOCK_RSRV_NOINIT)).toBe(true);
    // Filling every hole with NONE pieces alternates flags: nothing merges.
    m.memblockReserve(BASE, n * STRIDE);
    expect(m.regionCount("reserved")).toBe(2 * n);
    expect(m.memblockReservedSize()).toBe(n * STRIDE);
    m.memblockSelfCheck();
    m.memblockReservedMarkNoinit(0, 2 ** 40);
    expect(m.regions("reserved")).toEqual([{ base: BASE, size: n * STRIDE, flags: MEMBLOCK_RSRV_NOINIT }]);
  });
});
