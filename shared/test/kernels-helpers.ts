/*
 * In-process handoffs for the kernel-version tests: kernel-a's own code
 * (cold boot, workload, finalize) with a version's predecessor format, and
 * bootSuccessor with a version's successor, without files.
 */
import { parseBootDtb } from "../src/abi/boot-dtb.js";
import { defaultScenario, type Scenario } from "../src/kho/out/scenario.js";
import { coldBootMachine, runAndFinalize } from "../src/kho/out/predecessor.js";
import { bootSuccessor, type SuccessorBoot } from "../src/kho/in/successor.js";
import { KHO_KERNELS, type KhoKernelName } from "../src/kho/kernels/versions.js";
import { createLogger, initCsum } from "../src/lib/index.js";
import { SparseMem, type PhysMem } from "../src/mm/physmem.js";
import { buildBootDtb } from "../src/abi/boot-dtb.js";
import { FolioTable, buildKhoTestFdt, encodeKhoTestInfo } from "../src/abi/kho-test.js";
import { FdtWriter } from "../src/fdt/sw.js";
import { ByteWriter, u64leBytes } from "../src/lib/bytes.js";
import { csum64 } from "../src/lib/csum.js";

export const quiet = createLogger("test", "json", "silent");

export interface InProcessHandoff {
  bootDtb: Uint8Array;
  mem: PhysMem;
  /** Metadata objects the predecessor wrote (kernel-a's handoffs only). */
  chunks?: number[];
  khoFdtPhys?: number;
}

/** predecessorInProcess - what `kernel-a --kernel @name` writes for @scenario (default: test_kho's default), in memory. */
export async function predecessorInProcess(name: KhoKernelName, scenario: Scenario = defaultScenario(), seed = 1): Promise<InProcessHandoff> {
  await initCsum();
  const s = scenario;
  const m = coldBootMachine(s, quiet);
  const { handoff } = runAndFinalize(m, s, seed, "(test)", quiet, KHO_KERNELS[name].predecessor.format);
  return { bootDtb: handoff.bootDtb, mem: m.mem, chunks: handoff.chunks, khoFdtPhys: handoff.khoFdtPhys };
}

/** successorInProcess - `kernel-b --kernel @name` on @h, in process. */
export function successorInProcess(h: InProcessHandoff, name: KhoKernelName | undefined, maxOrder = 10): SuccessorBoot {
  return bootSuccessor(parseBootDtb(h.bootDtb), h.mem, { maxOrder, kernel: name });
}

/** A hand-built handoff: what docs/kernel-versions.md section 5 writes by hand. */
export interface HandSpec {
  ram: { base: number; size: number };
  /** Root compatible list (default ["kho-v1"]). */
  compatible?: string[];
  /** The map pointer: its property's bytes (null: no property). */
  map: Uint8Array | null;
  /** Where the map property lives: "" root (mainline), "preserved-memory" (posting). */
  mapNode?: string;
  mapProp?: string;
  /** Extra properties of the map node (markers). */
  mapExtra?: [string, Uint8Array][];
  subtreeProp?: string;
  /** kho_test's folio list (the truth the losses are counted against). */
  folios: { phys: number; order: number }[];
  /** Bytes to place in memory (chunks, bitmaps, nodes). */
  writes: [number, Uint8Array][];
  /** Pages for the KHO FDT, the kho_test FDT, its info blob, the scratch array (defaults: 0x40001000..0x40004000). */
  at?: { fdt: number; sub: number; info: number; sa: number };
  scratch: { addr: number; size: number };
}

/** handBuilt - a handoff (boot DTB + memory) laid out exactly as @h says. */
export function handBuilt(h: HandSpec): InProcessHandoff {
  const mem = new SparseMem(h.ram.base, h.ram.size);
  const at = h.at ?? { fdt: 0x40001000, sub: 0x40002000, info: 0x40003000, sa: 0x40004000 };
  for (const [p, b] of h.writes) mem.write(p, b);
  const t = new FolioTable(h.folios.length);
  for (const f of h.folios) t.push(f.phys, f.order, 0n);
  const info = encodeKhoTestInfo(t, []);
  mem.write(at.info, info);
  mem.write(at.sub, buildKhoTestFdt({ nrFolios: t.length, nrRanges: 0, infoPhys: BigInt(at.info), csum: csum64(info), unfilled: true }));
  const w = new FdtWriter();
  w.finishReservemap();
  w.beginNode("");
  w.propertyStrings("compatible", ...(h.compatible ?? ["kho-v1"]));
  const mapNode = h.mapNode ?? "";
  if (mapNode !== "") w.beginNode(mapNode);
  if (h.map !== null) w.property(h.mapProp ?? "preserved-memory-map", h.map);
  for (const [n, v] of h.mapExtra ?? []) w.property(n, v);
  if (mapNode !== "") w.endNode();
  w.beginNode("kho_test");
  w.property(h.subtreeProp ?? "fdt", u64leBytes(at.sub));
  w.endNode();
  w.endNode();
  const fdt = w.finish();
  mem.write(at.fdt, fdt);
  const sa = new Uint8Array(16);
  sa.set(u64leBytes(h.scratch.addr), 0);
  sa.set(u64leBytes(h.scratch.size), 8);
  mem.write(at.sa, sa);
  return { bootDtb: buildBootDtb(h.ram, { addr: at.fdt, size: fdt.length }, { addr: at.sa, size: 16 }), mem };
}

/** bitmapChunk - a khoser_mem_chunk page: next, order, and (phys_start, bitmap) entries. */
export function bitmapChunk(next: number, order: number, entries: [number, number][]): Uint8Array {
  const b = new Uint8Array(4096);
  const w = new ByteWriter(b);
  w.u64le(0, next);
  w.u32le(8, order);
  w.u32le(12, entries.length);
  entries.forEach(([s, p], i) => {
    w.u64le(16 + 16 * i, s);
    w.u64le(24 + 16 * i, p);
  });
  return b;
}

/** bits - a bitmap of @bytes bytes with bits @set set (bit n: byte n / 8, bit n % 8). */
export function bits(bytes: number, set: number[]): Uint8Array {
  const b = new Uint8Array(bytes);
  for (const n of set) b[n >>> 3]! |= 1 << (n & 7);
  return b;
}
