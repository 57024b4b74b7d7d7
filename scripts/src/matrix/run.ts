/*
 * The matrix's runs: for each (workload, predecessor) one kernel-a process
 * (`--kernel P --scenario W --out DIR --force`), then per successor one
 * kernel-b process on that directory (`--kernel S --in DIR --report
 * DIR/successor-S.json`), spawned as scripts/src/run.ts spawns the kernels
 * (plain node on the built bundle, cwd the repository root, as `npm run`
 * would). Chains of different (workload, predecessor) run side by side, up
 * to --jobs at a time; the result does not depend on the order they finish.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { OUTCOME_EXIT } from "@khosim/shared/abi";
import { KERNEL_A, KERNEL_B, ROOT, nodeArgs } from "../run.js";
import { MatrixReadError, RUN_FAILED, cellCommand, parseKernelFacts, type CellArgs, type MatrixCell, type MatrixResult, type MatrixWorkload } from "./model.js";

export interface MatrixPlan {
  predecessors: string[];
  successors: string[];
  /** Workloads with their scenario files (absolute). */
  workloads: (MatrixWorkload & { file: string })[];
  /** Where the handoffs go: DIR/WORKLOAD/PREDECESSOR (absolute). */
  out: string;
  jobs: number;
  timeoutS: number;
}

/** A path as the commands spell it: relative to the repository root (npm run's cwd) when inside it. */
export function rootRelative(p: string): string {
  const rel = path.relative(ROOT, path.resolve(p));
  return rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel) ? rel.split(path.sep).join("/") : path.resolve(p);
}

/** handoffDir - where the matrix puts the handoff of (@workload, @pred) under @out. */
export function handoffDir(out: string, workload: string, pred: string): string {
  return path.join(out, workload, pred);
}

/** cellArgs - the argv of kernel-a and kernel-b for one cell (the matrix runs them; cellCommand prints them). */
export function cellArgs(plan: Pick<MatrixPlan, "out">, w: MatrixWorkload & { file: string }, pred: string, succ: string): CellArgs {
  const dir = rootRelative(handoffDir(plan.out, w.name, pred));
  return {
    a: ["--kernel", pred, "--scenario", rootRelative(w.file), "--out", dir, "--force"],
    b: ["--kernel", succ, "--in", dir, "--report", `${dir}/successor-${succ}.json`],
  };
}

/** How a process of the matrix ended (stderr: its tail). */
export interface MatrixProc {
  status: number | null;
  signal: string | null;
  stderr: string;
  error?: string;
}

/* Run a bundle with @args from ROOT; kill it after @timeoutS. */
function runProc(main: string, args: string[], timeoutS: number): Promise<MatrixProc> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, nodeArgs(main, args), { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutS * 1000);
    child.stderr.setEncoding("utf8").on("data", (s: string) => {
      // The last lines say why; keep the tail only.
      stderr = (stderr + s).slice(-8192);
    });
    child.on("error", (e) => {
      clearTimeout(timer);
      resolve({ status: null, signal: null, stderr, error: e.message });
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const p: MatrixProc = { status: code, signal, stderr };
      if (timedOut) p.error = `timed out after ${timeoutS} s (killed)`;
      resolve(p);
    });
  });
}

/* The last line of stderr that is not a JSON log line (the one-line error), or the last line. */
function lastLine(stderr: string): string {
  const lines = stderr.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  const plain = lines.filter((l) => !l.startsWith("{"));
  return (plain[plain.length - 1] ?? lines[lines.length - 1] ?? "").slice(0, 300);
}

function failure(who: string, p: MatrixProc): string {
  if (p.error) return `${who}: ${p.error}`;
  if (p.signal) return `${who} killed by ${p.signal}`;
  const why = lastLine(p.stderr);
  return `${who} exit ${p.status}${why ? `: ${why}` : ""}`;
}

const SUCCESSOR_EXITS = new Set<number>(Object.values(OUTCOME_EXIT));

