import { fc, test } from "./fc-prop.js";
import { expectBe, expectEqual } from "./fast-expect.js";
import { describe, expect, it } from "vitest";
import { PAGE_SIZE } from "../src/abi/page.js";
import { BuddyAllocator, BuddyError, type FreeBlock } from "../src/mm/buddy.js";

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

function blocks(list: [number, number][]): FreeBlock[] {
  return list.map(([base, order]) => ({ base, order }));
}

/** Free blocks left after allocating the first 2^order pages of a max-order block at @base. */
function splitRemainder(base: number, order: number, maxOrder: number): [number, number][] {
  const out: [number, number][] = [];
  for (let o = order; o < maxOrder; o++) out.push([base + PAGE_SIZE * 2 ** o, o]);
  return out;
}

describe("BuddyAllocator: hand-made sequences", () => {
  it("free 0..8 MiB gives two max-order blocks", () => {
    const b = new BuddyAllocator();
    b.freeRange(0, 8 * MiB);
    expect(b.freeBlocks()).toEqual(blocks([[0, 10], [4 * MiB, 10]]));
    expect(b.freeBytes).toBe(8 * MiB);
    expect(b.allocatedBytes).toBe(0);
    expect(b.managedBytes).toBe(8 * MiB);
    expect(b.nrFreeBlocks(10)).toBe(2);
    expect(b.nrFreeBlocks(0)).toBe(0);
  });

  it("order-0 alloc takes the lowest page and splits into orders 0..9; free merges back", () => {
    const b = new BuddyAllocator();
    b.freeRange(0, 8 * MiB);
    expect(b.allocFolio(0)).toBe(0);
    expect(b.freeBlocks()).toEqual(blocks([...splitRemainder(0, 0, 10), [4 * MiB, 10]]));
    for (let o = 0; o < 10; o++) expect(b.nrFreeBlocks(o)).toBe(1);
    expect(b.allocatedBytes).toBe(PAGE_SIZE);

    // Next allocations reuse the split remainders, lowest first.
    expect(b.allocFolio(0)).toBe(0x1000);
    expect(b.allocFolio(1)).toBe(0x2000);
    expect(b.allocFolio(0)).toBe(0x4000);
    expect(b.freeBlocks()).toEqual(
      blocks([[0x5000, 0], [0x6000, 1], ...splitRemainder(0, 3, 10), [4 * MiB, 10]]),
    );

    b.freeFolio(0x2000, 1);
    b.freeFolio(0, 0);
    b.freeFolio(0x4000, 0);
    expect(b.freeBlocks()).toEqual(blocks([[0, 0], [0x2000, 1], ...splitRemainder(0, 2, 10), [4 * MiB, 10]]));
    b.freeFolio(0x1000, 0);
    expect(b.freeBlocks()).toEqual(blocks([[0, 10], [4 * MiB, 10]]));
    expect(b.allocatedBytes).toBe(0);
  });

  it("an order-3 alloc above lower free blocks still picks the lowest fit", () => {
    const b = new BuddyAllocator();
    b.freeRange(0, 8 * MiB);
    expect(b.allocFolio(0)).toBe(0);
    // Free: 0x1000 o0, 0x2000 o1, 0x4000 o2, 0x8000 o3, ...
    expect(b.allocFolio(3)).toBe(0x8000);
    expect(b.allocFolio(2)).toBe(0x4000);
    expect(b.allocFolio(3)).toBe(0x10000);
    expect(b.freeBlocks()).toEqual(
      blocks([[0x1000, 0], [0x2000, 1], [0x18000, 3], ...splitRemainder(0, 5, 10), [4 * MiB, 10]]),
    );
  });

  it("freeRange splits into maximal aligned blocks and merges adjacent ranges", () => {
    const b = new BuddyAllocator();
    b.freeRange(0x3000, 0x9000); // [0x3000, 0xc000)
    expect(b.freeBlocks()).toEqual(blocks([[0x3000, 0], [0x4000, 2], [0x8000, 2]]));
    b.freeRange(0, 0x3000);
    expect(b.freeBlocks()).toEqual(blocks([[0, 3], [0x8000, 2]]));
    b.freeRange(0xc000, 4 * MiB - 0xc000);
    expect(b.freeBlocks()).toEqual(blocks([[0, 10]]));
    b.freeRange(4 * MiB + 0x1000, 0x1000);
    expect(b.freeBlocks()).toEqual(blocks([[0, 10], [4 * MiB + 0x1000, 0]]));
    expect(() => b.freeRange(2 * MiB, 0x1000)).toThrow(BuddyError);
    expect(() => b.freeRange(4 * MiB, 0x2000)).toThrow(BuddyError);
    expect(() => b.freeRange(0x800, 0x1000)).toThrow(BuddyError);
    expect(() => b.freeRange(8 * MiB, 0)).toThrow(BuddyError);
    b.freeRange(4 * MiB, 0x1000);
    expect(b.freeBlocks()).toEqual(blocks([[0, 10], [4 * MiB, 1]]));
    expect(b.managedBytes).toBe(4 * MiB + 0x2000);
  });

  it("respects a smaller maxOrder", () => {
    const b = new BuddyAllocator(2);
    b.freeRange(0x40000000, 0x10000);
    expect(b.freeBlocks()).toEqual(
      blocks([[0x40000000, 2], [0x40004000, 2], [0x40008000, 2], [0x4000c000, 2]]),
    );
    expect(() => b.allocFolio(3)).toThrow(BuddyError);
    expect(() => new BuddyAllocator(-1)).toThrow(BuddyError);
  });

  it("handles addresses above 4 GiB and a 1 TiB machine", () => {
    const b = new BuddyAllocator();
    b.freeRange(4 * GiB, 1024 * GiB);
    expect(b.nrFreeBlocks(10)).toBe(256 * 1024);
    expect(b.allocFolio(4)).toBe(4 * GiB);
    const big = b.allocContig((48 * GiB) / PAGE_SIZE, 1024);
    expect(big).toBe(4 * GiB + 4 * MiB);
    expect(b.allocatedBytes).toBe(48 * GiB + 16 * PAGE_SIZE);
    b.freeContig(big!, (48 * GiB) / PAGE_SIZE);
    b.freeFolio(4 * GiB, 4);
    expect(b.nrFreeBlocks(10)).toBe(256 * 1024);
    expect(b.freeBytes).toBe(1024 * GiB);
  });
});

