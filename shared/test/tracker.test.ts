import { fc, test } from "./fc-prop.js";
import { expectBe, expectEqual } from "./fast-expect.js";
import { describe, expect, it } from "vitest";
import { KHO_DATA_FOLIO, KHO_DATA_PHYS, khoDataFolio } from "../src/abi/ranges.js";
import { PAGE_SIZE } from "../src/abi/page.js";
import { KHO_TRACK_MAX_ORDER, KhoMemTrack, KhoTrackError, khoFolioRuns, type KhoMemRange } from "../src/kho/track.js";

const P = PAGE_SIZE;
const F0 = khoDataFolio(0);
const F1 = khoDataFolio(1);
const F2 = khoDataFolio(2);

function list(t: KhoMemTrack): KhoMemRange[] {
  return [...t.ranges()];
}

function r(startPage: number, pages: number, data: number): KhoMemRange {
  return { start: startPage * P, size: pages * P, data };
}

function trackError(fn: () => void): KhoTrackError {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof KhoTrackError)) expect(e).toBeInstanceOf(KhoTrackError);
    return e as KhoTrackError;
  }
  throw new Error("expected a KhoTrackError");
}

/** Structural invariants every tracker state must satisfy. */
function checkInvariants(t: KhoMemTrack): void {
  const rs = list(t);
  let total = 0;
  for (let i = 0; i < rs.length; i++) {
    const a = rs[i]!;
    if (!(a.size > 0)) expect(a.size).toBeGreaterThan(0);
    expectBe(a.start % P, 0);
    expectBe(a.size % P, 0);
    total += a.size;
    if (i > 0) {
      const prev = rs[i - 1]!;
      const prevEnd = prev.start + prev.size;
      if (!(a.start >= prevEnd)) expect(a.start).toBeGreaterThanOrEqual(prevEnd); // sorted, non-overlapping
      if (a.start === prevEnd && Object.is(a.data, prev.data)) expect(a.data).not.toBe(prev.data); // maximal
    }
  }
  expectBe(t.count, rs.length);
  expectBe(t.totalBytes, total);
  // The typed-array views (tree part, then tail) list exactly the same ranges.
  const tab = t.rangeTable();
  expectBe(tab.count, rs.length);
  expectEqual(
    rs.map((_, i) => ({ start: tab.start[i], size: tab.size[i], data: tab.data[i] })),
    rs,
  );
  const parts = t.rangeParts();
  expectBe(
    parts.reduce((n, p) => n + p.count, 0),
    rs.length,
  );
}

