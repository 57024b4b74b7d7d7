/*
 * The scenario ops over the page-level KHO API (out/pages.ts) and vmalloc
 * preservation (out/vmalloc.ts): vmalloc, preserve-pages, alloc-preserve,
 * their unpreserve ops and 6.18's finalize. A call the kernel fails with an
 * errno stops the scenario with one line naming the op and the errno, unless
 * the op says `"expect": "<ERRNO>"`, when that exact errno is what must
 * happen (and success is the error). Unpreserve ops must repeat the preserve
 * call exactly: a partial one is refused (see unpreservePages).
 */
import { type KhoTestPagesRecord, type KhoTestVmallocRecord } from "../../abi/kho-test-vmalloc.js";
import { FolioTable } from "../../abi/kho-test.js";
import { KHO_VMALLOC_SIZE, type KhoVmalloc } from "../../abi/kho-vmalloc.js";
import { PAGE_SIZE } from "../../abi/page.js";
import { hex } from "../../lib/bytes.js";
import { csum64, csum64Stream } from "../../lib/csum.js";
import type { Machine } from "../../mm/machine.js";
import type { KhoTracker } from "../formats/types.js";
import { KhoErrnoError, khoAllocPreserve, khoPreservePages, khoUnpreserveFree, khoUnpreservePages, type KhoOut } from "./pages.js";
import { ScenarioError, type ScenarioOp } from "./scenario.js";
import { khoPreserveVmalloc, khoUnpreserveVmalloc, vmallocArea, type VmArea } from "./vmalloc.js";

/** A preserved vmalloc area: what kho_test records, and what the next generation preserves again. */
export interface VmallocRecord {
  area: VmArea;
  desc: KhoVmalloc;
  /** xxhash64 of the area's bytes in vm->pages order; 0 = not filled. */
  csum: bigint;
}

/** A kho_preserve_pages() range. */
export interface PagesRecord {
  phys: number;
  nrPages: number;
  csum: bigint;
}

/** What a successor restored and hands to the next generation. */
export interface CarriedPages {
  vmalloc: { area: VmArea; csum: bigint }[];
  pages: PagesRecord[];
}

/** The ops this module runs. */
export type PageOp = Extract<ScenarioOp, { op: "vmalloc" | "preserve-pages" | "alloc-preserve" | "unpreserve-pages" | "unpreserve-vmalloc" | "unpreserve-free" | "finalize" }>;

const PAGE_OPS: readonly string[] = ["vmalloc", "preserve-pages", "alloc-preserve", "unpreserve-pages", "unpreserve-vmalloc", "unpreserve-free", "finalize"];

/** isPageOp - true for an op KhoPageOps.run() takes. */
export function isPageOp(op: ScenarioOp): op is PageOp {
  return PAGE_OPS.includes(op.op);
}

/**
 * The page-level ops of one workload. @fill(addr, size) writes seeded bytes
 * at addr and returns them (valid until the next call); @folios receives
 * alloc-preserve's folios (verified and carried as folios).
 */
export class KhoPageOps {
  readonly kho: KhoOut = { finalized: false };
  /** Live records by op kind; an unpreserved one becomes undefined (indices stay). */
  readonly vmalloc: (VmallocRecord | undefined)[] = [];
  readonly pages: (PagesRecord | undefined)[] = [];
  private readonly allocs: ({ phys: number; order: number; folio: number } | undefined)[] = [];
  /** kho_preserve_pages()/kho_preserve_folio() calls the preserve ops made (one per vmalloc block and chunk), and their nanoseconds. */
  preserveCalls = 0;
  preserveNs = 0n;

  constructor(
    private readonly m: Machine,
    private readonly track: KhoTracker,
    private readonly folios: FolioTable,
    private readonly fill: (addr: number, size: number) => Uint8Array,
    private readonly file: string,
  ) {}

  /** carry - preserve again what a successor restored (the next live update), before any op. */
  carry(c: CarriedPages): void {
    for (const v of c.vmalloc) this.vmalloc.push({ area: v.area, desc: khoPreserveVmalloc(this.m, this.track, v.area), csum: v.csum });
    for (const p of c.pages) {
      khoPreservePages(this.m, this.track, p.phys, p.nrPages);
      this.pages.push({ ...p });
    }
  }

  /** Bytes of @blocks (each 2^order pages) filled in order, checksummed as one stream; 0n when not filled. */
  private fillBlocks(blocks: readonly number[], order: number, fill: boolean): bigint {
    if (!fill) return 0n;
    const h = csum64Stream();
    for (const b of blocks) h.update(this.fill(b, PAGE_SIZE * 2 ** order));
    return h.digest();
  }

  /** run - execute @op (ops[@where]); @fill is the op's fill after the scenario default. Throws ScenarioError. */
  run(op: PageOp, where: string, fill: boolean): void {
    const expect = "expect" in op ? op.expect : undefined;
    try {
      this.call(op, where, fill);
    } catch (e) {
      if (!(e instanceof KhoErrnoError)) throw e;
      if (e.errno === expect) return;
      throw new ScenarioError(this.file, where, expect ? `expected -${expect}, but ${e.message}` : e.message);
    }
    if (expect) throw new ScenarioError(this.file, `${where}.expect`, `expected -${expect}, but the ${op.op} call succeeded`);
  }

