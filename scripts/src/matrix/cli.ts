/*
 * npm run matrix as a library: matrixCommand() (options and help),
 * parseMatrixArgs() (argv -> plan, usage errors as CliError exit 2) and
 * runMatrixCommand() (plan -> runs -> table on stdout, --json and --html
 * files). scripts/src/matrix.ts only starts it. Exit codes: see the help.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Command } from "commander";
import { KHO_KERNEL_NAMES } from "@khosim/shared/kho";
import { CliError, EXIT_USAGE, intOption, newCommand, withExitCodes } from "@khosim/shared/proc";
import { listOption } from "../cli-common.js";
import { ROOT } from "../run.js";
import { matrixHtml } from "./html.js";
import { matrixMarkdown } from "./markdown.js";
import { RUN_FAILED, cellText, matrixFailed, matrixJson, type MatrixCell } from "./model.js";
import { rootRelative, runMatrix, type MatrixPlan } from "./run.js";

export const MATRIX_PROG = "matrix";

/** Kernel versions in matrix order (oldest first): the names kernel-a and kernel-b --kernel take. */
export const MATRIX_KERNELS: readonly string[] = KHO_KERNEL_NAMES;

/** The bundled workloads: name -> scenario file (relative to the repository root), in table order. */
export const MATRIX_WORKLOADS: readonly { name: string; file: string }[] = [
  { name: "default", file: "scenarios/default.json" },
  { name: "orders-19-20", file: "scenarios/matrix-orders-19-20.json" },
  { name: "many-orders", file: "scenarios/matrix-many-orders.json" },
];

export const MATRIX_DEFAULT_OUT = "out/matrix";

export function matrixCommand(): Command {
  const cmd = newCommand(
    MATRIX_PROG,
    "Every predecessor kernel version × every successor kernel version on each workload, from real two-process runs (kernel-a --kernel P, then kernel-b --kernel S on its handoff).\n" +
      "Prints a markdown table per workload and, under it, the command that reproduces each cell. Verdicts: docs/kernel-versions.md, docs/tools.md.",
  )
    .option("--kernels <names>", `versions to run on both sides, comma-separated (default: all: ${MATRIX_KERNELS.join(",")})`, listOption)
    .option("--workloads <names>", `workloads, comma-separated: ${MATRIX_WORKLOADS.map((w) => w.name).join(", ")} (default: all), or scenario files (*.json)`, listOption)
    .option("--json <file>", "also write every cell (verdict, facts, text, detail, command) as JSON (schema khosim-matrix/1)")
    .option("--html <file>", "also write the matrix as one self-contained HTML/SVG picture")
    .option("--out <dir>", `where the handoffs go: DIR/WORKLOAD/PREDECESSOR, kept for inspection`, MATRIX_DEFAULT_OUT)
    .option("--jobs <n>", "(workload, predecessor) chains run at the same time", intOption("--jobs", 1, 64), 2)
    .option("--timeout-s <s>", "kill a kernel process after S seconds (the cell then says so)", intOption("--timeout-s", 1, 86_400), 600);
  return withExitCodes(cmd, [
    [0, "the matrix was produced (hazards are results, not errors)"],
    [1, "some run failed (a crash, exit 70, a timeout, no usable successor.json): its cell says why"],
    [2, "usage error: unknown kernel version or workload, an unreadable scenario file, a bad option"],
  ]);
}

interface Opts {
  kernels?: string[];
  workloads?: string[];
  json?: string;
  html?: string;
  out: string;
  jobs: number;
  timeoutS: number;
}

export interface MatrixArgs {
  plan: MatrixPlan;
  json?: string;
  html?: string;
}

