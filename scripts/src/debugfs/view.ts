/*
 * What /sys/kernel/debug/kho/ holds for a handoff (CONFIG_KEXEC_HANDOVER_DEBUGFS):
 * out/ of the predecessor at kexec, in/ of the successor after boot.
 *
 * The files, their modes and contents follow the kernel's code:
 *  - v6.16: torvalds/linux 00c010e130e58301db2ea0cec1eadc931e1cb8cf
 *    kernel/kexec_handover.c: kho_out_debugfs_init() (scratch_phys,
 *    scratch_len 0400 via scratch_phys_show()/scratch_len_show(), one
 *    "0x%llx\n" line per kho_scratch entry in array order; finalize 0600,
 *    "%llu\n"), kho_out_update_debugfs_fdt() (out/fdt exists only while
 *    finalized), kho_add_subtree() -> kho_debugfs_fdt_add() (out/sub_fdts/NAME,
 *    a blob of fdt_totalsize bytes, 0400), kho_out_finalize_set() (writing 0
 *    calls kho_abort()), kho_in_debugfs_init() (in/fdt, in/sub_fdts/NAME from
 *    each root child's 8-byte "fdt" property; another length: pr_warn and
 *    skip), kho_init() (in/ only on a KHO boot). v6.18 (a4a508df2aa3, same
 *    file) is the same; the posting (KHO v5) is modelled as 6.16 (UNCERTAIN).
 *  - v6.19: torvalds/linux 5add3c3c280a35f7e258e9cef7607db5a2e56fdc
 *    kernel/liveupdate/kexec_handover_debugfs.c: the same files;
 *    kho_out_finalize_set() returns -EINVAL for 0 (no abort); and
 *    dd03dd60e8cd kernel/liveupdate/kexec_handover.c kho_init(): the root
 *    FDT exists from boot, but on a KHO boot kho_init() returns right after
 *    kho_in_debugfs_init(), before kho_debugfs_fdt_add(.., "fdt", ..): a
 *    KHO-booted kernel has no out/fdt.
 *  - kho-v2: torvalds/linux 019fc36872374db6fd35e118c9e935374404bfbf
 *    kernel/liveupdate/kexec_handover.c kho_init() as 6.19, and no
 *    kho_finalize(), so no finalize file; sub-trees carry "preserved-data".
 *
 * Everything is read from boot.dtb and memory.img (the KHO FDT, the
 * kho_scratch array and each sub-tree's blob at the phys its node names);
 * report.json only says whether the predecessor was itself KHO-booted
 * (written by kernel-b --handoff-out). Untrusted input: every pointer is
 * checked against RAM before it is read; what cannot be shown is a
 * DebugfsError naming file, offset and field.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BOOT_KHO_FDT_PROP, BOOT_KHO_SCRATCH_PROP, type BootInfo, HANDOFF_BOOT_DTB, HANDOFF_MEMORY_IMG, HANDOFF_REPORT, KHO_SCRATCH_SIZE } from "@khosim/shared/abi";
import { FdtError, FdtRo, fdtStringlistContains } from "@khosim/shared/fdt";
import { ByteReader, hex, u64ToNumber } from "@khosim/shared/lib";
import { physInRam, type PhysMem } from "@khosim/shared/mm";
import { KHO_FORMATS, KHO_KERNELS, KhoFdtError, parseKhoFdt, type KhoFormatName, type KhoKernel, type KhoKernelName } from "@khosim/shared/kho";
import { openHandoffFiles } from "../inspect.js";

/** One file of the view. Paths are relative to /sys/kernel/debug. */
export interface DebugfsFile {
  path: string;
  /** Permission bits as debugfs creates the file (0400, 0600). */
  mode: number;
  /** blob: a debugfs_create_blob() of an FDT; text: a seq_file or attribute read. */
  kind: "blob" | "text";
  /** What read(2) returns. */
  bytes: Uint8Array;
  /** Blobs: where the bytes lie in RAM. */
  phys?: number;
  /** What writing the file does (finalize). */
  write?: string;
}

