/*
 * End-to-end test helpers: run the REAL kernel-a / kernel-b processes (node +
 * node on the build, as scripts/src/run.ts does), asynchronously so that independent runs
 * overlap, and handle handoff directories in temporary directories.
 *
 * Every handoff a test file needs is made once per file: a spawn costs
 * process start-up and the kernel's whole run.
 */
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { KERNEL_A, KERNEL_B, ROOT, nodeArgs, readJson, type RunResult } from "../src/run.js";
import { fdtget } from "@khosim/shared/test/oracles";
import { baseImageExtents } from "@khosim/shared/proc";
import type { PageSource } from "@khosim/shared/mm";
import type { PredecessorReport } from "@khosim/shared/abi/handoff-json";

export { KERNEL_A, KERNEL_B, ROOT, readJson };
export type { RunResult };

export const SCENARIOS = path.join(ROOT, "scenarios");

/** How runKernelAsync runs its process, besides main and args. */
export interface RunOptions {
  /** Working directory (default ROOT). */
  cwd?: string;
  /** Variables added to this process's environment. */
  env?: NodeJS.ProcessEnv;
  /** node's own options, before the main script (e.g. ["-r", preload]). */
  nodeOptions?: readonly string[];
}

/**
 * runKernelAsync - like runKernel(main, args) of scripts/src/run.ts, without
 * blocking: stdout and stderr collected, the status (128 when killed or not
 * started, the signal named on stderr). @opts: cwd, env, node options.
 */
export function runKernelAsync(main: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const env = opts.env ? { ...process.env, ...opts.env } : undefined;
    const child = spawn(process.execPath, [...(opts.nodeOptions ?? []), ...nodeArgs(main, args)], { cwd: opts.cwd ?? ROOT, ...(env ? { env } : {}), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
    child.on("error", (e) => resolve({ status: 128, stdout, stderr: stderr + String(e) }));
    child.on("close", (code, signal) => resolve({ status: code ?? 128, stdout, stderr: signal ? `${stderr}killed by ${signal}` : stderr }));
  });
}

export function runA(args: string[]): Promise<RunResult> {
  return runKernelAsync(KERNEL_A, args);
}

export function runB(args: string[]): Promise<RunResult> {
  return runKernelAsync(KERNEL_B, args);
}

/** A fresh directory under os.tmpdir(); remove it with removeTmp. */
export function makeTmp(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `khosim-${tag}-`));
}

export function removeTmp(dir: string | undefined): void {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}

/* The JSON files' types are the contract's (shared/src/abi/handoff-json.ts). */
export type { PredecessorReport, SuccessorReportJson } from "@khosim/shared/abi/handoff-json";

export interface Handoff {
  dir: string;
  a: RunResult;
  report: PredecessorReport;
}

/**
 * makeHandoff - run kernel-a with @args into @dir (which must not exist).
 * Throws with kernel-a's stderr when it does not exit 0.
 */
export async function makeHandoff(dir: string, args: string[] = []): Promise<Handoff> {
  const a = await runA(["--out", dir, ...args]);
  if (a.status !== 0) throw new Error(`kernel-a ${args.join(" ")} exited ${a.status}: ${a.stderr.trim()}`);
  return { dir, a, report: readJson<PredecessorReport>(path.join(dir, "report.json")) };
}

/** copyHandoff - copy handoff directory @src to @dst, keeping memory.img sparse. */
export function copyHandoff(src: string, dst: string): string {
  execFileSync("cp", ["-r", "--sparse=always", src, dst]);
  return dst;
}

/** patchFile - overwrite @bytes at @offset of @file in place (file length unchanged). */
export function patchFile(file: string, offset: number, bytes: Uint8Array): void {
  const fd = fs.openSync(file, "r+");
  try {
    fs.writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    fs.closeSync(fd);
  }
}

/** readFileAt - @len bytes of @file at @offset. */
export function readFileAt(file: string, offset: number, len: number): Buffer {
  const fd = fs.openSync(file, "r");
  try {
    const b = Buffer.alloc(len);
    const n = fs.readSync(fd, b, 0, len, offset);
    return b.subarray(0, n);
  } finally {
    fs.closeSync(fd);
  }
}

export function u64le(v: bigint | number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v));
  return b;
}

/**
 * A digest of memory.img's contents that does not depend on how the image
 * was laid out on disk: its size, then the offset and bytes of every
 * non-zero 4 KiB page, in order. The extents file, when proven current, only
 * says where to look (holes read as zeros); otherwise the whole file is read.
 * Pinned by the byte-identity test, so it must not change with the extents'
 * granularity.
 */
