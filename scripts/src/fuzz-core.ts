/*
 * Fuzzing the successor: damage random bytes of a valid handoff (the KHO FDT,
 * the boot DTB, chunk pages, range entries, the scratch array, the kho_test
 * sub-tree) and boot kernel-b in process. Properties that must hold for every
 * input:
 *  - it ends, and throws nothing but its own typed errors (unusable input);
 *  - it never reserves memory outside RAM or inside scratch;
 *  - the outcome and exit code are one of the documented pairs.
 * Used by kernel-b/test/fuzz.test.ts (a few hundred cases) and by
 * `npm run fuzz` (long campaigns).
 */
import fc from "fast-check";
import { BootDtbError, KHOSER_CHUNK_HDR_SIZE, KHOSER_MEM_RANGE_SIZE, OUTCOME_EXIT, PAGE_SIZE, parseBootDtb, type Outcome } from "@khosim/shared/abi";
import { type SuccessorReportJson } from "@khosim/shared/abi/handoff-json";
import { OverlayMem, coldBoot, type PhysMem } from "@khosim/shared/mm";
import { rebase } from "./faults/store.js";
import { initCsum } from "@khosim/shared/lib";
import { khoFinalize, parseScenario, runWorkload, UnusableInputError, bootSuccessor } from "@khosim/shared/kho";

/** A valid handoff held in memory. */
export interface FuzzHandoff {
  mem: PhysMem;
  bootDtb: Uint8Array;
  khoFdtPhys: number;
  khoFdtSize: number;
  scratchPhys: number;
  scratchSize: number;
  chunks: number[];
  subtreePhys: number;
  infoPhys: number;
  infoSize: number;
}

/**
 * makeFuzzHandoff - a small but complete handoff: test_kho folios, isolated
 * folios spanning two chunks, and a phys range, on a 256 MiB machine.
 */
export async function makeFuzzHandoff(seed = 1): Promise<FuzzHandoff> {
  await initCsum();
  const s = parseScenario(
    {
      machine: { ram: "256M", scratch: { lowmem: "16M", global: "32M" } },
      ops: [
        { op: "test_kho", maxMem: "256K" },
        { op: "folios", count: 180, order: 0, layout: "isolated", fill: false },
        { op: "phys", size: "16K" },
      ],
    },
    "(fuzz scenario)",
  );
  const m = coldBoot(s.machine);
  const w = runWorkload(m, s, seed, "(fuzz scenario)");
  const h = khoFinalize(m, w);
  return {
    mem: m.mem,
    bootDtb: h.bootDtb,
    khoFdtPhys: h.khoFdtPhys,
    khoFdtSize: h.khoFdt.length,
    scratchPhys: h.scratchPhys,
    scratchSize: m.scratch.length * 16,
    chunks: h.chunks,
    subtreePhys: h.subtreePhys,
    infoPhys: h.infoPhys,
    infoSize: h.infoSize,
  };
}

export type FuzzTarget = "kho-fdt" | "boot-dtb" | "chunk-header" | "range-entry" | "chunk-page" | "scratch-array" | "subtree";

export interface Mutation {
  target: FuzzTarget;
  /** Picks the offset inside the target (taken modulo its size). */
  pick: number;
  /** Which chunk (modulo the chunk count) for chunk targets. */
  chunk: number;
  /** A random byte, or an interesting u64 written at an 8-aligned offset. */
  value: { byte: number } | { u64: bigint };
}

const INTERESTING = [0n, 1n, 0xfffn, 0x1000n, 1n << 53n, 1n << 63n, (1n << 64n) - 1n, 0x40000000n, 0x4ffff000n, 0x50000000n, 171n, 170n];

export const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  target: fc.constantFrom<FuzzTarget>("kho-fdt", "boot-dtb", "chunk-header", "range-entry", "chunk-page", "scratch-array", "subtree"),
  pick: fc.nat(),
  chunk: fc.nat(),
  value: fc.oneof(
    fc.record({ byte: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ u64: fc.oneof(fc.constantFrom(...INTERESTING), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })) }),
  ),
});

