/*
 * The successor's side of kho_test's `vmalloc` and `pages` records
 * (abi/kho-test-vmalloc.ts): restore each area with kho_restore_vmalloc()
 * and each range with kho_restore_pages(), verify the bytes, and say what
 * became of each. A bad record fails that record only, as a failed
 * kho_restore_vmalloc() fails only its caller: the pages restored before the
 * failure stay claimed (leaked), nothing crashes.
 */
import { KHO_TEST_VMALLOC_RECORD_SIZE, KHO_TEST_PAGES_RECORD_SIZE, khoTestPagesRaw } from "../../abi/kho-test-vmalloc.js";
import { type KhoTestHeader } from "../../abi/kho-test.js";
import { KHO_VMALLOC_ALLOC, KHO_VMALLOC_DESC_SIZE, KHO_VMALLOC_HUGE_VMAP, KhoVmallocError, VM_ALLOC, VM_ALLOW_HUGE_VMAP, decodeKhoVmalloc } from "../../abi/kho-vmalloc.js";
import type { PagesReportJson, VerifyFailure, VmallocReportJson } from "../../abi/handoff-json.js";
import { PAGE_SIZE } from "../../abi/page.js";
import { ByteReader, hex } from "../../lib/bytes.js";
import { csum64Stream } from "../../lib/csum.js";
import { physInRam, physReadInto, type PhysMem } from "../../mm/physmem.js";
import type { CarriedPages } from "../out/workload-pages.js";
import { KhoRestoreError, type KhoRestore } from "./restore.js";
import { KhoVmallocRestoreError, khoRestorePages, khoRestoreVmallocChunks } from "./vmalloc.js";

/** What restorePageRecords() found, for the successor to merge into its report and carried state. */
export interface PageRecordsResult {
  vmalloc: VmallocReportJson[];
  pages: PagesReportJson[];
  carried: CarriedPages;
  /** Chunk pages kho_restore_vmalloc() freed. */
  consumed: { start: number; size: number }[];
  failures: VerifyFailure[];
  verifiedBytes: number;
  verified: number;
  unchecked: number;
}

/* Pieces of this many bytes are read and checksummed at a time. */
const PIECE = 1 << 20;

/* xxhash64 of the 4 KiB pages @pages in order, reading runs of adjacent pages at once. */
function csumPages(mem: PhysMem, pages: readonly number[]): bigint {
  const h = csum64Stream();
  const buf = new Uint8Array(PIECE);
  for (let i = 0; i < pages.length; ) {
    let n = 1;
    while (i + n < pages.length && n < PIECE / PAGE_SIZE && pages[i + n] === pages[i]! + n * PAGE_SIZE) n++;
    const piece = buf.subarray(0, n * PAGE_SIZE);
    physReadInto(mem, pages[i]!, piece);
    h.update(piece);
    i += n;
  }
  return h.digest();
}

/** kho_flags_to_vmalloc(): the vm->flags a restored area gets (unknown bits dropped). */
function khoFlagsToVmalloc(flags: number): number {
  return (flags & KHO_VMALLOC_ALLOC ? VM_ALLOC : 0) | (flags & KHO_VMALLOC_HUGE_VMAP ? VM_ALLOW_HUGE_VMAP : 0);
}

/**
 * restorePageRecords - restore and verify the records of @h (the parsed
 * kho_test sub-FDT) on @mem through @restore. Never throws for bad records:
 * each becomes a failure naming field and offset.
 */
