/*
 * memfd in the predecessor, and its LUO file handler (mm/memfd_luo.c
 * @02e117b8ca, memfd-v1; bytes in abi/memfd-luo.ts).
 *
 * A memfd here is what shmem keeps for an unlinked file: i_size, f_pos and
 * one order-0 folio per page index (khosim models no shmem THP, so a 1 GiB
 * memfd is 262,144 order-0 folios). Writing allocates the folios written;
 * memfd_luo_preserve() pins the rest (memfd_pin_folios allocates a zeroed,
 * uptodate folio for every hole), preserves each with kho_preserve_folio,
 * records {pfn, flags, index} in a vcalloc'ed array preserved with
 * kho_preserve_vmalloc, and puts pos/size/nr_folios/descriptor in a
 * memfd_luo_ser from kho_alloc_preserve. Freeze rewrites pos only;
 * unpreserve undoes all of it.
 *
 * Random contents are made per page from the seed (Prng.fork per page
 * index) and handed to the sparse memory as generated runs, so a 1 GiB
 * memfd is never held in memory; its xxhash64 is taken once while filling.
 */
import { PAGE_SIZE } from "../../abi/page.js";
import { encodeKhoVmalloc, KHO_VMALLOC_DESC_SIZE, VM_ALLOC, type KhoVmalloc } from "../../abi/kho-vmalloc.js";
import {
  encodeMemfdFolioSer,
  encodeMemfdLuoSer,
  MEMFD_LUO_FOLIO_DIRTY,
  MEMFD_LUO_FOLIO_SER_SIZE,
  MEMFD_LUO_FOLIO_UPTODATE,
  MEMFD_LUO_SER_SIZE,
} from "../../abi/memfd-luo.js";
import { csum64Stream } from "../../lib/csum.js";
import { Prng } from "../../lib/prng.js";
import type { Machine } from "../../mm/machine.js";
import { SparseMem } from "../../mm/physmem.js";
import type { KhoTracker } from "../formats/types.js";
import { khoAllocPreserve, khoUnpreserveFree } from "./pages.js";
import { khoPreserveVmalloc, khoUnpreserveVmalloc, vmallocArea, type VmArea } from "./vmalloc.js";

/** A shmem file created by memfd_create(): size, position and its folios by page index. */
export interface Memfd {
  name: string;
  size: number;
  pos: number;
  /** phys of the order-0 folio at each page index, 0 for a hole. */
  pages: Float64Array;
  /** Which pages were written (DIRTY); holes filled at preserve are only UPTODATE. */
  dirty: Uint8Array;
  /** xxhash64 of the file's @size bytes (holes read as zeros). */
  csum: bigint;
}

/** What memfd_luo_preserve() leaves, for freeze and unpreserve. */
export interface MemfdPreserved {
  /** phys of the memfd_luo_ser (luo_file_ser.data). */
  ser: number;
  serOrder: number;
  nrFolios: number;
  /** The record array's vmalloc area and its descriptor (absent for size 0). */
  area?: VmArea;
  desc?: KhoVmalloc;
}

/** Thrown when the machine runs out of pages for a memfd (the kernel's -ENOMEM). */
export class MemfdNoMemory extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MemfdNoMemory";
  }
}

function allocPage(m: Machine, what: string): number {
  const p = m.buddy.allocFolio(0);
  if (p === undefined) throw new MemfdNoMemory(`out of memory: ${what}`);
  return p;
}

