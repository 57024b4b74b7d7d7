/*
 * kho_finalize for the predecessor: write the kho_test sub-tree and its info
 * blob into preserved memory, preserve the page that will hold the KHO FDT,
 * serialize the tracker into the chunk list (in memory that is neither scratch
 * nor preserved), then write the KHO FDT and build the boot DTB that points at
 * it and at the scratch array.
 */
import { KHO_FDT_MAX_SIZE } from "../../abi/kho-fdt.js";
import { KHO_SCRATCH_SIZE } from "../../abi/boot-dtb.js";
import { KHO_TEST_FDT } from "../../abi/kho-test.js";
import { PAGE_SIZE } from "../../abi/page.js";
import { buildBootDtb } from "../../abi/boot-dtb.js";
import { ByteWriter, hex } from "../../lib/bytes.js";
import { csum64Stream } from "../../lib/csum.js";
import { buildKhoTestFdt, encodeKhoTestInfo, KhoTestInfoEncoder } from "../../abi/kho-test.js";
import type { Machine } from "../../mm/machine.js";
import { physWriteOwned, SparseMem } from "../../mm/physmem.js";
import type { WorkloadResult } from "./workload.js";
import { MEMBLOCK_KHO_FDT } from "../../abi/memblock-fdt.js";
import { encodeKhoTestPages, encodeKhoTestVmalloc } from "../../abi/kho-test-vmalloc.js";
import { LUO_FDT_KHO_ENTRY_NAME } from "../../abi/luo.js";
import type { LuoHandoff } from "./luo.js";

/** A preserved reservation as report.json lists it. */
export interface ReserveMemRecord {
  name: string;
  start: number;
  size: number;
  /** csum64 (xxhash64) of the bytes written into the range. */
  csum: bigint;
}

/** What reserve_mem (out/reserve-mem.ts) hands to finalize: the sub-FDT page and the rows. */
export interface ReserveMemHandoff {
  fdtPhys: number;
  entries: ReserveMemRecord[];
}

export interface Handoff {
  bootDtb: Uint8Array;
  khoFdt: Uint8Array;
  khoFdtPhys: number;
  scratchPhys: number;
  /** The format's root pointer (ranges: first chunk). */
  metadata: number;
  /** Metadata objects (ranges: chunk pages; posted: 32-page chunks) in walk order. */
  chunks: number[];
  /** Pages of metadata in memory. */
  metadataPageCount: number;
  /** Exact bytes of metadata in memory. */
  metadataBytes: number;
  subtreePhys: number;
  infoPhys: number;
  infoSize: number;
  /** Nanoseconds spent in khoMemSerialize. */
  serializeNs: bigint;
  /** The memblock sub-tree (reserve_mem), when there were reservations. */
  reserveMem?: ReserveMemHandoff;
  /** The LUO sub-tree, when the scenario ran user space on /dev/liveupdate. */
  luo?: LuoHandoff;
}

export class FinalizeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FinalizeError";
  }
}

/** Bytes of the info blob made and checksummed at a time. */
const INFO_PIECE = 1 << 20;

/* xxhash64 of the info blob, made piece by piece through one buffer. */
function infoCsum(info: KhoTestInfoEncoder): bigint {
  const h = csum64Stream();
  const buf = new Uint8Array(Math.min(info.size, INFO_PIECE));
  for (let off = 0; off < info.size; off += INFO_PIECE) {
    const piece = buf.subarray(0, Math.min(INFO_PIECE, info.size - off));
    info.encodeInto(off, piece);
    h.update(piece);
  }
  return h.digest();
}

function allocPage(m: Machine, what: string): number {
  const p = m.buddy.allocFolio(0);
  if (p === undefined) throw new FinalizeError(`out of memory allocating ${what}`);
  return p;
}

/**
 * khoFinalize - see the file comment. Mutates @m (allocations, memory) and @w.track.
 * @reserveMem: the memblock sub-tree, added after kho_test's (its notifier
 * registers later, at late_initcall, so it runs second).
 * @luo: the LUO sub-tree (out/luo.ts), serialized already by liveupdate_reboot.
 */
