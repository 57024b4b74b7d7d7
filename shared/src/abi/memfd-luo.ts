/**
 * DOC: the memfd Live Update ABI (memfd-v1)
 *
 * include/linux/kho/abi/memfd.h @ac2d8102c4, used by mm/memfd_luo.c
 * @02e117b8ca. A preserved memfd's luo_file_ser.data is the phys of a
 * packed 40-byte struct memfd_luo_ser from kho_alloc_preserve():
 *
 *   +0 u64 pos (f_pos) · +8 u64 size (i_size) · +16 u64 nr_folios ·
 *   +24 struct kho_vmalloc folios (16 bytes: first, total_pages, flags, order)
 *
 * The vmalloc'ed array it describes holds nr_folios packed 16-byte struct
 * memfd_luo_folio_ser { u64 pfn:52; u64 flags:12; u64 index; }: under the
 * x86-64 GCC bitfield rules pfn is bits 0-51 and flags bits 52-63 of the
 * first little-endian u64; index is the page offset in the file. Flags:
 * MEMFD_LUO_FOLIO_DIRTY = 1 << 0, MEMFD_LUO_FOLIO_UPTODATE = 1 << 1. A pfn
 * of 0 is skipped on restore. A size-0 memfd has nr_folios 0 and an
 * all-zero descriptor (memfd_luo_preserve_folios).
 *
 * Any change to these bytes is a new MEMFD_LUO_FH_COMPATIBLE.
 */
import { ByteReader, ByteWriter } from "../lib/bytes.js";
import { KHO_VMALLOC_DESC_SIZE } from "./kho-vmalloc.js";

/** MEMFD_LUO_FH_COMPATIBLE: the file handler's id in luo_file_ser.compatible. */
export const MEMFD_LUO_FH_COMPATIBLE = "memfd-v1";
/** sizeof(struct memfd_luo_ser), packed. */
export const MEMFD_LUO_SER_SIZE = 40;
/** Offset of the struct kho_vmalloc in memfd_luo_ser. */
export const MEMFD_LUO_SER_FOLIOS_OFFSET = 24;
/** sizeof(struct memfd_luo_folio_ser), packed. */
export const MEMFD_LUO_FOLIO_SER_SIZE = 16;
/** MEMFD_LUO_FOLIO_DIRTY. */
export const MEMFD_LUO_FOLIO_DIRTY = 1 << 0;
/** MEMFD_LUO_FOLIO_UPTODATE. */
export const MEMFD_LUO_FOLIO_UPTODATE = 1 << 1;
/** Largest pfn the 52-bit field holds. */
export const MEMFD_LUO_PFN_MAX = 2 ** 52 - 1;

/** struct memfd_luo_ser; folios is the raw kho_vmalloc descriptor (abi/kho-vmalloc.ts reads it). */
export interface MemfdLuoSer {
  pos: bigint;
  size: bigint;
  nrFolios: bigint;
  folios: Uint8Array;
}

/** encodeMemfdLuoSer - the 40 bytes of @s. */
export function encodeMemfdLuoSer(s: MemfdLuoSer): Uint8Array {
  if (s.folios.length !== KHO_VMALLOC_DESC_SIZE) throw new RangeError(`kho_vmalloc descriptor is ${s.folios.length} bytes, not ${KHO_VMALLOC_DESC_SIZE}`);
  const out = new Uint8Array(MEMFD_LUO_SER_SIZE);
  const w = new ByteWriter(out);
  w.u64le(0, s.pos);
  w.u64le(8, s.size);
  w.u64le(16, s.nrFolios);
  w.bytesAt(MEMFD_LUO_SER_FOLIOS_OFFSET, s.folios);
  return out;
}

/** decodeMemfdLuoSer - @b (at least 40 bytes) as struct memfd_luo_ser. */
export function decodeMemfdLuoSer(b: Uint8Array): MemfdLuoSer {
  const r = new ByteReader(b);
  return { pos: r.u64le(0), size: r.u64le(8), nrFolios: r.u64le(16), folios: b.slice(MEMFD_LUO_SER_FOLIOS_OFFSET, MEMFD_LUO_SER_FOLIOS_OFFSET + KHO_VMALLOC_DESC_SIZE) };
}

/**
 * encodeMemfdFolioSer - write record @i (pfn, flags, index) into @out.
 * The first u64 is split in two u32 words so no value passes 2^53:
 * low word = pfn bits 0-31, high word = pfn bits 32-51 | flags << 20.
 */
export function encodeMemfdFolioSer(out: DataView, i: number, pfn: number, flags: number, index: number): void {
  if (!Number.isSafeInteger(pfn) || pfn < 0 || pfn > MEMFD_LUO_PFN_MAX) throw new RangeError(`pfn ${pfn} does not fit 52 bits`);
  if (flags < 0 || flags > 0xfff) throw new RangeError(`flags ${flags} do not fit 12 bits`);
  const o = i * MEMFD_LUO_FOLIO_SER_SIZE;
  out.setUint32(o, pfn % 2 ** 32, true);
  out.setUint32(o + 4, (Math.floor(pfn / 2 ** 32) | (flags << 20)) >>> 0, true);
  out.setUint32(o + 8, index % 2 ** 32, true);
  out.setUint32(o + 12, Math.floor(index / 2 ** 32), true);
}

/** One decoded folio record; index is a bigint (any u64 a damaged record holds). */
export interface MemfdFolioSer {
  pfn: number;
  flags: number;
  index: bigint;
}

/** decodeMemfdFolioSer - record @i of @v. */
export function decodeMemfdFolioSer(v: DataView, i: number): MemfdFolioSer {
  const o = i * MEMFD_LUO_FOLIO_SER_SIZE;
  const lo = v.getUint32(o, true);
  const hi = v.getUint32(o + 4, true);
  return { pfn: (hi & 0xfffff) * 2 ** 32 + lo, flags: hi >>> 20, index: v.getBigUint64(o + 8, true) };
}
