/*
 * The handoff directory: the only channel between kernel-a and kernel-b.
 * It is written all or nothing: files go to a hidden temporary sibling that is
 * renamed into place once complete, so a predecessor killed at any instant
 * leaves either no directory, or the previous complete one.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { RangeJsonStream } from "../abi/handoff.js";
import type { SuccessorBoot } from "../kho/in/successor.js";
import { interruptPoint, onInterrupt } from "./signals.js";

// The file names are the contract's (abi/handoff.ts); re-exported for the kernels' and tools' existing imports.

/** Thrown when the output location cannot be used. */
export class HandoffError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HandoffError";
  }
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/* fsync @file in libuv's thread pool; resolves to the error, if any (never rejects). */
function fsyncFileAsync(file: string): Promise<Error | undefined> {
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch (e) {
    return Promise.resolve(e as Error);
  }
  return new Promise((resolve) => {
    fs.fsync(fd, (err) => {
      fs.close(fd, () => resolve(err ?? undefined));
    });
  });
}

/** The second argument of a writeHandoffDir fill: start flushing @file (written, complete) to disk now. */
export type HandoffSync = (file: string) => void;

/**
 * checkHandoffOut - fail early, before any work, when @out exists and
 * replacing it was not asked for.
 */
export function checkHandoffOut(out: string, force: boolean): void {
  if (fs.existsSync(out) && !force) {
    throw new HandoffError(`${out}: already exists; pass --force to replace it`);
  }
}

/**
 * writeHandoffDir - create directory @out with the files @fill writes.
 * @fill receives a temporary directory on the same filesystem; it must write
 * every file there. Every file is fsynced before the renames; @fill may call
 * its second argument with a file it has finished to start that file's fsync
 * at once in the thread pool, overlapping the disk flush with the rest of
 * the fill (the wait for it is still before "after-fsync"). On success the directory is renamed to @out (an existing
 * @out is replaced only with @force); on failure nothing is left behind.
 *
 * Replacing @out takes two renames (rename(2) cannot replace a non-empty
 * directory): @out to a hidden ".NAME.old-PID-START-*" sibling, then the new
 * one to @out. A process killed between the two leaves @out absent and the
 * previous complete handoff in that sibling; the next writeHandoffDir to @out
 * moves it back first (and removes the temporary siblings of dead writers),
 * so every crash leaves the previous complete handoff or the new one.
 * Temporary names carry the writer's pid and its start time (writerTag), so
 * a live writer's are never touched, even by a process that reuses a dead
 * writer's pid.
 *
 * SIGINT and SIGTERM during the write (signals.ts): the temporary directory
 * is removed, @out is left as it was, and the process exits 130 or 143. The
 * signal is acted on between the steps of the write (after the fill, after
 * the fsyncs, before the renames); one that arrives during the renames
 * leaves the new handoff in place and still exits 130 or 143.
 *
 * Crash points (tests only): with KHOSIM_CRASH_AT=NAME the process writes
 * "khosim: crash point NAME" to stderr and sends itself SIGKILL (or the
 * signal KHOSIM_CRASH_SIGNAL names) there; see CRASH_POINTS.
 */
