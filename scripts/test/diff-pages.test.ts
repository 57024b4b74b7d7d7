/*
 * diff's page core: extent union, block comparison with drill-down to pages
 * (against a brute-force page model), counting, and grouping changed pages
 * into runs labelled per side.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fc, test as fcTest } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { PAGE_SIZE, khoDataFolio } from "@khosim/shared/abi";
import { classifyRuns, comparePages, countPages, describeSide, pagesByKind, pagesIn, unionExtents, type BlockReader, type OffsetRun } from "../src/diff/pages.js";
import { dataExtents, parseExtentsOutput } from "../src/holes.js";
import { flattenRegions, type Region } from "../src/inspect.js";

const P = PAGE_SIZE;

/* A reader over two in-memory images; bytes past an image's end read as zero. */
function reader(a: Uint8Array, b: Uint8Array): BlockReader {
  return (side, off, buf) => {
    const src = side === 0 ? a : b;
    buf.fill(0);
    if (off < src.length) buf.set(src.subarray(off, Math.min(src.length, off + buf.length)));
  };
}

function bruteForce(a: Uint8Array, b: Uint8Array): OffsetRun[] {
  const runs: OffsetRun[] = [];
  for (let off = 0; off < Math.max(a.length, b.length); off += P) {
    const pa = Buffer.from(a.subarray(off, off + P));
    const pb = Buffer.from(b.subarray(off, off + P));
    if (pa.equals(pb)) continue;
    const last = runs[runs.length - 1];
    if (last && last.end === off) last.end = off + P;
    else runs.push({ start: off, end: off + P });
  }
  return runs;
}

describe("unionExtents", () => {
  it("merges overlapping and touching extents, widens to pages, clips to the limit", () => {
    const a = [
      { start: 10, end: 20 },
      { start: 5 * P, end: 6 * P },
    ];
    const b = [
      { start: P + 1, end: 2 * P },
      { start: 6 * P, end: 7 * P + 5 },
      { start: 100 * P, end: 200 * P },
    ];
    expect(unionExtents(a, b, 50 * P)).toEqual([
      { start: 0, end: 2 * P },
      { start: 5 * P, end: 8 * P },
    ]);
  });

  it("a hole in both is not read at all", () => {
    expect(unionExtents([], [], 1 << 30)).toEqual([]);
  });
});

describe("comparePages", () => {
  it("finds single flipped bytes, drilling down inside a differing block only", () => {
    const a = new Uint8Array(64 * P);
    const b = new Uint8Array(64 * P);
    b[3 * P + 17] = 1; // page 3
    b[4 * P] = 9; // page 4: one run with page 3
    b[40 * P + P - 1] = 2; // last byte of page 40
    const reads: number[] = [];
    const r = reader(a, b);
    const runs = comparePages((s, o, buf) => (reads.push(o), r(s, o, buf)), [{ start: 0, end: 64 * P }], { blockSize: 16 * P });
    expect(runs).toEqual([
      { start: 3 * P, end: 5 * P },
      { start: 40 * P, end: 41 * P },
    ]);
    expect(countPages(runs)).toBe(3);
    // Four blocks, each read once per side.
    expect(reads).toEqual([0, 0, 16 * P, 16 * P, 32 * P, 32 * P, 48 * P, 48 * P]);
  });

  it("reads only the extents given (a difference outside them is a hole in both by contract)", () => {
    const a = new Uint8Array(8 * P);
    const b = new Uint8Array(8 * P);
    b[P] = 1;
    b[6 * P] = 1;
    expect(comparePages(reader(a, b), [{ start: 4 * P, end: 8 * P }], { blockSize: 2 * P })).toEqual([{ start: 6 * P, end: 7 * P }]);
  });

  it("reports progress in bytes", () => {
    const seen: number[] = [];
    comparePages(reader(new Uint8Array(5 * P), new Uint8Array(5 * P)), [{ start: 0, end: 5 * P }], { blockSize: 2 * P, onProgress: (d) => seen.push(d) });
    expect(seen).toEqual([2 * P, 4 * P, 5 * P]);
  });

  it("rejects a block size that is not whole pages", () => {
    expect(() => comparePages(reader(new Uint8Array(P), new Uint8Array(P)), [], { blockSize: 1000 })).toThrow(RangeError);
  });

  fcTest.prop([
    fc.integer({ min: 1, max: 40 }),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 30 }),
    fc.constantFrom(1, 3, 8, 64),
  ])("equals a page-by-page model for any changes and block size", (pages, pokes, blockPages) => {
    const a = new Uint8Array(pages * P);
    const b = new Uint8Array(pages * P);
    for (const [at, v] of pokes) b[at % b.length] = v;
    const runs = comparePages(reader(a, b), [{ start: 0, end: pages * P }], { blockSize: blockPages * P });
    expect(runs).toEqual(bruteForce(a, b));
  });
});

