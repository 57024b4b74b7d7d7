/*
 * A small seeded deterministic PRNG: what test_kho gets from get_random_u32()
 * and get_random_bytes(), but reproducible from a seed.
 *
 * Definition (enough to reproduce every byte in another language):
 *
 *  Generator: xoshiro128** 1.1 (Blackman & Vigna, prng.di.unimi.it, the
 *  version that scrambles s1), 32-bit state s0..s3:
 *      result = rotl32(s1 * 5, 7) * 9                    (mod 2^32)
 *      t = s1 << 9
 *      s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t
 *      s3 = rotl32(s3, 11)
 *
 *  Seeding: a u64 seed (a JS number 0..2^53-1 or a bigint 0..2^64-1) is the
 *  initial state x of SplitMix64:
 *      next(): x = x + 0x9e3779b97f4a7c15                  (mod 2^64)
 *              z = x
 *              z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9     (mod 2^64)
 *              z = (z ^ (z >> 27)) * 0x94d049bb133111eb     (mod 2^64)
 *              return z ^ (z >> 31)
 *  a = next(), b = next(); s0 = low32(a), s1 = high32(a), s2 = low32(b),
 *  s3 = high32(b). (The state can never be all zero: SplitMix64's output
 *  function is a bijection, so a and b differ.)
 *
 *  nextU32(): the xoshiro128** result.
 *
 *  below(n), 1 <= n <= 2^53, by rejection (unbiased):
 *      n <= 2^32: x = nextU32(), retried while x >= 2^32 - (2^32 mod n);
 *                 returns x mod n.
 *      n >  2^32: x = (nextU32() >>> 11) * 2^32 + nextU32() (high word drawn
 *                 first), retried while x >= 2^53 - (2^53 mod n);
 *                 returns x mod n.
 *
 *  fill(bytes): byte i is byte (i mod 4) of the (i div 4)-th nextU32() word,
 *  little-endian (byte 0 is the low 8 bits). A trailing partial word still
 *  consumes a whole word; its unused high bytes are dropped.
 *
 *  fork(label): a new independent generator whose seed is
 *      SplitMix64 with x = key XOR fnv1a64(utf8(label)), first next() output,
 *  where key is the parent's seed (for a forked generator: the seed it was
 *  created with) and fnv1a64 is 64-bit FNV-1a (offset basis
 *  0xcbf29ce484222325, prime 0x100000001b3). A number label is used as its
 *  decimal string. Forking depends only on the parent's seed and the label,
 *  not on how much of the parent's stream has been drawn.
 */

const MASK64 = (1n << 64n) - 1n;
const GOLDEN = 0x9e3779b97f4a7c15n;
const TWO32 = 2 ** 32;
const TWO53 = 2 ** 53;

