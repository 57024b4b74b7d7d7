/*
 * DOC: KHO ABI for vmalloc preservation (struct kho_vmalloc and its chunks).
 *
 * kho_preserve_vmalloc() describes a vmalloc area with a 16-byte descriptor
 * that the caller embeds in its own preserved data (lib/test_kho.c puts it in
 * an FDT property; memfd puts it in memfd_luo_ser):
 *
 *	+0  u64 first        phys of the first chunk (0 only for a failed preserve)
 *	+8  u32 total_pages  number of 4 KiB pages of the area (vm->nr_pages)
 *	+12 u16 flags        KHO_VMALLOC_ALLOC 0x1 (VM_ALLOC), KHO_VMALLOC_HUGE_VMAP 0x2
 *	                     (VM_ALLOW_HUGE_VMAP); any other bit is refused
 *	+14 u16 order        get_vm_area_page_order(): 0, or the huge mapping order
 *
 * Each chunk is exactly one page, itself preserved as one order-0 page:
 *
 *	+0  u64 next         phys of the next chunk, 0 = last
 *	+8  u64 phys[511]    phys of the first page of each 2^order block, in
 *	                     vm->pages order; zero-terminated (a reader stops at
 *	                     the first 0 or after 511 entries)
 *
 * A new chunk is linked as soon as one fills, so an area of exactly 511 * k
 * blocks ends with an empty chunk. Little-endian, 4 KiB pages.
 *
 * Source: torvalds/linux dd03dd60e8cdd5ef0f0cbc18276c45009bcc51f4
 * kernel/liveupdate/kexec_handover.c (struct kho_vmalloc_hdr,
 * struct kho_vmalloc_chunk, KHO_VMALLOC_SIZE, KHO_VMALLOC_ALLOC/HUGE_VMAP,
 * kho_preserve_vmalloc) with struct kho_vmalloc in include/linux/kexec_handover.h;
 * the same bytes in include/linux/kho/abi/kexec_handover.h at
 * 3f2ad90060f65d6f66414b8a67c569154bafec7b ("DOC: Kexec Handover ABI for
 * vmalloc Preservation"). As for every KHO ABI header: any change to these
 * bytes needs a new compatible string.
 */
import { PAGE_SIZE } from "./page.js";
import { ByteReader, ByteWriter, hex } from "../lib/bytes.js";

/** Entries of one chunk: (PAGE_SIZE - sizeof(struct kho_vmalloc_hdr)) / sizeof(phys_addr_t). */
export const KHO_VMALLOC_SIZE = 511;
/** kho_vmalloc.flags: the area was made by vmalloc() (VM_ALLOC). */
export const KHO_VMALLOC_ALLOC = 0x1;
/** kho_vmalloc.flags: the area may use huge mappings (VM_ALLOW_HUGE_VMAP). */
export const KHO_VMALLOC_HUGE_VMAP = 0x2;
/** Flags a restore accepts. */
export const KHO_VMALLOC_FLAGS_MASK = KHO_VMALLOC_ALLOC | KHO_VMALLOC_HUGE_VMAP;
/** sizeof(struct kho_vmalloc). */
export const KHO_VMALLOC_DESC_SIZE = 16;
/** Offset of phys[0] in a chunk (after the u64 next). */
export const KHO_VMALLOC_CHUNK_HDR = 8;

/** vm_struct flags (include/linux/vmalloc.h): what vmalloc_flags_to_kho() maps. */
export const VM_ALLOC = 0x2;
export const VM_ALLOW_HUGE_VMAP = 0x400;

/** struct kho_vmalloc, decoded. */
export interface KhoVmalloc {
  /** phys of the first chunk. */
  first: number;
  totalPages: number;
  flags: number;
  order: number;
}

/** A descriptor or chunk field is malformed; names the field and its byte offset. */
export class KhoVmallocError extends Error {
  constructor(
    readonly field: string,
    readonly offset: number,
    reason: string,
  ) {
    super(`kho_vmalloc ${field} (offset ${offset}): ${reason}`);
    this.name = "KhoVmallocError";
  }
}

/**
 * encodeKhoVmalloc - the 16 little-endian bytes of struct kho_vmalloc @v.
 * Throws RangeError when a field does not fit its width.
 */
