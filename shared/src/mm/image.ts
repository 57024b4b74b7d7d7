/*
 * memory.img: the RAM image on disk. File offset 0 is the first byte of RAM as
 * the boot DTB's /memory node describes it; the file is exactly RAM-sized and
 * sparse (pages nobody wrote are holes), so a 64 GiB machine costs only what
 * was written. With several banks they lie back to back (ram.ts
 * ramFileOffset): a hole between banks costs no file length at all.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { PAGE_SIZE } from "../abi/page.js";
import { hex } from "../lib/bytes.js";
import { checkPhysAccess, PhysMemError, type PageSource, type PhysMem } from "./physmem.js";
import { ramFileOffset, ramTotal, type RamBank } from "../abi/ram.js";

/** Thrown for an image that cannot be used (missing, wrong size, I/O error). */
export class ImageError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = "ImageError";
  }
}

/** Largest single write, so that long runs do not need one giant buffer. */
const WRITE_BATCH_PAGES = 256;

/**
 * writeImage - write @mem as a sparse RAM image at @path (which must not exist).
 * Only touched pages are written; the rest of the file is a hole made by
 * ftruncate or, with @baseImage, what that image holds (copied sparsely with
 * `cp --sparse=always` first: a successor handing off writes the memory it
 * inherited plus what it changed). Returns the number of bytes written by us.
 * The file is not fsynced here: the handoff writer (writeHandoffDir) fsyncs
 * every file it holds, and may start this one's flush while it writes the rest.
 */
export function writeImage(path: string, mem: PageSource, baseImage?: string, onProgress?: (done: number, total: number) => void): number {
  if (baseImage !== undefined) {
    if (fs.existsSync(path)) throw new ImageError(path, "already exists");
    const cp = spawnSync("cp", ["--sparse=always", baseImage, path], { encoding: "utf8" });
    if (cp.status !== 0) throw new ImageError(baseImage, `cp failed: ${cp.stderr.trim() || cp.error?.message}`);
  }
  const fd = fs.openSync(path, baseImage === undefined ? "wx" : "r+");
  let written = 0;
  try {
    fs.ftruncateSync(fd, ramTotal(mem));
    const runs = mem.touchedRuns();
    const total = runs.reduce((n, [, count]) => n + count, 0);
    // The pages themselves are the write's iovecs: no copy into a staging buffer.
    const iov: Uint8Array[] = [];
    // Pages made on demand (SparseMem.writeGenerated) are made into one reused buffer, batch by batch.
    let made: Uint8Array | undefined;
    for (const [pfn, count] of runs) {
      for (let i = 0; i < count; i += WRITE_BATCH_PAGES) {
        const n = Math.min(WRITE_BATCH_PAGES, count - i);
        iov.length = 0;
        if (mem.pagesInto) made ??= new Uint8Array(WRITE_BATCH_PAGES * PAGE_SIZE);
        if (made && mem.pagesInto!(pfn + i, n, made)) iov.push(made.subarray(0, n * PAGE_SIZE));
        else for (let j = 0; j < n; j++) iov.push(mem.page(pfn + i + j)!);
        // Touched pages lie in banks, and a run never crosses a hole: its file offsets are consecutive.
        const pos = ramFileOffset(mem, (pfn + i) * PAGE_SIZE);
        const got = fs.writevSync(fd, iov, pos);
        // A short writev (rare) is finished page by page (as one buffer when the pages were made into one).
        for (let off = got; iov.length === 1 && off < n * PAGE_SIZE; ) off += fs.writeSync(fd, iov[0]!, off, n * PAGE_SIZE - off, pos + off);
        for (let j = 0; iov.length > 1 && got < n * PAGE_SIZE && j < n; j++) {
          let off = Math.max(0, got - j * PAGE_SIZE);
          while (off < PAGE_SIZE) off += fs.writeSync(fd, iov[j]!, off, PAGE_SIZE - off, pos + j * PAGE_SIZE + off);
        }
        written += n * PAGE_SIZE;
        onProgress?.(written / PAGE_SIZE, total);
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return written;
}

/**
 * ImageMem - read-only physical memory backed by a memory.img.
 * Reads go straight to the file (no cache): the successor reads each chunk
 * page once and each folio once, so RSS stays independent of RAM size.
 */
export class ImageMem implements PhysMem {
  private fd: number;
  /** Bytes read from the image so far (memory figures: what the successor touched). */
  bytesRead = 0;

  private constructor(
    readonly file: string,
    fd: number,
    readonly base: number,
    readonly size: number,
    readonly banks?: readonly RamBank[],
  ) {
    this.fd = fd;
  }

  /**
   * open - open @file as RAM [base, base + size), or as @banks (their span
   * being base and size). The file must be exactly as long as the RAM
   * (the banks' total): a shorter image would make RAM read as garbage holes.
   */
  static open(file: string, base: number, size: number, banks?: readonly RamBank[]): ImageMem {
    let fd: number;
    try {
      fd = fs.openSync(file, "r");
    } catch (e) {
      throw new ImageError(file, `cannot open: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    const st = fs.fstatSync(fd);
    const want = banks ? ramTotal({ base, size, banks }) : size;
    if (st.size !== want) {
      fs.closeSync(fd);
      throw new ImageError(
        file,
        `size ${hex(st.size)} does not match RAM size ${hex(want)} from /memory reg` +
          (banks ? ` (${banks.length} banks)` : "") +
          (st.size < want ? " (image shorter than RAM)" : ""),
      );
    }
    return banks ? new ImageMem(file, fd, base, size, banks) : new ImageMem(file, fd, base, size);
  }

  read(phys: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    this.readInto(phys, out);
    return out;
  }

  /** readInto - read() into @out (its length is the length read): no fresh array per call. */
  readInto(phys: number, out: Uint8Array): void {
    const len = out.length;
    checkPhysAccess(this, phys, len);
    this.bytesRead += len;
    let done = 0;
    // checkPhysAccess passed: the range lies in touching banks, consecutive in the file.
    const pos = ramFileOffset(this, phys);
    while (done < len) {
      const n = fs.readSync(this.fd, out, done, len - done, pos + done);
      if (n === 0) throw new ImageError(this.file, `unexpected end of file at offset ${hex(pos + done)}`);
      done += n;
    }
  }

  write(phys: number, data: Uint8Array): void {
    throw new PhysMemError(phys, data.length, `${this.file} is read-only: the successor never writes its input`);
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}