/** The whole view of one handoff as one kernel version. */
export interface DebugfsView {
  kernel: KhoKernelName;
  /** The predecessor was itself booted from a KHO handoff (report.json tool is kernel-b). */
  predecessorKhoBooted: boolean;
  /** Directories in creation order (kho/, kho/out/, ...). */
  dirs: string[];
  files: DebugfsFile[];
  /** The kernel's pr_warn lines and khosim's notes, in order. */
  warnings: string[];
  /** Why in/ is absent (kho_populate refused); null when it exists. */
  inAbsent: string | null;
}

/** The handoff cannot be shown: @file, byte @offset in it (or -1) and @field say where. */
export class DebugfsError extends Error {
  constructor(
    readonly file: string,
    readonly offset: number,
    readonly field: string,
    reason: string,
  ) {
    super(`${file}${offset >= 0 ? ` offset ${hex(offset)}` : ""}: ${field}: ${reason}`);
    this.name = "DebugfsError";
  }
}

const FDT_MAGIC = 0xd00dfeed;
const FDT_HEADER_SIZE = 40;
/** Largest blob khosim shows (sub-trees are a page or a few; bounds the work on a corrupt totalsize). */
export const DEBUGFS_MAX_BLOB = 16 << 20;
/** Largest kho_scratch array khosim shows (1024 areas; populate.ts bounds the successor alike). */
export const DEBUGFS_MAX_SCRATCH = 1024;

/** The version's debugfs behaviour (see the file comment). */
interface DebugfsSemantics {
  /** out/finalize exists, and what writing 0 does. */
  finalize: "abort" | "einval" | "none";
  /** out/fdt is registered by kho_init() only on a non-KHO boot (6.19, kho-v2); else while finalized. */
  outFdtOnlyColdBoot: boolean;
  /** kho_in_debugfs_init()'s warning for a wrong-length property. */
  badLength: (name: string, prop: string, len: number) => string;
}

function semantics(k: KhoKernel): DebugfsSemantics {
  const old = k.name === "posting" || k.name === "v6.16" || k.name === "v6.18";
  return {
    finalize: old ? "abort" : k.name === "v6.19" ? "einval" : "none",
    outFdtOnlyColdBoot: !old,
    badLength: old
      ? (name, prop, len) => `KHO: node \`${name}\`'s prop \`${prop}\` has invalid length: ${len}`
      : (name, prop, len) => `KHO: node ${name} prop ${prop} has invalid length: ${len}`,
  };
}

/** debugfsHex - one "0x%llx\n" line: lowercase hex of the u64, no padding. */
export function debugfsHex(v: bigint): string {
  return `0x${BigInt.asUintN(64, v).toString(16)}\n`;
}

/**
 * scratchFiles - the text of scratch_phys and scratch_len for the raw
 * kho_scratch array @array (16-byte entries: u64 addr, u64 size, little
 * endian), one line per entry in array order.
 */
export function scratchFiles(array: Uint8Array): { phys: string; len: string } {
  const r = new ByteReader(array);
  let phys = "";
  let len = "";
  for (let off = 0; off + KHO_SCRATCH_SIZE <= array.length; off += KHO_SCRATCH_SIZE) {
    phys += debugfsHex(r.u64le(off));
    len += debugfsHex(r.u64le(off + 8));
  }
  return { phys, len };
}

/* Reads from memory.img, each naming its file offset and field when it cannot be done. */
class Reader {
  constructor(readonly mem: PhysMem) {}

  off(phys: number): number {
    return phys - this.mem.base;
  }

  /** The bytes [raw, raw + len) of RAM; @what names the field for the error. */
  read(raw: bigint, len: number, what: string): Uint8Array {
    const phys = u64ToNumber(raw);
    if (phys === undefined || !physInRam(this.mem, phys, len)) {
      throw new DebugfsError(HANDOFF_MEMORY_IMG, -1, what, `[${hex(raw)}, +${hex(len)}) is outside RAM [${hex(this.mem.base)}, ${hex(this.mem.base + this.mem.size)})`);
    }
    return this.mem.read(phys, len);
  }