describe("BuddyAllocator: runs of allocFolio", () => {
  it("gives the same pages and free lists as one call at a time between full checks", () => {
    const orders = [0, 0, 3, 0, 1, 0, 0, 2, 9, 0, 5, 0, 0, 0, 10, 0, 4, 0, 0, 1];
    const run = new BuddyAllocator(10);
    const step = new BuddyAllocator(10);
    for (const x of [run, step]) {
      x.freeRange(0x40000000, 256 * MiB);
      expect(x.allocAt(0x40000000 + 5 * PAGE_SIZE, PAGE_SIZE)).toBe(true);
    }
    const a: (number | undefined)[] = [];
    const b: (number | undefined)[] = [];
    for (let i = 0; i < 400; i++) a.push(run.allocFolio(orders[i % orders.length]!));
    for (let i = 0; i < 400; i++) {
      b.push(step.allocFolio(orders[i % orders.length]!));
      step.freeBlocks(); // empties the front stacks every call
    }
    expect(a).toEqual(b);
    expect(run.freeBlocks()).toEqual(step.freeBlocks());
    expect(run.freeBytes).toBe(step.freeBytes);
    expect(a.includes(undefined)).toBe(false);
    // No page twice.
    expect(new Set(a).size).toBe(a.length);
    // After the run, the other operations see every block: free it all back.
    for (let i = 0; i < 400; i++) run.freeFolio(a[i]!, orders[i % orders.length]!);
    expect(run.allocatedBytes).toBe(PAGE_SIZE);
    expect(run.nrFreeBlocks(10)).toBe(63);
  });
});

