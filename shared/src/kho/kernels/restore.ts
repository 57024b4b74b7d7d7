/*
 * kho_restore_folio() / kho_restore_pages() as each version does them, on
 * the page->private values its walk wrote (KernelReserves.pagePrivate), and
 * the kho_test restore and verification on top (our kho_test variant,
 * docs/handoff-format.md; docs/kernel-versions.md 4.4).
 *   v6.16 (00c010e1 kho_restore_folio): order = page->private, > MAX_PAGE_ORDER
 *     fails, nothing cleared: a second restore of the same folio succeeds.
 *   v6.18 (a4a508df), v6.19 (dd03dd60), kho-v2 (019fc368) kho_restore_page:
 *     KHO_PAGE_MAGIC and order checked (WARN), then page->private = 0: a
 *     second restore fails.
 *   posting: the walk writes no page->private and v5's restore is not in
 *     the seed (UNCERTAIN): modelled as "the folio's pages are reserved",
 *     order as recorded, once.
 */
import { KHO_TEST_FDT, KhoTestError, decodeKhoTestInfo, khoTestHeaderInfoSize, parseKhoTestFdt } from "../../abi/kho-test.js";
import { PAGE_SIZE } from "../../abi/page.js";
import { ByteReader, hex, u64ToNumber } from "../../lib/bytes.js";
import { csum64 } from "../../lib/csum.js";
import type { FdtRo } from "../../fdt/ro.js";
import { physInRam, type PhysMem } from "../../mm/physmem.js";
import type { VerifyFailure } from "../../abi/handoff-json.js";
import { coversRange, type Intervals } from "./intervals.js";
import type { KhoKernel } from "./versions.js";
import type { PagePrivate } from "./walk.js";

/** KernelRestore - the restore API of one version over the walk's page->private. */
export class KernelRestore {
  doubleRestores = 0;
  private readonly restored = new Set<number>();

  constructor(
    readonly k: KhoKernel,
    readonly mem: PhysMem,
    readonly pagePrivate: PagePrivate,
    readonly reserved: Intervals,
    readonly maxOrder: number,
  ) {}

  /**
   * khoRestoreFolio - restore the folio at @phys; @recorded is the order the
   * caller believes (used only by the posting, whose walk records none).
   * Returns the order, or a string saying why the kernel returns NULL.
   */
  khoRestoreFolio(phys: number, recorded: number): number | string {
    if (!physInRam(this.mem, phys, PAGE_SIZE) || phys % PAGE_SIZE !== 0) return `pfn_to_online_page(${hex(phys / PAGE_SIZE)}): not an online page`;
    const pfn = phys / PAGE_SIZE;
    const how = this.k.successor.pagePrivate;
    if (how === "none") {
      if (this.restored.has(pfn)) return "already restored";
      if (!coversRange(this.reserved, phys, PAGE_SIZE * 2 ** recorded)) return `[${hex(phys)}, +${hex(PAGE_SIZE * 2 ** recorded)}) is not reserved`;
      this.restored.add(pfn);
      return recorded;
    }
    const v = this.pagePrivate.get(pfn) ?? 0;
    const order = v & 0xff;
    if (how === "magic" && !(v & 0x100)) return `WARN: page->private of pfn ${hex(pfn)} lacks KHO_PAGE_MAGIC (not preserved, or restored already)`;
    if (order > this.maxOrder) return `order ${order} > MAX_PAGE_ORDER ${this.maxOrder}`;
    if (how === "magic") this.pagePrivate.delete(pfn);
    else if (this.restored.has(pfn)) this.doubleRestores++;
    this.restored.add(pfn);
    return order;
  }

  /** khoRestorePhys - restore [@start, +@size) (kho_test's ranges): its pages must have been reserved. */
  khoRestorePhys(start: number, size: number): string | undefined {
    return coversRange(this.reserved, start, size) ? undefined : `[${hex(start)}, +${hex(size)}) is not reserved`;
  }
}

export interface KernelVerify {
  restored: { folios: number; ranges: number };
  verified: { folios: number; ranges: number; bytes: number; unchecked: number };
  failures: VerifyFailure[];
  failureCount: number;
}

/**
 * kernelRestoreKhoTest - find kho_test through @k's sub-tree property in
 * @fdt, restore every folio and range it lists with @r and verify their
 * checksums (the simulated memory is intact, so a lost page still verifies:
 * the loss is judged by the reservations, not here). At most @maxListed failures listed.
 */
