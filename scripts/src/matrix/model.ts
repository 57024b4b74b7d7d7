/*
 * The kernel-version matrix as data: one cell per (workload, predecessor,
 * successor), built from what kernel-b wrote under --kernel (successor.json's
 * `kernel` object, docs/kernel-versions.md) or from how a run failed, and the
 * one command line that reproduces it. Renderers (markdown.ts, html.ts) and
 * the --json file read only these values.
 */
import { HandoffJsonError, KERNEL_VERDICTS, KernelReportSchema, parseHandoffJson, type KernelReportJson, type KernelVerdict } from "@khosim/shared/abi/handoff-json";

/** What a successor of one kernel version does with a handoff (successor.json kernel.verdict). */
export type Verdict = KernelVerdict;

/** Every verdict, in legend order (best first). */
export const VERDICTS: readonly Verdict[] = KERNEL_VERDICTS;

/** A cell whose run failed (a crash, exit 70, no usable successor.json): not a verdict but a failure of the matrix. */
export const RUN_FAILED = "run-failed";
export type CellClass = Verdict | typeof RUN_FAILED;

/** The legend: a cell class, its name and what it means. */
export const CELL_CLASSES: readonly { cls: CellClass; name: string; meaning: string }[] = [
  { cls: "intact", name: "revived intact", meaning: "every preserved page reserved at its intended size; nothing read outside the metadata" },
  { cls: "refused", name: "refused (boots without KHO)", meaning: "kho_populate() refused the handoff: a cold boot, nothing of the old kernel kept" },
  { cls: "pages-lost", name: "revived, pages lost", meaning: "revived, but preserved pages were not reserved: the page allocator may hand them out and overwrite them" },
  { cls: "read-out-of-bounds", name: "read out of bounds", meaning: "the successor read bytes past a metadata structure (and acted on them)" },
  { cls: "would-corrupt", name: "would corrupt", meaning: "the successor would write or reserve what it must not: pfns outside RAM, wrong-size reserves, spurious reservations, a folio restored twice" },
  { cls: RUN_FAILED, name: "run failed", meaning: "a process of the matrix crashed or exited 70: a khosim bug, not a kernel behaviour" },
];

/** successor.json's `kernel` object (kernel-b --kernel; abi/handoff-json.ts KernelReportSchema). */
export type KernelFacts = KernelReportJson;

/** The argv of the two processes of a cell (after `npm run kernel-a --` / `npm run kernel-b --`). */
export interface CellArgs {
  a: string[];
  b: string[];
}

export interface MatrixCell {
  workload: string;
  predecessor: string;
  successor: string;
  /** The verdict, or RUN_FAILED. */
  cls: CellClass;
  /** kernel-b's outcome and exit code (null when it did not get that far). */
  outcome: string | null;
  exitCode: number | null;
  /** kernel-b's reason line (refusals, unusable input), null when none. */
  reason: string | null;
  kernel: KernelFacts | null;
  /** Why the run failed (RUN_FAILED only). */
  error: string | null;
  /** The command line that reproduces this cell. */
  command: string;
}

export interface MatrixWorkload {
  name: string;
  /** The scenario file, relative to the repository root when inside it. */
  scenario: string;
  description: string;
}

export interface MatrixResult {
  kernels: { predecessors: string[]; successors: string[] };
  workloads: MatrixWorkload[];
  /** Workload-major, then predecessor, then successor, in the orders above. */
  cells: MatrixCell[];
}

/** A successor.json or its `kernel` object is not what kernel-b --kernel writes. */
export class MatrixReadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MatrixReadError";
  }
}

