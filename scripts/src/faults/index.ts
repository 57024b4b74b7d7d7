/*
 * The fault catalogue of `npm run corrupt`: each entry damages a handoff in
 * ONE named way and says what kernel-b is expected to make of it. Faults find
 * their targets in the handoff itself, as kernel-b would (context.ts); a
 * directory is edited in place and stays sparse, an in-memory handoff is
 * damaged copy-on-write (store.ts).
 *
 * --seed picks among the eligible targets (which chunk, range, folio, byte,
 * bit); the same seed on the same input gives the same bytes.
 */
import { BOOT_FAULTS } from "./boot.js";
import { BANK_FAULTS } from "./banks.js";
import { CHUNK_FAULTS } from "./chunks.js";
import { DATA_FAULTS } from "./data.js";
import { IMAGE_FAULTS } from "./image.js";
import { KHO_FDT_FAULTS } from "./kho-fdt.js";
import { FORMAT_FAULTS } from "./formats.js";
import { VMALLOC_FAULTS } from "./vmalloc.js";
import { LUO_FAULTS } from "./luo.js";
import { MEMBLOCK_FAULTS } from "./memblock.js";
import { RUN_FAULTS } from "./runs.js";
import { FaultContext } from "./context.js";
import type { FaultDetail } from "./context.js";
import type { ExpectedFailure, Fault, FaultExpect } from "./fault.js";
import type { HandoffStore } from "./store.js";

export * from "./context.js";
export * from "./fault.js";
export * from "./store.js";
export { RUNS_INPUT } from "./runs.js";

/** Every fault, in the order `corrupt --list` prints them. */
export const FAULTS: readonly Fault[] = [...KHO_FDT_FAULTS, ...CHUNK_FAULTS, ...BOOT_FAULTS, ...BANK_FAULTS, ...IMAGE_FAULTS, ...DATA_FAULTS, ...FORMAT_FAULTS, ...VMALLOC_FAULTS, ...LUO_FAULTS, ...MEMBLOCK_FAULTS, ...RUN_FAULTS];

/** formatsOf - the formats @f is tested on (the ranges handoff when it names none). */
export function formatsOf(f: Fault): readonly string[] {
  return f.formats ?? ["ranges"];
}

/** findFault - the catalogue entry named @kind, or undefined. */
export function findFault(kind: string): Fault | undefined {
  return FAULTS.find((f) => f.kind === kind);
}

/** listFaults - one line per fault (group, kind, expected outcome and exit code, description), for --list. */
export function listFaults(): string {
  const kw = Math.max(...FAULTS.map((f) => f.kind.length));
  const gw = Math.max(...FAULTS.map((f) => f.group.length));
  const ow = Math.max(...FAULTS.map((f) => `${f.expect.outcome} (exit ${f.expect.exitCode})`.length));
  const fw = Math.max(...FAULTS.map((f) => formatsOf(f).join(",").length));
  return FAULTS.map(
    (f) => `${f.group.padEnd(gw)}  ${f.kind.padEnd(kw)}  ${formatsOf(f).join(",").padEnd(fw)}  ${`${f.expect.outcome} (exit ${f.expect.exitCode})`.padEnd(ow)}  ${f.description}\n`,
  ).join("");
}

/** listFaultsMarkdown - the catalogue as the markdown table docs/faults.md carries (corrupt --list --markdown). */
export function listFaultsMarkdown(): string {
  const cell = (t: string): string => t.replace(/\|/g, "\\|");
  const rows = FAULTS.map((f) => `| ${f.group} | \`${f.kind}\` | ${formatsOf(f).join(", ")} | ${f.expect.outcome} (${f.expect.exitCode}) | ${cell(f.description)} |\n`);
  return "| group | kind | formats | kernel-b outcome (exit) | what is damaged |\n|---|---|---|---|---|\n" + rows.join("");
}

/** What applying a fault changed, and what kernel-b must then report beyond the fault's own expectation. */
export interface AppliedFault {
  /** Every byte changed (fault.json's details). */
  details: FaultDetail[];
  /** The fault's reason substrings plus this copy's (addresses, indices, values). */
  reasonIncludes: string[];
  /** Options kernel-b must be run with. */
  kernelBArgs: string[];
  /** A failure successor.json must list (verification-failed faults). */
  failure?: ExpectedFailure;
  /** memblock faults: the reserve_mem name damaged. */
  reserveMemName?: string;
}

/**
 * applyFault - damage @target (a handoff directory or an in-memory handoff)
 * in @fault's way, @seed picking where there is a choice; kho.dtb follows the
 * KHO FDT in the image. What corrupt writes to fault.json and what the tests
 * check come from this one call.
 */
export function applyFault(target: string | HandoffStore, fault: Fault, seed: number): AppliedFault {
  const ctx = new FaultContext(target, fault.kind, seed);
  let res;
  try {
    res = fault.apply(ctx) ?? {};
    ctx.syncKhoDtb();
  } finally {
    ctx.close();
  }
  return {
    details: ctx.details,
    reasonIncludes: [...(fault.expect.reasonIncludes ?? []), ...(res.reasonIncludes ?? [])],
    kernelBArgs: res.kernelBArgs ?? fault.kernelBArgs ?? [],
    ...(res.failure ? { failure: res.failure } : {}),
    ...(res.reserveMemName !== undefined ? { reserveMemName: res.reserveMemName } : {}),
  };
}

/** fault.json, written by corrupt beside the damaged copy. */
export interface FaultReport {
  tool: "khosim corrupt";
  kind: string;
  group: string;
  description: string;
  input: string;
  seed: number;
  expect: FaultExpect & { reasonIncludes: string[]; failure?: ExpectedFailure };
  kernelBArgs: string[];
  details: FaultDetail[];
}
