/*
 * npm run diff as a library: runDiff(argv) parses the command line and
 * returns the output and exit code (scripts/src/diff.ts prints them; tests and
 * chain call it in process). This file does the I/O: the extents of the
 * sparse images (their extents files when proven current, else whole images
 * read in 8 MiB blocks with zero pages taken as holes; holes.ts), the block
 * reads, the files; the comparison, the decoding and the output are the
 * other modules of scripts/src/diff/. Usage and exit codes: scripts/src/diff.ts.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Option, type Command } from "commander";
import { CliError, EXIT_USAGE, newCommand, createProgress, intOption, kernelOption, withExitCodes } from "@khosim/shared/proc";
import { KHO_KERNEL_NAMES, type KhoKernelName } from "@khosim/shared/kho";
import { initCsum } from "@khosim/shared/lib";
import { HANDOFF_BOOT_DTB, HANDOFF_KHO_DTB, HANDOFF_MEMORY_IMG, HANDOFF_REPORT, SUCCESSOR_REPORT } from "@khosim/shared/abi";
import { ImageError } from "@khosim/shared/mm";
import { InspectError, openHandoff } from "../inspect.js";
import { decodeDiffView, openDiffFiles, reuseDiffView, type DiffFiles, type DiffView } from "./view.js";
import { dataExtents, isZero, type Extent } from "../holes.js";
import {
  ReportFormatError,
  SCAN_BLOCK_SIZE,
  DIFF_BLOCK_SIZE,
  buildDiff,
  comparePages,
  diffKernel,
  diffSuccessor,
  extentBytes,
  palette,
  parsePredecessorReport,
  parseSuccessorReport,
  renderDiff,
  renderKernel,
  renderSuccessor,
  toJsonText,
  unionExtents,
  type CompareStats,
  type DiffSide,
} from "./index.js";

export const DIFF_PROG = "diff";

export interface DiffOutput {
  code: number;
  stdout: string;
}

export interface DiffEnv {
  /** Colour the human output (default: stdout is a terminal and NO_COLOR is unset). */
  color?: boolean;
  /** Show a progress bar (default: shared's createProgress rule: stderr a terminal, not CI). */
  progress?: boolean;
}

interface Opts {
  kernel?: KhoKernelName;
  successor?: string;
  aBoot?: string;
  bBoot?: string;
  json?: boolean;
  limit?: number;
  color: "auto" | "always" | "never";
  readAll?: boolean;
}

export function diffCommand(): Command {
  const cmd = newCommand(
    DIFF_PROG,
    "Diff two kexec handoffs page by page and decode what differs (ranges, chunks, FDTs), check a handoff against kernel-b's successor.json, or list what a kernel version would lose of one (--kernel NAME DIR).\n" +
        "A and B: handoff directories, or memory.img files with boot.dtb beside them (--a-boot/--b-boot otherwise).\n" +
        "Images of different RAM sizes are diffed over their common part (exit 1).",
  )
    .argument("[A]", "first handoff (directory or memory.img)")
    .argument("[B]", "second handoff (directory or memory.img)")
    .option("--kernel <name>", `the preserved pages this kernel version would not reserve (${KHO_KERNEL_NAMES.join(", ")}): with one handoff, listed with the version's verdict (exit 0 only when it reserves everything); with A B, a region class of each side`, kernelOption)
    .option("--successor <dir>", "check the handoff in DIR against DIR/successor.json (exit 0: reserved exactly the walked ranges, restored everything)")
    .option("--a-boot <file>", "boot.dtb for A (default: beside A's memory.img)")
    .option("--b-boot <file>", "boot.dtb for B (default: beside B's memory.img)")
    .option("--json", "print the report as JSON (schema khosim-diff/1, or khosim-diff-successor/1)")
    .option("--limit <n>", "list at most N items per list (counts stay exact); 0 lists all", intOption("--limit", 0, Number.MAX_SAFE_INTEGER), 100)
    .addOption(new Option("--color <when>", "colour the human output").choices(["auto", "always", "never"]).default("auto"))
    .option("--read-all", "compare every byte of the images, zero pages too (compared = the image size)");
  return withExitCodes(cmd, [
    [0, "identical: every byte of memory.img, boot.dtb and kho.dtb is equal (--successor: reserved exactly the walked ranges, restored and verified everything; --kernel NAME DIR: that version revives it intact)"],
    [1, "different (--successor, --kernel NAME DIR: anything else); images of different sizes are diffed over their common part"],
    [2, "bad input, one line on stderr: a missing directory or file, an unreadable image or boot.dtb, an image whose size is not its boot.dtb's RAM size, an unusable successor.json; usage errors"],
  ]);
}

