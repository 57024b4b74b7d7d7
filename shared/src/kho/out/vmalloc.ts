/*
 * vmalloc preservation for the predecessor: kho_preserve_vmalloc() and
 * kho_unpreserve_vmalloc() after torvalds/linux
 * dd03dd60e8cdd5ef0f0cbc18276c45009bcc51f4 kernel/liveupdate/kexec_handover.c
 * (6.19; kho-v2 019fc36872 is the same code over the radix tree). The bytes
 * are abi/kho-vmalloc.ts.
 *
 * 6.18 (a4a508df2aa3 kernel/kexec_handover.c) differs: its error path calls
 * kho_vmalloc_free_chunks() (same effect), and a failed new chunk returns
 * with err still 0 (the "don't return 0 when ENOMEM" fix); khosim follows
 * 6.19 and returns -ENOMEM.
 */
import { KHO_VMALLOC_SIZE, KHO_VMALLOC_ALLOC, KHO_VMALLOC_HUGE_VMAP, VM_ALLOC, VM_ALLOW_HUGE_VMAP, decodeKhoVmallocChunk, encodeKhoVmallocChunk, type KhoVmalloc } from "../../abi/kho-vmalloc.js";
import { PAGE_SIZE } from "../../abi/page.js";
import { hex, u64ToNumber } from "../../lib/bytes.js";
import type { Machine } from "../../mm/machine.js";
import type { KhoTracker } from "../formats/types.js";
import { KhoErrnoError, khoPreservePages, khoUnpreservePages, type KhoOut } from "./pages.js";

/** A vmalloc area as vm_struct holds it. */
export interface VmArea {
  /** phys of each 2^order block, in vm->pages order (vm->pages[i] for i = 0, 2^order, ...). */
  pages: number[];
  /** get_vm_area_page_order(): 0, or the huge mapping order. */
  order: number;
  /** vm->flags (VM_ALLOC, VM_ALLOW_HUGE_VMAP, ...). */
  flags: number;
}

/** vm->flags kho_preserve_vmalloc() accepts (KHO_VMALLOC_SUPPORTED_FLAGS). */
export const KHO_VMALLOC_SUPPORTED_FLAGS = VM_ALLOC | VM_ALLOW_HUGE_VMAP;

/** vm->nr_pages of @area. */
export function vmAreaPages(area: VmArea): number {
  return area.pages.length * 2 ** area.order;
}

/**
 * vmallocArea - vmalloc() @nrPages pages as blocks of @order from @m's buddy
 * (not contiguous with each other in general). @flags: vm->flags, by default
 * VM_ALLOC, plus VM_ALLOW_HUGE_VMAP when @order > 0 (vmalloc_huge()).
 * Throws KhoErrnoError EINVAL when @nrPages is not a positive multiple of
 * 2^@order (vmalloc rounds a huge area to whole huge pages; khosim wants it
 * whole), ENOMEM when the buddy runs out (what it took is freed again).
 */
export function vmallocArea(m: Machine, nrPages: number, order: number, flags?: number): VmArea {
  const block = 2 ** order;
  if (!Number.isInteger(order) || order < 0 || order > m.config.maxOrder) throw new KhoErrnoError("EINVAL", `vmalloc: order ${String(order)} is outside 0..${m.config.maxOrder}`);
  if (!Number.isSafeInteger(nrPages) || nrPages <= 0 || nrPages % block !== 0 || nrPages > 0xffffffff) {
    throw new KhoErrnoError("EINVAL", `vmalloc: ${String(nrPages)} pages is not a positive multiple of ${block} below 2^32`);
  }
  const pages: number[] = [];
  for (let i = 0; i < nrPages / block; i++) {
    const p = allocBlock(m, order);
    if (p === undefined) {
      for (const q of pages) m.buddy.freeFolio(q, order);
      throw new KhoErrnoError("ENOMEM", `vmalloc: out of memory after ${i} of ${nrPages / block} order-${order} blocks`);
    }
    pages.push(p);
  }
  return { pages, order, flags: flags ?? (VM_ALLOC | (order > 0 ? VM_ALLOW_HUGE_VMAP : 0)) };
}

/*
 * A block of @order from the buddy, never at phys 0: a 0 entry or `first`
 * would end the chunk array or chain. The kernel never hands out pfn 0 (x86
 * setup_arch() reserves the first page); a successor machine of khosim may
 * have it free, so it is taken once and kept aside, as reserved.
 */
function allocBlock(m: Machine, order: number): number | undefined {
  const p = m.buddy.allocFolio(order);
  return p === 0 ? m.buddy.allocFolio(order) : p;
}