export async function writeHandoffDir(out: string, force: boolean, fill: (tmpDir: string, sync: HandoffSync) => void | Promise<void>): Promise<void> {
  const parent = path.dirname(path.resolve(out));
  const base = path.basename(out);
  recoverHandoffDir(parent, base);
  checkHandoffOut(out, force);
  fs.mkdirSync(parent, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(parent, `.${base}.tmp-${writerTag()}-`));
  const release = onInterrupt(() => {
    if (!fs.existsSync(tmp)) return `${out} written before the signal was seen`;
    fs.rmSync(tmp, { recursive: true, force: true });
    return `removed ${tmp}; ${out} left as it was`;
  });
  try {
    crashPoint("after-mkdtemp");
    await interruptPoint();
    fs.chmodSync(tmp, 0o755); // mkdtemp makes it 0700; the handoff is an ordinary directory
    const started = new Map<string, Promise<Error | undefined>>();
    try {
      await fill(tmp, (file) => {
        const f = path.resolve(file);
        if (!started.has(f)) started.set(f, fsyncFileAsync(f));
      });
    } finally {
      // Never leave a flush running past this function, whatever the fill did.
      await Promise.all(started.values());
    }
    crashPoint("after-fill");
    await interruptPoint();
    for (const f of fs.readdirSync(tmp)) {
      const file = path.join(tmp, f);
      const early = started.get(file);
      if (early !== undefined) {
        // Started by the fill (finished by now): its error, if any, as fsyncSync would throw it.
        const err = await early;
        if (err) throw err;
        continue;
      }
      const fd = fs.openSync(file, "r");
      fs.fsyncSync(fd);
      fs.closeSync(fd);
    }
    fsyncDir(tmp);
    crashPoint("after-fsync");
    await interruptPoint();
    // From here to the end, synchronous: a signal cannot stop it half-way.
    if (fs.existsSync(out)) {
      // Move the old one aside first: rename(2) cannot replace a non-empty directory.
      const old = fs.mkdtempSync(path.join(parent, `.${base}.old-${writerTag()}-`));
      fs.rmdirSync(old);
      crashPoint("before-old-aside");
      fs.renameSync(out, old);
      crashPoint("after-old-aside");
      fs.renameSync(tmp, out);
      crashPoint("after-rename");
      fs.rmSync(old, { recursive: true, force: true });
    } else {
      crashPoint("before-rename");
      fs.renameSync(tmp, out);
      crashPoint("after-rename");
    }
    fsyncDir(parent);
    crashPoint("after-parent-fsync");
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  } finally {
    // A signal that came during the renames is acted on here, with the new handoff in place.
    await interruptPoint();
    release();
  }
}

/** writeFileAtomic - write @data to @file via a temporary file and rename. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.tmp-${process.pid}`);
  try {
    fs.writeFileSync(tmp, data, { flag: "w" });
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

/** Stable JSON for report files: two-space indent, trailing newline. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, null, 2) + "\n";
}

/**
 * memoryFigures - what a kernel held, for its final JSON log line: peak RSS
 * minus the RSS at its first line of work (@startRssBytes; node and the
 * loaded modules), per preserved range and per touched page (@touchedPages:
 * pages written to the image, or read from it).
 */
export function memoryFigures(startRssBytes: number, ranges: number, touchedPages: number): { heldBytes: number; bytesPerRange: number | null; bytesPerTouchedPage: number | null } {
  const heldBytes = Math.max(0, process.resourceUsage().maxRSS * 1024 - startRssBytes);
  return {
    heldBytes,
    bytesPerRange: ranges > 0 ? Math.round(heldBytes / ranges) : null,
    bytesPerTouchedPage: touchedPages > 0 ? Math.round(heldBytes / touchedPages) : null,
  };
}

/** Characters buffered before a write(2) of a streamed JSON file. */
const JSON_FLUSH_CHARS = 1 << 20;

/**
 * Prints JSON.stringify(value, null, 2)'s text piece by piece into a file
 * descriptor, so that a report of a million ranges is never one string.
 * Handles what reports hold: null, booleans, finite numbers, strings,
 * arrays, plain objects, toJSON(), and RangeJsonStream, printed range by
 * range.
 */
class JsonFileWriter {
  private buf = "";

  constructor(private readonly fd: number) {}

  put(s: string): void {
    this.buf += s;
    if (this.buf.length >= JSON_FLUSH_CHARS) this.flush();
  }

  flush(): void {
    if (this.buf.length === 0) return;
    fs.writeSync(this.fd, this.buf);
    this.buf = "";
  }