  /** An FDT blob of fdt_totalsize bytes at @raw, as debugfs would show it (header magic and size checked). */
  blob(raw: bigint, what: string, check: boolean): { bytes: Uint8Array; phys: number } {
    const head = new ByteReader(this.read(raw, FDT_HEADER_SIZE, `${what} header`));
    const phys = Number(raw);
    const magic = head.u32be(0);
    if (magic !== FDT_MAGIC) throw new DebugfsError(HANDOFF_MEMORY_IMG, this.off(phys), `${what} fdt_header.magic`, `${hex(magic)}, expected ${hex(FDT_MAGIC)}`);
    const total = head.u32be(4);
    if (total < FDT_HEADER_SIZE || total > DEBUGFS_MAX_BLOB || !physInRam(this.mem, phys, total)) {
      throw new DebugfsError(HANDOFF_MEMORY_IMG, this.off(phys) + 4, `${what} fdt_header.totalsize`, `${hex(total)} is not ${FDT_HEADER_SIZE}..${hex(DEBUGFS_MAX_BLOB)} bytes inside RAM`);
    }
    const bytes = this.mem.read(phys, total);
    if (check) {
      try {
        new FdtRo(bytes);
      } catch (e) {
        if (e instanceof FdtError) throw new DebugfsError(HANDOFF_MEMORY_IMG, this.off(phys) + Math.max(0, e.offset), what, e.message);
        throw e;
      }
    }
    return { bytes, phys };
  }
}

/** readKhoBooted - report.json's tool says kernel-b (a KHO-booted kernel handed off again); bounded read of its head. */
function readKhoBooted(dir: string, warnings: string[]): boolean {
  let head = "";
  try {
    const fd = fs.openSync(path.join(dir, HANDOFF_REPORT), "r");
    try {
      const buf = Buffer.alloc(4096);
      head = buf.subarray(0, fs.readSync(fd, buf, 0, buf.length, 0)).toString("utf8");
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    warnings.push(`${HANDOFF_REPORT}: unreadable; the predecessor is taken as booted without KHO`);
    return false;
  }
  const m = /^\{\s*"tool":\s*"([^"\\]*)"/.exec(head);
  if (!m) {
    warnings.push(`${HANDOFF_REPORT}: no "tool" first; the predecessor is taken as booted without KHO`);
    return false;
  }
  return m[1] === "khosim kernel-b";
}

/** Why kernel @k's kho_populate() refuses @fdt, or null (boot.ts models the same checks for the whole boot). */
function populateRefusal(fdt: FdtRo, k: KhoKernel): string | null {
  const compat = fdt.getProp(0, "compatible");
  if (!compat || !fdtStringlistContains(compat, k.successor.compatible)) return `root compatible does not list "${k.successor.compatible}" (fdt_node_check_compatible)`;
  if (k.successor.missingMap !== "refuse") return null;
  let v: Uint8Array | undefined;
  try {
    v = fdt.getProp(k.successor.mapNode === "" ? 0 : fdt.pathOffset(`/${k.successor.mapNode}`), k.successor.mapProp);
  } catch {
    v = undefined;
  }
  if (v === undefined || v.length !== 8) return `${k.successor.mapProp} ${v === undefined ? "missing" : `is ${v.length} bytes`} (kho_get_mem_map_phys returns 0)`;
  if (new ByteReader(v).u64le(0) === 0n) return `${k.successor.mapProp} is 0 (kho_get_mem_map_phys returns 0)`;
  return null;
}

/**
 * subFdtFiles - kho_in_debugfs_init()'s walk (and, for out/, the sub-trees
 * kho_add_subtree() registered): one blob per root child carrying @prop of
 * 8 bytes, named as the node; another length, a name debugfs rejects or a
 * repeated name is warned about and skipped, as the kernel does.
 */