/* vmalloc_flags_to_kho(). */
function vmallocFlagsToKho(vmFlags: number): number {
  return (vmFlags & VM_ALLOC ? KHO_VMALLOC_ALLOC : 0) | (vmFlags & VM_ALLOW_HUGE_VMAP ? KHO_VMALLOC_HUGE_VMAP : 0);
}

/* new_vmalloc_chunk(): a zeroed page from the buddy, preserved as one order-0 page. */
function newVmallocChunk(m: Machine, track: KhoTracker, kho: KhoOut | undefined): number {
  const p = allocBlock(m, 0);
  if (p === undefined) throw new KhoErrnoError("ENOMEM", "kho_preserve_vmalloc: no page for a chunk");
  try {
    khoPreservePages(m, track, p, 1, kho);
  } catch (e) {
    m.buddy.freeFolio(p, 0);
    throw e;
  }
  m.mem.write(p, new Uint8Array(PAGE_SIZE));
  return p;
}

/**
 * khoPreserveVmalloc - kho_preserve_vmalloc(): preserve every block of @area
 * with kho_preserve_pages(block, 2^order) and record them in a chain of
 * chunk pages (from @m's buddy, zeroed, each preserved as an order-0 page);
 * a new chunk is linked as soon as one holds 511 entries. Returns the
 * descriptor. Throws KhoErrnoError: EINVAL (no area: no pages), EOPNOTSUPP
 * (vm->flags outside VM_ALLOC | VM_ALLOW_HUGE_VMAP), EBUSY (6.18 finalize,
 * @kho), ENOMEM, or the tracker's EEXIST/EINVAL; on any error everything it
 * preserved is unpreserved and its chunk pages freed (kho_unpreserve_vmalloc()).
 */
export function khoPreserveVmalloc(m: Machine, track: KhoTracker, area: VmArea, kho?: KhoOut): KhoVmalloc {
  if (area.pages.length === 0) throw new KhoErrnoError("EINVAL", "kho_preserve_vmalloc: find_vm_area() finds no area");
  if (area.flags & ~KHO_VMALLOC_SUPPORTED_FLAGS) {
    throw new KhoErrnoError("EOPNOTSUPP", `kho_preserve_vmalloc: vm flags ${hex(area.flags)} outside ${hex(KHO_VMALLOC_SUPPORTED_FLAGS)}`);
  }
  const order = area.order;
  const contig = 2 ** order;
  const chunks: { phys: number; entries: number[] }[] = [{ phys: newVmallocChunk(m, track, kho), entries: [] }];
  const write = (): void => chunks.forEach((c, i) => m.mem.write(c.phys, encodeKhoVmallocChunk(chunks[i + 1]?.phys ?? 0, c.entries)));
  try {
    for (const phys of area.pages) {
      khoPreservePages(m, track, phys, contig, kho);
      const cur = chunks[chunks.length - 1]!;
      cur.entries.push(phys);
      if (cur.entries.length === KHO_VMALLOC_SIZE) chunks.push({ phys: newVmallocChunk(m, track, kho), entries: [] });
    }
  } catch (e) {
    write();
    khoUnpreserveVmalloc(m, track, { first: chunks[0]!.phys, totalPages: 0, flags: 0, order });
    throw e;
  }
  write();
  return { first: chunks[0]!.phys, totalPages: vmAreaPages(area), flags: vmallocFlagsToKho(area.flags), order };
}

/**
 * khoUnpreserveVmalloc - kho_unpreserve_vmalloc(): walk @desc's chunks in
 * @m's memory; unpreserve each chunk page and each block
 * [phys, phys + 2^order pages) (the pfn + 1 of the first version, fixed
 * before 6.19, left order > 0 blocks preserved), then free the chunk page.
 * Throws Error when the chain is not the predecessor's own (a khosim bug).
 */
export function khoUnpreserveVmalloc(m: Machine, track: KhoTracker, desc: KhoVmalloc): void {
  const seen = new Set<number>();
  let chunk = desc.first;
  while (chunk !== 0) {
    if (seen.has(chunk)) throw new Error(`kho_unpreserve_vmalloc: chunk ${hex(chunk)} is linked twice`);
    seen.add(chunk);
    const c = decodeKhoVmallocChunk(m.mem.read(chunk, PAGE_SIZE));
    khoUnpreservePages(track, chunk, 1);
    for (const p of c.phys) khoUnpreservePages(track, Number(p), 2 ** desc.order);
    const next = u64ToNumber(c.next);
    if (next === undefined) throw new Error(`kho_unpreserve_vmalloc: chunk ${hex(chunk)} next ${hex(c.next)} is not below 2^53`);
    m.buddy.freeFolio(chunk, 0);
    chunk = next;
  }
}
