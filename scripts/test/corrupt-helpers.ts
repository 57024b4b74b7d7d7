/*
 * Helpers for the corrupt CLI tests: run the real CLIs (node on the build, as
 * scripts/src/run.ts does) asynchronously through a small pool, so that
 * independent runs overlap without swamping a 2-core machine.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { KERNEL_A, KERNEL_B, ROOT, type RunResult } from "../src/run.js";
import { runKernelAsync } from "./handoff-helpers.js";

export { KERNEL_A, KERNEL_B, ROOT };
export type { RunResult };
// Shared with the other process tests.
export { SCENARIOS, fileDigest, makeTmp, readFileAt, readJson, removeTmp, stackLines } from "./handoff-helpers.js";

export const CORRUPT = path.join(ROOT, "scripts/src/corrupt.ts");

/** At most @n tasks at a time. */
export class Pool {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly n: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.n) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.running++;
    try {
      return await task();
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }
}

/** One process per core, plus one to cover start-up I/O. */
const pool = new Pool(Math.max(2, os.availableParallelism()) + 1);

/** runTsx - run a TypeScript main with @args (pooled, non-blocking). */
export function runTsx(main: string, args: string[]): Promise<RunResult> {
  return pool.run(() => runKernelAsync(main, args));
}

export const runCorrupt = (args: string[]): Promise<RunResult> => runTsx(CORRUPT, args);
export const runA = (args: string[]): Promise<RunResult> => runTsx(KERNEL_A, args);
export const runB = (args: string[]): Promise<RunResult> => runTsx(KERNEL_B, args);

/** Size, inode and modification time of @file, or "missing": changes when anything writes it. */
export function fileStamp(file: string): string {
  try {
    const st = fs.statSync(file, { bigint: true });
    return `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  } catch {
    return "missing";
  }
}

/** Allocated bytes of @file (st_blocks * 512): a sparse copy stays small. */
export function allocatedBytes(file: string): number {
  return fs.statSync(file).blocks * 512;
}
