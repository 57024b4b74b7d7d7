/*
 * kho_test's run table (kho-test-v2, abi/kho-test.ts): the run encoding
 * round-trips any unfilled folio table (fast-check), is canonical (the
 * decoded table encodes to the same bytes, a column table with kills to the
 * runs of its live entries), and every malformed run is refused with one
 * error naming the entry and its offset. The run-based restore
 * (in/restore.ts khoRestoreFolioRuns) restores and refuses exactly what
 * kho_restore_folio() per folio does, on the same preserved ranges.
 */
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import {
  FolioTable,
  KhoTestError,
  KHO_TEST_COMPAT_RUNS,
  buildKhoTestFdt,
  decodeKhoTestInfo,
  encodeKhoTestInfo,
  khoTestHeaderInfoSize,
  parseKhoTestFdt,
  type KhoTestRange,
} from "../src/abi/kho-test.js";
import { PAGE_SIZE } from "../src/abi/page.js";
import { khoDataFolio } from "../src/abi/ranges.js";
import { KhoRestore, KhoRestoreError, khoRangeTableOf, khoRestoreFolioRuns } from "../src/kho/in/restore.js";
import type { KhoMemRange } from "../src/kho/track.js";
import { expectBe, expectEqual, withoutStacks } from "./fast-expect.js";

const RAM = 2 ** 36;
const RANGES: KhoTestRange[] = [{ start: 0x5000_0000, size: 0x3000, csum: 0n }];

/** Folio groups: @count folios of @order, each group at a fresh aligned address, contiguous or with gaps of one folio. */
const groups = fc.array(fc.record({ order: fc.integer({ min: 0, max: 10 }), count: fc.integer({ min: 1, max: 40 }), gap: fc.boolean(), slot: fc.integer({ min: 1, max: 4000 }) }), { minLength: 1, maxLength: 12 });

/* A table built with push() and pushRun() as the workload does, and the folios it holds, in order. */
function build(gs: { order: number; count: number; gap: boolean; slot: number }[]): { t: FolioTable; folios: [number, number][] } {
  const folios: [number, number][] = [];
  const t = new FolioTable(gs.reduce((n, g) => n + g.count, 0));
  let at = 0x1_0000_0000;
  gs.forEach((g, k) => {
    const size = PAGE_SIZE * 2 ** g.order;
    // Ascending, aligned, sometimes right after the previous group (merged into its run when the order matches).
    at = Math.ceil((g.slot % 3 === 0 ? at : at + g.slot * size) / size) * size;
    const stride = g.gap ? 2 * size : size;
    if (k % 2 === 0) t.pushRun(at, stride, g.order, g.count);
    else for (let j = 0; j < g.count; j++) t.push(at + j * stride, g.order, 0n);
    for (let j = 0; j < g.count; j++) folios.push([at + j * stride, g.order]);
    at += g.count * stride;
  });
  return { t, folios };
}

const listOf = (t: FolioTable): [number, number][] => [...t.entries()].map((f) => [f.phys, f.order]);