/* Hand [first, first + n) of @f's page indices, contiguous in phys from @phys, to @m's memory as made by @page. */
function writeRun(m: Machine, phys: number, first: number, n: number, lastBytes: number, page: (index: number, out: Uint8Array) => void): void {
  if (m.mem instanceof SparseMem) {
    const bytes = (n - 1) * PAGE_SIZE + lastBytes;
    m.mem.writeGenerated(phys, bytes, (off, out) => {
      // off is page aligned within the run; out may span pages.
      for (let o = 0; o < out.length; o += PAGE_SIZE) {
        const idx = first + (off + o) / PAGE_SIZE;
        const piece = out.subarray(o, Math.min(out.length, o + PAGE_SIZE));
        if (piece.length === PAGE_SIZE) page(idx, piece);
        else {
          const full = new Uint8Array(PAGE_SIZE);
          page(idx, full);
          piece.set(full.subarray(0, piece.length));
        }
      }
    });
    return;
  }
  const buf = new Uint8Array(PAGE_SIZE);
  for (let j = 0; j < n; j++) {
    page(first + j, buf);
    m.mem.write(phys + j * PAGE_SIZE, j === n - 1 ? buf.subarray(0, lastBytes) : buf);
  }
}

/**
 * memfdCreate - memfd_create(@name) then, for @content: write @size bytes
 * from @prng (one fork per page index) or the bytes of a literal, and
 * ftruncate to @size. f_pos ends after what was written (write(2) moves it).
 * Throws MemfdNoMemory.
 */
export function memfdCreate(m: Machine, name: string, size: number, content: { kind: "random"; prng: Prng } | { kind: "bytes"; bytes: Uint8Array } | { kind: "none" }): Memfd {
  const nPages = Math.ceil(size / PAGE_SIZE);
  const f: Memfd = { name, size, pos: 0, pages: new Float64Array(nPages), dirty: new Uint8Array(nPages), csum: 0n };
  const h = csum64Stream();
  if (content.kind === "random") {
    const pageBytes = (idx: number, out: Uint8Array): void => content.prng.fork(idx).fill(out);
    for (let i = 0; i < nPages; i++) {
      f.pages[i] = allocPage(m, `page ${i} of memfd '${name}' (${size} bytes)`);
      f.dirty[i] = 1;
    }
    // One generated run per physically contiguous stretch; the checksum streams over every page once.
    const tmp = new Uint8Array(PAGE_SIZE);
    let runStart = 0;
    for (let i = 0; i < nPages; i++) {
      const last = i === nPages - 1;
      const len = last ? size - i * PAGE_SIZE : PAGE_SIZE;
      pageBytes(i, tmp);
      h.update(tmp.subarray(0, len));
      if (last || f.pages[i + 1] !== f.pages[i]! + PAGE_SIZE) {
        writeRun(m, f.pages[runStart]!, runStart, i - runStart + 1, len, pageBytes);
        runStart = i + 1;
      }
    }
    f.pos = size;
  } else if (content.kind === "bytes") {
    const b = content.bytes;
    for (let i = 0; i * PAGE_SIZE < b.length; i++) {
      const p = allocPage(m, `page ${i} of memfd '${name}'`);
      f.pages[i] = p;
      f.dirty[i] = 1;
      const page = new Uint8Array(PAGE_SIZE);
      page.set(b.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE));
      m.mem.write(p, page);
    }
    f.pos = b.length;
    h.update(b.subarray(0, Math.min(b.length, size)));
    // The rest of i_size reads as zeros.
    const zeros = new Uint8Array(Math.min(1 << 20, Math.max(0, size - b.length)));
    for (let off = b.length; off < size; off += zeros.length) h.update(zeros.subarray(0, Math.min(zeros.length, size - off)));
  } else {
    const zeros = new Uint8Array(Math.min(1 << 20, size));
    for (let off = 0; off < size; off += zeros.length) h.update(zeros.subarray(0, Math.min(zeros.length, size - off)));
  }
  f.csum = h.digest();
  return f;
}

/**
 * memfdLuoPreserve - memfd_luo_preserve() for @f. Throws MemfdNoMemory
 * (nothing left preserved or allocated by it).
 */
