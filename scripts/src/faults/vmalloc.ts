/*
 * Faults of vmalloc preservation (abi/kho-vmalloc.ts): the struct kho_vmalloc
 * descriptors kho_test records in /data/vmalloc, and their chunk pages. Each
 * makes kho_restore_vmalloc() fail one of its checks (shared/src/kho/in/vmalloc.ts):
 * kernel-b revives KHO, that area fails, verification fails (exit 1).
 * They need a handoff with vmalloc areas: scenarios/vmalloc.json.
 */
import {
  KHO_TEST_VMALLOC_PROP, KHO_TEST_VMALLOC_RECORD_SIZE, KHO_VMALLOC_SIZE, PAGE_SIZE, decodeKhoVmalloc, decodeKhoVmallocChunk, khoVmallocEntryOffset, type KhoVmalloc,
} from "@khosim/shared/abi";
import { FdtRo } from "@khosim/shared/fdt";
import { ByteReader, hex } from "@khosim/shared/lib";
import type { FaultContext } from "./context.js";
import { VERIFY_FAILED, type Fault, type FaultResult } from "./fault.js";

/** The scenario whose handoff these faults take. */
export const VMALLOC_INPUT = "scenarios/vmalloc.json";

interface VmallocTarget {
  index: number;
  /** phys of the 16-byte descriptor inside the kho_test FDT in memory. */
  descPhys: number;
  desc: KhoVmalloc;
  chunks: { phys: number; entries: number; next: number }[];
}

/* Every recorded area and its chunks, found as kernel-b finds them. */
function vmallocTargets(ctx: FaultContext): VmallocTarget[] {
  const subPhys = ctx.khoTest().subPhys;
  const fdt = new FdtRo(ctx.read(subPhys, new ByteReader(ctx.read(subPhys, 8)).u32be(4)));
  const p = fdt.properties(fdt.pathOffset("/data")).find((q) => q.name === KHO_TEST_VMALLOC_PROP);
  ctx.need(p, `the kho_test sub-tree records no vmalloc area (use e.g. ${VMALLOC_INPUT})`);
  const base = subPhys + fdt.header.offDtStruct + p.offset + 12;
  const out: VmallocTarget[] = [];
  for (let i = 0; i < p.value.length / KHO_TEST_VMALLOC_RECORD_SIZE; i++) {
    const desc = decodeKhoVmalloc(p.value, i * KHO_TEST_VMALLOC_RECORD_SIZE);
    const chunks = [];
    for (let c = desc.first; c !== 0 && chunks.length <= desc.totalPages; ) {
      const d = decodeKhoVmallocChunk(ctx.read(c, PAGE_SIZE));
      chunks.push({ phys: c, entries: d.phys.length, next: Number(d.next) });
      c = Number(d.next);
    }
    out.push({ index: i, descPhys: base + i * KHO_TEST_VMALLOC_RECORD_SIZE, desc, chunks });
  }
  return out;
}

/* The damage of one target, and what kernel-b must then list. */
function failed(t: VmallocTarget, first = t.desc.first, more: string[] = []): FaultResult {
  return { reasonIncludes: [`vmalloc[${t.index}]`, ...more], failure: { kind: "vmalloc", phys: hex(first) } };
}

/* A page of RAM no one preserved: the start of the first scratch area. */
function unpreservedPage(ctx: FaultContext): number {
  return ctx.scratchArray().areas[0]!.addr;
}

const fault = (kind: string, description: string, reason: string[], apply: (ctx: FaultContext) => FaultResult): Fault => ({
  kind,
  group: "vmalloc",
  description,
  input: VMALLOC_INPUT,
  expect: VERIFY_FAILED(["kho_restore_vmalloc failed", ...reason]),
  apply,
});

