/*
 * The ranges format's exact metadata size for the hand-computed cases of
 * kho-facts.md §5 (24 B per range, 170 ranges per 4 KiB chunk, so the cost in
 * memory is one page per started chunk), through the KhoFormat interface the
 * successor uses.
 */
import { describe, expect, test } from "vitest";
import { PAGE_SIZE } from "@khosim/shared/abi";
import { SparseMem } from "@khosim/shared/mm";
import { rangesFormat, type KhoTracker } from "@khosim/shared/kho";

const RAM = 0x4000_0000;
const SIZE = 4 * 2 ** 30;

function serialize(fill: (t: KhoTracker) => void) {
  const t = rangesFormat.createTracker();
  fill(t);
  const mem = new SparseMem(RAM, SIZE);
  let next = RAM + SIZE - PAGE_SIZE;
  const s = rangesFormat.serialize(t, mem, () => (next -= PAGE_SIZE) + PAGE_SIZE, () => 0);
  const w = rangesFormat.walk(mem, BigInt(s.root), { ramBase: RAM, ramSize: SIZE, scratch: [] });
  return { s, w };
}

describe("ranges format: exact metadata sizes", () => {
  test("nothing preserved: no chunk, metadata 0", () => {
    const { s, w } = serialize(() => undefined);
    expect(s).toEqual({ root: 0, metadataPages: [], metadataBytes: 0 });
    expect(w.ranges).toEqual([]);
  });

  test("one isolated order-0 page: one 4096-byte chunk holding one 24-byte range", () => {
    const { s, w } = serialize((t) => t.khoPreserveFolio(RAM + 0x10_0000, 0));
    expect(s.metadataBytes).toBe(4096);
    expect(s.metadataPages).toHaveLength(1);
    expect(w.blockCount).toBe(1);
  });

  test("one aligned 1 GiB kho_preserve_phys range: one chunk, one range, one memblock_reserve", () => {
    const { s, w } = serialize((t) => t.khoPreservePhys(2 ** 31, 2 ** 30));
    expect(s.metadataBytes).toBe(4096);
    expect(w.ranges).toEqual([{ start: 2 ** 31, size: 2 ** 30, data: 0 }]);
    expect(w.blockCount).toBe(1);
  });

  test("171 isolated ranges: 170 fill the first chunk, the 171st starts a second (8192 bytes)", () => {
    const { s, w } = serialize((t) => {
      for (let i = 0; i < 171; i++) t.khoPreserveFolio(RAM + 2 * i * PAGE_SIZE, 0);
    });
    expect(s.metadataBytes).toBe(2 * 4096);
    expect(w.blockCount).toBe(171);
  });

  test("1 GiB of contiguous order-0 folios coalesce into one range", () => {
    const t = rangesFormat.createTracker();
    for (let p = 2 ** 32; p < 2 ** 32 + 2 ** 30; p += PAGE_SIZE) t.khoPreserveFolio(p, 0);
    expect([...t.ranges()]).toEqual([{ start: 2 ** 32, size: 2 ** 30, data: 0x100 }]);
  });
});
