/*
 * memfd_luo_retrieve() and memfd_luo_finish() for the successor
 * (mm/memfd_luo.c @02e117b8ca; bytes in abi/memfd-luo.ts): read the
 * memfd_luo_ser at luo_file_ser.data, restore the record array with
 * kho_restore_vmalloc, restore every record's folio with kho_restore_folio
 * and put it at its index (shmem_add_to_page_cache refuses a second folio
 * at an index: -EEXIST), then free the array and the ser. Finish of a file
 * that was never retrieved restores and drops its folios
 * (memfd_luo_discard_folios).
 *
 * Untrusted input: every pointer is checked to lie in RAM before it is
 * read (the kernel would fault), counts are bounded by the pages present,
 * and a failure is a LuoRetrieveError naming the structure, field and
 * offset; what was restored before it stays claimed, as in the kernel.
 */
import { decodeKhoVmalloc, KhoVmallocError } from "../../abi/kho-vmalloc.js";
import { decodeMemfdFolioSer, decodeMemfdLuoSer, MEMFD_LUO_FOLIO_SER_SIZE, MEMFD_LUO_FOLIO_UPTODATE, MEMFD_LUO_SER_FOLIOS_OFFSET, MEMFD_LUO_SER_SIZE } from "../../abi/memfd-luo.js";
import { PAGE_SIZE } from "../../abi/page.js";
import { hex } from "../../lib/bytes.js";
import { physInRam, type PhysMem } from "../../mm/physmem.js";
import { KhoRestoreError, type KhoRestore } from "./restore.js";
import { khoRestoreFree, khoRestoreVmallocChunks, KhoVmallocRestoreError } from "./vmalloc.js";

/** A retrieve failed with the kernel's @errno; the message names structure, field and offset. */
export class LuoRetrieveError extends Error {
  constructor(
    readonly errno: "EINVAL" | "EIO" | "EEXIST" | "ENOENT" | "EFAULT",
    message: string,
  ) {
    super(`-${errno}: ${message}`);
    this.name = "LuoRetrieveError";
  }
}

/** A retrieved memfd: i_size, f_pos and the folio at each page index (0 = hole). */
export interface MemfdIn {
  size: number;
  pos: number;
  /** phys of the page at each index of the file (ceil(size / 4K) entries). */
  pages: Float64Array;
  /** 1 where the record lacked MEMFD_LUO_FOLIO_UPTODATE: shmem zeroes such a folio on first use, so it reads as zeros. */
  stale: Uint8Array;
  /** Pages freed once retrieve is done: the record array, its chunks, the ser. */
  consumed: { start: number; size: number }[];
}

/**
 * memfdLuoRetrieve - memfd_luo_retrieve() of the file whose data is @data.
 * Throws LuoRetrieveError.
 */
export function memfdLuoRetrieve(mem: PhysMem, restore: KhoRestore, data: bigint): MemfdIn {
  const at = `memfd_luo_ser at ${hex(data)}`;
  const serPhys = Number(data);
  if (data === 0n) throw new LuoRetrieveError("EINVAL", `${at}: luo_file_ser.data is 0`);
  if (data > BigInt(Number.MAX_SAFE_INTEGER) || !physInRam(mem, serPhys, MEMFD_LUO_SER_SIZE)) throw new LuoRetrieveError("EFAULT", `${at}: not in RAM (the kernel would fault reading it)`);
  const ser = decodeMemfdLuoSer(mem.read(serPhys, MEMFD_LUO_SER_SIZE));
  // i_size and f_pos are taken as they are (vfs_setpos caps pos at MAX_LFS_FILESIZE); khosim must hold the file to verify it.
  if (ser.size > BigInt(mem.size)) throw new LuoRetrieveError("EINVAL", `${at} +0x8 size: ${hex(ser.size)} is more than RAM (${hex(mem.size)})`);
  if (ser.pos > 0x7fff_ffff_ffff_ffffn) throw new LuoRetrieveError("EINVAL", `${at} +0x0 pos: ${hex(ser.pos)} is above MAX_LFS_FILESIZE`);
  const size = Number(ser.size);
  const nIdx = Math.ceil(size / PAGE_SIZE);
  const pages = new Float64Array(nIdx);
  const stale = new Uint8Array(nIdx);
  const consumed: MemfdIn["consumed"] = [];
  if (ser.nrFolios > 0n) {
    let desc;
    try {
      desc = decodeKhoVmalloc(ser.folios, 0);
    } catch (e) {
      if (e instanceof KhoVmallocError) throw new LuoRetrieveError("EINVAL", `${at} +0x${MEMFD_LUO_SER_FOLIOS_OFFSET.toString(16)} folios: ${e.message}`);
      throw e;
    }
    let area;
    try {
      area = khoRestoreVmallocChunks(mem, restore, desc, `${at} folios`);
    } catch (e) {
      if (e instanceof KhoVmallocRestoreError) throw new LuoRetrieveError("EINVAL", `kho_restore_vmalloc: ${e.message}`);
      throw e;
    }
    for (const c of area.chunks) consumed.push({ start: c, size: PAGE_SIZE });
    for (const p of area.pages) consumed.push({ start: p, size: PAGE_SIZE });
    // The kernel reads nr_folios records from the vmap: more than the area holds would fault.
    if (ser.nrFolios * BigInt(MEMFD_LUO_FOLIO_SER_SIZE) > BigInt(area.pages.length * PAGE_SIZE)) {
      throw new LuoRetrieveError("EFAULT", `${at} +0x10 nr_folios: ${ser.nrFolios} records do not fit the ${area.pages.length}-page array`);
    }
    const nr = Number(ser.nrFolios);
    const perPage = PAGE_SIZE / MEMFD_LUO_FOLIO_SER_SIZE;
    for (let a = 0; a * perPage < nr; a++) {
      const page = mem.read(area.pages[a]!, PAGE_SIZE);
      const dv = new DataView(page.buffer, page.byteOffset, PAGE_SIZE);
      for (let k = 0; k < perPage && a * perPage + k < nr; k++) {
        const i = a * perPage + k;
        const rec = decodeMemfdFolioSer(dv, k);
        const where = `folio record ${i} (array page ${hex(area.pages[a]!)} +0x${(k * MEMFD_LUO_FOLIO_SER_SIZE).toString(16)})`;
        if (rec.pfn === 0) continue;
        const phys = rec.pfn * PAGE_SIZE;
        let order: number;
        try {
          order = restore.khoRestoreFolio(phys);
        } catch (e) {
          if (e instanceof KhoRestoreError) throw new LuoRetrieveError("EIO", `${where} pfn: Unable to restore folio at physical address ${hex(phys)}: ${e.message}`);
          throw e;
        }
        // Folios past i_size are added to the page cache all the same but never read; khosim keeps only what the file holds.
        for (let j = 0; j < 2 ** order; j++) {
          const idx = rec.index + BigInt(j);
          if (idx >= BigInt(nIdx)) continue;
          const n = Number(idx);
          if (pages[n] !== 0) throw new LuoRetrieveError("EEXIST", `${where} index: ${rec.index} is already in the page cache`);
          pages[n] = phys + j * PAGE_SIZE;
          if (!(rec.flags & MEMFD_LUO_FOLIO_UPTODATE)) stale[n] = 1;
        }
      }
    }
  }
  try {
    consumed.push(khoRestoreFree(restore, serPhys));
  } catch (e) {
    // kho_restore_free() WARNs when the ser was not a preserved folio, and goes on.
    if (!(e instanceof KhoRestoreError)) throw e;
  }
  return { size, pos: Number(ser.pos), pages, stale, consumed };
}