describe("KhoMemTrack coalescing", () => {
  it("merges adjacent ranges with equal data, on either side", () => {
    const t = new KhoMemTrack();
    t.khoPreservePhys(4 * P, P);
    t.khoPreservePhys(6 * P, P);
    t.khoPreservePhys(5 * P, P); // fills the hole: left and right merge
    t.khoPreservePhys(3 * P, P); // left of the merged range
    expect(list(t)).toEqual([r(3, 4, KHO_DATA_PHYS)]);
    expect(t.totalBytes).toBe(4 * P);
  });

  it("keeps adjacent ranges with different data apart", () => {
    const t = new KhoMemTrack();
    t.khoPreserveFolio(0, 0);
    t.khoPreserveFolio(2 * P, 1);
    t.khoPreserveFolio(P, 0);
    expect(list(t)).toEqual([r(0, 2, F0), r(2, 2, F1)]);
  });

  it("does not merge a phys range with an adjacent order-0 folio", () => {
    const t = new KhoMemTrack();
    t.khoPreservePhys(0, P);
    t.khoPreserveFolio(P, 0);
    t.khoPreservePhys(2 * P, P);
    expect(list(t)).toEqual([r(0, 1, KHO_DATA_PHYS), r(1, 1, F0), r(2, 1, KHO_DATA_PHYS)]);
  });

  it("merges a folio run only with folios of the same order", () => {
    const t = new KhoMemTrack();
    t.khoPreserveFolio(0, 1);
    t.khoPreserveFolio(2 * P, 1);
    t.khoPreserveFolio(4 * P, 2);
    expect(list(t)).toEqual([r(0, 4, F1), r(4, 4, F2)]);
  });

  it("preserving the same range twice is harmless", () => {
    const t = new KhoMemTrack();
    t.khoPreservePhys(8 * P, 4 * P);
    t.khoPreservePhys(8 * P, 4 * P);
    expect(list(t)).toEqual([r(8, 4, KHO_DATA_PHYS)]);
    expect(t.totalBytes).toBe(4 * P);
  });

  it("re-preserving part of a range with the same data gives the union", () => {
    const t = new KhoMemTrack();
    t.khoPreservePhys(8 * P, 4 * P);
    t.khoPreservePhys(10 * P, 4 * P); // overlaps the tail, extends it
    t.khoPreservePhys(6 * P, 3 * P); // overlaps the head, extends it
    t.khoPreservePhys(9 * P, P); // inside
    expect(list(t)).toEqual([r(6, 8, KHO_DATA_PHYS)]);
    expect(t.totalBytes).toBe(8 * P);
  });

  it("a preserve covering several equal-data ranges and their gaps merges them all", () => {
    const t = new KhoMemTrack();
    for (const p of [1, 3, 5, 7]) t.khoPreservePhys(p * P, P);
    t.khoPreservePhys(0, 9 * P);
    expect(list(t)).toEqual([r(0, 9, KHO_DATA_PHYS)]);
    expect(t.totalBytes).toBe(9 * P);
  });

  it("merges with a right neighbour when an ascending run reaches it", () => {
    // Exercises the fast path's "nothing to the right" guard.
    const t = new KhoMemTrack();
    t.khoPreserveFolio(10 * P, 0);
    for (let p = 0; p < 10; p++) t.khoPreserveFolio(p * P, 0);
    expect(list(t)).toEqual([r(0, 11, F0)]);
  });

  it("an ascending run ending at a different-data neighbour stays apart from it", () => {
    const t = new KhoMemTrack();
    t.khoPreservePhys(10 * P, P);
    for (let p = 0; p < 10; p++) t.khoPreserveFolio(p * P, 0);
    t.khoPreserveFolio(12 * P, 0);
    expect(list(t)).toEqual([r(0, 10, F0), r(10, 1, KHO_DATA_PHYS), r(12, 1, F0)]);
  });
});

describe("KhoMemTrack conflicts and bad arguments", () => {
  it("overlapping a range with different data throws EEXIST naming both ranges and changes nothing", () => {
    const t = new KhoMemTrack();
    t.khoPreservePhys(0x10000, 0x4000);
    const before = list(t);
    const e = trackError(() => t.khoPreserveFolio(0x12000, 0));
    expect(e.code).toBe("EEXIST");
    expect(e.message).toContain("[0x12000, 0x13000) data 0x100");
    expect(e.message).toContain("[0x10000, 0x14000) data 0x0");
    expect(list(t)).toEqual(before);
    expect(t.totalBytes).toBe(0x4000);
  });

  it("a conflict anywhere in a multi-range preserve changes nothing", () => {
    const t = new KhoMemTrack();
    t.khoPreservePhys(0, P);
    t.khoPreserveFolio(4 * P, 0);
    const before = list(t);
    expect(trackError(() => t.khoPreservePhys(0, 8 * P)).code).toBe("EEXIST");
    expect(list(t)).toEqual(before);
  });

  it.each([
    ["unaligned start", 0x1001, P],
    ["unaligned size", 0x1000, 0x800],
    ["zero size", 0x1000, 0],
    ["negative size", 0x1000, -P],
    ["negative start", -P, P],
    ["unsafe start", 2 ** 53, P],
    ["end past 2^53", 2 ** 53 - P, 2 * P],
    ["fractional start", 0.5, P],
    ["NaN size", 0, NaN],
  ])("rejects a range with %s as EINVAL", (_name, addr, size) => {
    const t = new KhoMemTrack();
    expect(trackError(() => t.khoPreservePhys(addr, size)).code).toBe("EINVAL");
    expect(trackError(() => t.khoUnpreservePhys(addr, size)).code).toBe("EINVAL");
    expect(t.count).toBe(0);
  });

  it("rejects data with bits outside KHO_DATA_VALID_MASK", () => {
    const t = new KhoMemTrack();
    expect(trackError(() => t.khoPreserve(0, P, 0x200)).code).toBe("EINVAL");
    expect(trackError(() => t.khoPreserve(0, P, 2 ** 40)).code).toBe("EINVAL");
    expect(trackError(() => t.khoPreserve(0, P, -1)).code).toBe("EINVAL");
  });

  it("rejects a folio not aligned to its size, and a bad order", () => {
    const t = new KhoMemTrack();
    expect(trackError(() => t.khoPreserveFolio(P, 1)).code).toBe("EINVAL");
    expect(trackError(() => t.khoPreserveFolio(0, -1)).code).toBe("EINVAL");
    expect(trackError(() => t.khoPreserveFolio(0, 1.5)).code).toBe("EINVAL");
    expect(trackError(() => t.khoPreserveFolio(0, KHO_TRACK_MAX_ORDER + 1)).code).toBe("EINVAL");
    expect(trackError(() => t.khoPreserveFolio(-2 * P, 1)).code).toBe("EINVAL");
    // A generic preserve with folio data must also be whole aligned folios.
    expect(trackError(() => t.khoPreserve(0, 3 * P, khoDataFolio(1))).code).toBe("EINVAL");
    expect(t.count).toBe(0);
    t.khoPreserveFolio(2 ** 30, 18); // 1 GiB folio, size beyond 32-bit shifts
    expect(list(t)).toEqual([{ start: 2 ** 30, size: 2 ** 30, data: KHO_DATA_FOLIO | 18 }]);
  });
});

