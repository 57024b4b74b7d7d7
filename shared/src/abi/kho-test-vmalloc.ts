/*
 * kho_test's records of vmalloc areas and kho_preserve_pages() ranges: two
 * optional properties of the kho_test sub-FDT's /data node (abi/kho-test.ts),
 * written only when the scenario made such preservations, so handoffs
 * without them keep their bytes.
 *
 *	vmalloc   N x 24 B: struct kho_vmalloc (16 B, abi/kho-vmalloc.ts) + u64 LE csum
 *	pages     N x 24 B: u64 LE phys, u64 LE nr_pages, u64 LE csum
 *
 * csum is xxhash64 (seed 0) of the area's bytes in vm->pages order, or of the
 * range; 0 = not filled, not checked. Embedding struct kho_vmalloc in an FDT
 * property is what lib/test_kho.c (6.18+) does with its folios_info.
 */
import { KHO_VMALLOC_DESC_SIZE, encodeKhoVmalloc, type KhoVmalloc } from "./kho-vmalloc.js";
import { ByteReader, ByteWriter } from "../lib/bytes.js";

export const KHO_TEST_VMALLOC_PROP = "vmalloc";
export const KHO_TEST_PAGES_PROP = "pages";
/** Bytes of one record in either property. */
export const KHO_TEST_VMALLOC_RECORD_SIZE = KHO_VMALLOC_DESC_SIZE + 8;
export const KHO_TEST_PAGES_RECORD_SIZE = 24;
/** Records of both kinds a scenario may make: with them the kho_test FDT stays within its page. */
export const KHO_TEST_MAX_PAGE_RECORDS = 128;

export interface KhoTestVmallocRecord {
  desc: KhoVmalloc;
  csum: bigint;
}

export interface KhoTestPagesRecord {
  phys: number;
  nrPages: number;
  csum: bigint;
}

/** encodeKhoTestVmalloc - the `vmalloc` property for @recs. */
export function encodeKhoTestVmalloc(recs: readonly KhoTestVmallocRecord[]): Uint8Array {
  const out = new Uint8Array(recs.length * KHO_TEST_VMALLOC_RECORD_SIZE);
  const w = new ByteWriter(out);
  recs.forEach((r, i) => {
    const at = i * KHO_TEST_VMALLOC_RECORD_SIZE;
    w.bytesAt(at, encodeKhoVmalloc(r.desc));
    w.u64le(at + KHO_VMALLOC_DESC_SIZE, r.csum);
  });
  return out;
}

/** encodeKhoTestPages - the `pages` property for @recs. */
export function encodeKhoTestPages(recs: readonly KhoTestPagesRecord[]): Uint8Array {
  const out = new Uint8Array(recs.length * KHO_TEST_PAGES_RECORD_SIZE);
  const w = new ByteWriter(out);
  recs.forEach((r, i) => {
    const at = i * KHO_TEST_PAGES_RECORD_SIZE;
    w.u64le(at, r.phys);
    w.u64le(at + 8, r.nrPages);
    w.u64le(at + 16, r.csum);
  });
  return out;
}

/** The raw u64s of `pages` record @i of @prop (checked by the successor). */
export function khoTestPagesRaw(prop: Uint8Array, i: number): { phys: bigint; nrPages: bigint; csum: bigint } {
  const r = new ByteReader(prop);
  const at = i * KHO_TEST_PAGES_RECORD_SIZE;
  return { phys: r.u64le(at), nrPages: r.u64le(at + 8), csum: r.u64le(at + 16) };
}
