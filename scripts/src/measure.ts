/*
 * Measuring kernel processes from outside, shared by bench and compare: run a
 * kernel as run.ts does, time it, read its closing JSON log line, and reduce
 * several runs to median (min-max).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { distPath, nodeArgs, ROOT } from "./run.js";

export interface ProcResult {
  status: number | null;
  signal: string | null;
  error?: string;
  stdout: string;
  stderr: string;
  /** Wall time of spawnSync, measured by the bench: node startup, the work, exit. */
  extWallMs: number;
  /** User + system CPU of the child (from the bench's cutime/cstime), seconds, 10 ms resolution. */
  cpuS: number;
  /** The last JSON object on stderr (the kernel's closing measurement line). */
  last?: Record<string, unknown>;
}

export const CLK_TCK = 100;

/** User + system CPU seconds of this process's reaped children (/proc/self/stat cutime + cstime). */
export function childCpuS(): number {
  try {
    const stat = fs.readFileSync("/proc/self/stat", "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[13]) + Number(f[14])) / CLK_TCK; // fields 16 and 17 of proc(5)
  } catch {
    return NaN;
  }
}

/** lastJsonLine - the last line of @stderr that parses as a JSON object with wallMs. */
export function lastJsonLine(stderr: string): Record<string, unknown> | undefined {
  const lines = stderr.split("\n");
  for (let i = lines.length - 1; i >= 0; i--) {
    const l = lines[i]!.trim();
    if (!l.startsWith("{")) continue;
    try {
      const v: unknown = JSON.parse(l);
      if (v && typeof v === "object" && "wallMs" in v) return v as Record<string, unknown>;
    } catch {
      /* not a log line */
    }
  }
  return undefined;
}

/** runProc - run a kernel's main exactly as run.ts's runKernel does, timed from outside. */
export function runProc(main: string, args: string[], timeoutS: number): ProcResult {
  const cpu0 = childCpuS();
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, nodeArgs(main, args), {
    cwd: ROOT,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    maxBuffer: 1 << 30,
    timeout: timeoutS * 1000,
    killSignal: "SIGKILL",
    env: { ...process.env, KHOSIM_LOG_LEVEL: "info" },
  });
  const extWallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const stderr = String(r.stderr ?? "");
  const res: ProcResult = {
    status: r.status,
    signal: r.signal,
    stdout: String(r.stdout ?? ""),
    stderr,
    extWallMs,
    cpuS: childCpuS() - cpu0,
  };
  if (r.error) res.error = (r.error as NodeJS.ErrnoException).code === "ETIMEDOUT" ? `timed out after ${timeoutS} s (killed)` : r.error.message;
  const last = lastJsonLine(stderr);
  if (last) res.last = last;
  return res;
}

export function num(o: Record<string, unknown> | undefined, k: string): number {
  const v = o?.[k];
  return typeof v === "number" ? v : NaN;
}

/** du-style sizes of a file or a directory tree: apparent bytes and allocated bytes (blocks * 512). */
export function diskUsage(p: string): { apparent: number; allocated: number } {
  let apparent = 0;
  let allocated = 0;
  const walk = (q: string): void => {
    const st = fs.lstatSync(q);
    apparent += st.size;
    allocated += st.blocks * 512;
    if (st.isDirectory()) for (const e of fs.readdirSync(q)) walk(path.join(q, e));
  };
  if (fs.existsSync(p)) walk(p);
  return { apparent, allocated };
}