  /** value at indentation @ind (the spaces before the line it starts on). */
  value(v: unknown, ind: string): void {
    if (v instanceof RangeJsonStream) return this.ranges(v, ind);
    if (v !== null && typeof v === "object" && typeof (v as { toJSON?: unknown }).toJSON === "function") {
      v = (v as { toJSON: () => unknown }).toJSON();
    }
    if (v === null || typeof v !== "object") {
      this.put(JSON.stringify(v) ?? "null");
      return;
    }
    const inner = ind + "  ";
    if (Array.isArray(v)) {
      if (v.length === 0) return this.put("[]");
      this.put("[\n");
      for (let i = 0; i < v.length; i++) {
        this.put(i === 0 ? inner : ",\n" + inner);
        const e: unknown = v[i];
        // JSON.stringify prints undefined, functions and symbols in arrays as null.
        if (e === undefined || typeof e === "function" || typeof e === "symbol") this.put("null");
        else this.value(e, inner);
      }
      this.put("\n" + ind + "]");
      return;
    }
    let first = true;
    for (const [k, e] of Object.entries(v as Record<string, unknown>)) {
      if (e === undefined || typeof e === "function" || typeof e === "symbol") continue;
      this.put((first ? "{\n" : ",\n") + inner + JSON.stringify(k) + ": ");
      first = false;
      this.value(e, inner);
    }
    this.put(first ? "{}" : "\n" + ind + "}");
  }

  /** A RangeJsonStream: the text JSON.stringify gives for its RangeJson objects, as bytes. */
  private ranges(list: RangeJsonStream, ind: string): void {
    if (list.length === 0) return this.put("[]");
    this.put("[\n");
    this.flush();
    const w = new RangeTextWriter(this.fd, ind);
    list.forEach((start, size, data) => w.range(start, size, data));
    w.flush();
    if (w.n !== list.length) throw new Error(`RangeJsonStream: ${w.n} ranges visited, ${list.length} announced`);
    this.put("\n" + ind + "]");
  }
}

/** ASCII of the 16 hex digits. */
const HEX_DIGITS = Uint8Array.from("0123456789abcdef", (ch) => ch.charCodeAt(0));

/*
 * The ranges of a RangeJsonStream as JSON text, straight into one reused
 * 1 MiB buffer. A range's text is fixed apart from its three numbers' hex
 * digits, so it is copied whole from a template made for those numbers'
 * digit counts (one native copy; consecutive ranges nearly always share the
 * counts), and then only the digits are written, in place.
 */
class RangeTextWriter {
  n = 0;
  private pos = 0;
  private readonly out = Buffer.allocUnsafe(JSON_FLUSH_CHARS);
  /* The text around the numbers: ",\n" + open (the first range starts at open's third byte), mid1, mid2, close. */
  private readonly open: Uint8Array;
  private readonly mid1: Uint8Array;
  private readonly mid2: Uint8Array;
  private readonly close: Uint8Array;
  private readonly most: number;
  /* The template for digit counts (ds, dz, dd), and where its numbers start. */
  private tpl = new Uint8Array(0);
  private ds = -1;
  private dz = -1;
  private dd = -1;
  private oz = 0;
  private od = 0;

  constructor(
    private readonly fd: number,
    ind: string,
  ) {
    const i1 = ind + "  ";
    const i2 = i1 + "  ";
    this.open = Buffer.from(",\n" + i1 + "{\n" + i2 + '"start": "0x', "latin1");
    this.mid1 = Buffer.from('",\n' + i2 + '"size": "0x', "latin1");
    this.mid2 = Buffer.from('",\n' + i2 + '"data": "0x', "latin1");
    this.close = Buffer.from('"\n' + i1 + "}", "latin1");
    this.most = this.open.length + this.mid1.length + this.mid2.length + this.close.length + 3 * 16;
  }

  range(start: number, size: number, data: number): void {
    if (!isHexable(start) || !isHexable(size) || !isHexable(data)) return this.rangeSlow(start, size, data);
    if (this.pos + this.most > this.out.length) this.flush();
    const ds = hexDigitCount(start);
    const dz = hexDigitCount(size);
    const dd = hexDigitCount(data);
    if (ds !== this.ds || dz !== this.dz || dd !== this.dd) this.template(ds, dz, dd);
    const out = this.out;
    // The first range has no ",\n" before it.
    let pos = this.pos;
    if (this.n++ === 0) {
      out.set(this.tpl.subarray(2), pos);
      pos -= 2;
    } else {
      out.set(this.tpl, pos);
    }
    const o = this.open.length;
    putHex(out, pos + o, ds, start);
    putHex(out, pos + this.oz, dz, size);
    putHex(out, pos + this.od, dd, data);
    this.pos = pos + this.tpl.length;
  }

