/*
 * Fuzzing the successor, every format: damage a valid handoff (the KHO FDT,
 * the boot DTB, the root pointer, the scratch array, the kho_test sub-tree,
 * the LUO state (its FDT, session block, file array, memfd_luo_ser and folio
 * records: a kept session with two memfds, one of them empty), the memblock
 * sub-FDT, and each format's own structures: chunk headers and range entries; bitmap
 * chunk headers, bitmap pointers and bits; radix table entries, leaf bits
 * and the key bits a table index carries) and boot kernel-b's successor in
 * process (bootSuccessor: populate, walk, reserve, restore, verify).
 * Properties that must hold for every input:
 *  - it ends, and throws nothing but its own typed errors (unusable input);
 *  - it never writes its input, never reserves memory outside RAM or inside
 *    scratch, and a boot without KHO reserves nothing;
 *  - the outcome and exit code are one of the documented pairs, and every
 *    outcome but revived comes with a reason;
 *  - reserve_mem= (the handoff carries a memblock sub-tree, the successor
 *    asks for it by name): each name revived, allocated afresh or failed,
 *    never revived without KHO, a fresh range inside RAM;
 *  - its work is bounded by the input: reads of memory at most
 *    READ_BOUND_CALLS calls and READ_BOUND_RAMS times RAM in bytes, and each
 *    case within caseMs of wall time.
 * Used by scripts/test/fuzz.test.ts (a few hundred cases per format) and by
 * `npm run fuzz` (long campaigns).
 */
import fc from "fast-check";
import {
  BootDtbError, KHOSER_BM_HDR_NUM_ELMS, KHOSER_BM_HDR_ORDER, KHOSER_BM_PTR_SIZE, KHOSER_MEM_RANGE_SIZE, KHO_RADIX_TABLE_ENTRIES, OUTCOME_EXIT, PAGE_SIZE,
  parseBootDtb, ramTotal, type Outcome,
} from "@khosim/shared/abi";
import { type SuccessorReportJson } from "@khosim/shared/abi/handoff-json";
import { FdtRo } from "@khosim/shared/fdt";
import { OverlayMem, type PhysMem, type ReserveMemParam } from "@khosim/shared/mm";
import { createLogger, initCsum } from "@khosim/shared/lib";
import { KHO_FORMATS, coldBootMachine, khoFinalize, khoFormat, parseScenario, reserveMemPreserve, runWorkload, UnusableInputError, bootSuccessor, luoReboot, luoRun } from "@khosim/shared/kho";
import { KHO_TEST_VMALLOC_PROP, KHO_TEST_VMALLOC_RECORD_SIZE, KHO_VMALLOC_SIZE, decodeKhoVmalloc, decodeKhoVmallocChunk } from "@khosim/shared/abi";
import { mapFormat, type FormatMap } from "./faults/format-map.js";
import { rebase } from "./faults/store.js";

/** The formats the fuzzer builds handoffs in (the registry's). */
export const FUZZ_FORMATS: readonly string[] = KHO_FORMATS.map((f) => f.name);

/** A valid handoff held in memory, with where every structure of its format is. */
export interface FuzzHandoff {
  format: string;
  mem: PhysMem;
  bootDtb: Uint8Array;
  khoFdtPhys: number;
  khoFdtSize: number;
  /** phys of the root pointer's 8 bytes inside the KHO FDT in memory. */
  rootPhys: number;
  scratchPhys: number;
  scratchSize: number;
  map: FormatMap;
  subtreePhys: number;
  infoPhys: number;
  infoSize: number;
  /** The memblock sub-FDT (reserve_mem=) and the successor's reserve_mem= asking for its row. */
  memblockPhys: number;
  memblockSize: number;
  reserveMem: readonly ReserveMemParam[];
  /** Addresses worth writing into pointer fields: every metadata object, the FDT, scratch, RAM's edges. */
  pointers: bigint[];
  /** The struct kho_vmalloc descriptors kho_test records (their phys in the sub-FDT) and every chunk page of their areas. */
  vmalloc: { descs: number[]; chunks: number[] };
  /** The LUO structures' bytes: FDT, session block entries, file arrays, memfd_luo_sers, record arrays. */
  luo: { phys: number; size: number }[];
}