export function encodeKhoVmalloc(v: KhoVmalloc): Uint8Array {
  const fits = (x: number, max: number): boolean => Number.isSafeInteger(x) && x >= 0 && x <= max;
  if (!fits(v.first, Number.MAX_SAFE_INTEGER) || !fits(v.totalPages, 0xffffffff) || !fits(v.flags, 0xffff) || !fits(v.order, 0xffff)) {
    throw new RangeError(`kho_vmalloc {first ${String(v.first)}, total_pages ${String(v.totalPages)}, flags ${String(v.flags)}, order ${String(v.order)}} does not fit u64/u32/u16/u16`);
  }
  const out = new Uint8Array(KHO_VMALLOC_DESC_SIZE);
  const w = new ByteWriter(out);
  w.u64le(0, v.first);
  w.u32le(8, v.totalPages);
  out[12] = v.flags & 0xff;
  out[13] = v.flags >>> 8;
  out[14] = v.order & 0xff;
  out[15] = v.order >>> 8;
  return out;
}

/**
 * decodeKhoVmalloc - struct kho_vmalloc at @off of @bytes. Throws
 * KhoVmallocError when fewer than 16 bytes are there or `first` is not below
 * 2^53 (it cannot be a physical address khosim can hold).
 */
export function decodeKhoVmalloc(bytes: Uint8Array, off: number): KhoVmalloc {
  if (!Number.isInteger(off) || off < 0 || off + KHO_VMALLOC_DESC_SIZE > bytes.length) {
    throw new KhoVmallocError("descriptor", off, `needs ${KHO_VMALLOC_DESC_SIZE} bytes, ${Math.max(0, bytes.length - off)} present`);
  }
  const r = new ByteReader(bytes);
  const first = r.u64le(off);
  if (first > BigInt(Number.MAX_SAFE_INTEGER)) throw new KhoVmallocError("first", off, `${hex(first)} is not below 2^53`);
  return {
    first: Number(first),
    totalPages: r.u32le(off + 8),
    flags: r.u8(off + 12) | (r.u8(off + 13) << 8),
    order: r.u8(off + 14) | (r.u8(off + 15) << 8),
  };
}

/** One chunk page, decoded: the raw next pointer and the entries before the terminator. */
export interface KhoVmallocChunk {
  next: bigint;
  phys: bigint[];
}

/**
 * encodeKhoVmallocChunk - the page-sized bytes of a chunk with @next and
 * entries @phys (at most KHO_VMALLOC_SIZE; the rest stays zero, terminating
 * the array). Entries must be non-zero: a 0 would end the array early.
 */
export function encodeKhoVmallocChunk(next: number, phys: readonly number[]): Uint8Array {
  if (phys.length > KHO_VMALLOC_SIZE) throw new RangeError(`a kho_vmalloc chunk holds ${KHO_VMALLOC_SIZE} entries, not ${phys.length}`);
  const out = new Uint8Array(PAGE_SIZE);
  const w = new ByteWriter(out);
  w.u64le(0, next);
  phys.forEach((p, i) => {
    if (!(p > 0)) throw new RangeError(`kho_vmalloc chunk entry ${i} is ${String(p)}: entries are non-zero physical addresses`);
    w.u64le(KHO_VMALLOC_CHUNK_HDR + 8 * i, p);
  });
  return out;
}

/**
 * decodeKhoVmallocChunk - the chunk in @page (PAGE_SIZE bytes): next and the
 * entries up to the first zero or all 511. Raw u64s: the caller checks them.
 */
export function decodeKhoVmallocChunk(page: Uint8Array): KhoVmallocChunk {
  if (page.length !== PAGE_SIZE) throw new KhoVmallocError("chunk", 0, `is ${page.length} bytes, not a page`);
  const r = new ByteReader(page);
  const phys: bigint[] = [];
  for (let i = 0; i < KHO_VMALLOC_SIZE; i++) {
    const p = r.u64le(khoVmallocEntryOffset(i));
    if (p === 0n) break;
    phys.push(p);
  }
  return { next: r.u64le(0), phys };
}

/** Byte offset of entry @i in a chunk page. */
export function khoVmallocEntryOffset(i: number): number {
  return KHO_VMALLOC_CHUNK_HDR + 8 * i;
}
