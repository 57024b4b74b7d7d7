/*
 * The handoff a fault damages: boot.dtb and kho.dtb as bytes, memory.img as
 * a memory view. Two backings: a directory (the corrupt CLI edits a copy in
 * place) and an in-memory handoff (tests boot the result in process).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { HANDOFF_BOOT_DTB, HANDOFF_KHO_DTB, HANDOFF_MEMORY_IMG, PAGE_SIZE } from "@khosim/shared/abi";
import { ImageMem, PhysMemError, checkPhysAccess, type OverlayMem, type PhysMem } from "@khosim/shared/mm";
import { ramFileOffset, ramPhysOfFileOffset, ramSpan, ramTotal, type RamBank } from "@khosim/shared/abi";
import { hex } from "@khosim/shared/lib";

/** A file of the handoff cannot be read; `code` is the errno name (ENOENT, ...). */
export class StoreReadError extends Error {
  constructor(readonly code: string) {
    super(code);
    this.name = "StoreReadError";
  }
}

/** What a FaultContext reads and writes; every change to memory goes through an overlay handed to commit(). */
export interface HandoffStore {
  readBoot(): Uint8Array;
  writeBoot(bytes: Uint8Array): void;
  /** Size of kho.dtb, or undefined when there is none. */
  khoDtbSize(): number | undefined;
  writeKhoDtb(bytes: Uint8Array): void;
  /** Size of memory.img in bytes, or undefined when it is missing. */
  imageSize(): number | undefined;
  /** memory.img read-only, as RAM from @base (file offset 0). */
  openImage(base: number, banks?: readonly RamBank[]): PhysMem;
  truncateImage(size: number): void;
  deleteImage(): void;
  /** Store the pages written through @written (the overlay over openImage) and release the image. */
  commit(written: OverlayMem | undefined): void;
}

/**
 * @lower's bytes seen at RAM base @base, as kernel-b sees an image under
 * another /memory reg; with @banks (a banked boot DTB), as those banks map
 * memory.img (ramFileOffset), page by page through @lower's own mapping.
 */
export function rebase(lower: PhysMem, base: number, banks?: readonly RamBank[]): PhysMem {
  if (banks !== undefined) {
    const span = ramSpan(banks);
    if (lower.banks && JSON.stringify(lower.banks) === JSON.stringify(banks)) return lower;
    const total = ramTotal(lower);
    const each = (phys: number, len: number, fn: (lowerPhys: number, at: number, n: number) => void): void => {
      for (let at = 0; at < len; ) {
        const p = phys + at;
        const n = Math.min(len - at, PAGE_SIZE - (p % PAGE_SIZE));
        const off = ramFileOffset(view, p);
        if (off + n > total) throw new PhysMemError(p, n, `${hex(p)} lies beyond memory.img (${hex(total)} bytes)`);
        fn(ramPhysOfFileOffset(lower, off), at, n);
        at += n;
      }
    };
    const view: PhysMem = {
      base: span.base,
      size: span.size,
      banks,
      read: (phys, len) => {
        checkPhysAccess(view, phys, len);
        const out = new Uint8Array(len);
        each(phys, len, (lp, at, n) => out.set(lower.read(lp, n), at));
        return out;
      },
      write: (phys, data) => {
        checkPhysAccess(view, phys, data.length);
        each(phys, data.length, (lp, at, n) => lower.write(lp, data.subarray(at, at + n)));
      },
    };
    return view;
  }
  if (base === lower.base) return lower;
  const shift = lower.base - base;
  const view: PhysMem = {
    base,
    size: lower.size,
    read: (phys, len) => {
      checkPhysAccess(view, phys, len);
      return lower.read(phys + shift, len);
    },
    write: (phys, data) => {
      checkPhysAccess(view, phys, data.length);
      lower.write(phys + shift, data);
    },
  };
  return view;
}

function errnoOf(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? String(e);
}

/** A handoff directory, edited in place (memory.img stays sparse: only written pages are stored). */
export class DirStore implements HandoffStore {
  private image?: ImageMem;

  constructor(readonly dir: string) {}

  private file(name: string): string {
    return path.join(this.dir, name);
  }