/** Apply @muts to a copy-on-write view of @h; returns the damaged boot DTB and memory. */
export function applyMutations(h: FuzzHandoff, muts: readonly Mutation[]): { bootDtb: Uint8Array; mem: OverlayMem } {
  const mem = new OverlayMem(h.mem);
  const bootDtb = h.bootDtb.slice();
  for (const m of muts) {
    let region: { phys?: number; buf?: Uint8Array; size: number };
    const chunk = h.chunks[m.chunk % Math.max(1, h.chunks.length)] ?? h.khoFdtPhys;
    switch (m.target) {
      case "kho-fdt":
        region = { phys: h.khoFdtPhys, size: h.khoFdtSize };
        break;
      case "boot-dtb":
        region = { buf: bootDtb, size: bootDtb.length };
        break;
      case "chunk-header":
        region = { phys: chunk, size: KHOSER_CHUNK_HDR_SIZE };
        break;
      case "range-entry":
        region = { phys: chunk + KHOSER_CHUNK_HDR_SIZE, size: 170 * KHOSER_MEM_RANGE_SIZE };
        break;
      case "chunk-page":
        region = { phys: chunk, size: PAGE_SIZE };
        break;
      case "scratch-array":
        region = { phys: h.scratchPhys, size: h.scratchSize };
        break;
      case "subtree":
        region = m.pick % 2 ? { phys: h.subtreePhys, size: PAGE_SIZE } : { phys: h.infoPhys, size: Math.max(8, h.infoSize) };
        break;
    }
    const isU64 = "u64" in m.value;
    const width = isU64 ? 8 : 1;
    if (region.size < width) continue;
    let off = m.pick % (region.size - width + 1);
    if (isU64) off -= off % 8;
    const bytes = new Uint8Array(width);
    if ("u64" in m.value) new DataView(bytes.buffer).setBigUint64(0, m.value.u64, true);
    else bytes[0] = m.value.byte;
    if (region.buf) region.buf.set(bytes, off);
    else mem.write(region.phys! + off, bytes);
  }
  return { bootDtb, mem };
}

export interface CaseResult {
  outcome: Outcome;
  /** Why it did not revive cleanly (absent when revived). */
  reason?: string;
}

/** Thrown when a property is violated; the message says which. */
export class FuzzViolation extends Error {}

/** Check the report's invariants. */
export function checkReport(rep: SuccessorReportJson, ram: { base: number; size: number }): void {
  if (OUTCOME_EXIT[rep.outcome] !== rep.exitCode) throw new FuzzViolation(`outcome ${rep.outcome} with exit code ${rep.exitCode}`);
  const scratch = rep.scratch.map((s) => ({ addr: Number(s.addr), size: Number(s.size) }));
  for (const r of rep.ranges) {
    const start = Number(r.start);
    const end = start + Number(r.size);
    if (!(start >= ram.base && end <= ram.base + ram.size && end > start)) throw new FuzzViolation(`reserved ${r.start}+${r.size} outside RAM`);
    for (const s of scratch) {
      if (start < s.addr + s.size && s.addr < end) throw new FuzzViolation(`reserved ${r.start}+${r.size} inside scratch ${s.addr}`);
    }
  }
  if (rep.outcome === "booted-without-kho" && rep.ranges.length !== 0) throw new FuzzViolation("booted without KHO but reserved ranges");
}

/**
 * runCase - boot the successor on @h damaged by @muts. Returns the outcome;
 * throws FuzzViolation or any unexpected (untyped) error.
 */
export function runCase(h: FuzzHandoff, muts: readonly Mutation[]): CaseResult {
  const { bootDtb, mem } = applyMutations(h, muts);
  let boot;
  try {
    boot = parseBootDtb(bootDtb);
  } catch (e) {
    if (e instanceof BootDtbError) return { outcome: "unusable-input", reason: e.message };
    throw e;
  }
  if (boot.ram.size !== mem.size) {
    // kernel-b's ImageMem.open refuses an image whose size is not the RAM size (exit 2).
    return { outcome: "unusable-input", reason: "memory.img size does not match /memory reg" };
  }
  let rep: SuccessorReportJson;
  try {
    rep = bootSuccessor(boot, rebase(mem, boot.ram.base), { maxOrder: 10 }).report;
  } catch (e) {
    if (e instanceof UnusableInputError) return { outcome: "unusable-input", reason: e.message };
    throw e;
  }
  checkReport(rep, boot.ram);
  return rep.reason === null ? { outcome: rep.outcome } : { outcome: rep.outcome, reason: rep.reason };
}

/** The fast-check property over sequences of 1..4 mutations. */
export function fuzzProperty(h: FuzzHandoff, onCase?: (r: CaseResult) => void): fc.IPropertyWithHooks<[Mutation[]]> {
  return fc.property(fc.array(mutationArb, { minLength: 1, maxLength: 4 }), (muts) => {
    const r = runCase(h, muts);
    onCase?.(r);
  });
}
