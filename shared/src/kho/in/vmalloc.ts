/*
 * kho_restore_vmalloc() for the successor, after torvalds/linux
 * dd03dd60e8cdd5ef0f0cbc18276c45009bcc51f4 kernel/liveupdate/kexec_handover.c
 * (6.19; kho-v2 019fc36872 has the same function). Every check the kernel
 * makes, in its order, each failing with a KhoVmallocRestoreError that names
 * the field, the chunk and the byte offset:
 *  - per entry: idx + 2^order > total_pages; kho_restore_pages(phys, 2^order)
 *    (each block's head must be preserved, not yet restored, order <= MAX_PAGE_ORDER);
 *  - per chunk, after its entries: kho_restore_pages(chunk, 1), then the page is freed;
 *  - at the end: idx == total_pages.
 * The kernel reads a chunk through phys_to_virt() and would fault on one
 * outside RAM; khosim checks it is in RAM first. A looping chain ends at the
 * second restore of a chunk or entry (ALREADY_RESTORED), as in the kernel.
 * Pages restored before a failure stay claimed (the kernel leaks them).
 *
 * Careful successor only: unknown bits in kho_vmalloc.flags are refused. The
 * kernel's check is dead code (kho_flags_to_vmalloc() drops unknown bits
 * before `vm_flags & ~KHO_VMALLOC_SUPPORTED_FLAGS` is tested), so 6.19 and
 * kho-v2 ignore them.
 */
import { KHO_VMALLOC_FLAGS_MASK, KHO_VMALLOC_SIZE, khoVmallocEntryOffset, type KhoVmalloc } from "../../abi/kho-vmalloc.js";
import { PAGE_SIZE } from "../../abi/page.js";
import { ByteReader, hex } from "../../lib/bytes.js";
import { physInRam, type PhysMem } from "../../mm/physmem.js";
import { khoPhysBlocks } from "../track.js";
import { KhoRestoreError, type KhoRestore } from "./restore.js";

/** A kho_restore_vmalloc() check failed. @chunk is 0 for a descriptor field. */
export class KhoVmallocRestoreError extends Error {
  constructor(
    readonly field: string,
    readonly chunk: number,
    readonly offset: number,
    /** 4 KiB pages restored (and leaked) before the failure, chunk pages included. */
    readonly leakedPages: number,
    reason: string,
  ) {
    super(`${field} (${chunk === 0 ? "descriptor" : `chunk ${hex(chunk)}`} offset ${offset}): ${reason}`);
    this.name = "KhoVmallocRestoreError";
  }
}

/**
 * khoRestorePages - kho_restore_pages(): claim the blocks [@phys, +@nrPages
 * pages) splits into (the kho_preserve_pages() split) from @restore, telling
 * @claimed the pages of each. Throws KhoRestoreError at the first block that
 * is not a restorable head; blocks claimed before it stay claimed.
 */
export function khoRestorePages(restore: KhoRestore, phys: number, nrPages: number, claimed?: (pages: number) => void): void {
  const pfn = phys / PAGE_SIZE;
  for (const b of khoPhysBlocks(pfn, pfn + nrPages)) {
    restore.khoRestoreFolio(b.pfn * PAGE_SIZE);
    claimed?.(2 ** b.order);
  }
}

/**
 * khoRestoreFree - kho_restore_free(): restore the folio kho_alloc_preserve()
 * preserved at @phys (kho_restore_folio(), which WARNs and returns NULL on a
 * failure: here KhoRestoreError) and return its span, which the caller frees
 * (folio_put) into its page allocator. New in 6.19 (dd03dd60e8).
 */
export function khoRestoreFree(restore: KhoRestore, phys: number): { start: number; size: number } {
  const order = restore.khoRestoreFolio(phys);
  return { start: phys, size: PAGE_SIZE * 2 ** order };
}

/**
 * khoRestoreVmalloc - kho_restore_vmalloc(@desc): the phys of every 4 KiB
 * page of the area, in vm->pages order. @mem is the successor's memory,
 * @restore its preserved-memory state (chunk pages are claimed there and
 * count as freed; the caller hands them back), @where names the descriptor
 * in messages. Throws KhoVmallocRestoreError on any failed check; work is
 * bounded by total_pages and the pages present.
 */
