/*
 * Searches of ascending number columns, shared by the tracker, the walks
 * and memblock's neighbours.
 */

/**
 * lastAtOrBelow - index of the last of @a[0 .. @n) that is <= @v, or -1
 * when none is (@a ascending).
 * @hint: a previous answer; it and the few after it are tried before
 *        bisecting, so a caller asking in ascending order (a serializer's
 *        chunk pages, a walk's metadata objects) takes O(1) a question
 *        instead of a bisection of up to 1M entries, ~20 cache misses.
 *        Any value is safe: a wrong hint costs only the bisection.
 */
export function lastAtOrBelow(a: ArrayLike<number>, n: number, v: number, hint = 0): number {
  let h = hint;
  if (h >= 0 && h < n && a[h]! <= v) {
    for (let k = 0; k < 4; k++, h++) {
      if (h + 1 === n || a[h + 1]! > v) return h;
    }
  }
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}
