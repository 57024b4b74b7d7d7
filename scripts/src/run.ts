/*
 * Run the two kernels (and other commands) as separate processes, as a user
 * would with `npm run kernel-a` / `npm run kernel-b`: plain node on the
 * command's bundle in ROOT/dist/ (without npm's overhead). The build must be
 * current: npm scripts start through scripts/build/launch.cjs, and the test
 * command rebuilds first (pretest, and vitest's global setup).
 */
import { spawn, spawnSync, type SpawnSyncOptions } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/**
 * distPath - the bundle of a command (scripts/build/build.mjs):
 * WORKSPACE/src/X.ts (relative to ROOT or absolute) -> ROOT/dist/WORKSPACE/X.cjs;
 * a .js path is returned as is. Only the commands npm scripts run are bundled.
 */
export function distPath(main: string): string {
  const abs = path.resolve(ROOT, main);
  const rel = path.relative(ROOT, abs).split(path.sep);
  if (rel.length === 3 && rel[1] === "src" && /\.ts$/.test(abs)) return path.join(ROOT, "dist", rel[0]!, rel[2]!.replace(/\.ts$/, ".cjs"));
  return abs;
}

export const KERNEL_A = distPath("kernel-a/src/main.ts");
export const KERNEL_B = distPath("kernel-b/src/main.ts");

/** nodeArgs - the argv (after process.execPath) that runs @main with @args on its build. */
export function nodeArgs(main: string, args: readonly string[]): string[] {
  return [distPath(main), ...args];
}

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** runKernel - run a kernel's (or any command's) main with @args; stdio "pipe" captures, "inherit" shows. */
export function runKernel(main: string, args: string[], stdio: "pipe" | "inherit" = "pipe", extra: SpawnSyncOptions = {}): RunResult {
  const r = spawnSync(process.execPath, nodeArgs(main, args), {
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

/** A command started through scripts/build/preload.cjs: node is up, the command runs on exec(). */
export interface Preloaded {
  /** Close its stdin (the command runs) and wait; stdout is collected, stderr inherited. */
  exec(): Promise<RunResult>;
  /** Make it exit without running the command, and wait. */
  abort(): Promise<void>;
}

/**
 * preloadKernel - start @main with @args as kexec -l loads a kernel: the
 * process and node are up, the command is not; exec() runs it (kexec -e).
 * Lets node's start-up overlap whatever runs before exec().
 */
export function preloadKernel(main: string, args: string[]): Preloaded {
  const child = spawn(process.execPath, [path.join(ROOT, "scripts/build/preload.cjs"), ...nodeArgs(main, args)], {
    cwd: ROOT,
    stdio: ["pipe", "pipe", "inherit"],
  });
  const out: Buffer[] = [];
  child.stdout.on("data", (b: Buffer) => out.push(b));
  const done = new Promise<number>((resolve) => child.on("close", (code, signal) => resolve(code ?? (signal ? 128 : 1))));
  return {
    async exec() {
      child.stdin.end();
      const status = await done;
      return { status, stdout: Buffer.concat(out).toString("utf8"), stderr: "" };
    },
    async abort() {
      child.stdin.end("abort");
      await done;
    },
  };
}