export interface Stat {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function stat(values: number[]): Stat | undefined {
  const v = values.filter((x) => Number.isFinite(x)).sort((x, y) => x - y);
  if (v.length === 0) return undefined;
  const mid = v.length >> 1;
  const median = v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
  return { median, min: v[0]!, max: v[v.length - 1]!, n: v.length };
}

export function fmt(x: number): string {
  if (!Number.isFinite(x)) return "–";
  const a = Math.abs(x);
  if (a >= 1e9) return `${(x / 1e9).toFixed(2)}G`;
  if (a >= 1e6) return `${(x / 1e6).toFixed(2)}M`;
  if (a >= 1000 || Number.isInteger(x)) return Math.round(x).toLocaleString("en-US");
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  if (a === 0) return "0";
  return x.toPrecision(2);
}

export function cell(s: Stat | undefined): string {
  if (!s) return "–";
  if (s.n === 1 || fmt(s.min) === fmt(s.max)) return fmt(s.median);
  return `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})`;
}


/* ---------------------------------------------------------------- start-up */

export interface StartupResult {
  rounds: number;
  /** The empty scenario kernel-a ran (written into the scratch directory). */
  scenario: string;
  runs: Record<string, number>[];
  stats: Record<string, Stat | undefined>;
  failures: string[];
}

/** The start-up metrics: [key, label, unit]. */
export const STARTUP_ROWS: [string, string, string][] = [
  ["s.nodeMs", "`node -e 0`", "ms"],
  ["s.aHelpMs", "kernel-a --help", "ms"],
  ["s.aHelpOverNodeMs", "kernel-a --help − node", "ms"],
  ["s.bHelpMs", "kernel-b --help", "ms"],
  ["s.bHelpOverNodeMs", "kernel-b --help − node", "ms"],
  ["s.aEmptyMs", "kernel-a, empty-scenario handoff", "ms"],
  ["s.aEmptyStartMs", "kernel-a, empty scenario: start-up (outside − wallMs)", "ms"],
  ["s.aStartOverNodeMs", "**kernel-a start-up − node**", "ms"],
  ["s.bEmptyMs", "kernel-b on that handoff", "ms"],
  ["s.bEmptyStartMs", "kernel-b: start-up (outside − wallMs)", "ms"],
  ["s.bStartOverNodeMs", "**kernel-b start-up − node**", "ms"],
  ["s.nodeBootMs", "`node -e 0`: process start to its first line (performance.now())", "ms"],
  ["s.aStartupMs", "kernel-a: process start to first line of work (its startupMs)", "ms"],
  ["s.aStartupOverNodeMs", "**kernel-a first line of work − node's first line**", "ms"],
  ["s.bStartupMs", "kernel-b: process start to first line of work (its startupMs)", "ms"],
  ["s.bStartupOverNodeMs", "**kernel-b first line of work − node's first line**", "ms"],
  ["s.demoMs", "demo (node scripts/build/launch.cjs dist/scripts/demo.cjs)", "ms"],
  ["s.npmDemoMs", "**`npm run demo`**", "ms"],
  ["s.nodeCpuMs", "`node -e 0`: CPU (user + sys, 10 ms ticks)", "ms"],
  ["s.aHelpCpuOverNodeMs", "kernel-a --help: CPU − node's", "ms"],
  ["s.bHelpCpuOverNodeMs", "kernel-b --help: CPU − node's", "ms"],
  ["s.aEmptyCpuOverNodeMs", "kernel-a, empty-scenario handoff: CPU − node's", "ms"],
  ["s.bEmptyCpuOverNodeMs", "kernel-b on that handoff: CPU − node's", "ms"],
  ["s.loadavg1", "load average (1 min) at the round's start", ""],
];

/** An empty scenario on a small machine: start-up, a cold boot, an empty KHO FDT, the files. */
const EMPTY_SCENARIO = { description: "bench start-up: no ops", machine: { ram: "256M" }, ops: [] };

/* Wall time from outside and the child's CPU: on a shared machine CPU time stays near the quiet figure when wall time does not. */
function timed(args: string[], timeoutS: number): { ms: number; cpuMs: number; r: ReturnType<typeof spawnSync> } {
  const cpu0 = childCpuS();
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 1 << 28, timeout: timeoutS * 1000, killSignal: "SIGKILL" });
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, cpuMs: (childCpuS() - cpu0) * 1000, r };
}

/**
 * measureStartup - @rounds interleaved rounds of `node -e 0`, kernel-a and
 * kernel-b --help, kernel-a on an empty scenario into @dir, kernel-b on it and
 * the demo, all timed from outside (wall, and the kernels' CPU against
 * node's); @progress gets one line per round.
 */
