/* SparseMem.storePages: pages kept in an unlinked file read, enumerate and reach the image exactly as held pages do. */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, test } from "vitest";
import { PAGE_SIZE } from "../src/abi/page.js";
import { ImageMem, writeImage } from "../src/mm/image.js";
import { PhysMemError, SparseMem, physStorePages, type PhysMem } from "../src/mm/physmem.js";

const BASE = 0x40000000;
const RAM = 64 * PAGE_SIZE;

/* @n pages, page k filled with bytes (k * 7 + seed + i) & 0xff. */
function pages(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n * PAGE_SIZE);
  for (let k = 0; k < n; k++) for (let i = 0; i < PAGE_SIZE; i++) b[k * PAGE_SIZE + i] = (k * 7 + seed + i) & 0xff;
  return b;
}

/* Two memories with the same history: @stored uses storePages where @held uses write(). */
function pair(): { stored: SparseMem; held: SparseMem; both: (f: (m: SparseMem, store: boolean) => void) => void } {
  const stored = new SparseMem(BASE, RAM);
  const held = new SparseMem(BASE, RAM);
  return {
    stored,
    held,
    both: (f) => {
      f(stored, true);
      f(held, false);
    },
  };
}

function store(m: SparseMem, asStored: boolean, pfns: number[], data: Uint8Array): void {
  if (asStored) m.storePages(pfns, data);
  else pfns.forEach((pfn, k) => m.write(pfn * PAGE_SIZE, data.subarray(k * PAGE_SIZE, (k + 1) * PAGE_SIZE)));
}