export const VMALLOC_FAULTS: readonly Fault[] = [
  fault("vmalloc-total-pages-short", "kho_vmalloc.total_pages one page short: the last entry overflows it", ["exceeds total_pages"], (ctx: FaultContext) => {
    const t = ctx.pick(vmallocTargets(ctx), "vmalloc area");
    ctx.write(t.descPhys + 8, u32le(t.desc.totalPages - 1), `vmalloc[${t.index}].total_pages`);
    return failed(t);
  }),
  fault("vmalloc-total-pages-long", "kho_vmalloc.total_pages one page more than the chunks list", ["total_pages is"], (ctx: FaultContext) => {
    const t = ctx.pick(vmallocTargets(ctx), "vmalloc area");
    ctx.write(t.descPhys + 8, u32le(t.desc.totalPages + 1), `vmalloc[${t.index}].total_pages`);
    return failed(t, t.desc.first, [`total_pages is ${t.desc.totalPages + 1}`]);
  }),
  fault("vmalloc-flags-unknown", "kho_vmalloc.flags with bit 0x100 set (unknown; the careful successor refuses it)", ["unknown flags 0x100"], (ctx: FaultContext) => {
    const t = ctx.pick(vmallocTargets(ctx), "vmalloc area");
    ctx.write(t.descPhys + 12, u16le(t.desc.flags | 0x100), `vmalloc[${t.index}].flags`);
    return failed(t);
  }),
  fault("vmalloc-order", "kho_vmalloc.order raised by one on an order-0 area: 2-page blocks restore pages twice or overflow total_pages", [], (ctx: FaultContext) => {
    const t = ctx.pick(vmallocTargets(ctx).filter((x) => x.desc.order === 0 && x.desc.totalPages >= 2), "order-0 vmalloc area of 2 pages or more");
    ctx.write(t.descPhys + 14, u16le(1), `vmalloc[${t.index}].order`);
    return failed(t);
  }),
  fault("vmalloc-first-unpreserved", "kho_vmalloc.first pointing at a page in RAM that is not preserved", ["kho_restore_pages(chunk", "is not preserved memory"], (ctx: FaultContext) => {
    const t = ctx.pick(vmallocTargets(ctx), "vmalloc area");
    const to = unpreservedPage(ctx);
    ctx.writeU64(t.descPhys, to, `vmalloc[${t.index}].first`);
    return failed(t, to, [hex(to)]);
  }),
  fault("vmalloc-chunk-next-loop", "the last chunk's next pointing back at the first chunk: the loop ends at a check, not by running forever", [], (ctx: FaultContext) => {
    const t = ctx.pick(vmallocTargets(ctx), "vmalloc area");
    const last = t.chunks[t.chunks.length - 1]!;
    ctx.writeU64(last.phys, t.desc.first, `vmalloc[${t.index}] chunk ${hex(last.phys)} next`);
    return failed(t);
  }),
  fault("vmalloc-chunk-next-outside-ram", "a chunk's next pointing one page past the end of RAM", ["is not a page in RAM"], (ctx: FaultContext) => {
    const t = ctx.pick(vmallocTargets(ctx), "vmalloc area");
    const c = t.chunks[ctx.rng.below(t.chunks.length)]!;
    ctx.writeU64(c.phys, ctx.ramEnd, `vmalloc[${t.index}] chunk ${hex(c.phys)} next`);
    return failed(t, t.desc.first, [`${hex(c.phys)} offset 0`, hex(ctx.ramEnd)]);
  }),
  fault("vmalloc-phys-entry", "one chunk entry pointing at a page that is not preserved", ["is not preserved memory"], (ctx: FaultContext) => {
    const t = ctx.pick(vmallocTargets(ctx), "vmalloc area");
    const cs = t.chunks.filter((c) => c.entries > 0);
    const c = cs[ctx.rng.below(cs.length)]!;
    const e = ctx.rng.below(c.entries);
    ctx.writeU64(c.phys + khoVmallocEntryOffset(e), unpreservedPage(ctx), `vmalloc[${t.index}] chunk ${hex(c.phys)} phys[${e}]`);
    return failed(t, t.desc.first, [`phys[${e}]`, `offset ${khoVmallocEntryOffset(e)}`]);
  }),
  fault("vmalloc-terminator", "the zero after the last entry overwritten with another entry of the area: one block too many", ["exceeds total_pages"], (ctx: FaultContext) => {
    const t = ctx.pick(vmallocTargets(ctx), "vmalloc area");
    const last = t.chunks[t.chunks.length - 1]!;
    ctx.need(last.entries < KHO_VMALLOC_SIZE, "the last chunk is full");
    const dup = ctx.u64(t.desc.first + khoVmallocEntryOffset(0));
    ctx.writeU64(last.phys + khoVmallocEntryOffset(last.entries), dup, `vmalloc[${t.index}] chunk ${hex(last.phys)} phys[${last.entries}] (terminator)`);
    return failed(t, t.desc.first, [`phys[${last.entries}]`]);
  }),
];

function u32le(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
}

function u16le(v: number): Uint8Array {
  return Uint8Array.of(v & 0xff, (v >>> 8) & 0xff);
}