/* One shell word: left bare when it is made of safe characters, else single-quoted. */
function shellWord(s: string): string {
  return /^[A-Za-z0-9_./,:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * cellCommand - the one line that reproduces a cell: kernel-a, then kernel-b,
 * each through its npm script, with exactly the arguments the matrix ran.
 */
export function cellCommand(args: CellArgs): string {
  const words = (xs: readonly string[]) => xs.map(shellWord).join(" ");
  return `npm run kernel-a -- ${words(args.a)} && npm run kernel-b -- ${words(args.b)}`;
}

/**
 * parseKernelFacts - successor.json's `kernel` object, checked against its
 * schema. @where names the file in the error. Throws MatrixReadError.
 */
export function parseKernelFacts(v: unknown, where: string): KernelFacts {
  if (typeof v !== "object" || v === null) throw new MatrixReadError(`${where}: kernel: missing or not an object (was kernel-b run with --kernel?)`);
  try {
    return parseHandoffJson(KernelReportSchema, v, `${where}: kernel`);
  } catch (e) {
    if (e instanceof HandoffJsonError) throw new MatrixReadError(e.message);
    throw e;
  }
}

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;
const at = (first: string | null): string => (first === null ? "" : `, first ${first}`);

/* The facts of @k that are not nothing, one phrase each, most serious first. */
function facts(k: KernelFacts): string[] {
  const f: string[] = [];
  if (k.outsideRamPfns > 0) f.push(`${plural(k.outsideRamPfns, "pfn")} outside RAM touched${at(k.firstOutsideRam)}`);
  const w = k.firstWrongSize;
  if (k.wrongSizeReserves > 0) f.push(`${plural(k.wrongSizeReserves, "wrong-size reserve")}${w === null ? "" : `, first ${w.addr}: ${w.reserved} bytes for ${w.intended}`}`);
  if (k.spuriousPages > 0) f.push(`${plural(k.spuriousPages, "spurious page")} reserved${at(k.firstSpurious)}`);
  if (k.doubleRestores > 0) f.push(`${plural(k.doubleRestores, "folio")} restored twice`);
  if (k.oobReadBytes > 0) f.push(`${k.oobReadBytes} bytes read out of bounds${at(k.firstOobRead)}`);
  if (k.lostPages > 0) f.push(`${plural(k.lostPages, "preserved page")} lost${at(k.firstLost)}`);
  return f;
}

/** cellText - the short text of a cell, as the table prints it. */
export function cellText(c: MatrixCell): string {
  const k = c.kernel;
  if (c.cls === RUN_FAILED || k === null) return `run failed (${c.error ?? "no report"})`;
  switch (k.verdict) {
    case "intact":
      return "revived intact";
    case "refused":
      return "refused (boots without KHO)";
    case "pages-lost":
      return `revived, ${plural(k.lostPages, "page")} lost${k.firstLost === null ? "" : ` (first ${k.firstLost})`}`;
    case "read-out-of-bounds":
      return `read out of bounds (${k.oobReadBytes} bytes${at(k.firstOobRead)})`;
    case "would-corrupt": {
      const what = facts(k).filter((s) => !s.includes("read out of bounds") && !s.includes("lost"));
      return `would corrupt (${what[0] ?? k.hazards[0] ?? "see detail"})`;
    }
  }
}

/**
 * cellDetail - everything known about a cell in one paragraph: outcome, exit
 * code, reason, every non-zero fact and the hazards kernel-b named.
 */
export function cellDetail(c: MatrixCell): string {
  const parts: string[] = [`${c.predecessor} → ${c.successor} on ${c.workload}`];
  if (c.cls === RUN_FAILED) parts.push(`run failed: ${c.error ?? "no report"}`);
  if (c.outcome !== null) parts.push(`kernel-b outcome ${c.outcome} (exit ${c.exitCode})`);
  if (c.reason !== null) parts.push(c.reason);
  if (c.kernel) {
    for (const f of facts(c.kernel)) parts.push(f);
    // kernel-b's reason often repeats a hazard line: say each once.
    for (const h of c.kernel.hazards) if (!c.reason?.includes(h)) parts.push(h);
  }
  return parts.join("; ");
}

/** cellAt - the cell of (@workload, @pred, @succ) in @r, or undefined. */
export function cellAt(r: MatrixResult, workload: string, pred: string, succ: string): MatrixCell | undefined {
  return r.cells.find((c) => c.workload === workload && c.predecessor === pred && c.successor === succ);
}

/** matrixFailed - true when some run of @r failed (the command exits 1). */
export function matrixFailed(r: MatrixResult): boolean {
  return r.cells.some((c) => c.cls === RUN_FAILED);
}

export const MATRIX_JSON_SCHEMA = "khosim-matrix/1";

/** matrixJson - the --json file: every cell with its fields, text, detail and command (stable key order). */
export function matrixJson(r: MatrixResult): string {
  const doc = {
    schema: MATRIX_JSON_SCHEMA,
    kernels: r.kernels,
    workloads: r.workloads,
    cells: r.cells.map((c) => ({
      workload: c.workload,
      predecessor: c.predecessor,
      successor: c.successor,
      verdict: c.cls,
      text: cellText(c),
      detail: cellDetail(c),
      outcome: c.outcome,
      exitCode: c.exitCode,
      reason: c.reason,
      kernel: c.kernel,
      error: c.error,
      command: c.command,
    })),
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}