export function measureStartup(dir: string, rounds: number, timeoutS: number, progress: (line: string) => void): StartupResult {
  fs.mkdirSync(dir, { recursive: true });
  const scenario = path.join(dir, "empty.json");
  fs.writeFileSync(scenario, JSON.stringify(EMPTY_SCENARIO) + "\n");
  const out = path.join(dir, "handoff");
  const kernelA = distPath("kernel-a/src/main.ts");
  const kernelB = distPath("kernel-b/src/main.ts");
  const npm = process.env["npm_execpath"];
  const res: StartupResult = { rounds, scenario: JSON.stringify(EMPTY_SCENARIO), runs: [], stats: {}, failures: [] };
  const must = (what: string, t: { ms: number; r: ReturnType<typeof spawnSync> }, status = 0): number => {
    if (t.r.status !== status) res.failures.push(`${what}: exit ${t.r.status ?? t.r.signal}: ${String(t.r.stderr ?? "").trim().split("\n").slice(-2).join(" / ")}`);
    return t.ms;
  };
  for (let i = 1; i <= rounds && res.failures.length === 0; i++) {
    const m: Record<string, number> = { "s.loadavg1": os.loadavg()[0]! };
    const n = timed(["-e", "process.stdout.write(String(performance.now()))"], timeoutS);
    m["s.nodeMs"] = must("node -e 0", n);
    m["s.nodeBootMs"] = Number(n.r.stdout);
    m["s.nodeCpuMs"] = n.cpuMs;
    const ah = timed([kernelA, "--help"], timeoutS);
    m["s.aHelpMs"] = must("kernel-a --help", ah);
    const bh = timed([kernelB, "--help"], timeoutS);
    m["s.bHelpMs"] = must("kernel-b --help", bh);
    fs.rmSync(out, { recursive: true, force: true });
    const a = timed([kernelA, "--out", out, "--scenario", scenario, "--log-format", "json"], timeoutS);
    m["s.aEmptyMs"] = must("kernel-a (empty scenario)", a);
    const b = timed([kernelB, "--in", out, "--log-format", "json"], timeoutS);
    m["s.bEmptyMs"] = must("kernel-b (empty scenario's handoff)", b);
    m["s.aEmptyStartMs"] = a.ms - num(lastJsonLine(String(a.r.stderr ?? "")), "wallMs");
    m["s.bEmptyStartMs"] = b.ms - num(lastJsonLine(String(b.r.stderr ?? "")), "wallMs");
    m["s.aStartupMs"] = num(lastJsonLine(String(a.r.stderr ?? "")), "startupMs");
    m["s.bStartupMs"] = num(lastJsonLine(String(b.r.stderr ?? "")), "startupMs");
    m["s.aStartupOverNodeMs"] = m["s.aStartupMs"] - m["s.nodeBootMs"];
    m["s.bStartupOverNodeMs"] = m["s.bStartupMs"] - m["s.nodeBootMs"];
    m["s.aHelpOverNodeMs"] = m["s.aHelpMs"] - m["s.nodeMs"];
    m["s.bHelpOverNodeMs"] = m["s.bHelpMs"] - m["s.nodeMs"];
    m["s.aStartOverNodeMs"] = m["s.aEmptyStartMs"] - m["s.nodeMs"];
    m["s.bStartOverNodeMs"] = m["s.bEmptyStartMs"] - m["s.nodeMs"];
    m["s.aHelpCpuOverNodeMs"] = ah.cpuMs - n.cpuMs;
    m["s.bHelpCpuOverNodeMs"] = bh.cpuMs - n.cpuMs;
    m["s.aEmptyCpuOverNodeMs"] = a.cpuMs - n.cpuMs;
    m["s.bEmptyCpuOverNodeMs"] = b.cpuMs - n.cpuMs;
    m["s.demoMs"] = must("demo", timed([path.join(ROOT, "scripts/build/launch.cjs"), "dist/scripts/demo.cjs"], timeoutS));
    if (npm) m["s.npmDemoMs"] = must("npm run demo", timed([npm, "run", "--silent", "demo"], timeoutS));
    res.runs.push(m);
    progress(
      `start-up round ${i}/${rounds}: node ${fmt(m["s.nodeMs"])} ms, kernel-a --help ${fmt(m["s.aHelpMs"])}, start-up ${fmt(m["s.aEmptyStartMs"])}; ` +
        `kernel-b --help ${fmt(m["s.bHelpMs"])}, start-up ${fmt(m["s.bEmptyStartMs"])}; demo ${fmt(m["s.demoMs"])}${npm ? `, npm run demo ${fmt(m["s.npmDemoMs"]!)}` : ""} ms`,
    );
  }
  const keys = new Set(res.runs.flatMap((r) => Object.keys(r)));
  for (const k of keys) res.stats[k] = stat(res.runs.map((r) => r[k] ?? NaN));
  return res;
}