  /* Make the template for digit counts @ds, @dz, @dd (its digits are overwritten per range). */
  private template(ds: number, dz: number, dd: number): void {
    const parts = [this.open, new Uint8Array(ds), this.mid1, new Uint8Array(dz), this.mid2, new Uint8Array(dd), this.close];
    const t = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      t.set(p, at);
      at += p.length;
    }
    this.tpl = t;
    this.ds = ds;
    this.dz = dz;
    this.dd = dd;
    this.oz = this.open.length + ds + this.mid1.length;
    this.od = this.oz + dz + this.mid2.length;
  }

  /* A range with a number that is not a safe non-negative integer: its text as toString(16) words it. */
  private rangeSlow(start: number, size: number, data: number): void {
    const text = (this.n++ === 0 ? Buffer.from(this.open).subarray(2).toString("latin1") : Buffer.from(this.open).toString("latin1")) +
      start.toString(16) + Buffer.from(this.mid1).toString("latin1") + size.toString(16) + Buffer.from(this.mid2).toString("latin1") + data.toString(16) + Buffer.from(this.close).toString("latin1");
    if (this.pos + text.length > this.out.length) this.flush();
    if (text.length > this.out.length) fs.writeSync(this.fd, text, null, "latin1");
    else this.pos += this.out.write(text, this.pos, "latin1");
  }

  flush(): void {
    if (this.pos > 0) fs.writeSync(this.fd, this.out, 0, this.pos);
    this.pos = 0;
  }
}

/* True when @v prints as plain hex digits through putHex (a safe non-negative integer). */
function isHexable(v: number): boolean {
  return Number.isSafeInteger(v) && v >= 0;
}

/* Number of hex digits of @v (isHexable) as toString(16) prints it: at least one. */
function hexDigitCount(v: number): number {
  if (v < 2 ** 32) return v === 0 ? 1 : 8 - (Math.clz32(v) >>> 2);
  return 16 - (Math.clz32(Math.floor(v / 2 ** 32)) >>> 2);
}

/* The @d hex digits of @v (isHexable, d = hexDigitCount(v)) into @out at @pos. */
function putHex(out: Uint8Array, pos: number, d: number, v: number): void {
  let lo = v >>> 0;
  let k = pos + d;
  if (d > 8) {
    for (const end = k - 8; k > end; ) {
      out[--k] = HEX_DIGITS[lo & 15]!;
      lo >>>= 4;
    }
    lo = Math.floor(v / 2 ** 32);
  }
  while (k > pos) {
    out[--k] = HEX_DIGITS[lo & 15]!;
    lo >>>= 4;
  }
}

/**
 * writeJsonFile - write @value to @file (created or truncated) as toJson()
 * would, byte for byte, but streamed: at most about a MiB of text is held
 * at a time, and a RangeJsonStream is printed range by range. This is how
 * the kernels write report.json and successor.json.
 */
export function writeJsonFile(file: string, value: unknown): void {
  const fd = fs.openSync(file, "w");
  try {
    const w = new JsonFileWriter(fd);
    w.value(value, "");
    w.put("\n");
    w.flush();
  } finally {
    fs.closeSync(fd);
  }
}

