/*
 * The fault catalogue of `npm run corrupt`: each entry damages a copy of a
 * good handoff directory in ONE named way and says what kernel-b is expected
 * to make of it.
 *
 * Faults find their targets in the handoff itself, as kernel-b would: the boot
 * DTB gives RAM and the KHO FDT / scratch array addresses, the KHO FDT in the
 * image gives the metadata, the chunk list gives the ranges, and the kho_test
 * sub-tree gives the folios and their checksums (report.json is not trusted).
 * Edits are made in place at file offsets (fs.openSync 'r+', readSync,
 * writeSync): memory.img is never loaded whole and stays sparse.
 *
 * --seed picks among the eligible targets (which chunk, range, folio, byte,
 * bit); the same seed on the same input gives the same bytes.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BOOT_CHOSEN_PATH, BOOT_KHO_FDT_PROP, BOOT_KHO_SCRATCH_PROP, KHOSER_CHUNK_HDR_NEXT, KHOSER_CHUNK_HDR_NUM_RANGES, KHOSER_MEM_RANGE_DATA, KHOSER_MEM_RANGE_SIZE_FIELD, KHOSER_MEM_RANGE_START, KHOSER_RANGES_PER_CHUNK, KHO_FDT_MEMORY_NODE, KHO_FDT_MEMORY_PATH, KHO_FDT_METADATA_PROP, KHO_SCRATCH_SIZE, KHO_TEST_FDT, PAGE_SIZE, decodeKhoTestInfo, khoDataIsFolio, khoDataOrder, KhoTestError, khoTestInfoSize, khoserRangeOffset, parseBootDtb, parseKhoTestFdt, type BootInfo, type KhoTestFolio } from "@khosim/shared/abi";
import { CliError, EXIT_USAGE, HANDOFF_BOOT_DTB, HANDOFF_KHO_DTB, HANDOFF_MEMORY_IMG } from "@khosim/shared/proc";
import { FDT_HDR, FdtRo, fdtFromTree, fdtToTree, type FdtNode } from "@khosim/shared/fdt";
import { Prng, ByteReader, hex, BoundsError, u64ToNumber } from "@khosim/shared/lib";
import { checkPhysAccess, PhysMemError, type PhysMem } from "@khosim/shared/mm";
import { khoMemWalk, KhoWalkError, khoRetrieveSubtree, KhoFdtError, khoPopulate, KhoPopulateError, type KhoFdt, type KhoMemRange } from "@khosim/shared/kho";

/** kernel-b's outcomes and their exit codes (shared/src/kho/in/successor.ts, README). */
export type Outcome = "revived" | "verification-failed" | "unusable-input" | "booted-without-kho";
export const OUTCOME_EXIT: Readonly<Record<Outcome, number>> = {
  revived: 0,
  "verification-failed": 1,
  "unusable-input": 2,
  "booted-without-kho": 3,
};

export type FaultGroup = "kho-fdt" | "chunk-list" | "boot-dtb" | "image" | "data";

export interface FaultExpect {
  outcome: Outcome;
  exitCode: number;
  /** Substrings of kernel-b's reason (successor.json, or stderr when no report is written). */
  reasonIncludes?: string[];
}

/** A verification failure kernel-b must list (data faults). */
export interface ExpectedFailure {
  kind: "folio" | "range" | "subtree";
  phys?: string;
  order?: number;
}

/** What apply() learnt about this particular copy. */
export interface FaultResult {
  /** Input-specific substrings of the reason (addresses, indices, values). */
  reasonIncludes?: string[];
  /** Options kernel-b must be run with (overrides Fault.kernelBArgs). */
  kernelBArgs?: string[];
  /** A failure successor.json must list (verification-failed faults). */
  failure?: ExpectedFailure;
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

export interface Fault {
  kind: string;
  group: FaultGroup;
  description: string;
  expect: FaultExpect;
  kernelBArgs?: string[];
  apply(ctx: FaultContext): FaultResult | void;
}

/** The input cannot take this fault (exit 2, one line). */
export function faultInputError(kind: string, why: string): CliError {
  return new CliError(EXIT_USAGE, `${kind}: ${why}`);
}

/** A PhysMem over memory.img opened read-write; reads and writes go to the file. */
class FileMem implements PhysMem {
  constructor(
    readonly fd: number,
    readonly base: number,
    readonly size: number,
  ) {}

  read(phys: number, len: number): Uint8Array {
    checkPhysAccess(this, phys, len);
    const out = new Uint8Array(len);
    for (let done = 0; done < len; ) {
      const n = fs.readSync(this.fd, out, done, len - done, phys - this.base + done);
      if (n === 0) throw new Error(`memory.img: unexpected end of file at offset ${hex(phys - this.base + done)}`);
      done += n;
    }
    return out;
  }

  write(phys: number, data: Uint8Array): void {
    checkPhysAccess(this, phys, data.length);
    for (let done = 0; done < data.length; ) {
      done += fs.writeSync(this.fd, data, done, data.length - done, phys - this.base + done);
    }
  }
}

function bytesHex(b: Uint8Array): string {
  return b.length <= 64 ? Buffer.from(b).toString("hex") : `${b.length} bytes`;
}

function u64leOf(b: Uint8Array): bigint {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(0, true);
}

function u64le(v: bigint | number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
  return b;
}

function u64be(v: bigint | number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(v), false);
  return b;
}

