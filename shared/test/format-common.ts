/*
 * What the format-*.test.ts files and walk.test.ts share: the radix and
 * posted tests' machine, a bump page allocator, u64 access to simulated
 * memory, and catching and checking a walker's KhoWalkError.
 */
import { expect } from "vitest";
import { PAGE_SIZE } from "../src/abi/page.js";
import { ByteReader, u64leBytes } from "../src/lib/bytes.js";
import { KhoWalkError, type KhoWalkContext, type KhoWalkErrorCode } from "../src/kho/walk.js";
import type { PhysMem } from "../src/mm/physmem.js";

/* The radix and posted tests' machine: 4 GiB of RAM from 1 GiB, 16 MiB of scratch inside it. */
export const RAM_BASE = 0x4000_0000;
export const RAM_SIZE = 4 * 2 ** 30;
export const RAM_END = RAM_BASE + RAM_SIZE;
export const SCRATCH = { addr: 0x4800_0000, size: 0x0100_0000 };
export const CTX: KhoWalkContext = { ramBase: RAM_BASE, ramSize: RAM_SIZE, scratch: [SCRATCH] };

/**
 * bumpPages - a page allocator for serialize(): one page per call, in
 * ascending order from @start, never freed.
 * @start: the first page handed out
 */
export function bumpPages(start: number): () => number {
  let next = start;
  return () => {
    const p = next;
    next += PAGE_SIZE;
    return p;
  };
}

/** u64At - the little-endian u64 at @phys in @mem. */
export function u64At(mem: PhysMem, phys: number): bigint {
  return new ByteReader(mem.read(phys, 8)).u64le(0);
}

/** poke64 - write @v as a little-endian u64 at @phys in @mem. */
export function poke64(mem: PhysMem, phys: number, v: number | bigint): void {
  mem.write(phys, u64leBytes(v));
}

/**
 * catchWalkError - run @walk and return the KhoWalkError it throws; any other
 * error, or none, fails the test.
 * @walk: a walker call on damaged metadata
 */
export function catchWalkError(walk: () => unknown): KhoWalkError {
  try {
    walk();
  } catch (e) {
    expect(e).toBeInstanceOf(KhoWalkError);
    return e as KhoWalkError;
  }
  throw new Error("expected a KhoWalkError, the walk returned");
}

/* Where a chunk-list walk (ranges, posted) stopped, in the chunk list's terms. */
export interface ChunkWant {
  code: KhoWalkErrorCode;
  chunkIndex?: number;
  chunkPhys?: number;
  rangeIndex?: number;
  field?: string;
  offset?: number;
}

/**
 * expectChunkError - assert @e's code and every location field a
 * chunk-list walk sets, those @want leaves out included (they must be
 * absent), and a one-line message.
 * @e: the walker's error
 * @want: the code and the location
 */
export function expectChunkError(e: KhoWalkError, want: ChunkWant): void {
  expect({ code: e.code, chunkIndex: e.index, chunkPhys: e.phys, rangeIndex: e.entry, field: e.field, offset: e.offset }).toEqual({
    chunkIndex: undefined,
    chunkPhys: undefined,
    rangeIndex: undefined,
    field: undefined,
    offset: undefined,
    ...want,
  });
  expect(e.message).not.toContain("\n");
}
