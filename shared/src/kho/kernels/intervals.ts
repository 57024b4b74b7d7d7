/* Sets of byte intervals [start, end) as sorted, merged columns: what was preserved, reserved, lost. */

export interface Intervals {
  start: number[];
  end: number[];
}

/** mergeIntervals - the union of [@starts[i], @ends[i]) as sorted, disjoint, non-adjacent intervals. */
export function mergeIntervals(starts: readonly number[], ends: readonly number[]): Intervals {
  // Walks reserve mostly in address order: sort only when the input is not sorted already.
  let sorted = true;
  for (let i = 1; i < starts.length && sorted; i++) sorted = starts[i - 1]! <= starts[i]!;
  const idx = sorted ? undefined : Array.from({ length: starts.length }, (_, i) => i).sort((x, y) => starts[x]! - starts[y]!);
  const out: Intervals = { start: [], end: [] };
  for (let j = 0; j < starts.length; j++) {
    const i = idx ? idx[j]! : j;
    if (!(ends[i]! > starts[i]!)) continue;
    const n = out.start.length;
    if (n > 0 && starts[i]! <= out.end[n - 1]!) out.end[n - 1] = Math.max(out.end[n - 1]!, ends[i]!);
    else {
      out.start.push(starts[i]!);
      out.end.push(ends[i]!);
    }
  }
  return out;
}

/** subtractIntervals - @a minus @b (both merged): the parts of @a that @b does not cover. */
export function subtractIntervals(a: Intervals, b: Intervals): Intervals {
  const out: Intervals = { start: [], end: [] };
  let j = 0;
  for (let i = 0; i < a.start.length; i++) {
    let s = a.start[i]!;
    const e = a.end[i]!;
    while (j < b.start.length && b.end[j]! <= s) j++;
    let k = j;
    while (s < e && k < b.start.length && b.start[k]! < e) {
      if (b.start[k]! > s) {
        out.start.push(s);
        out.end.push(b.start[k]!);
      }
      s = Math.max(s, b.end[k]!);
      k++;
    }
    if (s < e) {
      out.start.push(s);
      out.end.push(e);
    }
  }
  return out;
}

/** intervalBytes - the bytes @iv covers. */
export function intervalBytes(iv: Intervals): number {
  let n = 0;
  for (let i = 0; i < iv.start.length; i++) n += iv.end[i]! - iv.start[i]!;
  return n;
}

/** coversRange - true when [@start, @start + @size) lies inside @iv. */
export function coversRange(iv: Intervals, start: number, size: number): boolean {
  let lo = 0;
  let hi = iv.start.length - 1;
  while (lo <= hi) {
    const m = (lo + hi) >> 1;
    if (iv.end[m]! <= start) lo = m + 1;
    else if (iv.start[m]! > start) hi = m - 1;
    else return start + size <= iv.end[m]!;
  }
  return false;
}
