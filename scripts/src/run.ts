/*
 * Run the two kernels as separate processes, exactly as a user would with
 * `npm run kernel-a` / `npm run kernel-b` (node + tsx, without npm's overhead).
 */
import { spawnSync, type SpawnSyncOptions } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const KERNEL_A = path.join(ROOT, "kernel-a/src/main.ts");
export const KERNEL_B = path.join(ROOT, "kernel-b/src/main.ts");

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** runKernel - run a kernel's main with @args; stdio "pipe" captures, "inherit" shows. */
export function runKernel(main: string, args: string[], stdio: "pipe" | "inherit" = "pipe", extra: SpawnSyncOptions = {}): RunResult {
  const r = spawnSync(process.execPath, ["--import", "tsx", main, ...args], {
    cwd: ROOT,
    encoding: "utf8",
    stdio: stdio === "inherit" ? ["ignore", "pipe", "inherit"] : "pipe",
    maxBuffer: 1 << 30,
    ...extra,
  });
  if (stdio === "inherit" && r.stdout) process.stdout.write(r.stdout);
  return { status: r.status ?? 128, stdout: String(r.stdout ?? ""), stderr: String(r.stderr ?? "") };
}

export function readJson<T = any>(file: string): T {
  return JSON.parse(fs.readFileSync(file, "utf8")) as T;
}
