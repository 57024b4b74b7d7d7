/*
 * vitest setup (every test file): toEqual on two integer typed arrays of the
 * same kind compares their bytes at once instead of element by element
 * through the generic deep-equality walk, which costs milliseconds per 4 KiB
 * page and made byte-heavy tests take seconds. For integer elements, equal
 * bytes is exactly equal elements, so no assertion changes meaning; float
 * arrays (+0/-0, NaN payloads), DataView and different constructors keep
 * the default rules.
 */
import { expect } from "vitest";

const INTEGER_ARRAYS = new Set(["Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array", "Int32Array", "Uint32Array", "BigInt64Array", "BigUint64Array"]);

function tag(x: ArrayBufferView): string {
  return Object.prototype.toString.call(x).slice(8, -1);
}

/** integerArraysEqual - byte equality of two integer typed arrays of one kind; undefined (default rules) otherwise. */
export function integerArraysEqual(a: unknown, b: unknown): boolean | undefined {
  if (!ArrayBuffer.isView(a) || !ArrayBuffer.isView(b)) return undefined;
  // Same constructor, as the default iterable equality demands (a Buffer never equals a Uint8Array).
  if (a.constructor !== b.constructor || !INTEGER_ARRAYS.has(tag(a))) return undefined;
  if (a.byteLength !== b.byteLength) return false;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

expect.addEqualityTesters([integerArraysEqual]);
