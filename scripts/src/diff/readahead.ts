/*
 * Sequential read-ahead over a memory image, for the metadata walk and the
 * chunk-list follow of a diff. The chunks of a 1M-range handoff are ~6,000
 * consecutive pages read one at a time, twice per side (the careful walk,
 * then the pointer chain): a read(2) each. Like the kernel's readahead, a
 * read that starts where the previous one ended fetches a growing window
 * (64 KiB doubling to 1 MiB) and the next reads are served from it; any other
 * read goes straight to the image, so scattered reads cost what they did.
 */
import { checkPhysAccess, type PhysMem } from "@khosim/shared/mm";
import { ramRunEnd, type RamBank } from "@khosim/shared/abi";

/** First and largest read-ahead window, bytes. */
export const READAHEAD_MIN = 64 << 10;
export const READAHEAD_MAX = 1 << 20;

/**
 * struct ReadaheadMem - a read-only PhysMem over @inner that reads ahead on
 * sequential access. Reads return copies, as PhysMem.read does; errors
 * (outside RAM, I/O) are @inner's.
 */
export class ReadaheadMem implements PhysMem {
  readonly base: number;
  readonly size: number;
  readonly banks?: readonly RamBank[] | undefined;
  private buf: Uint8Array = new Uint8Array(0);
  private bufStart = 0;
  private lastEnd = -1;
  private window = READAHEAD_MIN;

  constructor(private readonly inner: PhysMem) {
    this.base = inner.base;
    this.size = inner.size;
    if (inner.banks) this.banks = inner.banks;
  }

  read(phys: number, len: number): Uint8Array {
    checkPhysAccess(this, phys, len);
    const off = phys - this.bufStart;
    if (off >= 0 && off + len <= this.buf.length) {
      this.lastEnd = phys + len;
      return this.buf.slice(off, off + len);
    }
    const sequential = phys === this.lastEnd;
    this.lastEnd = phys + len;
    if (!sequential || len >= READAHEAD_MAX) {
      this.window = READAHEAD_MIN;
      return this.inner.read(phys, len);
    }
    // The window stops at a hole between RAM banks (ramRunEnd is the span's end with one bank).
    const n = Math.min(Math.max(len, this.window), ramRunEnd(this, phys) - phys);
    this.window = Math.min(READAHEAD_MAX, this.window * 2);
    this.buf = this.inner.read(phys, n);
    this.bufStart = phys;
    return this.buf.slice(0, len);
  }

  write(phys: number, data: Uint8Array): void {
    this.inner.write(phys, data);
  }
}
