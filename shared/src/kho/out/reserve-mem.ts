/*
 * The predecessor's reserve_mem preservation (mm/memblock.c, v6.16 mainline
 * f99230780211): prepare_kho_fdt() at late_initcall allocates one page and
 * writes the `memblock` sub-FDT into it (abi/memblock-fdt.ts); the KHO
 * finalize notifier, reserve_mem_kho_finalize(), preserves every table row
 * (kho_preserve_phys), the FDT page (kho_preserve_folio) and adds the
 * sub-tree. Nothing happens without reservations (reserve_mem_init()
 * returns early when reserved_mem_count is 0).
 *
 * The ranges stand for what a user (ftrace, pstore) wrote into them: khosim
 * fills each with bytes from the scenario's seed, forked per name, so the
 * same seed gives the same bytes and a test can compare them after revival.
 */
import { buildMemblockFdt } from "../../abi/memblock-fdt.js";
import { hex } from "../../lib/bytes.js";
import { csum64Stream } from "../../lib/csum.js";
import { Prng } from "../../lib/prng.js";
import type { Machine } from "../../mm/machine.js";
import { physReadInto } from "../../mm/physmem.js";
import type { KhoTracker } from "../formats/index.js";
import { FinalizeError, type ReserveMemHandoff, type ReserveMemRecord } from "./finalize.js";

/** PRNG label of a reservation's fill. */
export function reserveMemFillLabel(name: string): string {
  return `reserve_mem:${name}`;
}

/**
 * reserveMemPreserve - fill @m.reserveMem's ranges from @seed, write the
 * memblock sub-FDT into a freshly allocated page and preserve the ranges and
 * the page in @track. Returns undefined when the table is empty.
 * Throws FinalizeError when no page is left for the FDT.
 * @keep: names whose bytes are already there (a successor's revived
 *        reservations: their user kept writing into the same range), checksummed
 *        as they are instead of filled; a successor's finalize preserves its
 *        whole table, revived or fresh (reserve_mem_init() walks
 *        reserved_mem_table, which reserve_mem_kho_revive() filled too).
 */
export function reserveMemPreserve(m: Machine, track: KhoTracker, seed: number, keep: ReadonlySet<string> = new Set()): ReserveMemHandoff | undefined {
  const table = m.reserveMem ?? [];
  if (table.length === 0) return undefined;
  const fdtPhys = m.buddy.allocFolio(0);
  if (fdtPhys === undefined) throw new FinalizeError("out of memory allocating the memblock FDT");
  m.mem.write(fdtPhys, buildMemblockFdt(table));
  const root = new Prng(seed);
  const entries: ReserveMemRecord[] = [];
  // Filled a MiB at a time: a reservation can be hundreds of MiB.
  const piece = new Uint8Array(Math.min(1 << 20, Math.max(...table.map((e) => e.size))));
  for (const e of table) {
    const prng = root.fork(reserveMemFillLabel(e.name));
    const h = csum64Stream();
    const kept = keep.has(e.name);
    // Pieces are whole 4-byte words, so the bytes are those of one fill() of the whole range.
    for (let off = 0; off < e.size; off += piece.length) {
      const b = piece.subarray(0, Math.min(piece.length, e.size - off));
      if (kept) {
        physReadInto(m.mem, e.start + off, b);
      } else {
        prng.fill(b);
        m.mem.write(e.start + off, b);
      }
      h.update(b);
    }
    entries.push({ ...e, csum: h.digest() });
  }
  for (const e of table) track.khoPreservePhys(e.start, e.size);
  track.khoPreserveFolio(fdtPhys, 0);
  return { fdtPhys, entries };
}

/** reserveMemJson - @h's rows as report.json writes them. */
export function reserveMemJson(h: ReserveMemHandoff): { fdt: string; entries: { name: string; start: string; size: string; csum: string }[] } {
  return { fdt: hex(h.fdtPhys), entries: h.entries.map((e) => ({ name: e.name, start: hex(e.start), size: hex(e.size), csum: hex(e.csum) })) };
}