function imageBytes(m: SparseMem): Uint8Array {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "khosim-store-"));
  try {
    const f = path.join(dir, "memory.img");
    writeImage(f, m);
    return new Uint8Array(fs.readFileSync(f));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const PFN0 = BASE / PAGE_SIZE;

/* Index of the first page at which @a and @b differ (or their lengths do: the shorter's page count), -1 when equal. */
function firstDifferentPage(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return Math.floor(i / PAGE_SIZE);
  return a.length === b.length ? -1 : Math.floor(n / PAGE_SIZE);
}

describe("SparseMem.storePages", () => {
  // First in the file, with batches larger than the page file's free list can be: each batch goes to new slots at the file's end.
  test("consecutive frames stored in ascending batches (a serializer's chunks) are kept as runs: they read, enumerate, are written over and reach the image as held pages do", () => {
    const BIG = 8192 * PAGE_SIZE;
    const stored = new SparseMem(BASE, BIG);
    const held = new SparseMem(BASE, BIG);
    const other = new SparseMem(BASE, BIG);
    const seq = (from: number, n: number): number[] => Array.from({ length: n }, (_, k) => PFN0 + from + k);
    for (const [m, s] of [[stored, true], [held, false]] as const) {
      store(m, s, seq(100, 1024), pages(1024, 1));
      // Continues the first run's frames, but another memory took the slots that follow: a run of its own.
      if (s) other.storePages(seq(0, 2048), pages(2048, 8));
      store(m, s, seq(1124, 1024), pages(1024, 2));
      // Continues the last run (frames and slots both follow on).
      store(m, s, seq(2148, 512), pages(512, 9));
      // A second run past a gap.
      store(m, s, seq(4000, 1024), pages(1024, 3));
      // A write into the first run: that frame becomes a held page.
      m.write(BASE + 600 * PAGE_SIZE + 7, new Uint8Array([9, 9, 9]));
      // Consecutive but below the last run, over part of the first: frame by frame, the old slots freed.
      store(m, s, seq(50, 1024), pages(1024, 4));
      // Over part of the second run, past its start.
      store(m, s, seq(4500, 1024), pages(1024, 5));
      // A batch that is not consecutive, then a short run after everything.
      store(m, s, [PFN0 + 7000, PFN0 + 7002], pages(2, 6));
      store(m, s, seq(7100, 3), pages(3, 7));
    }
    expect(stored.touchedPages).toBe(held.touchedPages);
    expect(stored.touchedRuns()).toEqual(held.touchedRuns());
    // Page by page: a failing toEqual on 32 MiB would print a diff of every byte.
    expect(firstDifferentPage(stored.read(BASE, BIG), held.read(BASE, BIG)), "first page that differs").toBe(-1);
    for (const pfn of [PFN0 + 49, PFN0 + 50, PFN0 + 600, PFN0 + 1123, PFN0 + 1124, PFN0 + 2147, PFN0 + 2148, PFN0 + 2659, PFN0 + 4499, PFN0 + 5523, PFN0 + 5524, PFN0 + 7001]) {
      expect(stored.page(pfn), `page ${pfn - PFN0}`).toEqual(held.page(pfn));
    }
    // pagesInto across the end of one run and the start of the next.
    const out = new Uint8Array(8 * PAGE_SIZE);
    expect(stored.pagesInto(PFN0 + 2144, 8, out)).toBe(true);
    expect(out).toEqual(held.read(BASE + 2144 * PAGE_SIZE, 8 * PAGE_SIZE));
    expect(firstDifferentPage(imageBytes(stored), imageBytes(held)), "first image page that differs").toBe(-1);
    expect(firstDifferentPage(other.read(BASE, 2048 * PAGE_SIZE), pages(2048, 8)), "first page of the other memory that differs").toBe(-1);
  });

  test("stored pages read, enumerate and write to the image as held pages do, in any order and mixed with held ones", () => {
    const { stored, held, both } = pair();
    both((m, s) => {
      m.write(BASE + 3 * PAGE_SIZE, new Uint8Array([1, 2, 3]));
      // Out of order, not contiguous, next to a held page.
      store(m, s, [PFN0 + 4, PFN0 + 2, PFN0 + 9, PFN0 + 5], pages(4, 1));
      store(m, s, [PFN0 + 10], pages(1, 2));
    });
    expect(stored.touchedPages).toBe(held.touchedPages);
    expect(stored.touchedRuns()).toEqual(held.touchedRuns());
    expect(stored.touchedRuns()).toEqual([
      [PFN0 + 2, 4],
      [PFN0 + 9, 2],
    ]);
    // A read across held, stored and untouched pages.
    expect(stored.read(BASE + PAGE_SIZE + 100, 10 * PAGE_SIZE)).toEqual(held.read(BASE + PAGE_SIZE + 100, 10 * PAGE_SIZE));
    for (let pfn = PFN0; pfn < PFN0 + 12; pfn++) expect(stored.page(pfn)).toEqual(held.page(pfn));
    // A batch mixing held and stored pages is made whole; one of held pages only is left to page().
    const out = new Uint8Array(4 * PAGE_SIZE);
    expect(stored.pagesInto(PFN0 + 2, 4, out)).toBe(true);
    expect(out).toEqual(held.read(BASE + 2 * PAGE_SIZE, 4 * PAGE_SIZE));
    expect(stored.pagesInto(PFN0 + 3, 1, out)).toBe(false);
    expect(imageBytes(stored)).toEqual(imageBytes(held));
  });

  test("a write over a stored page, a stored page over a held one and writeOwned/writeGenerated over stored pages keep the bytes of the same history held", () => {
    const { stored, held, both } = pair();
    both((m, s) => {
      store(m, s, [PFN0 + 1, PFN0 + 2, PFN0 + 3], pages(3, 3));
      m.write(BASE + 2 * PAGE_SIZE - 5, new Uint8Array(10).fill(0xee));
      m.write(BASE + 6 * PAGE_SIZE, new Uint8Array(PAGE_SIZE).fill(0x11));
      store(m, s, [PFN0 + 6, PFN0 + 7], pages(2, 4));
      m.writeOwned(BASE + 3 * PAGE_SIZE, pages(1, 5));
      store(m, s, [PFN0 + 12, PFN0 + 13], pages(2, 6));
      m.writeGenerated(BASE + 12 * PAGE_SIZE, PAGE_SIZE + 10, (off, o) => o.fill(0x22 + off / PAGE_SIZE));
      // Stored over part of a generated run, and next to it: the rest of the run keeps its bytes.
      m.writeGenerated(BASE + 30 * PAGE_SIZE, 4 * PAGE_SIZE, (off, o) => o.fill(0x40 + off / PAGE_SIZE));
      store(m, s, [PFN0 + 31, PFN0 + 32], pages(2, 9));
      store(m, s, [PFN0 + 34, PFN0 + 35], pages(2, 10));
      // Stored twice: the later bytes win.
      store(m, s, [PFN0 + 20], pages(1, 7));
      store(m, s, [PFN0 + 20], pages(1, 8));
    });
    expect(stored.touchedPages).toBe(held.touchedPages);
    expect(stored.touchedRuns()).toEqual(held.touchedRuns());
    expect(stored.read(BASE, RAM)).toEqual(held.read(BASE, RAM));
    expect(imageBytes(stored)).toEqual(imageBytes(held));
  });

  test("one page file for the process: many memories that store pages open at most one descriptor, and their bytes stay their own", () => {
    const fds = (): number => fs.readdirSync("/proc/self/fd").length;
    const mems: SparseMem[] = [];
    mems.push(new SparseMem(BASE, RAM));
    mems[0]!.storePages([PFN0], pages(1, 0));
    const before = fds();
    for (let i = 1; i < 300; i++) {
      const m = new SparseMem(BASE, RAM);
      m.storePages([PFN0 + (i % 7), PFN0 + 8], pages(2, i));
      // Overwritten: its old page goes back to the file's free list and may be reused by the next memory.
      m.storePages([PFN0 + 8], pages(1, i + 1000));
      mems.push(m);
    }
    expect(fds()).toBe(before);
    for (let i = 1; i < 300; i++) {
      expect(mems[i]!.read(BASE + (i % 7) * PAGE_SIZE, PAGE_SIZE)).toEqual(pages(2, i).subarray(0, PAGE_SIZE));
      expect(mems[i]!.read(BASE + 8 * PAGE_SIZE, PAGE_SIZE)).toEqual(pages(1, i + 1000));
    }
  });

  test("pages outside RAM are refused before anything is stored; a size that is not the pages' is refused", () => {
    const m = new SparseMem(BASE, RAM);
    expect(() => m.storePages([PFN0 + 1, PFN0 + 64], pages(2, 0))).toThrow(PhysMemError);
    expect(m.touchedPages).toBe(0);
    expect(() => m.storePages([PFN0 + 1], pages(2, 0))).toThrow(RangeError);
  });

  test("pages stored over part of a generated run replace just those pages of it", () => {
    const m = new SparseMem(BASE, RAM);
    m.writeGenerated(BASE + 30 * PAGE_SIZE, 4 * PAGE_SIZE, (off, o) => o.fill(0x40 + off / PAGE_SIZE));
    m.storePages([PFN0 + 31, PFN0 + 32], pages(2, 9));
    m.storePages([PFN0 + 40], pages(1, 10));
    expect(m.touchedPages).toBe(5);
    const want = new Uint8Array(5 * PAGE_SIZE);
    want.fill(0x40, 0, PAGE_SIZE);
    want.set(pages(2, 9), PAGE_SIZE);
    want.fill(0x43, 3 * PAGE_SIZE, 4 * PAGE_SIZE);
    expect(m.read(BASE + 30 * PAGE_SIZE, 5 * PAGE_SIZE)).toEqual(want);
    expect(m.read(BASE + 40 * PAGE_SIZE, PAGE_SIZE)).toEqual(pages(1, 10));
  });

  test("a run of frames that leaves RAM is refused naming its first page outside, as a page-by-page check names it", () => {
    const m = new SparseMem(BASE, RAM);
    const run = [62, 63, 64, 65].map((k) => PFN0 + k);
    expect(() => m.storePages(run, pages(4, 0))).toThrow(`access of ${PAGE_SIZE} bytes at 0x${(BASE + 64 * PAGE_SIZE).toString(16)} outside RAM`);
    expect(m.touchedPages).toBe(0);
  });

  test("physStorePages writes page by page into a memory that cannot store (an image opened read-only refuses)", () => {
    const writes: [number, number][] = [];
    const mem: PhysMem = { base: BASE, size: RAM, read: (_p, len) => new Uint8Array(len), write: (p, d) => void writes.push([p, d.length]) };
    physStorePages(mem, [PFN0 + 5, PFN0 + 1], pages(2, 0));
    expect(writes).toEqual([
      [BASE + 5 * PAGE_SIZE, PAGE_SIZE],
      [BASE + PAGE_SIZE, PAGE_SIZE],
    ]);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "khosim-store-"));
    try {
      const f = path.join(dir, "memory.img");
      writeImage(f, new SparseMem(BASE, RAM));
      const img = ImageMem.open(f, BASE, RAM);
      expect(() => physStorePages(img, [PFN0], pages(1, 0))).toThrow(PhysMemError);
      img.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