describe("run encoding", () => {
  test("round trip: decode(encode(table)) lists the same folios, and encodes to the same bytes", () => {
    fc.assert(
      fc.property(groups, (gs) => {
        const { t, folios } = build(gs);
        expectBe(t.isRuns, true);
        const blob = encodeKhoTestInfo(t, RANGES, true);
        const nrRuns = t.liveRuns().n;
        expectBe(blob.length, khoTestHeaderInfoSize({ nrFolios: folios.length, nrRanges: 1, nrRuns }));
        const d = decodeKhoTestInfo(blob, folios.length, 1, nrRuns, RAM);
        expectEqual(listOf(d.folios), folios);
        expect(d.ranges).toEqual(RANGES);
        expect(encodeKhoTestInfo(d.folios, RANGES, true)).toEqual(blob);
        // The v1 form of the same table lists the same folios.
        expectEqual(listOf(decodeKhoTestInfo(encodeKhoTestInfo(t, RANGES), folios.length, 1).folios), folios);
      }),
      { numRuns: 200 },
    );
  });

  test("a column table with killed entries encodes as the runs of its live entries", () => {
    fc.assert(
      fc.property(groups, fc.array(fc.nat(), { maxLength: 5 }), (gs, kills) => {
        const { t, folios } = build(gs);
        const dead = new Set(kills.map((k) => k % folios.length));
        for (const i of dead) t.kill(i);
        expectBe(t.isRuns, dead.size === 0);
        const live = folios.filter((_, i) => !dead.has(i));
        fc.pre(live.length > 0);
        const blob = encodeKhoTestInfo(t, [], true);
        expectEqual(listOf(decodeKhoTestInfo(blob, live.length, 0, t.liveRuns().n, RAM).folios), live);
      }),
      { numRuns: 100 },
    );
  });

  test("48 GiB of contiguous order-0 folios is one 16-byte run", () => {
    const t = new FolioTable(12582912);
    t.pushRun(0x4000_0000, PAGE_SIZE, 0, 12582912);
    const blob = encodeKhoTestInfo(t, [], true);
    expect(blob.length).toBe(16);
    const d = decodeKhoTestInfo(blob, 12582912, 0, 1, 64 * 2 ** 30);
    expect([d.folios.length, d.folios.live, d.folios.isRuns]).toEqual([12582912, 12582912, true]);
    expect(d.folios.get(12582911)).toEqual({ phys: 0x4000_0000 + 12582911 * PAGE_SIZE, order: 0, csum: 0n });
  });

  test("a filled folio cannot be written as runs", () => {
    const t = new FolioTable(2);
    t.push(0x1000, 0, 5n);
    expect(() => encodeKhoTestInfo(t, [], true)).toThrow(RangeError);
  });

  test("the sub-tree says kho-test-v2 and nr_runs, and parses back", () => {
    const h = { nrFolios: 100, nrRanges: 0, nrRuns: 3, infoPhys: 0x1000n, csum: 7n, unfilled: true };
    const fdt = buildKhoTestFdt(h);
    expect(new TextDecoder().decode(fdt)).toContain(KHO_TEST_COMPAT_RUNS);
    expect(parseKhoTestFdt(fdt)).toEqual(h);
    expect(() => parseKhoTestFdt(buildKhoTestFdt({ ...h, nrRuns: 101 }))).toThrow(/nr_runs: 101 runs cannot list nr_folios 100/);
    const { nrRuns: _, ...v1 } = h;
    expect(parseKhoTestFdt(buildKhoTestFdt(v1)).nrRuns).toBeUndefined();
  });
});

/* A run entry's bytes. */
function run(phys: number, order: number, count: bigint): Uint8Array {
  const b = new Uint8Array(16);
  const d = new DataView(b.buffer);
  d.setBigUint64(0, BigInt(phys) | BigInt(order), true);
  d.setBigUint64(8, count, true);
  return b;
}
const cat = (...p: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(p.reduce((n, x) => n + x.length, 0));
  p.reduce((o, x) => (out.set(x, o), o + x.length), 0);
  return out;
};
const refusal = (blob: Uint8Array, nrFolios: number): string => {
  try {
    decodeKhoTestInfo(blob, nrFolios, 0, blob.length / 16, RAM);
  } catch (e) {
    expect(e).toBeInstanceOf(KhoTestError);
    return (e as Error).message;
  }
  throw new Error("accepted");
};

