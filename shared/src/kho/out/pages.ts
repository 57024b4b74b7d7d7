/*
 * The page-level KHO API of the predecessor: kho_preserve_pages(),
 * kho_unpreserve_pages(), kho_alloc_preserve(), kho_unpreserve_free(), and
 * the errnos they return, after torvalds/linux
 * dd03dd60e8cdd5ef0f0cbc18276c45009bcc51f4 kernel/liveupdate/kexec_handover.c
 * (6.19). Where other versions differ it is said at the function.
 *
 * kho_preserve_pages() splits [pfn, pfn + nr) into naturally aligned blocks
 * (order = min(ctz(pfn), ilog2(end - pfn))) and preserves each with
 * __kho_preserve_order(), i.e. exactly as a folio of that order: the tracker's
 * khoPreserveFolio() is that call here. The unpreserve repeats the same split.
 */
import { PAGE_SIZE } from "../../abi/page.js";
import { hex } from "../../lib/bytes.js";
import type { Machine } from "../../mm/machine.js";
import type { KhoTracker } from "../formats/types.js";
import { KhoTrackError, khoPhysBlocks } from "../track.js";

/** The kernel errnos these calls return. */
export type KhoErrno = "EINVAL" | "EOPNOTSUPP" | "EBUSY" | "E2BIG" | "ENOMEM" | "EEXIST";

/** Every KhoErrno, for scenario validation ("expect"). */
export const KHO_ERRNOS: readonly KhoErrno[] = ["EINVAL", "EOPNOTSUPP", "EBUSY", "E2BIG", "ENOMEM", "EEXIST"];

/** A KHO call failed with the kernel's errno @errno (its name, e.g. "EBUSY"). */
export class KhoErrnoError extends Error {
  constructor(
    readonly errno: KhoErrno,
    message: string,
  ) {
    super(`${message} (-${errno})`);
    this.name = "KhoErrnoError";
  }
}

/**
 * The predecessor's KHO state beyond the tracker. @finalized: 6.18's
 * kho_out.finalized (debugfs `echo 1 > finalize`), after which
 * __kho_preserve_order() returns -EBUSY (torvalds/linux
 * a4a508df2aa34f8650afde54ea804321c618f45f kernel/kexec_handover.c, commit
 * 469661d0d3a5). At dd03dd60 (6.19) __kho_preserve_order() no longer checks
 * it (kho_finalize() runs inside liveupdate_reboot(), nothing preserves
 * after it); kho-v2 has no finalize at all. khosim keeps the 6.18 check for
 * a scenario's "finalize" op.
 */
export interface KhoOut {
  finalized: boolean;
}

/* -EBUSY once finalized (6.18 __kho_preserve_order). */
function checkNotFinalized(kho: KhoOut | undefined, fn: string): void {
  if (kho?.finalized) throw new KhoErrnoError("EBUSY", `${fn}: KHO is finalized`);
}

/* The tracker's own refusals (EEXIST: preserved with other data; EINVAL: bad range) as errnos. */
function trackErrno(e: unknown, fn: string): never {
  if (e instanceof KhoTrackError) throw new KhoErrnoError(e.code, `${fn}: ${e.message}`);
  throw e;
}

/**
 * khoScratchOverlap - true when [@phys, @phys + @size) touches a scratch area
 * of @m (kho_scratch_overlap(), compiled in with CONFIG_KEXEC_HANDOVER_DEBUG;
 * khosim always checks).
 */
export function khoScratchOverlap(m: Machine, phys: number, size: number): boolean {
  return m.scratch.some((s) => phys < s.addr + s.size && s.addr < phys + size);
}

/**
 * khoPreservePages - kho_preserve_pages(): preserve @nrPages order-0 pages
 * from @phys, block by block. WARN + -EINVAL when the range overlaps scratch;
 * the overlap is checked over `nr_pages << PAGE_SHIFT` computed in 32 bits
 * (nr_pages is unsigned int in 6.19; kho-v2 made it unsigned long), so from
 * 4 GiB on the checked length wraps, as in the kernel. A block that fails
 * unpreserves the blocks before it. -EBUSY after a 6.18 finalize (@kho).
 * @nrPages: 0..2^32-1; 0 preserves nothing and succeeds.
 */