describe("KhoMemTrack unpreserve", () => {
  it("splits a range and keeps its data on both sides", () => {
    const t = new KhoMemTrack();
    t.khoPreserveFolio(0, 0);
    t.khoPreserveFolio(P, 0);
    t.khoPreserveFolio(2 * P, 0);
    t.khoUnpreserveFolio(P, 0);
    expect(list(t)).toEqual([r(0, 1, F0), r(2, 1, F0)]);
    expect(t.totalBytes).toBe(2 * P);
  });

  it("removes the intersection with every range it covers", () => {
    const t = new KhoMemTrack();
    t.khoPreservePhys(0, 4 * P);
    t.khoPreserveFolio(4 * P, 0);
    t.khoPreservePhys(8 * P, 4 * P);
    t.khoUnpreserve(2 * P, 8 * P);
    expect(list(t)).toEqual([r(0, 2, KHO_DATA_PHYS), r(10, 2, KHO_DATA_PHYS)]);
    expect(t.totalBytes).toBe(4 * P);
  });

  it("unpreserving what is not preserved is harmless", () => {
    const t = new KhoMemTrack();
    t.khoUnpreservePhys(0, 16 * P);
    t.khoPreservePhys(4 * P, P);
    t.khoUnpreservePhys(5 * P, 4 * P);
    t.khoUnpreservePhys(0, 4 * P);
    expect(list(t)).toEqual([r(4, 1, KHO_DATA_PHYS)]);
  });

  it("refuses to cut a folio run inside a folio and changes nothing", () => {
    const t = new KhoMemTrack();
    t.khoPreserveFolio(0, 2);
    t.khoPreserveFolio(4 * P, 2);
    expect(trackError(() => t.khoUnpreservePhys(P, P)).code).toBe("EINVAL");
    expect(trackError(() => t.khoUnpreservePhys(4 * P, 2 * P)).code).toBe("EINVAL");
    expect(list(t)).toEqual([r(0, 8, F2)]);
    t.khoUnpreserveFolio(4 * P, 2); // at a folio boundary: fine
    expect(list(t)).toEqual([r(0, 4, F2)]);
  });

  it("unpreserve then preserve again restores the merged range", () => {
    const t = new KhoMemTrack();
    t.khoPreservePhys(0, 8 * P);
    t.khoUnpreservePhys(3 * P, P);
    t.khoPreservePhys(3 * P, P);
    expect(list(t)).toEqual([r(0, 8, KHO_DATA_PHYS)]);
  });
});