describe("BuddyAllocator: allocPages", () => {
  // Two allocators fragmented alike; one takes n pages at once, the other n order-0 folios one at a time.
  test.prop([fc.array(fc.tuple(fc.integer({ min: 0, max: 6 }), fc.boolean()), { maxLength: 60 }), fc.integer({ min: 0, max: 3000 }), fc.boolean()], { numRuns: 300 })(
    "hands out the pages n allocFolio(0) calls would, in their order, and leaves the same free blocks",
    (ops, n, freeAfter) => {
      const bulk = new BuddyAllocator(10);
      const step = new BuddyAllocator(10);
      for (const x of [bulk, step]) {
        x.freeRange(0x4000_0000, 8 * MiB);
        x.freeRange(0x4100_0000 + 3 * PAGE_SIZE, 2 * MiB); // a second range, not max-order aligned
        const held: [number, number][] = [];
        for (const [order, free] of ops) {
          const p = x.allocFolio(order);
          if (p !== undefined) held.push([p, order]);
          if (free && held.length > 1) x.freeFolio(...held.splice(held.length >> 1, 1)[0]!);
        }
      }
      const a: number[] = [];
      const gotA = bulk.allocPages(n, a);
      const b: number[] = [];
      for (let i = 0; i < n; i++) {
        const p = step.allocFolio(0);
        if (p === undefined) break;
        b.push(p);
      }
      expectBe(gotA, b.length);
      expectEqual(a, b);
      expectEqual(bulk.freeBlocks(), step.freeBlocks());
      expectBe(bulk.freeBytes, step.freeBytes);
      // The state behind the front stacks agrees too: the next allocations match.
      if (freeAfter && a.length > 0) for (const x of [bulk, step]) x.freeFolio(a[a.length - 1]!, 0);
      for (const order of [0, 1, 0, 3, 0]) expectBe(bulk.allocFolio(order), step.allocFolio(order));
    },
  );

  it("stops when memory runs out and reports how many pages it gave", () => {
    const x = new BuddyAllocator(10);
    x.freeRange(0x4000_0000, 5 * PAGE_SIZE);
    const out: number[] = [];
    expect(x.allocPages(8, out)).toBe(5);
    expect(out).toEqual([0, 1, 2, 3, 4].map((k) => 0x4000_0000 + k * PAGE_SIZE));
    expect(x.freeBytes).toBe(0);
  });
});

describe("BuddyAllocator: allocContig", () => {
  it("spans block boundaries and takes the lowest run", () => {
    const b = new BuddyAllocator();
    b.freeRange(0, 16 * MiB);
    expect(b.allocFolio(0)).toBe(0);
    // Pages 1..1024 are free: the run crosses from the first into the second block.
    expect(b.allocContig(1024)).toBe(0x1000);
    expect(b.freeBlocks()).toEqual(blocks([...splitRemainder(4 * MiB, 0, 10), [8 * MiB, 10], [12 * MiB, 10]]));
    b.freeContig(0x1000, 1024);
    expect(b.freeBlocks()).toEqual(blocks([...splitRemainder(0, 0, 10), [4 * MiB, 10], [8 * MiB, 10], [12 * MiB, 10]]));
    b.freeFolio(0, 0);
    expect(b.freeBlocks()).toEqual(blocks([[0, 10], [4 * MiB, 10], [8 * MiB, 10], [12 * MiB, 10]]));
  });

  it("honours alignment", () => {
    const b = new BuddyAllocator();
    b.freeRange(0, 16 * MiB);
    expect(b.allocFolio(0)).toBe(0);
    expect(b.allocContig(3, 4)).toBe(0x4000);
    expect(b.allocContig(2, 2)).toBe(0x2000);
    expect(b.allocContig(1, 1)).toBe(0x1000);
    expect(b.allocContig(1, 3)).toBe(0x9000); // 0x7000 is taken, 0x8000 is not a multiple of 3 pages
    // Three max-order blocks' worth plus a bit, aligned to 4 MiB: must start at 4 MiB.
    expect(b.allocContig(2048 + 5, 1024)).toBe(4 * MiB);
    expect(b.freeBlocks().filter((x) => x.base >= 4 * MiB)).toEqual(
      blocks([[12 * MiB + 0x5000, 0], [12 * MiB + 0x6000, 1], ...splitRemainder(12 * MiB, 3, 10)]),
    );
  });

  it("fails when no run is long enough, even with enough free pages", () => {
    const b = new BuddyAllocator(2);
    b.freeRange(0, 0x10000); // 16 pages
    for (let i = 0; i < 16; i++) expect(b.allocFolio(0)).toBe(i * PAGE_SIZE);
    for (let i = 0; i < 16; i += 2) b.freeFolio(i * PAGE_SIZE, 0);
    expect(b.freeBytes).toBe(8 * PAGE_SIZE);
    expect(b.allocContig(2)).toBeUndefined();
    expect(b.allocFolio(1)).toBeUndefined();
    expect(b.allocContig(17)).toBeUndefined();
    expect(b.allocContig(1, 4)).toBe(0);
    expect(() => b.allocContig(0)).toThrow(BuddyError);
    expect(() => b.allocContig(1, 0)).toThrow(BuddyError);
  });
});