/** writeJsonFileAtomic - writeJsonFile() through a temporary file and a rename, as writeFileAtomic() does. */
export function writeJsonFileAtomic(file: string, value: unknown): void {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.tmp-${process.pid}`);
  try {
    writeJsonFile(tmp, value);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * The crash points of a handoff write, in the order a run reaches them.
 * "mid-image" is reached by the writer of memory.img (kernel-a) halfway
 * through the image; the others are in writeHandoffDir. "before-old-aside"
 * and "after-old-aside" are reached only when an existing handoff is
 * replaced, "before-rename" only when none is.
 */
export const CRASH_POINTS = [
  "after-mkdtemp",
  "mid-image",
  "after-fill",
  "after-fsync",
  "before-old-aside",
  "after-old-aside",
  "before-rename",
  "after-rename",
  "after-parent-fsync",
] as const;
export type CrashPointName = (typeof CRASH_POINTS)[number];

/** The environment variable that selects a crash point; normal runs never set it. */
export const CRASH_ENV = "KHOSIM_CRASH_AT";
/** The signal a crash point sends (SIGKILL unless this names SIGINT or SIGTERM). */
export const CRASH_SIGNAL_ENV = "KHOSIM_CRASH_SIGNAL";

/**
 * crashPoint - when KHOSIM_CRASH_AT is @name (and @when holds), say so on
 * stderr and send this process SIGKILL: it dies at once, no cleanup, no exit
 * handlers, as a power cut or an OOM kill would. With KHOSIM_CRASH_SIGNAL
 * SIGINT or SIGTERM it sends that instead, as a user or a service manager
 * would, and goes on until the signal is acted on. A no-op otherwise. Each
 * point fires once per process.
 */
export function crashPoint(name: CrashPointName, when = true): void {
  if (!when || process.env[CRASH_ENV] !== name || crashed.has(name)) return;
  crashed.add(name);
  fs.writeSync(2, `khosim: crash point ${name}\n`);
  const sig = process.env[CRASH_SIGNAL_ENV];
  process.kill(process.pid, sig === "SIGINT" || sig === "SIGTERM" ? sig : "SIGKILL");
}
const crashed = new Set<CrashPointName>();

/*
 * This process's start time in clock ticks after boot (/proc/PID/stat field
 * 22), undefined where /proc cannot tell. With the pid it names one process
 * for good: a later process that reuses the pid starts later.
 */
function startTicks(pid: number | "self"): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "latin1");
    // Fields after the command name (which may hold spaces) in parentheses: field 3 is index 0.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const n = Number(f[22 - 3]);
    return Number.isSafeInteger(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/** writerTag - "PID-START" naming this process in temporary names (START 0 where /proc cannot tell). */
export function writerTag(): string {
  return `${process.pid}-${startTicks("self") ?? 0}`;
}

/*
 * writerAlive - whether the writer @pid that started at @start (undefined:
 * a name without a start time) may still be running. When in doubt, alive:
 * a live writer's files are never touched.
 */
function writerAlive(pid: number, start: number | undefined): boolean {
  if (!pidAlive(pid)) return false;
  if (start === undefined || start === 0) return true;
  const now = startTicks(pid);
  return now === undefined || now === start;
}

/** pidAlive - whether process @pid exists (EPERM: it does, under another user). */
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * recoverHandoffDir - undo what a writer of @parent/@base killed mid-way left:
 * when @base is absent and a dead writer moved the previous handoff aside,
 * move it back; remove the temporary and set-aside siblings of dead writers.
 * Siblings of a live writer (its pid and start time in the name; the pid
 * alone in names from before start times) are left alone, and so is every
 * name that is not of that form. Returns the names removed or moved back.
 */
export function recoverHandoffDir(parent: string, base: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(parent);
  } catch {
    return []; // no parent yet: nothing to recover
  }
  const out = path.join(parent, base);
  const prefix = `.${base}.`;
  const done: string[] = [];
  for (const n of names.sort()) {
    if (!n.startsWith(prefix)) continue;
    // tmp-PID-START-XXXXXX, or tmp-PID-XXXXXX as written before start times (mkdtemp's suffix has no '-').
    const m = /^(tmp|old)-(\d+)-(?:(\d+)-)?[^-]*$/.exec(n.slice(prefix.length));
    if (!m || writerAlive(Number(m[2]), m[3] === undefined ? undefined : Number(m[3]))) continue;
    const p = path.join(parent, n);
    if (m[1] === "old" && !fs.existsSync(out)) fs.renameSync(p, out);
    else fs.rmSync(p, { recursive: true, force: true });
    done.push(n);
  }
  return done;
}

/**
 * writeSuccessorJson - write @sb's report to @file as kernel-b does,
 * atomically: its ranges streamed from the walk's columns (a --kernel
 * successor's report lists its own reserve calls instead, as hex strings).
 */
export function writeSuccessorJson(file: string, sb: SuccessorBoot): void {
  writeJsonFileAtomic(file, sb.report.kernel ? sb.report : { ...sb.report, ranges: sb.rangeStream });
}
