/*
 * The predecessor's workload: run a scenario's ops against a booted machine,
 * as a KHO user (lib/test_kho.c and friends) would: allocate folios and
 * physical ranges, fill them with seeded random bytes, checksum them and
 * preserve them in the tracker. Everything is recorded so that finalize can
 * write the kho_test sub-tree and the successor can verify every byte.
 */
import { PAGE_SIZE } from "../../abi/page.js";
import { hex } from "../../lib/bytes.js";
import { csum64 } from "../../lib/csum.js";
import { FolioTable } from "../../abi/kho-test.js";
import type { Machine } from "../../mm/machine.js";
import { Prng } from "../../lib/prng.js";
import { ScenarioError, type Scenario, type ScenarioOp } from "./scenario.js";
import { rangesFormat, type KhoFormat, type KhoTracker } from "../formats/index.js";
import { KHO_FOLIO_SIZE, khoFolioRuns } from "../track.js";
import { getOrder } from "./pages.js";
import { KhoPageOps, isPageOp, type CarriedPages } from "./workload-pages.js";

export interface PhysRecord {
  start: number;
  size: number;
  csum: bigint;
}

export interface WorkloadResult {
  format: KhoFormat;
  track: KhoTracker;
  folios: FolioTable;
  phys: PhysRecord[];
  /** Bytes the fill wrote (including what was unpreserved later). */
  filledBytes: number;
  /** Calls to khoPreserveFolio/khoPreservePhys by the scenario's ops. */
  preserveCalls: number;
  /** Nanoseconds spent in the scenario's preserve loops (timed per loop, not per call). */
  preserveNs: bigint;
  /** The vmalloc / preserve-pages / alloc-preserve ops' state and records (workload-pages.ts). */
  pageOps: KhoPageOps;
}

/** Tries at a random aligned address before falling back to the lowest free one. */
const SCATTER_TRIES = 16;

/** A folio of @order at a random free, naturally aligned address, or undefined. */
function allocScattered(m: Machine, prng: Prng, order: number): number | undefined {
  const fsize = PAGE_SIZE * 2 ** order;
  const slots = Math.floor(m.config.ram / fsize);
  const first = Math.ceil(m.config.ramBase / fsize);
  for (let t = 0; t < SCATTER_TRIES; t++) {
    const addr = (first + prng.below(slots)) * fsize;
    if (addr + fsize <= m.config.ramBase + m.config.ram && m.buddy.allocAt(addr, fsize)) return addr;
  }
  return undefined;
}

export { getOrder } from "./pages.js";

function folioCapacity(s: Scenario): number {
  let n = 0;
  for (const op of s.ops) {
    if (op.op === "folios") n += op.count;
    if (op.op === "test_kho") n += (op.maxMem ?? (PAGE_SIZE << s.machine.maxOrder) * 2) / PAGE_SIZE;
    if (op.op === "alloc-preserve") n++;
  }
  return n;
}

/*
 * The timed preserve loops, each in a small function of its own: a loop
 * that runs once in a fresh process is optimized by on-stack replacement,
 * which compiles the whole function around it. Inside runWorkload's closure
 * that compile took ~6 ms, while ~200K calls ran at ~20 ns each in baseline
 * code; alone, the loop compiles in ~1 ms.
 */

/* kho_preserve_folio() of folio i at @phys[i] of @order[i], for i in [@from, @to). */
function preserveEach(track: KhoTracker, phys: Float64Array, order: Uint8Array, from: number, to: number): void {
  for (let i = from; i < to; i++) track.khoPreserveFolio(phys[i]!, order[i]!);
}

/* kho_preserve_folio() of each folio of runs [0, @n): @count[k] folios of @order[k] from @base[k]. */
function preserveRuns(track: KhoTracker, base: Float64Array, order: Uint8Array, count: Float64Array, n: number): void {
  for (let k = 0; k < n; k++) {
    const o = order[k]!;
    const b = base[k]!;
    const c = count[k]!;
    // An integer index, the address computed: faster than a running double address.
    if (c === 1) track.khoPreserveFolio(b, o);
    else for (let j = 0, size = KHO_FOLIO_SIZE[o]!; j < c; j++) track.khoPreserveFolio(b + j * size, o);
  }
}

/**
 * runWorkload - execute @scenario's ops on @m with a PRNG seeded by @seed.
 * Throws ScenarioError (naming the op) when the machine runs out of memory or
 * an op is inconsistent with what ran before it.
 */
