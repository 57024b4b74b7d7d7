/*
 * Checksums for preserved data: xxhash64 (seed 0) from hash-wasm. The hasher is
 * created once per process (WebAssembly instantiation is async); after
 * initCsum() every call is synchronous.
 */
import { createXXHash64, type IHasher } from "hash-wasm";

let hasher: IHasher | undefined;

/** initCsum - instantiate the hasher; call once before csum64(). */
export async function initCsum(): Promise<void> {
  hasher ??= await createXXHash64(0, 0);
}

/** Incremental xxhash64 of several byte arrays, as a u64 bigint. */
export function csum64(...parts: Uint8Array[]): bigint {
  if (!hasher) throw new Error("csum64() called before initCsum()");
  hasher.init();
  for (const p of parts) hasher.update(p);
  const d = hasher.digest("binary");
  return new DataView(d.buffer, d.byteOffset, 8).getBigUint64(0, false);
}
