import { describe, expect, it } from "vitest";
import { Prng } from "../src/lib/prng.js";

/* ---- reference implementation: the definition written out with BigInt ---- */

const M64 = (1n << 64n) - 1n;
const M32 = (1n << 32n) - 1n;
const G = 0x9e3779b97f4a7c15n;

class RefSplitMix64 {
  constructor(private x: bigint) {}
  next(): bigint {
    this.x = (this.x + G) & M64;
    let z = this.x;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64;
    return z ^ (z >> 31n);
  }
}

const rotl32 = (x: bigint, k: bigint): bigint => ((x << k) | (x >> (32n - k))) & M32;

class RefXoshiro128ss {
  s: bigint[];
  constructor(seed: bigint) {
    const sm = new RefSplitMix64(seed);
    const a = sm.next();
    const b = sm.next();
    this.s = [a & M32, a >> 32n, b & M32, b >> 32n];
  }
  nextU32(): number {
    const s = this.s as [bigint, bigint, bigint, bigint];
    const result = (rotl32((s[1] * 5n) & M32, 7n) * 9n) & M32;
    const t = (s[1] << 9n) & M32;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl32(s[3], 11n);
    return Number(result);
  }
}

function refFnv1a64(label: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (const b of Buffer.from(label, "utf8")) h = ((h ^ BigInt(b)) * 0x100000001b3n) & M64;
  return h;
}

function refForkSeed(seed: bigint, label: string): bigint {
  return new RefSplitMix64(seed ^ refFnv1a64(label)).next();
}

function refBelow(r: RefXoshiro128ss, n: number): number {
  const N = BigInt(n);
  if (n <= 2 ** 32) {
    const limit = (1n << 32n) - ((1n << 32n) % N);
    for (;;) {
      const x = BigInt(r.nextU32());
      if (x < limit) return Number(x % N);
    }
  }
  const limit = (1n << 53n) - ((1n << 53n) % N);
  for (;;) {
    const hi = BigInt(r.nextU32()) >> 11n;
    const x = (hi << 32n) | BigInt(r.nextU32());
    if (x < limit) return Number(x % N);
  }
}

function take(p: { nextU32(): number }, n: number): number[] {
  return Array.from({ length: n }, () => p.nextU32());
}

/** The nextU32 stream laid out little-endian, cut to @len bytes. */
function streamBytes(seed: number, len: number): Uint8Array {
  const r = new Prng(seed);
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i += 4) {
    const w = r.nextU32();
    for (let j = 0; j < 4 && i + j < len; j++) out[i + j] = (w >>> (8 * j)) & 0xff;
  }
  return out;
}

describe("Prng: known answers", () => {
  it("reference SplitMix64 matches its published vector", () => {
    const sm = new RefSplitMix64(0n);
    expect([sm.next(), sm.next(), sm.next()]).toEqual([0xe220a8397b1dcdafn, 0x6e789e6aa1b965f4n, 0x06c45d188009454fn]);
  });

  it("matches vectors computed independently from the definition", () => {
    // Computed once with a separate Python implementation of the header's definition.
    const vectors: [number | bigint, number[]][] = [
      [0, [0xdec9045d, 0x9a089d75, 0xab77d362, 0xc3e16405, 0x5c95a8da, 0x60dea056]],
      [1, [0x650941ba, 0x54d30301, 0x25d2f321, 0x3fabdca9, 0x2ab8e0a6, 0xf9890067]],
      [42, [0x69e85a2a, 0xf843fad0, 0x0105185f, 0x8a1f1ea6, 0xa66be2a9, 0x9844904e]],
      [2 ** 53 - 1, [0x4980a133, 0x4cb68966, 0x277278c2, 0xb0783cff, 0x9b095106, 0x3dc1dbe9]],
      [M64, [0x1c78f79c, 0x94a7662a, 0x211f3ea0, 0x243a6ba3, 0x03a7fd33, 0x11f80560]],
    ];
    for (const [seed, want] of vectors) {
      expect(take(new Prng(seed), 6)).toEqual(want);
      expect(take(new RefXoshiro128ss(BigInt(seed)), 6)).toEqual(want);
    }
    expect(take(new Prng(42).fork("folio"), 4)).toEqual([0x62a8b21f, 0x2944352c, 0x96670627, 0xcf61f731]);
    expect(take(new Prng(7).fork("αβ").fork(3), 4)).toEqual([0x446c74c4, 0x740f4bc8, 0x2ababc06, 0x576d4ac2]);
    expect(Buffer.from(new Prng(42).bytes(10)).toString("hex")).toBe("2a5ae869d0fa43f85f18");
  });

  it("matches the BigInt reference over long streams and many seeds", () => {
    for (const seed of [0, 1, 2, 3, 0xffffffff, 2 ** 32, 123456789012345, 2 ** 53 - 1]) {
      expect(take(new Prng(seed), 1000)).toEqual(take(new RefXoshiro128ss(BigInt(seed)), 1000));
    }
    for (const seed of [0n, 1n << 63n, M64, 0xdeadbeefcafef00dn]) {
      expect(take(new Prng(seed), 200)).toEqual(take(new RefXoshiro128ss(seed), 200));
    }
  });

  it("fork follows the documented derivation", () => {
    for (const label of ["", "a", "kho_test", "folio-17", "日本"]) {
      const child = new Prng(99).fork(label);
      expect(child.seed).toBe(refForkSeed(99n, label));
      expect(take(child, 50)).toEqual(take(new RefXoshiro128ss(refForkSeed(99n, label)), 50));
    }
    expect(new Prng(5).fork(12).seed).toBe(new Prng(5).fork("12").seed);
  });
});