describe("BuddyAllocator: allocAt and errors", () => {
  it("claims a named range only when entirely free", () => {
    const b = new BuddyAllocator();
    b.freeRange(0, 8 * MiB);
    expect(b.allocAt(0x3000, 0x2000)).toBe(true);
    expect(b.freeBlocks()).toEqual(
      blocks([[0, 1], [0x2000, 0], [0x5000, 0], [0x6000, 1], ...splitRemainder(0, 3, 10), [4 * MiB, 10]]),
    );
    const before = b.freeBlocks();
    expect(b.allocAt(0x4000, 0x2000)).toBe(false);
    expect(b.allocAt(0x2000, 0x2000)).toBe(false);
    expect(b.allocAt(8 * MiB - 0x1000, 0x2000)).toBe(false);
    expect(b.allocAt(16 * MiB, 0x1000)).toBe(false);
    expect(b.freeBlocks()).toEqual(before);
    // Across many blocks, including the second max-order block.
    expect(b.allocAt(0x5000, 6 * MiB)).toBe(true);
    expect(b.allocatedBytes).toBe(0x2000 + 6 * MiB);
    expect(() => b.allocAt(0x1800, 0x1000)).toThrow(BuddyError);
  });

  it("rejects double frees, frees of free or unmanaged memory, and bad arguments", () => {
    const b = new BuddyAllocator();
    b.freeRange(0, 8 * MiB);
    const a = b.allocFolio(2)!;
    b.freeFolio(a, 2);
    expect(() => b.freeFolio(a, 2)).toThrow(BuddyError);
    const c = b.allocFolio(1)!;
    expect(() => b.freeFolio(c, 2)).toThrow(BuddyError); // upper half is free
    expect(() => b.freeContig(c, 3)).toThrow(BuddyError);
    expect(() => b.freeFolio(c + 0x1000, 1)).toThrow(BuddyError); // misaligned
    expect(() => b.freeFolio(16 * MiB, 0)).toThrow(BuddyError); // never managed
    expect(() => b.freeContig(8 * MiB - 0x1000, 2)).toThrow(BuddyError);
    expect(() => b.freeFolio(c, 11)).toThrow(BuddyError);
    expect(() => b.allocFolio(-1)).toThrow(BuddyError);
    const before = b.freeBlocks();
    expect(b.freeBlocks()).toEqual(before);
    b.freeContig(c, 2);
    expect(b.freeBlocks()).toEqual(blocks([[0, 10], [4 * MiB, 10]]));
  });

  it("allows freeing part of a contiguous allocation", () => {
    const b = new BuddyAllocator();
    b.freeRange(0, 4 * MiB);
    expect(b.allocContig(8)).toBe(0);
    b.freeContig(0x2000, 2);
    b.freeFolio(0x7000, 0);
    expect(b.freeBlocks()).toEqual(blocks([[0x2000, 1], [0x7000, 0], ...splitRemainder(0, 3, 10)]));
    expect(() => b.freeContig(0x1000, 2)).toThrow(BuddyError);
  });
});

/* ---- property test against a brute-force model ---- */

const NPAGES = 64;
const BASE = 0x40000000;
const MAXO = 3;
const pageAddr = (p: number): number => BASE + p * PAGE_SIZE;

type Op =
  | { t: "freeRange"; page: number; n: number }
  | { t: "alloc"; order: number }
  | { t: "contig"; n: number; align: number }
  | { t: "at"; page: number; n: number }
  | { t: "freeRec"; idx: number }
  | { t: "freeContig"; page: number; n: number }
  | { t: "freeFolio"; page: number; order: number };