/**
 * makeFuzzHandoff - a small but complete handoff in @format: test_kho
 * folios, 180 isolated order-0 folios (two chunks in ranges, several
 * bitmaps and leaves), 16 KiB of phys range, on a 256 MiB machine; with
 * @banked, the same 256 MiB as two NUMA nodes of 128 MiB with a 128 MiB hole
 * between them (memory nodes with numa-node-id, five scratch areas by the
 * 200 % rule), so that boot-dtb damage reaches bank regs and node ids.
 */
export async function makeFuzzHandoff(seed = 1, format = "ranges", banked = false): Promise<FuzzHandoff> {
  await initCsum();
  const f = khoFormat(format);
  if (!f) throw new Error(`unknown format ${format}`);
  const machine = banked
    ? { banks: [{ base: "0x40000000", size: "128M", node: 0 }, { base: "0x50000000", size: "128M", node: 1 }], kernelSize: "8M" }
    : { ram: "256M", scratch: { lowmem: "16M", global: "32M" } };
  const s = parseScenario(
    {
      machine: { ...machine, cmdline: "reserve_mem=64K:4096:fuzz" },
      ops: [
        { op: "test_kho", maxMem: "256K" },
        { op: "folios", count: 180, order: 0, layout: "isolated", fill: false },
        { op: "phys", size: "16K" },
        { op: "vmalloc", pages: 600 },
        { op: "vmalloc", pages: 1024, order: 9 },
      ],
      luo: [
        { do: "open" },
        { do: "create-session", name: "fuzz" },
        { do: "memfd", as: "data", size: "12K" },
        { do: "memfd", as: "empty" },
        { do: "preserve-fd", session: "fuzz", fd: "data", token: 1 },
        { do: "preserve-fd", session: "fuzz", fd: "empty", token: 2 },
      ],
    },
    "(fuzz scenario)",
  );
  const quiet = createLogger("fuzz", "json", "silent");
  const m = coldBootMachine(s, quiet);
  const w = runWorkload(m, s, seed, "(fuzz scenario)", undefined, f);
  const rm = reserveMemPreserve(m, w.track, seed)!;
  const lh = luoReboot(m, luoRun(m, w.track, s.luo!, seed, "(fuzz scenario)"), "(fuzz scenario)");
  const h = khoFinalize(m, w, rm, lh);
  const luo = [
    { phys: lh.fdtPhys, size: PAGE_SIZE },
    { phys: lh.sessionBlock, size: 8 + 80 * lh.sessions.length },
    ...lh.sessions.flatMap((x) => x.files.map((fl) => ({ phys: fl.ser, size: 40 }))),
  ];
  const blk = new DataView(m.mem.read(lh.sessionBlock, 8 + 80 * lh.sessions.length).slice().buffer);
  for (let i = 0; i < lh.sessions.length; i++) {
    const files = Number(blk.getBigUint64(8 + i * 80 + 64, true));
    if (files !== 0) luo.push({ phys: files, size: 64 * lh.sessions[i]!.files.length });
  }
  for (const x of lh.sessions.flatMap((y) => y.files)) {
    const first = Number(new DataView(m.mem.read(x.ser + 24, 8).slice().buffer).getBigUint64(0, true));
    if (first === 0) continue;
    luo.push({ phys: first, size: PAGE_SIZE });
    luo.push({ phys: Number(new DataView(m.mem.read(first + 8, 8).slice().buffer).getBigUint64(0, true)), size: PAGE_SIZE });
  }
  const fdt = new FdtRo(h.khoFdt);
  const layout = f.fdtLayout;
  const node = layout.mapNode === "" ? 0 : fdt.pathOffset(`/${layout.mapNode}`);
  const rootName = layout.mapProps.find((p) => p.value === undefined)!.name;
  const prop = fdt.properties(node).find((p) => p.name === rootName)!;
  const map = mapFormat(m.mem, format, h.metadata);
  const objects: number[] =
    map.kind === "ranges" ? map.chunks.map((c) => c.phys) : map.kind === "bitmaps" ? [...map.chunks.map((c) => c.phys), ...map.bitmaps] : map.nodes.map((n) => n.phys);
  const ramBase = m.mem.base;
  const ramEnd = ramBase + m.mem.size;
  const pointers = new Set<bigint>([0n, BigInt(ramBase), BigInt(ramEnd), BigInt(ramEnd - PAGE_SIZE), BigInt(h.khoFdtPhys), BigInt(h.scratchPhys), BigInt(h.subtreePhys), BigInt(h.infoPhys), BigInt(rm.fdtPhys), BigInt(rm.entries[0]!.start)]);
  for (const o of objects) for (const d of [0, 8, 0x800, PAGE_SIZE, -PAGE_SIZE]) pointers.add(BigInt(o + d));
  for (const sc of m.scratch) pointers.add(BigInt(sc.addr));
  const vmalloc = mapVmalloc(m.mem, h.subtreePhys);
  for (const c of vmalloc.chunks) pointers.add(BigInt(c));
  for (const r of luo) pointers.add(BigInt(r.phys));
  return {
    format,
    mem: m.mem,
    bootDtb: h.bootDtb,
    khoFdtPhys: h.khoFdtPhys,
    khoFdtSize: h.khoFdt.length,
    rootPhys: h.khoFdtPhys + fdt.header.offDtStruct + prop.offset + 12,
    scratchPhys: h.scratchPhys,
    scratchSize: m.scratch.length * 16,
    map,
    subtreePhys: h.subtreePhys,
    infoPhys: h.infoPhys,
    infoSize: h.infoSize,
    memblockPhys: rm.fdtPhys,
    memblockSize: new DataView(m.mem.read(rm.fdtPhys + 4, 4).buffer).getUint32(0, false),
    reserveMem: s.reserveMem!,
    pointers: [...pointers],
    vmalloc,
    luo,
  };
}

