/*
 * What the predecessor preserved, from the handoff files alone, to judge a
 * version successor against: the pages a kernel developer would call
 * preserved are those its KHO users asked for (kho_preserve_folio /
 * kho_preserve_phys) plus KHO's own KHO FDT page. In a khosim handoff the
 * only user is kho_test, and its sub-tree lists every folio and range it
 * preserved (the info blob, checksummed), so the truth is: the KHO FDT page,
 * the kho_test FDT page, the info blob's pages, and every listed folio and
 * range. It does not depend on the map format, so the same truth judges
 * every successor version (a careful walk of the map would need to know the
 * bitmap size, which is exactly what a mainline FDT does not say).
 */
import { KHO_FDT_SUB_FDT_PROP } from "../../abi/kho-fdt.js";
import { KHO_RADIX_SUB_TREE_PROP } from "../../abi/radix.js";
import { KHO_TEST_FDT, KhoTestError, decodeKhoTestInfo, khoTestHeaderInfoSize, parseKhoTestFdt } from "../../abi/kho-test.js";
import { PAGE_SIZE } from "../../abi/page.js";
import { ByteReader, hex, u64ToNumber } from "../../lib/bytes.js";
import { csum64 } from "../../lib/csum.js";
import type { FdtRo } from "../../fdt/ro.js";
import { physInRam, type PhysMem } from "../../mm/physmem.js";
import { mergeIntervals, type Intervals } from "./intervals.js";

export interface PreservedTruth {
  /** Preserved memory, merged, ascending, inside RAM. */
  preserved: Intervals;
  /** Why the kho_test part is missing, when it is. */
  note?: string;
}

function pageRound(start: number, size: number): [number, number] {
  const s = Math.floor(start / PAGE_SIZE) * PAGE_SIZE;
  return [s, Math.ceil((start + size) / PAGE_SIZE) * PAGE_SIZE];
}

/**
 * khoPreservedTruth - the preserved pages of the handoff whose KHO FDT
 * (parsed as @fdt) lies at @fdtAddr in @mem (see the file comment). Every
 * read is checked against RAM and bounded by what the sub-tree declares.
 */
export function khoPreservedTruth(mem: PhysMem, fdt: FdtRo, fdtAddr: number, fdtSize: number): PreservedTruth {
  const s: number[] = [];
  const e: number[] = [];
  const add = (start: number, size: number): void => {
    const [a, b] = pageRound(start, size);
    s.push(a);
    e.push(b);
  };
  add(fdtAddr, fdtSize);
  const done = (note?: string): PreservedTruth => ({ preserved: mergeIntervals(s, e), note });
  let node: number;
  try {
    node = fdt.pathOffset(`/${KHO_TEST_FDT}`);
  } catch {
    return done(`no /${KHO_TEST_FDT} sub-tree: only the KHO FDT page is known to be preserved`);
  }
  const v = fdt.getProp(node, KHO_FDT_SUB_FDT_PROP) ?? fdt.getProp(node, KHO_RADIX_SUB_TREE_PROP);
  if (v === undefined || v.length !== 8) return done(`/${KHO_TEST_FDT}: no 8-byte sub-tree pointer`);
  const sub = u64ToNumber(new ByteReader(v).u64le(0));
  if (sub === undefined || !physInRam(mem, sub, PAGE_SIZE)) return done(`/${KHO_TEST_FDT}: sub-tree at ${hex(new ByteReader(v).u64le(0))} is outside RAM`);
  add(sub, PAGE_SIZE);
  try {
    const total = new ByteReader(mem.read(sub, 8)).u32be(4);
    const h = parseKhoTestFdt(mem.read(sub, Math.min(total, PAGE_SIZE)));
    const infoSize = khoTestHeaderInfoSize(h);
    const info = u64ToNumber(h.infoPhys);
    if (infoSize === 0) return done();
    if (info === undefined || !physInRam(mem, info, infoSize)) return done(`kho_test info [${hex(h.infoPhys)}, +${hex(infoSize)}) is outside RAM`);
    const bytes = mem.read(info, infoSize);
    if (csum64(bytes) !== h.csum) return done(`kho_test info at ${hex(info)}: checksum mismatch, its list is not trusted`);
    add(info, infoSize);
    const t = decodeKhoTestInfo(bytes, h.nrFolios, h.nrRanges, h.nrRuns, mem.size);
    // One interval per run (a kho-test-v2 run of 12.6M folios is one).
    const r = t.folios.liveRuns();
    for (let k = 0; k < r.n; k++) add(r.base[k]!, r.count[k]! * PAGE_SIZE * 2 ** r.order[k]!);
    for (const r of t.ranges) add(r.start, r.size);
  } catch (err) {
    if (err instanceof KhoTestError) return done(`kho_test sub-tree at ${hex(sub)}: ${err.message}`);
    throw err;
  }
  // Only RAM can be preserved: clip (a listed folio outside RAM is a bad list, not a lost page).
  const clipS: number[] = [];
  const clipE: number[] = [];
  const lo = mem.base;
  const hi = mem.base + mem.size;
  for (let i = 0; i < s.length; i++) {
    const a = Math.max(s[i]!, lo);
    const b = Math.min(e[i]!, hi);
    if (a < b) {
      clipS.push(a);
      clipE.push(b);
    }
  }
  return { preserved: mergeIntervals(clipS, clipE) };
}