function subFdtFiles(fdt: FdtRo, prop: string, dir: string, rd: Reader, sem: DebugfsSemantics, warnings: string[]): DebugfsFile[] {
  const out: DebugfsFile[] = [];
  const seen = new Set<string>();
  for (const child of fdt.subnodes(0)) {
    const name = fdt.nodeName(child);
    const v = fdt.getProp(child, prop);
    if (v === undefined) continue;
    if (v.length !== 8) {
      warnings.push(sem.badLength(name, prop, v.length));
      continue;
    }
    // lookup_one_len() refuses "", ".", ".." and "/"; debugfs refuses a name already there (-EEXIST).
    const bad = name === "" || name === "." || name === ".." || name.includes("/") ? "-EACCES" : seen.has(name) ? "-EEXIST" : null;
    if (bad) {
      warnings.push(`KHO: failed to add fdt ${JSON.stringify(name)} to ${dir}: ${bad}`);
      continue;
    }
    seen.add(name);
    const b = rd.blob(new ByteReader(v).u64le(0), `/${name}/${prop} -> sub-FDT`, false);
    out.push({ path: `${dir}/${name}`, mode: 0o400, kind: "blob", bytes: b.bytes, phys: b.phys });
  }
  return out;
}

/*
 * Per format, the version whose predecessor writes it: ranges (khosim's own)
 * the posting it models; marker-less bitmaps v6.16 (v6.18 and v6.19 write
 * one-page bitmaps under the same names: the bytes cannot tell, --kernel can).
 */
const KERNEL_OF_FORMAT: Readonly<Record<KhoFormatName, KhoKernelName>> = { ranges: "posting", posted: "posting", bitmaps: "v6.16", "bitmaps-page": "v6.19", radix: "kho-v2" };

