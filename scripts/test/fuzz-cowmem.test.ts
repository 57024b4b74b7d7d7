/*
 * CowMem, the fuzzer's view of a handoff's memory: damage lands in its own
 * pages (OverlayMem's), never in the handoff; once sealed, every read the
 * successor makes (read() or readInto()) is counted for the work bound, and
 * any write is a FuzzViolation that is counted and changes nothing.
 */
import { describe, expect, test } from "vitest";
import { PAGE_SIZE } from "@khosim/shared/abi";
import { SparseMem, physReadInto } from "@khosim/shared/mm";
import { CowMem, FuzzViolation } from "../src/fuzz-core.js";
import { thrownBy } from "@khosim/shared/test/thrown";

const BASE = 0x40000000;

/* 8 pages of RAM, page k filled with byte k + 1. */
function lowerMem(): SparseMem {
  const m = new SparseMem(BASE, 8 * PAGE_SIZE);
  for (let k = 0; k < 8; k++) m.write(BASE + k * PAGE_SIZE, new Uint8Array(PAGE_SIZE).fill(k + 1));
  return m;
}

describe("CowMem", () => {
  test("writes before the seal land in its own pages, read across a page boundary over the lower bytes; the lower memory is untouched and nothing is counted", () => {
    const lower = lowerMem();
    const mem = new CowMem(lower);
    mem.write(BASE + 2 * PAGE_SIZE - 2, Uint8Array.of(0xaa, 0xbb, 0xcc));
    expect([...mem.read(BASE + 2 * PAGE_SIZE - 3, 5)]).toEqual([2, 0xaa, 0xbb, 0xcc, 3]);
    const into = new Uint8Array(5);
    mem.readInto(BASE + 2 * PAGE_SIZE - 3, into);
    expect([...into]).toEqual([2, 0xaa, 0xbb, 0xcc, 3]);
    expect([...lower.read(BASE + 2 * PAGE_SIZE - 2, 3)]).toEqual([2, 2, 3]);
    expect([mem.reads, mem.readBytes, mem.writesAfterSeal]).toEqual([0, 0, 0]);
  });

  test("after the seal, read() and readInto() (what physReadInto takes) are each counted as one read of their length", () => {
    const mem = new CowMem(lowerMem());
    mem.read(BASE, 100);
    mem.sealed = true;
    mem.read(BASE, 16);
    mem.read(BASE + PAGE_SIZE, 2 * PAGE_SIZE);
    physReadInto(mem, BASE + 5 * PAGE_SIZE, new Uint8Array(40));
    expect(mem.reads).toBe(3);
    expect(mem.readBytes).toBe(16 + 2 * PAGE_SIZE + 40);
  });

  test("a read outside RAM after the seal is counted and throws the lower memory's PhysMemError", () => {
    const mem = new CowMem(lowerMem());
    mem.sealed = true;
    expect(() => mem.read(BASE + 8 * PAGE_SIZE - 4, 8)).toThrow(/outside RAM/);
    expect([mem.reads, mem.readBytes]).toEqual([1, 8]);
  });

  test("a write after the seal throws FuzzViolation naming its size and address, is counted, and changes nothing", () => {
    const mem = new CowMem(lowerMem());
    mem.write(BASE, Uint8Array.of(9));
    mem.sealed = true;
    const err = thrownBy(FuzzViolation, () => mem.write(BASE + 3 * PAGE_SIZE + 8, new Uint8Array(4).fill(0xee)));
    expect(err.message).toBe(`the successor wrote 4 bytes of its input at 0x${(BASE + 3 * PAGE_SIZE + 8).toString(16)}`);
    expect(() => mem.write(BASE, Uint8Array.of(1))).toThrow(FuzzViolation);
    expect(mem.writesAfterSeal).toBe(2);
    expect([...mem.read(BASE + 3 * PAGE_SIZE + 8, 4)]).toEqual([4, 4, 4, 4]);
    expect([...mem.read(BASE, 2)]).toEqual([9, 1]);
    expect(mem.touchedPages).toBe(1);
  });
});