/**
 * successorCell - the cell from kernel-b's exit and the report it wrote
 * (@report, absolute). Any exit but a documented outcome's, and any report
 * without a usable `kernel` object, is a failed run.
 */
export function successorCell(base: Omit<MatrixCell, "cls" | "outcome" | "exitCode" | "reason" | "kernel" | "error">, p: MatrixProc, report: string): MatrixCell {
  const failed = (error: string, outcome: string | null = null, exitCode: number | null = null): MatrixCell => ({ ...base, cls: RUN_FAILED, outcome, exitCode, reason: null, kernel: null, error });
  if (p.error || p.signal || p.status === null || !SUCCESSOR_EXITS.has(p.status)) return failed(failure("kernel-b", p));
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(fs.readFileSync(report, "utf8")) as Record<string, unknown>;
  } catch (e) {
    return failed(`kernel-b exit ${p.status} but ${rootRelative(report)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const outcome = typeof json["outcome"] === "string" ? json["outcome"] : null;
  const exitCode = typeof json["exitCode"] === "number" ? json["exitCode"] : null;
  const reason = typeof json["reason"] === "string" ? json["reason"] : null;
  if (exitCode !== p.status) return failed(`${rootRelative(report)}: exitCode ${exitCode} but kernel-b exited ${p.status}`, outcome, exitCode);
  try {
    const kernel = parseKernelFacts(json["kernel"], rootRelative(report));
    return { ...base, cls: kernel.verdict, outcome, exitCode, reason, kernel, error: null };
  } catch (e) {
    if (e instanceof MatrixReadError) return { ...failed(e.message, outcome, exitCode), reason };
    throw e;
  }
}

/* Run @tasks with at most @n at a time. */
async function pool(tasks: (() => Promise<void>)[], n: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length) await tasks[next++]!();
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(n, tasks.length)) }, worker));
}

/**
 * runMatrix - every predecessor × successor × workload of @plan, from real
 * processes. @onCell is told of each cell as it is known (progress).
 */
export async function runMatrix(plan: MatrixPlan, onCell: (c: MatrixCell) => void = () => undefined): Promise<MatrixResult> {
  const cells = new Map<string, MatrixCell>();
  const key = (w: string, p: string, s: string) => `${w}\0${p}\0${s}`;
  const tasks: (() => Promise<void>)[] = [];
  for (const w of plan.workloads) {
    for (const pred of plan.predecessors) {
      tasks.push(async () => {
        const dir = handoffDir(plan.out, w.name, pred);
        fs.mkdirSync(path.dirname(dir), { recursive: true });
        const a = await runProc(KERNEL_A, cellArgs(plan, w, pred, plan.successors[0] ?? pred).a, plan.timeoutS);
        for (const succ of plan.successors) {
          const args = cellArgs(plan, w, pred, succ);
          const base = { workload: w.name, predecessor: pred, successor: succ, command: cellCommand(args) };
          let c: MatrixCell;
          if (a.status !== 0 || a.signal || a.error) {
            c = { ...base, cls: RUN_FAILED, outcome: null, exitCode: null, reason: null, kernel: null, error: failure("kernel-a", a) };
          } else {
            const report = path.join(dir, `successor-${succ}.json`);
            fs.rmSync(report, { force: true });
            c = successorCell(base, await runProc(KERNEL_B, args.b, plan.timeoutS), report);
          }
          cells.set(key(w.name, pred, succ), c);
          onCell(c);
        }
      });
    }
  }
  await pool(tasks, plan.jobs);
  const ordered: MatrixCell[] = [];
  for (const w of plan.workloads) for (const p of plan.predecessors) for (const s of plan.successors) ordered.push(cells.get(key(w.name, p, s))!);
  return {
    kernels: { predecessors: [...plan.predecessors], successors: [...plan.successors] },
    workloads: plan.workloads.map(({ name, scenario, description }) => ({ name, scenario, description })),
    cells: ordered,
  };
}