const page = fc.integer({ min: 0, max: NPAGES - 1 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ t: fc.constant("freeRange" as const), page, n: fc.integer({ min: 1, max: NPAGES }) }), weight: 2 },
  { arbitrary: fc.record({ t: fc.constant("alloc" as const), order: fc.integer({ min: 0, max: MAXO }) }), weight: 5 },
  {
    arbitrary: fc.record({
      t: fc.constant("contig" as const),
      n: fc.integer({ min: 1, max: 24 }),
      align: fc.constantFrom(1, 2, 3, 4, 8, 16),
    }),
    weight: 3,
  },
  { arbitrary: fc.record({ t: fc.constant("at" as const), page, n: fc.integer({ min: 1, max: 16 }) }), weight: 2 },
  { arbitrary: fc.record({ t: fc.constant("freeRec" as const), idx: fc.nat() }), weight: 4 },
  { arbitrary: fc.record({ t: fc.constant("freeContig" as const), page, n: fc.integer({ min: 1, max: 16 }) }), weight: 2 },
  { arbitrary: fc.record({ t: fc.constant("freeFolio" as const), page, order: fc.integer({ min: 0, max: MAXO }) }), weight: 1 },
);

class Model {
  managed = new Set<number>();
  free = new Set<number>();
  /** Lowest start page whose pfn is a multiple of @align, of @n free pages; -1 if none. */
  lowestFit(n: number, align: number): number {
    for (let p = 0; p + n <= NPAGES; p++) {
      if ((BASE / PAGE_SIZE + p) % align !== 0) continue;
      let ok = true;
      for (let i = p; i < p + n; i++) if (!this.free.has(i)) ok = false;
      if (ok) return p;
    }
    return -1;
  }
  allFree(p: number, n: number): boolean {
    for (let i = p; i < p + n; i++) if (!this.free.has(i)) return false;
    return true;
  }
  allAllocated(p: number, n: number): boolean {
    for (let i = p; i < p + n; i++) if (!this.managed.has(i) || this.free.has(i)) return false;
    return true;
  }
  allUnmanaged(p: number, n: number): boolean {
    for (let i = p; i < p + n; i++) if (this.managed.has(i)) return false;
    return true;
  }
}

function checkAgainstModel(b: BuddyAllocator, m: Model, owner: Map<number, number>): void {
  const list = b.freeBlocks();
  const seen = new Set<number>();
  const byOrder = new Set<string>();
  let prevEnd = -1;
  for (const { base, order } of list) {
    const size = PAGE_SIZE * 2 ** order;
    if (!(order >= 0)) expect(order).toBeGreaterThanOrEqual(0);
    if (!(order <= MAXO)) expect(order).toBeLessThanOrEqual(MAXO);
    expectBe(base % size, 0);
    if (!(base >= prevEnd)) expect(base).toBeGreaterThanOrEqual(prevEnd); // ascending, disjoint
    prevEnd = base + size;
    for (let a = base; a < base + size; a += PAGE_SIZE) {
      const p = (a - BASE) / PAGE_SIZE;
      expectBe(p >= 0 && p < NPAGES, true);
      expectBe(seen.has(p), false);
      expectBe(owner.has(p), false); // no free block overlaps an allocation
      seen.add(p);
    }
    byOrder.add(`${order}:${base}`);
  }
  // Maximally merged: no two buddies free at the same order.
  for (const { base, order } of list) {
    if (order === MAXO) continue;
    const size = PAGE_SIZE * 2 ** order;
    const buddy = (base / size) % 2 === 0 ? base + size : base - size;
    expectBe(byOrder.has(`${order}:${buddy}`), false);
  }
  expectEqual([...seen].sort((x, y) => x - y), [...m.free].sort((x, y) => x - y));
  expectBe(b.freeBytes, m.free.size * PAGE_SIZE);
  expectBe(b.allocatedBytes, (m.managed.size - m.free.size) * PAGE_SIZE);
  let total = 0;
  for (let o = 0; o <= MAXO; o++) total += b.nrFreeBlocks(o);
  expectBe(total, list.length);
}