/* Where the kho_test sub-FDT at @subPhys keeps its vmalloc descriptors, and their chunk pages. */
function mapVmalloc(mem: PhysMem, subPhys: number): { descs: number[]; chunks: number[] } {
  const sub = new FdtRo(mem.read(subPhys, PAGE_SIZE));
  const p = sub.properties(sub.pathOffset("/data")).find((q) => q.name === KHO_TEST_VMALLOC_PROP)!;
  const base = subPhys + sub.header.offDtStruct + p.offset + 12;
  const descs: number[] = [];
  const chunks: number[] = [];
  for (let i = 0; i < p.value.length / KHO_TEST_VMALLOC_RECORD_SIZE; i++) {
    descs.push(base + i * KHO_TEST_VMALLOC_RECORD_SIZE);
    for (let c = decodeKhoVmalloc(p.value, i * KHO_TEST_VMALLOC_RECORD_SIZE).first; c !== 0; c = Number(decodeKhoVmallocChunk(mem.read(c, PAGE_SIZE)).next)) chunks.push(c);
  }
  return { descs, chunks };
}

/** Targets every format has. */
const COMMON_TARGETS = ["kho-fdt", "boot-dtb", "root", "scratch-array", "subtree", "vmalloc-desc", "vmalloc-chunk", "luo", "memblock"] as const;
/** Each format family's own structures. */
const FORMAT_TARGETS = {
  ranges: ["chunk-header", "range-entry", "chunk-page"],
  bitmaps: ["chunk-header", "bitmap-ptr", "bitmap-bits", "chunk-page"],
  radix: ["table-entry", "table-index", "leaf-bits", "node-page"],
} as const;
export type FuzzTarget = (typeof COMMON_TARGETS)[number] | (typeof FORMAT_TARGETS)[keyof typeof FORMAT_TARGETS][number];

/**
 * One damage. @target says where; @pick and @pick2 choose the object, the
 * field, the entry or the bit (taken modulo what exists); @value is what is
 * written: a random byte, an interesting u64, one of the handoff's own
 * addresses (a pointer to another object, to itself, 8 or 0x800 bytes in),
 * a bit flip, or a swap with the next entry (order).
 */
