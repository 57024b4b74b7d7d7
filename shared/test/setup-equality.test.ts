/* The byte-wise typed-array equality of setup-equality.ts decides exactly as the default rules. */
import { describe, expect, test } from "vitest";
import { integerArraysEqual } from "./setup-equality.js";

describe("toEqual on typed arrays (setup-equality.ts)", () => {
  test("equal bytes are equal, one differing byte or length is not, views at an offset compare their own bytes", () => {
    const page = new Uint8Array(4096).fill(7);
    expect(new Uint8Array(page)).toEqual(page);
    const other = new Uint8Array(page);
    other[4095] = 8;
    expect(other).not.toEqual(page);
    expect(integerArraysEqual(other, page)).toBe(false);
    expect(page.subarray(0, 100)).not.toEqual(page);
    const big = new Uint8Array(8192).fill(9, 0, 4096).fill(7, 4096);
    expect(big.subarray(4096)).toEqual(page);
    expect(big.subarray(0, 4096)).not.toEqual(page);
    expect(new BigUint64Array([1n, 2n])).toEqual(new BigUint64Array([1n, 2n]));
    expect(new BigUint64Array([1n, 2n])).not.toEqual(new BigUint64Array([1n, 3n]));
  });

  test("inside objects and arrays too", () => {
    expect({ a: [new Uint32Array([1, 2])] }).toEqual({ a: [new Uint32Array([1, 2])] });
    expect({ a: [new Uint32Array([1, 2])] }).not.toEqual({ a: [new Uint32Array([1, 9])] });
  });

  test("what it leaves to the default rules: other constructors, float arrays, non-views", () => {
    expect(integerArraysEqual(Buffer.from([1]), new Uint8Array([1]))).toBeUndefined();
    expect(Buffer.from([1])).not.toEqual(new Uint8Array([1]));
    expect(integerArraysEqual(new Float64Array([0]), new Float64Array([-0]))).toBeUndefined();
    expect(new Float64Array([0])).not.toEqual(new Float64Array([-0]));
    expect(new Float64Array([NaN])).toEqual(new Float64Array([NaN]));
    expect(integerArraysEqual([1], [1])).toBeUndefined();
    expect(integerArraysEqual(new Uint8Array([1]), new Int8Array([1]))).toBeUndefined();
  });
});