function u32be(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, false);
  return b;
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
}

/**
 * FaultContext - the copied handoff directory and what a fault needs to find
 * its target. Everything is read lazily: a fault that needs nothing from the
 * image (image-missing) works on any directory.
 */
export class FaultContext {
  readonly details: FaultDetail[] = [];
  readonly rng: Prng;
  private memFd = -1;
  private mem?: FileMem;
  private bootCache?: BootInfo;
  private khoCache?: { addr: number; size: number; blob: Uint8Array; kho: KhoFdt };
  private walkCache?: { chunks: number[]; ranges: KhoMemRange[]; locs: RangeLoc[] };
  private khoTestCache?: KhoTestView;
  /** Set when the KHO FDT bytes in the image changed: kho.dtb is rewritten to match. */
  fdtTouched = false;

  constructor(
    readonly dir: string,
    readonly kind: string,
    readonly seed: number,
  ) {
    this.rng = new Prng(seed).fork(kind);
  }

  file(name: string): string {
    return path.join(this.dir, name);
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

  close(): void {
    if (this.memFd >= 0) fs.closeSync(this.memFd);
    this.memFd = -1;
    this.mem = undefined;
  }

  /* ---- boot.dtb ---- */

  bootBlob(): Uint8Array {
    try {
      return new Uint8Array(fs.readFileSync(this.file(HANDOFF_BOOT_DTB)));
    } catch (e) {
      throw faultInputError(this.kind, `cannot read ${HANDOFF_BOOT_DTB}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
  }

  boot(): BootInfo {
    if (!this.bootCache) {
      try {
        this.bootCache = parseBootDtb(this.bootBlob());
      } catch (e) {
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

  /** Overwrite the big-endian u64 (two cells) at @offset of boot.dtb in place. */
  patchBootU64(offset: number, v: bigint | number, field: string): void {
    const file = this.file(HANDOFF_BOOT_DTB);
    const fd = fs.openSync(file, "r+");
    try {
      const old = new Uint8Array(8);
      fs.readSync(fd, old, 0, 8, offset);
      fs.writeSync(fd, u64be(v), 0, 8, offset);
      const was = new DataView(old.buffer).getBigUint64(0, false);
      this.details.push({ file: HANDOFF_BOOT_DTB, offset: hex(offset), field, old: hex(was), new: hex(BigInt(v)) });
    } finally {
      fs.closeSync(fd);
    }
    this.bootCache = undefined;
  }

  /** Rewrite boot.dtb from an edited tree (our FdtWriter; unchanged parts give the same bytes). */
  rebuildBootDtb(edit: (root: FdtNode) => void, field: string): void {
    const old = this.bootBlob();
    const tree = fdtToTree(old);
    edit(tree);
    const blob = fdtFromTree(tree);
    fs.writeFileSync(this.file(HANDOFF_BOOT_DTB), blob);
    this.details.push({ file: HANDOFF_BOOT_DTB, offset: "0x0", field, old: `${old.length} bytes`, new: `${blob.length} bytes` });
    this.bootCache = undefined;
  }

  /* ---- memory.img ---- */

  image(): FileMem {
    if (!this.mem) {
      const { base, size } = this.boot().ram;
      const file = this.file(HANDOFF_MEMORY_IMG);
      try {
        this.memFd = fs.openSync(file, "r+");
      } catch (e) {
        throw faultInputError(this.kind, `cannot open ${HANDOFF_MEMORY_IMG}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
      }
      const st = fs.fstatSync(this.memFd);
      this.need(st.size === size, `${HANDOFF_MEMORY_IMG} is ${hex(st.size)} bytes, not the RAM size ${hex(size)}`);
      this.mem = new FileMem(this.memFd, base, size);
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

  /** Overwrite the u64 (little-endian) at @phys; returns the old value. */
  writeU64(phys: number, v: bigint | number, field: string): bigint {
    const m = this.image();
    const old = u64leOf(m.read(phys, 8));
    m.write(phys, u64le(v));
    this.details.push({ file: HANDOFF_MEMORY_IMG, offset: hex(phys - m.base), phys: hex(phys), field, old: hex(old), new: hex(BigInt(v)) });
    return old;
  }

  u64(phys: number): bigint {
    return u64leOf(this.read(phys, 8));
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
    const file = this.file(HANDOFF_KHO_DTB);
    const old = fs.existsSync(file) ? `${fs.statSync(file).size} bytes` : "missing";
    fs.writeFileSync(file, bytes);
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
        const infoSize = khoTestInfoSize(h.nrFolios, h.nrRanges);
        const info = infoSize > 0 ? this.read(infoPhys, infoSize) : new Uint8Array(0);
        const t = decodeKhoTestInfo(info, h.nrFolios, h.nrRanges);
        this.khoTestCache = { subPhys, infoPhys, infoSize, folios: [...t.folios.entries()] };
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

/* ------------------------------------------------------------------------ */

const NO_KHO = (reasonIncludes: string[]): FaultExpect => ({ outcome: "booted-without-kho", exitCode: 3, reasonIncludes });
const UNUSABLE = (reasonIncludes: string[]): FaultExpect => ({ outcome: "unusable-input", exitCode: 2, reasonIncludes });
const VERIFY_FAILED = (reasonIncludes: string[]): FaultExpect => ({ outcome: "verification-failed", exitCode: 1, reasonIncludes });

/** The folio size of a range (PAGE_SIZE for physical ranges). */
function unitOf(r: KhoMemRange): number {
  return khoDataIsFolio(r.data) ? PAGE_SIZE * 2 ** khoDataOrder(r.data) : PAGE_SIZE;
}

/** A chunk-list range fault: pick an eligible range, set one field, name it in the reason. */
function rangeFault(
  ctx: FaultContext,
  field: "start" | "size" | "data",
  value: (loc: RangeLoc, prev: KhoMemRange | undefined) => bigint | number | undefined,
): FaultResult {
  const { locs } = ctx.walk();
  const eligible = locs.filter((l) => value(l, locs[l.index - 1]?.range) !== undefined);
  const loc = ctx.pick(eligible, "range this fault can be applied to");
  const v = value(loc, locs[loc.index - 1]?.range)!;
  const off = ctx.setRangeField(loc, field, v);
  return { reasonIncludes: [`chunk ${loc.chunkIndex} at ${hex(loc.chunkPhys)}`, `ranges[${loc.entry}].${field} at +${hex(off)} is ${hex(BigInt(v))}`] };
}

/** A chunk header fault on chunk @ci: set @field to @v. */
function chunkHeaderFault(ctx: FaultContext, ci: number, field: "next" | "num_ranges", v: bigint | number): FaultResult {
  const { chunks } = ctx.walk();
  const phys = chunks[ci]!;
  const off = field === "next" ? KHOSER_CHUNK_HDR_NEXT : KHOSER_CHUNK_HDR_NUM_RANGES;
  ctx.writeU64(phys + off, v, `chunk ${ci} ${field}`);
  return { reasonIncludes: [`chunk ${ci} at ${hex(phys)}`, `${field} at +${hex(off)} is ${hex(BigInt(v))}`] };
}

/** A chunk picked by the seed. */
function pickChunk(ctx: FaultContext): number {
  const { chunks } = ctx.walk();
  ctx.need(chunks.length > 0, "nothing was preserved (metadata is 0): there is no chunk to damage");
  return ctx.rng.below(chunks.length);
}

/** Filled folios (checksum recorded) of the kho_test table. */
function filledFolios(ctx: FaultContext): KhoTestFolio[] {
  return ctx.khoTest().folios.filter((f) => f.csum !== 0n);
}

function setBootPropAddr(ctx: FaultContext, prop: string, v: bigint | number): FaultResult {
  const at = ctx.chosenPropOffset(prop);
  ctx.need(at.length === 16, `${BOOT_CHOSEN_PATH}/${prop} is ${at.length} bytes, not 16`);
  ctx.patchBootU64(at.offset, v, `${BOOT_CHOSEN_PATH}/${prop} address`);
  return { reasonIncludes: [`${BOOT_CHOSEN_PATH}/${prop}: [${hex(BigInt(v))}`] };
}

function shortenBootProp(ctx: FaultContext, prop: string): FaultResult {
  ctx.rebuildBootDtb((root) => {
    const chosen = root.children.find((c) => c.name === "chosen")!;
    const p = chosen.props.find((q) => q.name === prop)!;
    p.value = p.value.slice(0, 12);
  }, `${BOOT_CHOSEN_PATH}/${prop} cut to 12 bytes (3 cells)`);
  return {};
}

export const FAULTS: readonly Fault[] = [
  /* ---------------- the KHO FDT ---------------- */
  {
    kind: "fdt-bad-magic",
    group: "kho-fdt",
    description: "KHO FDT header magic byte-swapped (0xedfe0dd0)",
    expect: NO_KHO(["KHO FDT at", "FDT_ERR_BADMAGIC at 0x0", "magic 0xedfe0dd0"]),
    apply(ctx: FaultContext) {
      const k = ctx.khoFdt();
      ctx.write(k.addr + FDT_HDR.magic, u32be(0xedfe0dd0), "KHO FDT header magic");
      return { reasonIncludes: [`KHO FDT at ${hex(k.addr)}`] };
    },
  },
  {
    kind: "fdt-truncated",
    group: "kho-fdt",
    description: "/chosen/linux,kho-fdt size halved: the blob is shorter than its header's totalsize",
    expect: NO_KHO(["FDT_ERR_TRUNCATED at 0x4", "totalsize"]),
    apply(ctx: FaultContext) {
      const k = ctx.khoFdt();
      const at = ctx.chosenPropOffset(BOOT_KHO_FDT_PROP);
      const size = Math.max(40, Math.floor(k.size / 2));
      ctx.patchBootU64(at.offset + 8, size, `${BOOT_CHOSEN_PATH}/${BOOT_KHO_FDT_PROP} size`);
      return { reasonIncludes: [`totalsize ${hex(k.fdt.header.totalsize)} is beyond the ${hex(size)}-byte buffer`] };
    },
  },
  {
    kind: "fdt-totalsize-beyond-blob",
    group: "kho-fdt",
    description: "KHO FDT header totalsize 0x100 past the blob /chosen/linux,kho-fdt describes",
    expect: NO_KHO(["FDT_ERR_TRUNCATED at 0x4", "totalsize"]),
    apply(ctx: FaultContext) {
      const k = ctx.khoFdt();
      const v = k.size + 0x100;
      ctx.write(k.addr + FDT_HDR.totalsize, u32be(v), "KHO FDT header totalsize");
      return { reasonIncludes: [`totalsize ${hex(v)} is beyond the ${hex(k.size)}-byte buffer`] };
    },
  },
  {
    kind: "fdt-nameoff-out-of-range",
    group: "kho-fdt",
    description: "the nameoff of /preserved-memory/metadata set to size_dt_strings (one past the strings block)",
    expect: NO_KHO(["FDT_ERR_BADSTRUCTURE", "outside strings block"]),
    apply(ctx: FaultContext) {
      const k = ctx.khoFdt();
      const at = ctx.khoFdtPropPhys(KHO_FDT_MEMORY_PATH, KHO_FDT_METADATA_PROP);
      const v = k.fdt.header.sizeDtStrings;
      ctx.write(k.addr + at.tokenOffset + 8, u32be(v), `KHO FDT ${KHO_FDT_MEMORY_PATH}/${KHO_FDT_METADATA_PROP} nameoff`);
      return { reasonIncludes: [`at ${hex(at.tokenOffset)}`, `nameoff ${hex(v)}`] };
    },
  },
  {
    kind: "fdt-unterminated-node-name",
    group: "kho-fdt",
    description: "the name of /preserved-memory runs to the end of the structure block without a NUL",
    expect: NO_KHO(["FDT_ERR_TRUNCATED", "node name is not NUL-terminated"]),
    apply(ctx: FaultContext) {
      const k = ctx.khoFdt();
      const h = k.fdt.header;
      const node = k.fdt.pathOffset(KHO_FDT_MEMORY_PATH);
      const nameAt = h.offDtStruct + node + 4;
      const from = nameAt + KHO_FDT_MEMORY_NODE.length;
      const to = h.offDtStruct + h.sizeDtStruct;
      ctx.write(k.addr + from, new Uint8Array(to - from).fill(0x78), `KHO FDT struct block from the NUL of "${KHO_FDT_MEMORY_NODE}" to its end`);
      return { reasonIncludes: [`at ${hex(h.offDtStruct + node)}`] };
    },
  },
  {
    kind: "fdt-no-preserved-memory",
    group: "kho-fdt",
    description: "KHO FDT rebuilt without the /preserved-memory node",
    expect: NO_KHO(["/preserved-memory", "no preserved-memory node"]),
    apply(ctx: FaultContext) {
      ctx.rebuildKhoFdt((root) => {
        root.children = root.children.filter((c) => c.name !== KHO_FDT_MEMORY_NODE);
      }, `${KHO_FDT_MEMORY_PATH} removed`);
    },
  },
  {
    kind: "fdt-metadata-4-bytes",
    group: "kho-fdt",
    description: "KHO FDT rebuilt with /preserved-memory/metadata 4 bytes long (its low half)",
    expect: NO_KHO(["/preserved-memory/metadata", "length 4, expected 8"]),
    apply(ctx: FaultContext) {
      ctx.rebuildKhoFdt((root) => {
        const n = root.children.find((c) => c.name === KHO_FDT_MEMORY_NODE)!;
        const p = n.props.find((q) => q.name === KHO_FDT_METADATA_PROP)!;
        p.value = p.value.slice(0, 4);
      }, `${KHO_FDT_MEMORY_PATH}/${KHO_FDT_METADATA_PROP} cut to 4 bytes`);
    },
  },
  {
    kind: "fdt-metadata-outside-ram",
    group: "kho-fdt",
    description: "metadata (first chunk) set to the first page past the end of RAM",
    expect: NO_KHO(["chunk list: metadata is", "chunk 0 page is outside RAM"]),
    apply(ctx: FaultContext) {
      ctx.setMetadata(ctx.ramEnd);
      return { reasonIncludes: [`metadata is ${hex(ctx.ramEnd)}`] };
    },
  },
  {
    kind: "fdt-metadata-unaligned",
    group: "kho-fdt",
    description: "metadata (first chunk) moved 0x10 bytes off its page boundary",
    expect: NO_KHO(["chunk list: metadata is", "chunk 0 address is not page aligned"]),
    apply(ctx: FaultContext) {
      const m = ctx.khoFdt().kho.metadata;
      ctx.need(m !== 0n, "nothing was preserved (metadata is 0)");
      ctx.setMetadata(m + 0x10n);
      return { reasonIncludes: [`metadata is ${hex(m + 0x10n)}`] };
    },
  },
  {
    kind: "fdt-metadata-in-scratch",
    group: "kho-fdt",
    description: "metadata (first chunk) pointing at the first page of a scratch area",
    expect: NO_KHO(["chunk list: metadata is", "chunk 0 page overlaps scratch"]),
    apply(ctx: FaultContext) {
      const s = ctx.pick(ctx.scratchArray().areas, "scratch area");
      ctx.setMetadata(s.addr);
      return { reasonIncludes: [`metadata is ${hex(s.addr)}`, `scratch [${hex(s.addr)}, ${hex(s.addr + s.size)})`] };
    },
  },
  {
    kind: "fdt-metadata-to-folio",
    group: "kho-fdt",
    description: "metadata (first chunk) pointing at a filled preserved folio: its random bytes are read as a chunk",
    expect: NO_KHO(["chunk list: chunk 0 at"]),
    apply(ctx: FaultContext) {
      const f = ctx.pick(filledFolios(ctx), "filled folio");
      const num = ctx.u64(f.phys + KHOSER_CHUNK_HDR_NUM_RANGES);
      ctx.need(num > BigInt(KHOSER_RANGES_PER_CHUNK), `folio ${hex(f.phys)} happens to hold a plausible num_ranges ${num}; try another --seed`);
      ctx.setMetadata(f.phys);
      return { reasonIncludes: [`chunk 0 at ${hex(f.phys)}`, `num_ranges at +0x8 is ${hex(num)}`] };
    },
  },
  {
    kind: "fdt-compatible-kho-v3",
    group: "kho-fdt",
    description: 'KHO FDT rebuilt with root compatible "kho-v3", as a newer kernel would write',
    expect: NO_KHO(["/compatible", 'root compatible "kho-v3" is not']),
    apply(ctx: FaultContext) {
      ctx.rebuildKhoFdt((root) => {
        const p = root.props.find((q) => q.name === "compatible")!;
        p.value = new TextEncoder().encode("kho-v3\0");
      }, 'root compatible "kho-v3"');
    },
  },
  {
    kind: "fdt-compatible-missing",
    group: "kho-fdt",
    description: "KHO FDT rebuilt without the root compatible",
    expect: NO_KHO(["/compatible", "missing root compatible"]),
    apply(ctx: FaultContext) {
      ctx.rebuildKhoFdt((root) => {
        root.props = root.props.filter((q) => q.name !== "compatible");
      }, "root compatible removed");
    },
  },

  /* ---------------- the chunk list ---------------- */
  {
    kind: "chunk-num-ranges-171",
    group: "chunk-list",
    description: `a chunk's num_ranges set to ${KHOSER_RANGES_PER_CHUNK + 1}, one more than a page holds`,
    expect: NO_KHO(["chunk list: chunk", "num_ranges at +0x8 is 0xab", `more than ${KHOSER_RANGES_PER_CHUNK}`]),
    apply: (ctx: FaultContext) => chunkHeaderFault(ctx, pickChunk(ctx), "num_ranges", KHOSER_RANGES_PER_CHUNK + 1),
  },
  {
    kind: "chunk-num-ranges-2p63",
    group: "chunk-list",
    description: "a chunk's num_ranges set to 2^63 (a loop bound nobody checked would never end)",
    expect: NO_KHO(["chunk list: chunk", "num_ranges at +0x8 is 0x8000000000000000"]),
    apply: (ctx: FaultContext) => chunkHeaderFault(ctx, pickChunk(ctx), "num_ranges", 1n << 63n),
  },
  {
    kind: "chunk-next-self",
    group: "chunk-list",
    description: "a chunk's next pointing at itself (a one-chunk cycle)",
    expect: NO_KHO(["chunk list: chunk", "next at +0x0", "(cycle)"]),
    apply(ctx: FaultContext) {
      const ci = pickChunk(ctx);
      const r = chunkHeaderFault(ctx, ci, "next", ctx.walk().chunks[ci]!);
      return { reasonIncludes: [...r.reasonIncludes!, `that is chunk ${ci} again`] };
    },
  },
  {
    kind: "chunk-next-earlier",
    group: "chunk-list",
    description: "a later chunk's next pointing back at an earlier chunk (needs 2 or more chunks)",
    expect: NO_KHO(["chunk list: chunk", "next at +0x0", "(cycle)"]),
    apply(ctx: FaultContext) {
      const { chunks } = ctx.walk();
      ctx.need(chunks.length >= 2, `needs at least 2 chunks; the input has ${chunks.length} (use e.g. scenarios/chunk-boundary-171.json)`);
      const ci = 1 + ctx.rng.below(chunks.length - 1);
      const to = ctx.rng.below(ci);
      const r = chunkHeaderFault(ctx, ci, "next", chunks[to]!);
      return { reasonIncludes: [...r.reasonIncludes!, `that is chunk ${to} again`] };
    },
  },
  {
    kind: "chunk-next-outside-ram",
    group: "chunk-list",
    description: "a chunk's next set to the first page past the end of RAM",
    expect: NO_KHO(["chunk list: chunk", "next at +0x0", "page is outside RAM"]),
    apply: (ctx: FaultContext) => chunkHeaderFault(ctx, pickChunk(ctx), "next", ctx.ramEnd),
  },
  {
    kind: "chunk-next-unaligned",
    group: "chunk-list",
    description: "a chunk's next set to an address 0x800 into a page",
    expect: NO_KHO(["chunk list: chunk", "next at +0x0", "address is not page aligned"]),
    apply(ctx: FaultContext) {
      const ci = pickChunk(ctx);
      const { chunks } = ctx.walk();
      const target = (chunks[ci + 1] ?? chunks[ci]!) + 0x800;
      return chunkHeaderFault(ctx, ci, "next", target);
    },
  },
  {
    kind: "range-outside-ram",
    group: "chunk-list",
    description: "a range's start moved to the end of RAM",
    expect: NO_KHO(["chunk list: chunk", "outside RAM"]),
    apply: (ctx: FaultContext) => rangeFault(ctx, "start", () => ctx.ramEnd),
  },
  {
    kind: "range-size-zero",
    group: "chunk-list",
    description: "a range's size set to 0",
    expect: NO_KHO(["chunk list: chunk", "empty range"]),
    apply: (ctx: FaultContext) => rangeFault(ctx, "size", () => 0),
  },
  {
    kind: "range-overflow",
    group: "chunk-list",
    description: "a range's size set to 2^64 - 0x1000, so that start + size passes 2^64",
    expect: NO_KHO(["chunk list: chunk", "overflows u64"]),
    apply: (ctx: FaultContext) => rangeFault(ctx, "size", () => (1n << 64n) - BigInt(PAGE_SIZE)),
  },
  {
    kind: "range-overlap",
    group: "chunk-list",
    description: "a range's start moved back inside the previous range (kept aligned to its folio size)",
    expect: NO_KHO(["chunk list: chunk", "overlaps previous range"]),
    apply: (ctx: FaultContext) =>
      rangeFault(ctx, "start", (l, prev) => {
        if (!prev) return undefined;
        const u = unitOf(l.range);
        const st = Math.floor((prev.start + prev.size - 1) / u) * u;
        return st >= prev.start ? st : undefined;
      }),
  },
  {
    kind: "range-out-of-order",
    group: "chunk-list",
    description: "a range's start moved below the previous range's start",
    expect: NO_KHO(["chunk list: chunk", "out of order"]),
    apply: (ctx: FaultContext) =>
      rangeFault(ctx, "start", (l, prev) => {
        if (!prev) return undefined;
        const u = unitOf(l.range);
        const st = Math.floor((prev.start - 1) / u) * u;
        return st >= ctx.ramBase ? st : undefined;
      }),
  },
  {
    kind: "range-in-scratch",
    group: "chunk-list",
    description: "a range's start moved to the start of a scratch area",
    expect: NO_KHO(["chunk list: chunk", "overlaps scratch"]),
    apply(ctx: FaultContext) {
      const areas = ctx.scratchArray().areas;
      let hit: { addr: number; size: number } | undefined;
      const r = rangeFault(ctx, "start", (l, prev) => {
        const s = areas.find((a) => a.addr % unitOf(l.range) === 0 && a.addr >= (prev ? prev.start + prev.size : 0) && a.addr + l.range.size <= ctx.ramEnd);
        hit = s;
        return s?.addr;
      });
      return { reasonIncludes: [...r.reasonIncludes!, `overlaps scratch [${hex(hit!.addr)}, ${hex(hit!.addr + hit!.size)})`] };
    },
  },
  {
    kind: "range-unaligned",
    group: "chunk-list",
    description: "a range's start moved 0x10 bytes off its page boundary",
    expect: NO_KHO(["chunk list: chunk", "not page aligned"]),
    apply: (ctx: FaultContext) => rangeFault(ctx, "start", (l) => l.range.start + 0x10),
  },
  {
    kind: "range-bad-data",
    group: "chunk-list",
    description: "a range's data given bit 9 (0x200), outside KHO_DATA_FOLIO | order",
    expect: NO_KHO(["chunk list: chunk", "KHO_DATA_FOLIO"]),
    apply: (ctx: FaultContext) => rangeFault(ctx, "data", (l) => l.range.data | 0x200),
  },
  {
    kind: "chunk-in-preserved-range",
    group: "chunk-list",
    description: "the first chunk copied into a preserved folio and metadata pointed there (the walk must not free a preserved page)",
    expect: NO_KHO(["chunk list: chunk 0 at", "page lies inside preserved range"]),
    apply(ctx: FaultContext) {
      const { chunks, locs } = ctx.walk();
      ctx.need(chunks.length > 0, "nothing was preserved (metadata is 0)");
      // A kho_test folio: never the page of the KHO FDT or of the kho_test sub-tree.
      const f = ctx.pick(ctx.khoTest().folios, "kho_test folio");
      const l = locs.find((x) => x.range.start <= f.phys && f.phys < x.range.start + x.range.size)!;
      ctx.write(f.phys, ctx.read(chunks[0]!, PAGE_SIZE), `folio ${hex(f.phys)} (order ${f.order}): first page overwritten with chunk 0`);
      ctx.setMetadata(f.phys);
      return { reasonIncludes: [`chunk 0 at ${hex(f.phys)}`, `[${hex(l.range.start)}, ${hex(l.range.start + l.range.size)})`, `range ${l.index}`] };
    },
  },

  /* ---------------- the boot DTB ---------------- */
  {
    kind: "boot-no-memory",
    group: "boot-dtb",
    description: "boot.dtb rebuilt without its /memory node: the machine has no RAM",
    expect: UNUSABLE(["boot.dtb", "/memory", 'no node with device_type = "memory"']),
    apply(ctx: FaultContext) {
      ctx.rebuildBootDtb((root) => {
        root.children = root.children.filter((c) => !c.props.some((p) => p.name === "device_type"));
      }, "/memory node removed");
    },
  },
  {
    kind: "boot-kho-fdt-outside-ram",
    group: "boot-dtb",
    description: "/chosen/linux,kho-fdt address set to the end of RAM",
    expect: NO_KHO([`/chosen/${BOOT_KHO_FDT_PROP}`, "is outside RAM"]),
    apply: (ctx: FaultContext) => setBootPropAddr(ctx, BOOT_KHO_FDT_PROP, ctx.ramEnd),
  },
  {
    kind: "boot-kho-fdt-wrong-length",
    group: "boot-dtb",
    description: "/chosen/linux,kho-fdt cut to 12 bytes (3 cells instead of 2+2)",
    expect: NO_KHO([`/chosen/${BOOT_KHO_FDT_PROP}`, "length 12, expected 16"]),
    apply: (ctx: FaultContext) => shortenBootProp(ctx, BOOT_KHO_FDT_PROP),
  },
  {
    kind: "boot-kho-scratch-outside-ram",
    group: "boot-dtb",
    description: "/chosen/linux,kho-scratch address set to the end of RAM",
    expect: NO_KHO([`/chosen/${BOOT_KHO_SCRATCH_PROP}`, "is outside RAM"]),
    apply: (ctx: FaultContext) => setBootPropAddr(ctx, BOOT_KHO_SCRATCH_PROP, ctx.ramEnd),
  },
  {
    kind: "boot-kho-scratch-wrong-length",
    group: "boot-dtb",
    description: "/chosen/linux,kho-scratch cut to 12 bytes (3 cells instead of 2+2)",
    expect: NO_KHO([`/chosen/${BOOT_KHO_SCRATCH_PROP}`, "length 12, expected 16"]),
    apply: (ctx: FaultContext) => shortenBootProp(ctx, BOOT_KHO_SCRATCH_PROP),
  },
  {
    kind: "scratch-overlaps-preserved",
    group: "boot-dtb",
    description: "the smallest kho_scratch entry (in the image) replaced by a preserved range",
    expect: NO_KHO(["chunk list: chunk", "overlaps scratch"]),
    apply(ctx: FaultContext) {
      const sa = ctx.scratchArray();
      ctx.need(sa.areas.length >= 2, `needs at least 2 scratch areas (one keeps the early allocations); the input has ${sa.areas.length}`);
      const k = ctx.khoFdt();
      const { locs } = ctx.walk();
      const j = sa.areas.reduce((best, a, i) => (a.size < sa.areas[best]!.size ? i : best), 0);
      const holds = (r: KhoMemRange, a: number, n: number): boolean => a < r.start + r.size && r.start < a + n;
      const l = ctx.pick(
        locs.filter((x) => !holds(x.range, k.addr, k.size) && !holds(x.range, sa.phys, sa.areas.length * KHO_SCRATCH_SIZE)),
        "preserved range clear of the KHO FDT and the scratch array",
      );
      const at = sa.phys + j * KHO_SCRATCH_SIZE;
      ctx.writeU64(at, l.range.start, `kho_scratch[${j}].addr`);
      ctx.writeU64(at + 8, l.range.size, `kho_scratch[${j}].size`);
      const end = l.range.start + l.range.size;
      return {
        reasonIncludes: [`chunk ${l.chunkIndex} at ${hex(l.chunkPhys)}`, `ranges[${l.entry}].start`, `overlaps scratch [${hex(l.range.start)}, ${hex(end)})`],
      };
    },
  },

  {
    kind: "scratch-too-small",
    group: "boot-dtb",
    description: "every kho_scratch entry (in the image) shrunk to one page: no room for the successor's early allocations",
    expect: UNUSABLE(["early allocation of", "KHO scratch memory"]),
    apply(ctx: FaultContext) {
      const sa = ctx.scratchArray();
      sa.areas.forEach((_, j) => ctx.writeU64(sa.phys + j * KHO_SCRATCH_SIZE + 8, PAGE_SIZE, `kho_scratch[${j}].size`));
    },
  },

  /* ---------------- the image ---------------- */
  {
    kind: "image-short",
    group: "image",
    description: "memory.img one page shorter than the RAM /memory describes",
    expect: UNUSABLE(["memory.img", "image shorter than RAM"]),
    apply(ctx: FaultContext) {
      const { size } = ctx.boot().ram;
      const file = ctx.file(HANDOFF_MEMORY_IMG);
      const st = fs.statSync(file);
      fs.truncateSync(file, size - PAGE_SIZE);
      ctx.details.push({ file: HANDOFF_MEMORY_IMG, offset: hex(size - PAGE_SIZE), field: "file size", old: hex(st.size), new: hex(size - PAGE_SIZE) });
      return { reasonIncludes: [`size ${hex(size - PAGE_SIZE)} does not match RAM size ${hex(size)}`] };
    },
  },
  {
    kind: "image-missing",
    group: "image",
    description: "memory.img deleted",
    expect: UNUSABLE(["memory.img", "cannot open: ENOENT"]),
    apply(ctx: FaultContext) {
      const file = ctx.file(HANDOFF_MEMORY_IMG);
      const st = fs.statSync(file);
      fs.unlinkSync(file);
      ctx.details.push({ file: HANDOFF_MEMORY_IMG, offset: "0x0", field: "whole file", old: `${hex(st.size)} bytes`, new: "deleted" });
    },
  },

  /* ---------------- preserved data ---------------- */
  {
    kind: "data-bit-flip",
    group: "data",
    description: "one bit flipped in a filled preserved folio",
    expect: VERIFY_FAILED(["checksum", "does not match recorded"]),
    apply(ctx: FaultContext) {
      const f = ctx.pick(filledFolios(ctx), "filled folio (the scenario did not fill its memory)");
      const size = PAGE_SIZE * 2 ** f.order;
      const at = f.phys + ctx.rng.below(size);
      const bit = ctx.rng.below(8);
      const old = ctx.read(at, 1);
      ctx.write(at, Uint8Array.of(old[0]! ^ (1 << bit)), `bit ${bit} of folio ${hex(f.phys)} (order ${f.order}) + ${hex(at - f.phys)}`);
      return { reasonIncludes: [hex(f.phys)], failure: { kind: "folio", phys: hex(f.phys), order: f.order } };
    },
  },
  {
    kind: "data-info-checksum",
    group: "data",
    description: "one bit flipped in the kho_test info blob, so it no longer matches its csum",
    expect: VERIFY_FAILED(["folios_info checksum", "does not match csum"]),
    apply(ctx: FaultContext) {
      const t = ctx.khoTest();
      ctx.need(t.infoSize > 0, "the kho_test info blob is empty (nothing preserved)");
      const at = t.infoPhys + ctx.rng.below(t.infoSize);
      const bit = ctx.rng.below(8);
      const old = ctx.read(at, 1);
      ctx.write(at, Uint8Array.of(old[0]! ^ (1 << bit)), `bit ${bit} of the kho_test info blob + ${hex(at - t.infoPhys)}`);
      return { reasonIncludes: [hex(t.infoPhys)], failure: { kind: "subtree", phys: hex(t.infoPhys) } };
    },
  },
  {
    kind: "data-order-above-max",
    group: "data",
    description: "data intact; kernel-b run with --max-order one below the highest preserved folio order",
    expect: VERIFY_FAILED(["has order", "above this kernel's MAX_PAGE_ORDER"]),
    apply(ctx: FaultContext) {
      const folios = ctx.khoTest().folios;
      ctx.need(folios.length > 0, "no folios were preserved");
      const high = folios.reduce((m, f) => Math.max(m, f.order), 0);
      ctx.need(high >= 1, "every preserved folio has order 0: no --max-order is below it");
      const f = folios.find((x) => x.order === high)!;
      return {
        kernelBArgs: ["--max-order", String(high - 1)],
        reasonIncludes: [`folio ${hex(f.phys)} has order ${high}`, `MAX_PAGE_ORDER ${high - 1}`],
        failure: { kind: "folio", phys: hex(f.phys), order: high },
      };
    },
  },
  {
    kind: "subtree-fdt-at-range-end",
    group: "data",
    description: "/kho_test/fdt pointing 4 bytes before the end of its preserved range: no room for an FDT header",
    expect: VERIFY_FAILED(["kho_test"]),
    apply(ctx: FaultContext) {
      const k = ctx.khoFdt();
      const sub = khoRetrieveSubtree(k.kho, KHO_TEST_FDT);
      ctx.need(sub !== undefined, `the KHO FDT has no /${KHO_TEST_FDT} sub-tree`);
      const l = ctx.walk().locs.find((x) => x.range.start <= Number(sub) && Number(sub) < x.range.start + x.range.size);
      ctx.need(l, `/${KHO_TEST_FDT}/fdt ${hex(sub)} is not in a preserved range`);
      const to = l.range.start + l.range.size - 4;
      const at = ctx.khoFdtPropPhys(`/${KHO_TEST_FDT}`, "fdt");
      ctx.fdtTouched = true;
      ctx.writeU64(at.phys, to, `KHO FDT /${KHO_TEST_FDT}/fdt`);
      return { reasonIncludes: [hex(to)], failure: { kind: "subtree", phys: hex(to) } };
    },
  },
];

export function findFault(kind: string): Fault | undefined {
  return FAULTS.find((f) => f.kind === kind);
}

/** One line per fault, for --list. */
export function listFaults(): string {
  const kw = Math.max(...FAULTS.map((f) => f.kind.length));
  const gw = Math.max(...FAULTS.map((f) => f.group.length));
  const ow = Math.max(...FAULTS.map((f) => `${f.expect.outcome} (exit ${f.expect.exitCode})`.length));
  return FAULTS.map(
    (f) => `${f.group.padEnd(gw)}  ${f.kind.padEnd(kw)}  ${`${f.expect.outcome} (exit ${f.expect.exitCode})`.padEnd(ow)}  ${f.description}\n`,
  ).join("");
}