export interface Mutation {
  target: FuzzTarget;
  pick: number;
  pick2: number;
  value: { byte: number } | { u64: bigint } | { ptr: number } | { flip: true } | { swap: true };
}

const INTERESTING = [0n, 1n, 7n, 8n, 9n, 12n, 18n, 19n, 63n, 64n, 170n, 171n, 255n, 256n, 0xfffn, 0x1000n, 4096n, 4097n, 32768n, 0xffffffffn, 1n << 32n, 1n << 52n, 1n << 53n, 1n << 63n, (1n << 64n) - 1n, 0x40000000n, 0x4ffff000n, 0x50000000n];

/** targetsOf - the targets the fuzzer damages in a handoff of @format. */
export function targetsOf(format: string): FuzzTarget[] {
  const fam = format === "ranges" || format === "posted" ? "ranges" : format === "radix" ? "radix" : "bitmaps";
  return [...COMMON_TARGETS, ...FORMAT_TARGETS[fam]];
}

/** mutationArb - random damages for a handoff of @format. */
export function mutationArb(format: string): fc.Arbitrary<Mutation> {
  return fc.record({
    target: fc.constantFrom<FuzzTarget>(...targetsOf(format)),
    pick: fc.nat(),
    pick2: fc.nat(),
    value: fc.oneof(
      fc.record({ byte: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ u64: fc.oneof(fc.constantFrom(...INTERESTING), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })) }),
      fc.record({ ptr: fc.nat() }),
      fc.constant({ flip: true as const }),
      fc.constant({ swap: true as const }),
    ),
  });
}

/* A write to the damaged copy: bytes at phys, or into the boot DTB. */
interface Damaged {
  bootDtb: Uint8Array;
  mem: CowMem;
}

/**
 * CowMem - copy-on-write memory over the handoff's (an OverlayMem), with read
 * accounting for the work bound once sealed, when any write is a violation.
 * readInto is counted as read() is: physReadInto takes it when there, one
 * call of out.length bytes either way.
 */
export class CowMem extends OverlayMem {
  /** Once sealed, the successor's view: any write is a violation. */
  sealed = false;
  reads = 0;
  readBytes = 0;
  writesAfterSeal = 0;

  override read(phys: number, len: number): Uint8Array {
    this.account(len);
    return super.read(phys, len);
  }

  override readInto(phys: number, out: Uint8Array): void {
    this.account(out.length);
    super.readInto(phys, out);
  }

  override write(phys: number, data: Uint8Array): void {
    if (this.sealed) {
      this.writesAfterSeal++;
      throw new FuzzViolation(`the successor wrote ${data.length} bytes of its input at 0x${phys.toString(16)}`);
    }
    super.write(phys, data);
  }

  private account(len: number): void {
    if (this.sealed) {
      this.reads++;
      this.readBytes += len;
    }
  }
}

function u64Bytes(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, v), true);
  return b;
}

/* The value a mutation writes into a u64 field, or undefined for byte/flip/swap. */
function u64Of(h: FuzzHandoff, m: Mutation): bigint | undefined {
  if ("u64" in m.value) return m.value.u64;
  if ("ptr" in m.value) return h.pointers[m.value.ptr % h.pointers.length]!;
  return undefined;
}

/*
 * Damage field [at, at + width) of memory: a u64 or pointer value (its low
 * @width bytes), a random byte at @pick within it, or one flipped bit.
 */
function damageField(d: Damaged, h: FuzzHandoff, m: Mutation, at: number, width: number): void {
  const v = u64Of(h, m);
  if (v !== undefined) {
    d.mem.write(at, u64Bytes(v).subarray(0, width));
  } else if ("byte" in m.value) {
    d.mem.write(at + (m.pick2 % width), Uint8Array.of(m.value.byte));
  } else {
    const bit = m.pick2 % (width * 8);
    const old = d.mem.read(at + (bit >> 3), 1)[0]!;
    d.mem.write(at + (bit >> 3), Uint8Array.of(old ^ (1 << (bit & 7))));
  }
}

/* Swap @len bytes at @a and @b. */
function swap(d: Damaged, a: number, b: number, len: number): void {
  const x = d.mem.read(a, len);
  const y = d.mem.read(b, len);
  d.mem.write(a, y);
  d.mem.write(b, x);
}