export function khoRestoreVmalloc(mem: PhysMem, restore: KhoRestore, desc: KhoVmalloc, where: string): number[] {
  return khoRestoreVmallocChunks(mem, restore, desc, where).pages;
}

/** khoRestoreVmalloc() with the chunk pages it freed (what a successor's memory gets back). */
export function khoRestoreVmallocChunks(mem: PhysMem, restore: KhoRestore, desc: KhoVmalloc, where: string): { pages: number[]; chunks: number[] } {
  let leaked = 0;
  const fail = (field: string, chunk: number, offset: number, reason: string): never => {
    throw new KhoVmallocRestoreError(`${where}.${field}`, chunk, offset, leaked, reason);
  };
  if (desc.flags & ~KHO_VMALLOC_FLAGS_MASK) fail("flags", 0, 12, `unknown flags ${hex(desc.flags & ~KHO_VMALLOC_FLAGS_MASK)} (known ${hex(KHO_VMALLOC_FLAGS_MASK)})`);
  const total = desc.totalPages;
  // kvmalloc_array(total_pages) fails for more pages than the machine has: bounds the array.
  if (total * PAGE_SIZE > mem.size) fail("total_pages", 0, 8, `${total} pages do not fit in ${hex(mem.size)} bytes of RAM`);
  const order = desc.order;
  if (order > 30) fail("order", 0, 14, `order ${order}: 1 << order overflows the kernel's int`);
  const contig = 2 ** order;
  const pages: number[] = [];
  const chunks: number[] = [];
  let chunk = desc.first;
  let field = "first";
  let fieldChunk = 0;
  let fieldOff = 0;
  while (chunk !== 0) {
    if (chunk % PAGE_SIZE !== 0 || !physInRam(mem, chunk, PAGE_SIZE)) fail(field, fieldChunk, fieldOff, `chunk ${hex(chunk)} is not a page in RAM`);
    const r = new ByteReader(mem.read(chunk, PAGE_SIZE));
    for (let i = 0; i < KHO_VMALLOC_SIZE; i++) {
      const off = khoVmallocEntryOffset(i);
      const raw = r.u64le(off);
      if (raw === 0n) break;
      if (pages.length + contig > total) fail(`phys[${i}]`, chunk, off, `idx ${pages.length} + ${contig} pages exceeds total_pages ${total}`);
      const phys = Number(raw);
      if (raw > BigInt(Number.MAX_SAFE_INTEGER) || phys % PAGE_SIZE !== 0 || !physInRam(mem, phys, contig * PAGE_SIZE)) {
        fail(`phys[${i}]`, chunk, off, `${hex(raw)} is not a page-aligned block of ${contig} pages in RAM`);
      }
      try {
        khoRestorePages(restore, phys, contig, (n) => (leaked += n));
      } catch (e) {
        if (e instanceof KhoRestoreError) fail(`phys[${i}]`, chunk, off, `kho_restore_pages(${hex(phys)}, ${contig}): ${e.message}`);
        throw e;
      }
      for (let j = 0; j < contig; j++) pages.push(phys + j * PAGE_SIZE);
    }
    try {
      restore.khoRestoreFolio(chunk);
    } catch (e) {
      if (e instanceof KhoRestoreError) fail(field, fieldChunk, fieldOff, `kho_restore_pages(chunk ${hex(chunk)}, 1): ${e.message}`);
      throw e;
    }
    chunks.push(chunk);
    const next = r.u64le(0);
    if (next > BigInt(Number.MAX_SAFE_INTEGER)) fail("next", chunk, 0, `${hex(next)} is not below 2^53`);
    field = "next";
    fieldChunk = chunk;
    fieldOff = 0;
    chunk = Number(next);
  }
  if (pages.length !== total) fail("total_pages", 0, 8, `the chunks list ${pages.length} pages, total_pages is ${total}`);
  return { pages, chunks };
}