describe("KhoMemTrack lookups", () => {
  it("rangeAt, intersects and clearUntil over a long tail with ranges below it, asked in ascending, descending and scattered order, answer as a page model does", () => {
    const t = new KhoMemTrack();
    const model = new Map<number, number>();
    const keep = (page: number, pages: number, data: number): void => {
      t.khoPreserve(page * P, pages * P, data);
      for (let q = page; q < page + pages; q++) model.set(q, data);
    };
    // The tail: isolated folios, adjacent ranges with other data (a range starting where the last ends), longer runs.
    let page = 1000;
    for (let i = 0; i < 400; i++) {
      const kind = i % 5;
      if (kind === 0) page += 1 + (i % 3);
      keep(page, kind === 3 ? 3 : 1, kind === 2 ? KHO_DATA_PHYS : F0);
      page += kind === 3 ? 3 : 1;
    }
    // Below the tail, out of order: the tree.
    keep(900, 2, KHO_DATA_PHYS);
    keep(10, 5, F0);
    const pages = page + 5;
    const at = (q: number, off: number): void => expectBe(t.rangeAt(q * P + off)?.data, model.get(q));
    const hits = (q: number, n: number, trim: number): void => {
      let any = false;
      for (let k = q; k < q + n; k++) any ||= model.has(k);
      expectBe(t.intersects(q * P + trim, n * P - 2 * trim), any);
    };
    // clearUntil(addr): addr when preserved, else the first preserved byte above it (Infinity past the last range).
    const clear = (q: number, off: number): void => {
      let k = q;
      if (!model.has(q)) {
        k = q + 1;
        while (k < pages && !model.has(k)) k++;
      }
      expectBe(t.clearUntil(q * P + off), model.has(q) ? q * P + off : k < pages ? k * P : Infinity);
    };
    // One kind of question per pass, so that each follows the one before (the tail search starts from its last answer).
    const orders = [
      Array.from({ length: pages }, (_, q) => q),
      Array.from({ length: pages }, (_, q) => pages - 1 - q),
      Array.from({ length: 3000 }, (_, i) => (7 + i * 1103) % pages),
    ];
    for (const order of orders) {
      for (const off of [0, P - 1]) for (const q of order) at(q, off);
      for (const off of [0, P - 1]) for (const q of order) clear(q, off);
      for (const [n, trim] of [[1, 0], [2, 1], [7, 0], [7, 1]] as const) for (const q of order) hits(q, n, trim);
    }
  });

  it("rangeAt and intersects answer for preserved and free addresses", () => {
    const t = new KhoMemTrack();
    t.khoPreservePhys(4 * P, 2 * P);
    expect(t.rangeAt(5 * P + 7)).toEqual(r(4, 2, KHO_DATA_PHYS));
    expect(t.rangeAt(6 * P)).toBeUndefined();
    expect(t.rangeAt(0)).toBeUndefined();
    expect(t.intersects(0, 4 * P)).toBe(false);
    expect(t.intersects(0, 4 * P + 1)).toBe(true);
    expect(t.intersects(5 * P, P)).toBe(true);
    expect(t.intersects(6 * P, 10 * P)).toBe(false);
  });
});

/*
 * The hot extend moves only the last tail range's end, and an append stores
 * no size for the range it adds; the stored size catches up in sync(), and
 * the total leaves the last tail range out until it is closed. Each reader
 * below runs on a tracker whose last range was just extended and never
 * listed, so a reader that skips sync() sees one page instead of three.
 */
describe("KhoMemTrack readers after an unlisted extend", () => {
  const extended = (): KhoMemTrack => {
    const t = new KhoMemTrack();
    for (const page of [4, 5, 6]) t.khoPreserveFolio(page * P, 0);
    return t;
  };
  it("totalBytes", () => expect(extended().totalBytes).toBe(3 * P));
  it("rangeTable after isolated appends: every size stored, the last one too", () => {
    const t = new KhoMemTrack();
    for (const page of [4, 6, 8]) t.khoPreserveFolio(page * P, 0);
    expect([[...t.rangeTable().size], t.totalBytes]).toEqual([[P, P, P], 3 * P]);
  });
  it("totalBytes after the tail spills into the tree: the hot range counted once", () => {
    const t = new KhoMemTrack();
    for (const page of [4, 5, 8, 9, 10]) t.khoPreserveFolio(page * P, 0);
    t.khoPreserveFolio(3 * P, 0); // below the tail and touching it: spills
    expect([list(t), t.totalBytes]).toEqual([[r(3, 3, F0), r(8, 3, F0)], 6 * P]);
  });
  it("rangeAt", () => expect(extended().rangeAt(6 * P + 1)).toEqual(r(4, 3, F0)));
  it("intersects", () => expect(extended().intersects(6 * P, P)).toBe(true));
  it("rangeTable", () => expect([...extended().rangeTable().size]).toEqual([3 * P]));
  it("forEachRange", () => {
    const sizes: number[] = [];
    extended().forEachRange((_s, size) => sizes.push(size));
    expect(sizes).toEqual([3 * P]);
  });
  it("ranges", () => expect(list(extended())).toEqual([r(4, 3, F0)]));
  it("a new tail range after it (append)", () => {
    const t = extended();
    t.khoPreserveFolio(9 * P, 0);
    expect([list(t), t.totalBytes]).toEqual([[r(4, 3, F0), r(9, 1, F0)], 4 * P]);
  });
  it("a preserve below the tail that touches it (spill into the tree)", () => {
    const t = extended();
    t.khoPreserveFolio(3 * P, 0);
    expect([list(t), t.totalBytes]).toEqual([[r(3, 4, F0)], 4 * P]);
  });
  it("an unpreserve inside the extended part", () => {
    const t = extended();
    t.khoUnpreserveFolio(5 * P, 0);
    expect([list(t), t.totalBytes]).toEqual([[r(4, 1, F0), r(6, 1, F0)], 2 * P]);
  });
});

