/* lib/search.ts: lastAtOrBelow against a linear scan, with good, stale and nonsense hints. */
import { describe, expect, it } from "vitest";
import { lastAtOrBelow } from "../src/lib/search.js";

/* The answer by definition: the last index whose value is <= v, -1 when none. */
function linear(a: ArrayLike<number>, n: number, v: number): number {
  let r = -1;
  for (let i = 0; i < n; i++) if (a[i]! <= v) r = i;
  return r;
}

describe("lastAtOrBelow", () => {
  it("answers as a linear scan for every value, every hint and every prefix length, on columns with gaps and repeats", () => {
    let seed = 7;
    const rnd = (k: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % k;
    };
    let first: string | undefined;
    let cases = 0;
    for (let round = 0; round < 40; round++) {
      const len = rnd(40);
      const a = new Float64Array(len);
      for (let i = 0, v = rnd(5); i < len; i++, v += rnd(4)) a[i] = v * 4096;
      const arr = Array.from(a);
      for (let n = 0; n <= len; n++) {
        for (let v = -4096; v <= (len * 4 + 4) * 4096; v += 2048) {
          const want = linear(a, n, v);
          for (const hint of [0, -3, want, want - 1, want + 1, want - 5, want + 5, n, n + 7, rnd(len + 1)]) {
            // Checked without expect() per case (hundreds of thousands of them): the first miss is reported below.
            const got = lastAtOrBelow(a, n, v, hint);
            const gotArr = lastAtOrBelow(arr, n, v, hint);
            if ((got !== want || gotArr !== want) && first === undefined) first = `n ${n}, v ${v}, hint ${hint}: ${got} / ${gotArr}, want ${want}`;
            cases++;
          }
        }
      }
    }
    expect(first).toBeUndefined();
    expect(cases).toBeGreaterThan(100_000);
  });

  it("an ascending stream of questions, each hinted with the answer before, walks the column once", () => {
    const a = Float64Array.from({ length: 1000 }, (_, i) => i * 2 * 4096);
    let h = 0;
    for (let v = 0; v < 2000 * 4096; v += 4096) {
      h = lastAtOrBelow(a, a.length, v, h);
      expect(h).toBe(Math.min(999, Math.floor(v / 8192)));
    }
  });
});