export function khoPreservePages(m: Machine, track: KhoTracker, phys: number, nrPages: number, kho?: KhoOut): void {
  if (!Number.isSafeInteger(phys) || phys < 0 || phys % PAGE_SIZE !== 0 || !Number.isInteger(nrPages) || nrPages < 0 || nrPages > 0xffffffff) {
    throw new KhoErrnoError("EINVAL", `kho_preserve_pages: ${String(nrPages)} pages at ${String(phys)} is not a page range`);
  }
  const checked = (nrPages * PAGE_SIZE) % 2 ** 32;
  if (khoScratchOverlap(m, phys, checked)) throw new KhoErrnoError("EINVAL", `kho_preserve_pages: [${hex(phys)}, +${hex(nrPages * PAGE_SIZE)}) overlaps a scratch area`);
  const pfn = phys / PAGE_SIZE;
  const done: { pfn: number; order: number }[] = [];
  try {
    for (const b of khoPhysBlocks(pfn, pfn + nrPages)) {
      checkNotFinalized(kho, "kho_preserve_pages");
      track.khoPreserveFolio(b.pfn * PAGE_SIZE, b.order);
      done.push(b);
    }
  } catch (e) {
    for (const b of done) track.khoUnpreserveFolio(b.pfn * PAGE_SIZE, b.order);
    if (e instanceof KhoErrnoError) throw e;
    trackErrno(e, "kho_preserve_pages");
  }
}

/**
 * khoUnpreservePages - kho_unpreserve_pages(): unpreserve the blocks
 * khoPreservePages(@phys, @nrPages) preserved. void in 6.19 and kho-v2: it
 * must repeat the preserve call exactly (callers check; see workload.ts), and
 * has no finalized check (the -EBUSY version posted 2025-10-21 was not merged).
 */
export function khoUnpreservePages(track: KhoTracker, phys: number, nrPages: number): void {
  const pfn = phys / PAGE_SIZE;
  for (const b of khoPhysBlocks(pfn, pfn + nrPages)) track.khoUnpreserveFolio(b.pfn * PAGE_SIZE, b.order);
}

/** get_order(): the smallest order whose folio holds @size bytes. */
export function getOrder(size: number): number {
  let order = 0;
  while (PAGE_SIZE * 2 ** order < size) order++;
  return order;
}

/**
 * khoAllocPreserve - kho_alloc_preserve(): a zeroed folio of get_order(@size)
 * from the buddy, preserved with kho_preserve_folio(); returns its phys.
 * -EINVAL for size 0, -E2BIG when the order exceeds this kernel's
 * MAX_PAGE_ORDER (@m's maxOrder), -ENOMEM when the buddy has no such folio;
 * a failed preserve frees the folio again (folio_put). New in 6.19; kho-v2
 * the same.
 */
export function khoAllocPreserve(m: Machine, track: KhoTracker, size: number, kho?: KhoOut): { phys: number; order: number } {
  if (!Number.isSafeInteger(size) || size < 0) throw new KhoErrnoError("EINVAL", `kho_alloc_preserve: size ${String(size)} is not a byte count`);
  if (size === 0) throw new KhoErrnoError("EINVAL", "kho_alloc_preserve: size 0");
  const order = getOrder(size);
  if (order > m.config.maxOrder) throw new KhoErrnoError("E2BIG", `kho_alloc_preserve: size ${hex(size)} needs order ${order}, above MAX_PAGE_ORDER ${m.config.maxOrder}`);
  const phys = m.buddy.allocFolio(order);
  if (phys === undefined) throw new KhoErrnoError("ENOMEM", `kho_alloc_preserve: no free order-${order} folio`);
  m.mem.write(phys, new Uint8Array(PAGE_SIZE * 2 ** order));
  try {
    checkNotFinalized(kho, "kho_alloc_preserve");
    track.khoPreserveFolio(phys, order);
  } catch (e) {
    m.buddy.freeFolio(phys, order);
    if (e instanceof KhoErrnoError) throw e;
    trackErrno(e, "kho_alloc_preserve");
  }
  return { phys, order };
}

/**
 * khoUnpreserveFree - kho_unpreserve_free(): unpreserve the folio
 * khoAllocPreserve() returned (@phys, @order) and free it to the buddy.
 */
export function khoUnpreserveFree(m: Machine, track: KhoTracker, phys: number, order: number): void {
  track.khoUnpreserveFolio(phys, order);
  m.buddy.freeFolio(phys, order);
}
