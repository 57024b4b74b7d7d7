/*
 * Checksums for preserved data: xxhash64 (seed 0) from hash-wasm. The hasher is
 * created once per process (WebAssembly instantiation is async); after
 * initCsum() every call is synchronous.
 *
 * Only hash-wasm's xxhash64 build is loaded, and only in initCsum(): the
 * package's index carries the WebAssembly of every algorithm it has, which
 * costs start-up time a kernel process does not need.
 */
import { createRequire } from "node:module";
import type { IHasher } from "hash-wasm";
import type * as HashWasm from "hash-wasm";

let hasher: IHasher | undefined;
let ready: Promise<void> | undefined;

/**
 * initCsum - instantiate the hasher (once; concurrent and later calls share
 * the first call's promise); call before csum64(). A process may start it
 * early, so that compiling the WebAssembly overlaps its other start-up work.
 */
export function initCsum(): Promise<void> {
  ready ??= (async () => {
    const { createXXHash64 } = createRequire(import.meta.url)("hash-wasm/dist/xxhash64.umd.min.js") as Pick<typeof HashWasm, "createXXHash64">;
    hasher = await createXXHash64(0, 0);
  })();
  return ready;
}

/** Incremental xxhash64 of several byte arrays, as a u64 bigint. */
export function csum64(...parts: Uint8Array[]): bigint {
  if (!hasher) throw new Error("csum64() called before initCsum()");
  hasher.init();
  for (const p of parts) hasher.update(p);
  const d = hasher.digest("binary");
  return new DataView(d.buffer, d.byteOffset, 8).getBigUint64(0, false);
}

/**
 * csum64Stream - xxhash64 of bytes given piece by piece: csum64(a, b, ...)
 * for pieces that are not all at hand at once (read through one reused
 * buffer). Use one stream at a time, with no csum64() call between its
 * first update() and its digest(): they share the one hasher.
 */
export function csum64Stream(): { update(piece: Uint8Array): void; digest(): bigint } {
  if (!hasher) throw new Error("csum64Stream() called before initCsum()");
  const h = hasher;
  h.init();
  return {
    update: (piece) => void h.update(piece),
    digest: () => {
      const d = h.digest("binary");
      return new DataView(d.buffer, d.byteOffset, 8).getBigUint64(0, false);
    },
  };
}
