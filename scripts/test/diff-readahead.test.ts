/*
 * diff's sequential read-ahead (scripts/src/diff/readahead.ts): the same
 * bytes and errors as the memory it wraps, for any sequence of reads, and far
 * fewer reads of that memory for consecutive pages.
 */
import { fc, test as fcTest } from "@khosim/shared/test/fc-prop";
import { describe, expect, it } from "vitest";
import { PAGE_SIZE } from "@khosim/shared/abi";
import { PhysMemError, SparseMem, type PhysMem } from "@khosim/shared/mm";
import { READAHEAD_MAX, ReadaheadMem } from "../src/diff/readahead.js";

const BASE = 0x4000_0000;
const SIZE = 4 << 20;

/* A SparseMem with a byte pattern, and a count of the reads that reach it. */
function backing(): { mem: PhysMem; reads: () => number } {
  const m = new SparseMem(BASE, SIZE);
  const page = new Uint8Array(PAGE_SIZE);
  for (let p = 0; p < SIZE / PAGE_SIZE; p += 3) {
    for (let i = 0; i < PAGE_SIZE; i += 512) page[i] = (p * 7 + i) & 0xff;
    m.write(BASE + p * PAGE_SIZE, page);
  }
  let n = 0;
  const mem: PhysMem = {
    base: BASE,
    size: SIZE,
    read: (phys, len) => {
      n++;
      return m.read(phys, len);
    },
    write: (phys, data) => m.write(phys, data),
  };
  return { mem, reads: () => n };
}

/* Byte equality without a deep comparison per element (4 KiB arrays). */
const same = (x: Uint8Array, y: Uint8Array): boolean => Buffer.from(x).equals(Buffer.from(y));

describe("ReadaheadMem", () => {
  it("reads consecutive pages in a few large reads", () => {
    const b = backing();
    const ra = new ReadaheadMem(b.mem);
    for (let p = 0; p < SIZE / PAGE_SIZE; p++) expect(same(ra.read(BASE + p * PAGE_SIZE, PAGE_SIZE), b.mem.read(BASE + p * PAGE_SIZE, PAGE_SIZE))).toBe(true);
    const direct = SIZE / PAGE_SIZE;
    expect(b.reads() - direct).toBeLessThan(SIZE / READAHEAD_MAX + 8);
  });

  fcTest.prop([fc.array(fc.record({ at: fc.integer({ min: -8, max: SIZE + 8 }), len: fc.integer({ min: 0, max: 3 * PAGE_SIZE }), seq: fc.boolean() }), { maxLength: 60 })])(
    "returns the wrapped memory's bytes and errors for any reads, sequential or not",
    (ops) => {
      const b = backing();
      const ra = new ReadaheadMem(b.mem);
      let next = BASE;
      for (const op of ops) {
        const phys = op.seq ? next : BASE + op.at;
        const want = (() => {
          try {
            return b.mem.read(phys, op.len);
          } catch (e) {
            return e as Error;
          }
        })();
        if (want instanceof Error) {
          expect(want).toBeInstanceOf(PhysMemError);
          expect(() => ra.read(phys, op.len)).toThrow(PhysMemError);
          continue;
        }
        const got = ra.read(phys, op.len);
        expect(same(got, want)).toBe(true);
        got.fill(0xee); // a copy: changing it changes nothing underneath
        expect(same(ra.read(phys, op.len), want)).toBe(true);
        next = phys + op.len;
      }
    },
  );
});
