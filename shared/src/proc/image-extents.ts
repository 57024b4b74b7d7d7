/*
 * The extents file of a memory image: IMAGE.extents beside IMAGE, written by
 * the process that wrote the image, listing the byte ranges it wrote (the
 * rest is holes). Node cannot ask the file system where a sparse file's data
 * is (no lseek SEEK_DATA), and reading a 16 GiB image of holes to find out
 * takes seconds, so tools (npm run diff) use this file when it is proven
 * current and read the whole image otherwise.
 *
 * Proven current: the image's size is the recorded one, the extents file's
 * mtime is strictly later than the image's (the writer makes it so, by
 * rewriting the file until the file system's coarse clock has ticked past
 * the image's last write; any later write to the image then gives it an mtime
 * at least the extents file's, and the file is stale), the SHA-256 of
 * the image's first EXTENTS_HEADER_BYTES is the recorded one,
 * and the file system holds no more data blocks than the extents cover (a
 * write into a hole allocates blocks). Anything else, or an unreadable or
 * malformed file, and the extents file is ignored.
 *
 * It is a cache, not part of the handoff: kernel-b never reads it. Its bytes
 * depend only on the image (no time stamps), so the same seed writes the same
 * file.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { PAGE_SIZE } from "../abi/page.js";
import { ramFileOffset, type RamBank } from "../abi/ram.js";

export const IMAGE_EXTENTS_SUFFIX = ".extents";
export const IMAGE_EXTENTS_SCHEMA = "khosim-image-extents/2";
/** Bytes at the start of the image whose checksum is recorded. */
export const EXTENTS_HEADER_BYTES = 64 * 1024;
/** More extents than this (a file of about 48 MB) and no file is written: readers scan the image. */
export const MAX_RECORDED_EXTENTS = 1 << 21;
/** Rewrites of the extents file (about 1 ms apart) to get an mtime past the image's; then none is written. */
const EXTENTS_MTIME_TRIES = 200;
/** Allocated bytes allowed beyond the extents: file-system metadata blocks. */
const BLOCK_SLACK = 1 << 20;

/** A byte range [start, end) of a file. */
export interface ImageExtent {
  start: number;
  end: number;
}

interface ExtentsFile {
  schema: string;
  size: number;
  headerSha256: string;
  /** Flat [start, end, start, end, ...], ascending, disjoint. */
  extents: number[];
}

export function imageExtentsFile(image: string): string {
  return image + IMAGE_EXTENTS_SUFFIX;
}

function headerSha256(fd: number, size: number): string {
  const buf = Buffer.alloc(Math.min(EXTENTS_HEADER_BYTES, size));
  let done = 0;
  while (done < buf.length) {
    const n = fs.readSync(fd, buf, done, buf.length - done, done);
    if (n === 0) break;
    done += n;
  }
  return createHash("sha256").update(buf.subarray(0, done)).digest("hex");
}

/**
 * writeImageExtents - record that @image holds data only in the pages
 * @mem.touchedRuns() lists (as writeImage stores them) plus @more (byte
 * extents, e.g. a base image's). Call it once the image is written. Returns
 * false (and removes any old extents file) past MAX_RECORDED_EXTENTS, or when
 * the file system's clock never passes the image's mtime.
 */
export function writeImageExtents(
  image: string,
  mem: { readonly base: number; readonly size?: number; readonly banks?: readonly RamBank[] | undefined; touchedRuns(): [number, number][] },
  more: readonly ImageExtent[] = [],
): boolean {
  // Image offsets through the banks (abi/ram.ts): a touched run never crosses a hole, so it stays one extent.
  const all: ImageExtent[] = mem.touchedRuns().map(([pfn, count]) => {
    const start = ramFileOffset({ base: mem.base, size: mem.size ?? 0, banks: mem.banks }, pfn * PAGE_SIZE);
    return { start, end: start + count * PAGE_SIZE };
  });
  all.push(...more);
  all.sort((a, b) => a.start - b.start);
  const merged: ImageExtent[] = [];
  for (const e of all) {
    const last = merged[merged.length - 1];
    if (last && e.start <= last.end) last.end = Math.max(last.end, e.end);
    else merged.push({ ...e });
  }
  const file = imageExtentsFile(image);
  if (merged.length > MAX_RECORDED_EXTENTS) {
    fs.rmSync(file, { force: true });
    return false;
  }
  const fd = fs.openSync(image, "r");
  let rec: ExtentsFile;
  try {
    const st = fs.fstatSync(fd, { bigint: true });
    rec = {
      schema: IMAGE_EXTENTS_SCHEMA,
      size: Number(st.size),
      headerSha256: headerSha256(fd, Number(st.size)),
      extents: merged.flatMap((e) => [e.start, e.end]),
    };
  } finally {
    fs.closeSync(fd);
  }
  const text = JSON.stringify(rec) + "\n";
  const imageMtimeNs = fs.statSync(image, { bigint: true }).mtimeNs;
  // File times come from a coarse clock (a jiffy): rewrite until it has ticked past the image's.
  const tick = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < EXTENTS_MTIME_TRIES; i++) {
    fs.writeFileSync(file, text);
    if (fs.statSync(file, { bigint: true }).mtimeNs > imageMtimeNs) return true;
    Atomics.wait(tick, 0, 0, 1);
  }
  fs.rmSync(file, { force: true });
  return false;
}

/**
 * readImageExtents - the data extents of the image open as @fd (file name
 * @image) from its extents file, or undefined when there is none or it is
 * not proven current (see the top of this file).
 */
export function readImageExtents(image: string, fd: number): ImageExtent[] | undefined {
  let rec: ExtentsFile;
  let recMtimeNs: bigint;
  try {
    const file = imageExtentsFile(image);
    recMtimeNs = fs.statSync(file, { bigint: true }).mtimeNs;
    rec = JSON.parse(fs.readFileSync(file, "utf8")) as ExtentsFile;
  } catch {
    return undefined;
  }
  if (rec === null || typeof rec !== "object" || rec.schema !== IMAGE_EXTENTS_SCHEMA || !Array.isArray(rec.extents) || rec.extents.length % 2 !== 0) return undefined;
  const st = fs.fstatSync(fd, { bigint: true });
  if (Number(st.size) !== rec.size || recMtimeNs <= st.mtimeNs) return undefined;
  const extents: ImageExtent[] = [];
  let bytes = 0;
  let prev = 0;
  for (let i = 0; i < rec.extents.length; i += 2) {
    const start = rec.extents[i]!;
    const end = rec.extents[i + 1]!;
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < prev || end <= start || end > rec.size) return undefined;
    extents.push({ start, end });
    bytes += end - start;
    prev = end;
  }
  if (Number(st.blocks) * 512 > bytes + BLOCK_SLACK) return undefined;
  if (headerSha256(fd, rec.size) !== rec.headerSha256) return undefined;
  return extents;
}

/**
 * baseImageExtents - the proven-current extents of @image (the image a new one
 * was copied from), for writeImageExtents' @more; undefined when unknown.
 */
export function baseImageExtents(image: string): ImageExtent[] | undefined {
  let fd: number;
  try {
    fd = fs.openSync(image, "r");
  } catch {
    return undefined;
  }
  try {
    return readImageExtents(image, fd);
  } finally {
    fs.closeSync(fd);
  }
}