describe("Prng: determinism and streams", () => {
  it("same seed gives the same stream; different seeds differ", () => {
    expect(take(new Prng(2024), 100)).toEqual(take(new Prng(2024), 100));
    expect(take(new Prng(2024), 100)).not.toEqual(take(new Prng(2025), 100));
    expect(take(new Prng(5), 10)).toEqual(take(new Prng(5n), 10));
  });

  it("fork is independent of consumption and of other labels", () => {
    const a = new Prng(11);
    const before = take(a.fork("x"), 20);
    take(a, 1000);
    expect(take(a.fork("x"), 20)).toEqual(before);
    expect(take(a.fork("y"), 20)).not.toEqual(before);
    expect(take(a.fork("x").fork("y"), 20)).not.toEqual(take(a.fork("y").fork("x"), 20));
    expect(take(a.fork("x"), 20)).not.toEqual(take(new Prng(11), 20));
  });

  it("rejects bad seeds", () => {
    expect(() => new Prng(-1)).toThrow(RangeError);
    expect(() => new Prng(1.5)).toThrow(RangeError);
    expect(() => new Prng(2 ** 53)).toThrow(RangeError);
    expect(() => new Prng(-1n)).toThrow(RangeError);
    expect(() => new Prng(1n << 64n)).toThrow(RangeError);
  });
});

describe("Prng: below", () => {
  it("matches the reference rejection sampler, including large n", () => {
    const sizes = [1, 2, 3, 7, 10, 11, 1000, 0x80000001, 0xffffffff, 2 ** 32, 2 ** 32 + 1, 3 * 2 ** 40 + 5, 2 ** 53];
    const p = new Prng(77);
    const r = new RefXoshiro128ss(77n);
    for (let i = 0; i < 3000; i++) {
      const n = sizes[i % sizes.length]!;
      const v = p.below(n);
      expect(v).toBe(refBelow(r, n));
      expect(Number.isInteger(v) && v >= 0 && v < n).toBe(true);
    }
  });

  it("is roughly uniform", () => {
    const p = new Prng(3);
    const n = 10;
    const draws = 200_000;
    const counts = new Array<number>(n).fill(0);
    for (let i = 0; i < draws; i++) counts[p.below(n)]!++;
    let chi2 = 0;
    for (const c of counts) chi2 += (c - draws / n) ** 2 / (draws / n);
    expect(chi2).toBeLessThan(30); // 9 degrees of freedom: p < 0.001
    // A range just above 2^31 would be badly biased by a plain modulo.
    const m = 0x80000001;
    let low = 0;
    for (let i = 0; i < 20_000; i++) if (p.below(m) < m / 2) low++;
    expect(Math.abs(low - 10_000)).toBeLessThan(600);
    expect(new Prng(1).below(1)).toBe(0);
  });

  it("rejects bad bounds", () => {
    const p = new Prng(1);
    for (const n of [0, -1, 1.5, 2 ** 53 + 2, NaN, Infinity]) expect(() => p.below(n)).toThrow(RangeError);
  });
});

describe("Prng: fill", () => {
  it("equals the nextU32 stream laid out little-endian, for any length", () => {
    for (let len = 0; len <= 40; len++) {
      const b = new Uint8Array(len);
      new Prng(8).fill(b);
      expect(b).toEqual(streamBytes(8, len));
    }
  });

  it("consumes whole words, so the stream continues after a fill", () => {
    for (const len of [1, 4, 5, 8, 4095]) {
      const p = new Prng(9);
      p.fill(new Uint8Array(len));
      const q = new Prng(9);
      take(q, Math.ceil(len / 4));
      expect(take(p, 5)).toEqual(take(q, 5));
    }
  });

  it("gives the same bytes at unaligned offsets and across scratch chunks", () => {
    const len = 200_003;
    const want = streamBytes(21, len);
    for (const off of [0, 1, 2, 3, 4, 7]) {
      const buf = new Uint8Array(len + 8);
      const view = buf.subarray(off, off + len);
      new Prng(21).fill(view);
      expect(Buffer.from(view).equals(Buffer.from(want))).toBe(true);
      expect(buf.subarray(0, off).every((x) => x === 0)).toBe(true);
      expect(buf.subarray(off + len).every((x) => x === 0)).toBe(true);
    }
  });

  it("split fills of multiples of 4 equal one fill", () => {
    const p = new Prng(4);
    const parts = [new Uint8Array(12), new Uint8Array(4096), new Uint8Array(7)];
    for (const part of parts) p.fill(part);
    const whole = new Prng(4).bytes(12 + 4096 + 7);
    expect(Buffer.concat(parts.map((x) => Buffer.from(x))).equals(Buffer.from(whole))).toBe(true);
  });
});
