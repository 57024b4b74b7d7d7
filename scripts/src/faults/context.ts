/*
 * FaultContext: a handoff being damaged (a directory or an in-memory handoff,
 * store.ts) and what a fault needs to find its target, found as kernel-b
 * would: the boot DTB gives RAM and the KHO FDT / scratch array addresses,
 * the KHO FDT in the image gives the metadata, the chunk list the ranges, and
 * the kho_test sub-tree the folios and their checksums (report.json is not
 * trusted). Every change is recorded (file, offset, field, old, new).
 */
import { BOOT_CHOSEN_PATH, BOOT_KHO_FDT_PROP, BOOT_KHO_SCRATCH_PROP, HANDOFF_BOOT_DTB, HANDOFF_KHO_DTB, HANDOFF_MEMORY_IMG, KHOSER_CHUNK_HDR_NUM_RANGES, KHOSER_MEM_RANGE_DATA, KHOSER_MEM_RANGE_SIZE_FIELD, KHOSER_MEM_RANGE_START, KHO_FDT_MEMORY_PATH, KHO_FDT_METADATA_PROP, KHO_SCRATCH_SIZE, KHO_TEST_FDT, PAGE_SIZE, decodeKhoTestInfo, KhoTestError, khoTestHeaderInfoSize, khoserRangeOffset, parseBootDtb, parseKhoTestFdt, ramTotal, type BootInfo, type KhoTestFolio, type KhoTestHeader } from "@khosim/shared/abi";
import { CliError, EXIT_USAGE } from "@khosim/shared/proc";
import { FdtRo, fdtFromTree, fdtToTree, type FdtNode } from "@khosim/shared/fdt";
import { Prng, ByteReader, ByteWriter, hex, BoundsError, u64ToNumber, u64beCells, u64leBytes } from "@khosim/shared/lib";
import { OverlayMem, PhysMemError } from "@khosim/shared/mm";
import { khoMemWalk, KhoWalkError, khoRetrieveSubtree, KhoFdtError, khoPopulate, KhoPopulateError, type KhoFdt, type KhoMemRange } from "@khosim/shared/kho";
import { DirStore, StoreReadError, type HandoffStore } from "./store.js";

/** The input cannot take this fault (exit 2, one line). */
export function faultInputError(kind: string, why: string): CliError {
  return new CliError(EXIT_USAGE, `${kind}: ${why}`);
}

/** One change made to the copy. */
export interface FaultDetail {
  file: string;
  /** Byte offset in @file. */
  offset: string;
  /** Physical address, for memory.img. */
  phys?: string;
  /** What the bytes are. */
  field: string;
  old: string;
  new: string;
}

/** Where ranges[i] of the walk sits: chunk index and entry index. */
export interface RangeLoc {
  /** Index in the whole list. */
  index: number;
  chunkIndex: number;
  chunkPhys: number;
  entry: number;
  range: KhoMemRange;
}

/** The kho_test sub-tree as found in the image. */
export interface KhoTestView {
  subPhys: number;
  infoPhys: number;
  infoSize: number;
  folios: KhoTestFolio[];
  /** The sub-tree's header (nrRuns set when the folio table is runs, kho-test-v2). */
  header: KhoTestHeader;
}

/* fault.json shows short values as hex bytes, longer ones by length. */
function bytesHex(b: Uint8Array): string {
  return b.length <= 64 ? Buffer.from(b).toString("hex") : `${b.length} bytes`;
}

/**
 * FaultContext - the handoff being damaged and what a fault needs to find
 * its target. Everything is read lazily: a fault that needs nothing from the
 * image (image-missing) works on any directory. close() stores the changes.
 */
export class FaultContext {
  readonly details: FaultDetail[] = [];
  readonly rng: Prng;
  readonly store: HandoffStore;
  private mem?: OverlayMem;
  private bootCache?: BootInfo;
  private khoCache?: { addr: number; size: number; blob: Uint8Array; kho: KhoFdt };
  private walkCache?: { chunks: number[]; ranges: KhoMemRange[]; locs: RangeLoc[] };
  private khoTestCache?: KhoTestView;
  /** Set when the KHO FDT bytes in the image changed: kho.dtb is rewritten to match. */
  fdtTouched = false;

  /** @target: a handoff directory (edited in place) or a store such as an in-memory handoff. */
  constructor(
    target: string | HandoffStore,
    readonly kind: string,
    readonly seed: number,
  ) {
    this.store = typeof target === "string" ? new DirStore(target) : target;
    this.rng = new Prng(seed).fork(kind);
  }