export function runWorkload(
  m: Machine,
  scenario: Scenario,
  seed: number,
  file: string,
  carried?: { folios: FolioTable; phys: readonly PhysRecord[] } & Partial<CarriedPages>,
  format: KhoFormat = rangesFormat,
): WorkloadResult {
  const track = format.createTracker();
  const folios = new FolioTable(folioCapacity(scenario) + (carried?.folios.live ?? 0));
  const phys: PhysRecord[] = [];
  // What a successor restored is preserved again first, unchanged (next live update).
  if (carried) {
    const c = carried.folios;
    if (c.isRuns) {
      // Unfilled and whole (a 48 GiB run): run by run, each folio preserved again.
      const r = c.liveRuns();
      for (let k = 0; k < r.n; k++) {
        const order = r.order[k]!;
        const size = PAGE_SIZE * 2 ** order;
        folios.pushRun(r.base[k]!, size, order, r.count[k]!);
        for (let j = 0, p = r.base[k]!; j < r.count[k]!; j++, p += size) track.khoPreserveFolio(p, order);
      }
    } else {
      for (let i = 0; i < c.length; i++) {
        if (!c.alive[i]) continue;
        folios.push(c.phys[i]!, c.order[i]!, c.csumOf(i));
        track.khoPreserveFolio(c.phys[i]!, c.order[i]!);
      }
    }
    for (const r of carried.phys) {
      phys.push({ ...r });
      track.khoPreservePhys(r.start, r.size);
    }
  }
  const prng = new Prng(seed);
  let filledBytes = 0;
  let preserveCalls = 0;
  let preserveNs = 0n;
  let buf = new Uint8Array(0);

  const fillBytes = (addr: number, size: number): Uint8Array => {
    if (buf.length < size) buf = new Uint8Array(size);
    const b = buf.subarray(0, size);
    prng.fill(b);
    m.mem.write(addr, b);
    filledBytes += size;
    return b;
  };
  const fillAndSum = (addr: number, size: number, fill: boolean): bigint => (fill ? csum64(fillBytes(addr, size)) : 0n);
  const pageOps = new KhoPageOps(m, track, folios, fillBytes, file);
  if (carried) pageOps.carry({ vmalloc: carried.vmalloc ?? [], pages: carried.pages ?? [] });
  // Allocate and fill first, then preserve in one timed loop (as test_kho does): timing each call would measure the timer.
  const preserveFoliosFrom = (first: number): void => {
    if (folios.isRuns) {
      // Unfilled folios held as runs (the 48 GiB case): one kho_preserve_folio() per folio, run by run.
      const r = folios.liveRuns(first);
      track.reserve?.(r.n);
      const t = process.hrtime.bigint();
      // One folio per run is the isolated case (1M runs).
      if (r.n === folios.length - first) preserveEach(track, r.base, r.order, 0, r.n);
      else preserveRuns(track, r.base, r.order, r.count, r.n);
      preserveNs += process.hrtime.bigint() - t;
      preserveCalls += folios.length - first;
      return;
    }
    // Room for the ranges these folios can add, made before the timer starts (as the C reference's populated arena).
    track.reserve?.(khoFolioRuns(folios.phys, folios.order, first, folios.length));
    const t = process.hrtime.bigint();
    preserveEach(track, folios.phys, folios.order, first, folios.length);
    preserveNs += process.hrtime.bigint() - t;
    preserveCalls += folios.length - first;
  };

  scenario.ops.forEach((op: ScenarioOp, i: number) => {
    const where = `ops[${i}]`;
    const oom = (what: string): never => {
      throw new ScenarioError(file, where, `out of memory: ${what} (${hex(m.buddy.freeBytes)} bytes free)`);
    };
    const fill = ("fill" in op ? op.fill : undefined) ?? scenario.fill;
    const first = folios.length;
    if (isPageOp(op)) return pageOps.run(op, where, fill);
    // 6.18's __kho_preserve_order() after finalize (out/pages.ts KhoOut).
    if (pageOps.kho.finalized && (op.op === "test_kho" || op.op === "folios" || op.op === "phys")) throw new ScenarioError(file, where, `${op.op}: KHO is finalized (-EBUSY)`);
    switch (op.op) {
      case "test_kho": {
        // lib/test_kho.c kho_test_generate_data(), with our allocator and PRNG.
        const maxMem = op.maxMem ?? (PAGE_SIZE << m.config.maxOrder) * 2;
        let alloc = 0;
        while (alloc < maxMem) {
          let order = prng.below(m.config.maxOrder + 1);
          if (alloc + PAGE_SIZE * 2 ** order > maxMem) {
            order = getOrder(maxMem - alloc);
            if (order) order--;
          }
          const size = PAGE_SIZE * 2 ** order;
          const addr = m.buddy.allocFolio(order) ?? oom(`order-${order} folio after ${hex(alloc)} bytes`);
          folios.push(addr, order, fillAndSum(addr, size, fill));
          alloc += size;
        }
        preserveFoliosFrom(first);
        break;
      }
      case "folios": {
        if (op.layout === "buddy" || op.layout === "scattered") {
          for (let n = 0; n < op.count; n++) {
            const order = op.order === "random" ? prng.below(m.config.maxOrder + 1) : op.order;
            const fsize = PAGE_SIZE * 2 ** order;
            const addr =
              (op.layout === "scattered" ? allocScattered(m, prng, order) : undefined) ?? m.buddy.allocFolio(order) ?? oom(`folio ${n} of order ${order}`);
            folios.push(addr, order, fillAndSum(addr, fsize, fill));
          }
          preserveFoliosFrom(first);
          break;
        }
        const order = op.order as number; // checked by the scenario schema
        const fsize = PAGE_SIZE * 2 ** order;
        const stride = op.layout === "isolated" ? 2 * fsize : fsize;
        const base = m.buddy.allocContig((op.count * stride) / PAGE_SIZE, fsize / PAGE_SIZE) ?? oom(`${op.count} contiguous order-${order} folios`);
        const skip = op.skipEvery;
        if (!fill && skip === undefined) {
          // Bookkeeping only (tens of GiB): no checksum to compute or store per folio.
          folios.pushRun(base, stride, order, op.count);
        } else {
          for (let n = 0; n < op.count; n++) {
            if (skip !== undefined && n % skip === skip - 1) continue;
            const addr = base + n * stride;
            folios.push(addr, order, fillAndSum(addr, fsize, fill));
          }
        }
        preserveFoliosFrom(first);
        break;
      }
      case "phys": {
        let addr: number;
        if (op.at !== undefined) {
          if (!m.buddy.allocAt(op.at, op.size)) {
            throw new ScenarioError(file, `${where}.at`, `[${hex(op.at)}, ${hex(op.at + op.size)}) is not free memory (kernel, scratch or already allocated)`);
          }
          addr = op.at;
        } else {
          addr = m.buddy.allocContig(op.size / PAGE_SIZE, (op.align ?? PAGE_SIZE) / PAGE_SIZE) ?? oom(`${hex(op.size)} contiguous bytes`);
        }
        phys.push({ start: addr, size: op.size, csum: fillAndSum(addr, op.size, fill) });
        const t = process.hrtime.bigint();
        track.khoPreservePhys(addr, op.size);
        preserveNs += process.hrtime.bigint() - t;
        preserveCalls++;
        break;
      }
      case "unpreserve-folio": {
        if (op.index >= folios.length || !folios.alive[op.index]) {
          throw new ScenarioError(file, `${where}.index`, `no preserved folio ${op.index} (${folios.length} so far)`);
        }
        track.khoUnpreserveFolio(folios.phys[op.index]!, folios.order[op.index]!);
        folios.kill(op.index);
        break;
      }
      case "unpreserve-phys": {
        const r = phys[op.index];
        if (!r || r.size === 0) throw new ScenarioError(file, `${where}.index`, `no preserved phys range ${op.index} (${phys.length} so far)`);
        track.khoUnpreservePhys(r.start, r.size);
        r.size = 0;
        break;
      }
      case "unpreserve": {
        const s = op.start;
        const e = op.start + op.size;
        for (let f = 0; f < folios.length; f++) {
          if (!folios.alive[f]) continue;
          const fs = folios.phys[f]!;
          const fe = fs + PAGE_SIZE * 2 ** folios.order[f]!;
          if (fe <= s || fs >= e) continue;
          if (fs < s || fe > e) throw new ScenarioError(file, where, `[${hex(s)}, ${hex(e)}) splits the order-${folios.order[f]} folio at ${hex(fs)}`);
          folios.kill(f);
        }
        for (let k = 0; k < phys.length; k++) {
          const r = phys[k]!;
          const re = r.start + r.size;
          if (r.size === 0 || re <= s || r.start >= e) continue;
          // Keep what lies outside [s, e): up to two pieces, checksummed again.
          const pieces = [
            [r.start, Math.min(re, s)],
            [Math.max(r.start, e), re],
          ].filter(([a, b]) => b! > a!);
          const recs = pieces.map(([a, b]) => ({ start: a!, size: b! - a!, csum: r.csum === 0n ? 0n : csum64(m.mem.read(a!, b! - a!)) }));
          r.size = 0;
          phys.push(...recs);
        }
        track.khoUnpreserve(s, op.size);
        break;
      }
    }
  });
  preserveCalls += pageOps.preserveCalls;
  preserveNs += pageOps.preserveNs;
  return { format, track, folios, phys: phys.filter((r) => r.size > 0), filledBytes, preserveCalls, preserveNs, pageOps };
}