  readBoot(): Uint8Array {
    try {
      return new Uint8Array(fs.readFileSync(this.file(HANDOFF_BOOT_DTB)));
    } catch (e) {
      throw new StoreReadError(errnoOf(e));
    }
  }

  writeBoot(bytes: Uint8Array): void {
    fs.writeFileSync(this.file(HANDOFF_BOOT_DTB), bytes);
  }

  khoDtbSize(): number | undefined {
    const f = this.file(HANDOFF_KHO_DTB);
    return fs.existsSync(f) ? fs.statSync(f).size : undefined;
  }

  writeKhoDtb(bytes: Uint8Array): void {
    fs.writeFileSync(this.file(HANDOFF_KHO_DTB), bytes);
  }

  imageSize(): number | undefined {
    try {
      return fs.statSync(this.file(HANDOFF_MEMORY_IMG)).size;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw new StoreReadError(errnoOf(e));
    }
  }

  openImage(base: number, banks?: readonly RamBank[]): PhysMem {
    const size = this.imageSize();
    if (size === undefined) throw new StoreReadError("ENOENT");
    this.image ??= banks ? ImageMem.open(this.file(HANDOFF_MEMORY_IMG), base, ramSpan(banks).size, banks) : ImageMem.open(this.file(HANDOFF_MEMORY_IMG), base, size);
    return this.image;
  }

  truncateImage(size: number): void {
    fs.truncateSync(this.file(HANDOFF_MEMORY_IMG), size);
  }

  deleteImage(): void {
    fs.unlinkSync(this.file(HANDOFF_MEMORY_IMG));
  }

  commit(written: OverlayMem | undefined): void {
    const base = this.image?.base;
    this.image?.close();
    this.image = undefined;
    if (!written || written.touchedPages === 0 || base === undefined) return;
    const fd = fs.openSync(this.file(HANDOFF_MEMORY_IMG), "r+");
    try {
      for (const [pfn, count] of written.touchedRuns()) {
        for (let i = 0; i < count; i++) fs.writeSync(fd, written.page(pfn + i)!, 0, PAGE_SIZE, (pfn + i) * PAGE_SIZE - base);
      }
    } finally {
      fs.closeSync(fd);
    }
  }
}

/**
 * MemHandoff - a handoff held in memory: what kernel-a would write, without
 * the files. A fault applied to it leaves the input's memory as it was (its
 * writes land in an overlay, which becomes this handoff's memory).
 */
export class MemHandoff implements HandoffStore {
  constructor(
    public bootDtb: Uint8Array | undefined,
    public khoDtb: Uint8Array | undefined,
    /** memory.img's bytes (undefined: deleted); file offset 0 is memory.base. */
    public memory: PhysMem | undefined,
    /** memory.img's length (a truncated image is shorter than memory). */
    public imageBytes: number | undefined = memory ? ramTotal(memory) : undefined,
  ) {}

  /** A copy to damage: byte arrays copied, memory shared (never written through). */
  clone(): MemHandoff {
    return new MemHandoff(this.bootDtb?.slice(), this.khoDtb?.slice(), this.memory, this.imageBytes);
  }

  readBoot(): Uint8Array {
    if (!this.bootDtb) throw new StoreReadError("ENOENT");
    return this.bootDtb.slice();
  }

  writeBoot(bytes: Uint8Array): void {
    this.bootDtb = bytes.slice();
  }

  khoDtbSize(): number | undefined {
    return this.khoDtb?.length;
  }

  writeKhoDtb(bytes: Uint8Array): void {
    this.khoDtb = bytes.slice();
  }

  imageSize(): number | undefined {
    return this.memory ? this.imageBytes : undefined;
  }

  openImage(base: number, banks?: readonly RamBank[]): PhysMem {
    if (!this.memory) throw new StoreReadError("ENOENT");
    return rebase(this.memory, base, banks);
  }

  truncateImage(size: number): void {
    this.imageBytes = size;
  }

  deleteImage(): void {
    this.memory = undefined;
    this.imageBytes = undefined;
  }

  commit(written: OverlayMem | undefined): void {
    // The overlay reads through to the input and holds every change: it is the damaged image.
    if (written && written.touchedPages > 0) this.memory = written;
  }
}