/* A region of raw bytes: a random byte, an interesting u64 at an 8-aligned offset, or a bit flip. */
function damageRegion(d: Damaged, h: FuzzHandoff, m: Mutation, region: { phys?: number; buf?: Uint8Array; size: number }): void {
  const v = u64Of(h, m);
  const width = v !== undefined ? 8 : 1;
  if (region.size < width) return;
  let off = m.pick % (region.size - width + 1);
  if (width === 8) off -= off % 8;
  let bytes: Uint8Array;
  if (v !== undefined) bytes = u64Bytes(v);
  else if ("byte" in m.value) bytes = Uint8Array.of(m.value.byte);
  else {
    const old = region.buf ? region.buf[off]! : d.mem.read(region.phys! + off, 1)[0]!;
    bytes = Uint8Array.of(old ^ (1 << (m.pick2 & 7)));
  }
  if (region.buf) region.buf.set(bytes, off);
  else d.mem.write(region.phys! + off, bytes);
}

/** Apply @muts to a copy-on-write view of @h; returns the damaged boot DTB and memory. */
export function applyMutations(h: FuzzHandoff, muts: readonly Mutation[]): { bootDtb: Uint8Array; mem: CowMem } {
  const d: Damaged = { bootDtb: h.bootDtb.slice(), mem: new CowMem(h.mem) };
  const map = h.map;
  for (const m of muts) {
    switch (m.target) {
      case "kho-fdt":
        damageRegion(d, h, m, { phys: h.khoFdtPhys, size: h.khoFdtSize });
        break;
      case "boot-dtb":
        damageRegion(d, h, m, { buf: d.bootDtb, size: d.bootDtb.length });
        break;
      case "root":
        damageField(d, h, m, h.rootPhys, 8);
        break;
      case "scratch-array":
        damageRegion(d, h, m, { phys: h.scratchPhys, size: h.scratchSize });
        break;
      case "subtree":
        damageRegion(d, h, m, m.pick2 % 2 ? { phys: h.subtreePhys, size: PAGE_SIZE } : { phys: h.infoPhys, size: Math.max(8, h.infoSize) });
        break;
      case "vmalloc-desc": {
        // One field of a struct kho_vmalloc: first (u64), total_pages (u32), flags, order (u16).
        const at = h.vmalloc.descs[m.pick % h.vmalloc.descs.length]!;
        const f = (m.pick >> 4) % 4;
        damageField(d, h, m, at + [0, 8, 12, 14][f]!, [8, 4, 2, 2][f]!);
        break;
      }
      case "vmalloc-chunk": {
        // A chunk's next, one of its entries, or the slot after its last entry (the terminator).
        const c = h.vmalloc.chunks[m.pick % h.vmalloc.chunks.length]!;
        const slot = (m.pick >> 4) % 3 === 0 ? 0 : 8 * (1 + ((m.pick2 >> 3) % KHO_VMALLOC_SIZE));
        if ("swap" in m.value) swap(d, c + slot, c + ((slot + 8) % PAGE_SIZE), 8);
        else damageField(d, h, m, c + slot, 8);
        break;
      }
      case "luo":
        damageRegion(d, h, m, h.luo[m.pick2 % h.luo.length]!);
        break;
      case "memblock":
        damageRegion(d, h, m, { phys: h.memblockPhys, size: h.memblockSize });
        break;
      case "chunk-header": {
        if (map.kind === "radix" || map.chunks.length === 0) break;
        const c = map.chunks[m.pick % map.chunks.length]!;
        if (map.kind === "ranges") damageField(d, h, m, c.phys + ((m.pick >> 4) % 2) * 8, 8);
        else {
          const f = (m.pick >> 4) % 3; // next, order, num_elms
          damageField(d, h, m, c.phys + [0, KHOSER_BM_HDR_ORDER, KHOSER_BM_HDR_NUM_ELMS][f]!, f === 0 ? 8 : 4);
        }
        break;
      }
      case "range-entry": {
        if (map.kind !== "ranges") break;
        const all = map.chunks.flatMap((c) => c.entries);
        if (all.length === 0) break;
        const i = m.pick % all.length;
        if ("swap" in m.value) {
          if (all.length > 1) swap(d, all[i]!, all[(i + 1) % all.length]!, KHOSER_MEM_RANGE_SIZE);
        } else damageField(d, h, m, all[i]! + ((m.pick >> 8) % 3) * 8, 8);
        break;
      }
      case "bitmap-ptr": {
        if (map.kind !== "bitmaps") break;
        const all = map.chunks.flatMap((c) => c.ptrs.map((p) => p.at));
        if (all.length === 0) break;
        const i = m.pick % all.length;
        if ("swap" in m.value) {
          if (all.length > 1) swap(d, all[i]!, all[(i + 1) % all.length]!, KHOSER_BM_PTR_SIZE);
        } else damageField(d, h, m, all[i]! + ((m.pick >> 8) % 2) * 8, 8);
        break;
      }
      case "bitmap-bits": {
        if (map.kind !== "bitmaps" || map.bitmaps.length === 0) break;
        const b = map.bitmaps[m.pick % map.bitmaps.length]!;
        const bit = m.pick2 % (map.bitmapBytes * 8);
        const old = d.mem.read(b + (bit >> 3), 1)[0]!;
        d.mem.write(b + (bit >> 3), Uint8Array.of(old ^ (1 << (bit & 7))));
        break;
      }
      case "chunk-page": {
        if (map.kind === "radix" || map.chunks.length === 0) break;
        damageRegion(d, h, m, { phys: map.chunks[m.pick2 % map.chunks.length]!.phys, size: PAGE_SIZE });
        break;
      }
      case "table-entry": {
        if (map.kind !== "radix") break;
        const tables = map.nodes.filter((n) => n.level > 0);
        if (tables.length === 0) break;
        const t = tables[m.pick % tables.length]!;
        // Half the time an entry in use, else any index.
        const idx = t.entries.length && m.pick2 % 2 ? t.entries[(m.pick2 >> 1) % t.entries.length]!.index : (m.pick2 >> 1) % KHO_RADIX_TABLE_ENTRIES;
        if ("swap" in m.value) swap(d, t.phys + idx * 8, t.phys + ((idx + 1) % KHO_RADIX_TABLE_ENTRIES) * 8, 8);
        else damageField(d, h, m, t.phys + idx * 8, 8);
        break;
      }
      case "table-index": {
        // Move an entry in use to another index: the key bits that index carries change (at the root, the order bit).
        if (map.kind !== "radix") break;
        const used = map.nodes.flatMap((n) => n.entries.map((e) => ({ node: n, e })));
        if (used.length === 0) break;
        const { node, e } = used[m.pick % used.length]!;
        const to = e.index ^ (1 << (m.pick2 % 9));
        const cur = d.mem.read(node.phys + e.index * 8, 8);
        d.mem.write(node.phys + e.index * 8, new Uint8Array(8));
        d.mem.write(node.phys + to * 8, cur);
        break;
      }
      case "leaf-bits": {
        if (map.kind !== "radix") break;
        const leaves = map.nodes.filter((n) => n.level === 0);
        if (leaves.length === 0) break;
        const l = leaves[m.pick % leaves.length]!;
        // Half the time next to a set bit (a neighbour block, an overlap), else anywhere in the leaf.
        const bit = l.bits.length && m.pick2 % 2 ? (l.bits[(m.pick2 >> 1) % l.bits.length]! + 1) % 32768 : (m.pick2 >> 1) % 32768;
        const old = d.mem.read(l.phys + (bit >> 3), 1)[0]!;
        d.mem.write(l.phys + (bit >> 3), Uint8Array.of(old ^ (1 << (bit & 7))));
        break;
      }
      case "node-page": {
        if (map.kind !== "radix" || map.nodes.length === 0) break;
        damageRegion(d, h, m, { phys: map.nodes[m.pick2 % map.nodes.length]!.phys, size: PAGE_SIZE });
        break;
      }
    }
  }
  return { bootDtb: d.bootDtb, mem: d.mem };
}