  /** Fail: the input cannot take this fault. */
  need(cond: unknown, why: string): asserts cond {
    if (!cond) throw faultInputError(this.kind, why);
  }

  /** Pick one of @items with the seeded generator. */
  pick<T>(items: readonly T[], what: string): T {
    this.need(items.length > 0, `the input has no ${what}`);
    return items[this.rng.below(items.length)]!;
  }

  /** Store what was written to memory and release the image. */
  close(): void {
    const mem = this.mem;
    this.mem = undefined;
    this.store.commit(mem);
  }

  /* ---- boot.dtb ---- */

  bootBlob(): Uint8Array {
    try {
      return this.store.readBoot();
    } catch (e) {
      if (e instanceof StoreReadError) throw faultInputError(this.kind, `cannot read ${HANDOFF_BOOT_DTB}: ${e.code}`);
      throw e;
    }
  }

  boot(): BootInfo {
    if (!this.bootCache) {
      try {
        this.bootCache = parseBootDtb(this.bootBlob());
      } catch (e) {
        if (e instanceof CliError) throw e;
        throw faultInputError(this.kind, `${HANDOFF_BOOT_DTB} is not a usable boot DTB: ${(e as Error).message}`);
      }
    }
    return this.bootCache;
  }

  get ramBase(): number {
    return this.boot().ram.base;
  }

  get ramEnd(): number {
    return this.boot().ram.base + this.boot().ram.size;
  }

  /** File offset of the value of /chosen property @prop in boot.dtb. */
  chosenPropOffset(prop: string): { offset: number; length: number } {
    const blob = this.bootBlob();
    const fdt = new FdtRo(blob);
    const chosen = fdt.pathOffset(BOOT_CHOSEN_PATH);
    const p = fdt.properties(chosen).find((q) => q.name === prop);
    this.need(p, `${HANDOFF_BOOT_DTB} has no ${BOOT_CHOSEN_PATH}/${prop}`);
    return { offset: fdt.header.offDtStruct + p.offset + 12, length: p.value.length };
  }

  /** Overwrite the big-endian u64 (two cells) at @offset of boot.dtb. */
  patchBootU64(offset: number, v: bigint | number, field: string): void {
    const blob = this.bootBlob();
    const was = new ByteReader(blob).u64be(offset);
    new ByteWriter(blob).bytesAt(offset, u64beCells(v));
    this.store.writeBoot(blob);
    this.details.push({ file: HANDOFF_BOOT_DTB, offset: hex(offset), field, old: hex(was), new: hex(BigInt(v)) });
    this.bootCache = undefined;
  }

  /** Rewrite boot.dtb from an edited tree (our FdtWriter; unchanged parts give the same bytes). */
  rebuildBootDtb(edit: (root: FdtNode) => void, field: string): void {
    const old = this.bootBlob();
    const tree = fdtToTree(old);
    edit(tree);
    const blob = fdtFromTree(tree);
    this.store.writeBoot(blob);
    this.details.push({ file: HANDOFF_BOOT_DTB, offset: "0x0", field, old: `${old.length} bytes`, new: `${blob.length} bytes` });
    this.bootCache = undefined;
  }

  /* ---- memory.img ---- */

  /** Length of memory.img in bytes (the input must have one). */
  imageFileSize(): number {
    let bytes: number | undefined;
    try {
      bytes = this.store.imageSize();
    } catch (e) {
      if (e instanceof StoreReadError) throw faultInputError(this.kind, `cannot open ${HANDOFF_MEMORY_IMG}: ${e.code}`);
      throw e;
    }
    this.need(bytes !== undefined, `cannot open ${HANDOFF_MEMORY_IMG}: ENOENT`);
    return bytes;
  }

  /** RAM as memory.img holds it; writes go to an overlay that close() stores. */
  image(): OverlayMem {
    if (!this.mem) {
      const boot = this.boot();
      const { base } = boot.ram;
      const size = ramTotal({ ...boot.ram, banks: boot.banks });
      const bytes = this.imageFileSize();
      this.need(bytes === size, `${HANDOFF_MEMORY_IMG} is ${hex(bytes)} bytes, not the RAM size ${hex(size)}`);
      this.mem = new OverlayMem(this.store.openImage(base, boot.banks));
    }
    return this.mem;
  }

  read(phys: number, len: number): Uint8Array {
    return this.image().read(phys, len);
  }