export function khoFinalize(m: Machine, w: WorkloadResult, reserveMem?: ReserveMemHandoff, luo?: LuoHandoff): Handoff {
  const { track, folios } = w;

  // The info blob, preserved as a physical range (kho_preserve_vmalloc's role). With no filled
  // folio there is no per-folio checksum to carry: the folio table is written as runs (kho-test-v2).
  const runs = folios.live > 0 && !folios.anyLiveFilled();
  const info = new KhoTestInfoEncoder(folios, w.phys, runs);
  let infoPhys = 0;
  if (info.size > 0) {
    const pages = Math.ceil(info.size / PAGE_SIZE);
    const p = m.buddy.allocContig(pages, 1);
    if (p === undefined) throw new FinalizeError(`out of memory allocating the ${hex(info.size)}-byte kho_test info blob`);
    infoPhys = p;
    // Made on demand, when the image is written (no blob-sized array); other memories get the bytes.
    if (m.mem instanceof SparseMem) m.mem.writeGenerated(infoPhys, info.size, (off, out) => info.encodeInto(off, out));
    else physWriteOwned(m.mem, infoPhys, encodeKhoTestInfo(folios, w.phys, runs));
    track.khoPreservePhys(infoPhys, pages * PAGE_SIZE);
  }
  const unfilled = w.phys.some((r) => r.csum === 0n) || folios.anyLiveUnfilled();
  const recs = w.pageOps.records();
  const sub = buildKhoTestFdt({
    nrFolios: folios.live,
    nrRuns: info.nrRuns,
    nrRanges: w.phys.length,
    infoPhys: BigInt(infoPhys),
    csum: infoCsum(info),
    unfilled,
    vmalloc: encodeKhoTestVmalloc(recs.vmalloc),
    pages: encodeKhoTestPages(recs.pages),
  });
  if (sub.length > PAGE_SIZE) throw new FinalizeError(`kho_test FDT is ${sub.length} bytes, more than a page`);
  const subPhys = allocPage(m, "the kho_test FDT");
  track.khoPreserveFolio(subPhys, 0);
  m.mem.write(subPhys, sub);

  // The KHO FDT lives in a preserved page; preserve it before serializing so it is in the list.
  const fdtPhys = allocPage(m, "the KHO FDT");
  track.khoPreserveFolio(fdtPhys, 0);

  // The scratch array is a kexec segment: not preserved, reserved by the successor.
  const scratchPhys = allocPage(m, "the scratch array");
  const sa = new Uint8Array(m.scratch.length * KHO_SCRATCH_SIZE);
  const sw = new ByteWriter(sa);
  m.scratch.forEach((s, i) => {
    sw.u64le(i * KHO_SCRATCH_SIZE, s.addr);
    sw.u64le(i * KHO_SCRATCH_SIZE + 8, s.size);
  });
  m.mem.write(scratchPhys, sa);

  const t = process.hrtime.bigint();
  const ser = w.format.serialize(
    track,
    m.mem,
    () => allocPage(m, "a metadata page"),
    (pages) => {
      const p = m.buddy.allocContig(pages, 1);
      if (p === undefined) throw new FinalizeError(`out of memory allocating ${pages} contiguous metadata pages`);
      return p;
    },
    (n) => {
      const out: number[] = [];
      if (m.buddy.allocPages(n, out) < n) throw new FinalizeError("out of memory allocating a metadata page");
      return out;
    },
  );
  const serializeNs = process.hrtime.bigint() - t;

  const subtrees = [{ name: KHO_TEST_FDT, fdtPhys: subPhys }];
  if (reserveMem) subtrees.push({ name: MEMBLOCK_KHO_FDT, fdtPhys: reserveMem.fdtPhys });
  if (luo) subtrees.push({ name: LUO_FDT_KHO_ENTRY_NAME, fdtPhys: luo.fdtPhys });
  const khoFdt = w.format.buildFdt(ser.root, subtrees);
  if (khoFdt.length > KHO_FDT_MAX_SIZE) throw new FinalizeError(`KHO FDT is ${khoFdt.length} bytes, more than ${KHO_FDT_MAX_SIZE}`);
  m.mem.write(fdtPhys, khoFdt);

  const bootDtb = buildBootDtb(
    { base: m.config.ramBase, size: m.config.ram, banks: m.config.banks, numa: m.config.nodes !== undefined },
    { addr: fdtPhys, size: khoFdt.length },
    { addr: scratchPhys, size: sa.length },
  );
  const h: Handoff = {
    bootDtb,
    khoFdt,
    khoFdtPhys: fdtPhys,
    scratchPhys,
    metadata: ser.root,
    chunks: ser.objects ?? ser.metadataPages,
    metadataPageCount: ser.metadataPages.length,
    metadataBytes: ser.metadataBytes,
    subtreePhys: subPhys,
    infoPhys,
    infoSize: info.size,
    serializeNs,
  };
  if (reserveMem) h.reserveMem = reserveMem;
  if (luo) h.luo = luo;
  return h;
}
