/*
 * The handoff directory: the only channel between kernel-a and kernel-b.
 * It is written all or nothing: files go to a hidden temporary sibling that is
 * renamed into place once complete, so a predecessor killed at any instant
 * leaves either no directory, or the previous complete one.
 */
import * as fs from "node:fs";
import * as path from "node:path";

// The file names are the contract's (abi/handoff.ts); re-exported for the kernels' and tools' existing imports.
export { HANDOFF_MEMORY_IMG, HANDOFF_BOOT_DTB, HANDOFF_KHO_DTB, HANDOFF_REPORT, SUCCESSOR_REPORT } from "../abi/handoff.js";

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
 * every file there. On success the directory is renamed to @out (an existing
 * @out is replaced only with @force); on failure nothing is left behind.
 */
export function writeHandoffDir(out: string, force: boolean, fill: (tmpDir: string) => void): void {
  checkHandoffOut(out, force);
  const parent = path.dirname(path.resolve(out));
  fs.mkdirSync(parent, { recursive: true });
  const base = path.basename(out);
  const tmp = fs.mkdtempSync(path.join(parent, `.${base}.tmp-`));
  try {
    fs.chmodSync(tmp, 0o755); // mkdtemp makes it 0700; the handoff is an ordinary directory
    fill(tmp);
    for (const f of fs.readdirSync(tmp)) {
      const fd = fs.openSync(path.join(tmp, f), "r");
      fs.fsyncSync(fd);
      fs.closeSync(fd);
    }
    fsyncDir(tmp);
    if (fs.existsSync(out)) {
      // Move the old one aside first: rename(2) cannot replace a non-empty directory.
      const old = fs.mkdtempSync(path.join(parent, `.${base}.old-`));
      fs.rmdirSync(old);
      fs.renameSync(out, old);
      fs.renameSync(tmp, out);
      fs.rmSync(old, { recursive: true, force: true });
    } else {
      fs.renameSync(tmp, out);
    }
    fsyncDir(parent);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
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