describe("pagesIn", () => {
  const runs = [
    { start: 2 * P, end: 5 * P },
    { start: 10 * P, end: 11 * P },
  ];
  it("counts changed pages inside a window", () => {
    expect(pagesIn(runs, 0, 100 * P)).toBe(4);
    expect(pagesIn(runs, 3 * P, 4 * P)).toBe(1);
    expect(pagesIn(runs, 4 * P, 10 * P)).toBe(1);
    expect(pagesIn(runs, 5 * P, 10 * P)).toBe(0);
    expect(pagesIn([], 0, P)).toBe(0);
  });
});

describe("classifyRuns", () => {
  const BASE = 0x4000_0000;
  const region = (start: number, end: number, kind: Region["kind"], label: string, extra: Partial<Region> = {}): Region => ({
    start: BASE + start * P,
    end: BASE + end * P,
    kind,
    label,
    ...extra,
  });
  const A = flattenRegions(BASE, BASE + 64 * P, [
    region(8, 16, "preserved", "order-3 folios", { data: khoDataFolio(3), index: 0 }),
    region(20, 21, "chunk", "chunk 0", { index: 0 }),
    region(21, 22, "chunk", "chunk 1", { index: 1 }),
  ]);
  const B = flattenRegions(BASE, BASE + 64 * P, [region(20, 21, "chunk", "chunk 0", { index: 0 })]);

  it("splits at either side's region boundary and labels both sides", () => {
    const runs = classifyRuns([{ start: 6 * P, end: 22 * P }], { base: BASE, regions: A }, { base: BASE, regions: B });
    expect(runs.map((r) => [r.start / P, r.end / P, describeSide(r.a), describeSide(r.b)])).toEqual([
      [6, 8, "free", "free"],
      [8, 16, "preserved order-3 folios", "free"],
      [16, 20, "free", "free"],
      [20, 21, "chunk 0", "chunk 0"],
      [21, 22, "chunk 1", "free"],
    ]);
    expect(runs[1]!.a).toMatchObject({ kind: "preserved", order: 3, index: 0 });
  });

  it("merges neighbouring changed runs that mean the same on both sides", () => {
    const runs = classifyRuns(
      [
        { start: 8 * P, end: 10 * P },
        { start: 10 * P, end: 12 * P },
        { start: 13 * P, end: 14 * P },
      ],
      { base: BASE, regions: A },
      { base: BASE, regions: B },
    );
    expect(runs.map((r) => [r.start / P, r.end / P])).toEqual([
      [8, 12],
      [13, 14],
    ]);
    expect(pagesByKind(runs)).toEqual([{ a: "preserved", b: "free", pages: 5 }]);
  });
});

describe("parseExtentsOutput", () => {
  it("decodes the lseek walk's lines, errors per file", () => {
    const text = "F 0 1073741824\nD 33554432 42000384\nD 42008576 42012672\nE 1 Permission denied\n";
    expect(parseExtentsOutput(text, 3)).toEqual([
      {
        size: 1073741824,
        extents: [
          { start: 33554432, end: 42000384 },
          { start: 42008576, end: 42012672 },
        ],
      },
      { error: "Permission denied" },
      { error: "not reported by the lseek walk" },
    ]);
  });
});

describe("dataExtents (python3 lseek walk)", () => {
  it("finds the written parts of a sparse file and skips its holes", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "khosim-holes-"));
    try {
      const f = path.join(dir, "sparse.img");
      const fd = fs.openSync(f, "w");
      fs.ftruncateSync(fd, 1 << 30);
      fs.writeSync(fd, Buffer.from([1]), 0, 1, 5 << 20);
      fs.writeSync(fd, Buffer.from([2]), 0, 1, (1 << 30) - 1);
      fs.closeSync(fd);
      const r = dataExtents([f, path.join(dir, "missing.img")]);
      expect(r).toBeDefined();
      const x = r![0]!;
      if (!("extents" in x)) throw new Error(`lseek walk failed: ${x.error}`);
      expect(x.size).toBe(1 << 30);
      const covered = (off: number) => x.extents.some((e) => e.start <= off && off < e.end);
      expect(covered(5 << 20)).toBe(true);
      expect(covered((1 << 30) - 1)).toBe(true);
      expect(covered(100 << 20)).toBe(false);
      expect(x.extents.reduce((n, e) => n + e.end - e.start, 0)).toBeLessThan(16 << 20);
      expect(r![1]).toHaveProperty("error");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("returns undefined when python cannot run (the caller reads everything)", () => {
    expect(dataExtents(["/dev/null"], "/nonexistent/python3")).toBeUndefined();
  });
});