describe("KhoMemTrack scale", () => {
  it("48 GiB of ascending order-0 folios coalesce into one range quickly", () => {
    const t = new KhoMemTrack();
    const n = (48 * 2 ** 30) / P; // 12,582,912 folios
    const base = 2 ** 32;
    for (let i = 0; i < n; i++) t.khoPreserveFolio(base + i * P, 0);
    expect(t.count).toBe(1);
    expect(list(t)).toEqual([{ start: base, size: 48 * 2 ** 30, data: F0 }]);
    expect(t.totalBytes).toBe(48 * 2 ** 30);
    // Speed is the bench's business (npm run bench, workload c); here only the result.
  });

  it("a few out-of-order preserves below a long ascending tail keep the tail and list in order", () => {
    const t = new KhoMemTrack();
    t.reserve(khoFolioRuns(new Float64Array([0, 2 * P, 4 * P]), new Uint8Array(3), 0, 3));
    for (let i = 100; i < 1100; i++) t.khoPreserveFolio(2 * i * P, 0);
    t.khoPreservePhys(10 * P, 3 * P); // below the tail: the tree takes it
    t.khoPreserveFolio(2 * P, 1); // below too
    expect(t.rangeParts().map((p) => p.count)).toEqual([2, 1000]);
    t.khoPreserveFolio(201 * P, 0); // fills the gap between two tail ranges: the tail spills, three ranges merge
    expect(t.count).toBe(2 + 1000 - 1);
    expect(t.rangeAt(201 * P)).toEqual({ start: 200 * P, size: 3 * P, data: F0 });
    expect(trackError(() => t.khoPreservePhys(400 * P, P)).code).toBe("EEXIST");
    t.khoPreserveFolio(5000 * P, 0); // past everything: a new tail
    expect(t.rangeParts().map((p) => p.count)).toEqual([1001, 1]);
    expect(t.intersects(4999 * P, P)).toBe(false);
    expect(t.intersects(4999 * P, 2 * P)).toBe(true);
    checkInvariants(t);
  });

  it("khoFolioRuns counts maximal runs of adjacent equal-order folios", () => {
    const phys = new Float64Array([0, P, 2 * P, 4 * P, 6 * P, 8 * P, 9 * P]);
    const order = new Uint8Array([0, 0, 0, 1, 1, 0, 0]);
    // [0,3) order 0 | 4 order 1, 6 order 1 adjacent | 8, 9 adjacent order 0
    expect(khoFolioRuns(phys, order, 0, 7)).toBe(3);
    expect(khoFolioRuns(phys, order, 3, 5)).toBe(1);
    expect(khoFolioRuns(phys, order, 0, 0)).toBe(0);
  });

  it("1M isolated order-0 folios are kept as 1M ranges", () => {
    const t = new KhoMemTrack();
    const n = 1_000_000;
    for (let i = 0; i < n; i++) t.khoPreserveFolio(2 * i * P, 0);
    expect(t.count).toBe(n);
    expect(t.totalBytes).toBe(n * P);
    let i = 0;
    for (const x of t.ranges()) {
      if (x.start !== 2 * i * P || x.size !== P || x.data !== F0) throw new Error(`range ${i} is wrong: ${JSON.stringify(x)}`);
      i++;
    }
    expect(i).toBe(n);
  });
});