/** defaultKernel - the version that writes the handoff's format (v6.19 when the FDT names none khosim knows). */
export function defaultKernel(khoFdt: Uint8Array): KhoKernelName {
  try {
    return KERNEL_OF_FORMAT[parseKhoFdt(khoFdt, KHO_FORMATS).format.name];
  } catch (e) {
    if (e instanceof KhoFdtError) return "v6.19";
    throw e;
  }
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Options of debugfsViewOf. */
export interface DebugfsViewOptions {
  /** The version (default: defaultKernel). */
  kernel?: KhoKernelName;
  /** The predecessor was itself booted from a KHO handoff (kernel-b --handoff-out). */
  predecessorKhoBooted: boolean;
  /** Notes gathered before (report.json's), listed first. */
  warnings?: string[];
}

/**
 * debugfsView - the files of /sys/kernel/debug/kho/{out,in} for the handoff
 * in @dir as kernel version @kernel (default: defaultKernel, the version
 * that writes the handoff's format). Throws InspectError when @dir is not a
 * handoff, DebugfsError when its KHO data cannot be shown.
 */
export function debugfsView(dir: string, kernel?: KhoKernelName): DebugfsView {
  const files = openHandoffFiles(dir);
  try {
    const warnings: string[] = [];
    const predecessorKhoBooted = readKhoBooted(dir, warnings);
    return debugfsViewOf(files.boot, files.mem, { ...(kernel ? { kernel } : {}), predecessorKhoBooted, warnings });
  } finally {
    files.mem.close();
  }
}

/**
 * debugfsViewOf - debugfsView from a parsed boot DTB @boot and the memory
 * @mem the handoff left (file offsets in messages are phys - RAM base, as in
 * memory.img).
 */
export function debugfsViewOf(boot: BootInfo, mem: PhysMem, opts: DebugfsViewOptions): DebugfsView {
  const bootField = (prop: string): string => `/chosen/${prop}`;
  if (boot.khoPropError) throw new DebugfsError(HANDOFF_BOOT_DTB, -1, "/chosen", boot.khoPropError);
  if (!boot.khoFdt) throw new DebugfsError(HANDOFF_BOOT_DTB, -1, bootField(BOOT_KHO_FDT_PROP), "missing: nothing was handed over");
  if (!boot.khoScratch) throw new DebugfsError(HANDOFF_BOOT_DTB, -1, bootField(BOOT_KHO_SCRATCH_PROP), "missing: nothing was handed over");
  const rd = new Reader(mem);
  const root = rd.blob(boot.khoFdt.addr, "KHO FDT", true);
  const fdt = new FdtRo(root.bytes);
  const saSize = boot.khoScratch.size;
  if (saSize === 0n || saSize % BigInt(KHO_SCRATCH_SIZE) !== 0n || saSize > BigInt(DEBUGFS_MAX_SCRATCH * KHO_SCRATCH_SIZE)) {
    throw new DebugfsError(HANDOFF_BOOT_DTB, -1, `${bootField(BOOT_KHO_SCRATCH_PROP)} size`, `${hex(saSize)} is not 1..${DEBUGFS_MAX_SCRATCH} kho_scratch entries of ${KHO_SCRATCH_SIZE} bytes`);
  }
  const array = rd.read(boot.khoScratch.addr, Number(saSize), `kho_scratch array (${bootField(BOOT_KHO_SCRATCH_PROP)})`);
  const compat = fdt.getProp(0, "compatible");
  const name: KhoKernelName = opts.kernel ?? defaultKernel(root.bytes);
  const k = KHO_KERNELS[name];
  const sem = semantics(k);
  const warnings: string[] = [...(opts.warnings ?? [])];
  if (!compat || !fdtStringlistContains(compat, k.predecessor.compatible)) warnings.push(`the KHO FDT's root compatible does not list "${k.predecessor.compatible}": not what a ${name} predecessor writes`);
  const khoBooted = opts.predecessorKhoBooted;
  const sc = scratchFiles(array);
  const out: DebugfsFile[] = [];
  if (sem.finalize !== "none") {
    // At kexec the predecessor is finalized: kho_out_finalize_get() prints "%llu\n" of 1.
    const write = sem.finalize === "abort" ? "echo 1: -EEXIST (already finalized); echo 0: kho_abort() drops the FDT and the preserved-memory map" : "echo 1: kho_finalize(); echo 0: -EINVAL (no abort)";
    out.push({ path: "kho/out/finalize", mode: 0o600, kind: "text", bytes: text("1\n"), write });
  }
  out.push({ path: "kho/out/scratch_phys", mode: 0o400, kind: "text", bytes: text(sc.phys) });
  out.push({ path: "kho/out/scratch_len", mode: 0o400, kind: "text", bytes: text(sc.len) });
  if (!(sem.outFdtOnlyColdBoot && khoBooted)) out.push({ path: "kho/out/fdt", mode: 0o400, kind: "blob", bytes: root.bytes, phys: root.phys });
  else warnings.push(`out/fdt absent: a KHO-booted ${name} kernel returns from kho_init() before registering it`);
  const outWarn: string[] = [];
  out.push(...subFdtFiles(fdt, k.predecessor.format.fdtLayout.subtreeProp, "kho/out/sub_fdts", rd, sem, outWarn));
  const files = [...out];
  const inAbsent = populateRefusal(fdt, k);
  const dirs = ["kho", "kho/out", "kho/out/sub_fdts"];
  if (inAbsent === null) {
    dirs.push("kho/in", "kho/in/sub_fdts");
    files.push({ path: "kho/in/fdt", mode: 0o400, kind: "blob", bytes: root.bytes, phys: root.phys });
    files.push(...subFdtFiles(fdt, k.successor.subtreeProp, "kho/in/sub_fdts", rd, sem, warnings));
  }
  // The predecessor's own skips are khosim notes (the kernel added its sub-trees by pointer).
  for (const w of outWarn) warnings.push(`out/: ${w}`);
  return { kernel: name, predecessorKhoBooted: khoBooted, dirs, files, warnings, inAbsent };
}