export interface CaseResult {
  outcome: Outcome;
  /** Why it did not revive cleanly (absent when revived). */
  reason?: string;
}

/** Thrown when a property is violated; the message says which. */
export class FuzzViolation extends Error {}

/** Reads of memory a case may make: a few per page of RAM (each page is a chunk, a node or verified data at most once or twice). */
export const READ_BOUND_CALLS_PER_PAGE = 4;
/** Bytes a case may read, in multiples of RAM. */
export const READ_BOUND_RAMS = 2;
/** Default wall-time bound of one case (ms): a guard against hangs, far above any real case. */
export const DEFAULT_CASE_MS = 10_000;

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
  if (rep.outcome !== "revived" && !rep.reason) throw new FuzzViolation(`${rep.outcome} without a reason`);
  if (rep.outcome === "revived" && rep.reason) throw new FuzzViolation(`revived with a failure reason: ${rep.reason}`);
  for (const r of rep.reserveMem ?? []) {
    if (r.outcome === "revived" && rep.outcome === "booted-without-kho") throw new FuzzViolation(`reserve_mem '${r.name}' revived without KHO`);
    if (r.outcome.startsWith("fresh") && !(Number(r.start) >= ram.base && Number(r.start) + Number(r.size) <= ram.base + ram.size)) throw new FuzzViolation(`reserve_mem '${r.name}' allocated at ${r.start} outside RAM`);
  }
}