describe("run checks", () => {
  test("each malformed run is refused naming the entry and its offset in the blob", () => {
    const ok = run(0x1000_0000, 0, 4n);
    expect(refusal(cat(ok, run(0x2000_0000, 0, 0n)), 4)).toBe("kho_test folio_runs[1] (info +0x10): count 0: a run lists at least one folio");
    expect(refusal(cat(ok, run(0x2000_0000, 0, 2n ** 40n)), 4)).toMatch(/^kho_test folio_runs\[1\] \(info \+0x10\): count 1099511627776 order-0 folios span more than RAM/);
    expect(refusal(cat(ok, run(0x2000_0000, 30, 1n)), 5)).toMatch(/^kho_test folio_runs\[1\] \(info \+0x10\): order 30: a 0x40000000000-byte folio is larger than RAM/);
    expect(refusal(cat(ok, run(0x1000_2000, 0, 1n)), 5)).toMatch(/^kho_test folio_runs\[1\] \(info \+0x10\): \[0x10002000, 0x10003000\) overlaps the previous run/);
    // Not ascending: found once every run is in.
    expect(refusal(cat(ok, run(0x2000_0000, 0, 1n), run(0x1000_3000, 0, 1n)), 6)).toMatch(/^kho_test folio_runs\[2\] \(info \+0x20\): \[0x10003000, \+0x1000\) overlaps run 0/);
    // Adjacent entries that a writer would have merged stay separate entries: the overlap names the blob's entry 3, not a merged run's index.
    expect(refusal(cat(run(0x1000_0000, 0, 2n), run(0x1000_2000, 0, 2n), run(0x2000_0000, 0, 1n), run(0x1000_1000, 0, 1n)), 6)).toMatch(/^kho_test folio_runs\[3\] \(info \+0x30\): \[0x10001000, \+0x1000\) overlaps run 0/);
    expect(refusal(cat(ok, run(0x2000_0000, 0, 2n)), 5)).toMatch(/^kho_test folio_runs\[1\] \(info \+0x10\): count 2 brings the runs past nr_folios 5/);
    expect(refusal(cat(ok, run(0x2000_0000, 0, 2n)), 7)).toBe("kho_test nr_folios: 7, but the 2 runs list 6 folios");
    expect(refusal(cat(ok, run(2 ** 53 - PAGE_SIZE, 0, 2n)), 6)).toMatch(/^kho_test folio_runs\[1\] \(info \+0x10\): .* ends beyond 2\^53/);
  });
});

/* The per-folio loop of the successor, for unfilled folios: restored count, unchecked count, failures (entry, reason). */
function perFolio(t: FolioTable, r: KhoRestore, offline: (p: number, len: number) => string | undefined) {
  const out = { restored: 0, unchecked: 0, bad: [] as [number, string][] };
  for (let i = 0; i < t.length; i++) {
    const f = t.get(i);
    const off = offline(f.phys, PAGE_SIZE * 2 ** f.order);
    if (off) {
      out.bad.push([i, off]);
      continue;
    }
    let order: number;
    try {
      order = r.khoRestoreFolio(f.phys);
    } catch (e) {
      if (!(e instanceof KhoRestoreError)) throw e;
      out.bad.push([i, e.message]);
      continue;
    }
    out.restored++;
    if (order !== f.order) {
      out.bad.push([i, `restored with order ${order}, recorded order ${f.order}`]);
      continue;
    }
    out.unchecked++;
  }
  return out;
}

/* The set of folios a KhoRestore has claimed, probed by restoring each candidate head again. */
function claimed(r: KhoRestore, heads: number[]): boolean[] {
  return heads.map((p) => {
    try {
      r.khoRestoreFolio(p);
      return false;
    } catch (e) {
      return e instanceof KhoRestoreError && e.code === "ALREADY_RESTORED";
    }
  });
}

