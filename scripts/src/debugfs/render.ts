/*
 * The debugfs view as a listing (people), as JSON (tools, schema
 * khosim-debugfs/1) and as files under a directory (--write), so that each
 * file can be compared with the same file taken from a real machine.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { hex } from "@khosim/shared/lib";
import { writeHandoffDir } from "@khosim/shared/proc";
import type { DebugfsFile, DebugfsView } from "./view.js";

const DEBUGFS_ROOT = "/sys/kernel/debug";

const octal = (mode: number): string => "0" + mode.toString(8);

function sha256(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

function describe(f: DebugfsFile): string {
  return f.kind === "blob" ? `FDT blob at ${hex(f.phys!)} (fdt_totalsize), sha256 ${sha256(f.bytes).slice(0, 16)}` : "";
}

/** debugfsListing - @v as text: one line per file (mode, size, path), text files' content indented under it. */
export function debugfsListing(v: DebugfsView, dir: string): string {
  const lines: string[] = [];
  lines.push(`khosim debugfs view of ${dir}: kernel ${v.kernel}, predecessor ${v.predecessorKhoBooted ? "booted from a KHO handoff" : "booted without KHO"}`);
  for (const side of ["out", "in"] as const) {
    const title = side === "out" ? "the predecessor's, at kexec" : "the successor's, after boot";
    lines.push(`${DEBUGFS_ROOT}/kho/${side}/ (${title})`);
    if (side === "in" && v.inAbsent !== null) {
      lines.push(`  absent: kho_populate() refused the handoff (${v.inAbsent})`);
      continue;
    }
    const mine = v.files.filter((f) => f.path.startsWith(`kho/${side}/`));
    if (!mine.some((f) => f.path.startsWith(`kho/${side}/sub_fdts/`))) lines.push(`  ${octal(0o755)} ${"".padStart(8)}  sub_fdts/ (empty)`);
    for (const f of mine) {
      lines.push(`  ${octal(f.mode)} ${String(f.bytes.length).padStart(8)}  ${f.path.slice(`kho/${side}/`.length)}${f.kind === "blob" ? `  ${describe(f)}` : ""}`);
      if (f.kind === "text") for (const l of new TextDecoder().decode(f.bytes).split("\n").slice(0, -1)) lines.push(`      ${l}`);
      if (f.write) lines.push(`      (write: ${f.write})`);
    }
  }
  for (const w of v.warnings) lines.push(`warning: ${w}`);
  return lines.join("\n") + "\n";
}

/** debugfsJson - @v for tools: every file with its mode, size, sha256, phys (blobs) and text (text files). */
export function debugfsJson(v: DebugfsView, dir: string): string {
  return (
    JSON.stringify(
      {
        schema: "khosim-debugfs/1",
        dir,
        kernel: v.kernel,
        predecessorKhoBooted: v.predecessorKhoBooted,
        inAbsent: v.inAbsent,
        dirs: v.dirs,
        files: v.files.map((f) => ({
          path: f.path,
          mode: octal(f.mode),
          kind: f.kind,
          size: f.bytes.length,
          sha256: sha256(f.bytes),
          ...(f.phys !== undefined ? { phys: hex(f.phys) } : {}),
          ...(f.kind === "text" ? { text: new TextDecoder().decode(f.bytes) } : {}),
          ...(f.write ? { write: f.write } : {}),
        })),
        warnings: v.warnings,
      },
      null,
      2,
    ) + "\n"
  );
}

/** DebugfsWriteError - the --write target cannot be used (it exists: nothing is overwritten). */
export class DebugfsWriteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DebugfsWriteError";
  }
}

/**
 * debugfsWrite - lay @v out under @out (out/kho/out/fdt, ...: the bytes read(2)
 * returns, the modes debugfs gives), all or nothing: a temporary sibling
 * renamed into place (proc/handoff-dir.ts writeHandoffDir). An existing @out
 * is refused, never overwritten.
 */
export async function debugfsWrite(v: DebugfsView, out: string): Promise<void> {
  if (fs.existsSync(out)) throw new DebugfsWriteError(`${out}: already exists; debugfs --write never overwrites`);
  await writeHandoffDir(out, false, (tmp) => {
    for (const d of v.dirs) fs.mkdirSync(path.join(tmp, d), { recursive: true });
    for (const f of v.files) {
      const file = path.join(tmp, f.path);
      fs.writeFileSync(file, f.bytes);
      fs.chmodSync(file, f.mode);
    }
  });
}
