/*
 * Bit helpers on JS numbers, and the one place that judges whether a u64
 * read from untrusted memory fits a JS number (below 2^53).
 *
 * The kernel's helpers work on unsigned long; here every argument is a
 * non-negative integer below 2^53, split into 32-bit halves where Math.clz32
 * needs it (bitwise operators truncate to 32 bits).
 */

/** 2^32: a u64's high half is worth this much. */
export const TWO32 = 2 ** 32;
/** 2^53 as a bigint: a u64 at or above it is not a safe JS integer. */
export const TWO53 = 1n << 53n;
/** 2^64 as a bigint: start + size at or above it overflows a u64. */
export const TWO64 = 1n << 64n;
/** A u64's high u32 half is at least this exactly when the u64 is 2^53 or more. */
export const HI_2_53 = 2 ** 21;

/**
 * ctz - count_trailing_zeros() of @n.
 * @n: a non-negative integer below 2^53
 *
 * Return: the index of the lowest set bit; 64 (BITS_PER_LONG) for 0.
 */
export function ctz(n: number): number {
  if (n === 0) return 64;
  const lo = n % TWO32;
  if (lo !== 0) return 31 - Math.clz32(lo & -lo);
  const hi = Math.floor(n / TWO32);
  return 63 - Math.clz32(hi & -hi);
}

/**
 * fls64 - find last set bit, 1-based, as include/asm-generic/bitops/fls64.h.
 * @n: a non-negative integer below 2^53
 *
 * Return: 0 for 0, else the index of the highest set bit plus one.
 */
export function fls64(n: number): number {
  const hi = Math.floor(n / TWO32);
  return hi > 0 ? 64 - Math.clz32(hi) : 32 - Math.clz32(n >>> 0);
}

/**
 * ilog2 - floor(log2(@n)), exactly.
 * @n: a positive integer below 2^53
 */
export function ilog2(n: number): number {
  return fls64(n) - 1;
}

/**
 * u64Safe - the u64 whose little-endian halves are @lo and @hi, or undefined
 * when it is 2^53 or more (not exact as a JS number).
 */
export function u64Safe(lo: number, hi: number): number | undefined {
  return hi >= HI_2_53 ? undefined : hi * TWO32 + lo;
}

/** u64Of - the exact bigint of the u64 with halves @lo and @hi (for messages). */
export function u64Of(lo: number, hi: number): bigint {
  return (BigInt(hi) << 32n) | BigInt(lo);
}
