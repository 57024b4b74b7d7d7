/*
 * diff's metadata core: ranges compared by start, chunk lists by address and
 * next pointer, chunk pages decoded entry by entry.
 */
import { describe, expect, it } from "vitest";
import { KHO_DATA_PHYS, PAGE_SIZE, khoDataFolio } from "@khosim/shared/abi";
import { diffChunkPage, diffChunks, diffRanges, followChunks, rangeDiffEmpty, chunkDiffEmpty, type ChunkLink } from "../src/diff/meta.js";
import { encodeChunk, type KhoMemRange } from "@khosim/shared/kho";

const P = PAGE_SIZE;
const B = 0x4000_0000;
const r = (page: number, pages: number, data: number = KHO_DATA_PHYS): KhoMemRange => ({ start: B + page * P, size: pages * P, data });

describe("diffRanges", () => {
  const a = [r(0, 1), r(4, 4, khoDataFolio(2)), r(16, 2), r(32, 1, khoDataFolio(0)), r(40, 8, khoDataFolio(3))];
  const b = [r(4, 8, khoDataFolio(2)), r(16, 2), r(32, 1, khoDataFolio(0)), r(40, 8, khoDataFolio(1)), r(64, 1)];

  it("names added, removed, resized, other data and unchanged ranges", () => {
    // Page 16 changed: inside the range at 16.
    const changed = (s: number, e: number) => (s <= B + 16 * P && B + 16 * P < e ? 1 : 0);
    const d = diffRanges(a, b, changed);
    expect(d.removed.map((x) => x.start)).toEqual([B]);
    expect(d.added.map((x) => [x.start, x.label])).toEqual([[B + 64 * P, "phys range"]]);
    expect(d.resized).toHaveLength(1);
    expect(d.resized[0]).toMatchObject({ start: B + 4 * P, a: { size: 4 * P }, b: { size: 8 * P } });
    expect(d.dataChanged.map((x) => [x.start, x.dataField, x.changedPages])).toEqual([
      [B + 16 * P, false, 1],
      [B + 40 * P, true, 0],
    ]);
    expect(d.dataChanged[1]!.a.label).toBe("order-3 folios");
    expect(d.dataChanged[1]!.b.label).toBe("order-1 folios");
    expect(d.unchanged).toBe(1);
    expect(rangeDiffEmpty(d)).toBe(false);
  });

  it("is empty for equal lists with no changed pages", () => {
    const d = diffRanges(a, a, () => 0);
    expect(rangeDiffEmpty(d)).toBe(true);
    expect(d.unchanged).toBe(a.length);
  });
});

describe("followChunks and diffChunks", () => {
  /* Pages in a map; anything else is "not a page in RAM". */
  function pages(map: Map<number, Uint8Array>) {
    return (phys: number) => map.get(phys);
  }
  const C0 = B + 0x100 * P;
  const C1 = B + 0x200 * P;
  const C2 = B + 0x300 * P;

  it("follows next pointers to 0", () => {
    const m = new Map([
      [C0, encodeChunk(C1, [r(0, 1)])],
      [C1, encodeChunk(0, [r(2, 1)])],
    ]);
    const f = followChunks(BigInt(C0), pages(m), 10);
    expect(f.stop).toBeUndefined();
    expect(f.chunks.map((c) => [c.addr, c.next, c.numRanges])).toEqual([
      [C0, BigInt(C1), 1n],
      [C1, 0n, 1n],
    ]);
  });

  it("stops at a cycle, an unreadable page and the limit, keeping what it found", () => {
    const cyc = new Map([
      [C0, encodeChunk(C1, [])],
      [C1, encodeChunk(C0, [])],
    ]);
    expect(followChunks(BigInt(C0), pages(cyc), 10)).toMatchObject({ stop: expect.stringMatching(/cycle/) });
    expect(followChunks(BigInt(C0), pages(cyc), 10).chunks).toHaveLength(2);
    const bad = new Map([[C0, encodeChunk(C0 + 8, [])]]);
    expect(followChunks(BigInt(C0), pages(bad), 10)).toMatchObject({ stop: expect.stringMatching(/not a page/), chunks: [{ addr: C0 }] });
    expect(followChunks(BigInt(C0), pages(cyc), 1).stop).toMatch(/more than 1/);
    expect(followChunks(0n, pages(cyc), 10)).toEqual({ chunks: [], stop: undefined });
  });

  it("names chunks added, removed, relinked (next changed) and moved", () => {
    const link = (addr: number, next: number, n = 1n): ChunkLink => ({ addr, next: BigInt(next), numRanges: n });
    const a = [link(C0, C1), link(C1, 0)];
    const b = [link(C0, C2), link(C2, 0)];
    const d = diffChunks(a, b, BigInt(C0), BigInt(C0));
    expect(d.relinked).toEqual([{ addr: C0, a: { addr: C0, index: 0, next: BigInt(C1), numRanges: 1n }, b: { addr: C0, index: 0, next: BigInt(C2), numRanges: 1n } }]);
    expect(d.removed.map((c) => c.addr)).toEqual([C1]);
    expect(d.added.map((c) => [c.addr, c.index])).toEqual([[C2, 1]]);
    expect(chunkDiffEmpty(d)).toBe(false);

    // metadata points at C1 directly: C0 drops out, C1 moves to the front with its next unchanged.
    const m = diffChunks(a, [link(C1, 0)], BigInt(C0), BigInt(C1));
    expect(m.removed.map((c) => c.addr)).toEqual([C0]);
    expect(m.moved.map((c) => [c.addr, c.a.index, c.b.index])).toEqual([[C1, 1, 0]]);
    expect(chunkDiffEmpty(diffChunks(a, a, BigInt(C0), BigInt(C0)))).toBe(true);
    expect(chunkDiffEmpty(diffChunks([], [], 0n, BigInt(C0)))).toBe(false);
  });
});

describe("diffChunkPage", () => {
  it("decodes the header fields and the entries whose bytes differ", () => {
    const ranges = [r(0, 1), r(2, 1), r(4, 1)];
    const a = encodeChunk(B + 0x100 * P, ranges);
    const b = encodeChunk(B + 0x101 * P, [r(0, 1), r(2, 2), r(4, 1), r(8, 1)]);
    const d = diffChunkPage(a, b, 0, 0);
    expect(d.header).toEqual(["next", "num_ranges"]);
    expect(d.numRanges).toEqual({ a: 3n, b: 4n });
    expect(d.entries.map((e) => e.index)).toEqual([1, 3]);
    expect(d.entries[0]).toEqual({
      index: 1,
      a: { start: BigInt(B + 2 * P), size: BigInt(P), data: 0n },
      b: { start: BigInt(B + 2 * P), size: BigInt(2 * P), data: 0n },
    });
    expect(d.entries[1]!.a).toEqual({ start: 0n, size: 0n, data: 0n });
    expect(d.entriesChanged).toBe(2);
    expect(diffChunkPage(a, b, 0, undefined, 1).entries).toHaveLength(1);
    expect(diffChunkPage(a, b, 0, undefined, 1).entriesChanged).toBe(2);
  });

  it("finds nothing in equal pages", () => {
    const a = encodeChunk(0, [r(0, 1)]);
    expect(diffChunkPage(a, a.slice())).toMatchObject({ header: [], entries: [], entriesChanged: 0 });
  });
});