/**
 * runCase - boot the successor on @h damaged by @muts. Returns the outcome;
 * throws FuzzViolation (a property broken, including the work bound of
 * @caseMs) or any unexpected (untyped) error.
 */
export function runCase(h: FuzzHandoff, muts: readonly Mutation[], caseMs = DEFAULT_CASE_MS): CaseResult {
  const { bootDtb, mem } = applyMutations(h, muts);
  let boot;
  try {
    boot = parseBootDtb(bootDtb);
  } catch (e) {
    if (e instanceof BootDtbError) return { outcome: "unusable-input", reason: e.message };
    throw e;
  }
  if (ramTotal({ ...boot.ram, banks: boot.banks }) !== ramTotal(mem)) {
    // kernel-b's ImageMem.open refuses an image whose size is not the RAM size (exit 2).
    return { outcome: "unusable-input", reason: "memory.img size does not match /memory reg" };
  }
  mem.sealed = true;
  const t0 = performance.now();
  let rep: SuccessorReportJson;
  try {
    rep = bootSuccessor(boot, rebase(mem, boot.ram.base, boot.banks), { maxOrder: 10, reserveMem: h.reserveMem }).report;
  } catch (e) {
    if (e instanceof UnusableInputError) return { outcome: "unusable-input", reason: e.message };
    throw e;
  } finally {
    checkBound(mem, performance.now() - t0, caseMs);
  }
  checkReport(rep, boot.ram);
  return rep.reason === null ? { outcome: rep.outcome } : { outcome: rep.outcome, reason: rep.reason };
}

function checkBound(mem: CowMem, ms: number, caseMs: number): void {
  const pages = mem.size / PAGE_SIZE;
  if (mem.reads > READ_BOUND_CALLS_PER_PAGE * pages) throw new FuzzViolation(`${mem.reads} reads of memory, more than ${READ_BOUND_CALLS_PER_PAGE} per page of RAM`);
  if (mem.readBytes > READ_BOUND_RAMS * mem.size) throw new FuzzViolation(`${mem.readBytes} bytes read, more than ${READ_BOUND_RAMS} times RAM`);
  if (ms > caseMs) throw new FuzzViolation(`the case took ${Math.round(ms)} ms, more than ${caseMs}`);
}

/** The fast-check property over sequences of 1..4 mutations of @h. */
export function fuzzProperty(h: FuzzHandoff, onCase?: (r: CaseResult) => void, caseMs = DEFAULT_CASE_MS): fc.IPropertyWithHooks<[Mutation[]]> {
  return fc.property(fc.array(mutationArb(h.format), { minLength: 1, maxLength: 4 }), (muts) => {
    const r = runCase(h, muts, caseMs);
    onCase?.(r);
  });
}