  private call(op: PageOp, where: string, fill: boolean): void {
    const { m, track, kho } = this;
    switch (op.op) {
      case "vmalloc": {
        const area = vmallocArea(m, op.pages, op.order ?? 0, op.flags);
        try {
          const csum = this.fillBlocks(area.pages, area.order, fill);
          const desc = this.timed(() => khoPreserveVmalloc(m, track, area, kho));
          this.preserveCalls += area.pages.length + Math.floor(area.pages.length / KHO_VMALLOC_SIZE) + 1;
          this.vmalloc.push({ area, desc, csum });
        } catch (e) {
          // vfree() after a failed preserve.
          for (const p of area.pages) m.buddy.freeFolio(p, area.order);
          throw e;
        }
        break;
      }
      case "preserve-pages": {
        const size = op.pages * PAGE_SIZE;
        let phys: number;
        if (op.at !== undefined) {
          if (!m.buddy.allocAt(op.at, size)) throw new ScenarioError(this.file, `${where}.at`, `[${hex(op.at)}, ${hex(op.at + size)}) is not free memory (kernel, scratch or already allocated)`);
          phys = op.at;
        } else {
          const p = m.buddy.allocContig(op.pages, 1);
          if (p === undefined) throw new ScenarioError(this.file, where, `out of memory: ${op.pages} contiguous pages (${hex(m.buddy.freeBytes)} bytes free)`);
          phys = p;
        }
        try {
          const csum = fill ? csum64(this.fill(phys, size)) : 0n;
          this.timed(() => khoPreservePages(m, track, phys, op.pages, kho));
          this.preserveCalls++;
          this.pages.push({ phys, nrPages: op.pages, csum });
        } catch (e) {
          m.buddy.freeContig(phys, op.pages);
          throw e;
        }
        break;
      }
      case "alloc-preserve": {
        const { phys, order } = this.timed(() => khoAllocPreserve(m, track, op.size, kho));
        this.preserveCalls++;
        // kho_alloc_preserve() zeroes; a user then writes its data.
        const csum = fill ? csum64(this.fill(phys, PAGE_SIZE * 2 ** order)) : 0n;
        this.allocs.push({ phys, order, folio: this.folios.length });
        this.folios.push(phys, order, csum);
        break;
      }
      case "unpreserve-pages":
        this.unpreservePages(op, where);
        break;
      case "unpreserve-vmalloc": {
        const r = this.vmalloc[op.index] ?? this.noRecord(`${where}.index`, "vmalloc", op.index, this.vmalloc.length);
        khoUnpreserveVmalloc(m, track, r.desc);
        this.vmalloc[op.index] = undefined;
        break;
      }
      case "unpreserve-free": {
        const r = this.allocs[op.index] ?? this.noRecord(`${where}.index`, "alloc-preserve", op.index, this.allocs.length);
        khoUnpreserveFree(m, track, r.phys, r.order);
        this.folios.kill(r.folio);
        this.allocs[op.index] = undefined;
        break;
      }
      case "finalize":
        // 6.18 kho_out_finalize_set(): a second `echo 1` is -EEXIST.
        if (kho.finalized) throw new KhoErrnoError("EEXIST", "finalize: KHO is finalized already");
        kho.finalized = true;
        break;
    }
  }

  /*
   * kho_unpreserve_pages() is void (6.19 dd03dd60, kho-v2 019fc36872): a call
   * that does not repeat the preserve call clears only the bits of blocks
   * that happen to match its own split (WARN_ON_ONCE where no bitmap exists)
   * and leaves the rest preserved; its kernel-doc says sub-ranges are "not
   * supported". khosim refuses such a call rather than simulate that.
   */
  /* @f's result, its time added to preserveNs. */
  private timed<T>(f: () => T): T {
    const t = process.hrtime.bigint();
    try {
      return f();
    } finally {
      this.preserveNs += process.hrtime.bigint() - t;
    }
  }

  private unpreservePages(op: Extract<PageOp, { op: "unpreserve-pages" }>, where: string): void {
    const r = this.pages[op.index] ?? this.noRecord(`${where}.index`, "preserve-pages", op.index, this.pages.length);
    const offset = op.offset ?? 0;
    const pages = op.pages ?? r.nrPages - offset;
    if (offset !== 0 || pages !== r.nrPages) {
      throw new ScenarioError(
        this.file,
        where,
        `kho_unpreserve_pages(${hex(r.phys + offset * PAGE_SIZE)}, ${pages}) does not repeat kho_preserve_pages(${hex(r.phys)}, ${r.nrPages}): ` +
          "unpreserving a sub-range is not supported (void in 6.19 and kho-v2, it would leave blocks preserved)",
      );
    }
    khoUnpreservePages(this.track, r.phys, r.nrPages);
    this.pages[op.index] = undefined;
  }

  private noRecord(path: string, what: string, index: number, n: number): never {
    throw new ScenarioError(this.file, path, `no preserved ${what} ${index} (${n} so far)`);
  }

  /** The live records as kho_test writes them. */
  records(): { vmalloc: KhoTestVmallocRecord[]; pages: KhoTestPagesRecord[] } {
    return {
      vmalloc: this.vmalloc.filter((r) => r !== undefined).map((r) => ({ desc: r.desc, csum: r.csum })),
      pages: this.pages.filter((r) => r !== undefined).map((r) => ({ ...r })),
    };
  }
}