export function restorePageRecords(h: KhoTestHeader, mem: PhysMem, restore: KhoRestore): PageRecordsResult {
  const out: PageRecordsResult = { vmalloc: [], pages: [], carried: { vmalloc: [], pages: [] }, consumed: [], failures: [], verifiedBytes: 0, verified: 0, unchecked: 0 };
  const vm = h.vmalloc ?? new Uint8Array(0);
  for (let i = 0; i < vm.length / KHO_TEST_VMALLOC_RECORD_SIZE; i++) {
    const at = i * KHO_TEST_VMALLOC_RECORD_SIZE;
    const where = `vmalloc[${i}]`;
    let desc;
    try {
      desc = decodeKhoVmalloc(vm, at);
    } catch (e) {
      if (!(e instanceof KhoVmallocError)) throw e;
      const r = new ByteReader(vm);
      const reason = `${where}.first (kho_test /data/vmalloc offset ${at}): ${hex(r.u64le(at))} is not below 2^53`;
      out.vmalloc.push({ first: hex(r.u64le(at)), totalPages: r.u32le(at + 8), flags: hex(r.u8(at + 12) | (r.u8(at + 13) << 8)), order: r.u8(at + 14) | (r.u8(at + 15) << 8), pages: 0, outcome: "restore-failed", reason });
      out.failures.push({ kind: "vmalloc", reason });
      continue;
    }
    const csum = new ByteReader(vm).u64le(at + KHO_VMALLOC_DESC_SIZE);
    const row: VmallocReportJson = { first: hex(desc.first), totalPages: desc.totalPages, flags: hex(desc.flags), order: desc.order, pages: 0, outcome: "restore-failed", reason: null };
    out.vmalloc.push(row);
    let got;
    try {
      got = khoRestoreVmallocChunks(mem, restore, desc, where);
    } catch (e) {
      if (!(e instanceof KhoVmallocRestoreError)) throw e;
      row.reason = `kho_restore_vmalloc failed: ${e.message}; ${e.leakedPages} pages restored before it leak`;
      out.failures.push({ kind: "vmalloc", phys: hex(desc.first), reason: row.reason });
      continue;
    }
    row.pages = got.pages.length;
    for (const c of got.chunks) out.consumed.push({ start: c, size: PAGE_SIZE });
    const blocks = got.pages.filter((_, k) => k % 2 ** desc.order === 0);
    if (!verify(row, mem, got.pages, csum, out, where)) continue;
    out.carried.vmalloc.push({ area: { pages: blocks, order: desc.order, flags: khoFlagsToVmalloc(desc.flags) }, csum });
  }
  const pg = h.pages ?? new Uint8Array(0);
  for (let i = 0; i < pg.length / KHO_TEST_PAGES_RECORD_SIZE; i++) {
    const raw = khoTestPagesRaw(pg, i);
    const where = `pages[${i}]`;
    const row: PagesReportJson = { phys: hex(raw.phys), nrPages: Number(raw.nrPages), outcome: "restore-failed", reason: null };
    out.pages.push(row);
    const phys = Number(raw.phys);
    const nr = Number(raw.nrPages);
    const bad = (field: string, off: number, why: string): void => {
      row.reason = `${where}.${field} (kho_test /data/pages offset ${i * KHO_TEST_PAGES_RECORD_SIZE + off}): ${why}`;
      out.failures.push({ kind: "pages", phys: hex(raw.phys), reason: row.reason });
    };
    if (raw.nrPages === 0n || raw.nrPages > 0xffffffffn) {
      bad("nr_pages", 8, `${raw.nrPages} is not 1..2^32-1 (kho_restore_pages() takes an unsigned int)`);
      row.nrPages = 0;
      continue;
    }
    if (raw.phys > BigInt(Number.MAX_SAFE_INTEGER) || phys % PAGE_SIZE !== 0 || !physInRam(mem, phys, nr * PAGE_SIZE)) {
      bad("phys", 0, `[${hex(raw.phys)}, +${nr} pages) is not page-aligned RAM`);
      continue;
    }
    try {
      khoRestorePages(restore, phys, nr);
    } catch (e) {
      if (!(e instanceof KhoRestoreError)) throw e;
      bad("phys", 0, `kho_restore_pages(${hex(phys)}, ${nr}): ${e.message}`);
      continue;
    }
    const pages = Array.from({ length: nr }, (_, k) => phys + k * PAGE_SIZE);
    if (!verify(row, mem, pages, raw.csum, out, where)) continue;
    out.carried.pages.push({ phys, nrPages: nr, csum: raw.csum });
  }
  return out;
}

/* Checksum @pages against @csum (0: unchecked); sets @row's outcome. True unless they differ. */
function verify(row: VmallocReportJson | PagesReportJson, mem: PhysMem, pages: readonly number[], csum: bigint, out: PageRecordsResult, where: string): boolean {
  if (csum === 0n) {
    row.outcome = "unchecked";
    out.unchecked++;
    return true;
  }
  const got = csumPages(mem, pages);
  if (got !== csum) {
    row.outcome = "checksum-mismatch";
    row.reason = `${where}: checksum ${hex(got)} of ${pages.length} pages does not match recorded ${hex(csum)}`;
    out.failures.push({ kind: "totalPages" in row ? "vmalloc" : "pages", phys: hex(pages[0]!), reason: row.reason });
    return false;
  }
  row.outcome = "verified";
  out.verified++;
  out.verifiedBytes += pages.length * PAGE_SIZE;
  return true;
}
