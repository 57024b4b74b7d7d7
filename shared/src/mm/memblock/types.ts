/*
 * The rest of include/linux/memblock.h the model needs: struct
 * memblock_region, the @end values of the allocation API, PHYS_ADDR_MAX,
 * and the argument checks every entry point applies.
 */

/** Highest physical address khosim represents (phys_addr_t's maximum here). */
export const PHYS_ADDR_MAX = Number.MAX_SAFE_INTEGER;
/** @end value meaning "no upper limit" (the kernel's ~(phys_addr_t)0). */
export const MEMBLOCK_ALLOC_ANYWHERE = PHYS_ADDR_MAX;
/** @end value meaning "up to memblock.current_limit". */
export const MEMBLOCK_ALLOC_ACCESSIBLE = 0;
/** Like ACCESSIBLE, without kmemleak tracking (no difference in this model). */
export const MEMBLOCK_ALLOC_NOLEAKTRACE = 1;
/** Alignment used when an allocation asks for align 0 (x86-64 L1 line). */
export const SMP_CACHE_BYTES = 64;

/** The two region lists of struct memblock. */
export type MemblockTypeName = "memory" | "reserved";

/** struct memblock_region without nid: [base, base + size) with flags. */
export interface MemblockRegion {
  base: number;
  size: number;
  flags: number;
}

/** A free physical range [base, base + size). */
export interface PhysRange {
  base: number;
  size: number;
}

/** EINVAL: bad argument; ENOMEM: an allocation found no room. */
export type MemblockErrorCode = "EINVAL" | "ENOMEM";

/** Typed error for invalid arguments and failed strict allocations. */
export class MemblockError extends Error {
  constructor(
    readonly code: MemblockErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "MemblockError";
  }
}

/**
 * checkPhys - reject anything but a non-negative safe integer.
 * @fn: kernel function name for the message
 * @what: argument name
 * @v: the value
 */
export function checkPhys(fn: string, what: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new MemblockError("EINVAL", `${fn}: ${what} ${String(v)} is not a non-negative safe integer`);
  }
}

/**
 * checkRange - validate (@base, @size) for @fn.
 *
 * Return: @size capped so that base + size stays within PHYS_ADDR_MAX,
 * like memblock_cap_size() (mm/memblock.c).
 */
export function checkRange(fn: string, base: number, size: number): number {
  checkPhys(fn, "base", base);
  checkPhys(fn, "size", size);
  return Math.min(size, PHYS_ADDR_MAX - base);
}
