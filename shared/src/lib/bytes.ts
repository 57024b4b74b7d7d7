/*
 * Little readers and writers over byte buffers, after protobuf-es's
 * binary-encoding: one method per field type, bounds asserted in one place.
 * Everything that parses untrusted bytes (FDT, chunks, scratch arrays) goes
 * through ByteReader so that no read can pass the end of its buffer.
 */

/** Largest physical address / size khosim represents as a JS number. */
export const MAX_SAFE_U64 = Number.MAX_SAFE_INTEGER;

/** Thrown when a read or write would leave the buffer. */
export class BoundsError extends Error {
  constructor(
    readonly offset: number,
    readonly length: number,
    readonly limit: number,
  ) {
    super(`access of ${length} bytes at offset ${offset} passes the end (${limit})`);
    this.name = "BoundsError";
  }
}

/**
 * u64ToNumber - convert a u64 read from a file to a JS number.
 * Returns undefined when the value is 2^53 or more; callers turn that into
 * their own typed error naming the field.
 */
export function u64ToNumber(v: bigint): number | undefined {
  return v <= BigInt(MAX_SAFE_U64) ? Number(v) : undefined;
}

/** Format a number or bigint as 0x-prefixed lowercase hex. */
export function hex(v: number | bigint): string {
  return "0x" + v.toString(16);
}

/** Random-access reader; every method checks its bounds before reading. */
export class ByteReader {
  readonly view: DataView;

  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get length(): number {
    return this.bytes.length;
  }

  /** True when [off, off + len) lies inside the buffer. */
  inBounds(off: number, len: number): boolean {
    return Number.isInteger(off) && Number.isInteger(len) && off >= 0 && len >= 0 && off + len <= this.bytes.length;
  }

  private check(off: number, len: number): void {
    if (!this.inBounds(off, len)) throw new BoundsError(off, len, this.bytes.length);
  }

  u8(off: number): number {
    this.check(off, 1);
    return this.view.getUint8(off);
  }

  u32be(off: number): number {
    this.check(off, 4);
    return this.view.getUint32(off, false);
  }

  u32le(off: number): number {
    this.check(off, 4);
    return this.view.getUint32(off, true);
  }

  u64be(off: number): bigint {
    this.check(off, 8);
    return this.view.getBigUint64(off, false);
  }

  u64le(off: number): bigint {
    this.check(off, 8);
    return this.view.getBigUint64(off, true);
  }

  /** A view (not a copy) of [off, off + len). */
  slice(off: number, len: number): Uint8Array {
    this.check(off, len);
    return this.bytes.subarray(off, off + len);
  }
}

/** Random-access writer over a fixed buffer. */
export class ByteWriter {
  readonly view: DataView;

  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private check(off: number, len: number): void {
    if (!(Number.isInteger(off) && off >= 0 && off + len <= this.bytes.length)) {
      throw new BoundsError(off, len, this.bytes.length);
    }
  }

  u32be(off: number, v: number): void {
    this.check(off, 4);
    this.view.setUint32(off, v, false);
  }

  u32le(off: number, v: number): void {
    this.check(off, 4);
    this.view.setUint32(off, v, true);
  }

  u64be(off: number, v: number | bigint): void {
    this.check(off, 8);
    this.view.setBigUint64(off, BigInt(v), false);
  }

  u64le(off: number, v: number | bigint): void {
    this.check(off, 8);
    this.view.setBigUint64(off, BigInt(v), true);
  }

  bytesAt(off: number, data: Uint8Array): void {
    this.check(off, data.length);
    this.bytes.set(data, off);
  }
}

/** True when this host stores typed-array elements little endian (x86, arm64 as Linux runs them). */
export const HOST_LE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * u64Writer - a function storing little-endian u64s into @bytes.
 * @bytes: the buffer; its byteOffset must be a multiple of 4
 *
 * The returned put(off, v) stores the non-negative safe integer @v at byte
 * @off (a multiple of 8, inside @bytes: callers write fixed layouts, the
 * typed array ignores a store past its end) as two u32 halves through one
 * Uint32Array view: no BigInt, no DataView call per field. On a big-endian
 * host it falls back to DataView.setUint32(.., true).
 */
export function u64Writer(bytes: Uint8Array): (off: number, v: number) => void {
  if (bytes.byteOffset % 4 !== 0) throw new RangeError(`u64Writer: byteOffset ${bytes.byteOffset} is not a multiple of 4`);
  if (HOST_LE) {
    const w = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
    return (off, v) => {
      const lo = v >>> 0;
      w[off >>> 2] = lo;
      w[(off >>> 2) + 1] = (v - lo) / 4294967296;
    };
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return (off, v) => {
    const lo = v >>> 0;
    dv.setUint32(off, lo, true);
    dv.setUint32(off + 4, (v - lo) / 4294967296, true);
  };
}

/**
 * u32View - @bytes as little-endian u32s: a Uint32Array over the same memory
 * when the host is little endian and @bytes is 4-aligned, else over a copy
 * with each element byte-swapped as needed. For bulk reads of LE structures.
 */
export function u32View(bytes: Uint8Array): Uint32Array {
  const n = bytes.byteLength >>> 2;
  if (HOST_LE && bytes.byteOffset % 4 === 0) return new Uint32Array(bytes.buffer, bytes.byteOffset, n);
  const out = new Uint32Array(n);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < n; i++) out[i] = dv.getUint32(4 * i, true);
  return out;
}

/** Encode a u64 as 8 little-endian bytes (KHO's raw native-endian property values). */
export function u64leBytes(v: number | bigint): Uint8Array {
  const b = new Uint8Array(8);
  new ByteWriter(b).u64le(0, v);
  return b;
}

/** Encode a u32 as 4 little-endian bytes. */
export function u32leBytes(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new ByteWriter(b).u32le(0, v);
  return b;
}

/** Encode u64 values as big-endian 2-cell pairs (DT `reg`-style cells). */
export function u64beCells(...vals: (number | bigint)[]): Uint8Array {
  const b = new Uint8Array(8 * vals.length);
  const w = new ByteWriter(b);
  vals.forEach((v, i) => w.u64be(8 * i, v));
  return b;
}