/** One side as given on the command line. */
interface SideFiles {
  name: string;
  image: string;
  boot: string;
  kho?: string;
}

function statOrThrow(p: string): fs.Stats {
  try {
    return fs.statSync(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliError(EXIT_USAGE, `${p}: ${code === "ENOENT" ? "no such file or directory" : `cannot stat: ${code ?? String(e)}`}`);
  }
}

function sideFiles(arg: string, boot: string | undefined): SideFiles {
  const st = statOrThrow(arg);
  const dir = st.isDirectory() ? arg : path.dirname(arg);
  const image = st.isDirectory() ? path.join(arg, HANDOFF_MEMORY_IMG) : arg;
  const kho = path.join(dir, HANDOFF_KHO_DTB);
  const s: SideFiles = { name: arg, image, boot: boot ?? path.join(dir, HANDOFF_BOOT_DTB) };
  if (fs.existsSync(kho)) s.kho = kho;
  return s;
}

/*
 * openDiffFiles reads DIR/boot.dtb and DIR/memory.img: use the directory as is
 * when the files are there, else a temporary directory of symlinks.
 */
function openSide(f: SideFiles, tmps: string[]): DiffFiles {
  const dir = path.dirname(f.image);
  const direct = path.basename(f.image) === HANDOFF_MEMORY_IMG && path.resolve(f.boot) === path.resolve(dir, HANDOFF_BOOT_DTB);
  let where = dir;
  if (!direct) {
    statOrThrow(f.image);
    statOrThrow(f.boot);
    where = fs.mkdtempSync(path.join(os.tmpdir(), "khosim-diff-"));
    tmps.push(where);
    fs.symlinkSync(path.resolve(f.image), path.join(where, HANDOFF_MEMORY_IMG));
    fs.symlinkSync(path.resolve(f.boot), path.join(where, HANDOFF_BOOT_DTB));
  }
  try {
    return openDiffFiles(where);
  } catch (e) {
    // Name the files the user gave, not the symlinks.
    if (e instanceof InspectError && !direct) {
      const msg = e.message.split(path.join(where, HANDOFF_MEMORY_IMG)).join(f.image).split(path.join(where, HANDOFF_BOOT_DTB)).join(f.boot);
      throw new InspectError(msg);
    }
    throw e;
  }
}

/** fill @buf from @fd at @pos; zeros past the end of the file. */
function readFull(fd: number, buf: Buffer, pos: number, file: string): void {
  let done = 0;
  while (done < buf.length) {
    let n: number;
    try {
      n = fs.readSync(fd, buf, done, buf.length - done, pos + done);
    } catch (e) {
      throw new ImageError(file, `read error at offset 0x${(pos + done).toString(16)}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    if (n === 0) break;
    done += n;
  }
  if (done < buf.length) buf.fill(0, done);
}

/* Bytes of non-zero pages of @fd in @extents (the tail of the longer image). */
function dataBytes(fd: number, extents: readonly Extent[], file: string): number {
  const buf = Buffer.alloc(SCAN_BLOCK_SIZE);
  let n = 0;
  for (const e of extents) {
    for (let off = e.start; off < e.end; off += SCAN_BLOCK_SIZE) {
      const len = Math.min(SCAN_BLOCK_SIZE, e.end - off);
      const b = buf.subarray(0, len);
      readFull(fd, b, off, file);
      if (isZero(b)) continue;
      for (let p = 0; p < len; p += 4096) {
        const pg = b.subarray(p, Math.min(len, p + 4096));
        if (!isZero(pg)) n += pg.length;
      }
    }
  }
  return n;
}

function useColor(o: Opts, env: DiffEnv): boolean {
  if (o.color === "always") return true;
  if (o.color === "never") return false;
  return env.color ?? (process.stdout.isTTY === true && !process.env["NO_COLOR"]);
}

function readJsonFile(file: string, what: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new CliError(EXIT_USAGE, `${file}: cannot read ${what}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CliError(EXIT_USAGE, `${file}: not JSON: ${(e as Error).message}`);
  }
}

function successorMode(dir: string, o: Opts, env: DiffEnv): DiffOutput {
  if (!statOrThrow(dir).isDirectory()) throw new CliError(EXIT_USAGE, `${dir}: not a directory`);
  const succFile = path.join(dir, SUCCESSOR_REPORT);
  if (!fs.existsSync(succFile)) throw new CliError(EXIT_USAGE, `${succFile}: no such file (run kernel-b on the handoff first)`);
  const succ = parseSuccessorReport(readJsonFile(succFile, "the successor's report"), succFile);
  const predFile = path.join(dir, HANDOFF_REPORT);
  const pred = fs.existsSync(predFile) ? parsePredecessorReport(readJsonFile(predFile, "kernel-a's report"), predFile) : undefined;
  const view = openHandoff(dir);
  try {
    const r = diffSuccessor(dir, view, succ, pred, o.limit ?? 100);
    const text = o.json ? toJsonText(r) : renderSuccessor(r, palette(useColor(o, env)));
    return { code: r.ok ? 0 : 1, stdout: text };
  } finally {
    view.mem.close();
  }
}

function kernelMode(dir: string, kernel: KhoKernelName, o: Opts, env: DiffEnv): DiffOutput {
  if (!statOrThrow(dir).isDirectory()) throw new CliError(EXIT_USAGE, `${dir}: not a directory (--kernel NAME DIR reads a handoff directory)`);
  const view = openHandoff(dir, { kernel });
  try {
    const r = diffKernel(dir, view, o.limit ?? 100);
    const text = o.json ? toJsonText(r) : renderKernel(r, palette(useColor(o, env)));
    return { code: r.verdict === "intact" ? 0 : 1, stdout: text };
  } finally {
    view.mem.close();
  }
}

function twoWay(a: string, b: string, o: Opts, env: DiffEnv): DiffOutput {
  const fa = sideFiles(a, o.aBoot);
  const fb = sideFiles(b, o.bBoot);
  const tmps: string[] = [];
  const opened: DiffFiles[] = [];
  const fds: number[] = [];
  try {
    const oa = openSide(fa, tmps);
    opened.push(oa);
    const ob = openSide(fb, tmps);
    opened.push(ob);
    const open = (f: string): number => {
      try {
        return fs.openSync(f, "r");
      } catch (e) {
        throw new ImageError(f, `cannot open: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
      }
    };
    const fdA = open(fa.image);
    fds.push(fdA);
    const fdB = open(fb.image);
    fds.push(fdB);
    const sizes: [number, number] = [fs.fstatSync(fdA).size, fs.fstatSync(fdB).size];
    const common = Math.min(...sizes);
    // Only the written parts when both extents files are current; else the whole common part, zero pages counted as holes.
    const ea = o.readAll ? undefined : dataExtents(fa.image, fdA).extents;
    const eb = o.readAll ? undefined : dataExtents(fb.image, fdB).extents;
    const known = ea !== undefined && eb !== undefined;
    const extents = known ? unionExtents(ea, eb, common) : common > 0 ? [{ start: 0, end: common }] : [];
    const stats: CompareStats | undefined = known || o.readAll ? undefined : { dataBytes: 0 };
    const holesSkipped = !o.readAll;
    const total = extentBytes(extents);

    const progress = env.progress === false ? { update: () => undefined, stop: () => undefined } : createProgress("diff", "MiB");
    const MiB = 1 << 20;
    let changed;
    try {
      changed = comparePages(
        (side, off, buf) => (side === 0 ? readFull(fdA, buf, off, fa.image) : readFull(fdB, buf, off, fb.image)),
        extents,
        { blockSize: known ? DIFF_BLOCK_SIZE : SCAN_BLOCK_SIZE, ...(stats ? { stats } : {}), onProgress: (done) => progress.update(Math.round(done / MiB), Math.round(total / MiB)) },
      );
    } finally {
      progress.stop();
    }

    let dataPastEnd = 0;
    if (sizes[0] !== sizes[1]) {
      const longer = sizes[0] > sizes[1] ? 0 : 1;
      const own = longer === 0 ? ea : eb;
      const tail = (own ? unionExtents(own, [], sizes[longer]!) : [{ start: 0, end: sizes[longer]! }]).filter((e) => e.end > common).map((e) => ({ start: Math.max(e.start, common), end: e.end }));
      dataPastEnd = dataBytes(longer === 0 ? fdA : fdB, tail, longer === 0 ? fa.image : fb.image);
    }

    // Decoding reads only boot.dtb and memory.img: when both are byte-identical, B decodes as A does.
    const da = decodeDiffView(oa, o.kernel);
    const same = sizes[0] === sizes[1] && changed.length === 0 && Buffer.from(oa.bootDtb).equals(Buffer.from(ob.bootDtb));
    const db = same ? reuseDiffView(da, ob) : decodeDiffView(ob, o.kernel);
    const side = (f: SideFiles, v: DiffView, size: number): DiffSide => {
      const s: DiffSide = { name: f.name, view: v, imageSize: size };
      if (f.kho) {
        try {
          s.khoDtb = fs.readFileSync(f.kho);
        } catch (e) {
          throw new CliError(EXIT_USAGE, `${f.kho}: cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
        }
      }
      return s;
    };
    const d = buildDiff({
      a: side(fa, da, sizes[0]),
      b: side(fb, db, sizes[1]),
      changed,
      compared: stats ? stats.dataBytes : total,
      holesSkipped,
      dataPastEnd,
      limit: o.limit ?? 100,
    });
    const text = o.json ? toJsonText(d) : renderDiff(d, palette(useColor(o, env)));
    return { code: d.identical ? 0 : 1, stdout: text };
  } finally {
    for (const fd of fds) fs.closeSync(fd);
    for (const v of opened) v.mem.close();
    for (const t of tmps) fs.rmSync(t, { recursive: true, force: true });
  }
}

/**
 * runDiff - the whole command on @argv (without node and the script), output
 * returned rather than printed. Throws CliError (exit 2) and the classified
 * errors of {@link classify} on bad input.
 */
export async function runDiff(argv: string[], env: DiffEnv = {}): Promise<DiffOutput> {
  const cmd = diffCommand();
  cmd.parse(argv, { from: "user" });
  const o = cmd.opts<Opts>();
  const args = cmd.args;
  if (o.successor !== undefined) {
    if (args.length > 0 || o.aBoot !== undefined || o.bBoot !== undefined || o.kernel !== undefined) throw new CliError(EXIT_USAGE, "--successor DIR takes no A B, no --a-boot/--b-boot and no --kernel");
    return successorMode(o.successor, o, env);
  }
  // The version successor verifies what it restores (xxhash64, loaded asynchronously).
  if (o.kernel !== undefined) await initCsum();
  if (o.kernel !== undefined && args.length === 1) {
    if (o.aBoot !== undefined || o.bBoot !== undefined) throw new CliError(EXIT_USAGE, "--kernel NAME DIR takes no --a-boot/--b-boot");
    return kernelMode(args[0]!, o.kernel, o, env);
  }
  if (args.length !== 2) throw new CliError(EXIT_USAGE, `expected two handoffs A B (or --successor DIR, or --kernel NAME DIR), got ${args.length} argument(s); see --help`);
  return twoWay(args[0]!, args[1]!, o, env);
}

/** Bad input, not a bug: exit 2 with one line. */
export function classify(e: unknown): number | undefined {
  return e instanceof InspectError || e instanceof ImageError || e instanceof ReportFormatError ? EXIT_USAGE : undefined;
}
