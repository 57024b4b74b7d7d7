/*
 * Measuring kernel processes from outside, shared by bench and compare: run a
 * kernel as run.ts does, time it, read its closing JSON log line, and reduce
 * several runs to median (min-max).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { nodeArgs, ROOT } from "./run.js";

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

