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
import { CHUNK_FAULTS } from "./chunks.js";
import { DATA_FAULTS } from "./data.js";
import { IMAGE_FAULTS } from "./image.js";
import { KHO_FDT_FAULTS } from "./kho-fdt.js";
import type { Fault } from "./fault.js";

export { OUTCOME_EXIT, type Outcome } from "@khosim/shared/abi";
export * from "./context.js";
export * from "./fault.js";
export * from "./store.js";

/** Every fault, in the order `corrupt --list` prints them. */
export const FAULTS: readonly Fault[] = [...KHO_FDT_FAULTS, ...CHUNK_FAULTS, ...BOOT_FAULTS, ...IMAGE_FAULTS, ...DATA_FAULTS];

/** findFault - the catalogue entry named @kind, or undefined. */
export function findFault(kind: string): Fault | undefined {
  return FAULTS.find((f) => f.kind === kind);
}

/** listFaults - one line per fault (group, kind, expected outcome and exit code, description), for --list. */
export function listFaults(): string {
  const kw = Math.max(...FAULTS.map((f) => f.kind.length));
  const gw = Math.max(...FAULTS.map((f) => f.group.length));
  const ow = Math.max(...FAULTS.map((f) => `${f.expect.outcome} (exit ${f.expect.exitCode})`.length));
  return FAULTS.map(
    (f) => `${f.group.padEnd(gw)}  ${f.kind.padEnd(kw)}  ${`${f.expect.outcome} (exit ${f.expect.exitCode})`.padEnd(ow)}  ${f.description}\n`,
  ).join("");
}

/** listFaultsMarkdown - the catalogue as the markdown table docs/faults.md carries (corrupt --list --markdown). */
export function listFaultsMarkdown(): string {
  const cell = (t: string): string => t.replace(/\|/g, "\\|");
  const rows = FAULTS.map((f) => `| ${f.group} | \`${f.kind}\` | ${f.expect.outcome} (${f.expect.exitCode}) | ${cell(f.description)} |\n`);
  return "| group | kind | kernel-b outcome (exit) | what is damaged |\n|---|---|---|---|\n" + rows.join("");
}