export function imageContentDigest(image: string): string {
  const size = fs.statSync(image).size;
  const extents = baseImageExtents(image) ?? [{ start: 0, end: size }];
  const d = new ContentDigest(size);
  const fd = fs.openSync(image, "r");
  const buf = Buffer.alloc(1 << 24);
  try {
    for (const e of extents) {
      for (let pos = e.start; pos < e.end; ) {
        const n = fs.readSync(fd, buf, 0, Math.min(buf.length, e.end - pos), pos);
        if (n === 0) throw new Error(`${image}: short read at ${pos}`);
        // Holes read as zeros: skip a zero 1 MiB span with one compare, not 256.
        for (let i = 0; i < n; i += ZERO_SPAN.length) {
          const span = buf.subarray(i, Math.min(n, i + ZERO_SPAN.length));
          if (span.equals(ZERO_SPAN.subarray(0, span.length))) continue;
          for (let k = 0; k < span.length; k += 4096) d.page(pos + i + k, span.subarray(k, Math.min(span.length, k + 4096)));
        }
        pos += n;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return d.digest();
}

/**
 * memImageContentDigest - imageContentDigest() of the memory.img that
 * writeImage() would write from @mem (its touched pages at their offsets,
 * holes elsewhere), computed without writing it.
 */
export function memImageContentDigest(mem: PageSource): string {
  const d = new ContentDigest(mem.size);
  const basePfn = mem.base / 4096;
  for (const [pfn, count] of mem.touchedRuns()) for (let i = 0; i < count; i++) d.page((pfn + i - basePfn) * 4096, mem.page(pfn + i)!);
  return d.digest();
}

const ZERO_SPAN = Buffer.alloc(1 << 20);

/** The content digest's one definition: size, then (offset, bytes) of each non-zero page, ascending. */
class ContentDigest {
  private readonly h;
  private readonly off = Buffer.alloc(8);
  private static readonly zero = Buffer.alloc(4096);

  constructor(size: number) {
    this.h = createHash("sha256").update(`size ${size}\n`);
  }

  page(offset: number, bytes: Uint8Array): void {
    if (Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).equals(ContentDigest.zero.subarray(0, bytes.length))) return;
    this.off.writeBigUInt64LE(BigInt(offset));
    this.h.update(this.off).update(bytes);
  }

  digest(): string {
    return this.h.digest("hex");
  }
}

/**
 * fileDigest - an exact digest of @file's bytes, for "unchanged" checks: a
 * memory.img by imageContentDigest (its holes skipped fast, not hashed), any
 * other file by sha256File.
 */
export function fileDigest(file: string): string {
  return path.basename(file) === "memory.img" ? imageContentDigest(file) : sha256File(file);
}

/** sha256 of a file, streamed in 16 MiB blocks (memory.img is RAM-sized). */
export function sha256File(file: string): string {
  const h = createHash("sha256");
  const fd = fs.openSync(file, "r");
  try {
    const buf = Buffer.alloc(1 << 24);
    let pos = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, pos);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      pos += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest("hex");
}

/** Non-empty lines of @s. */
export function lines(s: string): string[] {
  return s.split("\n").filter((l) => l.trim() !== "");
}

/** Stack-trace lines ("    at f (file:1:2)") in @s. */
export function stackLines(s: string): string[] {
  return s.split("\n").filter((l) => /^\s+at\s/.test(l));
}

/**
 * fdtgetWords - `fdtget -t x FILE NODE PROP` as 32-bit words, in the order
 * fdtget prints them (each word is 4 bytes of the value read big-endian).
 */
export function fdtgetWords(file: string, node: string, prop: string): number[] {
  const out = fdtget(file, node, prop, "x");
  const words = out.split(/\s+/).filter((w) => w !== "");
  for (const w of words) if (!/^[0-9a-f]{1,8}$/.test(w)) throw new Error(`fdtget ${node} ${prop}: unexpected word ${JSON.stringify(w)} in ${JSON.stringify(out)}`);
  return words.map((w) => Number.parseInt(w, 16));
}

/** Big-endian cells <hi lo hi lo ...> to u64 values (DT convention, #cells = 2). */
export function cellsToU64(words: number[]): bigint[] {
  if (words.length % 2 !== 0) throw new Error(`odd number of cells: ${words.join(" ")}`);
  const out: bigint[] = [];
  for (let i = 0; i < words.length; i += 2) out.push((BigInt(words[i]!) << 32n) | BigInt(words[i + 1]!));
  return out;
}

function bswap32(w: number): number {
  return (((w & 0xff) << 24) | ((w & 0xff00) << 8) | ((w >>> 8) & 0xff00) | (w >>> 24)) >>> 0;
}

/**
 * rawLeU64FromWords - decode fdtget's two words of an 8-byte property that
 * holds a little-endian u64 stored raw (kho-facts.md §7): fdtget reads each
 * 4 bytes big-endian, so swap the bytes of each word and put the second on top.
 */
export function rawLeU64FromWords(words: number[]): bigint {
  if (words.length !== 2) throw new Error(`expected 2 words for a u64, got ${words.length}: ${words.join(" ")}`);
  return (BigInt(bswap32(words[1]!)) << 32n) | BigInt(bswap32(words[0]!));
}

/** The /memory node of a boot DTB (found with `fdtget -l`) and its reg as [base, size]. */
export function bootMemoryReg(bootDtb: string): { node: string; base: bigint; size: bigint } {
  const children = execFileSync("fdtget", ["-l", bootDtb, "/"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.startsWith("memory"));
  if (children.length !== 1) throw new Error(`${bootDtb}: expected one /memory node, found ${JSON.stringify(children)}`);
  const node = `/${children[0]}`;
  const reg = cellsToU64(fdtgetWords(bootDtb, node, "reg"));
  if (reg.length !== 2) throw new Error(`${bootDtb}: ${node}/reg has ${reg.length} u64 values, expected 2`);
  return { node, base: reg[0]!, size: reg[1]! };
}