export function memfdLuoPreserve(m: Machine, track: KhoTracker, f: Memfd): MemfdPreserved {
  const ser = khoAllocPreserve(m, track, MEMFD_LUO_SER_SIZE);
  const nPages = f.pages.length;
  if (f.size === 0) {
    m.mem.write(ser.phys, encodeMemfdLuoSer({ pos: BigInt(f.pos), size: 0n, nrFolios: 0n, folios: new Uint8Array(KHO_VMALLOC_DESC_SIZE) }));
    return { ser: ser.phys, serOrder: ser.order, nrFolios: 0 };
  }
  // memfd_pin_folios(): a zeroed, uptodate folio for every hole.
  const filled: number[] = [];
  try {
    for (let i = 0; i < nPages; i++) {
      if (f.pages[i] !== 0) continue;
      f.pages[i] = allocPage(m, `hole ${i} of memfd '${f.name}'`);
      filled.push(i);
    }
    zeroPages(m, filled.map((i) => f.pages[i]!));
  } catch (e) {
    for (const i of filled) {
      m.buddy.freeFolio(f.pages[i]!, 0);
      f.pages[i] = 0;
    }
    khoUnpreserveFree(m, track, ser.phys, ser.order);
    throw e;
  }
  for (let i = 0; i < nPages; i++) track.khoPreserveFolio(f.pages[i]!, 0);
  // vcalloc(nr_folios, 16): the records, written into the area's pages.
  const arrPages = Math.ceil((nPages * MEMFD_LUO_FOLIO_SER_SIZE) / PAGE_SIZE);
  const area = vmallocArea(m, arrPages, 0, VM_ALLOC);
  const perPage = PAGE_SIZE / MEMFD_LUO_FOLIO_SER_SIZE;
  const page = new Uint8Array(PAGE_SIZE);
  const dv = new DataView(page.buffer);
  for (let a = 0; a < arrPages; a++) {
    page.fill(0);
    for (let k = 0; k < perPage; k++) {
      const i = a * perPage + k;
      if (i >= nPages) break;
      const flags = MEMFD_LUO_FOLIO_UPTODATE | (f.dirty[i] ? MEMFD_LUO_FOLIO_DIRTY : 0);
      encodeMemfdFolioSer(dv, k, f.pages[i]! / PAGE_SIZE, flags, i);
    }
    m.mem.write(area.pages[a]!, page);
  }
  const desc = khoPreserveVmalloc(m, track, area);
  m.mem.write(ser.phys, encodeMemfdLuoSer({ pos: BigInt(f.pos), size: BigInt(f.size), nrFolios: BigInt(nPages), folios: encodeKhoVmalloc(desc) }));
  return { ser: ser.phys, serOrder: ser.order, nrFolios: nPages, area, desc };
}

/* Zero @pages. A page kernel-a's sparse memory never held reads as zeros already: left alone, it stays a hole in memory.img. */
function zeroPages(m: Machine, pages: readonly number[]): void {
  const zero = new Uint8Array(PAGE_SIZE);
  for (const p of pages) {
    if (m.mem instanceof SparseMem && m.mem.page(p / PAGE_SIZE) === undefined) continue;
    m.mem.write(p, zero);
  }
}

/** memfdLuoFreeze - memfd_luo_freeze(): only pos can have changed since preserve. */
export function memfdLuoFreeze(m: Machine, f: Memfd, p: MemfdPreserved): void {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(f.pos), true);
  m.mem.write(p.ser, b);
}

/** memfdLuoUnpreserve - memfd_luo_unpreserve(): the descriptor, every folio, the array, the ser. */
export function memfdLuoUnpreserve(m: Machine, track: KhoTracker, f: Memfd, p: MemfdPreserved): void {
  if (p.nrFolios > 0 && p.desc && p.area) {
    khoUnpreserveVmalloc(m, track, p.desc);
    for (let i = 0; i < p.nrFolios; i++) track.khoUnpreserveFolio(f.pages[i]!, 0);
    for (const a of p.area.pages) m.buddy.freeFolio(a, 0);
  }
  khoUnpreserveFree(m, track, p.ser, p.serOrder);
}