describe("BuddyAllocator: model-based property", () => {
  // With lateCheck the state is compared only at the end, so runs of allocFolio
  // leave blocks on its front stacks between calls (checks flush them).
  test.prop([fc.boolean(), fc.array(opArb, { maxLength: 80 }), fc.boolean()], { numRuns: 400 })(
    "matches a page-set model",
    (startFull, ops, lateCheck) => {
      const b = new BuddyAllocator(MAXO);
      const m = new Model();
      /** page -> allocation id, for pages handed out and not yet freed */
      const owner = new Map<number, number>();
      const recs: { id: number; page: number; n: number; order?: number }[] = [];
      let nextId = 0;

      const expectThrowUnchanged = (f: () => void): void => {
        const before = b.freeBlocks();
        let thrown: unknown;
        try {
          f();
        } catch (e) {
          thrown = e;
        }
        // expect only on a failure, replaying what f did (f is not called twice).
        if (!(thrown instanceof BuddyError)) {
          expect(() => {
            if (thrown !== undefined) throw thrown;
          }).toThrow(BuddyError);
        }
        expectEqual(b.freeBlocks(), before);
      };
      const allocated = (p: number, n: number, order?: number): void => {
        const id = nextId++;
        for (let i = p; i < p + n; i++) {
          expectBe(owner.has(i), false); // allocations never overlap
          expectBe(m.free.has(i), true);
          owner.set(i, id);
          m.free.delete(i);
        }
        recs.push(order === undefined ? { id, page: p, n } : { id, page: p, n, order });
      };
      const freed = (p: number, n: number): void => {
        for (let i = p; i < p + n; i++) {
          owner.delete(i);
          m.free.add(i);
        }
      };

      const all: Op[] = startFull ? [{ t: "freeRange", page: 0, n: NPAGES }, ...ops] : ops;
      for (const op of all) {
        switch (op.t) {
          case "freeRange": {
            const n = Math.min(op.n, NPAGES - op.page);
            if (m.allUnmanaged(op.page, n)) {
              b.freeRange(pageAddr(op.page), n * PAGE_SIZE);
              for (let i = op.page; i < op.page + n; i++) {
                m.managed.add(i);
                m.free.add(i);
              }
            } else {
              expectThrowUnchanged(() => b.freeRange(pageAddr(op.page), n * PAGE_SIZE));
            }
            break;
          }
          case "alloc": {
            const n = 2 ** op.order;
            const want = m.lowestFit(n, n);
            const got = b.allocFolio(op.order);
            expectBe(got, want < 0 ? undefined : pageAddr(want));
            if (got !== undefined) allocated(want, n, op.order);
            break;
          }
          case "contig": {
            const want = m.lowestFit(op.n, op.align);
            const got = b.allocContig(op.n, op.align);
            expectBe(got, want < 0 ? undefined : pageAddr(want));
            if (got !== undefined) allocated(want, op.n);
            break;
          }
          case "at": {
            const n = Math.min(op.n, NPAGES - op.page);
            const want = m.allFree(op.page, n);
            const before = b.freeBlocks();
            expectBe(b.allocAt(pageAddr(op.page), n * PAGE_SIZE), want);
            if (want) allocated(op.page, n);
            else expectEqual(b.freeBlocks(), before);
            break;
          }
          case "freeRec": {
            if (recs.length === 0) break;
            const [r] = recs.splice(op.idx % recs.length, 1);
            if (!r) break;
            let intact = true;
            for (let i = r.page; i < r.page + r.n; i++) if (owner.get(i) !== r.id) intact = false;
            if (!intact) break; // partly freed by a freeContig op meanwhile
            if (r.order !== undefined) b.freeFolio(pageAddr(r.page), r.order);
            else b.freeContig(pageAddr(r.page), r.n);
            freed(r.page, r.n);
            break;
          }
          case "freeContig": {
            const n = Math.min(op.n, NPAGES - op.page);
            if (m.allAllocated(op.page, n)) {
              b.freeContig(pageAddr(op.page), n);
              freed(op.page, n);
            } else {
              expectThrowUnchanged(() => b.freeContig(pageAddr(op.page), n));
            }
            break;
          }
          case "freeFolio": {
            const n = 2 ** op.order;
            const p = op.page - (op.page % n);
            if (m.allAllocated(p, n)) {
              b.freeFolio(pageAddr(p), op.order);
              freed(p, n);
            } else {
              expectThrowUnchanged(() => b.freeFolio(pageAddr(p), op.order));
            }
            if (op.page !== p) expectThrowUnchanged(() => b.freeFolio(pageAddr(op.page), op.order));
            break;
          }
        }
        if (!lateCheck) checkAgainstModel(b, m, owner);
      }
      checkAgainstModel(b, m, owner);
    },
  );
});