/* The scenario's description (one line), or a usage error naming the file. */
function describe(file: string): string {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new CliError(EXIT_USAGE, `--workloads: ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const d = typeof json === "object" && json !== null ? (json as Record<string, unknown>)["description"] : undefined;
  return typeof d === "string" ? d.replace(/\s+/g, " ").trim() : path.basename(file, ".json");
}

function outFile(v: string | undefined, what: string, ext: RegExp): string | undefined {
  if (v === undefined) return undefined;
  if (!ext.test(v)) throw new CliError(EXIT_USAGE, `${what}: ${JSON.stringify(v)} should end in ${ext.source.replace(/\\|\$|\(|\)|\?/g, "")}`);
  return path.resolve(v);
}

/** parseMatrixArgs - @argv (after the script name) as a plan. Throws CliError (exit 2) on a usage error. */
export function parseMatrixArgs(argv: string[]): MatrixArgs {
  const cmd = matrixCommand();
  cmd.parse(argv, { from: "user" });
  const o = cmd.opts<Opts>();
  const kernels = o.kernels ?? [...MATRIX_KERNELS];
  if (kernels.length === 0) throw new CliError(EXIT_USAGE, "--kernels: no version named");
  for (const k of kernels) if (!MATRIX_KERNELS.includes(k)) throw new CliError(EXIT_USAGE, `--kernels: ${JSON.stringify(k)} is not one of ${MATRIX_KERNELS.join(", ")}`);
  if (new Set(kernels).size !== kernels.length) throw new CliError(EXIT_USAGE, "--kernels: a version is named twice");
  const names = o.workloads ?? MATRIX_WORKLOADS.map((w) => w.name);
  if (names.length === 0) throw new CliError(EXIT_USAGE, "--workloads: no workload named");
  const workloads = names.map((n) => {
    const known = MATRIX_WORKLOADS.find((w) => w.name === n);
    if (!known && !n.endsWith(".json")) throw new CliError(EXIT_USAGE, `--workloads: ${JSON.stringify(n)} is not one of ${MATRIX_WORKLOADS.map((w) => w.name).join(", ")} (or a scenario file *.json)`);
    const file = known ? path.join(ROOT, known.file) : path.resolve(n);
    const name = known ? known.name : path.basename(n, ".json");
    if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new CliError(EXIT_USAGE, `--workloads: ${JSON.stringify(n)}: the file name may hold only letters, digits, '.', '_' and '-'`);
    return { name, file, scenario: rootRelative(file), description: describe(file) };
  });
  if (new Set(workloads.map((w) => w.name)).size !== workloads.length) throw new CliError(EXIT_USAGE, "--workloads: two workloads have the same name");
  const r: MatrixArgs = { plan: { predecessors: kernels, successors: kernels, workloads, out: path.resolve(o.out), jobs: o.jobs, timeoutS: o.timeoutS } };
  const json = outFile(o.json, "--json", /\.json$/);
  const html = outFile(o.html, "--html", /\.html?$/);
  if (json) r.json = json;
  if (html) r.html = html;
  return r;
}

/* Write @text to @file all or nothing. */
function writeAtomic(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

export interface MatrixOutput {
  code: number;
  stdout: string;
}

/**
 * runMatrixCommand - the whole command on @argv: run the matrix, return the
 * table (and write --json / --html). @progress is told of each cell.
 */
export async function runMatrixCommand(argv: string[], progress?: (line: string) => void): Promise<MatrixOutput> {
  const a = parseMatrixArgs(argv);
  const total = a.plan.workloads.length * a.plan.predecessors.length * a.plan.successors.length;
  let done = 0;
  const r = await runMatrix(a.plan, (c: MatrixCell) => {
    done++;
    progress?.(`matrix: ${done}/${total} ${c.workload}: ${c.predecessor} → ${c.successor}: ${cellText(c)}`);
  });
  if (a.json) writeAtomic(a.json, matrixJson(r));
  if (a.html) writeAtomic(a.html, matrixHtml(r, { madeBy: ["npm run matrix --", ...argv].join(" ") }));
  let text = matrixMarkdown(r);
  if (matrixFailed(r)) text += `\n${r.cells.filter((c) => c.cls === RUN_FAILED).length} run(s) failed: see the cells marked "run failed"\n`;
  return { code: matrixFailed(r) ? 1 : 0, stdout: text };
}