/* ---------------------------------------------------------------- C reference */

/** The C reference loops (bench/cref/kho_ref.c), built at run time. */
export interface CRef {
  /** The built binary, when gcc was there and the build worked. */
  bin?: string;
  /** The compiler's first --version line, or why there is no binary. */
  note: string;
}

/** One layout's figures from kho_ref's JSON line (medians over its --reps). */
export interface CRefFigures {
  calls: number;
  ranges: number;
  chunks: number;
  regions: number;
  nsPerPreserve: number;
  preserveMs: number;
  serializeMs: number;
  walkMs: number;
  reserveMs: number;
  /** The same reserves into an empty memblock (every one at the tail). */
  reserveTailMs: number;
  walkReserveMs: number;
  totalMs: number;
  digest: string;
}

export interface CRefRun {
  ok: boolean;
  error?: string;
  /** Spawn to exit of the C process, ms (it maps and populates its arena first). */
  extWallMs: number;
  reps?: number;
  figures?: CRefFigures;
}

export const CREF_SOURCE = path.join(ROOT, "bench/cref/kho_ref.c");

/**
 * buildCRef - compile bench/cref/kho_ref.c with `gcc -O2` into @dir; no
 * binary (and a one-line note saying why) when gcc is absent or the build fails.
 */
export function buildCRef(dir: string): CRef {
  const ver = spawnSync("gcc", ["--version"], { encoding: "utf8" });
  if (ver.error || ver.status !== 0) return { note: "C reference skipped: gcc not found" };
  const gcc = String(ver.stdout).split("\n")[0]!.trim();
  fs.mkdirSync(dir, { recursive: true });
  const bin = path.join(dir, "kho_ref");
  const r = spawnSync("gcc", ["-O2", "-std=c11", "-o", bin, CREF_SOURCE], { encoding: "utf8" });
  if (r.error || r.status !== 0) {
    return { note: `C reference skipped: gcc -O2 ${path.relative(ROOT, CREF_SOURCE)} failed: ${String(r.stderr ?? r.error?.message ?? "").trim().split("\n")[0] ?? ""}` };
  }
  return { bin, note: `${gcc}, -O2` };
}

/**
 * runCRef - run the C reference once for one layout (@workload "isolated" or
 * "contig") with @calls preserve calls; @reps repetitions inside the process,
 * medians reported.
 */
export function runCRef(bin: string, workload: "isolated" | "contig", calls: number, reps: number, timeoutS: number): CRefRun {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(bin, ["--workload", workload, `--${workload}`, String(calls), "--reps", String(reps)], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    timeout: timeoutS * 1000,
    killSignal: "SIGKILL",
  });
  const extWallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.error || r.status !== 0) {
    return { ok: false, extWallMs, error: r.error?.message ?? `exit ${r.status ?? r.signal}: ${String(r.stderr).trim().split("\n").pop() ?? ""}` };
  }
  try {
    const v = JSON.parse(String(r.stdout).trim()) as Record<string, unknown>;
    const f = v[workload] as CRefFigures | undefined;
    if (!f || typeof f.nsPerPreserve !== "number") return { ok: false, extWallMs, error: `no "${workload}" figures in ${String(r.stdout).trim()}` };
    return { ok: true, extWallMs, reps: Number(v["reps"]), figures: f };
  } catch (e) {
    return { ok: false, extWallMs, error: `unparsable output: ${(e as Error).message}` };
  }
}