  /** Overwrite RAM at @phys and record the change. */
  write(phys: number, data: Uint8Array, field: string): void {
    const m = this.image();
    const old = m.read(phys, data.length);
    m.write(phys, data);
    this.details.push({ file: HANDOFF_MEMORY_IMG, offset: hex(phys - m.base), phys: hex(phys), field, old: bytesHex(old), new: bytesHex(data) });
    const k = this.khoCache;
    if (k && phys < k.addr + k.size && k.addr < phys + data.length) this.fdtTouched = true;
  }

  /** Overwrite the big-endian u32 at @phys (an FDT header or token field) and record the change. */
  writeU32be(phys: number, v: number, field: string): void {
    const b = new Uint8Array(4);
    new ByteWriter(b).u32be(0, v >>> 0);
    this.write(phys, b, field);
  }

  /** Overwrite the u64 (little-endian) at @phys; returns the old value. */
  writeU64(phys: number, v: bigint | number, field: string): bigint {
    const m = this.image();
    const old = this.u64(phys);
    m.write(phys, u64leBytes(v));
    this.details.push({ file: HANDOFF_MEMORY_IMG, offset: hex(phys - m.base), phys: hex(phys), field, old: hex(old), new: hex(BigInt(v)) });
    return old;
  }

  u64(phys: number): bigint {
    return new ByteReader(this.read(phys, 8)).u64le(0);
  }

  /* ---- the KHO FDT ---- */

  /** The KHO FDT in the image, validated as kernel-b does (khoPopulate). */
  khoFdt(): { addr: number; size: number; blob: Uint8Array; kho: KhoFdt; fdt: FdtRo } {
    if (!this.khoCache) {
      let p;
      try {
        p = khoPopulate(this.boot(), this.image());
      } catch (e) {
        if (e instanceof KhoPopulateError || e instanceof PhysMemError) {
          throw faultInputError(this.kind, `the input's KHO data is not valid (kernel-b would boot without KHO): ${e.message}`);
        }
        throw e;
      }
      this.khoCache = { addr: p.fdtAddr, size: p.fdtSize, blob: this.read(p.fdtAddr, p.fdtSize), kho: p.kho };
    }
    return { ...this.khoCache, fdt: this.khoCache.kho.fdt };
  }

  /** Absolute phys of the value of property @prop of KHO FDT node @nodePath. */
  khoFdtPropPhys(nodePath: string, prop: string): { phys: number; length: number; tokenOffset: number } {
    const k = this.khoFdt();
    const node = k.fdt.pathOffset(nodePath);
    const p = k.fdt.properties(node).find((q) => q.name === prop);
    this.need(p, `the KHO FDT has no ${nodePath}/${prop}`);
    const tokenOffset = k.fdt.header.offDtStruct + p.offset;
    return { phys: k.addr + tokenOffset + 12, length: p.value.length, tokenOffset };
  }

  /** Set /preserved-memory/metadata in the image. */
  setMetadata(v: bigint | number): void {
    const at = this.khoFdtPropPhys(KHO_FDT_MEMORY_PATH, KHO_FDT_METADATA_PROP);
    this.need(at.length === 8, `metadata is ${at.length} bytes, not 8`);
    this.fdtTouched = true;
    this.writeU64(at.phys, v, `KHO FDT ${KHO_FDT_MEMORY_PATH}/${KHO_FDT_METADATA_PROP}`);
  }

  /**
   * Replace the KHO FDT with one rebuilt from an edited tree: written over the
   * old one in the image (the rest of the old bytes zeroed) and
   * /chosen/linux,kho-fdt's size updated to the new length.
   */
  rebuildKhoFdt(edit: (root: FdtNode) => void, field: string): Uint8Array {
    const k = this.khoFdt();
    const tree = fdtToTree(k.blob);
    edit(tree);
    const blob = fdtFromTree(tree);
    this.need(blob.length <= PAGE_SIZE, `rebuilt KHO FDT is ${blob.length} bytes, more than a page`);
    const out = new Uint8Array(Math.max(blob.length, k.size));
    out.set(blob);
    const m = this.image();
    m.write(k.addr, out);
    this.fdtTouched = true;
    this.details.push({ file: HANDOFF_MEMORY_IMG, offset: hex(k.addr - m.base), phys: hex(k.addr), field: `KHO FDT: ${field}`, old: `${k.size} bytes`, new: `${blob.length} bytes` });
    if (blob.length !== k.size) {
      const at = this.chosenPropOffset(BOOT_KHO_FDT_PROP);
      this.patchBootU64(at.offset + 8, blob.length, `${BOOT_CHOSEN_PATH}/${BOOT_KHO_FDT_PROP} size`);
    }
    return blob;
  }

