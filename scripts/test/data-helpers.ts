/*
 * Handoff directories for the data tools' tests (diff, corrupt, banks),
 * made without spawning and without reading whole sparse images:
 *  - writeHandoffInProcess writes the files kernel-a writes, with kernel-a's
 *    own code (fault-helpers.ts kernelAInProcess and writeMemHandoff;
 *    diff.test.ts checks them byte for byte against a real kernel-a run of
 *    the same scenario and seed);
 *  - copies and in-place patches keep memory.img's extents file current
 *    (re-recorded with the patched pages), so readers look at the written
 *    pages only; a whole 128 MiB sparse read costs ~0.3-0.7 s of CPU here.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { HANDOFF_MEMORY_IMG, HANDOFF_REPORT, PAGE_SIZE } from "@khosim/shared/abi";
import { type PredecessorReport } from "@khosim/shared/abi/handoff-json";
import { type KhoKernelName } from "@khosim/shared/kho";
import { baseImageExtents, writeImageExtents, type ImageExtent } from "@khosim/shared/proc";
import { DEFAULT_SCENARIO, kernelAInProcess, writeMemHandoff } from "./fault-helpers.js";
import { copyHandoff, patchFile, readJson, type Handoff } from "./handoff-helpers.js";

export { DEFAULT_SCENARIO };

/**
 * writeHandoffInProcess - what `kernel-a --out @dir --scenario @scenario
 * [--seed @seed] [--format @format | --kernel @kernel]` writes (memory.img, its extents file,
 * boot.dtb, kho.dtb, report.json): kernelAInProcess's handoff written by
 * writeMemHandoff (@scenario DEFAULT_SCENARIO: no --scenario). @dir must not
 * exist. The result has no process output (a.stdout/stderr are empty).
 */
export async function writeHandoffInProcess(dir: string, scenario: string | object, seed?: number, format?: string, kernel?: KhoKernelName): Promise<Handoff> {
  if (fs.existsSync(dir)) throw new Error(`${dir}: already exists`);
  const { handoff, report } = await kernelAInProcess(scenario === DEFAULT_SCENARIO ? undefined : scenario, seed, format, undefined, kernel);
  writeMemHandoff(handoff, report, dir);
  return { dir, a: { status: 0, stdout: "", stderr: "" }, report: readJson<PredecessorReport>(path.join(dir, HANDOFF_REPORT)) };
}

/** The extents @image's extents file records, which must be current. */
export function currentExtents(image: string): ImageExtent[] {
  const x = baseImageExtents(image);
  if (!x) throw new Error(`${image}: no current extents file`);
  return x;
}

/**
 * recordExtents - (re)write @image's extents file for data in @extents
 * (byte ranges, widened to pages by the reader's rules: the file must hold
 * no data outside them, or readers find it stale by its block count).
 */
export function recordExtents(image: string, extents: readonly ImageExtent[]): void {
  const pages = extents.map((e) => ({ start: Math.floor(e.start / PAGE_SIZE) * PAGE_SIZE, end: Math.min(fs.statSync(image).size, Math.ceil(e.end / PAGE_SIZE) * PAGE_SIZE) }));
  if (!writeImageExtents(image, { base: 0, touchedRuns: () => [] }, pages.filter((e) => e.end > e.start))) throw new Error(`${image}: extents file not written`);
}

/** copyHandoffSparse - copyHandoff, with the copy's extents file made current for it. */
export function copyHandoffSparse(src: string, dst: string): string {
  copyHandoff(src, dst);
  recordExtents(path.join(dst, HANDOFF_MEMORY_IMG), currentExtents(path.join(src, HANDOFF_MEMORY_IMG)));
  return dst;
}

/** patchImage - patchFile on @dir's memory.img, with the patched page(s) recorded in its extents file. */
export function patchImage(dir: string, offset: number, bytes: Uint8Array): void {
  const image = path.join(dir, HANDOFF_MEMORY_IMG);
  const before = currentExtents(image);
  patchFile(image, offset, bytes);
  recordExtents(image, [...before, { start: offset, end: offset + bytes.length }]);
}
