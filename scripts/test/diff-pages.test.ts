/*
 * diff's page core: extent union, block comparison with drill-down to pages
 * (against a brute-force page model), counting, and grouping changed pages
 * into runs labelled per side.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fc, test as fcTest } from "@khosim/shared/test/fc-prop";
import { describe, expect, it } from "vitest";
import { PAGE_SIZE, khoDataFolio } from "@khosim/shared/abi";
import { classifyRuns, comparePages, countPages, describeSide, pagesByKind, pagesIn, unionExtents, type BlockReader, type OffsetRun } from "../src/diff/pages.js";
import { dataExtents, isZero } from "../src/holes.js";
import { imageExtentsFile, writeImageExtents } from "@khosim/shared/proc";
import { flattenRegions, type Region } from "../src/inspect.js";
import { lookupOfRegions } from "../src/diff/regions.js";

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

  fcTest.prop([
    fc.integer({ min: 1, max: 40 }),
    fc.array(fc.tuple(fc.boolean(), fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 30 }),
    fc.constantFrom(1, 3, 8, 64),
  ])("with stats: the same runs, and dataBytes counts the pages non-zero on either side", (pages, pokes, blockPages) => {
    const a = new Uint8Array(pages * P);
    const b = new Uint8Array(pages * P);
    for (const [onA, at, v] of pokes) (onA ? a : b)[at % a.length] = v;
    // Some pokes land on both sides equally: data that did not change still counts.
    for (const [, at, v] of pokes.slice(0, 3)) a[(at * 7) % a.length] = b[(at * 7) % b.length] = v;
    const stats = { dataBytes: 0 };
    const runs = comparePages(reader(a, b), [{ start: 0, end: pages * P }], { blockSize: blockPages * P, stats });
    expect(runs).toEqual(bruteForce(a, b));
    let want = 0;
    for (let off = 0; off < a.length; off += P) if (a.subarray(off, off + P).some((x) => x !== 0) || b.subarray(off, off + P).some((x) => x !== 0)) want += P;
    expect(stats.dataBytes).toBe(want);
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
  const A = lookupOfRegions(flattenRegions(BASE, BASE + 64 * P, [
    region(8, 16, "preserved", "order-3 folios", { data: khoDataFolio(3), index: 0 }),
    region(20, 21, "chunk", "chunk 0", { index: 0 }),
    region(21, 22, "chunk", "chunk 1", { index: 1 }),
  ]));
  const B = lookupOfRegions(flattenRegions(BASE, BASE + 64 * P, [region(20, 21, "chunk", "chunk 0", { index: 0 })]));

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

describe("isZero", () => {
  it("is true only when every byte is zero, across its 1 MiB steps", () => {
    const b = Buffer.alloc(3 * (1 << 20) + 5);
    expect(isZero(b)).toBe(true);
    expect(isZero(b.subarray(0, 0))).toBe(true);
    for (const at of [0, (1 << 20) - 1, 1 << 20, b.length - 1]) {
      b[at] = 1;
      expect(isZero(b), `byte ${at}`).toBe(false);
      b[at] = 0;
    }
  });
});

describe("dataExtents (the image's extents file, Node only)", () => {
  /* A 1 GiB sparse image with one page written at 5 MiB and one at the end, and its extents file. */
  function sparseImage(dir: string): { file: string; fd: number } {
    const file = path.join(dir, "memory.img");
    const fd = fs.openSync(file, "w+");
    fs.ftruncateSync(fd, 1 << 30);
    fs.writeSync(fd, Buffer.alloc(P, 1), 0, P, 5 << 20);
    fs.writeSync(fd, Buffer.alloc(P, 2), 0, P, (1 << 30) - P);
    const base = 0x4000_0000;
    const mem = { base, touchedRuns: (): [number, number][] => [[(base + (5 << 20)) / P, 1], [(base + (1 << 30) - P) / P, 1]] };
    expect(writeImageExtents(file, mem)).toBe(true);
    return { file, fd };
  }

  function withDir(f: (dir: string) => void): void {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "khosim-holes-"));
    try {
      f(dir);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  it("gives the written extents while the image is unchanged", () =>
    withDir((dir) => {
      const { file, fd } = sparseImage(dir);
      try {
        expect(dataExtents(file, fd)).toEqual({
          source: "extents-file",
          extents: [
            { start: 5 << 20, end: (5 << 20) + P },
            { start: (1 << 30) - P, end: 1 << 30 },
          ],
        });
      } finally {
        fs.closeSync(fd);
      }
    }));

  it("ignores the extents file once the image is written again (mtime), resized, or when it is not valid", () =>
    withDir((dir) => {
      const { file, fd } = sparseImage(dir);
      try {
        const x = fs.readFileSync(imageExtentsFile(file), "utf8");
        // A byte written into a hole: the image's mtime (and its allocated blocks) change.
        fs.writeSync(fd, Buffer.from([7]), 0, 1, 100 << 20);
        expect(dataExtents(file, fd)).toEqual({ source: "none", extents: undefined });
        // Rewritten for the new mtime, then the image grows.
        const mem = { base: 0, touchedRuns: (): [number, number][] => [[(5 << 20) / P, 1], [(100 << 20) / P, 1], [((1 << 30) - P) / P, 1]] };
        writeImageExtents(file, mem);
        expect(dataExtents(file, fd).source).toBe("extents-file");
        fs.ftruncateSync(fd, (1 << 30) + P);
        expect(dataExtents(file, fd).source).toBe("none");
        // Missing, malformed, or another schema.
        fs.ftruncateSync(fd, 1 << 30);
        for (const text of ["{", "null", x.replace("khosim-image-extents/2", "other/1")]) {
          fs.writeFileSync(imageExtentsFile(file), text);
          expect(dataExtents(file, fd).source, text.slice(0, 20)).toBe("none");
        }
        fs.rmSync(imageExtentsFile(file));
        expect(dataExtents(file, fd).source).toBe("none");
      } finally {
        fs.closeSync(fd);
      }
    }));

  it("ignores an extents file that misses allocated data (the file system holds more blocks)", () =>
    withDir((dir) => {
      const { file, fd } = sparseImage(dir);
      try {
        // 8 MiB written where the (rewritten) record says nothing is: only the block count can tell.
        fs.writeSync(fd, Buffer.alloc(8 << 20, 3), 0, 8 << 20, 200 << 20);
        fs.fsyncSync(fd);
        writeImageExtents(file, { base: 0, touchedRuns: () => [[(5 << 20) / P, 1], [((1 << 30) - P) / P, 1]] });
        expect(dataExtents(file, fd).source).toBe("none");
      } finally {
        fs.closeSync(fd);
      }
    }));
});
