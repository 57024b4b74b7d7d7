/*
 * What the memblock tests share, like tools/testing/memblock/tests/common.h:
 * the SZ_* sizes and one assertion of a whole region list.
 */
import { expect } from "vitest";
import { MEMBLOCK_NONE, Memblock, type MemblockTypeName } from "../src/mm/memblock/index.js";

export const SZ_2 = 2;
export const SZ_512 = 0x200;
export const SZ_1K = 0x400;
export const SZ_2K = 0x800;
export const SZ_4K = 0x1000;
export const SZ_8K = 0x2000;
export const SZ_16K = 0x4000;
export const SZ_32K = 0x8000;
export const SZ_64K = 0x10000;
export const SZ_128K = 0x20000;
export const SZ_1M = 0x100000;
export const SZ_2M = 0x200000;
export const SZ_4M = 0x400000;
export const SZ_16M = 0x1000000;
export const SZ_32M = 0x2000000;
export const SZ_256M = 0x10000000;
export const SZ_512M = 0x20000000;
export const SZ_1G = 0x40000000;
export const SZ_2G = 0x80000000;
export const SZ_4G = 0x100000000;

/** A region as the tests write it: [base, size, flags (default MEMBLOCK_NONE)]. */
export type R = [base: number, size: number, flags?: number];

/**
 * expectRegions - assert the whole region list of @type, its count and its
 * total size, then the invariants memblockSelfCheck() verifies.
 * @m: the memblock under test
 * @type: "memory" or "reserved"
 * @want: every region, ascending
 */
export function expectRegions(m: Memblock, type: MemblockTypeName, want: R[]): void {
  const regions = m.regions(type);
  expect(regions).toEqual(want.map(([base, size, flags]) => ({ base, size, flags: flags ?? MEMBLOCK_NONE })));
  expect(m.regionCount(type)).toBe(want.length);
  expect(m.totalSize(type)).toBe(want.reduce((t, [, size]) => t + size, 0));
  m.memblockSelfCheck();
}

/** fresh - an empty memblock (no memory, nothing reserved). */
export function fresh(): Memblock {
  return new Memblock();
}
