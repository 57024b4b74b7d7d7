/*
 * Where a memory image holds data, in Node alone. Node has no
 * lseek(SEEK_DATA/SEEK_HOLE), so:
 *  - the image's extents file (IMAGE.extents, written by kernel-a beside the
 *    image; shared/src/proc/image-extents.ts) gives the written ranges when
 *    it is proven current (size, mtime, header checksum, allocated blocks);
 *  - otherwise the caller reads the whole image in large blocks and treats
 *    all-zero pages as holes (isZero is a memcmp against a zero buffer), which
 *    gives the same diff: a page of zeros and a hole read the same.
 */
import { readImageExtents, type ImageExtent } from "@khosim/shared/proc";

/** A byte range [start, end) of a file. */
export type Extent = ImageExtent;

const ZERO = Buffer.alloc(1 << 20);

/** isZero - whether every byte of @b is 0 (memcmp against zeros, 1 MiB at a time). */
export function isZero(b: Uint8Array): boolean {
  for (let off = 0; off < b.length; off += ZERO.length) {
    const n = Math.min(ZERO.length, b.length - off);
    if (Buffer.compare(ZERO.subarray(0, n), b.subarray(off, off + n)) !== 0) return false;
  }
  return true;
}

/** What {@link dataExtents} found for one image. */
export type ExtentsResult = { extents: Extent[]; source: "extents-file" } | { extents: undefined; source: "none" };

/**
 * dataExtents - the data extents of the image @file open as @fd, from its
 * extents file when that is proven current; `extents: undefined` otherwise
 * (the caller must read the whole image).
 */
export function dataExtents(file: string, fd: number): ExtentsResult {
  const x = readImageExtents(file, fd);
  return x ? { extents: x, source: "extents-file" } : { extents: undefined, source: "none" };
}