describe("run-based restore", () => {
  test("killEntries keeps a run table as runs and leaves the live folios kill() per entry leaves", () => {
    const mk = (): FolioTable => {
      const t = new FolioTable(13);
      t.pushRun(0x1000_0000, PAGE_SIZE, 0, 10);
      t.pushRun(0x2000_0000, PAGE_SIZE * 4, 2, 3);
      return t;
    };
    const a = mk();
    const b = mk();
    const dead = [0, 4, 9, 11];
    a.killEntries(dead);
    for (const i of dead) b.kill(i);
    expect(a.isRuns).toBe(true);
    const r = a.liveRuns();
    expect([...r.base.subarray(0, r.n)]).toEqual([0x1000_1000, 0x1000_5000, 0x2000_0000, 0x2000_8000]);
    expect([...r.count.subarray(0, r.n)]).toEqual([3, 4, 1, 1]);
    expect([...r.order.subarray(0, r.n)]).toEqual([0, 0, 2, 2]);
    expect(a.live).toBe(9);
    expect([...a.entries()]).toEqual([...b.entries()]);
    expect(() => mk().killEntries([3, 3])).toThrow(RangeError);
    expect(() => mk().killEntries([13])).toThrow(RangeError);
  });

  test("an order-19 and an order-20 folio: the offline check asks for their whole size (2 and 4 GiB), not an int32 shift", () => {
    const t = new FolioTable(3);
    t.pushRun(0x1_0000_0000, PAGE_SIZE * 2 ** 19, 19, 2);
    t.pushRun(0x2_0000_0000, PAGE_SIZE * 2 ** 20, 20, 1);
    const asked: number[] = [];
    const bad: number[] = [];
    khoRestoreFolioRuns(t, new KhoRestore(khoRangeTableOf([]), 20), { offline: (_p, len) => (asked.push(len), "offline"), bad: (i) => bad.push(i) });
    // The whole run, then each folio of it: every length positive and whole.
    expect(asked).toEqual([2 * 2 ** 31, 2 ** 31, 2 ** 31, 2 ** 32, 2 ** 32]);
    expect(bad).toEqual([0, 1, 2]);
  });

  test("restores and refuses exactly what kho_restore_folio() per folio does, on the same preserved ranges", () => {
    const range = fc.record({ slot: fc.integer({ min: 0, max: 60 }), pages: fc.integer({ min: 1, max: 48 }), order: fc.integer({ min: 0, max: 3 }), phys: fc.boolean() });
    fc.assert(
      fc.property(groups, fc.array(range, { maxLength: 8 }), fc.integer({ min: 0, max: 10 }), fc.boolean(), fc.nat({ max: 30 }), (gs, rs, maxOrder, hole, dup) => {
        const { t, folios: built } = build(gs.map((g) => ({ ...g, order: g.order % 4, count: Math.min(g.count, 20) })));
        // Listed twice: the second restore of each is refused (ALREADY_RESTORED), in whichever run it falls.
        const folios = [...built, ...built.slice(0, dup)];
        for (const [p, o] of built.slice(0, dup)) t.push(p, o, 0n);
        // Preserved ranges: the folios' own runs (so most restore), plus stray ranges of other orders and phys ranges over some of them.
        const want: KhoMemRange[] = [];
        for (const [p, o] of folios) want.push({ start: p, size: PAGE_SIZE * 2 ** o, data: khoDataFolio(o) });
        for (const x of rs) {
          const size = PAGE_SIZE * 2 ** x.order;
          const start = Math.ceil((0x1_0000_0000 + x.slot * 0x8000) / size) * size;
          want.push({ start, size: Math.ceil((x.pages * PAGE_SIZE) / size) * size, data: x.phys ? 0 : khoDataFolio(x.order) });
        }
        // Non-overlapping, ascending: later ranges win where they overlap (drop the ones they hit).
        want.sort((a, b) => a.start - b.start);
        const ranges: KhoMemRange[] = [];
        for (const w of want) {
          const last = ranges[ranges.length - 1];
          if (last && w.start < last.start + last.size) continue;
          if (last && last.data === w.data && last.start + last.size === w.start) last.size += w.size;
          else ranges.push({ ...w });
        }
        const table = khoRangeTableOf(ranges);
        const holeAt = folios[Math.floor(folios.length / 2)]![0];
        const offline = (p: number, len: number): string | undefined => (hole && p <= holeAt && holeAt < p + len ? `hole at ${holeAt}` : undefined);
        const a = new KhoRestore(table, maxOrder);
        const b = new KhoRestore(table, maxOrder);
        // The reference loop and the probes throw and catch a KhoRestoreError per refused folio: no stacks (withoutStacks).
        const slow = withoutStacks(() => perFolio(t, a, offline));
        const bad: [number, string][] = [];
        const fast = withoutStacks(() => khoRestoreFolioRuns(t, b, { offline, bad: (i, why) => bad.push([i, why]) }));
        expectEqual(fast, { restored: slow.restored, unchecked: slow.unchecked });
        expectEqual(bad, slow.bad);
        const heads = folios.map(([p]) => p);
        expectEqual(
          withoutStacks(() => claimed(b, heads)),
          withoutStacks(() => claimed(a, heads)),
        );
      }),
      { numRuns: 300 },
    );
  });
});