/*
 * Model-based property: a Map page -> data over a small address space,
 * driven by the same operations, must agree with the tracker after each step.
 */
const SPACE_PAGES = 64;
const DATAS = [KHO_DATA_PHYS, F0, F1, F2];

type Op = { kind: "preserve"; page: number; pages: number; data: number } | { kind: "unpreserve"; page: number; pages: number };

function folioPages(data: number): number {
  return data === F1 ? 2 : data === F2 ? 4 : 1;
}

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc
    .record({ page: fc.nat(SPACE_PAGES - 1), pages: fc.integer({ min: 1, max: 12 }), d: fc.nat(DATAS.length - 1) })
    .map(({ page, pages, d }) => {
      const data = DATAS[d]!;
      const fp = folioPages(data);
      const start = Math.floor(page / fp) * fp;
      const n = Math.min(Math.ceil(pages / fp) * fp, SPACE_PAGES - start);
      return { kind: "preserve" as const, page: start, pages: n, data };
    }),
  fc
    .record({ page: fc.nat(SPACE_PAGES - 1), pages: fc.integer({ min: 1, max: 12 }) })
    .map(({ page, pages }) => ({ kind: "unpreserve" as const, page, pages: Math.min(pages, SPACE_PAGES - page) })),
  // Ascending runs of single folios, the fast path's case.
  fc
    .record({ page: fc.nat(SPACE_PAGES - 1), d: fc.nat(1) })
    .map(({ page, d }) => ({ kind: "preserve" as const, page, pages: 1, data: DATAS[d]! })),
);

function modelRuns(model: Map<number, number>): KhoMemRange[] {
  const out: KhoMemRange[] = [];
  for (let p = 0; p < SPACE_PAGES; p++) {
    const d = model.get(p);
    if (d === undefined) continue;
    const last = out[out.length - 1];
    if (last && last.start + last.size === p * P && last.data === d) last.size += P;
    else out.push({ start: p * P, size: P, data: d });
  }
  return out;
}

/* Would unpreserving [page, page + pages) cut a folio of order > 0 in the model? */
function modelCutsFolio(model: Map<number, number>, page: number, pages: number): boolean {
  for (const cut of [page, page + pages]) {
    const a = model.get(cut - 1);
    const b = model.get(cut);
    if (a !== undefined && a === b && (a & KHO_DATA_FOLIO) !== 0 && cut % folioPages(a) !== 0) return true;
  }
  return false;
}

describe("KhoMemTrack against a page model", () => {
  test.prop([fc.array(opArb, { minLength: 1, maxLength: 60 })], { numRuns: 300 })(
    "ranges equal the model's maximal runs of equal data after every operation; conflicts throw and change nothing",
    (ops) => {
      const t = new KhoMemTrack();
      const model = new Map<number, number>();
      for (const op of ops) {
        const before = list(t);
        if (op.kind === "preserve") {
          let conflict = false;
          for (let p = op.page; p < op.page + op.pages; p++) {
            const d = model.get(p);
            if (d !== undefined && d !== op.data) conflict = true;
          }
          if (conflict) {
            expectBe(trackError(() => t.khoPreserve(op.page * P, op.pages * P, op.data)).code, "EEXIST");
            expectEqual(list(t), before);
          } else {
            t.khoPreserve(op.page * P, op.pages * P, op.data);
            for (let p = op.page; p < op.page + op.pages; p++) model.set(p, op.data);
          }
        } else if (modelCutsFolio(model, op.page, op.pages)) {
          expectBe(trackError(() => t.khoUnpreserve(op.page * P, op.pages * P)).code, "EINVAL");
          expectEqual(list(t), before);
        } else {
          t.khoUnpreserve(op.page * P, op.pages * P);
          for (let p = op.page; p < op.page + op.pages; p++) model.delete(p);
        }
        expectEqual(list(t), modelRuns(model));
        checkInvariants(t);
      }
      for (let p = 0; p < SPACE_PAGES; p++) {
        const d = model.get(p);
        expectBe(t.rangeAt(p * P)?.data, d);
        for (const n of [1, 3]) {
          let any = false;
          for (let q = p; q < p + n; q++) any ||= model.has(q);
          expectBe(t.intersects(p * P, n * P), any);
        }
      }
    },
  );
});
