/* A fault of the catalogue: what it damages and what kernel-b is expected to make of it. */
import { OUTCOME_EXIT, PAGE_SIZE, khoDataIsFolio, khoDataOrder, type KhoTestFolio, type Outcome } from "@khosim/shared/abi";
import type { KhoMemRange } from "@khosim/shared/kho";
import type { FaultContext } from "./context.js";

export type FaultGroup = "kho-fdt" | "chunk-list" | "boot-dtb" | "image" | "data" | "format-root" | "posted" | "bitmaps" | "radix" | "vmalloc" | "luo" | "memblock";

export interface FaultExpect {
  outcome: Outcome;
  exitCode: number;
  /** Substrings of kernel-b's reason (successor.json, or stderr when no report is written); memblock faults: of the damaged row's reason. */
  reasonIncludes?: string[];
  /** memblock faults: the outcome successor.json's reserveMem gives the damaged name (FaultResult.reserveMemName). */
  reserveMem?: string;
}

/** A verification failure kernel-b must list (data faults). */
export interface ExpectedFailure {
  kind: "folio" | "range" | "subtree" | "vmalloc" | "pages" | "luo";
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
  /** memblock faults: the reserve_mem name damaged. */
  reserveMemName?: string;
}

export interface Fault {
  kind: string;
  group: FaultGroup;
  description: string;
  expect: FaultExpect;
  kernelBArgs?: string[];
  /**
   * The formats whose handoffs the fault applies to, each tested in process
   * (scripts/test/corrupt-formats.test.ts). Absent: the ranges handoff of
   * scripts/test/corrupt.test.ts (the KHO FDT, boot DTB, image and data
   * faults apply to any format's handoff; chunk-list is the ranges format's).
   */
  formats?: readonly string[];
  /**
   * The scenario (repository path) whose handoff the fault needs, when the
   * default ones lack its target (vmalloc areas: scenarios/vmalloc.json);
   * tested on that handoff by scripts/test/corrupt-vmalloc.test.ts.
   */
  input?: string;
  /**
   * What the input must carry beyond a plain handoff: "reserve-mem", a
   * memblock sub-tree (a scenario with reserve_mem=). Such faults are tested
   * by scripts/test/corrupt-memblock.test.ts on a handoff that has one.
   */
  needs?: "reserve-mem";
  apply(ctx: FaultContext): FaultResult | void;
}

/** expectOutcome - an expectation of @outcome with its exit code, whose reason contains each of the given substrings. */
export const expectOutcome =
  (outcome: Outcome) =>
  (reasonIncludes: string[]): FaultExpect => ({ outcome, exitCode: OUTCOME_EXIT[outcome], reasonIncludes });
/** NO_KHO - kernel-b boots without KHO (exit 3); its reason contains each of @reasonIncludes. */
export const NO_KHO = expectOutcome("booted-without-kho");
/** UNUSABLE - kernel-b cannot boot at all (exit 2); its reason contains each of @reasonIncludes. */
export const UNUSABLE = expectOutcome("unusable-input");
/** VERIFY_FAILED - kernel-b revives KHO but verification fails (exit 1); its reason contains each of @reasonIncludes. */
export const VERIFY_FAILED = expectOutcome("verification-failed");

/** The folio size of a range (PAGE_SIZE for physical ranges). */
export function unitOf(r: KhoMemRange): number {
  return khoDataIsFolio(r.data) ? PAGE_SIZE * 2 ** khoDataOrder(r.data) : PAGE_SIZE;
}

/** Filled folios (checksum recorded) of the kho_test table. */
export function filledFolios(ctx: FaultContext): KhoTestFolio[] {
  return ctx.khoTest().folios.filter((f) => f.csum !== 0n);
}

/** Every preservation format: the `formats` of a fault that any of them can take. */
export const ALL_FORMATS = ["ranges", "posted", "bitmaps", "bitmaps-page", "radix"] as const;