/** The SplitMix64 output for state @x: one next() call from state @x. */
function splitmix64(x: bigint): bigint {
  let z = (x + GOLDEN) & MASK64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

/** 64-bit FNV-1a of the UTF-8 bytes of @s. */
function fnv1a64(s: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (const b of new TextEncoder().encode(s)) {
    h = ((h ^ BigInt(b)) * 0x100000001b3n) & MASK64;
  }
  return h;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
/** Scratch size used to fill buffers whose offset is not 4-aligned. */
const CHUNK = 64 * 1024;

function toSeed(seed: number | bigint): bigint {
  if (typeof seed === "bigint") {
    if (seed < 0n || seed > MASK64) throw new RangeError(`seed ${seed} outside 0..2^64-1`);
    return seed;
  }
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed ${seed} is not an integer in 0..2^53-1`);
  return BigInt(seed);
}

export class Prng {
  /** The u64 seed this generator was created with (see fork()). */
  readonly seed: bigint;
  // State words, kept as int32 (signed); outputs are converted with >>> 0.
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number | bigint) {
    this.seed = toSeed(seed);
    const a = splitmix64(this.seed);
    const b = splitmix64((this.seed + GOLDEN) & MASK64);
    this.s0 = Number(a & 0xffffffffn) | 0;
    this.s1 = Number(a >> 32n) | 0;
    this.s2 = Number(b & 0xffffffffn) | 0;
    this.s3 = Number(b >> 32n) | 0;
  }

  /** Next 32-bit output, 0..2^32-1. */
  nextU32(): number {
    const s0 = this.s0;
    const s1 = this.s1;
    let s2 = this.s2;
    let s3 = this.s3;
    const m = Math.imul(s1, 5);
    const r = Math.imul((m << 7) | (m >>> 25), 9);
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    this.s1 = s1 ^ s2;
    this.s0 = s0 ^ s3;
    this.s2 = s2 ^ t;
    this.s3 = (s3 << 11) | (s3 >>> 21);
    return r >>> 0;
  }

  /** Uniform integer in 0..n-1 for an integer 1 <= n <= 2^53 (unbiased). */
  below(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO53) throw new RangeError(`below(${n}): n must be an integer in 1..2^53`);
    if (n <= TWO32) {
      const limit = TWO32 - (TWO32 % n);
      for (;;) {
        const x = this.nextU32();
        if (x < limit) return x % n;
      }
    }
    const limit = TWO53 - (TWO53 % n);
    for (;;) {
      const hi = this.nextU32() >>> 11;
      const x = hi * TWO32 + this.nextU32();
      if (x < limit) return x % n;
    }
  }

  /** Fill @bytes from the output stream, little-endian (see the header). */
  fill(bytes: Uint8Array): void {
    const len = bytes.length;
    if (len === 0) return;
    if (!LITTLE_ENDIAN) {
      this.fillPortable(bytes);
      return;
    }
    if (bytes.byteOffset % 4 !== 0) {
      // Fill an aligned scratch buffer a chunk (a multiple of 4) at a time:
      // the stream is consumed exactly as for an aligned buffer.
      const tmp = new Uint8Array(Math.min(CHUNK, len));
      for (let off = 0; off < len; off += CHUNK) {
        const part = tmp.subarray(0, Math.min(CHUNK, len - off));
        this.fill(part);
        bytes.set(part, off);
      }
      return;
    }
    const nWords = len >>> 2;
    if (nWords > 0) this.fillWords(new Uint32Array(bytes.buffer, bytes.byteOffset, nWords));
    const tail = len & 3;
    if (tail !== 0) {
      const w = this.nextU32();
      for (let i = 0; i < tail; i++) bytes[nWords * 4 + i] = (w >>> (8 * i)) & 0xff;
    }
  }

  /** A new Uint8Array of @n bytes filled by fill(). */
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    this.fill(b);
    return b;
  }

  /** An independent generator derived from this one's seed and @label (see the header). */
  fork(label: string | number): Prng {
    return new Prng(splitmix64(this.seed ^ fnv1a64(String(label))));
  }

  /** Tight loop of nextU32() into @w (host byte order, little-endian here). */
  private fillWords(w: Uint32Array): void {
    let s0 = this.s0;
    let s1 = this.s1;
    let s2 = this.s2;
    let s3 = this.s3;
    const n = w.length;
    for (let i = 0; i < n; i++) {
      const m = Math.imul(s1, 5);
      w[i] = Math.imul((m << 7) | (m >>> 25), 9);
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = (s3 << 11) | (s3 >>> 21);
    }
    this.s0 = s0;
    this.s1 = s1;
    this.s2 = s2;
    this.s3 = s3;
  }

  /** Byte-by-byte fill, for big-endian hosts. */
  private fillPortable(bytes: Uint8Array): void {
    for (let i = 0; i < bytes.length; i += 4) {
      const w = this.nextU32();
      for (let j = 0; j < 4 && i + j < bytes.length; j++) bytes[i + j] = (w >>> (8 * j)) & 0xff;
    }
  }
}