  /** After apply(): make kho.dtb a copy of the (damaged) KHO FDT in the image again. */
  syncKhoDtb(): void {
    if (!this.fdtTouched) return;
    const b = this.boot();
    const addr = u64ToNumber(b.khoFdt!.addr)!;
    const size = u64ToNumber(b.khoFdt!.size)!;
    const bytes = this.read(addr, size);
    const was = this.store.khoDtbSize();
    const old = was === undefined ? "missing" : `${was} bytes`;
    this.store.writeKhoDtb(bytes);
    this.details.push({ file: HANDOFF_KHO_DTB, offset: "0x0", field: `rewritten as a copy of the KHO FDT at ${hex(addr)}`, old, new: `${size} bytes` });
  }

  /* ---- scratch ---- */

  scratchArray(): { phys: number; areas: { addr: number; size: number }[] } {
    const b = this.boot();
    this.need(b.khoScratch, `${HANDOFF_BOOT_DTB} has no ${BOOT_CHOSEN_PATH}/${BOOT_KHO_SCRATCH_PROP}`);
    const phys = u64ToNumber(b.khoScratch.addr)!;
    const size = u64ToNumber(b.khoScratch.size)!;
    const r = new ByteReader(this.read(phys, size));
    const areas: { addr: number; size: number }[] = [];
    for (let i = 0; i + KHO_SCRATCH_SIZE <= size; i += KHO_SCRATCH_SIZE) {
      areas.push({ addr: Number(r.u64le(i)), size: Number(r.u64le(i + 8)) });
    }
    return { phys, areas };
  }

  /* ---- the chunk list ---- */

  walk(): { chunks: number[]; ranges: KhoMemRange[]; locs: RangeLoc[] } {
    if (!this.walkCache) {
      const k = this.khoFdt();
      const sc = this.scratchArray();
      let w;
      try {
        w = khoMemWalk(this.image(), k.kho.metadata, { ramBase: this.ramBase, ramSize: this.boot().ram.size, scratch: sc.areas });
      } catch (e) {
        if (e instanceof KhoWalkError || e instanceof PhysMemError) throw faultInputError(this.kind, `the chunk list is not valid: ${e.message}`);
        throw e;
      }
      const locs: RangeLoc[] = [];
      w.chunks.forEach((phys, ci) => {
        const n = Number(this.u64(phys + KHOSER_CHUNK_HDR_NUM_RANGES));
        for (let i = 0; i < n; i++) locs.push({ index: locs.length, chunkIndex: ci, chunkPhys: phys, entry: i, range: w.ranges[locs.length]! });
      });
      this.walkCache = { chunks: w.chunks, ranges: w.ranges, locs };
    }
    return this.walkCache;
  }

  /** Overwrite field @field of range @loc; returns the byte offset of the field in its chunk. */
  setRangeField(loc: RangeLoc, field: "start" | "size" | "data", v: bigint | number): number {
    const off = khoserRangeOffset(loc.entry) + { start: KHOSER_MEM_RANGE_START, size: KHOSER_MEM_RANGE_SIZE_FIELD, data: KHOSER_MEM_RANGE_DATA }[field];
    this.writeU64(loc.chunkPhys + off, v, `chunk ${loc.chunkIndex} ranges[${loc.entry}].${field}`);
    return off;
  }

  /* ---- the kho_test sub-tree ---- */

  khoTest(): KhoTestView {
    if (!this.khoTestCache) {
      const k = this.khoFdt();
      try {
        const sub = khoRetrieveSubtree(k.kho, KHO_TEST_FDT);
        this.need(sub !== undefined, `the KHO FDT has no /${KHO_TEST_FDT} sub-tree`);
        const subPhys = Number(sub);
        const total = new ByteReader(this.read(subPhys, 8)).u32be(4);
        const h = parseKhoTestFdt(this.read(subPhys, total));
        const infoPhys = Number(h.infoPhys);
        const infoSize = khoTestHeaderInfoSize(h);
        const info = infoSize > 0 ? this.read(infoPhys, infoSize) : new Uint8Array(0);
        const t = decodeKhoTestInfo(info, h.nrFolios, h.nrRanges, h.nrRuns);
        this.khoTestCache = { subPhys, infoPhys, infoSize, folios: [...t.folios.entries()], header: h };
      } catch (e) {
        if (e instanceof KhoFdtError || e instanceof KhoTestError || e instanceof PhysMemError || e instanceof BoundsError) {
          throw faultInputError(this.kind, `the ${KHO_TEST_FDT} sub-tree is not valid: ${e.message}`);
        }
        throw e;
      }
    }
    return this.khoTestCache;
  }
}