export function kernelRestoreKhoTest(fdt: FdtRo, mem: PhysMem, r: KernelRestore, maxListed: number): KernelVerify {
  const out: KernelVerify = { restored: { folios: 0, ranges: 0 }, verified: { folios: 0, ranges: 0, bytes: 0, unchecked: 0 }, failures: [], failureCount: 0 };
  const fail = (f: VerifyFailure): KernelVerify => {
    out.failureCount++;
    if (out.failures.length < maxListed) out.failures.push(f);
    return out;
  };
  let node: number;
  try {
    node = fdt.pathOffset(`/${KHO_TEST_FDT}`);
  } catch {
    return out;
  }
  const prop = r.k.successor.subtreeProp;
  const v = fdt.getProp(node, prop);
  if (v === undefined || v.length !== 8) return fail({ kind: "subtree", reason: `/${KHO_TEST_FDT}/${prop}: ${v === undefined ? "missing" : `length ${v.length}`} (kho_retrieve_subtree)` });
  const raw = new ByteReader(v).u64le(0);
  const sub = u64ToNumber(raw);
  if (sub === undefined || !physInRam(mem, sub, PAGE_SIZE)) return fail({ kind: "subtree", phys: hex(raw), reason: `${KHO_TEST_FDT} FDT at ${hex(raw)} is outside RAM` });
  let h;
  let table;
  try {
    h = parseKhoTestFdt(mem.read(sub, Math.min(new ByteReader(mem.read(sub, 8)).u32be(4), PAGE_SIZE)));
    const size = khoTestHeaderInfoSize(h);
    const info = u64ToNumber(h.infoPhys);
    if (size > 0 && (info === undefined || !physInRam(mem, info, size))) return fail({ kind: "subtree", phys: hex(h.infoPhys), reason: `folios_info [${hex(h.infoPhys)}, +${hex(size)}) is outside RAM` });
    const bytes = size > 0 ? mem.read(info!, size) : new Uint8Array(0);
    if (csum64(bytes) !== h.csum) return fail({ kind: "subtree", phys: hex(h.infoPhys), reason: `folios_info checksum ${hex(csum64(bytes))} does not match csum ${hex(h.csum)}` });
    table = decodeKhoTestInfo(bytes, h.nrFolios, h.nrRanges, h.nrRuns, mem.size);
  } catch (e) {
    if (e instanceof KhoTestError) return fail({ kind: "subtree", phys: hex(sub), reason: e.message });
    throw e;
  }
  const t = table.folios;
  for (let i = 0; i < t.length; i++) {
    const phys = t.phys[i]!;
    const got = r.khoRestoreFolio(phys, t.order[i]!);
    if (typeof got === "string") {
      fail({ kind: "folio", phys: hex(phys), order: t.order[i]!, reason: got });
      continue;
    }
    out.restored.folios++;
    if (got !== t.order[i]) {
      fail({ kind: "folio", phys: hex(phys), order: t.order[i]!, reason: `restored with order ${got}, recorded order ${t.order[i]}` });
      continue;
    }
    if (!t.filled(i)) {
      out.verified.unchecked++;
      continue;
    }
    const bytes = physInRam(mem, phys, PAGE_SIZE * 2 ** got) ? mem.read(phys, PAGE_SIZE * 2 ** got) : new Uint8Array(0);
    if (csum64(bytes) !== t.csumOf(i)) {
      fail({ kind: "folio", phys: hex(phys), order: got, reason: `order-${got} folio checksum ${hex(csum64(bytes))} does not match recorded ${hex(t.csumOf(i))}` });
      continue;
    }
    out.verified.folios++;
    out.verified.bytes += bytes.length;
  }
  for (const rg of table.ranges) {
    const why = r.khoRestorePhys(rg.start, rg.size);
    if (why !== undefined) {
      fail({ kind: "range", phys: hex(rg.start), reason: why });
      continue;
    }
    out.restored.ranges++;
    if (rg.csum === 0n) {
      out.verified.unchecked++;
      continue;
    }
    const bytes = physInRam(mem, rg.start, rg.size) ? mem.read(rg.start, rg.size) : new Uint8Array(0);
    if (csum64(bytes) !== rg.csum) {
      fail({ kind: "range", phys: hex(rg.start), reason: `range [${hex(rg.start)}, +${hex(rg.size)}) checksum ${hex(csum64(bytes))} does not match recorded ${hex(rg.csum)}` });
      continue;
    }
    out.verified.ranges++;
    out.verified.bytes += bytes.length;
  }
  return out;
}
